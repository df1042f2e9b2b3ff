"""The :class:`SlackEmulator` facade: the stable interface tests and the demo use.

Owns lifecycle (HTTP + websocket servers on 127.0.0.1), configuration (tokens, ids,
scopes, signing secret), workspace seeding, fault injection entry points and the
read-only views over recorded state.  Behaviour lives in the sibling modules.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from typing import Any

from .clock import Clock
from .driver import Driver
from .faults import Faults
from .server import ApiServer
from .socket_mode import SocketModeServer
from .state import Call, Channel, Ephemeral, Lint, ResponseUrlPost, StoredFile, User, Usergroup, View, Workspace
from .webapi import DEFAULT_SCOPES, view_api

LOOPBACK = "127.0.0.1"


class EmulatorTimeout(AssertionError):
    """Raised by :meth:`SlackEmulator.wait_for` (an AssertionError so pytest shows it as a failure)."""


class SlackEmulator:
    """A faithful local Slack: Web API, response_urls, uploads, Socket Mode and a driver."""

    def __init__(
        self,
        signing_secret: str = "test-secret",  # noqa: S107 - fake credentials
        *,
        bot_token: str = "xoxb-emulator-bot-token",  # noqa: S107
        app_token: str = "xapp-1-AEMULATOR-emulator-app-token",  # noqa: S107
        team_id: str = "T0EMULATE",
        bot_user_id: str = "U0BOT0001",
        bot_id: str = "B0BOT0001",
        app_id: str = "A0APP0001",
        team_domain: str = "emulated",
        team_name: str = "Emulated Workspace",
        bot_name: str = "k8sbot",
        scopes: Iterable[str] = DEFAULT_SCOPES,
        port: int = 0,
        socket_port: int = 0,
        clock: Clock | None = None,
        home_tab_enabled: bool = True,
        ack_timeout: float = 3.0,
        verification_token: str = "emulated-verification-token",  # noqa: S107
    ) -> None:
        if not signing_secret.strip():
            raise ValueError("signing_secret must be non-empty (slack_sdk >= 3.43 rejects empty secrets)")
        self.signing_secret = signing_secret
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_name = team_name
        self.bot_name = bot_name
        self.scopes: list[str] = list(scopes)
        self.home_tab_enabled = home_tab_enabled
        self.verification_token = verification_token
        self.clock = clock or Clock()
        self.workspace = Workspace(
            team_id, team_domain, bot_user_id=bot_user_id, bot_id=bot_id, app_id=app_id, clock=self.clock
        )
        self.faults = Faults(self.clock)
        self.socket = SocketModeServer(app_id, LOOPBACK, socket_port, ack_timeout=ack_timeout)
        self.driver = Driver(self, ack_timeout=ack_timeout)
        self.trigger_users: dict[str, str] = {}
        self.view_errors: list[dict[str, Any]] = []
        self.server_errors: list[str] = []
        self._tokens: dict[str, str] = {bot_token: "bot", app_token: "app"}
        self._port = port
        self._http: ApiServer | None = None
        self.add_user(bot_user_id, name=bot_name, real_name=bot_name, is_bot=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SlackEmulator:
        """Bind both servers on 127.0.0.1 (random ports unless given) and start serving."""
        if self._http is not None:
            return self
        self._http = ApiServer(self, LOOPBACK, self._port)
        self._http.start()
        self.socket.start()
        return self

    def stop(self) -> None:
        """Close every socket and stop both servers."""
        if self._http is not None:
            self.socket.stop()
            self._http.stop()
            self._http = None

    def __enter__(self) -> SlackEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("emulator not started")
        return self._http.port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (response_urls and upload URLs live under it)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL for ``WebClient(base_url=...)``, ending in ``/api/``."""
        return f"{self.base_url}/api/"

    # ------------------------------------------------------------------ tokens
    def token_kind(self, token: str | None) -> str | None:
        """ "bot", "app", "revoked" or None (unknown)."""
        return self._tokens.get(token or "")

    def add_token(self, token: str, kind: str = "bot") -> None:
        """Accept another token (``kind`` "bot" or "app")."""
        self._tokens[token] = kind

    def revoke_token(self, token: str) -> None:
        """Make ``token`` answer ``token_revoked`` from now on."""
        self._tokens[token] = "revoked"

    # ------------------------------------------------------------------ workspace seeding
    def add_user(
        self,
        id: str,
        name: str | None = None,
        *,
        real_name: str = "",
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        is_admin: bool = False,
        tz: str = "Etc/UTC",
    ) -> User:
        user = User(id, name or id.lower(), real_name, email, is_bot, deleted, is_admin, tz)  # dataclass order
        with self.workspace.lock:
            self.workspace.users[id] = user
        return user

    def add_channel(
        self,
        id: str,
        name: str,
        members: Iterable[str] = (),
        is_private: bool = False,
        *,
        bot_member: bool | None = None,
        is_archived: bool = False,
        topic: str = "",
        purpose: str = "",
    ) -> Channel:
        """Add a channel.  The bot is a member only if its user id is in ``members`` or
        ``bot_member=True``; public channels accept its posts anyway (chat:write.public)."""
        mem = list(members)
        bot = self.workspace.bot_user_id
        if bot_member and bot not in mem:
            mem.append(bot)
        if bot_member is False and bot in mem:
            mem.remove(bot)
        chan = Channel(id, name, mem, is_private, False, is_archived, int(self.clock.now()), topic, purpose)
        with self.workspace.lock:
            self.workspace.channels[id] = chan
        return chan

    def add_usergroup(
        self,
        id: str,
        handle: str,
        users: Iterable[str] = (),
        *,
        name: str = "",
        description: str = "",
        disabled: bool = False,
    ) -> Usergroup:
        group = Usergroup(id, handle, name or handle, list(users), description, disabled)  # dataclass order
        with self.workspace.lock:
            self.workspace.usergroups[id] = group
        return group

    # ------------------------------------------------------------------ faults
    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` ("*" = any) with 429 + Retry-After."""
        self.faults.rate_limit(method, retry_after, times)

    def fail(
        self,
        method: str,
        error: str = "internal_error",
        *,
        http_status: int = 200,
        times: int | None = 1,
        for_seconds: float | None = None,
    ) -> None:
        """Fail ``method`` ("*" = any) with ``error``; ``http_status=500/503`` simulates an outage."""
        self.faults.fail(method, error, http_status=http_status, times=times, for_seconds=for_seconds)

    def enforce_posting_rate(self, per_second: float | None = 1.0, burst: int = 3) -> None:
        """Per-channel chat.postMessage limit (token bucket); ``None`` switches it off."""
        self.faults.enforce_posting_rate(per_second, burst)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ------------------------------------------------------------------ recorded state (copies)
    def calls(self, method: str | None = None) -> list[Call]:
        with self.workspace.lock:
            return [c for c in self.workspace.calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Current top-level messages in ``channel`` (edits applied, deletions removed), oldest first."""
        return self.workspace.top_level(channel)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        with self.workspace.lock:
            msg = self.workspace.get_message(channel, ts)
            return copy.deepcopy(msg) if msg else None

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Parent message followed by its replies."""
        return self.workspace.thread(channel, ts)

    def edits(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Previous versions of a message, oldest first (the current one is ``message()``)."""
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.edits.get((channel, ts), []))

    def deleted_messages(self) -> list[dict[str, Any]]:
        with self.workspace.lock:
            return copy.deepcopy(self.workspace.deleted)

    def ephemerals(
        self, channel: str | None = None, user: str | None = None, include_deleted: bool = False
    ) -> list[Ephemeral]:
        with self.workspace.lock:
            return [
                e
                for e in self.workspace.ephemerals
                if (channel is None or e.channel == channel)
                and (user is None or e.user == user)
                and (include_deleted or not e.deleted)
            ]

    def files(self) -> list[StoredFile]:
        with self.workspace.lock:
            return list(self.workspace.files.values())

    def response_posts(self) -> list[ResponseUrlPost]:
        with self.workspace.lock:
            return list(self.workspace.response_posts)

    def views(self, user: str | None = None, state: str | None = None) -> list[View]:
        with self.workspace.lock:
            return [
                v
                for v in self.workspace.views.values()
                if (user is None or v.user == user) and (state is None or v.state == state)
            ]

    def view(self, view_id: str) -> dict[str, Any]:
        """A view as Slack would return it, plus ``"_state"``: open/closed/published."""
        with self.workspace.lock:
            v = self.workspace.views[view_id]
            return {**view_api(self, v), "_state": v.state}

    def published_view(self, user: str) -> dict[str, Any] | None:
        """The Home tab currently published for ``user``."""
        vid = self.workspace.home_views.get(user)
        return self.view(vid) if vid else None

    def lints(self, kind: str | None = None, method: str | None = None) -> list[Lint]:
        with self.workspace.lock:
            return [
                entry
                for entry in self.workspace.lints
                if (kind is None or entry.kind == kind) and (method is None or entry.method == method)
            ]

    def clear_records(self) -> None:
        """Forget recorded calls, lint and response_url posts (state such as messages stays)."""
        with self.workspace.lock:
            self.workspace.calls.clear()
            self.workspace.lints.clear()
            self.workspace.response_posts.clear()

    # ------------------------------------------------------------------ waiting
    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition", interval: float = 0.02
    ) -> Any:
        """Poll ``predicate`` until truthy and return its value; raise EmulatorTimeout describing ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                recent = ", ".join(f"{c.method}:{'ok' if c.ok else c.error}" for c in self.calls()[-8:])
                raise EmulatorTimeout(
                    f"timed out after {timeout:.1f}s waiting for {what}; "
                    f"last Web API calls: [{recent}]"
                    + (f"; emulator errors: {self.server_errors[-1]}" if self.server_errors else "")
                )
            time.sleep(interval)
