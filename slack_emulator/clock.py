"""Time source for the emulator.

Owns the notion of "now" used for expiry rules (trigger_id 3 s, response_url 30 min,
posting-rate buckets, fault windows, message ``ts``).  Tests inject or advance it to
exercise expiry without sleeping.  Socket-Mode ack deadlines deliberately use real
monotonic time because they measure how long the bot really takes to answer.
"""

from __future__ import annotations

import threading
import time


class Clock:
    """Wall clock with an adjustable offset (``advance``) or a frozen value (``freeze``)."""

    def __init__(self, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen: float | None = start

    def now(self) -> float:
        """Current emulated Unix time in seconds."""
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move emulated time forward (works for frozen and running clocks)."""
        with self._lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._offset += seconds

    def freeze(self, at: float | None = None) -> None:
        """Stop the clock at ``at`` (default: the current emulated time)."""
        current = self.now()
        with self._lock:
            self._frozen = current if at is None else at

    def unfreeze(self) -> None:
        """Let the clock run again from the frozen value."""
        with self._lock:
            if self._frozen is not None:
                self._offset = self._frozen - time.time()
                self._frozen = None
