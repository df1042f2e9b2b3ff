"""The bot's HTTP server: Slack's `POST /slack/events` (HTTP mode), `/healthz`, `/readyz`, `/metrics`,
and the integration webhooks under `/integrations/` (handlers/integrations.py) in both modes.

The server is waitress (Pylons project): a maintained, pure-Python production WSGI server with no
dependencies of its own. Its HTTP parsing is hardened (strict `Content-Length` and chunked framing,
header and body limits, request-smuggling fixes), its I/O is asynchronous so a slow or silent client
holds no worker thread, and it can be embedded: `HttpServer` binds the socket itself (so port 0 gives
the real port at once) and runs waitress's loop in a thread it can stop. Malformed framing gets
waitress's 400, an oversized body its 413 (and the connection is closed, as it says); the WSGI
application below answers everything else: 404 for unknown paths, 405 with `Allow` for wrong methods,
400 for a Slack body its content type does not describe, and Slack's requests go to Bolt's
`App.dispatch`, which verifies the signature (retries and replays are stopped after that, by
handlers/deliveries.py, for both transports).

cheroot (CherryPy's server) would serve equally well but is a thread per connection; uvicorn would
need an ASGI app and an event loop beside Bolt's synchronous `App`.

Readiness is checked in the background (`Readiness.start`): `/readyz` reports the last result and its
age and never waits for the cluster.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App, BoltRequest
from waitress import wasyncore
from waitress.server import create_server

from handlers.integrations import Answer, IntegrationRoutes

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000
"""The largest request body accepted (Slack's payloads are far smaller); larger gets 413."""
MAX_HEADERS = 65_536
"""The largest request head (request line and headers) accepted; larger gets 431."""
THREADS = 8
"""Worker threads. `App.dispatch` returns once a listener acks, so few are needed; waiting on slow
clients takes none."""
IDLE_SECONDS = 60
"""An idle keep-alive connection is closed after this long."""


@dataclass(frozen=True)
class ReadinessPolicy:
    """How often the cluster is checked, how long one check may take, and how old a good one may be."""

    interval: float = 5.0
    check_timeout: float = 3.0
    max_age: float = 30.0


ClusterCheck = Callable[[], bool]
"""Asks one cluster's API server (True, or an exception saying why not)."""
Record = Callable[[str, bool, "str | None"], None]
"""Told each check's result: the cluster's name, reachable, and why not."""


class Readiness:
    """Ready = Slack connected and a recent check of at least one cluster succeeded.

    Each cluster is checked by a background thread of its own, one check at a time, so a cluster that
    hangs never delays the others: a check that hangs makes its cluster not ready once it has run
    longer than `check_timeout`, and a good result counts for `max_age` seconds. `state()` never
    touches a cluster, so `/readyz` answers at once. `record` hears every result (the commands'
    "prod-eu is unreachable since 10:42").
    """

    def __init__(
        self,
        *,
        slack_connected: Callable[[], bool],
        cluster_reachable: ClusterCheck | None = None,
        clusters: dict[str, ClusterCheck] | None = None,
        record: Record | None = None,
        policy: ReadinessPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slack_connected = slack_connected
        checks = dict(clusters or {})
        if cluster_reachable is not None:
            checks.setdefault("cluster", cluster_reachable)
        if not checks:
            raise ValueError("readiness needs at least one cluster check")
        self._checks = checks
        self._record = record
        self.policy = policy or ReadinessPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, bool, str | None]] = {}  # name → (finished at, result, error)
        self._running_since: dict[str, float] = {}

    def start(self, stop: threading.Event) -> None:
        """Check every cluster now and then every `interval` seconds, until `stop` is set."""

        def run(name: str) -> None:
            while not stop.is_set():
                self.check_once(name)
                stop.wait(self.policy.interval)

        for name in self._checks:
            threading.Thread(target=run, args=(name,), name=f"readiness-{name}", daemon=True).start()

    def check_once(self, name: str | None = None) -> bool:
        """Check one cluster (None: each, one after the other); whether all that were checked answered."""
        if name is None:
            return all([self.check_once(n) for n in self._checks])
        with self._lock:
            self._running_since[name] = self._clock()
        error: str | None = None
        try:
            ok = bool(self._checks[name]())
        except Exception as e:  # any failure means not ready; say why at debug level only
            log.debug("readiness: the check of cluster %s failed: %s", name, e)
            ok, error = False, str(e) or type(e).__name__
        now = self._clock()
        with self._lock:
            self._last[name] = (now, ok, error)
            self._running_since.pop(name, None)
        if self._record is not None:
            self._record(name, ok, error)
        return ok

    def _cluster_state(self, name: str, now: float) -> tuple[bool, float | None, str | None]:
        last, running_since = self._last.get(name), self._running_since.get(name)
        age = None if last is None else now - last[0]
        hung = running_since is not None and now - running_since > self.policy.check_timeout
        ok = last is not None and last[1] and now - last[0] <= self.policy.max_age and not hung
        error = f"the check has not answered for {now - (running_since or now):.0f} s" if hung else None
        return bool(ok), age, error or (last[2] if last is not None else None)

    def state(self) -> dict[str, Any]:
        """`{"slack": bool, "cluster": bool, "cluster_checked_seconds_ago": float | None, "clusters": {name:
        {"reachable", "checked_seconds_ago", "error"}}}`; `cluster`: at least one cluster is reachable."""
        now = self._clock()
        with self._lock:
            clusters = {name: self._cluster_state(name, now) for name in self._checks}
        try:
            slack = bool(self._slack_connected())
        except Exception:
            slack = False
        ages = [age for _, age, _ in clusters.values() if age is not None]
        return {
            "slack": slack,
            "cluster": any(ok for ok, _, _ in clusters.values()),
            "cluster_checked_seconds_ago": round(min(ages), 1) if ages else None,
            "clusters": {
                name: {
                    "reachable": ok,
                    "checked_seconds_ago": None if age is None else round(age, 1),
                    "error": None if ok else error,
                }
                for name, (ok, age, error) in clusters.items()
            },
        }


# -- the WSGI application ------------------------------------------------------------------------

SLACK_CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json")


def _slack_body_problem(raw: str, content_type: str) -> str | None:
    """Why Bolt could not read this body as the content type says, or None. Bolt would raise (and the
    request go unanswered) on a form body labelled JSON, a JSON value that is not an object, or a
    `payload` field that is not a JSON object."""
    if content_type == "application/json":
        try:
            value = json.loads(raw)
        except ValueError:
            return "the body is not JSON"
        return None if isinstance(value, dict) else "the JSON body is not an object"
    payload = parse_qs(raw).get("payload")
    if payload is None:
        return None
    try:
        value = json.loads(payload[0])
    except ValueError:
        return "the payload field is not JSON"
    return None if isinstance(value, dict) else "the payload field is not a JSON object"


class HttpApp:
    """The WSGI application: routes, methods, and Slack's requests handed to Bolt."""

    def __init__(self, *, app: App | None, readiness: Readiness, integrations: IntegrationRoutes | None = None) -> None:
        self.app = app
        self.readiness = readiness
        self.routes: dict[str, tuple[str, Callable[[WSGIEnvironment], Answer]]] = {
            "/healthz": ("GET", self._healthz),
            "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", self._metrics),
        }
        if app is not None:
            self.routes["/slack/events"] = ("POST", self._slack)
        if integrations is not None:
            self.routes.update(integrations.routes())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "/")
        method = str(environ.get("REQUEST_METHOD") or "")
        route = self.routes.get(path)
        headers: dict[str, str] = {}
        if route is None:
            status, body, content_type = 404, b"not found\n", "text/plain"
        elif method != route[0]:
            status, body, content_type = 405, b"method not allowed\n", "text/plain"
            headers["Allow"] = route[0]
        else:
            try:
                status, body, extra = route[1](environ)
            except Exception:
                log.exception("http: %s %s failed", method, path)
                status, body, extra = 500, b"internal error\n", {}
            content_type = extra.pop("content-type", "text/plain")
            headers.update(extra)
        start_response(
            f"{status} {_REASONS.get(status, 'Status')}",
            [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers.items()],
        )
        return [body]

    def _healthz(self, environ: WSGIEnvironment) -> Answer:
        return 200, b"ok\n", {}

    def _readyz(self, environ: WSGIEnvironment) -> Answer:
        state = self.readiness.state()
        status = 200 if state["slack"] and state["cluster"] else 503
        return status, json.dumps(state).encode() + b"\n", {"content-type": "application/json"}

    def _metrics(self, environ: WSGIEnvironment) -> Answer:
        return 200, generate_latest(), {"content-type": CONTENT_TYPE_LATEST}

    def _slack(self, environ: WSGIEnvironment) -> Answer:
        assert self.app is not None
        length = int(environ.get("CONTENT_LENGTH") or 0)  # waitress has validated it (and the limit)
        try:
            raw = environ["wsgi.input"].read(length).decode("utf-8")
        except UnicodeDecodeError:
            return 400, b"the body is not UTF-8\n", {}
        content_type = str(environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        if content_type not in SLACK_CONTENT_TYPES:
            return 415, b"Slack sends application/x-www-form-urlencoded or application/json\n", {}
        problem = _slack_body_problem(raw, content_type)
        if problem is not None:
            log.info("http: rejected a Slack request: %s", problem)
            return 400, problem.encode() + b"\n", {}
        request = BoltRequest(body=raw, query=str(environ.get("QUERY_STRING") or ""), headers=_headers(environ))
        response = self.app.dispatch(request)
        body = response.body.encode() if isinstance(response.body, str) else bytes(response.body)
        extra = {
            name.lower(): ", ".join(values)
            for name, values in response.headers.items()
            if name.lower() not in ("content-length", "connection", "transfer-encoding")
        }
        return response.status, body, extra


def _headers(environ: WSGIEnvironment) -> dict[str, str | Sequence[str]]:
    """Request headers by lower-case name, as Bolt reads them."""
    headers: dict[str, str | Sequence[str]] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        headers[name] = [str(value)]
    return headers


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    409: "Conflict",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# -- the server ----------------------------------------------------------------------------------


class HttpServer:
    """waitress serving `HttpApp` on host:port, in a thread of its own, until `stop()`."""

    def __init__(self, application: HttpApp, *, host: str, port: int) -> None:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        self._socket = socket.create_server((host, port), family=family)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._map: dict[int, Any] = {}
        self._server = create_server(
            application,
            map=self._map,
            sockets=[self._socket],
            threads=THREADS,
            max_request_body_size=MAX_BODY,
            max_request_header_size=MAX_HEADERS,
            channel_timeout=IDLE_SECONDS,
            ident="k8sbot",
            asyncore_use_poll=True,
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HttpServer:
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=0.5, map=self._map, use_poll=True, count=1)
        finally:  # in the loop's own thread: finish the workers, then close every socket
            self._server.task_dispatcher.shutdown(timeout=5)
            wasyncore.close_all(self._map, ignore_all=True)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, let running requests finish (up to 5 s), close every connection."""
        self._stopping.set()
        if self._thread is None:
            wasyncore.close_all(self._map, ignore_all=True)
            self._server.task_dispatcher.shutdown(timeout=0)
            return
        with contextlib.suppress(OSError):  # the loop may have closed its trigger already
            self._server.pull_trigger()  # wake the loop
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("http: the server thread did not stop within %.0f s", timeout)
