"""The single error handler: anything a listener did not turn into a reply is logged with context."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App

log = logging.getLogger(__name__)


def register_error_handler(app: App) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        kind = body.get("type") or ("command" if "command" in body else "?")
        user = (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else body.get("user_id")
        log.error("unhandled %s from %s: %s", kind, user, error, exc_info=error)
