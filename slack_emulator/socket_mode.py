"""Socket Mode: the websocket server behind the URLs apps.connections.open hands out.

Owns connection tickets, live sockets (several at once), ``hello``, envelope delivery
(``events_api``, ``slash_commands``, ``interactive``), ack tracking (an envelope_id counts
as acked at most once; duplicates and late acks are recorded separately), the 3-second
ack deadline (events are redelivered with ``retry_attempt``+1 / ``retry_reason="timeout"``,
commands and interactions just time out), queueing while no socket is connected,
``disconnect`` messages and abrupt drops.  Pings are answered by ``websockets`` itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

log = logging.getLogger("slack_emulator.socket_mode")
JSONDict = dict[str, Any]


@dataclass
class Envelope:
    """One delivery attempt of a payload over Socket Mode."""

    envelope_id: str
    type: str
    payload: JSONDict
    accepts_response_payload: bool
    retry_attempt: int = 0
    retry_reason: str = ""
    status: str = "queued"  # queued | sent | acked | timeout
    connection_id: int | None = None
    sent_at: float | None = None  # time.monotonic()
    ack_payload: JSONDict | None = None
    ack_frames: int = 0  # every ack frame received for this id (1 = acked once)
    late_ack: bool = False
    retry: Envelope | None = None  # the redelivery created after a timeout (events only)
    on_ack: Callable[[Envelope], None] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def acked(self) -> bool:
        return self.status == "acked"

    def frame(self) -> JSONDict:
        out: JSONDict = {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.type == "events_api":
            out["retry_attempt"] = self.retry_attempt
            out["retry_reason"] = self.retry_reason
        return out

    def final(self) -> Envelope:
        """Follow the chain of redeliveries to the latest attempt."""
        env = self
        while env.retry is not None:
            env = env.retry
        return env


@dataclass
class SocketConnection:
    """A live (or closed) websocket from the bot."""

    id: int
    ticket: str
    conn: ServerConnection
    opened_at: float
    draining: bool = False  # got a disconnect message; new envelopes go elsewhere
    closed: bool = False
    frames: list[Any] = field(default_factory=list)  # every frame the client sent


class SocketModeServer:
    """websockets sync server on 127.0.0.1 emulating Slack's Socket Mode endpoint."""

    def __init__(
        self,
        app_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ack_timeout: float = 3.0,
        max_event_retries: int = 3,
        server_ping_interval: float | None = 0.5,
    ) -> None:
        self.app_id = app_id
        # Server pings (answered with pongs by every client) also wake the builtin client's
        # blocking recv (3 s timeout, holding the lock close() needs), so clients close fast.
        self.server_ping_interval = server_ping_interval
        self.host = host
        self.ack_timeout = ack_timeout
        self.max_event_retries = max_event_retries
        self._requested_port = port
        self._lock = threading.RLock()
        self._tickets: set[str] = set()
        self._ids = 0
        self.connections: list[SocketConnection] = []
        self.envelopes: list[Envelope] = []
        self._by_id: dict[str, Envelope] = {}
        self._queue: list[Envelope] = []
        self.duplicate_acks: list[JSONDict] = []
        self.unknown_acks: list[JSONDict] = []
        self.late_acks: list[JSONDict] = []
        self.urls_minted = 0
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        assert self._server is not None, "socket server not started"
        return int(self._server.socket.getsockname()[1])

    def start(self) -> None:
        self._server = serve(
            self._handle,
            self.host,
            self._requested_port,
            compression=None,
            ping_interval=self.server_ping_interval,
            ping_timeout=None,
            process_request=self._process_request,
            open_timeout=5,
            close_timeout=1,
        )
        for name, target in (("serve", self._server.serve_forever), ("monitor", self._monitor)):
            t = threading.Thread(target=target, name=f"slack-emulator-ws-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            conns = [c for c in self.connections if not c.closed]
        for c in conns:
            self._hard_close(c)
        if self._server is not None:
            self._server.shutdown()
        for t in self._threads:
            t.join(timeout=5)

    def mint_url(self) -> str:
        """A fresh ``ws://127.0.0.1:PORT/link/?ticket=…&app_id=…`` (called by apps.connections.open)."""
        ticket = str(uuid.uuid4())
        with self._lock:
            self._tickets.add(ticket)
            self.urls_minted += 1
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        parsed = urllib.parse.urlsplit(request.path)
        ticket = urllib.parse.parse_qs(parsed.query).get("ticket", [""])[0]
        if not parsed.path.startswith("/link") or ticket not in self._tickets:
            return conn.respond(HTTPStatus.UNAUTHORIZED, "invalid ticket\n")
        return None

    # ------------------------------------------------------------------ connections
    def live(self) -> list[SocketConnection]:
        """Open connections, oldest first."""
        with self._lock:
            return [c for c in self.connections if not c.closed]

    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> list[SocketConnection]:
        """Block until at least ``count`` non-draining sockets are open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            usable = [c for c in self.live() if not c.draining]
            if len(usable) >= count:
                return usable
            time.sleep(0.02)
        raise TimeoutError(
            f"expected {count} live Socket Mode connection(s), have {len(self.live())} "
            f"(apps.connections.open called {self.urls_minted} times)"
        )

    def _handle(self, conn: ServerConnection) -> None:
        parsed = urllib.parse.urlsplit(conn.request.path if conn.request else "")
        ticket = urllib.parse.parse_qs(parsed.query).get("ticket", [""])[0]
        with self._lock:
            self._ids += 1
            sc = SocketConnection(self._ids, ticket, conn, time.monotonic())
            self.connections.append(sc)
            live = len([c for c in self.connections if not c.closed])
        try:
            conn.send(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": live,
                        "debug_info": {
                            "host": "applink-emulator",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                )
            )
            self._flush()
            for message in conn:
                self._on_frame(sc, message)
        except ConnectionClosed:
            pass
        except OSError:
            pass
        finally:
            with self._lock:
                sc.closed = True
            self._flush()

    def _on_frame(self, sc: SocketConnection, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except (ValueError, TypeError):
            sc.frames.append(message)
            return
        sc.frames.append(data)
        if not isinstance(data, dict) or "envelope_id" not in data:
            return
        callback: Callable[[Envelope], None] | None = None
        with self._lock:
            env = self._by_id.get(str(data["envelope_id"]))
            if env is None:
                self.unknown_acks.append(data)
                return
            env.ack_frames += 1
            if env.ack_frames > 1:
                self.duplicate_acks.append(data)
                return
            if env.status == "timeout":
                env.late_ack = True
                self.late_acks.append(data)
                return
            payload = data.get("payload")
            env.ack_payload = payload if isinstance(payload, dict) else None
            env.status = "acked"
            callback = env.on_ack
        if callback is not None:
            try:
                callback(env)
            except Exception:  # pragma: no cover - visible in logs
                log.exception("on_ack callback failed")
        env.done.set()

    # ------------------------------------------------------------------ delivery
    def deliver(
        self,
        type_: str,
        payload: JSONDict,
        accepts_response_payload: bool = False,
        *,
        on_ack: Callable[[Envelope], None] | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Envelope:
        """Queue an envelope and send it at once if a usable socket is open."""
        env = Envelope(
            str(uuid.uuid4()), type_, payload, accepts_response_payload, retry_attempt, retry_reason, on_ack=on_ack
        )
        with self._lock:
            self.envelopes.append(env)
            self._by_id[env.envelope_id] = env
            self._queue.append(env)
        self._flush()
        return env

    def _target(self) -> SocketConnection | None:
        usable = [c for c in self.connections if not c.closed and not c.draining]
        return usable[-1] if usable else None

    def _flush(self) -> None:
        with self._lock:
            while self._queue:
                target = self._target()
                if target is None:
                    return
                env = self._queue[0]
                try:
                    target.conn.send(json.dumps(env.frame()))
                except (ConnectionClosed, OSError):
                    target.closed = True
                    continue
                self._queue.pop(0)
                env.status = "sent"
                env.connection_id = target.id
                env.sent_at = time.monotonic()

    def pending(self) -> list[Envelope]:
        """Envelopes still waiting for a socket."""
        with self._lock:
            return list(self._queue)

    def _monitor(self) -> None:
        while not self._stopping.wait(0.02):
            now = time.monotonic()
            expired: list[Envelope] = []
            with self._lock:
                for env in self.envelopes:
                    if env.status == "sent" and env.sent_at is not None and now - env.sent_at > self.ack_timeout:
                        env.status = "timeout"
                        expired.append(env)
            for env in expired:
                if env.type == "events_api" and env.retry_attempt < self.max_event_retries:
                    env.retry = self.deliver(
                        env.type,
                        env.payload,
                        env.accepts_response_payload,
                        on_ack=env.on_ack,
                        retry_attempt=env.retry_attempt + 1,
                        retry_reason="timeout",
                    )
                env.done.set()

    def wait(self, env: Envelope, timeout: float | None = None) -> Envelope:
        """Wait for the last attempt of ``env`` to be acked or to time out; returns that attempt."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.ack_timeout + 10)
        while True:
            current = env.final()
            remaining = deadline - time.monotonic()
            settled = current.done.wait(max(0.0, min(remaining, 0.05)))
            if settled and current.retry is None and (current.acked or current.status == "timeout"):
                return current
            if remaining <= 0:
                return current

    # ------------------------------------------------------------------ faults
    def disconnect(
        self,
        reason: str = "refresh_requested",
        connection: SocketConnection | None = None,
        close_after: float | None = None,
    ) -> SocketConnection:
        """Send ``{"type":"disconnect"}`` to a socket (default: the newest) and stop routing to it.

        With ``close_after`` the server also closes that socket after the delay, like Slack does
        once the client had time to reconnect."""
        with self._lock:
            target = connection or self._target()
            if target is None:
                raise RuntimeError("no live Socket Mode connection to disconnect")
            target.draining = True
        try:
            target.conn.send(
                json.dumps({"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-emulator"}})
            )
        except (ConnectionClosed, OSError):
            target.closed = True
        if close_after is not None:
            timer = threading.Timer(close_after, self._soft_close, args=(target,))
            timer.daemon = True
            timer.start()
        return target

    def _soft_close(self, sc: SocketConnection) -> None:
        try:
            sc.conn.close()
        except Exception:  # pragma: no cover
            self._hard_close(sc)

    def drop(self, connection: SocketConnection | None = None) -> SocketConnection:
        """Kill a socket abruptly (TCP shutdown, no close frame)."""
        with self._lock:
            target = connection or self._target()
            if target is None:
                raise RuntimeError("no live Socket Mode connection to drop")
            target.draining = True
        self._hard_close(target)
        return target

    def _hard_close(self, sc: SocketConnection) -> None:
        sock: socket.socket = sc.conn.socket
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        with self._lock:
            sc.closed = True
