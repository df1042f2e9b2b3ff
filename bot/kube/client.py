"""A thin JSON client for the Kubernetes API, with impersonation and error translation.

Why not the generated typed API classes: they deserialise every object into Python models, which
costs seconds for a namespace of a few hundred pods, and the analyzers want the API's JSON anyway.
We keep the official client for what it does well (kubeconfig, in-cluster config, exec plugins,
TLS) and send requests through its connection pool, getting plain dicts back.

Each impersonated subject gets a client of its own (`as_subject`): impersonation headers are never
set on a shared client.

Reads are retried as client-go retries them: a GET (a list page, a log, the GET that opens a watch)
answered 429 (API Priority and Fairness, "storage is (re)initializing") or 500/502/503/504, or whose
connection could not be made or was dropped, is sent again after the server's `Retry-After` seconds,
else after a jittered exponential back-off (0.25 s, 0.5 s, 1 s, ...): at most `READ_ATTEMPTS` tries,
and no wait that would end past `RETRY_BUDGET` seconds since the first (a longer Retry-After is not
waited for). Then the error is a ClusterUnavailable saying so. A read that timed out is not retried
(asking a slow server again only doubles the wait).

Writes (POST, PUT, PATCH, DELETE) are never retried. A 429 from API Priority and Fairness comes before
the request is processed, but a 429 or 5xx can also come after it was (an admission webhook, an
aggregated API server, a proxy in between), and a dropped connection says nothing about what the
server did: the client cannot tell these apart, and repeating a write that happened would apply it
twice. The error goes to the person instead, who can confirm the action again.

`kubernetes` and `urllib3` are imported when a client is made or a request is sent, not with this
module: every verb imports it (for its types), and `k8sbot --help` or `k8sbot ask help` must not
pay the Kubernetes client's import time.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from bot.errors import ClusterUnavailable, Conflict, K8sBotError, NotFound, PermissionDenied
from bot.model import KubeObject

if TYPE_CHECKING:
    import urllib3
    from kubernetes import client as k8s_client
    from urllib3 import HTTPHeaderDict

log = logging.getLogger(__name__)


class Gone(K8sBotError):
    """410: the resourceVersion asked for is too old; a watcher must list again."""


class InvalidRequest(K8sBotError):
    """400/422: the API server rejected the request as invalid; the message says why."""


READ_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
READ_ATTEMPTS = 4
"""Tries of one read in all, the first included."""
RETRY_BUDGET = 10.0
"""Seconds one read may take in all, tries and waits, before a retry is given up: the person is waiting."""
BACKOFF_BASE = 0.25
BACKOFF_CAP = 2.0


class KubeClient:
    """Sends JSON requests to one API server as one identity."""

    def __init__(
        self,
        configuration: k8s_client.Configuration,
        *,
        impersonate_user: str | None = None,
        impersonate_groups: tuple[str, ...] = (),
    ) -> None:
        from kubernetes import client as k8s_client  # noqa: PLC0415 - lazy: CLI start-up

        self.configuration = configuration
        self.impersonate_user = impersonate_user
        self.impersonate_groups = impersonate_groups
        self._api = k8s_client.ApiClient(configuration)
        self.calls = 0  # requests sent, for benchmarks and for tests that bound API calls

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, *, context: str | None = None) -> KubeClient:
        """From a kubeconfig file (None: $KUBECONFIG or ~/.kube/config), else in-cluster config."""
        from kubernetes import client as k8s_client  # noqa: PLC0415 - lazy: CLI start-up
        from kubernetes import config as k8s_config  # noqa: PLC0415 - lazy: CLI start-up

        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
        except (k8s_config.ConfigException, OSError, TypeError) as kube_error:
            if path:
                raise ClusterUnavailable(f"cannot load kubeconfig {path}: {kube_error}") from kube_error
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except k8s_config.ConfigException as in_cluster_error:
                raise ClusterUnavailable(
                    "no Kubernetes configuration: set KUBECONFIG, or run inside a cluster"
                ) from in_cluster_error
        return cls(configuration)

    def as_subject(self, user: str, groups: tuple[str, ...] = ()) -> KubeClient:
        """A new client, with its own connection pool, that impersonates `user` and `groups`."""
        return KubeClient(self.configuration, impersonate_user=user, impersonate_groups=tuple(groups))

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    # -- requests -------------------------------------------------------------------------------

    def _headers(self, content_type: str | None) -> HTTPHeaderDict:
        from urllib3 import HTTPHeaderDict  # noqa: PLC0415 - lazy: CLI start-up

        headers = HTTPHeaderDict({"Accept": "application/json", "User-Agent": "k8sbot"})
        if content_type:
            headers["Content-Type"] = content_type
        # The client library's own credentials: a kubeconfig or in-cluster ServiceAccount token is kept
        # under "BearerToken" (and refreshed by its hook when the projected token rotates).
        settings = cast(dict[str, dict[str, Any]], self.configuration.auth_settings())
        for auth in settings.values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[str(auth["key"])] = str(auth["value"])
        if self.impersonate_user:
            headers["Impersonate-User"] = self.impersonate_user
            for group in self.impersonate_groups:
                headers.add("Impersonate-Group", group)  # one header line per group, as the API expects
        return headers

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = 15.0,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        import urllib3  # noqa: PLC0415 - lazy: CLI start-up

        url = self.server.rstrip("/") + path
        if query:
            url += "?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        payload = None if body is None else json.dumps(body).encode()
        if payload is not None and content_type is None:
            content_type = "application/json"
        may_retry = method in READ_METHODS  # writes are never repeated: see the module docstring
        started = time.monotonic()
        for attempt in range(1, READ_ATTEMPTS + 1):
            last = not may_retry or attempt == READ_ATTEMPTS
            self.calls += 1
            try:
                response = self._api.rest_client.pool_manager.request(
                    method,
                    url,
                    body=payload,
                    headers=self._headers(content_type),
                    timeout=urllib3.Timeout(connect=5.0, read=timeout),
                    preload_content=not stream,
                    retries=False,
                )
            except urllib3.exceptions.HTTPError as e:
                delay = _backoff(attempt)
                if last or not _connection_failed(e) or time.monotonic() - started + delay > RETRY_BUDGET:
                    tries = f" ({attempt} attempts)" if attempt > 1 else ""
                    raise ClusterUnavailable(f"cannot reach the Kubernetes API at {self.server}{tries}: {e}") from e
                log.info("kubernetes %s %s: %s; retrying in %.1fs (attempt %d)", method, path, e, delay, attempt)
            else:
                if response.status < 400:
                    return response
                data = response.data if not stream else response.read()
                response.release_conn()
                error = translate_status(response.status, data, method=method, path=path)
                if not may_retry or response.status not in RETRY_STATUSES:
                    raise error
                asked = _retry_after(response.headers.get("Retry-After"))
                delay = asked if asked is not None else _backoff(attempt)
                spent = time.monotonic() - started
                if asked is not None and spent + asked > RETRY_BUDGET:
                    raise ClusterUnavailable(
                        f"{error} (it asked to retry after {asked:g}s, longer than the bot waits)"
                    ) from error
                if last or spent + delay > RETRY_BUDGET:
                    raise ClusterUnavailable(f"{error} (gave up after {attempt} attempts)") from error
                log.info(
                    "kubernetes %s %s answered %s; retrying in %.1fs (attempt %d)",
                    method,
                    path,
                    response.status,
                    delay,
                    attempt,
                )
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float = 15.0,
    ) -> KubeObject:
        response = self._send(method, path, query=query, body=body, content_type=content_type, timeout=timeout)
        if not response.data:
            return {}
        result: KubeObject = json.loads(response.data)
        return result

    def get(self, path: str, **query: Any) -> KubeObject:
        return self.request("GET", path, query=query or None)

    def list(self, path: str, **query: Any) -> list[KubeObject]:
        """All items of a list, following `continue` tokens."""
        items: list[KubeObject] = []
        params = dict(query)
        while True:
            page = self.request("GET", path, query=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params["continue"] = token

    def text(self, path: str, **query: Any) -> str:
        """A plain-text endpoint, such as pods/log."""
        response = self._send("GET", path, query=query or None)
        return bytes(response.data).decode("utf-8", errors="replace")

    def open_stream(self, path: str, *, query: dict[str, Any], timeout: float) -> urllib3.BaseHTTPResponse:
        """A streaming GET (a watch). The caller reads it with `iter_lines` and must `release_conn()`;
        closing it from another thread (`shutdown()`) ends a blocked read at once."""
        return self._send("GET", path, query=query, timeout=timeout, stream=True)


def _connection_failed(error: Exception) -> bool:
    """The request did not get an answer: no connection, or the connection dropped. A read timeout is
    not one of these (the server is slow, not gone)."""
    import urllib3  # noqa: PLC0415 - lazy: CLI start-up

    exceptions = urllib3.exceptions
    if isinstance(error, exceptions.ReadTimeoutError):
        return False
    return isinstance(error, exceptions.NewConnectionError | exceptions.ConnectTimeoutError | exceptions.ProtocolError)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the API server sends an integer); None when absent or a date."""
    if value is None:
        return None
    try:
        return max(0.0, float(int(value.strip())))
    except ValueError:
        return None


def _backoff(attempt: int) -> float:
    """Exponential back-off with jitter: half to all of 0.25 s, 0.5 s, 1 s, ... (at most 2 s)."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def iter_lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """The non-empty lines of a streaming response (watch events are one JSON object per line)."""
    buffer = b""
    for chunk in response.stream(64 * 1024, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def translate_status(status: int, data: bytes, *, method: str, path: str) -> K8sBotError:
    """Turn an API error response into one of our errors, with the API's own message."""
    message = ""
    try:
        parsed = json.loads(data)
        message = str(parsed.get("message") or "")
    except (ValueError, AttributeError):
        message = data[:256].decode("utf-8", errors="replace")  # bounded: bodies may echo request data
    detail = message or f"HTTP {status}"
    if status == 404:
        return NotFound(detail)
    if status in (401, 403):
        return PermissionDenied(f"the cluster refused: {detail}")
    if status == 409:
        return Conflict(detail)
    if status == 410:
        return Gone(detail)
    if status in (400, 422):
        return InvalidRequest(detail)
    log.warning("kubernetes %s %s answered %s: %s", method, path, status, detail)
    return ClusterUnavailable(f"the Kubernetes API answered {status}: {detail}")


class UnconfiguredKubeClient(KubeClient):
    """Stands in when no cluster configuration could be loaded, so verbs that need no cluster
    (help) still work and every other verb answers with the configuration problem."""

    def __init__(self, reason: str) -> None:
        from kubernetes import client as k8s_client  # noqa: PLC0415 - lazy: CLI start-up

        super().__init__(k8s_client.Configuration())
        self.reason = reason

    def _send(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        raise ClusterUnavailable(self.reason)

    def as_subject(self, user: str, groups: tuple[str, ...] = ()) -> KubeClient:
        return self
