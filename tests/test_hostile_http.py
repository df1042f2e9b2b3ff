"""HTTP mode under hostile input: malformed requests, Slack retries, replays, a hanging API server.

Everything goes through the real bot (`BotRunner`) and its HTTP server: raw sockets for requests no
well-behaved client would send, the Slack emulator's driver for signed Slack traffic. A command's
executions are counted by the command path's `running ...` log line and by the answers the bot posts
to the response_url.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kube_helpers import Cluster
from kubernetes import client as k8s_client

from bot.kube.client import KubeClient
from handlers.serving import ReadinessPolicy
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from slack_emulator.driver import sign
from tests.slack_harness import ALICE, OPS, bot_settings, running_bot

pytestmark = pytest.mark.hostile

BODY_LIMIT = 1_000_000  # handlers/serving.py MAX_BODY


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "k8sbot.db")


# -- raw HTTP ------------------------------------------------------------------------------------


def _port(runner: BotRunner) -> int:
    port = urllib.parse.urlsplit(runner.url).port
    assert port is not None
    return port


def _connect(port: int, timeout: float = 5.0) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn.settimeout(timeout)
    return conn


class Reader:
    """Reads HTTP/1.1 responses, one at a time, off a raw socket (Content-Length framing)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def _more(self) -> bool:
        chunk = self.conn.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The next response; raises TimeoutError if none comes within the socket's timeout."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._more():
                raise ConnectionError(f"closed before a response; got {self.buffer[:200]!r}")
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            if not self._more():
                break
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def closed(self) -> bool:
        """True if the peer closes the connection (EOF or reset) within the socket's timeout."""
        try:
            while self._more():
                pass
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
        return True


def _request(method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _healthz_answers(port: int) -> bool:
    with _connect(port) as conn:
        conn.sendall(_request("GET", "/healthz"))
        status, _, body = Reader(conn).response()
    return status == 200 and body == b"ok\n"


def _assert_still_sane(reader: Reader, headers: dict[str, str], port: int) -> None:
    """After an error: the same connection answers the next request, or the server said it closes it and
    did; either way the server answers a new connection."""
    if headers.get("connection", "").lower() == "close":
        assert reader.closed(), "the response said Connection: close but the connection stayed open"
    else:
        reader.conn.sendall(_request("GET", "/healthz"))
        status, _, body = reader.response()
        assert (status, body) == (200, b"ok\n")
    assert _healthz_answers(port)


@pytest.fixture
def http_bot(slack: SlackEmulator, db: str) -> Iterator[BotRunner]:
    with running_bot(slack, mode="http", db=db) as runner:
        yield runner


# -- malformed requests --------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "12, 12"])
def test_a_malformed_content_length_gets_400_and_the_server_stays_sane(http_bot: BotRunner, length: str) -> None:
    port = _port(http_bot)
    with _connect(port) as conn:
        conn.sendall(_request("POST", "/slack/events", headers={"Content-Length": length}, body=b"token=x"))
        reader = Reader(conn)
        status, headers, _ = reader.response()
        assert status == 400
        _assert_still_sane(reader, headers, port)


def test_a_form_body_sent_as_json_gets_400_and_runs_nothing(
    http_bot: BotRunner, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    caplog.set_level(logging.INFO, logger="handlers.deliveries")
    port = _port(http_bot)
    body = urllib.parse.urlencode({"command": "/k8s", "text": "help", "user_id": ALICE, "channel_id": OPS}).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    headers.update(sign(slack.signing_secret, body))  # correctly signed: only the content type lies
    with _connect(port) as conn:
        conn.sendall(_request("POST", "/slack/events", headers=headers, body=body))
        reader = Reader(conn)
        status, response_headers, _ = reader.response()
        assert status == 400
        _assert_still_sane(reader, response_headers, port)
    assert not [r for r in caplog.records if r.getMessage().startswith("running")]


def test_a_json_body_that_is_not_an_object_gets_400(http_bot: BotRunner, slack: SlackEmulator) -> None:
    port = _port(http_bot)
    for body in (b"[1, 2]", b'"text"', b'{"unterminated'):
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        headers.update(sign(slack.signing_secret, body))
        with _connect(port) as conn:
            conn.sendall(_request("POST", "/slack/events", headers=headers, body=body))
            status, _, _ = Reader(conn).response()
        assert status == 400, body


def test_a_body_over_the_limit_gets_413_and_the_connection_stays_sane(http_bot: BotRunner) -> None:
    port = _port(http_bot)
    size = BODY_LIMIT + 1
    with _connect(port) as conn:
        head = _request(
            "POST",
            "/slack/events",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(size)},
        )

        def send() -> None:  # the whole body, then the next request on the same connection
            with contextlib.suppress(OSError):  # the server may close the connection after its 413
                conn.sendall(head + b"a" * size + _request("GET", "/healthz"))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        reader = Reader(conn)
        status, headers, _ = reader.response()
        assert status == 413
        if headers.get("connection", "").lower() == "close":
            assert reader.closed(), "413 said Connection: close but the connection stayed open"
        else:  # kept alive: the body was drained and the pipelined request is answered
            status, _, body = reader.response()
            assert (status, body) == (200, b"ok\n")
        sender.join(timeout=10)
    assert _healthz_answers(port)


def test_a_chunked_body_over_the_limit_gets_413(http_bot: BotRunner) -> None:
    port = _port(http_bot)
    chunk = b"a" * 65536
    with _connect(port) as conn:
        head = _request("POST", "/slack/events", headers={"Transfer-Encoding": "chunked"})

        def send() -> None:
            try:
                conn.sendall(head)
                for _ in range(BODY_LIMIT // len(chunk) + 2):
                    conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass

        threading.Thread(target=send, daemon=True).start()
        reader = Reader(conn)
        status, headers, _ = reader.response()
        assert status == 413
        assert headers.get("connection", "").lower() == "close" and reader.closed()
    assert _healthz_answers(port)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("POST", "/nowhere", 404),
        ("GET", "/slack/events", 405),
        ("PUT", "/slack/events", 405),
        ("POST", "/healthz", 405),
        ("DELETE", "/readyz", 405),
        ("POST", "/metrics", 405),
        ("BREW", "/healthz", 405),
    ],
)
def test_unknown_paths_get_404_and_wrong_methods_405_on_a_connection_that_stays_usable(
    http_bot: BotRunner, method: str, path: str, status: int
) -> None:
    port = _port(http_bot)
    with _connect(port) as conn:
        conn.sendall(_request(method, path, headers={"Content-Length": "0"}))
        reader = Reader(conn)
        got, headers, _ = reader.response()
        assert got == status
        if status == 405:
            assert headers.get("allow")
        _assert_still_sane(reader, headers, port)


def test_slack_events_is_not_served_in_socket_mode(slack: SlackEmulator, db: str) -> None:
    with running_bot(slack, mode="socket", db=db) as runner:
        port = _port(runner)
        with _connect(port) as conn:
            conn.sendall(_request("POST", "/slack/events", headers={"Content-Length": "0"}))
            status, _, _ = Reader(conn).response()
    assert status == 404


def test_a_slow_client_does_not_stall_other_requests(http_bot: BotRunner) -> None:
    """A client that sends half a request and waits holds no worker: /healthz still answers."""
    port = _port(http_bot)
    stalled = [_connect(port) for _ in range(12)]
    try:
        for conn in stalled:
            conn.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\npartial")
        assert _healthz_answers(port)
    finally:
        for conn in stalled:
            conn.close()


# -- retries and replays -------------------------------------------------------------------------


def _runs(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("running")]


def _acked_repeats(caplog: pytest.LogCaptureFixture) -> int:
    return len([r for r in caplog.records if r.getMessage().startswith("acknowledged a repeated Slack delivery")])


def _wait_runs(emu: SlackEmulator, caplog: pytest.LogCaptureFixture, n: int) -> None:
    emu.wait_for(lambda: len(_runs(caplog)) >= n, timeout=10, what=f"{n} command runs")
    time.sleep(0.5)  # a second, wrongly accepted run would show up here


def test_a_slash_command_retried_by_slack_is_acknowledged_and_runs_once(
    http_bot: BotRunner, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    caplog.set_level(logging.INFO, logger="handlers.deliveries")
    first = slack.driver.slash_command("status -n default", user_id=ALICE, channel_id=OPS)
    assert first.status == 200
    _wait_runs(slack, caplog, 1)
    posts = len(slack.response_posts())
    again = slack.driver.retry(first, "http_timeout")
    third = slack.driver.retry(again, "http_timeout")
    assert again.status == 200 and third.status == 200
    assert again.sent_headers["X-Slack-Retry-Num"] == "1" and third.sent_headers["X-Slack-Retry-Num"] == "2"
    time.sleep(0.5)
    assert len(_runs(caplog)) == 1
    assert len(slack.response_posts()) == posts
    assert _acked_repeats(caplog) == 2


def test_an_exact_replay_of_a_signed_request_is_acknowledged_and_runs_once(
    http_bot: BotRunner, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    caplog.set_level(logging.INFO, logger="handlers.deliveries")
    first = slack.driver.slash_command("status -n default", user_id=ALICE, channel_id=OPS)
    assert first.status == 200
    _wait_runs(slack, caplog, 1)
    replayed = slack.driver.replay(first)
    assert replayed.status == 200
    # and byte for byte over a raw socket, with the captured signature
    with _connect(_port(http_bot)) as conn:
        headers = dict(first.sent_headers, **{"Content-Length": str(len(first.sent_body or b""))})
        conn.sendall(_request("POST", "/slack/events", headers=headers, body=first.sent_body or b""))
        status, _, _ = Reader(conn).response()
    assert status == 200
    time.sleep(0.5)
    assert len(_runs(caplog)) == 1
    assert _acked_repeats(caplog) == 2


def test_different_commands_in_the_same_second_all_run(
    http_bot: BotRunner, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Dedup is per delivery, not per text: the same command typed twice runs twice."""
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    caplog.set_level(logging.INFO, logger="handlers.deliveries")
    for _ in range(3):
        assert slack.driver.slash_command("status -n default", user_id=ALICE, channel_id=OPS).status == 200
    _wait_runs(slack, caplog, 3)
    assert len(_runs(caplog)) == 3


def test_a_forged_request_cannot_use_up_a_real_deliverys_id(
    http_bot: BotRunner, slack: SlackEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Signatures are checked before a delivery is remembered: a bad or stale copy is rejected and
    does not make the real request look like a duplicate."""
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    caplog.set_level(logging.INFO, logger="handlers.deliveries")
    forged = slack.driver.slash_command("status -n default", user_id=ALICE, channel_id=OPS, tamper="bad_signature")
    assert forged.status == 401 and forged.sent_body is not None and forged.url is not None
    url, body = forged.url, forged.sent_body  # the same delivery (trigger_id, response_url), badly signed
    stale = slack.driver.http_post(url, body, "application/x-www-form-urlencoded", tamper="stale_timestamp")
    assert stale.status == 401
    real = slack.driver.http_post(url, body, "application/x-www-form-urlencoded")
    assert real.status == 200
    _wait_runs(slack, caplog, 1)
    assert len(_runs(caplog)) == 1


def test_a_slash_command_redelivered_over_socket_mode_runs_once(
    slack: SlackEmulator, db: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Socket Mode: a second envelope carrying the same delivery (same trigger_id) is acked and not run."""
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    caplog.set_level(logging.INFO, logger="handlers.deliveries")
    with running_bot(slack, mode="socket", db=db):
        first = slack.driver.slash_command("status -n default", user_id=ALICE, channel_id=OPS)
        assert first.ok
        _wait_runs(slack, caplog, 1)
        again = slack.socket.deliver("slash_commands", dict(first.request or {}), True, retry_attempt=1)
        final = slack.socket.wait(again, timeout=5)
        assert final.acked
        time.sleep(0.5)
    assert len(_runs(caplog)) == 1
    assert _acked_repeats(caplog) == 1


# -- readiness -----------------------------------------------------------------------------------


@contextmanager
def hanging_endpoint() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
        for conn in accepted:
            conn.close()


def _kube_at(host: str) -> KubeClient:
    configuration = k8s_client.Configuration()
    configuration.host = host
    return KubeClient(configuration)


def _readyz(runner: BotRunner, timeout: float = 1.0) -> tuple[int, dict[str, object]]:
    try:
        response = urllib.request.urlopen(runner.url + "/readyz", timeout=timeout)
        return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_readyz_answers_at_once_while_the_api_server_hangs(slack: SlackEmulator, db: str) -> None:
    with (
        hanging_endpoint() as port,
        running_bot(slack, mode="http", db=db, kube=_kube_at(f"http://127.0.0.1:{port}")) as runner,
    ):
        for _ in range(3):  # every answer within the 1 s client timeout, none ready
            status, state = _readyz(runner, timeout=1.0)
            assert status == 503
            assert state["slack"] is True and state["cluster"] is False
            time.sleep(0.3)
        assert _healthz_answers(_port(runner))


class Blackhole:
    """A TCP proxy to a real API server that can be switched to swallow everything (a hung API server)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.hung = threading.Event()
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.sockets: list[socket.socket] = []
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client = self.listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target, timeout=5)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.1)
        while not self.stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if not self.hung.is_set():
                try:
                    sink.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for s in self.sockets:
            s.close()


def test_readyz_turns_503_when_the_last_good_check_is_too_old(slack: SlackEmulator, db: str, cluster: Cluster) -> None:
    kube = KubeClient.from_kubeconfig(cluster.kubeconfig)
    server = urllib.parse.urlsplit(kube.server)
    proxy = Blackhole((server.hostname or "127.0.0.1", server.port or 443))
    kube.configuration.host = f"{server.scheme}://127.0.0.1:{proxy.port}"
    settings = bot_settings(slack, db=db)
    policy = ReadinessPolicy(interval=0.2, check_timeout=0.5, max_age=2.0)
    runner = BotRunner(settings, http=True, permissions=False, kube=kube, background=False, readiness=policy)
    try:
        runner.start()
        slack.wait_for(lambda: _readyz(runner)[0] == 200, timeout=15, what="ready through the proxy")
        status, state = _readyz(runner)
        assert status == 200 and state["cluster"] is True
        assert isinstance(state["cluster_checked_seconds_ago"], float) and state["cluster_checked_seconds_ago"] < 2.0
        proxy.hung.set()
        seen: list[tuple[int, dict[str, object]]] = []
        slack.wait_for(
            lambda: seen.append(_readyz(runner)) or seen[-1][0] == 503, timeout=15, what="not ready once hung"
        )
        assert seen[-1][1]["cluster"] is False
    finally:
        runner.stop()
        proxy.close()
