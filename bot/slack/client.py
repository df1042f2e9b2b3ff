"""A Slack Web API client that survives rate limits and hiccups, and never floods a channel.

- 429s are retried after `Retry-After`, connection errors and 5xx with backoff (slack_sdk's retry
  handlers; Bolt copies them into the per-request clients it builds for listeners).
- `Poster` keeps each channel under Slack's posting rate (about one message per second, short bursts
  allowed) with a token bucket per channel, and turns failures into `SlackUnavailable` after logging
  them with the method, channel and Slack's error code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.errors import SlackUnavailable

log = logging.getLogger(__name__)


def make_web_client(*, token: str | None, base_url: str, timeout: int = 15) -> WebClient:
    client = WebClient(token=token, base_url=base_url, timeout=timeout)
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=3),
        RateLimitErrorRetryHandler(max_retry_count=5),
        ServerErrorRetryHandler(max_retry_count=3),
    ]
    return client


class ChannelRateLimiter:
    """A token bucket per channel: `rate` messages per second with bursts up to `burst`."""

    def __init__(
        self,
        *,
        rate: float = 1.0,
        burst: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # channel → (tokens, last refill)

    def acquire(self, channel: str) -> float:
        """Wait until `channel` may receive a message; returns how long we waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                tokens, last = self._buckets.get(channel, (float(self.burst), now))
                tokens = min(float(self.burst), tokens + (now - last) * self.rate)
                if tokens >= 1.0:
                    self._buckets[channel] = (tokens - 1.0, now)
                    return waited
                self._buckets[channel] = (tokens, now)
                delay = (1.0 - tokens) / self.rate
            self._sleep(delay)
            waited += delay


class Poster:
    """Posts, updates and uploads on behalf of the bot (alerts, digests, audit, command files)."""

    def __init__(self, client: WebClient, *, limiter: ChannelRateLimiter | None = None) -> None:
        self.client = client
        self.limiter = limiter or ChannelRateLimiter()

    def _call(self, method: str, channel: str, func: Callable[[], Any]) -> Any:
        try:
            return func()
        except SlackApiError as e:
            error = e.response.get("error") if e.response is not None else None
            status = e.response.status_code if e.response is not None else None
            log.error("slack %s to %s failed: %s (HTTP %s)", method, channel, error, status)
            raise SlackUnavailable(f"Slack {method} to {channel} failed: {error}") from e
        except (SlackClientError, OSError) as e:
            log.error("slack %s to %s failed: %s", method, channel, e)
            raise SlackUnavailable(f"Slack {method} to {channel} failed: {e}") from e

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """chat.postMessage; returns the message ts. `metadata` is Slack message metadata
        ({"event_type", "event_payload"}); the alert outbox puts its dedupe key there."""
        self.limiter.acquire(channel)
        response = self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, metadata=metadata
            ),
        )
        return str(response["ts"])

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self._call(
            "chat.update", channel, lambda: self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        )

    def ephemeral(self, channel: str, user: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self._call(
            "chat.postEphemeral",
            channel,
            lambda: self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=blocks),
        )

    def upload(self, channel: str, *, filename: str, content: str, thread_ts: str | None = None) -> None:
        self._call(
            "files.upload_v2",
            channel,
            lambda: self.client.files_upload_v2(
                channel=channel, filename=filename, content=content, title=filename, thread_ts=thread_ts
            ),
        )
