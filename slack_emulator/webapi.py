"""Web API method implementations (``/api/<method>``).

Owns argument parsing conventions (form or JSON, ``blocks``/``view``/``files`` as
JSON strings, unknown params ignored), token-type rules, scope checks and every
method's response shape and error codes.  Each handler takes the emulator and the
parsed args and returns the JSON response, or raises :class:`ApiError`.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .blocks import LintFinding, Validation, lint_mrkdwn, validate_blocks, validate_view
from .state import Channel, Ephemeral, Lint, StoredFile, User, View

if TYPE_CHECKING:
    from .emulator import SlackEmulator

JSONDict = dict[str, Any]
MAX_TEXT = 40000
MAX_UPDATE_TEXT = 4000
TRIGGER_TTL = 3.0
_TS_RE = re.compile(r"^\d+\.\d+$")
_TRIGGER_RE = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")

DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "app_mentions:read",
    "users:read",
    "users:read.email",
    "usergroups:read",
    "channels:read",
    "groups:read",
    "files:write",
)


@dataclass
class ApiError(Exception):
    """An ``ok:false`` answer (HTTP 200 unless ``status`` says otherwise)."""

    error: str
    extra: JSONDict = field(default_factory=dict)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> JSONDict:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass(frozen=True)
class MethodSpec:
    """How a method is authorised and which function implements it."""

    func: Callable[[SlackEmulator, JSONDict, str], JSONDict]
    token_type: str = "bot"  # noqa: S105 - "bot" (xoxb/xoxp) or "app" (xapp)
    scope: str | None = None


# ---------------------------------------------------------------- argument helpers
def truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _json_arg(args: JSONDict, key: str, bad_error: str) -> Any:
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(bad_error) from None
    return value


def _need(args: JSONDict, key: str, error: str = "invalid_arguments") -> str:
    value = args.get(key)
    if value in (None, ""):
        raise ApiError(
            error,
            {"response_metadata": {"messages": [f"[ERROR] missing required field: {key}"]}}
            if error == "invalid_arguments"
            else {},
        )
    return str(value)


def _invalid(*messages: str) -> ApiError:
    """``invalid_arguments`` with Slack's ``[ERROR] …`` messages."""
    return ApiError("invalid_arguments", {"response_metadata": {"messages": [f"[ERROR] {m}" for m in messages]}})


def _blocks_error(errors: list[str]) -> ApiError:
    return ApiError(
        "invalid_blocks", {"errors": errors, "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}
    )


def _record_lint(
    emu: SlackEmulator, findings: list[LintFinding], method: str, channel: str | None, prefix: str = ""
) -> None:
    with emu.workspace.lock:
        for f in findings:
            emu.workspace.lints.append(Lint(f.kind, method, prefix + f.pointer, f.detail, f.snippet, channel))


def check_content(
    emu: SlackEmulator,
    args: JSONDict,
    method: str,
    channel: str | None,
    *,
    surface: str = "message",
    max_text: int | None = MAX_TEXT,
    require_content: bool = True,
) -> tuple[JSONDict, list[str]]:
    """Validate text/blocks/attachments; return (content fields, warnings) or raise."""
    content: JSONDict = {}
    warnings: list[str] = []
    blocks = args.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks) if blocks.strip() else None
        except ValueError:
            raise ApiError("invalid_blocks_format") from None
    if blocks is not None and not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    attachments = _json_arg(args, "attachments", "invalid_attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    text = args.get("text")
    text = None if text is None else str(text)
    if require_content and not text and not blocks and not attachments:
        raise ApiError("no_text")
    if blocks:
        val: Validation = validate_blocks(blocks, surface)
        if not val.ok:
            raise _blocks_error(val.errors)
        _record_lint(emu, val.lint, method, channel)
    if attachments and len(attachments) > 100:
        raise ApiError("too_many_attachments")
    if text is not None:
        if max_text == MAX_UPDATE_TEXT and len(text) > MAX_UPDATE_TEXT:
            raise ApiError("msg_too_long")
        if len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]
            warnings.append("message_truncated")
        if args.get("mrkdwn") not in (False, "false", "0"):
            _record_lint(emu, lint_mrkdwn(text, "/text"), method, channel)
    if text is not None:
        content["text"] = text
    if blocks is not None:
        content["blocks"] = blocks
    if attachments is not None:
        content["attachments"] = attachments
    for key in ("metadata", "unfurl_links", "unfurl_media"):
        if key in args:
            content[key] = _json_arg(args, key, "invalid_metadata_format") if key == "metadata" else args[key]
    return content, warnings


def _warn(body: JSONDict, warnings: list[str]) -> JSONDict:
    if warnings:
        body["warning"] = ",".join(warnings)
        body["response_metadata"] = {
            "warnings": warnings,
            "messages": ["[WARN] Your message was truncated to 40000 characters."]
            if "message_truncated" in warnings
            else [],
        }
    return body


# ---------------------------------------------------------------- channel access
def resolve_channel(emu: SlackEmulator, ref: str | None) -> Channel:
    """Find a channel by id, name or ``#name``; a user id opens (creates) the bot's DM with them."""
    ws = emu.workspace
    if not ref:
        raise ApiError("channel_not_found")
    ref = str(ref)
    with ws.lock:
        if ref in ws.channels:
            return ws.channels[ref]
        name = ref.lstrip("#")
        for chan in ws.channels.values():
            if chan.name == name and not chan.is_im:
                return chan
        if ref[:1] in ("U", "W") and ref in ws.users:
            dm_id = "D" + ref[1:]
            dm = ws.channels.get(dm_id)
            if dm is None:
                dm = Channel(id=dm_id, name=ref, members=[ref, ws.bot_user_id], is_im=True, created=int(ws.clock.now()))
                ws.channels[dm_id] = dm
            return dm
    raise ApiError("channel_not_found")


def visible_channel(emu: SlackEmulator, ref: str | None) -> Channel:
    """A channel the bot can see: private channels it is not in look like they don't exist."""
    chan = resolve_channel(emu, ref)
    if (chan.is_private or chan.is_im) and emu.workspace.bot_user_id not in chan.members:
        raise ApiError("channel_not_found")
    return chan


def writable_channel(emu: SlackEmulator, ref: str | None, allow_public: bool = True) -> Channel:
    """A channel the bot may post to (member, or public with chat:write.public)."""
    chan = visible_channel(emu, ref)
    if chan.is_archived:
        raise ApiError("is_archived")
    if emu.workspace.bot_user_id not in chan.members and not (allow_public and "chat:write.public" in emu.scopes):
        raise ApiError("not_in_channel")
    return chan


def bot_message(emu: SlackEmulator, content: JSONDict, ts: str) -> JSONDict:
    ws = emu.workspace
    msg: JSONDict = {
        "type": "message",
        "user": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "app_id": ws.app_id,
        "text": content.get("text", ""),
        "ts": ts,
        "team": ws.team_id,
        "bot_profile": {
            "id": ws.bot_id,
            "app_id": ws.app_id,
            "name": emu.bot_name,
            "deleted": False,
            "team_id": ws.team_id,
        },
    }
    msg.update({k: v for k, v in content.items() if k != "text"})
    if isinstance(msg.get("blocks"), list):
        msg["blocks"] = assign_ids(msg["blocks"])
    return msg


def assign_ids(blocks: list[Any]) -> list[Any]:
    """Copy of ``blocks`` with Slack's generated ``block_id``/``action_id`` where the app gave none."""
    out = copy.deepcopy(blocks)
    for block in out:
        if not isinstance(block, dict):
            continue
        block.setdefault("block_id", secrets.token_urlsafe(3))
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for el in elements:
            if isinstance(el, dict) and el.get("type") not in ("image", "plain_text", "mrkdwn"):
                el.setdefault("action_id", secrets.token_urlsafe(3))
    return out


def _thread_parent(emu: SlackEmulator, channel: str, thread_ts: Any) -> str | None:
    if thread_ts in (None, ""):
        return None
    thread_ts = str(thread_ts)
    if not _TS_RE.match(thread_ts):
        raise ApiError("invalid_thread_ts")
    parent = emu.workspace.get_message(channel, thread_ts)
    if parent is None:
        raise ApiError("thread_not_found")
    # replying to a reply lands in the parent's thread, like Slack
    return str(parent.get("thread_ts") or thread_ts)


def post_bot_message(
    emu: SlackEmulator, channel: Channel, content: JSONDict, thread_ts: str | None, broadcast: bool = False
) -> JSONDict:
    """Store a bot-authored message and return a copy of it."""
    ws = emu.workspace
    with ws.lock:
        msg = bot_message(emu, content, ws.new_ts())
        if thread_ts:
            msg["thread_ts"] = thread_ts
            msg["parent_user_id"] = (ws.get_message(channel.id, thread_ts) or {}).get("user")
            if broadcast:
                msg["subtype"] = "thread_broadcast"
        ws.store_message(channel.id, msg)
        return copy.deepcopy(msg)


# ---------------------------------------------------------------- auth
def auth_test(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    ws = emu.workspace
    return {
        "ok": True,
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": emu.team_name,
        "user": emu.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def apps_connections_open(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    return {"ok": True, "url": emu.socket.mint_url()}


# ---------------------------------------------------------------- chat.*
def chat_post_message(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = writable_channel(emu, args.get("channel"))
    content, warnings = check_content(emu, args, "chat.postMessage", chan.id)
    thread_ts = _thread_parent(emu, chan.id, args.get("thread_ts"))
    retry_after = emu.faults.take_post_token(chan.id)
    if retry_after is not None:
        raise ApiError("ratelimited", status=429, headers={"Retry-After": str(retry_after)})
    msg = post_bot_message(emu, chan, content, thread_ts, truthy(args.get("reply_broadcast")))
    return _warn({"ok": True, "channel": chan.id, "ts": msg["ts"], "message": msg}, warnings)


def chat_update(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    ts = _need(args, "ts", "message_not_found")
    ws = emu.workspace
    with ws.lock:
        msg = ws.get_message(chan.id, ts)
        if msg is None:
            raise ApiError("message_not_found")
        if msg.get("bot_id") != ws.bot_id:
            raise ApiError("cant_update_message")
        content, warnings = check_content(emu, args, "chat.update", chan.id, max_text=MAX_UPDATE_TEXT)
        ws.edits.setdefault((chan.id, ts), []).append(copy.deepcopy(msg))
        msg.update(content)
        if isinstance(content.get("blocks"), list):
            msg["blocks"] = assign_ids(content["blocks"])
        msg["edited"] = {"user": ws.bot_user_id, "ts": ws.new_ts()}
        out = copy.deepcopy(msg)
    return _warn({"ok": True, "channel": chan.id, "ts": ts, "text": out.get("text", ""), "message": out}, warnings)


def chat_delete(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    ts = _need(args, "ts", "message_not_found")
    ws = emu.workspace
    with ws.lock:
        msg = ws.get_message(chan.id, ts)
        if msg is None:
            raise ApiError("message_not_found")
        if msg.get("bot_id") != ws.bot_id:
            raise ApiError("cant_delete_message")
        ws.deleted.append(ws.messages[chan.id].pop(ts))
    return {"ok": True, "channel": chan.id, "ts": ts}


def chat_post_ephemeral(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = writable_channel(emu, args.get("channel"))
    user = str(args.get("user") or "")
    ws = emu.workspace
    if user not in ws.users or user not in chan.members:
        raise ApiError("user_not_in_channel")
    content, warnings = check_content(emu, args, "chat.postEphemeral", chan.id)
    thread_ts = args.get("thread_ts") or None
    with ws.lock:
        msg = bot_message(emu, content, ws.new_ts())
        msg["subtype"] = "ephemeral"
        ws.ephemerals.append(Ephemeral(chan.id, user, msg, "chat.postEphemeral", str(thread_ts) if thread_ts else None))
    return _warn({"ok": True, "message_ts": msg["ts"]}, warnings)


def chat_get_permalink(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    ts = str(args.get("message_ts") or "")
    msg = emu.workspace.get_message(chan.id, ts)
    if msg is None:
        raise ApiError("message_not_found")
    link = f"https://{emu.workspace.team_domain}.slack.com/archives/{chan.id}/p{ts.replace('.', '')}"
    if msg.get("thread_ts") and msg["thread_ts"] != ts:
        link += f"?thread_ts={msg['thread_ts']}&cid={chan.id}"
    return {"ok": True, "channel": chan.id, "permalink": link}


# ---------------------------------------------------------------- views.*
def _parse_view(emu: SlackEmulator, args: JSONDict, method: str) -> JSONDict:
    view = _json_arg(args, "view", "invalid_arguments")
    if view is None:
        raise _invalid("missing required field: view")
    val = validate_view(view)
    if not val.ok:
        raise _invalid(*val.errors)
    _record_lint(emu, val.lint, method, None)
    size = len(json.dumps(view))
    if size > 250_000:
        raise ApiError("view_too_large")
    assert isinstance(view, dict)
    return view


def _use_trigger(emu: SlackEmulator, trigger_id: str | None) -> None:
    ws = emu.workspace
    if not trigger_id:
        raise _invalid("missing required field: trigger_id")
    with ws.lock:
        if not _TRIGGER_RE.match(trigger_id) or trigger_id not in ws.triggers:
            raise ApiError("invalid_trigger_id")
        created, used = ws.triggers[trigger_id]
        if used:
            raise ApiError("exchanged_trigger_id")
        if ws.clock.now() - created > TRIGGER_TTL:
            raise ApiError("expired_trigger_id")
        ws.triggers[trigger_id] = (created, True)


def _check_external_id(emu: SlackEmulator, view: JSONDict, own_id: str | None) -> None:
    ext = view.get("external_id")
    if ext:
        for other in emu.workspace.views.values():
            if other.external_id == ext and other.id != own_id and other.state != "closed":
                raise ApiError("duplicate_external_id")


def view_api(emu: SlackEmulator, v: View) -> JSONDict:
    """The ``view`` object Slack returns (and puts into interaction payloads)."""
    ws = emu.workspace
    d = v.data
    out: JSONDict = {
        "id": v.id,
        "team_id": ws.team_id,
        "type": v.type,
        "blocks": copy.deepcopy(d.get("blocks", [])),
        "private_metadata": d.get("private_metadata", ""),
        "callback_id": d.get("callback_id", ""),
        "state": {"values": {}},
        "hash": v.hash,
        "clear_on_close": bool(d.get("clear_on_close", False)),
        "notify_on_close": bool(d.get("notify_on_close", False)),
        "root_view_id": v.root_view_id,
        "previous_view_id": v.previous_view_id,
        "app_id": ws.app_id,
        "external_id": d.get("external_id", ""),
        "app_installed_team_id": ws.team_id,
        "bot_id": ws.bot_id,
    }
    for key in ("title", "submit", "close"):
        out[key] = copy.deepcopy(d.get(key))
    return out


def _new_hash(emu: SlackEmulator) -> str:
    return f"{int(emu.workspace.clock.now())}.{secrets.token_hex(4)}"


def _store_view(emu: SlackEmulator, view: JSONDict, user: str, previous: View | None) -> View:
    ws = emu.workspace
    vid = ws.new_id("V")
    data = copy.deepcopy(view)
    data["blocks"] = assign_ids(data.get("blocks") or [])
    v = View(
        id=vid,
        user=user,
        type=str(view["type"]),
        data=data,
        hash=_new_hash(emu),
        root_view_id=previous.root_view_id if previous else vid,
        previous_view_id=previous.id if previous else None,
        external_id=view.get("external_id") or None,
    )
    ws.views[vid] = v
    return v


def views_open(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    view = _parse_view(emu, args, "views.open")
    if view.get("type") != "modal":
        raise _invalid("must be a valid enum value: modal [json-pointer:/view/type]")
    trigger = args.get("trigger_id") or args.get("interactivity_pointer")
    with emu.workspace.lock:
        _use_trigger(emu, str(trigger) if trigger else None)
        _check_external_id(emu, view, None)
        user = emu.trigger_users.get(str(trigger), "")
        v = _store_view(emu, view, user, None)
        return {"ok": True, "view": view_api(emu, v)}


def views_push(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    view = _parse_view(emu, args, "views.push")
    trigger = args.get("trigger_id") or args.get("interactivity_pointer")
    ws = emu.workspace
    with ws.lock:
        _use_trigger(emu, str(trigger) if trigger else None)
        user = emu.trigger_users.get(str(trigger), "")
        top = next(
            (
                v
                for v in reversed(list(ws.views.values()))
                if v.user == user and v.type == "modal" and v.state == "open"
            ),
            None,
        )
        if top is None:
            raise ApiError("not_found")
        root = ws.views[top.root_view_id]
        if root.push_count >= 2:
            raise ApiError("push_limit_reached")
        root.push_count += 1
        _check_external_id(emu, view, None)
        v = _store_view(emu, view, user, top)
        return {"ok": True, "view": view_api(emu, v)}


def views_update(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    view = _parse_view(emu, args, "views.update")
    ws = emu.workspace
    with ws.lock:
        target: View | None = None
        if args.get("view_id"):
            target = ws.views.get(str(args["view_id"]))
        elif args.get("external_id"):
            target = next((v for v in ws.views.values() if v.external_id == args["external_id"]), None)
        else:
            raise ApiError("invalid_arguments")
        if target is None:
            raise ApiError("not_found")
        if args.get("hash") and args["hash"] != target.hash:
            raise ApiError("hash_conflict")
        _check_external_id(emu, view, target.id)
        target.data = copy.deepcopy(view)
        target.data["blocks"] = assign_ids(view.get("blocks") or [])
        target.type = str(view["type"])
        target.external_id = view.get("external_id") or target.external_id
        target.hash = _new_hash(emu)
        return {"ok": True, "view": view_api(emu, target)}


def views_publish(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    view = _parse_view(emu, args, "views.publish")
    if view.get("type") != "home":
        raise _invalid("must be a valid enum value: home [json-pointer:/view/type]")
    if not emu.home_tab_enabled:
        raise ApiError("not_enabled")
    ws = emu.workspace
    user = str(args.get("user_id") or "")
    with ws.lock:
        if user not in ws.users:
            raise ApiError("user_not_found")
        existing = ws.views.get(ws.home_views.get(user, ""))
        if existing is not None:
            if args.get("hash") and args["hash"] != existing.hash:
                raise ApiError("hash_conflict")
            existing.data = copy.deepcopy(view)
            existing.data["blocks"] = assign_ids(view.get("blocks") or [])
            existing.hash = _new_hash(emu)
            v = existing
        else:
            v = _store_view(emu, view, user, None)
            v.state = "published"
            ws.home_views[user] = v.id
        return {"ok": True, "view": view_api(emu, v)}


# ---------------------------------------------------------------- users / groups / conversations
def user_api(emu: SlackEmulator, u: User) -> JSONDict:
    ws = emu.workspace
    profile: JSONDict = {
        "real_name": u.real_name or u.name,
        "display_name": u.name,
        "real_name_normalized": u.real_name or u.name,
        "display_name_normalized": u.name,
        "status_text": "",
        "status_emoji": "",
        "team": ws.team_id,
        "image_48": "https://emulated.slack-edge.com/avatar_48.png",
    }
    if u.email and "users:read.email" in emu.scopes:
        profile["email"] = u.email
    if u.is_bot:
        profile["bot_id"] = ws.bot_id if u.id == ws.bot_user_id else "B" + u.id[1:]
    return {
        "id": u.id,
        "team_id": ws.team_id,
        "name": u.name,
        "deleted": u.deleted,
        "color": "9f69e7",
        "real_name": u.real_name or u.name,
        "tz": u.tz,
        "tz_label": "Coordinated Universal Time",
        "tz_offset": 0,
        "profile": profile,
        "is_admin": u.is_admin,
        "is_owner": False,
        "is_primary_owner": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "is_bot": u.is_bot,
        "is_app_user": False,
        "updated": 1700000000,
    }


def users_info(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    u = emu.workspace.users.get(str(args.get("user") or ""))
    if u is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user_api(emu, u)}


def users_lookup_by_email(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    email = str(args.get("email") or "").lower()
    for u in emu.workspace.users.values():
        if u.email and u.email.lower() == email:
            return {"ok": True, "user": user_api(emu, u)}
    raise ApiError("users_not_found")


def _group_api(emu: SlackEmulator, g: Any, include_users: bool) -> JSONDict:
    out: JSONDict = {
        "id": g.id,
        "team_id": emu.workspace.team_id,
        "is_usergroup": True,
        "is_subteam": True,
        "name": g.name or g.handle,
        "description": g.description,
        "handle": g.handle,
        "is_external": False,
        "date_create": 1700000000,
        "date_update": 1700000000,
        "date_delete": 1700000001 if g.disabled else 0,
        "auto_type": None,
        "created_by": "USLACKBOT",
        "updated_by": "USLACKBOT",
        "deleted_by": None,
        "prefs": {"channels": [], "groups": []},
        "user_count": str(len(g.users)),
    }
    if include_users:
        out["users"] = list(g.users)
    return out


def usergroups_list(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    inc_users = truthy(args.get("include_users"))
    inc_disabled = truthy(args.get("include_disabled"))
    groups = [
        _group_api(emu, g, inc_users) for g in emu.workspace.usergroups.values() if inc_disabled or not g.disabled
    ]
    return {"ok": True, "usergroups": groups}


def usergroups_users_list(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    g = emu.workspace.usergroups.get(str(args.get("usergroup") or ""))
    if g is None or (g.disabled and not truthy(args.get("include_disabled"))):
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(g.users)}


def conversations_info(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    out: JSONDict = {
        "id": chan.id,
        "name": chan.name,
        "is_channel": not chan.is_private and not chan.is_im,
        "is_group": chan.is_private,
        "is_im": chan.is_im,
        "is_mpim": False,
        "is_private": chan.is_private,
        "is_archived": chan.is_archived,
        "is_general": chan.name == "general",
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "is_member": emu.workspace.bot_user_id in chan.members,
        "created": chan.created,
        "creator": "USLACKBOT",
        "context_team_id": emu.workspace.team_id,
        "topic": {"value": chan.topic, "creator": "", "last_set": 0},
        "purpose": {"value": chan.purpose, "creator": "", "last_set": 0},
    }
    if chan.is_im:
        out["user"] = chan.name
    if truthy(args.get("include_num_members")):
        out["num_members"] = len(chan.members)
    return {"ok": True, "channel": out}


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def conversations_members(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    try:
        limit = int(args.get("limit") or 100)
    except (TypeError, ValueError):
        raise ApiError("invalid_limit") from None
    if limit < 1 or limit > 1000:
        raise ApiError("invalid_limit")
    offset = 0
    cursor = args.get("cursor")
    if cursor:
        try:
            kind, _, num = base64.b64decode(str(cursor), validate=True).decode().partition(":")
            offset = int(num)
            if kind != "offset" or offset < 0:
                raise ValueError
        except ValueError:
            raise ApiError("invalid_cursor") from None
    members = chan.members[offset : offset + limit]
    nxt = offset + limit
    return {
        "ok": True,
        "members": members,
        "response_metadata": {"next_cursor": _cursor(nxt) if nxt < len(chan.members) else ""},
    }


def conversations_replies(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    ts = str(args.get("ts") or "")
    msgs = emu.workspace.thread(chan.id, ts)
    if not msgs:
        raise ApiError("thread_not_found")
    return {"ok": True, "messages": msgs, "has_more": False, "response_metadata": {"next_cursor": ""}}


def conversations_history(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    chan = visible_channel(emu, args.get("channel"))
    msgs = list(reversed(emu.workspace.top_level(chan.id)))
    limit = int(args.get("limit") or 100)
    return {
        "ok": True,
        "messages": msgs[:limit],
        "has_more": len(msgs) > limit,
        "response_metadata": {"next_cursor": ""},
    }


# ---------------------------------------------------------------- files.*
ALT_TXT_LIMIT = 1000
"""files.getUploadURLExternal: "Description for the image is longer than the limit of 1000 character"
(`alt_txt_too_large`, the method's documented errors)."""


def files_get_upload_url_external(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    filename = args.get("filename")
    if not filename:
        raise _invalid("missing required field: filename")
    try:
        length = int(args.get("length") or 0)
    except ValueError:
        raise ApiError("invalid_arguments") from None
    if length <= 0:
        raise ApiError("missing_argument")
    alt_txt = args.get("alt_txt")
    if alt_txt is not None and len(str(alt_txt)) > ALT_TXT_LIMIT:
        raise ApiError("alt_txt_too_large")
    ws = emu.workspace
    with ws.lock:
        fid = ws.new_id("F")
        up_token = secrets.token_urlsafe(12)
        ws.files[fid] = StoredFile(
            id=fid,
            filename=str(filename),
            length=length,
            created=ws.clock.now(),
            alt_txt=args.get("alt_txt"),
            snippet_type=args.get("snippet_type"),
            user=ws.bot_user_id,
        )
        ws.upload_tokens[up_token] = fid
    return {"ok": True, "upload_url": f"{emu.base_url}/upload/v1/{up_token}", "file_id": fid}


def files_complete_upload_external(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    files = _json_arg(args, "files", "invalid_arguments")
    if not isinstance(files, list) or not files:
        raise ApiError("invalid_arguments")
    ws = emu.workspace
    channel_ids: list[str] = []
    if args.get("channel_id"):
        channel_ids.append(str(args["channel_id"]))
    if args.get("channels"):
        channel_ids.extend(c.strip() for c in str(args["channels"]).split(",") if c.strip())
    chans = [writable_channel(emu, c, allow_public=False) for c in channel_ids]
    with ws.lock:
        stored: list[StoredFile] = []
        for item in files:
            f = ws.files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if f is None or f.content is None:
                raise ApiError("file_not_found")
            stored.append(f)
        for item, f in zip(files, stored, strict=True):
            f.title = item.get("title") or f.filename
            f.completed = True
            f.initial_comment = args.get("initial_comment")
        thread_ts = None
        for chan in chans:
            thread_ts = _thread_parent(emu, chan.id, args.get("thread_ts"))
            content: JSONDict = {
                "text": args.get("initial_comment") or "",
                "upload": True,
                "files": [f.to_api(ws.team_id) for f in stored],
            }
            if args.get("blocks"):
                content.update(check_content(emu, args, "files.completeUploadExternal", chan.id)[0])
            for f in stored:
                f.channels.append(chan.id)
                f.thread_ts = thread_ts
            post_bot_message(emu, chan, content, thread_ts)
        return {"ok": True, "files": [{"id": f.id, "title": f.title} | f.to_api(ws.team_id) for f in stored]}


def files_info(emu: SlackEmulator, args: JSONDict, token: str) -> JSONDict:
    f = emu.workspace.files.get(str(args.get("file") or ""))
    if f is None or not f.completed:
        raise ApiError("file_not_found")
    return {
        "ok": True,
        "file": f.to_api(emu.workspace.team_id),
        "comments": [],
        "response_metadata": {"next_cursor": ""},
    }


METHODS: dict[str, MethodSpec] = {
    "auth.test": MethodSpec(auth_test),
    "apps.connections.open": MethodSpec(apps_connections_open, token_type="app"),  # noqa: S106
    "chat.postMessage": MethodSpec(chat_post_message, scope="chat:write"),
    "chat.update": MethodSpec(chat_update, scope="chat:write"),
    "chat.delete": MethodSpec(chat_delete, scope="chat:write"),
    "chat.postEphemeral": MethodSpec(chat_post_ephemeral, scope="chat:write"),
    "chat.getPermalink": MethodSpec(chat_get_permalink),
    "views.open": MethodSpec(views_open),
    "views.push": MethodSpec(views_push),
    "views.update": MethodSpec(views_update),
    "views.publish": MethodSpec(views_publish),
    "users.info": MethodSpec(users_info, scope="users:read"),
    "users.lookupByEmail": MethodSpec(users_lookup_by_email, scope="users:read.email"),
    "usergroups.list": MethodSpec(usergroups_list, scope="usergroups:read"),
    "usergroups.users.list": MethodSpec(usergroups_users_list, scope="usergroups:read"),
    "conversations.info": MethodSpec(conversations_info, scope="channels:read"),
    "conversations.members": MethodSpec(conversations_members, scope="channels:read"),
    "conversations.history": MethodSpec(conversations_history, scope="channels:history"),
    "conversations.replies": MethodSpec(conversations_replies, scope="channels:history"),
    "files.getUploadURLExternal": MethodSpec(files_get_upload_url_external, scope="files:write"),
    "files.completeUploadExternal": MethodSpec(files_complete_upload_external, scope="files:write"),
    "files.info": MethodSpec(files_info, scope="files:read"),
}
