"""Kubernetes 429 and 5xx: reads are retried with back-off as client-go does, writes never blindly.

The API server is the real one. In front of it sits a fault injector: a small plain-HTTP proxy on
127.0.0.1 that forwards to the kubeconfig's server with its credentials, and answers chosen requests
itself first (429 with Retry-After, as API Priority and Fairness or "storage is (re)initializing"
does; 5xx; a dropped connection), or forwards a write and then hides the server's answer behind a
429, the case in which a retry would apply the change twice. The bot's client talks to the proxy.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import re
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kube_helpers import Cluster, get, resource_path
from kubernetes import client as k8s_client
from scenarios import deploy_checkout

from bot.commands.dispatch import execute
from bot.errors import ClusterUnavailable, K8sBotError
from bot.kube.client import READ_ATTEMPTS, KubeClient, iter_lines
from bot.settings import Settings
from k8sbot.wiring import build_core

pytestmark = pytest.mark.hostile

LIVENESS = 30.0
"""A bound that only a hang exceeds: retries are bounded to about ten seconds in all."""


# -- the fault injector ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What the proxy does instead of (or after) forwarding one request."""

    status: int = 429
    retry_after: str | None = "1"
    forward_first: bool = False
    """Forward the request to the server, then answer `status` instead of the server's answer."""
    drop: bool = False
    """Close the connection without answering."""


Rule = Callable[[str, str], Fault | None]
"""(method, path) -> the fault for this request, or None to pass it through."""


@dataclass
class Seen:
    method: str
    path: str
    at: float
    fault: Fault | None


@dataclass
class Upstream:
    host: str
    port: int
    context: ssl.SSLContext
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_kubeconfig(cls, path: str, scratch: Path) -> Upstream:
        config = yaml.safe_load(Path(path).read_text())
        context_name = config.get("current-context")
        ctx = next((c["context"] for c in config.get("contexts", []) if c["name"] == context_name), None)
        ctx = ctx or config["contexts"][0]["context"]
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])

        def file_of(section: dict[str, Any], key: str) -> str | None:
            if section.get(f"{key}-data"):
                target = scratch / key
                target.write_bytes(base64.b64decode(section[f"{key}-data"]))
                return str(target)
            value = section.get(key)
            return str(Path(path).parent / value) if value else None

        server = urlsplit(cluster["server"])
        context = ssl.create_default_context(cafile=file_of(cluster, "certificate-authority"))
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        headers = {}
        cert, key = file_of(user, "client-certificate"), file_of(user, "client-key")
        if cert and key:
            context.load_cert_chain(cert, key)
        elif user.get("token"):
            headers["Authorization"] = f"Bearer {user['token']}"
        else:
            pytest.skip("the fault proxy needs a kubeconfig with a client certificate or a token")
        return cls(server.hostname or "127.0.0.1", server.port or 443, context, headers)


class FaultProxy:
    """Plain HTTP on 127.0.0.1 → the real API server over TLS, with faults where `rule` says."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.rule: Rule = lambda method, path: None
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def client(self) -> KubeClient:
        configuration = k8s_client.Configuration()
        configuration.host = self.url
        return KubeClient(configuration)

    def requests(self, method: str, pattern: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and re.search(pattern, s.path)]

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else None
        fault = self.rule(request.command, request.path)
        with self._lock:
            self.seen.append(Seen(request.command, request.path, time.monotonic(), fault))
        if fault is not None and fault.drop:
            request.close_connection = True
            return
        if fault is not None and not fault.forward_first:
            self._answer_fault(request, fault)
            return
        status, headers, data = self._forward(request, body)
        if fault is not None:
            self._answer_fault(request, fault)
            return
        request.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes]:
        upstream = self.upstream
        connection = http.client.HTTPSConnection(upstream.host, upstream.port, context=upstream.context, timeout=60)
        try:
            skip = {"host", "connection", "content-length", "accept-encoding"}
            headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
            connection.request(request.command, request.path, body=body, headers={**headers, **upstream.headers})
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    @staticmethod
    def _answer_fault(request: BaseHTTPRequestHandler, fault: Fault) -> None:
        reason = "storage is (re)initializing" if fault.status == 429 else "injected fault"
        data = json.dumps(
            {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": reason, "code": fault.status}
        ).encode()
        request.send_response(fault.status)
        request.send_header("Content-Type", "application/json")
        if fault.retry_after is not None:
            request.send_header("Retry-After", fault.retry_after)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(cluster: Cluster) -> Iterator[FaultProxy]:
    with tempfile.TemporaryDirectory() as scratch:
        running = FaultProxy(Upstream.from_kubeconfig(cluster.kubeconfig, Path(scratch)))
        try:
            yield running
        finally:
            running.close()


def first(count: int, fault: Fault, *, method: str = "GET", pattern: str = "") -> Rule:
    """The first `count` requests of `method` whose path matches `pattern` get `fault`."""
    remaining = [count]
    lock = threading.Lock()

    def rule(request_method: str, path: str) -> Fault | None:
        if request_method != method or not re.search(pattern, path):
            return None
        with lock:
            if remaining[0] <= 0:
                return None
            remaining[0] -= 1
            return fault

    return rule


def within(call: Callable[[], Any], seconds: float = LIVENESS) -> Any:
    """call() in a thread: its result, or its exception raised here; fails if it hangs."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as e:  # re-raised below
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds:g}s: retries are not bounded"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def config_map(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


# -- reads are retried ----------------------------------------------------------------------------------


def test_a_get_answered_429_twice_with_retry_after_succeeds_on_the_third_try(
    proxy: FaultProxy, kube: KubeClient, namespace: str
) -> None:
    kube.request("POST", resource_path("v1", "ConfigMap", namespace), body=config_map(namespace, "settings"))
    path = resource_path("v1", "ConfigMap", namespace, "settings")
    proxy.rule = first(2, Fault(429, retry_after="1"), pattern=f"^{re.escape(path)}$")

    obj = within(lambda: proxy.client().get(path))

    assert obj["metadata"]["name"] == "settings"
    seen = proxy.requests("GET", f"^{re.escape(path)}$")
    assert [s.fault is not None for s in seen] == [True, True, False]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(seen)]
    assert all(gap >= 0.9 for gap in gaps), f"Retry-After: 1 was not honoured: {gaps}"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_list_answered_with_a_server_error_is_retried(
    status: int, proxy: FaultProxy, kube: KubeClient, namespace: str
) -> None:
    kube.request("POST", resource_path("v1", "ConfigMap", namespace), body=config_map(namespace, "one"))
    path = resource_path("v1", "ConfigMap", namespace)
    proxy.rule = first(1, Fault(status, retry_after=None), pattern=f"^{re.escape(path)}")

    items = within(lambda: proxy.client().list(path))

    assert "one" in [item["metadata"]["name"] for item in items]
    assert len(proxy.requests("GET", f"^{re.escape(path)}")) == 2


def test_a_dropped_connection_on_a_read_is_retried(proxy: FaultProxy, namespace: str) -> None:
    path = resource_path("v1", "Namespace", None, namespace)
    proxy.rule = first(1, Fault(drop=True), pattern=f"^{re.escape(path)}$")

    obj = within(lambda: proxy.client().get(path))

    assert obj["metadata"]["name"] == namespace
    assert len(proxy.requests("GET", f"^{re.escape(path)}$")) == 2


def test_a_watch_answered_429_is_established_on_retry(proxy: FaultProxy, kube: KubeClient, namespace: str) -> None:
    path = resource_path("v1", "ConfigMap", namespace)
    kube.request("POST", path, body=config_map(namespace, "watched"))
    proxy.rule = first(2, Fault(429, retry_after="1"), pattern="watch=")

    def watch() -> list[dict[str, Any]]:
        response = proxy.client().open_stream(path, query={"watch": "true", "timeoutSeconds": 1}, timeout=10)
        try:
            return [json.loads(line) for line in iter_lines(response)]
        finally:
            response.release_conn()

    events = within(watch)
    assert any(e["object"]["metadata"]["name"] == "watched" for e in events)
    assert len(proxy.requests("GET", "watch=")) == 3


def test_a_read_verb_answers_through_429s(proxy: FaultProxy, kube: KubeClient, namespace: str, tmp_path: Path) -> None:
    """Through the command path: `status` fetches the namespace in parallel; the first three GETs of
    the namespace's objects are told to come back later, and the answer still comes."""
    deploy_checkout(kube, namespace)
    proxy.rule = first(3, Fault(429, retry_after="1"), pattern=f"/namespaces/{namespace}/")
    core = build_core(Settings(db=str(tmp_path / "bot.db")), permissions=False, kube=proxy.client())

    answer = within(lambda: execute(core.commands, text=f"status -n {namespace}"))

    assert answer.ok, answer.title
    assert (answer.data["workloads"], answer.data["healthy"], answer.data["errors"]) == (1, 1, [])
    assert len([s for s in proxy.seen if s.fault is not None]) == 3
    core.database.close()


# -- retries are bounded ----------------------------------------------------------------------------------


def test_a_server_that_keeps_failing_is_given_up_on_with_a_clear_error(proxy: FaultProxy, namespace: str) -> None:
    path = resource_path("v1", "Namespace", None, namespace)
    proxy.rule = lambda method, p: Fault(503, retry_after="1") if p == path else None

    with pytest.raises(ClusterUnavailable) as error:
        within(lambda: proxy.client().get(path))

    assert len(proxy.requests("GET", f"^{re.escape(path)}$")) == READ_ATTEMPTS
    assert "503" in str(error.value) and f"{READ_ATTEMPTS} attempts" in str(error.value)


def test_a_retry_after_beyond_the_budget_is_not_waited_for(proxy: FaultProxy, namespace: str) -> None:
    path = resource_path("v1", "Namespace", None, namespace)
    proxy.rule = lambda method, p: Fault(429, retry_after="3600") if p == path else None

    with pytest.raises(ClusterUnavailable) as error:
        within(lambda: proxy.client().get(path))

    assert len(proxy.requests("GET", f"^{re.escape(path)}$")) == 1
    assert "429" in str(error.value) and "3600" in str(error.value)


# -- writes are not retried ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_create_that_the_server_processed_but_answered_with_an_error_is_not_repeated(
    status: int, proxy: FaultProxy, kube: KubeClient, namespace: str
) -> None:
    """The worst case for a retry: the server made the object, the answer says try again later."""
    path = resource_path("v1", "ConfigMap", namespace)
    proxy.rule = first(1, Fault(status, retry_after="1", forward_first=True), method="POST")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "made-", "namespace": namespace}}

    with pytest.raises(K8sBotError):
        within(lambda: proxy.client().request("POST", path, body=body))

    assert len(proxy.requests("POST")) == 1
    made = [c["metadata"]["name"] for c in kube.list(path) if c["metadata"]["name"].startswith("made-")]
    assert len(made) == 1, made  # created once: a repeat would have made a second one


def test_a_dropped_connection_on_a_write_is_not_repeated(proxy: FaultProxy, kube: KubeClient, namespace: str) -> None:
    path = resource_path("v1", "ConfigMap", namespace)
    proxy.rule = first(1, Fault(drop=True), method="POST")

    with pytest.raises(ClusterUnavailable):
        within(lambda: proxy.client().request("POST", path, body=config_map(namespace, "never")))

    assert len(proxy.requests("POST")) == 1


def test_a_confirmed_scale_answered_429_after_it_was_applied_is_not_applied_twice(
    proxy: FaultProxy, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    """Through the command path: the PATCH reaches the server, the answer is a 429. The person is
    told the action failed; the Deployment changed once, and the bot sent one PATCH."""
    deploy_checkout(kube, namespace)
    before = get(kube, "apps/v1", "Deployment", namespace, "checkout")
    proxy.rule = first(1, Fault(429, retry_after="1", forward_first=True), method="PATCH")
    core = build_core(Settings(db=str(tmp_path / "bot.db")), permissions=False, kube=proxy.client())

    with pytest.raises(ClusterUnavailable, match="429"):
        within(lambda: execute(core.commands, text=f"scale checkout -n {namespace} --replicas 3", confirmed=True))

    after = get(kube, "apps/v1", "Deployment", namespace, "checkout")
    assert after["spec"]["replicas"] == 3  # the server did apply it, once
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert len(proxy.requests("PATCH")) == 1
    core.database.close()
