"""`k8sbot run`: the Bolt app in Socket Mode (default) or HTTP mode, plus health endpoints.

`BotRunner` is the whole running bot as one object with `start()` / `stop()`, so tests and the local
demo exercise exactly the start-up path that `k8sbot run` uses. Start-up order is explicit: the
Slack client, then the core (stores, permissions, the command path), the app and the HTTP server,
the Slack connection, and last the background work: alerting subscribes to the change recorder
before the watchers start, so it sees their first listing.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError
from slack_sdk import WebClient

from bot.commands.context import CommandServices
from bot.commands.registry import VerbRegistry
from bot.digest.scheduling import start_scheduler
from bot.errors import SlackUnavailable
from bot.kube.client import KubeClient
from bot.settings import Settings
from bot.slack.blocks import AnswerRenderer
from bot.slack.client import Poster, make_web_client
from handlers import register
from handlers.deliveries import DeduplicateDeliveries, Deliveries
from handlers.serving import HttpApp, HttpServer, Readiness, ReadinessPolicy
from k8sbot.wiring import Background, Core, build_background, build_core

log = logging.getLogger(__name__)


def build_app(settings: Settings, services: CommandServices, client: WebClient, renderer: AnswerRenderer) -> App:
    """The Bolt app, pointed at the configured Slack API URL only. Calls auth.test once. `renderer`
    turns every answer into a Slack message (and clicked button values back into commands)."""
    try:
        app = App(
            client=client,
            signing_secret=settings.slack_signing_secret or "socket-mode-requests-are-not-signed",
            raise_error_for_unhandled_request=False,
        )
    except BoltError as e:
        raise SlackUnavailable(
            f"Slack rejected the bot token or is unreachable at {settings.slack_api_url}: {e}"
        ) from e
    register(app, services, renderer)
    app.use(DeduplicateDeliveries(Deliveries()))  # after Bolt's signature check, for both transports
    return app


def start_background(background: Background, stop: threading.Event) -> None:
    """Alerting first (it subscribes to the recorder), then the watchers, then the scheduler."""
    background.alerting.start(stop, synced=background.tracker.wait_synced)

    def watch() -> None:
        try:
            background.tracker.run(stop)
        except Exception:  # the watch loop is an edge: log loudly, keep the bot answering commands
            log.exception("the watchers stopped with an error")

    threading.Thread(target=watch, name="watchers", daemon=True).start()
    scheduler = start_scheduler(background.digest, prune=background.tracker.prune)

    def shutdown() -> None:
        stop.wait()
        scheduler.shutdown(wait=False)

    threading.Thread(target=shutdown, name="scheduler-stop", daemon=True).start()


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

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (Slack events at /slack/events in HTTP mode), with the bound port."""
        assert self.server is not None, "not started"
        host = self.settings.http_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server.port}"

    @property
    def commands(self) -> CommandServices:
        """The command path's services of the running bot."""
        assert self.core is not None, "not started"
        return self.core.commands

    def _slack_connected(self) -> bool:
        if self.socket_handler is None:
            return self.app is not None  # HTTP mode: auth.test passed when the app was built
        return bool(self.socket_handler.client.is_connected())

    def _cluster_reachable(self) -> bool:
        assert self.core is not None
        self.core.kube.request("GET", "/version", timeout=self.readiness_policy.check_timeout)
        return True

    def start(self) -> BotRunner:
        settings = self.settings
        client = make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
        core = self.core = build_core(
            settings, permissions=self.permissions, slack=client, kube=self.kube, verbs=self.verbs
        )
        self.app = build_app(settings, core.commands, client, core.renderer)
        readiness = Readiness(
            slack_connected=self._slack_connected,
            cluster_reachable=self._cluster_reachable,
            policy=self.readiness_policy,
        )
        self.server = HttpServer(
            HttpApp(app=self.app if self.http else None, readiness=readiness),
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
            self.background = build_background(core, poster)
            start_background(self.background, self.stop_event)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.socket_handler is not None:
            self.socket_handler.close()
            self.socket_handler = None
        if self.server is not None:
            self.server.stop()
            self.server = None
        log.info("stopped")


def serve(settings: Settings, *, http: bool) -> None:
    """Run until SIGTERM or SIGINT."""
    runner = BotRunner(settings, http=http).start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.stop_event.wait()
    log.info("shutting down")
    runner.stop()
