"""The HTTP side of the emulator: Web API, file upload URLs and response_urls.

Owns request parsing (JSON or form bodies, query strings, Bearer or ``token`` param),
token and scope checks, fault injection hook-up, per-call recording and the routing:

* ``POST|GET /api/<method>`` (also ``/<method>`` like Bolt's own mock server)
* ``POST /upload/v1/<token>``   raw bytes for files.getUploadURLExternal
* ``POST /commands/<id>`` and ``/actions/<id>``   response_urls
* ``GET /health``
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .responses import handle_response_url
from .state import Call
from .webapi import METHODS, ApiError

if TYPE_CHECKING:
    from .emulator import SlackEmulator

log = logging.getLogger("slack_emulator.server")
_METHOD_RE = re.compile(r"^/(?:api/)?([a-zA-Z]+(?:\.[a-zA-Z]+)+)/?$")
_DECODE_KEYS = ("blocks", "attachments", "view", "files", "metadata")


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """Parse a Web API request body the way Slack does (JSON object or form)."""
    ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
    if ctype == "application/json":
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ApiError("invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError("json_not_object")
        return data
    try:
        return dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ApiError("invalid_form_data") from None


def _recorded_args(args: dict[str, Any]) -> dict[str, Any]:
    out = dict(args)
    out.pop("token", None)
    for key in _DECODE_KEYS:
        if isinstance(out.get(key), str):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(out[key])
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "SlackEmulator/1.0"
    protocol_version = "HTTP/1.1"
    emu: SlackEmulator  # set on the subclass built by ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), "application/json; charset=utf-8", headers)

    def do_GET(self) -> None:
        self._dispatch(b"")

    def do_POST(self) -> None:
        self._dispatch(self._read())

    def _dispatch(self, raw: bytes) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        try:
            if path == "/health":
                self._send(200, b"ok", "text/plain")
                return
            if path.startswith("/upload/v1/"):
                self._upload(path.rsplit("/", 1)[-1], raw)
                return
            if path.startswith(("/commands/", "/actions/")):
                rid = path.split("/", 2)[2]
                status, text = handle_response_url(self.emu, rid, raw)
                self._send(status, text.encode(), "text/html")
                return
            m = _METHOD_RE.match(path)
            if not m:
                self._send(404, b"not found", "text/plain")
                return
            self._api(m.group(1), parsed.query, raw)
        except Exception:  # pragma: no cover - surfaced through emu.server_errors
            self.emu.server_errors.append(traceback.format_exc())
            log.exception("emulator failure on %s", path)
            self._send_json(500, {"ok": False, "error": "internal_error"})

    def _upload(self, token: str, raw: bytes) -> None:
        ws = self.emu.workspace
        with ws.lock:
            fid = ws.upload_tokens.get(token)
            if fid is None:
                self._send(404, b"upload_url not found", "text/plain")
                return
            ws.files[fid].content = raw
        self._send(200, f"OK - {len(raw)}".encode(), "text/plain")

    def _api(self, method: str, query: str, raw: bytes) -> None:
        emu = self.emu
        headers: dict[str, str] = {}
        args: dict[str, Any] = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        token: str | None = None
        status = 200
        try:
            args.update(parse_body(raw, self.headers.get("Content-Type", "")))
            auth = self.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else args.get("token")
            spec = METHODS.get(method)
            if spec is None:
                raise ApiError("unknown_method")
            kind = emu.token_kind(token)
            if kind is None:
                raise ApiError("not_authed" if not token else "invalid_auth")
            if kind == "revoked":
                raise ApiError("token_revoked")
            if kind != spec.token_type:
                raise ApiError("not_allowed_token_type")
            if kind == "bot":
                headers["x-oauth-scopes"] = ",".join(emu.scopes)
                headers["x-accepted-oauth-scopes"] = spec.scope or ""
            fault = emu.faults.check(method)
            if fault is not None:
                raise ApiError(
                    fault.error,
                    status=fault.status,
                    headers={"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {},
                )
            if spec.scope and kind == "bot" and spec.scope not in emu.scopes:
                raise ApiError("missing_scope", {"needed": spec.scope, "provided": ",".join(emu.scopes)})
            body = spec.func(emu, args, token or "")
        except ApiError as err:
            status = err.status
            headers.update(err.headers)
            body = err.body()
        call = Call(
            method,
            _recorded_args(args),
            body,
            status,
            emu.clock.now(),
            token,
            {k.lower(): v for k, v in self.headers.items()},
        )
        with emu.workspace.lock:
            emu.workspace.calls.append(call)
        self._send_json(status, body, headers)


class ApiServer:
    """ThreadingHTTPServer bound to 127.0.0.1 serving the emulator's HTTP endpoints."""

    def __init__(self, emu: SlackEmulator, host: str = "127.0.0.1", port: int = 0) -> None:
        handler = type("BoundHandler", (_Handler,), {"emu": emu})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-emulator-http", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)
