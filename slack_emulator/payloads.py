"""Builders for the payloads Slack sends to an app.

Owns the exact shapes of slash-command fields, ``block_actions``, ``view_submission``
and ``event_callback`` bodies (see docs/slack-platform.md §2-§4), derived from the
emulator's stored state (the real button value from the stored message, the real
view with ``type``, callback_id, private_metadata, state values typed per element).
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import TYPE_CHECKING, Any

from .webapi import view_api

if TYPE_CHECKING:
    from .emulator import SlackEmulator
    from .state import View

JSONDict = dict[str, Any]


def _team(emu: SlackEmulator) -> JSONDict:
    return {"id": emu.workspace.team_id, "domain": emu.workspace.team_domain}


def _user(emu: SlackEmulator, user_id: str) -> JSONDict:
    u = emu.workspace.user_obj(user_id)
    return {"id": u.id, "username": u.name, "name": u.name, "team_id": emu.workspace.team_id}


def channel_name(emu: SlackEmulator, channel_id: str) -> str:
    chan = emu.workspace.channels.get(channel_id)
    if chan is None:
        return "privategroup" if channel_id.startswith("G") else "unknown"
    return "directmessage" if chan.is_im else chan.name


def command_fields(
    emu: SlackEmulator, command: str, text: str, *, user_id: str, channel_id: str, response_url: str, trigger_id: str
) -> dict[str, str]:
    """Slash command fields in Slack's order (all strings)."""
    ws = emu.workspace
    return {
        "token": emu.verification_token,
        "team_id": ws.team_id,
        "team_domain": ws.team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name(emu, channel_id),
        "user_id": user_id,
        "user_name": ws.user_obj(user_id).name,
        "command": command,
        "text": text,
        "api_app_id": ws.app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def find_element(blocks: list[Any], action_id: str) -> tuple[str, JSONDict] | None:
    """(block_id, element) for the interactive element with ``action_id``."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates.extend(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                candidates.append(block[key])
        for el in candidates:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return str(block.get("block_id", "")), el
    return None


def _options(el: JSONDict) -> list[JSONDict]:
    opts = list(el.get("options") or [])
    for group in el.get("option_groups") or []:
        opts.extend(group.get("options") or [])
    return opts


def _pick(el: JSONDict, value: Any) -> JSONDict | None:
    for opt in _options(el):
        if opt.get("value") == value:
            return copy.deepcopy(opt)
    return None


def action_from_element(block_id: str, el: JSONDict, selected: Any = None) -> JSONDict:
    """The ``actions[]`` item Slack sends for a click/selection on ``el``."""
    etype = el.get("type")
    action: JSONDict = {
        "type": etype,
        "block_id": block_id,
        "action_id": el.get("action_id"),
        "action_ts": f"{time.time():.6f}",
    }
    if etype == "button":
        action["text"] = copy.deepcopy(el.get("text"))
        if "value" in el:
            action["value"] = el["value"]
        if "style" in el:
            action["style"] = el["style"]
    elif etype in ("static_select", "overflow", "radio_buttons", "external_select"):
        action["selected_option"] = _pick(el, selected) or ({"value": selected} if selected is not None else None)
    elif etype in ("multi_static_select", "checkboxes"):
        action["selected_options"] = [_pick(el, v) or {"value": v} for v in (selected or [])]
    elif etype == "users_select":
        action["selected_user"] = selected
    elif etype == "conversations_select":
        action["selected_conversation"] = selected
    elif etype == "channels_select":
        action["selected_channel"] = selected
    elif etype == "datepicker":
        action["selected_date"] = selected
    elif etype == "timepicker":
        action["selected_time"] = selected
    elif selected is not None:
        action["value"] = selected
    return action


def state_value(el: JSONDict, given: Any) -> JSONDict:
    """One ``view.state.values[block][action]`` entry, typed like Slack's for element ``el``."""
    etype = str(el.get("type"))
    if isinstance(given, dict):
        return {"type": etype, **given}
    if etype in ("static_select", "radio_buttons", "external_select"):
        return {"type": etype, "selected_option": _pick(el, given) if given is not None else None}
    if etype in ("multi_static_select", "checkboxes"):
        return {"type": etype, "selected_options": [_pick(el, v) or {"value": v} for v in (given or [])]}
    key = {
        "users_select": "selected_user",
        "conversations_select": "selected_conversation",
        "channels_select": "selected_channel",
        "datepicker": "selected_date",
        "timepicker": "selected_time",
        "multi_users_select": "selected_users",
        "multi_conversations_select": "selected_conversations",
        "multi_channels_select": "selected_channels",
    }.get(etype, "value")
    return {"type": etype, key: given}


def view_state(view: View, values: dict[str, Any] | None) -> JSONDict:
    """Full ``state.values`` for every input block; ``values`` is {block_id: {action_id: v}} or {action_id: v}."""
    values = values or {}
    out: JSONDict = {}
    for block in view.data.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") not in ("input", "actions", "section"):
            continue
        els = [block["element"]] if block.get("type") == "input" and isinstance(block.get("element"), dict) else []
        if block.get("type") == "actions":
            els = [e for e in block.get("elements") or [] if isinstance(e, dict) and e.get("type") != "button"]
        if (
            block.get("type") == "section"
            and isinstance(block.get("accessory"), dict)
            and block["accessory"].get("type") not in ("button", "image", "overflow")
        ):
            els = [block["accessory"]]
        bid = str(block.get("block_id"))
        for el in els:
            aid = str(el.get("action_id"))
            by_block = values.get(bid)
            if isinstance(by_block, dict) and aid in by_block:
                given = by_block[aid]
            elif aid in values:
                given = values[aid]
            else:
                given = _initial(el)
            out.setdefault(bid, {})[aid] = state_value(el, given)
    return out


def _initial(el: JSONDict) -> Any:
    if "initial_value" in el:
        return el["initial_value"]
    if "initial_option" in el:
        return el["initial_option"].get("value")
    if "initial_options" in el:
        return [o.get("value") for o in el["initial_options"]]
    for key in ("initial_user", "initial_conversation", "initial_channel", "initial_date", "initial_time"):
        if key in el:
            return el[key]
    return None


def block_actions(
    emu: SlackEmulator,
    user_id: str,
    action: JSONDict,
    trigger_id: str,
    *,
    channel_id: str | None = None,
    message: JSONDict | None = None,
    is_ephemeral: bool = False,
    response_url: str | None = None,
    view: View | None = None,
    state_values: JSONDict | None = None,
) -> JSONDict:
    """A ``block_actions`` payload from a message (channel/message/response_url) or a view."""
    ws = emu.workspace
    payload: JSONDict = {
        "type": "block_actions",
        "user": _user(emu, user_id),
        "api_app_id": ws.app_id,
        "token": emu.verification_token,
        "team": _team(emu),
        "enterprise": None,
        "is_enterprise_install": False,
        "trigger_id": trigger_id,
    }
    if view is not None:
        v = view_api(emu, view)
        v["state"] = {"values": view_state(view, state_values)}
        payload["container"] = {"type": "view", "view_id": view.id}
        payload["view"] = v
        payload["state"] = v["state"]
    else:
        assert message is not None and channel_id is not None
        container: JSONDict = {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel_id,
            "is_ephemeral": is_ephemeral,
        }
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        payload["container"] = container
        payload["channel"] = {"id": channel_id, "name": channel_name(emu, channel_id)}
        payload["message"] = copy.deepcopy(message)
        payload["state"] = {"values": state_values or {}}
        payload["response_url"] = response_url
    payload["actions"] = [action]
    return payload


def view_submission(
    emu: SlackEmulator, view: View, user_id: str, trigger_id: str, values: dict[str, Any] | None
) -> JSONDict:
    """A ``view_submission`` payload (``view.type`` always present)."""
    v = view_api(emu, view)
    v["state"] = {"values": view_state(view, values)}
    return {
        "type": "view_submission",
        "team": _team(emu),
        "user": _user(emu, user_id),
        "api_app_id": emu.workspace.app_id,
        "token": emu.verification_token,
        "trigger_id": trigger_id,
        "view": v,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def event_callback(emu: SlackEmulator, event: JSONDict) -> JSONDict:
    """Wrap an inner event in the ``event_callback`` envelope."""
    ws = emu.workspace
    event = dict(event)
    event.setdefault("event_ts", ws.new_ts())
    return {
        "token": emu.verification_token,
        "team_id": ws.team_id,
        "api_app_id": ws.app_id,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(ws.clock.now()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.team_id,
                "user_id": ws.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_hex(12),
    }
