"""The one clock: every component that needs "now" takes a `Clock` (tests pass a fixed one)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime."""


def utcnow() -> datetime:
    """Now, in UTC: the production clock."""
    return datetime.now(UTC)
