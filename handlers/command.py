"""The `/k8s` slash command: ack within Slack's 3 seconds, then work, then replace the placeholder."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.commands.dispatch import execute, is_slow
from bot.commands.routing import ClusterRouter
from bot.errors import UsageError
from bot.slack.blocks import AnswerRenderer
from handlers.replies import (
    ack_payload,
    error_message,
    post_placeholder,
    replace_placeholder,
    respond_with,
    upload_files,
)


def register_command(app: App, router: ClusterRouter, renderer: AnswerRenderer, *, command_name: str) -> None:
    @app.command(command_name)
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond, client: WebClient) -> None:
        text = str(command.get("text") or "")
        user = command.get("user_id")
        channel = command.get("channel_id")
        try:
            parsed = router.parse(text)
        except UsageError as e:
            ack(**ack_payload(error_message(e)))
            return
        if parsed.verb == "help":  # answered inside the ack: no cluster involved
            try:
                answer = execute(router, command=parsed, slack_user=user, channel=channel)
                ack(**ack_payload(renderer.answer(answer)))
            except Exception as e:
                ack(**ack_payload(error_message(e)))
            return
        ack()
        slow = is_slow(router, parsed)
        if slow:
            post_placeholder(respond, parsed.target or parsed.namespace or "it")
        try:
            answer = execute(router, command=parsed, slack_user=user, channel=channel)
            message = renderer.answer(answer)
        except Exception as e:  # the edge turns every error into a private reply
            message = error_message(e)
        if slow:
            replace_placeholder(respond, message)
        else:
            respond_with(respond, message)
        upload_files(client, message, channel=channel, user=user)
