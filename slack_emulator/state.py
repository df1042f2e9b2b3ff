"""Workspace state and the recording of everything that happened.

Owns: users, channels, user groups, messages (with edits and thread replies),
ephemeral messages, files, views, minted trigger_ids and response_urls, and the
records tests assert on (Web API calls, lint findings, response_url posts).
All mutation goes through :class:`Workspace` under one re-entrant lock, so HTTP
handler threads, the Socket-Mode server and the test thread can share it.
"""

from __future__ import annotations

import copy
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

JSONDict = dict[str, Any]


@dataclass
class User:
    """A workspace member (human or bot)."""

    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    is_bot: bool = False
    deleted: bool = False
    is_admin: bool = False
    tz: str = "Etc/UTC"


@dataclass
class Channel:
    """A public or private channel (``C…``/``G…``) or a DM (``D…``)."""

    id: str
    name: str
    members: list[str] = field(default_factory=list)
    is_private: bool = False
    is_im: bool = False
    is_archived: bool = False
    created: int = 0
    topic: str = ""
    purpose: str = ""


@dataclass
class Usergroup:
    """A user group (``S…``), mentioned as ``<!subteam^S…>``."""

    id: str
    handle: str
    name: str = ""
    users: list[str] = field(default_factory=list)
    description: str = ""
    disabled: bool = False


@dataclass
class Call:
    """One Web API call as the emulator saw it."""

    method: str
    args: JSONDict
    response: JSONDict
    status: int
    time: float
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        err = self.response.get("error")
        return str(err) if err is not None else None


@dataclass
class Lint:
    """A non-fatal finding about content the bot sent (Slack accepts it, a human would not like it)."""

    kind: str  # "raw_angle_bracket" | "broadcast_ping"
    method: str  # e.g. "chat.postMessage", "response_url", "ack"
    pointer: str  # json pointer inside the request, e.g. "/blocks/0/text/text" or "/text"
    detail: str
    snippet: str
    channel: str | None = None


@dataclass
class Ephemeral:
    """An ephemeral message shown to one user."""

    channel: str
    user: str
    message: JSONDict
    source: str  # "chat.postEphemeral" | "response_url" | "ack"
    thread_ts: str | None = None
    deleted: bool = False

    @property
    def ts(self) -> str:
        return str(self.message["ts"])

    @property
    def text(self) -> str:
        return str(self.message.get("text", ""))


@dataclass
class ResponseUrlPost:
    """One POST to a response_url (successful or not)."""

    url: str
    body: Any
    status: int
    result: str
    time: float


@dataclass
class ResponseUrl:
    """A response_url minted for a command or interaction."""

    id: str
    kind: str  # "commands" | "actions"
    channel: str
    user: str
    created: float
    uses: int = 0
    source_ts: str | None = None  # message the interaction came from
    source_is_ephemeral: bool = False
    posted: list[tuple[str, bool]] = field(default_factory=list)  # (ts, ephemeral) posted via this URL


@dataclass
class StoredFile:
    """A file uploaded through files.getUploadURLExternal + upload + completeUploadExternal."""

    id: str
    filename: str
    length: int
    created: float
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    title: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None
    user: str = ""

    def image_size(self) -> tuple[int, int] | None:
        """(width, height) of an uploaded PNG, read from its IHDR chunk; None for anything else."""
        data = self.content or b""
        if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
            return None
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

    def to_api(self, team_id: str) -> JSONDict:
        """The ``file`` object as files.info / completeUploadExternal return it. Slack identifies an
        image by its content: a PNG is `image/png` with its `original_w`/`original_h`."""
        size = len(self.content) if self.content is not None else self.length
        image = self.image_size()
        if image is not None:
            mimetype, filetype = "image/png", "png"
        elif self.filename.endswith((".txt", ".log")):
            mimetype, filetype = "text/plain", self.snippet_type or self.filename.rsplit(".", 1)[-1]
        else:
            extension = self.filename.rsplit(".", 1)[-1] if "." in self.filename else "binary"
            mimetype, filetype = "application/octet-stream", self.snippet_type or extension
        extra: JSONDict = {"original_w": image[0], "original_h": image[1]} if image is not None else {}
        return {
            "id": self.id,
            "created": int(self.created),
            "timestamp": int(self.created),
            "name": self.filename,
            "title": self.title or self.filename,
            "mimetype": mimetype,
            "filetype": filetype,
            "user": self.user,
            "user_team": team_id,
            "size": size,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": f"https://files.slack.com/files-pri/{team_id}-{self.id}/{self.filename}",
            "permalink": f"https://emulated.slack.com/files/{self.user}/{self.id}/{self.filename}",
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
            "alt_txt": self.alt_txt,
            "initial_comment": {"comment": self.initial_comment} if self.initial_comment else None,
            **extra,
        }


@dataclass
class View:
    """A modal or Home-tab view."""

    id: str
    user: str
    type: str
    data: JSONDict
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    external_id: str | None = None
    state: str = "open"  # "open" | "closed" | "published"
    push_count: int = 0


class Workspace:
    """All mutable emulator state.  Thread-safe via ``lock``."""

    def __init__(
        self, team_id: str, team_domain: str, *, bot_user_id: str, bot_id: str, app_id: str, clock: Clock
    ) -> None:
        self.lock = threading.RLock()
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.clock = clock
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, Usergroup] = {}
        # channel -> ts -> message (top-level messages and thread replies alike)
        self.messages: dict[str, dict[str, JSONDict]] = {}
        self.edits: dict[tuple[str, str], list[JSONDict]] = {}
        self.deleted: list[JSONDict] = []
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, StoredFile] = {}
        self.upload_tokens: dict[str, str] = {}  # upload token -> file id
        self.views: dict[str, View] = {}
        self.home_views: dict[str, str] = {}  # user -> view id
        self.triggers: dict[str, tuple[float, bool]] = {}  # trigger_id -> (created, used)
        self.response_urls: dict[str, ResponseUrl] = {}
        self.response_posts: list[ResponseUrlPost] = []
        self.calls: list[Call] = []
        self.lints: list[Lint] = []
        self._last_ts = 0.0
        self._ids = itertools.count(1)

    # ---- id minting -------------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id such as ``V0000007ABCD``."""
        return f"{prefix}{next(self._ids):07d}{secrets.token_hex(2).upper()}"

    def new_ts(self) -> str:
        """A message ``ts`` strictly greater than every previous one."""
        with self.lock:
            now = round(self.clock.now(), 6)
            if now <= self._last_ts:
                now = round(self._last_ts + 0.000001, 6)
            self._last_ts = now
            return f"{now:.6f}"

    def mint_trigger(self) -> str:
        """A trigger_id in Slack's ``digits.digits.hex`` format, valid for 3 s and one use."""
        with self.lock:
            tid = f"{next(self._ids)}{secrets.randbelow(10**6)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
            self.triggers[tid] = (self.clock.now(), False)
            return tid

    # ---- messages ---------------------------------------------------------------------------
    def store_message(self, channel: str, message: JSONDict) -> JSONDict:
        """Store a new message (top-level or reply); maintains the parent's thread metadata."""
        with self.lock:
            chan = self.messages.setdefault(channel, {})
            chan[message["ts"]] = message
            thread_ts = message.get("thread_ts")
            if thread_ts and thread_ts != message["ts"] and thread_ts in chan:
                parent = chan[thread_ts]
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = int(parent.get("reply_count", 0)) + 1
                parent["latest_reply"] = message["ts"]
                users = parent.setdefault("reply_users", [])
                who = message.get("user") or message.get("bot_id")
                if who and who not in users:
                    users.append(who)
                parent["reply_users_count"] = len(users)
            return message

    def get_message(self, channel: str, ts: str) -> JSONDict | None:
        with self.lock:
            return self.messages.get(channel, {}).get(ts)

    def top_level(self, channel: str) -> list[JSONDict]:
        """Top-level messages (and broadcast replies) in ts order, deep-copied."""
        with self.lock:
            out = [
                m
                for m in self.messages.get(channel, {}).values()
                if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("subtype") == "thread_broadcast"
            ]
            return copy.deepcopy(sorted(out, key=lambda m: float(m["ts"])))

    def thread(self, channel: str, ts: str) -> list[JSONDict]:
        """Parent followed by its replies in ts order, deep-copied."""
        with self.lock:
            chan = self.messages.get(channel, {})
            out = [m for m in chan.values() if m["ts"] == ts or m.get("thread_ts") == ts]
            return copy.deepcopy(sorted(out, key=lambda m: float(m["ts"])))

    def find_ephemeral(self, ts: str) -> Ephemeral | None:
        with self.lock:
            for eph in self.ephemerals:
                if eph.ts == ts:
                    return eph
            return None

    def is_member(self, channel: Channel, user: str) -> bool:
        return user in channel.members

    def user_obj(self, uid: str) -> User:
        """The user, or a placeholder so payload builders never crash on unknown ids."""
        return self.users.get(uid) or User(id=uid, name=uid.lower())
