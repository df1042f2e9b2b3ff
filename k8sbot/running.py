"""`k8sbot run`: the Bolt app in Socket Mode (default) or HTTP mode, plus health endpoints."""

from __future__ import annotations

import logging
import signal
import threading
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
    register(app, services)
    return app


def serve(settings: Settings, services: Services, *, http: bool, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or threading.Event()
    app = build_app(settings, services)
    socket_handler: SocketModeHandler | None = None
    if not http:
        socket_handler = SocketModeHandler(app, settings.slack_app_token)

    def slack_connected() -> bool:
        if socket_handler is None:
            return True  # HTTP mode: auth.test passed when the app was built
        return bool(socket_handler.client.is_connected())

    def cluster_reachable() -> bool:
        services.kube.get("/version")
        return True

    readiness = Readiness(slack_connected=slack_connected, cluster_reachable=cluster_reachable)
    server = make_server(
        app=app if http else None, readiness=readiness, host=settings.http_host, port=settings.http_port
    )
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    host, port = server.server_address[:2]
    log.info("serving %s on http://%s:%s", "Slack events and health" if http else "health", host, port)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    if socket_handler is not None:
        socket_handler.connect()
        log.info("connected to Slack in Socket Mode")
    for starter in services.extras.get("background", []):
        starter(stop)
    stop.wait()
    log.info("shutting down")
    if socket_handler is not None:
        socket_handler.close()
    server.shutdown()
    server.server_close()
