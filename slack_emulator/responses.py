"""response_url endpoints and how acknowledgement bodies become messages.

Owns the response_url life cycle (minted per command/interaction, 5 uses, 30 minutes
on the emulator clock), ``replace_original``/``delete_original``/``response_type``
semantics, and turning a slash-command ack body (HTTP body or Socket-Mode ack
payload) into the ephemeral or in-channel message Slack would show.
"""

from __future__ import annotations

import copy
import json
import secrets
from typing import TYPE_CHECKING, Any

from .state import Ephemeral, ResponseUrl, ResponseUrlPost
from .webapi import ApiError, assign_ids, bot_message, check_content, post_bot_message, resolve_channel

if TYPE_CHECKING:
    from .emulator import SlackEmulator

RESPONSE_URL_TTL = 30 * 60
RESPONSE_URL_USES = 5


def mint_response_url(
    emu: SlackEmulator,
    kind: str,
    channel: str,
    user: str,
    *,
    source_ts: str | None = None,
    source_is_ephemeral: bool = False,
) -> str:
    """Create a response_url (``kind`` is "commands" or "actions") pointing at this emulator."""
    ws = emu.workspace
    with ws.lock:
        rid = f"{ws.team_id}/{secrets.randbelow(10**12)}/{secrets.token_hex(12)}"
        ws.response_urls[rid] = ResponseUrl(
            rid, kind, channel, user, ws.clock.now(), source_ts=source_ts, source_is_ephemeral=source_is_ephemeral
        )
    return f"{emu.base_url}/{kind}/{rid}"


def _apply(emu: SlackEmulator, ru: ResponseUrl, body: dict[str, Any], source: str, record: bool = True) -> None:
    """Apply a response body to workspace state; ``record`` remembers it as posted via the URL."""
    ws = emu.workspace
    target_ts, target_eph = ru.source_ts, ru.source_is_ephemeral
    if ru.kind == "commands" and ru.posted:
        target_ts, target_eph = ru.posted[-1]
    if body.get("delete_original") in (True, "true"):
        if target_ts is None:
            return
        if target_eph:
            eph = ws.find_ephemeral(target_ts)
            if eph:
                eph.deleted = True
        else:
            msg = ws.messages.get(ru.channel, {}).pop(target_ts, None)
            if msg:
                ws.deleted.append(msg)
        return
    content, _warnings = check_content(emu, body, source, ru.channel)
    if isinstance(content.get("blocks"), list):
        content["blocks"] = assign_ids(content["blocks"])
    if body.get("replace_original") in (True, "true") and target_ts is not None:
        if target_eph:
            eph = ws.find_ephemeral(target_ts)
            if eph:
                eph.message.update(content)
                if "blocks" not in content:
                    eph.message.pop("blocks", None)
                return
        else:
            msg = ws.get_message(ru.channel, target_ts)
            if msg is not None:
                ws.edits.setdefault((ru.channel, target_ts), []).append(copy.deepcopy(msg))
                msg.update(content)
                if "blocks" not in content:
                    msg.pop("blocks", None)
                msg["edited"] = {"user": ws.bot_user_id, "ts": ws.new_ts()}
                return
    thread_ts = body.get("thread_ts")
    if body.get("response_type") == "in_channel":
        chan = resolve_channel(emu, ru.channel)
        msg = post_bot_message(emu, chan, content, str(thread_ts) if thread_ts else None)
        if record:
            ru.posted.append((msg["ts"], False))
    else:
        msg = bot_message(emu, content, ws.new_ts())
        msg["subtype"] = "ephemeral"
        ws.ephemerals.append(Ephemeral(ru.channel, ru.user, msg, source, str(thread_ts) if thread_ts else None))
        if record:
            ru.posted.append((msg["ts"], True))


def handle_response_url(emu: SlackEmulator, rid: str, raw: bytes) -> tuple[int, str]:
    """Serve ``POST <response_url>``: returns (HTTP status, plain-text body)."""
    ws = emu.workspace
    url = f"{emu.base_url}/?/{rid}"
    with ws.lock:
        ru = ws.response_urls.get(rid)
        status, result = 200, "ok"
        if ru is None:
            status, result = 404, "invalid_url"
        elif ws.clock.now() - ru.created > RESPONSE_URL_TTL:
            status, result = 404, "expired_url"
        elif ru.uses >= RESPONSE_URL_USES:
            status, result = 404, "used_url"
        body: Any = None
        if ru is not None and status == 200:
            url = f"{emu.base_url}/{ru.kind}/{rid}"
            try:
                body = json.loads(raw.decode("utf-8")) if raw.strip() else None
            except (ValueError, UnicodeDecodeError):
                body = None
            if not isinstance(body, dict):
                status, result = 400, "invalid_payload"
            else:
                try:
                    _apply(emu, ru, body, "response_url")
                    ru.uses += 1
                except ApiError as err:
                    status, result = 400, err.error
        ws.response_posts.append(
            ResponseUrlPost(
                url, body if body is not None else raw.decode("utf-8", "replace"), status, result, ws.clock.now()
            )
        )
        return status, result


def apply_command_ack(emu: SlackEmulator, response_url: str, payload: Any) -> None:
    """Show a slash-command ack body like Slack: text → ephemeral; JSON → per response_type."""
    if payload in (None, "", {}):
        return
    rid = response_url.split("/commands/", 1)[-1]
    ws = emu.workspace
    with ws.lock:
        ru = ws.response_urls.get(rid)
        if ru is None:
            return
        body = {"text": payload} if isinstance(payload, str) else dict(payload)
        try:
            # the ack is not "posted through the response_url", so replace/delete_original skip it
            _apply(emu, ru, body, "ack", record=False)
        except ApiError as err:
            ws.response_posts.append(ResponseUrlPost(response_url, body, 400, f"ack: {err.error}", ws.clock.now()))
