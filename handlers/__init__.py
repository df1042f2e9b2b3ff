"""The Slack edge: thin Bolt listeners. Parse → authorize → one call into bot/ → render.

`register(app, services)` is the one place that wires commands and actions.
"""

from __future__ import annotations

from slack_bolt import App

from bot.context import Services
from bot.verbs import load_all
from handlers.actions import register_actions
from handlers.command import register_command
from handlers.errors import register_error_handler


def register(app: App, services: Services, *, command_name: str = "/k8s") -> None:
    load_all()
    register_command(app, services, command_name=command_name)
    register_actions(app, services)
    register_error_handler(app)
