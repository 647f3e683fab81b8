"""Word count: sentences in, a table of counts out, and a web page per word.

An agent splits each sentence into words; another counts them in a table, after
``group_by`` has repartitioned the words so each word is counted by one worker. The
page ``/count/{word}/`` reads the table. With several workers, each owns some of the
table's partitions: ``@app.table_route`` passes a request for a word to the worker
that owns it, so every worker answers for every word (the ``X-Faust-Served-By`` header
says which worker did).

One worker, on the embedded broker (a timer sends a sample sentence every second):

    python word_count.py worker -l info
    curl localhost:6066/count/faust/

Two workers on Kafka, answering for each other's words (``scripts/kafka up`` in a
clone of Faust starts a Kafka on localhost:9092):

    export FAUST_BROKER=kafka://localhost:9092
    faust -A word_count worker -l info --web-port 6066
    faust -A word_count worker -l info --web-port 6067
    faust -A word_count send sentences '"To be or not to be"'
    curl -i localhost:6066/count/be/      # the same count from both,
    curl -i localhost:6067/count/be/      # served by the word's owner
    faust -A word_count status            # who owns which partition, and the lag
"""

import itertools
import re

import faust

#: What the timer sends, one sentence a second, on the leader only.
SAMPLE_SENTENCES = [
    'Faust is a stream processing library',
    'A stream is an infinite async iterator',
    'A table is a dict that survives crashes',
    'Faust agents are async functions over streams',
]

app = faust.App('word-count', topic_partitions=4)
sentences = app.topic('sentences', value_type=str)
words = app.topic('words', value_type=str)
counts = app.Table('word-counts', default=int)

WORD = re.compile(r"[\w']+")


@app.agent(sentences)
async def split_sentences(stream):
    async for sentence in stream:
        for word in WORD.findall(sentence.lower()):
            await words.send(value=word)


@app.agent(words)
async def count_words(stream):
    # Repartitioned by the word itself, through the topic
    # word_count.count_words-words-word-repartition (named as Faust names it):
    # each word is counted on the worker that owns its table partition.
    async for word in stream.group_by(lambda word: word, name='word'):
        counts[word] += 1


@app.page('/count/{word}/')
@app.table_route(table=counts, match_info='word')
async def get_count(web, request, word):
    # get() does not create the word (counts[word] would, with default=int).
    return web.json({'word': word, 'count': counts.get(word, 0)})


_samples = itertools.cycle(SAMPLE_SENTENCES)


@app.timer(interval=1.0, on_leader=True)
async def send_sample_sentence(app):
    await sentences.send(value=next(_samples))


if __name__ == '__main__':
    app.main()
