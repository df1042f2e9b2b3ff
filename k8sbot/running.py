"""`k8sbot run`: the Bolt app in Socket Mode (default) or HTTP mode, plus health endpoints.

`BotRunner` is the whole running bot as one object with `start()` / `stop()`, so tests and the local
demo exercise exactly the start-up path that `k8sbot run` uses.
"""

from __future__ import annotations

import logging
import signal
import threading
from http.server import ThreadingHTTPServer
from types import FrameType

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.error import BoltError

from bot.context import Services
from bot.errors import SlackUnavailable
from bot.settings import Settings
from bot.slack.client import make_web_client
from handlers import register
from handlers.serving import Readiness, make_server
from k8sbot.wiring import attach_slack

log = logging.getLogger(__name__)


def build_app(settings: Settings, services: Services) -> App:
    """The Bolt app, pointed at the configured Slack API URL only. Calls auth.test once."""
    client = make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
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
    attach_slack(services, settings, client)
    register(app, services)
    return app


class BotRunner:
    """The running bot: Slack connection (socket or HTTP), health server, background workers."""

    def __init__(
        self,
        settings: Settings,
        services: Services,
        *,
        http: bool,
        ping_interval: float = 10,
        background: bool = True,
    ) -> None:
        self.settings = settings
        self.services = services
        self.http = http
        self.ping_interval = ping_interval
        self.background = background
        self.stop_event = threading.Event()
        self.app: App | None = None
        self.socket_handler: SocketModeHandler | None = None
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP server (Slack events at /slack/events in HTTP mode)."""
        assert self.server is not None, "not started"
        return f"http://{self.settings.http_host}:{self.server.server_address[1]}"

    def _slack_connected(self) -> bool:
        if self.socket_handler is None:
            return self.app is not None  # HTTP mode: auth.test passed when the app was built
        return bool(self.socket_handler.client.is_connected())

    def _cluster_reachable(self) -> bool:
        self.services.kube.get("/version")
        return True

    def start(self) -> BotRunner:
        self.app = build_app(self.settings, self.services)
        readiness = Readiness(slack_connected=self._slack_connected, cluster_reachable=self._cluster_reachable)
        self.server = make_server(
            app=self.app if self.http else None,
            readiness=readiness,
            host=self.settings.http_host,
            port=self.settings.http_port,
        )
        threading.Thread(target=self.server.serve_forever, name="http", daemon=True).start()
        log.info("serving %s on %s", "Slack events and health" if self.http else "health", self.url)
        if not self.http:
            self.socket_handler = SocketModeHandler(
                self.app, self.settings.slack_app_token, ping_interval=self.ping_interval
            )
            self.socket_handler.connect()
            log.info("connected to Slack in Socket Mode")
        if self.background:
            from k8sbot.background import starters

            poster = self.services.extras["poster"]  # set by attach_slack in build_app
            for starter in starters(self.services, self.settings, poster):
                starter(self.stop_event)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.socket_handler is not None:
            self.socket_handler.close()
            self.socket_handler = None
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        log.info("stopped")


def serve(settings: Settings, services: Services, *, http: bool) -> None:
    """Run until SIGTERM or SIGINT."""
    runner = BotRunner(settings, services, http=http).start()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        runner.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.stop_event.wait()
    log.info("shutting down")
    runner.stop()
