"""The driver: the emulator acting as Slack towards the bot.

Owns sending commands, interactions and events to the bot over either transport with
one API: HTTP mode (signed ``v0`` requests to the bot's URL, 3 s budget) or Socket
Mode (envelopes over the emulator's websocket server, waiting for the ack frame).
It also applies what Slack would do with the answer: a slash-command ack body becomes
an ephemeral/in-channel message, a view_submission ``response_action`` updates or
closes the view.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import payloads
from .blocks import validate_view
from .responses import apply_command_ack, mint_response_url
from .socket_mode import Envelope
from .state import View
from .webapi import ApiError, _store_view, view_api

if TYPE_CHECKING:
    from .emulator import SlackEmulator

JSONDict = dict[str, Any]
TAMPERS = ("bad_signature", "stale_timestamp", "future_timestamp", "no_signature", "non_numeric_timestamp")


def sign(secret: str, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
    """Slack's v0 signature headers over exactly ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + mac.hexdigest()}


@dataclass
class Result:
    """What the bot answered (HTTP response or Socket-Mode ack) to one delivery."""

    mode: str  # "http" | "socket"
    status: int | None  # HTTP status; 200 for a socket ack; None when timed out / not sent
    body: str = ""  # raw HTTP body ("" in socket mode)
    headers: dict[str, str] = field(default_factory=dict)
    payload: JSONDict | None = None  # parsed JSON body (HTTP) or ack payload (socket)
    timed_out: bool = False
    elapsed: float = 0.0
    sent: bool = True  # False when a confirm dialog was denied (nothing sent)
    envelope: Envelope | None = None
    request: JSONDict | dict[str, str] | None = None  # what was sent (payload / fields)
    response_url: str | None = None
    trigger_id: str | None = None
    url: str | None = None  # HTTP: where it was sent
    sent_body: bytes | None = None  # HTTP: the exact bytes sent
    sent_headers: dict[str, str] = field(default_factory=dict)  # HTTP: the exact headers sent (signed)

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.timed_out

    @property
    def text(self) -> str:
        """Text of the ack (plain body, or ``payload["text"]``)."""
        if self.payload is not None:
            return str(self.payload.get("text", ""))
        return self.body

    def json(self) -> JSONDict:
        return json.loads(self.body) if self.body else dict(self.payload or {})


class Driver:
    """Sends Slack-originated traffic to the bot over HTTP or Socket Mode."""

    def __init__(
        self, emu: SlackEmulator, mode: str = "http", url: str | None = None, ack_timeout: float = 3.0
    ) -> None:
        self.emu = emu
        self.mode = mode
        self.url = url
        self.ack_timeout = ack_timeout

    def configure(self, mode: str | None = None, url: str | None = None, ack_timeout: float | None = None) -> None:
        """Set the default transport, the bot's HTTP URL and Slack's ack budget."""
        if mode is not None:
            self.mode = mode
        if url is not None:
            self.url = url
        if ack_timeout is not None:
            self.ack_timeout = ack_timeout

    # ------------------------------------------------------------------ transports
    def http_post(
        self,
        url: str,
        body: bytes,
        content_type: str,
        *,
        tamper: str | None = None,
        extra_headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        """POST ``body`` to the bot, signed (or deliberately mis-signed with ``tamper``)."""
        if tamper is not None and tamper not in TAMPERS:
            raise ValueError(f"tamper must be one of {TAMPERS}")
        now = int(time.time())
        shifted: dict[str, int | str] = {
            "stale_timestamp": now - 301,
            "future_timestamp": now + 200,
            "non_numeric_timestamp": "soon",
        }
        ts: int | str = shifted.get(tamper or "", now)
        headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
        if tamper != "no_signature":
            if tamper == "non_numeric_timestamp":
                headers.update({"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": "v0=" + "0" * 64})
            else:
                headers.update(sign(self.emu.signing_secret, body, ts))
            if tamper == "bad_signature":
                headers["X-Slack-Signature"] = sign(self.emu.signing_secret + "x", body, ts)["X-Slack-Signature"]
        headers.update(extra_headers or {})
        return self._send_http(url, body, headers, timeout=timeout)

    def _send_http(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float | None) -> Result:
        parsed = urllib.parse.urlsplit(url)
        if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the emulator only talks to loopback addresses, not {url}")
        path = parsed.path or "/"
        if parsed.query:
            path += "?" + parsed.query
        start = time.monotonic()
        conn = http.client.HTTPConnection(
            parsed.hostname, parsed.port or 80, timeout=self.ack_timeout if timeout is None else timeout
        )
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode("utf-8", "replace")
            rheaders = {k.lower(): v for k, v in resp.getheaders()}
            status = resp.status
        except TimeoutError:
            return Result(
                "http",
                None,
                timed_out=True,
                elapsed=time.monotonic() - start,
                url=url,
                sent_body=body,
                sent_headers=dict(headers),
            )
        finally:
            conn.close()
        payload: JSONDict | None = None
        if raw.startswith("{") or rheaders.get("content-type", "").startswith("application/json"):
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = None
        return Result(
            "http",
            status,
            raw,
            rheaders,
            payload,
            elapsed=time.monotonic() - start,
            url=url,
            sent_body=body,
            sent_headers=dict(headers),
        )

    def retry(self, sent: Result, reason: str = "http_timeout", *, timeout: float | None = None) -> Result:
        """Deliver an HTTP request again the way Slack retries one: the same body, signed afresh (a
        new timestamp), with ``X-Slack-Retry-Num`` one above the previous attempt's and
        ``X-Slack-Retry-Reason``. Slack documents this for the Events API (``http_timeout`` fires 3 s
        after the first attempt even if it later completes); use it on any request to check that the
        bot does not run one delivery twice."""
        if sent.mode != "http" or sent.sent_body is None or sent.url is None:
            raise ValueError("retry needs the Result of an HTTP request that was sent")
        previous = int(sent.sent_headers.get("X-Slack-Retry-Num", "0"))
        res = self.http_post(
            sent.url,
            sent.sent_body,
            sent.sent_headers.get("Content-Type", "application/x-www-form-urlencoded"),
            extra_headers={"X-Slack-Retry-Num": str(previous + 1), "X-Slack-Retry-Reason": reason},
            timeout=timeout,
        )
        res.request, res.response_url, res.trigger_id = sent.request, sent.response_url, sent.trigger_id
        return res

    def replay(self, sent: Result, *, timeout: float | None = None) -> Result:
        """Send a captured HTTP request again byte for byte: the same body and the same signature
        headers (so the same timestamp). Slack never does this; it is what someone who captured a
        signed request could do inside the 5-minute signature window."""
        if sent.mode != "http" or sent.sent_body is None or sent.url is None:
            raise ValueError("replay needs the Result of an HTTP request that was sent")
        res = self._send_http(sent.url, sent.sent_body, dict(sent.sent_headers), timeout=timeout)
        res.request, res.response_url, res.trigger_id = sent.request, sent.response_url, sent.trigger_id
        return res

    def _mode(self, mode: str | None) -> str:
        m = mode or self.mode
        if m not in ("http", "socket"):
            raise ValueError("mode must be 'http' or 'socket'")
        return m

    def _url(self, url: str | None) -> str:
        u = url or self.url
        if not u:
            raise ValueError("HTTP mode needs the bot URL: pass url= or emu.driver.configure(url=...)")
        return u

    def _socket(
        self, type_: str, payload: JSONDict, accepts: bool, *, wait: bool, timeout: float | None, on_ack: Any = None
    ) -> Result:
        start = time.monotonic()
        env = self.emu.socket.deliver(type_, payload, accepts, on_ack=on_ack)
        if not wait:
            return Result("socket", None, envelope=env, request=payload)
        final = self.emu.socket.wait(env, timeout=timeout if timeout is not None else self.ack_timeout + 10)
        return Result(
            "socket",
            200 if final.acked else None,
            payload=final.ack_payload,
            timed_out=not final.acked,
            elapsed=time.monotonic() - start,
            envelope=final,
            request=payload,
        )

    def _new_trigger(self, user_id: str) -> str:
        trig = self.emu.workspace.mint_trigger()
        self.emu.trigger_users[trig] = user_id
        return trig

    # ------------------------------------------------------------------ slash commands
    def slash_command(
        self,
        text: str = "",
        user_id: str = "",
        channel_id: str = "",
        command: str = "/k8s",
        *,
        mode: str | None = None,
        url: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        tamper: str | None = None,
    ) -> Result:
        """Invoke ``command text`` as ``user_id`` in ``channel_id``; returns the bot's ack.

        The ack body (text or JSON) is shown like Slack does (ephemeral unless
        ``response_type: in_channel``); ``result.response_url``/``trigger_id`` are the minted ones."""
        m = self._mode(mode)
        response_url = mint_response_url(self.emu, "commands", channel_id, user_id)
        trigger = self._new_trigger(user_id)
        fields = payloads.command_fields(
            self.emu,
            command,
            text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            trigger_id=trigger,
        )
        if m == "http":
            res = self.http_post(
                self._url(url),
                urllib.parse.urlencode(fields).encode(),
                "application/x-www-form-urlencoded",
                tamper=tamper,
                timeout=timeout,
            )
            if res.status == 200 and res.body:
                ctype = res.headers.get("content-type", "")
                apply_command_ack(
                    self.emu,
                    response_url,
                    res.payload if ctype.startswith("application/json") and res.payload is not None else res.body,
                )
        else:

            def on_ack(env: Envelope) -> None:
                apply_command_ack(self.emu, response_url, env.ack_payload)

            res = self._socket("slash_commands", dict(fields), True, wait=wait, timeout=timeout, on_ack=on_ack)
        res.request, res.response_url, res.trigger_id = fields, response_url, trigger
        return res

    # ------------------------------------------------------------------ interactivity
    def _send_interactive(
        self,
        payload: JSONDict,
        m: str,
        url: str | None,
        *,
        accepts: bool,
        wait: bool,
        timeout: float | None,
        tamper: str | None,
    ) -> Result:
        if m == "http":
            body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
            res = self.http_post(
                self._url(url), body, "application/x-www-form-urlencoded", tamper=tamper, timeout=timeout
            )
        else:
            res = self._socket("interactive", payload, accepts, wait=wait, timeout=timeout)
        res.request = payload
        return res

    def click(
        self,
        channel: str,
        ts: str,
        action_id: str,
        user_id: str,
        *,
        selected: Any = None,
        confirm: bool = True,
        mode: str | None = None,
        url: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        tamper: str | None = None,
    ) -> Result:
        """Click a button (or choose ``selected`` in a menu) in the stored message ``ts``.

        The action carries the element's real ``value``/``block_id`` from the stored message.
        ``confirm=False`` on an element with a confirm dialog means "deny": nothing is sent."""
        ws = self.emu.workspace
        with ws.lock:
            message = ws.get_message(channel, ts)
            is_eph = False
            if message is None:
                eph = ws.find_ephemeral(ts)
                if eph is None or eph.channel != channel:
                    raise KeyError(f"no message {ts} in {channel}")
                message, is_eph = eph.message, True
            message = json.loads(json.dumps(message))
        found = payloads.find_element(message.get("blocks") or [], action_id)
        if found is None:
            raise KeyError(f"no element with action_id={action_id!r} in message {ts}")
        block_id, element = found
        if "confirm" in element and not confirm:
            return Result(self._mode(mode), None, sent=False)
        response_url = mint_response_url(
            self.emu, "actions", channel, user_id, source_ts=ts, source_is_ephemeral=is_eph
        )
        trigger = self._new_trigger(user_id)
        action = payloads.action_from_element(block_id, element, selected)
        payload = payloads.block_actions(
            self.emu,
            user_id,
            action,
            trigger,
            channel_id=channel,
            message=message,
            is_ephemeral=is_eph,
            response_url=response_url,
        )
        res = self._send_interactive(
            payload, self._mode(mode), url, accepts=False, wait=wait, timeout=timeout, tamper=tamper
        )
        res.response_url, res.trigger_id = response_url, trigger
        return res

    def click_in_view(
        self,
        view_id: str,
        action_id: str,
        user_id: str | None = None,
        *,
        selected: Any = None,
        values: dict[str, Any] | None = None,
        mode: str | None = None,
        url: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> Result:
        """Click/select an element inside an open modal or Home tab."""
        view = self._view(view_id)
        found = payloads.find_element(view.data.get("blocks") or [], action_id)
        if found is None:
            raise KeyError(f"no element with action_id={action_id!r} in view {view_id}")
        user = user_id or view.user
        trigger = self._new_trigger(user)
        action = payloads.action_from_element(found[0], found[1], selected)
        payload = payloads.block_actions(self.emu, user, action, trigger, view=view, state_values=values)
        res = self._send_interactive(
            payload, self._mode(mode), url, accepts=False, wait=wait, timeout=timeout, tamper=None
        )
        res.trigger_id = trigger
        return res

    def _view(self, view_id: str) -> View:
        view = self.emu.workspace.views.get(view_id)
        if view is None:
            raise KeyError(f"no view {view_id}")
        return view

    def submit_view(
        self,
        view_id: str,
        values: dict[str, Any] | None = None,
        user_id: str | None = None,
        *,
        mode: str | None = None,
        url: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        tamper: str | None = None,
    ) -> Result:
        """Submit an open modal with ``values`` ({block_id: {action_id: value}} or {action_id: value}).

        Applies the ack's ``response_action``: none/clear closes the view, ``update`` replaces
        it, ``push`` stacks a new one, ``errors`` keeps it open (see ``emu.view(view_id)``)."""
        view = self._view(view_id)
        user = user_id or view.user
        trigger = self._new_trigger(user)
        payload = payloads.view_submission(self.emu, view, user, trigger, values)
        res = self._send_interactive(
            payload, self._mode(mode), url, accepts=True, wait=wait, timeout=timeout, tamper=tamper
        )
        res.trigger_id = trigger
        if res.ok:
            self._apply_view_ack(view, user, res.payload)
        return res

    def close_view(
        self, view_id: str, user_id: str | None = None, *, mode: str | None = None, url: str | None = None
    ) -> Result | None:
        """User closes the modal: sends ``view_closed`` only if the view set notify_on_close."""
        view = self._view(view_id)
        view.state = "closed"
        if not view.data.get("notify_on_close"):
            return None
        payload = {
            "type": "view_closed",
            "team": {"id": self.emu.workspace.team_id},
            "user": {"id": user_id or view.user},
            "api_app_id": self.emu.workspace.app_id,
            "view": view_api(self.emu, view),
            "is_cleared": False,
        }
        return self._send_interactive(
            payload, self._mode(mode), url, accepts=False, wait=True, timeout=None, tamper=None
        )

    def _apply_view_ack(self, view: View, user: str, ack: JSONDict | None) -> None:
        ws = self.emu.workspace
        action = (ack or {}).get("response_action")
        with ws.lock:
            if action == "errors":
                self.emu.view_errors.append({"view_id": view.id, "errors": (ack or {}).get("errors", {})})
                return
            if action in ("update", "push") and isinstance((ack or {}).get("view"), dict):
                val = validate_view(ack["view"])  # type: ignore[index]
                if not val.ok:
                    self.emu.view_errors.append({"view_id": view.id, "invalid_view": val.errors})
                    return
                if action == "update":
                    view.data = json.loads(json.dumps(ack["view"]))  # type: ignore[index]
                else:
                    with contextlib.suppress(ApiError):
                        _store_view(self.emu, ack["view"], user, view)  # type: ignore[index]
                return
            if action == "clear":
                for v in ws.views.values():
                    if v.root_view_id == view.root_view_id:
                        v.state = "closed"
                return
            view.state = "closed"

    # ------------------------------------------------------------------ events
    def send_event(
        self,
        event: JSONDict,
        mode: str | None = None,
        url: str | None = None,
        *,
        retries: int = 0,
        wait: bool = True,
        timeout: float | None = None,
        tamper: str | None = None,
    ) -> Result:
        """Deliver an inner ``event`` wrapped in ``event_callback``.

        HTTP: up to ``retries`` immediate retries on non-2xx/timeout with X-Slack-Retry-Num/Reason.
        Socket: un-acked envelopes are redelivered automatically (retry_attempt/retry_reason)."""
        body_obj = payloads.event_callback(self.emu, event)
        m = self._mode(mode)
        if m == "socket":
            res = self._socket("events_api", body_obj, False, wait=wait, timeout=timeout)
            res.request = body_obj
            return res
        body = json.dumps(body_obj).encode()
        res = self.http_post(self._url(url), body, "application/json", tamper=tamper, timeout=timeout)
        attempt = 0
        while attempt < retries and not (res.status is not None and 200 <= res.status < 300):
            if res.headers.get("x-slack-no-retry") == "1":
                break
            attempt += 1
            reason = "http_timeout" if res.timed_out else "http_error"
            res = self.http_post(
                self._url(url),
                body,
                "application/json",
                tamper=tamper,
                timeout=timeout,
                extra_headers={"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason},
            )
        res.request = body_obj
        return res

    def user_message(self, channel: str, user_id: str, text: str, thread_ts: str | None = None) -> JSONDict:
        """Store a message typed by a human (no event is sent); returns it."""
        ws = self.emu.workspace
        with ws.lock:
            msg: JSONDict = {
                "type": "message",
                "user": user_id,
                "text": text,
                "ts": ws.new_ts(),
                "team": ws.team_id,
                "client_msg_id": secrets.token_hex(8),
            }
            if thread_ts:
                msg["thread_ts"] = thread_ts
            ws.store_message(channel, msg)
            return dict(msg)

    def app_mention(
        self,
        text: str,
        user_id: str,
        channel_id: str,
        thread_ts: str | None = None,
        *,
        mode: str | None = None,
        url: str | None = None,
        **kw: Any,
    ) -> Result:
        """A human posts ``text`` (should contain ``<@BOT>``) and the bot gets ``app_mention``."""
        msg = self.user_message(channel_id, user_id, text, thread_ts)
        event = {
            "type": "app_mention",
            "user": user_id,
            "text": text,
            "ts": msg["ts"],
            "channel": channel_id,
            "event_ts": msg["ts"],
            "team": self.emu.workspace.team_id,
            "client_msg_id": msg["client_msg_id"],
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.send_event(event, mode, url, **kw)

    def app_home_opened(
        self, user_id: str, tab: str = "home", mode: str | None = None, url: str | None = None, **kw: Any
    ) -> Result:
        """User opens App Home; includes ``view`` if a Home tab was published for them."""
        event: JSONDict = {"type": "app_home_opened", "user": user_id, "channel": "D" + user_id[1:], "tab": tab}
        vid = self.emu.workspace.home_views.get(user_id)
        if vid:
            event["view"] = view_api(self.emu, self.emu.workspace.views[vid])
        return self.send_event(event, mode, url, **kw)

    def url_verification(
        self, challenge: str = "challenge-token", url: str | None = None, tamper: str | None = None
    ) -> Result:
        """Slack's signed url_verification handshake (HTTP only)."""
        body = json.dumps(
            {"token": self.emu.verification_token, "challenge": challenge, "type": "url_verification"}
        ).encode()
        return self.http_post(self._url(url), body, "application/json", tamper=tamper)
