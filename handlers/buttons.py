"""Buttons. Each carries the canonical command text (or the id of a stored long command), so a click
re-enters the command path for the person who clicked (their permissions, their confirmation, their
audit record)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.commands.dispatch import execute
from bot.commands.routing import ClusterRouter
from bot.slack.blocks import (
    ACTION_CANCEL,
    ACTION_CONFIRM,
    ACTION_RUN,
    AnswerRenderer,
    render_cancelled,
    render_expired_button,
)
from handlers.replies import answer_on_source, error_message, respond_with, upload_files


def _channel(body: dict[str, Any]) -> str | None:
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return channel.get("id") or container.get("channel_id")


def register_buttons(app: App, router: ClusterRouter, renderer: AnswerRenderer) -> None:
    def run(body: dict[str, Any], respond: Respond, client: WebClient, *, confirmed: bool) -> None:
        action = (body.get("actions") or [{}])[0]
        user = (body.get("user") or {}).get("id")
        channel = _channel(body)
        text = renderer.command_for(str(action.get("value") or ""))
        if text is None:  # a stored long command that expired (or never was): run nothing
            respond_with(respond, render_expired_button())
            return
        try:
            answer = execute(router, text=text, slack_user=user, channel=channel, confirmed=confirmed)
            message = renderer.answer(answer)
        except Exception as e:  # the edge turns every error into a private reply
            respond_with(respond, error_message(e))
            return
        if confirmed:
            source_ephemeral = bool((body.get("container") or {}).get("is_ephemeral"))
            answer_on_source(respond, message, source_ephemeral=source_ephemeral)
        else:
            respond_with(respond, message)
        upload_files(client, message, channel=channel, user=user)

    @app.action(re.compile(f"^{ACTION_RUN}(:.*)?$"))
    def on_run(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        run(body, respond, client, confirmed=False)

    @app.action(ACTION_CONFIRM)
    def on_confirm(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        run(body, respond, client, confirmed=True)

    @app.action(ACTION_CANCEL)
    def on_cancel(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        respond_with(respond, render_cancelled((body.get("user") or {}).get("id")), replace=True)
