"""Whether a cluster's API server answers: the last check, and since when it has not.

The running bot asks every cluster's API server in the background (`/readyz`'s check, which keeps its
own figures for `/readyz`); each result is also told here, per cluster, so a command for a cluster that
is away is answered at once ("prod-eu is unreachable since 10:42 UTC") instead of waiting out a timeout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock, utcnow
from bot.text import clip


@dataclass(frozen=True)
class Checked:
    """One cluster's state as the last check saw it."""

    reachable: bool | None
    """None: not checked yet."""
    unreachable_since: datetime | None
    error: str | None


class Reachability:
    """The checks' results for one cluster (written by the checker thread, read by commands)."""

    def __init__(self, name: str, *, clock: Clock = utcnow) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._reachable: bool | None = None
        self._since: datetime | None = None
        self._error: str | None = None

    def record(self, reachable: bool, error: str | None = None) -> None:
        with self._lock:
            if reachable:
                self._since, self._error = None, None
            else:
                self._since = self._since or self._clock()
                self._error = clip(" ".join((error or "no answer").split()), 200)
            self._reachable = reachable

    def state(self) -> Checked:
        with self._lock:
            return Checked(self._reachable, self._since, self._error)

    def why_not(self) -> str | None:
        """ "unreachable since 10:42 UTC (connection refused)" while the last check failed, else None
        (a cluster not checked yet is given the benefit of the doubt)."""
        state = self.state()
        if state.reachable is not False or state.unreachable_since is None:
            return None
        since = state.unreachable_since.strftime("%H:%M UTC")
        return f"unreachable since {since} ({state.error})" if state.error else f"unreachable since {since}"
