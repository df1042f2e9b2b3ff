"""What a button's `value` carries: the command text itself, or `cmd:<id>` when the text is too long.

Slack allows 2,000 characters in a button value; a cut command would run something else on click.
A command that fits is carried as it is (a person could have typed it), a longer one is kept in the
`button_commands` table (`bot.store.buttons`) and the value names it. `command_for` turns a clicked
value back into command text, or None when a stored id is unknown or expired: the click then runs
nothing and says so.
"""

from __future__ import annotations

from typing import Protocol

from bot.store.buttons import ButtonCommands

BUTTON_VALUE = 2000
STORED = "cmd:"


class ButtonValues(Protocol):
    def value_for(self, command: str) -> str | None:
        """The button value that runs `command`, or None when it cannot be carried (no button then)."""

    def command_for(self, value: str) -> str | None:
        """The command a clicked value runs, or None when it names nothing (unknown or expired)."""


def _inline(command: str) -> bool:
    return len(command) <= BUTTON_VALUE and not command.startswith(STORED)


class InlineButtonValues:
    """Command text in the value only: a command too long for it gets no button (never a cut one)."""

    def value_for(self, command: str) -> str | None:
        return command if _inline(command) else None

    def command_for(self, value: str) -> str | None:
        return None if value.startswith(STORED) else value


class StoredButtonValues:
    """Command text in the value when it fits, else `cmd:<id>` of a row in `button_commands`."""

    def __init__(self, store: ButtonCommands) -> None:
        self.store = store

    def value_for(self, command: str) -> str | None:
        return command if _inline(command) else STORED + self.store.save(command)

    def command_for(self, value: str) -> str | None:
        return self.store.get(value.removeprefix(STORED)) if value.startswith(STORED) else value


INLINE = InlineButtonValues()
