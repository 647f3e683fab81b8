"""Page views per page in one-minute windows: a tumbling windowed table.

Run a worker (a timer sends sample views, the agent prints each page's count in the
window of the view)::

    python page_views.py worker -l info
"""

import random

import faust


class PageView(faust.Record):
    page: str
    user: str


app = faust.App('page-views', topic_partitions=4)
views = app.topic('page-views', key_type=str, value_type=PageView)
# Windows of 60 s, kept for an hour after they close.
views_per_minute = app.Table('views-per-minute', default=int).tumbling(60.0, expires=3600.0)


@app.agent(views)
async def count_views(stream):
    # A table is partitioned like the stream that writes it: key the stream by page.
    async for view in stream.group_by(PageView.page):
        views_per_minute[view.page] += 1
        count = views_per_minute[view.page].current()
        print(f'{view.page}: {count} views this minute')
        yield count


PAGES = ['/', '/docs', '/pricing']


@app.timer(interval=0.5)
async def send_sample_views():
    page = random.choice(PAGES)
    await views.send(key=page, value=PageView(page=page, user=f'user-{random.randint(1, 9)}'))


if __name__ == '__main__':
    app.main()
