"""Injected failures and rate limits.

Owns: on-demand 429s (``rate_limit``), error/HTTP-status injection (``fail``, e.g. to
simulate an outage for N calls or S seconds) and the optional per-channel posting
rate for chat.postMessage (token bucket, ~1 msg/s with a burst).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from .clock import Clock


@dataclass
class Fault:
    """One injected rule; ``method`` may be ``"*"`` to match every Web API method."""

    method: str
    error: str
    http_status: int
    retry_after: int | None
    times: int | None  # remaining count, None = unlimited within the window
    until: float | None  # emulated time when the rule expires, None = no time limit

    def matches(self, method: str, now: float) -> bool:
        if self.method not in ("*", method):
            return False
        if self.until is not None and now >= self.until:
            return False
        return self.times is None or self.times > 0


@dataclass
class FaultResult:
    """What the server must answer instead of running the method."""

    status: int
    error: str
    retry_after: int | None


class Faults:
    """Registry of injected faults plus the optional per-channel posting limiter."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._rules: list[Fault] = []
        self.posting_rate: float | None = None
        self.posting_burst = 3
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, last time)

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with 429 + ``Retry-After: retry_after``."""
        with self._lock:
            self._rules.append(Fault(method, "ratelimited", 429, int(retry_after), times, None))

    def fail(
        self,
        method: str,
        error: str = "internal_error",
        *,
        http_status: int = 200,
        times: int | None = 1,
        for_seconds: float | None = None,
    ) -> None:
        """Fail ``method`` with ``error`` (HTTP 200 ``ok:false``) or an HTTP status (500/503...).

        With ``for_seconds`` the rule lasts that long in emulated time (``times`` is then
        ignored unless given explicitly together with a window)."""
        until = self._clock.now() + for_seconds if for_seconds is not None else None
        if for_seconds is not None and times == 1:
            times = None
        with self._lock:
            self._rules.append(Fault(method, error, http_status, None, times, until))

    def clear(self) -> None:
        """Remove every injected rule and disable posting-rate enforcement."""
        with self._lock:
            self._rules.clear()
            self.posting_rate = None
            self._buckets.clear()

    def check(self, method: str) -> FaultResult | None:
        """Consume a matching rule, if any, and say how to answer."""
        now = self._clock.now()
        with self._lock:
            self._rules = [
                r for r in self._rules if (r.times is None or r.times > 0) and (r.until is None or now < r.until)
            ]
            for rule in self._rules:
                if rule.matches(method, now):
                    if rule.times is not None:
                        rule.times -= 1
                    return FaultResult(rule.http_status, rule.error, rule.retry_after)
        return None

    def enforce_posting_rate(self, per_second: float | None = 1.0, burst: int = 3) -> None:
        """Turn per-channel chat.postMessage limiting on (``None`` turns it off)."""
        with self._lock:
            self.posting_rate = per_second
            self.posting_burst = burst
            self._buckets.clear()

    def take_post_token(self, channel: str) -> int | None:
        """Consume a posting token for ``channel``; return Retry-After seconds when exhausted."""
        with self._lock:
            if self.posting_rate is None:
                return None
            now = self._clock.now()
            tokens, last = self._buckets.get(channel, (float(self.posting_burst), now))
            tokens = min(float(self.posting_burst), tokens + (now - last) * self.posting_rate)
            if tokens >= 1.0:
                self._buckets[channel] = (tokens - 1.0, now)
                return None
            self._buckets[channel] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.posting_rate))
