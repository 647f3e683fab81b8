"""Scheduled work: a timer on one worker of the group, and a crontab.

Run a worker::

    python schedules.py worker -l info

With several workers (on Kafka), ``leader_tick`` runs on one of them only; the crontab
runs on every worker at 0, 5, 10, ... minutes past the hour (UTC).
"""

import faust

app = faust.App('schedules')


@app.timer(interval=1.0, on_leader=True)
async def leader_tick():
    print('leader tick: this worker is the leader')


@app.crontab('*/5 * * * *', timezone='UTC')
async def every_five_minutes():
    print('five minutes have passed')


if __name__ == '__main__':
    app.main()
