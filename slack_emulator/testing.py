"""Helpers for tests that run a Bolt app against the emulator (pytest-free).

Owns: a stdlib HTTP server that feeds requests to ``App.dispatch`` (HTTP mode), and
an environment scrubber that removes proxy and Slack variables the SDK would pick up.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt.request import BoltRequest

SCRUBBED_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
)


@contextmanager
def clean_slack_env() -> Iterator[None]:
    """Temporarily unset proxy variables (the builtin socket client ignores NO_PROXY) and SLACK_*."""
    saved = {k: os.environ.pop(k) for k in SCRUBBED_ENV if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class BoltHttpServer:
    """Serve a ``slack_bolt.App`` on ``http://127.0.0.1:PORT/slack/events`` via ``App.dispatch``."""

    def __init__(self, app: Any, path: str = "/slack/events") -> None:
        bolt_app, route = app, path

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                if self.path.split("?")[0] != route:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers: dict[str, str | Sequence[str]] = {k.lower(): v for k, v in self.headers.items()}
                resp = bolt_app.dispatch(BoltRequest(body=body, headers=headers))
                data = (resp.body or "").encode("utf-8")
                self.send_response(resp.status)
                for name, values in resp.headers.items():
                    if name.lower() == "content-length":
                        continue
                    for value in values if isinstance(values, list) else [values]:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> BoltHttpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
