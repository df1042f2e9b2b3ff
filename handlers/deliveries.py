"""Run each Slack delivery once: Slack's retries and replayed requests are acknowledged, not run again.

Slack delivers a request again when it did not see a 2xx in 3 seconds (`X-Slack-Retry-Num`,
`X-Slack-Retry-Reason`; in Socket Mode a new envelope with `retry_attempt`), and anyone who captured
a signed request could send it again while its timestamp is inside Bolt's 5-minute window. Every
delivery carries an identity that stays the same across such copies: `event_id` for events,
`trigger_id` for slash commands and interactions, and, in HTTP mode, the request's signature itself
(the same bytes and timestamp give the same signature). `DeduplicateDeliveries` is a global Bolt
middleware, so it runs after Bolt's signature check (a bad or stale copy is rejected first and
remembered nowhere) and sees both transports alike; a delivery whose identity was seen in the window
gets an empty 200 ack and runs nothing.

Memory is bounded by time and size: identities are kept `window` seconds (10 minutes, longer than
the signature window and than Slack's retry schedule of about 5 minutes) and at most `capacity` of
them (a few MB); past that the oldest are forgotten first. Only requests Slack signed (or sent over
the authenticated socket) are remembered, so a flood of forged requests cannot fill it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

log = logging.getLogger(__name__)

WINDOW_SECONDS = 600.0
CAPACITY = 20_000


class Deliveries:
    """The identities of deliveries seen recently, oldest first, bounded by age and count."""

    def __init__(
        self,
        *,
        window: float = WINDOW_SECONDS,
        capacity: int = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # identity -> when first seen
        self._lock = threading.Lock()
        self.evicted_early = 0  # identities forgotten before their window ended (capacity reached)

    def first_time(self, keys: list[str]) -> bool:
        """True (and remember `keys`) unless one of them was seen within the window."""
        now = self._clock()
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if now - seen_at <= self.window:
                    break
                del self._seen[oldest]
            if any(key in self._seen for key in keys):
                return False
            for key in keys:
                self._seen[key] = now
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
                self.evicted_early += 1
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


def delivery_keys(request: BoltRequest) -> list[str]:
    """The identities of one delivery: its event_id or trigger_id, and in HTTP mode its signature."""
    body: dict[str, Any] = request.body if isinstance(request.body, dict) else {}
    keys = []
    for field in ("event_id", "trigger_id"):
        value = body.get(field)
        if isinstance(value, str) and value:
            keys.append(f"{field}:{value}")
    signature = request.headers.get("x-slack-signature")
    if request.mode == "http" and signature:
        keys.append(f"signature:{signature[0]}")
    return keys


class DeduplicateDeliveries(Middleware):
    """Answer a repeated delivery with an empty 200 ack; let everything else through."""

    def __init__(self, deliveries: Deliveries) -> None:
        self.deliveries = deliveries

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse | None:
        keys = delivery_keys(req)
        if keys and not self.deliveries.first_time(keys):
            retry = (req.headers.get("x-slack-retry-num") or [""])[0][:16]  # not signed: shown with %r
            reason = (req.headers.get("x-slack-retry-reason") or [""])[0][:32]
            log.info(
                "acknowledged a repeated Slack delivery without running it (%r, retry %r, reason %r)",
                str(req.body.get("type") or req.body.get("command") or "?")[:40],
                retry,
                reason,
            )
            return BoltResponse(status=200, body="")
        next()
        return resp
