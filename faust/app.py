"""The App: what the user declares (agents, topics, tables, timers) and its lifecycle.

An App collects declarations; ``app.start()`` runs them (the worker calls it). Sending
works without starting: the producer starts on first use, so a web process can send to
topics and agents (``producer_only=True`` to say so explicitly).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .agents import Agent
from .agents.replies import ReplyConsumer
from .channels import Channel
from .conductor import Conductor
from .deadletter import DeadLetters, ErrorCounts
from .exceptions import ImproperlyConfigured
from .flow_control import FlowControl
from .schemas import Schema
from .sensors.base import SensorDelegate
from .sensors.monitor import Monitor
from .services import BackgroundTasks, Service, StopFlag
from .settings import Settings, settings_from_object
from .signals import Signal, SyncSignal
from .streams import Stream, stream_of
from .tables import GlobalTable, SetGlobalTable, SetTable, Table, TableManager
from .timers import Crontab, Timer, call_with_app, label_of
from .topics import Topic
from .transactions import TransactionGate
from .transport.base import TP, RecordMetadata, TopicSpec, Transport
from .transport.consumer import Consumer
from .transport.producer import Producer

if TYPE_CHECKING:  # aiohttp is imported only by apps that use the web server
    from .web.routing import Router
    from .web.server import WebServer
    from .web.views import View

__all__ = ["App"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: How often topics subscribed by pattern look for new matching topics (seconds): one
#: metadata request per period; Kafka's own clients refresh metadata every 5 minutes.
TOPIC_PATTERN_REFRESH = 5.0

TRANSPORTS = {
    "memory": "faust.transport.memory:MemoryTransport",
    "kafka": "faust.transport.kafka:KafkaTransport",
    "aiokafka": "faust.transport.kafka:KafkaTransport",
}


class App:
    """A Faust application.

    Example::

        app = faust.App('hello-app')                      # embedded broker
        app = faust.App('orders', broker='kafka://localhost:9092', store='rocksdb://')
    """

    def __init__(self, id: str, **options: Any) -> None:
        self.conf = Settings.from_sources(id, options)
        self._id = id
        self._options = dict(options)
        self.agents: dict[str, Agent] = {}
        self.timers: list[Timer | Crontab] = []
        self.services: list[type[Service] | Service] = []
        self.commands: dict[str, Any] = {}
        self._startup_tasks: list[tuple[Callable[..., Any], bool]] = []
        #: The sensors hearing the data path's hooks (``app.sensors.add(sensor)``).
        self.sensors = SensorDelegate(self)
        #: The in-memory Monitor (``app.monitor.snapshot()``); None with
        #: ``sensors_enabled=False``.
        self.monitor: Monitor | None = None
        if self.conf.sensors_enabled:
            self.monitor = Monitor(self)
            self.sensors.add(self.monitor)
        #: Decode errors, agent errors, retries and dead letters since the app started.
        self.error_counts = ErrorCounts()
        self.dead_letters = DeadLetters(self)
        self.conductor = Conductor(self, on_topics_changed=self._on_topics_changed)
        self._transport: Transport | None = None
        self._producer: Producer | None = None
        self._producer_lock: asyncio.Lock | None = None
        self.consumer: Consumer | None = None
        self.replies: ReplyConsumer | None = None
        self._running_services: list[Service] = []
        self._tasks = BackgroundTasks(self)
        self._discovered = False
        self._declared: set[tuple[str, ...]] = set()
        #: Topic objects by name (see :meth:`topic_spec`).
        self._topics: dict[str, Topic] = {}
        self._partition_counts: dict[str, int] = {}
        #: Seconds between looks for new topics matching an ``app.topic(pattern=...)``.
        self.topic_pattern_refresh = TOPIC_PATTERN_REFRESH
        self._pattern_follower: asyncio.Task[Any] | None = None
        #: Awaited before each commit (tables flush their changelogs here).
        self.consumer_hooks: list[Callable[[], Any]] = []
        #: Called after each commit, and under exactly-once only once its transactions
        #: committed (tables persist the changes they flushed here).
        self.consumer_after_commit: list[Callable[[], Any]] = []
        #: Under processing_guarantee='exactly_once' (set at start): what a commit
        #: closes so no agent is midway through an event (see faust.transactions).
        self.txn_gate: TransactionGate | None = None
        #: Set by the worker: stops it when the app cannot go on (see ``crash``).
        self.on_crash: Callable[[str], None] | None = None
        self.tables = TableManager(self)
        self._router: Router | None = None
        self._web: WebServer | None = None
        self.started = False
        #: Set by ``finalize()`` (``start()`` calls it): the configure signals were sent.
        self.finalized = False
        #: ``suspend()`` stops fetching new events until ``resume()`` (see
        #: :mod:`faust.flow_control`).
        self.flow_control = FlowControl()
        self._stopping = StopFlag()
        #: True from a rebalance's start until its tables are recovered.
        self.rebalancing = False
        self._rebalances = 0

        # Sent by finalize(), in Faust's order; receivers may still change settings.
        self.on_before_configured = SyncSignal("on_before_configured", self)
        self.on_configured = SyncSignal("on_configured", self)
        self.on_after_configured = SyncSignal("on_after_configured", self)
        # A rebalance starts, its assignment is handled, its tables are recovered.
        self.on_rebalance_start = SyncSignal("on_rebalance_start", self)
        # As in Faust, complete is sent (and awaited) once the tables are recovered.
        self.on_rebalance_complete = Signal("on_rebalance_complete", self)
        self.on_rebalance_end = SyncSignal("on_rebalance_end", self)
        #: Sent per record a topic sends, with ``key``, ``value`` (bytes), ``partition``,
        #: ``timestamp`` and ``headers`` (a list receivers may append pairs to).
        self.on_produce_message = SyncSignal("on_produce_message", self)
        self.on_worker_init = Signal("on_worker_init", self)
        self.on_startup_finished = Signal("on_startup_finished", self)
        self.on_partitions_assigned = Signal("on_partitions_assigned", self)
        self.on_partitions_revoked = Signal("on_partitions_revoked", self)
        self.on_before_shutdown = Signal("on_before_shutdown", self)
        self.on_shutdown = Signal("on_shutdown", self)

    # -- settings
    def config_from_object(self, obj: Any, *, silent: bool = False, force: bool = False) -> None:
        """Take settings from an object, a module or a mapping (or the dotted name of
        one, ``'myproj.settings'`` or ``'myproj.settings:Config'``), as Faust does:
        each attribute named like a setting is one; arguments to ``faust.App(...)`` win.
        ``silent``: a dotted name that does not import is ignored. ``force`` is Faust's
        (it applies lazy configuration at once): settings here always apply at once.

        >>> app = App('cfg-demo')
        >>> class Config:
        ...     topic_partitions = 4
        >>> app.config_from_object(Config)
        >>> app.conf.topic_partitions
        4
        """
        if self.started:
            raise ImproperlyConfigured(
                "app.config_from_object() after the app started: settings are frozen "
                "once it starts; call it before."
            )
        if isinstance(obj, str):
            module_name, _, attr = obj.partition(":")
            try:
                obj = importlib.import_module(module_name)
                if attr:
                    obj = getattr(obj, attr)
            except (ImportError, AttributeError):
                if silent:
                    return
                raise
        options = settings_from_object(obj)
        fresh = Settings.from_sources(self._id, {**options, **self._options})
        for name, value in vars(fresh).items():
            setattr(self.conf, name, value)

    @property
    def agent_errors(self) -> int:
        """Times an agent raised (``error_counts.agent_errors``)."""
        return self.error_counts.agent_errors

    @property
    def producer_only(self) -> bool:
        return self.conf.producer_only

    @producer_only.setter
    def producer_only(self, value: bool) -> None:
        self.conf.producer_only = bool(value)

    @property
    def client_only(self) -> bool:
        return self.conf.client_only

    @client_only.setter
    def client_only(self, value: bool) -> None:
        self.conf.client_only = bool(value)

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = self._create_transport()
        return self._transport

    def _create_transport(self) -> Transport:
        urls = self.conf.broker
        # aiokafka:// is another name for kafka://.
        schemes = {url.partition("://")[0].replace("aiokafka", "kafka") for url in urls}
        if len(schemes) > 1:
            raise ImproperlyConfigured(
                f"Setting broker: all URLs must use one scheme, got {sorted(schemes)}."
            )
        scheme = schemes.pop()
        target = TRANSPORTS.get(scheme)
        if target is None:
            raise ImproperlyConfigured(
                f"Setting broker: unknown scheme {scheme + '://'!r} in {urls[0]!r}. "
                "Use 'memory://' (embedded) or 'kafka://host:9092'."
            )
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"Setting broker: {urls[0]!r} needs an extra package ({exc.name}): "
                "pip install 'faust[kafka]'."
            ) from None
        transport_cls: type[Transport] = getattr(module, attr)
        return transport_cls(urls, self)

    def schema(self, **kwargs: Any) -> Schema:
        """A :class:`~faust.Schema` with this app's default serializers."""
        kwargs.setdefault("default_key_serializer", self.conf.key_serializer)
        kwargs.setdefault("default_value_serializer", self.conf.value_serializer)
        return Schema(**kwargs)

    def finalize(self) -> None:
        """Send the configure signals, once: ``on_before_configured``,
        ``on_configured(conf)``, ``on_after_configured``. ``start()`` calls it first.

        Example::

            @app.on_configured.connect
            def configure(app, conf, **kwargs):
                conf.broker_commit_every = 1000

            app.finalize()
        """
        if self.finalized:
            return
        self.finalized = True
        self.on_before_configured.send_sync()
        self.on_configured.send_sync(self.conf)
        self.on_after_configured.send_sync()

    # -- declarations
    def topic(self, *topics: str, **kwargs: Any) -> Topic:
        """Declare a topic (or several read as one stream), or with ``pattern=`` read
        every topic whose name matches the regular expression (``re.match``), including
        topics created later (found within ``app.topic_pattern_refresh`` seconds).

        Example::

            orders = app.topic('orders', key_type=str, value_type=Order, partitions=8)
            emails = app.topic(pattern='^email-.*', value_type=str)
        """
        topic: Topic[Any] = Topic(self, topics=topics, **kwargs)
        for name in topic.topics:
            # The first topic object of a name describes it, unless a later one states
            # its partitions (``app.topic(name)`` to send is not its declaration).
            known = self._topics.get(name)
            if known is None or (known.partitions is None and topic.partitions is not None):
                self._topics[name] = topic
        return topic

    def topic_spec(self, name: str) -> TopicSpec | None:
        """How this app declares topic ``name`` (None if it made no topic of that name).

        The broker driver creates a topic the app sends to before declaring it with
        this spec, rather than with the broker's defaults.
        """
        topic = self._topics.get(name)
        if topic is None:
            return None
        return next(spec for spec in topic.specs() if spec.name == name)

    def channel(self, *, key_type: Any = None, value_type: Any = None, **kwargs: Any) -> Channel:
        """An in-process channel (no broker): ``await channel.send(value=...)``."""
        return Channel(self, key_type=key_type, value_type=value_type, **kwargs)

    async def send(
        self, channel: str | Channel[Any], key: Any = None, value: Any = None, **kwargs: Any
    ) -> RecordMetadata:
        """Send to a topic (by name or object) or channel; the other arguments are those
        of :meth:`Topic.send <faust.Topic.send>`.

        Example::

            await app.send('orders', key='acct-1', value=Order(amount=10))
        """
        target = self.topic(channel) if isinstance(channel, str) else channel
        return await target.send(key=key, value=value, **kwargs)

    def stream(self, channel: Any, **kwargs: Any) -> Stream[Any]:
        """A stream over a channel or topic, or over the values of any iterable or
        async iterable (it ends when they do).

        Example::

            async for word in app.stream(['a', 'b']).filter(lambda w: w != 'b'):
                print(word)
        """
        if isinstance(channel, Channel):
            return channel.stream(**kwargs)
        return stream_of(self, channel, **kwargs)

    def agent(
        self,
        channel: Any = None,
        *,
        name: str | None = None,
        concurrency: int = 1,
        sink: Iterable[Any] | None = None,
        isolated_partitions: bool = False,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], Agent]:
        """Declare an agent: an ``async def`` over a stream of the channel's values.

        An event the agent raises on is handed again to the restarted agent ``retries``
        times (default: the ``agent_retries`` setting), then ``on_error`` applies
        (``'dead_letter'``, ``'stop'`` or ``'skip'``; default: the ``on_error`` setting);
        ``dead_letter_topic`` names its dead-letter topic.

        Example::

            @app.agent(orders)
            async def process(stream):
                async for order in stream:
                    print(order)
        """

        def _decorate(fun: Callable[..., Any]) -> Agent:
            agent = Agent(
                fun,
                app=self,
                name=name,
                channel=channel,
                concurrency=concurrency,
                sink=sink,
                isolated_partitions=isolated_partitions,
                **kwargs,
            )
            if agent.name in self.agents:
                # The agents would share one name and so one topic: the first would be
                # replaced without a word.
                raise ValueError(
                    f"Two agents are named {agent.name!r} in app {self.conf.id!r}: give one "
                    "of them another name with @app.agent(..., name='...')."
                )
            self.agents[agent.name] = agent
            return agent

        return _decorate

    #: The 1.0 pre-release name of :meth:`agent`.
    actor = agent

    def task(self, fun: F | None = None, *, on_leader: bool = False) -> Any:
        """Run a function once when the worker starts; it may take the app as argument."""

        def _decorate(f: F) -> F:
            self._startup_tasks.append((f, on_leader))
            return f

        return _decorate(fun) if fun is not None else _decorate

    def timer(
        self, interval: float, *, on_leader: bool = False, name: str | None = None
    ) -> Callable[[F], F]:
        """Run a function every ``interval`` seconds; it may take the app as argument.

        Example::

            @app.timer(interval=1.0)
            async def tick(app):
                await topic.send(value='tick')
        """

        def _decorate(fun: F) -> F:
            label = name or label_of(fun)
            self.timers.append(Timer(self, fun, interval, label, on_leader))
            return fun

        return _decorate

    def crontab(
        self, cron_format: str, *, timezone: Any = None, on_leader: bool = False, tz: Any = None
    ) -> Callable[[F], F]:
        """Run a function on a cron schedule, e.g. ``@app.crontab('*/5 * * * *')``, in
        ``timezone`` (a tzinfo or a zone name; default: the ``timezone`` setting).

        ``tz`` is another name for ``timezone``, as Faust's crontab examples write it::

            @app.crontab('16 20 * * *', timezone='US/Pacific', on_leader=True)
            async def evening_report():
                ...
        """
        if tz is not None:
            if timezone is not None:
                raise TypeError(
                    f"@app.crontab({cron_format!r}): give the zone as timezone= or tz=, not both"
                )
            timezone = tz

        def _decorate(fun: F) -> F:
            label = label_of(fun)
            self.timers.append(Crontab(self, fun, cron_format, label, on_leader, timezone))
            return fun

        return _decorate

    def service(self, cls: Any) -> Any:
        """Start a :class:`~faust.Service` (class or instance) with the app."""
        self.services.append(cls)
        return cls

    # -- web
    @property
    def web(self) -> WebServer:
        """The worker's web server (the worker starts it; see :mod:`faust.web`)."""
        if self._web is None:
            from .web.server import WebServer

            self._web = WebServer(self)
        return self._web

    def page(
        self,
        path: str,
        *,
        base: type[View] | None = None,
        cors_options: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Callable[[Any], type[View]]:
        """Serve a view at ``path`` on the worker's web server: an ``async def`` taking
        ``(self, request, **params)``, or a :class:`~faust.View` subclass.

        Example::

            @app.page('/count/{word}/')
            async def count(self, request, word):
                return self.json({'word': word, 'count': counts[word]})
        """
        from .web.views import View

        view_base = View if base is None else base

        def _decorate(fun: Any) -> type[View]:
            if inspect.isclass(fun):
                if not issubclass(fun, View):
                    raise TypeError(f"@app.page on a class: {fun!r} must subclass faust.View")
                view: type[View] = fun
            else:
                view = view_base.from_handler(fun)
            view.view_name = name or view.__name__
            view.view_path = path
            self.web.add_view(view, path, name=view.view_name, cors_options=cors_options)
            return view

        return _decorate

    def command(self, *options: Any, name: str | None = None, **kwargs: Any) -> Any:
        """Add a command to the app's CLI (``faust -A app NAME`` / ``python app.py NAME``).

        Example::

            @app.command(faust.cli.option('--count', type=int, default=1))
            async def produce(self, count):
                for i in range(count):
                    await topic.send(value=i)
        """
        from .cli.base import app_command

        def _decorate(fun: Callable[..., Any]) -> Any:
            cmd = app_command(self, fun, options, name=name, **kwargs)
            self.commands[cmd.name or fun.__name__] = cmd
            return cmd

        return _decorate

    def Table(self, name: str, **kwargs: Any) -> Table:  # noqa: N802 - the Faust API
        """A table: a dict that survives crashes, partitioned like its stream.

        Example::

            counts = app.Table('counts', default=int, partitions=8)
        """
        return self.tables.add(Table(self, name, **kwargs))

    def GlobalTable(self, name: str, **kwargs: Any) -> GlobalTable:  # noqa: N802
        """A table every worker holds in full."""
        return self.tables.add(GlobalTable(self, name, **kwargs))

    def SetTable(self, name: str, **kwargs: Any) -> SetTable:  # noqa: N802
        """A table of sets: ``table[key].add(member)``."""
        return self.tables.add(SetTable(self, name, **kwargs))

    def SetGlobalTable(self, name: str, **kwargs: Any) -> SetGlobalTable:  # noqa: N802
        """A SetTable every worker holds in full."""
        return self.tables.add(SetGlobalTable(self, name, **kwargs))

    # -- web routing
    @property
    def router(self) -> Router:
        """Which worker owns each key of a table or topic (:class:`faust.web.routing.Router`).

        Example::

            url = app.router.key_store('counts', 'apple')   # None while nobody owns it
        """
        if self._router is None:
            from .web.routing import Router

            self._router = Router(self)
            # Its connections to other workers end with the app.
            self.on_shutdown.connect(_close_router)
        return self._router

    def table_route(
        self,
        table: Any,
        shard_param: str | None = None,
        *,
        query_param: str | None = None,
        match_info: str | None = None,
        exact_key: Any = None,
    ) -> Callable[[F], F]:
        """Serve the decorated view on the worker that owns the key's table partition,
        forwarding the request there from any other worker (503 while nobody owns it).

        The key is the path parameter ``match_info``, the query parameter
        ``query_param`` (``shard_param`` is its older name) or ``exact_key``; text is
        converted to the table's ``key_type`` (400 if it does not convert). Its partition
        is the one the table's key serializer gives (JSON by default, as ``group_by``
        repartitions): the stream that writes the table must be partitioned that way.

        Example::

            @app.page('/count/{word}/')
            @app.table_route(table=counts, match_info='word')
            async def get_count(web, request, word):
                return web.json({word: counts[word]})
        """
        from .web.routing import KeyLocation, table_route

        where = KeyLocation.of("table_route", query_param or shard_param, match_info, exact_key)
        return table_route(self, table, where)

    def topic_route(
        self,
        topic: Any,
        shard_param: str | None = None,
        *,
        query_param: str | None = None,
        match_info: str | None = None,
        exact_key: Any = None,
    ) -> Callable[[F], F]:
        """Like :meth:`table_route`, by the partition of ``topic`` a key goes to.

        Example::

            @app.page('/orders/{account}/')
            @app.topic_route(topic=orders, match_info='account')
            async def pending(web, request, account):
                return web.json(pending_orders.get(account, []))
        """
        from .web.routing import KeyLocation, topic_route

        where = KeyLocation.of("topic_route", query_param or shard_param, match_info, exact_key)
        return topic_route(self, topic, where)

    def backlogged(self) -> bool:
        """True while this app holds more unsent work than it should, or its
        ``flow_control`` is suspended; the consumer fetches nothing more until it is
        not (checked once per fetched batch)."""
        if not self.flow_control.is_active():
            return True
        producer = self._producer
        if producer is not None and producer.backlogged:
            return True
        for table in self.tables:
            if table.backlogged:
                # Its changes go out with the next commit's flush.
                if self.consumer is not None:
                    self.consumer.request_commit()
                return True
        return False

    @property
    def ready(self) -> bool:
        """True while this worker is ready to process: started, its partitions known,
        and every assigned table partition recovered. False again while a rebalance's
        recovery runs. ``await app.wait_ready()`` waits for it.

        Example::

            @app.timer(interval=5.0)
            async def health():
                if not app.ready:
                    print('restoring tables; not serving reads yet')
        """
        if not self.started:
            return False
        consumer = self.consumer
        if consumer is not None and not consumer.assigned_once.is_set():
            return False
        return not self.tables.recovering

    async def wait_ready(self) -> None:
        """Wait until :attr:`ready` (the worker logs ``Worker ready`` then).

        Example::

            await app.start()
            await app.wait_ready()  # tables restored: reads see the full state
        """
        while not self.ready:
            consumer = self.consumer
            if consumer is not None:
                await consumer.assigned_once.wait()
            await self.tables.wait_recovered()
            if not self.started:
                # Ready is about a started app: look again shortly.
                await asyncio.sleep(0.05)

    def partition_count_of(self, topic: str) -> int | None:
        """Partitions of ``topic`` as declared by this app (None if it did not declare it)."""
        return self._partition_counts.get(topic)

    def is_leader(self) -> bool:
        """True on the worker that runs ``on_leader`` timers (always, on one worker)."""
        leader = getattr(self.transport, "is_leader", None)
        return True if leader is None else bool(leader())

    # -- running
    def main(self, argv: list[str] | None = None) -> None:
        """The app's command line, the ``faust`` command with this app chosen: reads
        ``sys.argv`` (or ``argv``) and exits when the command is done.

        Example::

            if __name__ == '__main__':
                app.main()     # python app.py worker -l info / send ... / --help
        """
        from .cli.main import run_app_cli

        run_app_cli(self, argv)

    def start_worker(self, loglevel: str = "info", argv: list[str] | None = None) -> None:
        """Run a worker for this app until Ctrl-C (the 1.0 pre-release API).

        Given command-line arguments (``sys.argv``, or ``argv``), it runs them as
        :meth:`main` does instead (``python app.py --help``, ``python app.py send ...``);
        with none it starts the worker.

        Example::

            if __name__ == '__main__':
                app.start_worker()
        """
        import sys

        from .worker import Worker

        args = sys.argv[1:] if argv is None else argv
        if args:
            self.main(args)
            return
        code = Worker(self, loglevel=loglevel).execute_from_commandline()
        if code:
            sys.exit(code)

    def discover(self) -> None:
        """Import the modules named by ``autodiscover`` so their agents register."""
        if self._discovered:
            return
        self._discovered = True
        setting = self.conf.autodiscover
        if callable(setting):
            setting = setting()
        if not setting:
            return
        if setting is True:
            if not self.conf.origin:
                raise ImproperlyConfigured(
                    "Setting autodiscover=True needs origin='your.package' to know what to scan."
                )
            from .contrib.django import installed_apps

            # A Django project's installed apps too, as Faust's Django integration does.
            modules = list(dict.fromkeys([self.conf.origin, *installed_apps()]))
        else:
            modules = list(setting)
        for module_name in modules:
            module = importlib.import_module(module_name)
            path = getattr(module, "__path__", None)
            if path is None:
                continue
            for info in pkgutil.walk_packages(path, prefix=module_name + "."):
                importlib.import_module(info.name)

    async def maybe_start_producer(self) -> Producer:
        """The producer, started on first use."""
        producer = self._producer
        if producer is not None and producer.started:
            return producer
        if self._producer_lock is None:
            self._producer_lock = asyncio.Lock()
        async with self._producer_lock:
            if self._producer is None:
                self._producer = Producer(self.transport.create_producer(), self.sensors)
            await self._producer.start()
        return self._producer

    def producer_for_send_soon(self) -> Producer:
        """The producer for a synchronous ``send_soon``; started by the app or lazily."""
        if self._producer is None:
            self._producer = Producer(self.transport.create_producer(), self.sensors)
        producer = self._producer
        if not producer.started:
            # The embedded broker needs no start; others start before the first record.
            self._spawn(producer.start())
        return producer

    async def maybe_start_replies(self) -> ReplyConsumer:
        """Create and start reading this app's reply topic (``agent.ask`` calls this
        before its first request; a clean :meth:`stop` deletes the topic again)."""
        if self.replies is None:
            self.replies = ReplyConsumer(self)
        await self.replies.start()
        return self.replies

    async def _start_consumer(self) -> None:
        if self.consumer is None:
            await self._match_topic_patterns()
            await self._declare_subscribed()
            self.consumer = Consumer(self, self.conductor)
            self.consumer.before_commit = self.consumer_hooks
            self.consumer.after_commit = self.consumer_after_commit
            await self.consumer.start()

    async def _match_topic_patterns(self) -> bool:
        """Subscribe pattern topics to the broker's topics they match; True if the
        consumer must subscribe more topics."""
        if not self.conductor.has_patterns:
            return False
        if self._pattern_follower is None or self._pattern_follower.done():
            self._pattern_follower = self._tasks.supervise(
                self._follow_topic_patterns, "faust-topic-patterns"
            )
        return self.conductor.match_patterns(await self.transport.list_topics())

    async def _follow_topic_patterns(self) -> None:
        while True:
            await asyncio.sleep(self.topic_pattern_refresh)
            if await self._match_topic_patterns() and self.consumer is not None:
                self.consumer.update_subscription()

    async def _declare_subscribed(self) -> None:
        # A stream may subscribe a new topic while a declaration is awaited (group_by in
        # an agent that just started): loop until every subscribed topic is declared.
        while pending := [
            t for t in self.conductor.subscribed_topics() if t.topics not in self._declared
        ]:
            for topic in pending:
                await self.declare_topic(topic)

    async def declare_topic(self, topic: Topic) -> None:
        """Create ``topic`` on the broker once (fails if it exists with other partitions)."""
        if topic.topics not in self._declared:
            await topic.declare()
            self._declared.add(topic.topics)
            for spec in topic.specs():
                self._partition_counts[spec.name] = spec.partitions

    def _on_topics_changed(self) -> None:
        # A stream started reading a new topic (group_by, through): declare it with its
        # own partition count first, then widen the subscription. (Before the consumer
        # starts, _start_consumer declares every subscribed topic.)
        if self.consumer is not None:
            self._spawn(self._resubscribe(), name="resubscribe")

    async def _resubscribe(self) -> None:
        await self._match_topic_patterns()
        await self._declare_subscribed()
        if self.consumer is not None:
            self.consumer.update_subscription()

    async def start(self) -> None:
        """Start everything declared: producer, agents, consumer, services, timers."""
        if self.started:
            return
        self._stopping.clear()
        self.finalize()
        self.discover()
        self.conf.warn_no_effect()
        # After finalize(): on_configured receivers may still change settings.
        self.conf.freeze()
        if self.conf.processing_guarantee == "exactly_once":
            self._check_exactly_once()
            self.txn_gate = TransactionGate()
        await self.maybe_start_producer()
        if not self.conf.producer_only:
            # Every reader subscribes before the consumer starts, so the consumer group
            # sees the full subscription at once (one rebalance, not one per agent).
            # The reply topic is not created here but by the first ask() (see
            # maybe_start_replies): most workers never ask.
            if not self.conf.client_only:
                for agent in self.agents.values():
                    await agent.declare_channel()
                    await agent.start()
                await self.tables.start()
            await self._start_consumer()
            if self.conf.reply_create_topic:
                await self.maybe_start_replies()
        for service in self.services:
            instance = service if isinstance(service, Service) else _instantiate(service, self)
            await instance.start()
            self._running_services.append(instance)
        if self.monitor is not None:
            self._spawn(self.monitor.run(), name="monitor")
        if not self.conf.producer_only and not self.conf.client_only:
            for fun, on_leader in self._startup_tasks:
                self._spawn(self._run_startup_task(fun, on_leader))
            for timer in self.timers:
                self._spawn(timer.run(), name=f"timer:{timer.name}")
        self.started = True
        await self.on_startup_finished.send()

    async def start_client(self) -> None:
        """Start only the producer (for a web process); the first ``ask()`` starts
        reading replies."""
        if not self.started:
            self.conf.client_only = True
        await self.start()

    async def _run_startup_task(self, fun: Callable[..., Any], on_leader: bool) -> None:
        if on_leader and not self.is_leader():
            return
        result = call_with_app(fun, self)
        if inspect.isawaitable(result):
            await result

    async def stop(self) -> None:
        """Stop gracefully: agents finish the event in hand, sends are flushed, and the
        processed offsets are committed."""
        self._stopping.set()
        try:
            await self._stop_running()
        finally:
            # Also when a step of the stop failed: a client left open holds the broker's
            # connections and is reported as unclosed at exit.
            await self.release_clients()
            self.started = False
            self.conf.freeze(False)
        await self.on_shutdown.send()

    async def release_clients(self) -> None:
        """Stop reading replies, stop the producer (sending what it holds) and close the
        broker clients; each step runs even if one before it failed.

        ``app.stop()`` does this last; a program that only sends, without starting the
        app, calls it when done::

            try:
                await topic.send(value=1)
            finally:
                await app.release_clients()
        """
        try:
            replies, self.replies = self.replies, None
            if replies is not None:
                await replies.stop()
        finally:
            try:
                if self._producer is not None:
                    await self._producer.stop()
            finally:
                if self._transport is not None:
                    await self._transport.close()

    async def _stop_running(self) -> None:
        await self.on_before_shutdown.send()
        await self._tasks.cancel()
        if self.consumer is not None:
            await self.consumer.stop()
        for agent in self.agents.values():
            await agent.stop()
        if self._producer is not None:
            await self._producer.flush()
        if self.consumer is not None:
            # Commits, which flushes the tables' changelogs first.
            await self.consumer.close()
            self.consumer = None
        await self.tables.stop()
        if self.replies is not None:
            await self.replies.stop()
            self.replies = None
        for service in reversed(self._running_services):
            await service.stop()
        self._running_services.clear()

    async def __aenter__(self) -> App:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stop()

    def _spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        return self._tasks.spawn(coro, name)

    async def partitions_revoked(self, revoked: set[TP]) -> None:
        """Called by the consumer after it committed and dropped ``revoked``'s events."""
        self._rebalance_started()
        for agent in self.agents.values():
            await agent.on_partitions_revoked(revoked)
        self.tables.on_partitions_revoked(revoked)
        await self.on_partitions_revoked.send(revoked)

    async def partitions_assigned(self, assigned: set[TP]) -> None:
        """Called by the consumer when partitions are assigned to this worker."""
        self._rebalance_started()
        self.tables.on_partitions_assigned(assigned)
        await self.on_partitions_assigned.send(assigned)
        if self.rebalancing:
            self._spawn(self._rebalance_ended(self._rebalances), name="rebalance-end")

    def _rebalance_started(self) -> None:
        # Once per rebalance (a revoke and then an assignment), not when the stop gives
        # the partitions up.
        if not self.rebalancing and not self._stopping.is_set():
            self.rebalancing = True
            self._rebalances += 1
            self.on_rebalance_start.send_sync()

    async def _rebalance_ended(self, rebalance: int) -> None:
        await self.tables.wait_recovered()
        if self.rebalancing and rebalance == self._rebalances:  # no newer one began
            await self.on_rebalance_complete.send()
        if self.rebalancing and rebalance == self._rebalances:  # nor while it ran
            self.rebalancing = False
            self.on_rebalance_end.send_sync()

    def crash(self, reason: str) -> None:
        """Stop the worker because the app cannot go on correctly (exit code 1)."""
        logger.critical("Stopping: %s", reason)
        if self.on_crash is not None:
            self.on_crash(reason)

    def on_agent_error(self, agent: Agent, exc: BaseException) -> None:
        """Called when an agent crashes (it is restarted by its supervisor)."""
        self.error_counts.agent_errors += 1

    def _check_exactly_once(self) -> None:
        """processing_guarantee='exactly_once' needs Kafka's transactions."""
        scheme = getattr(self.transport, "scheme", None)
        if scheme != "kafka":
            raise ImproperlyConfigured(
                f"Setting processing_guarantee='exactly_once' needs Kafka transactions, "
                f"which the {scheme}:// broker does not have: set broker='kafka://...' "
                "or use processing_guarantee='at_least_once'."
            )

    @property
    def should_stop(self) -> bool:
        """True once the app has begun to stop: long-running loops end then."""
        return self._stopping.is_set()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, returning early when the app stops.

        Example::

            @app.task
            async def poll():
                while not app.should_stop:
                    await fetch_prices()
                    await app.sleep(30.0)
        """
        await self._stopping.sleep(seconds)

    def __repr__(self) -> str:
        return f"<App {self.conf.id}: {len(self.agents)} agents>"


async def _close_router(app: App) -> None:
    await app.router.close()


def _instantiate(cls: type[Service], app: App) -> Service:
    try:
        return cls(app)
    except TypeError:
        instance = cls()
        instance.app = app
        return instance
