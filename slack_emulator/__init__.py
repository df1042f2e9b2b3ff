"""k8sbot's faithful local Slack emulator (Web API, response_urls, uploads, Socket Mode, driver).

See docs/slack-emulator.md.  Everything binds 127.0.0.1.
"""

from .blocks import lint_mrkdwn, validate_blocks, validate_view
from .clock import Clock
from .driver import Driver, Result, sign
from .emulator import EmulatorTimeout, SlackEmulator
from .socket_mode import Envelope, SocketConnection, SocketModeServer
from .state import Call, Channel, Ephemeral, Lint, ResponseUrlPost, StoredFile, User, Usergroup, View

__all__ = [
    "Call",
    "Channel",
    "Clock",
    "Driver",
    "EmulatorTimeout",
    "Envelope",
    "Ephemeral",
    "Lint",
    "ResponseUrlPost",
    "Result",
    "SlackEmulator",
    "SocketConnection",
    "SocketModeServer",
    "StoredFile",
    "User",
    "Usergroup",
    "View",
    "lint_mrkdwn",
    "sign",
    "validate_blocks",
    "validate_view",
]
