"""`k8sbot run`: the Bolt app in Socket Mode (default) or HTTP mode, plus health endpoints.

`BotRunner` is the whole running bot as one object with `start()` / `stop()`, so tests and the local
demo exercise exactly the start-up path that `k8sbot run` uses. Start-up order is explicit: the
Slack client, then the core (stores, permissions, the command path), the app and the HTTP server,
the Slack connection, and last the background work: alerting subscribes to the change recorder
before the watchers start, so it sees their first listing.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.base import BaseScheduler
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot.commands.context import CommandServices
from bot.commands.registry import VerbRegistry
from bot.commands.routing import ClusterRouter
from bot.digest.scheduling import start_scheduler
from bot.errors import NotFound, SlackUnavailable
from bot.kube.client import KubeClient
from bot.kube.leasing import LeaseLock, LeaseTiming
from bot.settings import Settings
from bot.slack.blocks import AnswerRenderer
from bot.slack.client import Poster, make_web_client
from handlers import register
from handlers.deliveries import DeduplicateDeliveries, Deliveries
from handlers.integrations import IntegrationRoutes
from handlers.serving import HttpApp, HttpServer, Readiness, ReadinessPolicy
from k8sbot.wiring import Background, ClusterWork, Core, build_background, build_core, build_receivers

log = logging.getLogger(__name__)

LISTENER_THREADS = 10
"""Commands answered at once (Bolt's listener pool); `stop` waits for these to finish."""
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def build_app(
    settings: Settings,
    router: ClusterRouter,
    client: WebClient,
    renderer: AnswerRenderer,
    executor: ThreadPoolExecutor | None = None,
) -> App:
    """The Bolt app, pointed at the configured Slack API URL only. Calls auth.test once. `renderer`
    turns every answer into a Slack message (and clicked button values back into commands); `router`
    picks each command's cluster; `executor` runs the commands (after their ack), so that a shutdown
    can wait for them."""
    try:
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret or "socket-mode-requests-are-not-signed",
            raise_error_for_unhandled_request=False,
            listener_executor=executor,
        )
    except BoltError as e:
        raise SlackUnavailable(
            f"Slack rejected the bot token or is unreachable at {settings.slack_api_url}: {e}"
        ) from e
    register(app, router, renderer)
    app.use(DeduplicateDeliveries(Deliveries()))  # after Bolt's signature check, for both transports
    return app


@dataclass
class Started:
    """The background work once started: what `stop_background` stops."""

    watchers: list[threading.Thread]
    scheduler: BaseScheduler
    sender: threading.Thread


def start_background(background: Background, stop: threading.Event) -> Started:
    """Per cluster: alerting first (it subscribes to the recorder), then the watchers; then the one
    outbox sender and the scheduler. A cluster whose watch loop fails stops only its own watchers."""
    watchers = []
    for work in background.clusters:
        work.alerting.start(stop, synced=work.tracker.wait_synced)

        def watch(work: ClusterWork = work) -> None:
            try:
                work.tracker.run(stop)
            except Exception:  # the watch loop is an edge: log loudly, keep the bot answering commands
                log.exception("the watchers of cluster %s stopped with an error", work.name)

        thread = threading.Thread(target=watch, name=f"watchers-{work.name}", daemon=True)
        thread.start()
        watchers.append(thread)
    sender = threading.Thread(target=background.sender.run, args=(stop,), name="alert-sender", daemon=True)
    sender.start()
    scheduler = start_scheduler(background.digest, prune=lambda: prune_history(background))
    return Started(watchers=watchers, scheduler=scheduler, sender=sender)


def prune_history(background: Background) -> None:
    """The scheduled chore: every cluster's changes, warning events and Alertmanager inbox past
    retention (the button store prunes itself when it saves)."""
    for work in background.clusters:
        work.tracker.prune()  # logs its own failures
        try:
            gone = work.alerting.prune()
        except Exception:  # a chore: tried again at the next run
            log.exception("pruning the Alertmanager inbox of cluster %s failed", work.name)
            continue
        if gone:
            log.info("pruned %d Alertmanager alerts of cluster %s past retention", gone, work.name)


def stop_background(background: Background, started: Started, *, deadline: float) -> None:
    """After `stop` was set: join the alert engines, flush the outbox, stop the scheduler, join the
    watchers, all before the monotonic `deadline`."""
    started.scheduler.shutdown(wait=False)
    for work in background.clusters:
        work.alerting.join(max(0.0, deadline - time.monotonic()))
    background.sender.wake.set()
    started.sender.join(max(0.0, min(2.0, deadline - time.monotonic())))
    flushed = background.sender.flush(max(0.0, deadline - time.monotonic()))
    if flushed:
        log.info("outbox: %d message(s) sent while stopping", flushed)
    for thread in started.watchers:
        thread.join(max(0.0, min(2.0, deadline - time.monotonic())))


def default_identity() -> str:
    """Who holds the Lease: the pod's name (its hostname in Kubernetes) and this process's id."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


def lease_namespace(settings: Settings) -> str:
    """The setting, else the namespace the pod runs in, else `k8sbot`."""
    if settings.leader_namespace:
        return settings.leader_namespace
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "k8sbot"
    except OSError:
        return "k8sbot"


class Leadership:
    """client-go's election loop on a `LeaseLock`: try every `retry_period` until the Lease is ours,
    then `on_started`; renew every `retry_period`; when no renewal succeeded for `renew_deadline`,
    `on_lost` and stop (the process then exits: see `serve`). On `stop`, the Lease is released."""

    def __init__(self, lock: LeaseLock, *, on_started: Callable[[], None], on_lost: Callable[[], None]) -> None:
        self.lock = lock
        self.on_started = on_started
        self.on_lost = on_lost
        self.leading = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, stop: threading.Event) -> Leadership:
        """The first attempt is made here, so a lone replica starts its background work before
        `start` returns; later attempts and the renewals run in a thread of their own."""
        try:
            acquired = self.lock.try_acquire_or_renew()
        except NotFound:
            log.warning(
                "leader election: namespace %r does not exist; leading without a Lease (one replica "
                "assumed: create the namespace or set K8SBOT_LEADER_NAMESPACE to elect one leader)",
                self.lock.namespace,
            )
            self.on_started()
            return self
        except Exception as e:  # the API server may be away for a while: the thread keeps trying
            log.warning("leader election: %s", e)
            acquired = False
        if acquired:
            self._lead()
        self._thread = threading.Thread(target=self._run, args=(stop, acquired), name="leader-election", daemon=True)
        self._thread.start()
        return self

    def _lead(self) -> None:
        log.info("leader election: leading as %s", self.lock.identity)
        self.leading.set()
        self.on_started()

    def _attempt(self) -> bool:
        try:
            return self.lock.try_acquire_or_renew()
        except Exception as e:  # the API server may be away for a while: keep trying, say so
            log.warning("leader election: %s", e)
            return False

    def _stopped(self, stop: threading.Event) -> bool:
        return stop.is_set() or self._halt.is_set()

    def _run(self, stop: threading.Event, leading: bool) -> None:
        timing = self.lock.timing
        while not leading:
            stop.wait(timing.retry_period)
            if self._stopped(stop):
                return
            leading = self._attempt()
            if leading:
                self._lead()
        last_renewal = time.monotonic()
        while not self._stopped(stop):
            stop.wait(timing.retry_period)
            if self._stopped(stop):
                return
            if self._attempt():
                last_renewal = time.monotonic()
            elif time.monotonic() - last_renewal > timing.renew_deadline:
                log.error(
                    "leader election: could not renew the Lease for %.0f s; no longer leading", timing.renew_deadline
                )
                self.leading.clear()
                self.on_lost()
                return

    def halt(self) -> None:
        """Stop renewing without releasing the Lease (a crash, as far as the other replicas can tell)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(5)

    def release(self) -> None:
        self.halt()
        if self.leading.is_set():
            try:
                self.lock.release()
            except Exception as e:  # stopping anyway; the Lease expires by itself
                log.warning("leader election: could not release the Lease: %s", e)
            self.leading.clear()


class BotRunner:
    """The running bot: Slack connection (socket or HTTP), health server, background workers."""

    def __init__(
        self,
        settings: Settings,
        *,
        http: bool,
        permissions: bool = True,
        kube: KubeClient | None = None,
        verbs: VerbRegistry | None = None,
        ping_interval: float = 10,
        background: bool = True,
        readiness: ReadinessPolicy | None = None,
        identity: str | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.permissions = permissions
        self.kube = kube
        self.verbs = verbs
        self.ping_interval = ping_interval
        self.run_background = background
        self.readiness_policy = readiness or ReadinessPolicy()
        self.stop_event = threading.Event()
        self.core: Core | None = None
        self.background: Background | None = None
        self.app: App | None = None
        self.socket_handler: SocketModeHandler | None = None
        self.server: HttpServer | None = None
        self.identity = identity or default_identity()
        self.executor = ThreadPoolExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="command")
        self.leadership: Leadership | None = None
        self.lost_leadership = False
        self.drained = True
        """False when `stop` gave up waiting for running commands."""
        self._started: Started | None = None
        self._background_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (Slack events at /slack/events in HTTP mode), with the bound port."""
        assert self.server is not None, "not started"
        host = self.settings.http_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server.port}"

    @property
    def commands(self) -> CommandServices:
        """The command path's services of the running bot (its home cluster's)."""
        assert self.core is not None, "not started"
        return self.core.commands

    def _slack_connected(self) -> bool:
        if self.socket_handler is None:
            return self.app is not None  # HTTP mode: auth.test passed when the app was built
        return bool(self.socket_handler.client.is_connected())

    def _cluster_check(self, kube: KubeClient) -> Callable[[], bool]:
        def reachable() -> bool:
            kube.request("GET", "/version", timeout=self.readiness_policy.check_timeout)
            return True

        return reachable

    def _record(self, name: str, reachable: bool, error: str | None) -> None:
        assert self.core is not None
        cluster = self.core.cluster(name)
        was = cluster.reachability.state().reachable
        cluster.reachability.record(reachable, error)
        if was is not False and not reachable:
            log.warning("cluster %s is unreachable: %s", name, error)
        elif was is False and reachable:
            log.info("cluster %s is reachable again", name)

    def start(self) -> BotRunner:
        settings = self.settings
        client = make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
        core = self.core = build_core(
            settings, permissions=self.permissions, slack=client, kube=self.kube, verbs=self.verbs
        )
        self.app = build_app(settings, core.router, client, core.renderer, self.executor)
        readiness = Readiness(
            slack_connected=self._slack_connected,
            clusters={c.name: self._cluster_check(c.kube) for c in core.clusters},
            record=self._record,
            policy=self.readiness_policy,
        )
        integrations = (
            IntegrationRoutes(token=settings.integration_token, receivers=build_receivers(core))
            if settings.integration_token
            else None
        )
        self.server = HttpServer(
            HttpApp(app=self.app if self.http else None, readiness=readiness, integrations=integrations),
            host=settings.http_host,
            port=settings.http_port,
        ).start()
        readiness.start(self.stop_event)
        log.info("serving %s on %s", "Slack events and health" if self.http else "health", self.url)
        if not self.http:
            self.socket_handler = SocketModeHandler(
                self.app, settings.slack_app_token, ping_interval=self.ping_interval
            )
            self.socket_handler.connect()
            log.info("connected to Slack in Socket Mode")
        if self.run_background:
            poster = core.poster or Poster(client)
            if settings.leader_election:
                lock = LeaseLock(
                    core.home.kube,  # the Lease lives in the first cluster, where the bot runs
                    namespace=lease_namespace(settings),
                    name=settings.leader_lease_name,
                    identity=self.identity,
                    timing=LeaseTiming(
                        duration=settings.leader_lease_seconds,
                        renew_deadline=settings.leader_renew_seconds,
                        retry_period=settings.leader_retry_seconds,
                    ),
                )
                self.leadership = Leadership(
                    lock, on_started=lambda: self._start_background(poster), on_lost=self._lost
                ).start(self.stop_event)
            else:
                self._start_background(poster)
        return self

    def _start_background(self, poster: Poster) -> None:
        assert self.core is not None
        with self._background_lock:
            if self.stop_event.is_set() or self.background is not None:
                return
            self.background = build_background(self.core, poster)
            self._started = start_background(self.background, self.stop_event)

    def _lost(self) -> None:
        """Another replica may lead now: stop everything; `serve` exits 1 and the pod is restarted."""
        self.lost_leadership = True
        self.stop_event.set()

    def halt_leadership(self) -> None:
        """Stop renewing the Lease and the background work without releasing the Lease: to another
        replica this looks like a crash (tests of the takeover)."""
        if self.leadership is not None:
            self.leadership.halt()
        self.stop_event.set()

    def stop(self) -> None:
        """Graceful: no new commands, in-flight ones finish, the outbox is flushed, the background work
        stops, the Lease is handed over and the store closed, within `shutdown_grace_seconds`."""
        deadline = time.monotonic() + self.settings.shutdown_grace_seconds
        if self.socket_handler is not None:  # Socket Mode: Slack sends new events to another connection
            self.socket_handler.close()
            self.socket_handler = None
        if self.server is not None:  # HTTP: stop accepting, let running requests end
            self.server.stop(timeout=max(1.0, deadline - time.monotonic()))
            self.server = None
        self._drain(deadline)
        self.stop_event.set()
        if self.leadership is not None:
            self.leadership.halt()
        with self._background_lock:
            if self.background is not None and self._started is not None:
                stop_background(self.background, self._started, deadline=deadline)
        if self.leadership is not None and not self.lost_leadership:
            self.leadership.release()
        if self.core is not None:
            self.core.database.close()
        log.info("stopped")

    def _drain(self, deadline: float) -> None:
        """Wait for the commands already taken (acked and running in the listener pool)."""
        waiter = threading.Thread(target=self.executor.shutdown, kwargs={"wait": True}, name="drain", daemon=True)
        waiter.start()
        waiter.join(max(0.0, deadline - time.monotonic()))
        self.drained = not waiter.is_alive()
        if not self.drained:
            log.warning("stopping with commands still running after %.0f s", self.settings.shutdown_grace_seconds)


def serve(settings: Settings, *, http: bool) -> None:
    """Run until SIGTERM or SIGINT."""
    runner = BotRunner(settings, http=http)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop_event.set()

    # Before `start`: /readyz answers while start-up still runs (the digest catch-up, the first Lease
    # attempt), and in a container the bot is process 1, whose signals without a handler the kernel
    # drops: a SIGTERM then would be lost until the kubelet's SIGKILL. (Only the main thread may set
    # handlers; `run` called from another thread, as some tests do, is stopped by its caller.)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    runner.start()
    runner.stop_event.wait()
    log.info("shutting down")
    runner.stop()
    code = 1 if runner.lost_leadership else 0  # 1: restarted by Kubernetes as a follower
    if not runner.drained:
        # Commands still running past the bound: the interpreter would join their threads at exit and
        # outlive the grace period (then SIGKILL). Everything else is closed: leave now.
        logging.shutdown()
        os._exit(code)
    if code:
        raise SystemExit(code)
