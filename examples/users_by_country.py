"""A table of sets: the users who signed up, per country.

Run a worker (a timer sends sample sign-ups)::

    python users_by_country.py worker -l info
"""

import random

import faust


class Signup(faust.Record):
    user: str
    country: str


app = faust.App('signups', topic_partitions=4)
signups = app.topic('signups', value_type=Signup)
users_by_country = app.SetTable('users-by-country')


@app.agent(signups)
async def index_signups(stream):
    async for signup in stream.group_by(Signup.country):
        users_by_country[signup.country].add(signup.user)
        print(f'{signup.country}: {sorted(users_by_country[signup.country])}')


@app.timer(interval=1.0)
async def send_sample_signups():
    user = f'user-{random.randint(1, 99)}'
    await signups.send(value=Signup(user=user, country=random.choice(['no', 'se', 'dk'])))


if __name__ == '__main__':
    app.main()
