"""The Slack edge: thin Bolt listeners. Parse → authorize → one call into bot/ → render.

`register(app, router, renderer)` is the one place that wires the command, the buttons and the error
handler; `renderer` (`bot.slack.blocks.AnswerRenderer`) is how every answer becomes a Slack message.
"""

from __future__ import annotations

from slack_bolt import App

from bot.commands.routing import ClusterRouter
from bot.slack.blocks import AnswerRenderer
from handlers.buttons import register_buttons
from handlers.command import register_command
from handlers.errors import register_error_handler


def register(app: App, router: ClusterRouter, renderer: AnswerRenderer, *, command_name: str = "/k8s") -> None:
    register_command(app, router, renderer, command_name=command_name)
    register_buttons(app, router, renderer)
    register_error_handler(app)
