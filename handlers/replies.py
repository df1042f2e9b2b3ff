"""Turning answers and errors into Slack replies (ack payloads, response_url posts, files).

Everything sent here is a `Message` rendered by `bot.slack` and goes out through `payload` /
`Message.to_slack()`; nothing in this module writes Slack text itself.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import Ambiguous, K8sBotError, NotFound, UsageError
from bot.slack.blocks import Message, payload, render_error, render_placeholder
from bot.slack.client import upload_file

log = logging.getLogger(__name__)


def error_message(error: Exception) -> Message:
    """A private, friendly message for any error; unknown ones get a reference id for the logs."""
    if isinstance(error, UsageError):
        return render_error(str(error), usage=error.usage)
    if isinstance(error, NotFound | Ambiguous) and error.candidates:
        label = "Did you mean" if isinstance(error, NotFound) else "Which one"
        return render_error(f"{error} {label}: " + ", ".join(error.candidates[:10]) + "?")
    if isinstance(error, K8sBotError):
        return render_error(str(error))
    reference = uuid.uuid4().hex[:8]
    log.exception("unexpected error (reference %s)", reference, exc_info=error)
    return render_error(f"Something went wrong on my side (reference {reference}). The logs have the details.")


def ack_payload(message: Message) -> dict[str, Any]:
    return payload(message)


def _post(respond: Respond, **body: Any) -> None:
    response = respond(**body)
    status = getattr(response, "status_code", 200)
    if status != 200:
        log.error("response_url post failed with HTTP %s: %s", status, getattr(response, "body", ""))


def respond_with(respond: Respond, message: Message, *, replace: bool = False) -> None:
    """Post via response_url, ephemeral or in the channel as the message says.

    `replace` replaces the message this response_url last posted (or the message a button was on),
    keeping its visibility: Slack cannot turn an ephemeral message into a channel message.
    """
    _post(respond, **payload(message), replace_original=replace)


def post_placeholder(respond: Respond, what: str) -> None:
    """An ephemeral "Looking into …", only for the person who asked, replaced or removed later."""
    respond_with(respond, render_placeholder(what))


def replace_placeholder(respond: Respond, message: Message) -> None:
    """Private answers replace the placeholder; public ones remove it and go to the channel."""
    if message.private:
        respond_with(respond, message, replace=True)
        return
    _post(respond, delete_original=True)
    respond_with(respond, message)


def answer_on_source(respond: Respond, message: Message, *, source_ephemeral: bool) -> None:
    """The result of a confirmed action: the confirmation message becomes the result, in place; a
    public result confirmed on a private preview is also posted for the channel to see."""
    respond_with(respond, message, replace=True)
    if source_ephemeral and not message.private:
        respond_with(respond, message)


def upload_files(client: WebClient, message: Message, *, channel: str | None, user: str | None) -> None:
    """Long output goes to the channel as files (files upload v2), with the names the renderer made safe."""
    if not message.files or not channel:
        return
    for file in message.files:
        try:
            upload_file(client, channel, file)
        except SlackApiError as e:
            log.error("uploading %s to %s for %s failed: %s", file.filename, channel, user, e.response.get("error"))
