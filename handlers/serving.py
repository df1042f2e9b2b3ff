"""The bot's HTTP server: Slack's `POST /slack/events` (HTTP mode), `/healthz`, `/readyz`, `/metrics`.

Bolt's built-in server only serves /slack/events; Kubernetes probes and Prometheus need the same
process to answer on a few more paths, so this small threaded server feeds Slack's requests to
`App.dispatch` (which verifies the signature) and answers the rest itself.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App, BoltRequest

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000


class Readiness:
    """Ready = Slack connected and the cluster reachable. Cluster checks are cached a few seconds."""

    def __init__(self, *, slack_connected: Callable[[], bool], cluster_reachable: Callable[[], bool]) -> None:
        self._slack_connected = slack_connected
        self._cluster_reachable = cluster_reachable
        self._cluster_cache: tuple[float, bool] = (0.0, False)
        self._lock = threading.Lock()

    def check(self) -> dict[str, bool]:
        with self._lock:
            checked_at, ok = self._cluster_cache
            if time.monotonic() - checked_at > 5.0:
                try:
                    ok = self._cluster_reachable()
                except Exception:
                    ok = False
                self._cluster_cache = (time.monotonic(), ok)
        return {"slack": bool(self._slack_connected()), "cluster": ok}


def make_server(*, app: App | None, readiness: Readiness, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound to host:port. `app` None: Slack events are not served (Socket Mode)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            log.debug("http %s", format % args)

        def _reply(
            self, status: int, body: bytes, content_type: str, headers: dict[str, Sequence[str]] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, values in (headers or {}).items():
                if name.lower() in ("content-type", "content-length"):
                    continue
                for value in values:
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path == "/healthz":
                self._reply(200, b"ok\n", "text/plain")
            elif path == "/readyz":
                state = readiness.check()
                status = 200 if all(state.values()) else 503
                self._reply(status, json.dumps(state).encode() + b"\n", "application/json")
            elif path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            else:
                self._reply(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            parsed = urlparse(self.path)
            if app is None or parsed.path != "/slack/events":
                self._reply(404, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, b"too large\n", "text/plain")
                return
            raw = self.rfile.read(length).decode("utf-8", errors="replace")
            headers: dict[str, str | Sequence[str]] = {}
            for name, value in self.headers.items():
                existing = headers.get(name.lower())
                headers[name.lower()] = [*existing, value] if isinstance(existing, list) else [value]
            response = app.dispatch(BoltRequest(body=raw, query=parsed.query, headers=headers))
            self._reply(
                response.status,
                response.body.encode() if isinstance(response.body, str) else bytes(response.body),
                (response.headers.get("content-type") or ["text/plain"])[0],
                response.headers,
            )

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
