"""A Slack Web API client that survives rate limits and hiccups, and never floods a channel.

- 429s are retried after `Retry-After`, connection errors and 5xx with backoff (slack_sdk's retry
  handlers; Bolt copies them into the per-request clients it builds for listeners).
- `Poster` is the bot's way out to Slack for everything it posts on its own (alerts, digests, audit
  lines, files): it takes only a rendered `Message` (`bot.slack.message`), never a free string.
- It keeps each channel under Slack's posting rate (about one message per second, short bursts
  allowed) with a token bucket per channel, and turns failures into `SlackUnavailable` after logging
  them with the method, channel and Slack's error code.

Posting rate: Slack (and the Slack emulator, which models it as a 1 msg/s, burst 3 token bucket per
channel) and this bot apply the same kind of rule, but each measures time on its own side of the
network. If the bot paced at exactly Slack's rate, request latency jitter alone (a slow first request,
a fast next one) would let a message reach Slack a moment before Slack's bucket has refilled, and it
would be answered 429. So the bot keeps a margin: `POST_RATE` is below one message per second and
`POST_BURST` is smaller than the emulator's burst of 3 (Slack only says "short bursts allowed",
docs/slack-platform.md in the shared docs, api.slack.com/docs/rate-limits). A 429 would still be retried after
`Retry-After`, but only by delaying the message.
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
from bot.slack.message import Message, SlackFile

log = logging.getLogger(__name__)

POST_RATE = 0.8
"""Messages per second per channel the bot allows itself: below Slack's ~1/s, on purpose (see above)."""
POST_BURST = 2
"""Messages the bot may post to one channel back to back: fewer than the burst Slack allows."""


def make_web_client(*, token: str | None, base_url: str, timeout: int = 15) -> WebClient:
    client = WebClient(token=token, base_url=base_url, timeout=timeout)
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=3),
        RateLimitErrorRetryHandler(max_retry_count=5),
        ServerErrorRetryHandler(max_retry_count=3),
    ]
    return client


class ChannelRateLimiter:
    """A token bucket per channel: `rate` messages per second with bursts up to `burst`
    (by default `POST_RATE` and `POST_BURST`, a margin below Slack's own limit)."""

    def __init__(
        self,
        *,
        rate: float = POST_RATE,
        burst: int = POST_BURST,
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
                # Rounding can leave the bucket a hair short of a token after sleeping exactly the
                # computed delay; without the tolerance an injected (fake) clock would spin forever.
                if tokens >= 1.0 - 1e-9:
                    self._buckets[channel] = (max(0.0, tokens - 1.0), now)
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
            clear = status is None or status < 500  # a 5xx is no clear answer: the call may have been taken
            code = str(error or "unknown") if e.response is not None and clear else None
            raise SlackUnavailable(f"Slack {method} to {channel} failed: {error}", code=code) from e
        except (SlackClientError, OSError) as e:
            log.error("slack %s to %s failed: %s", method, channel, e)
            raise SlackUnavailable(f"Slack {method} to {channel} failed: {e}") from e

    def post(
        self,
        channel: str,
        message: Message,
        *,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """chat.postMessage; returns the message ts. `metadata` is Slack message metadata
        ({"event_type", "event_payload"}); the alert outbox puts its dedupe key there."""
        self.limiter.acquire(channel)
        body = message.to_slack()
        response = self._call(
            "chat.postMessage",
            channel,
            lambda: self.client.chat_postMessage(
                channel=channel,
                text=body["text"],
                blocks=body["blocks"] or None,
                thread_ts=thread_ts,
                metadata=metadata,
            ),
        )
        return str(response["ts"])

    def update(self, channel: str, ts: str, message: Message) -> None:
        body = message.to_slack()
        self._call(
            "chat.update",
            channel,
            lambda: self.client.chat_update(channel=channel, ts=ts, text=body["text"], blocks=body["blocks"] or None),
        )

    def ephemeral(self, channel: str, user: str, message: Message) -> None:
        body = message.to_slack()
        self._call(
            "chat.postEphemeral",
            channel,
            lambda: self.client.chat_postEphemeral(
                channel=channel, user=user, text=body["text"], blocks=body["blocks"] or None
            ),
        )

    def upload(self, channel: str, file: SlackFile, *, thread_ts: str | None = None) -> None:
        self._call("files.upload_v2", channel, lambda: upload_file(self.client, channel, file, thread_ts=thread_ts))

    def find_file(self, channel: str, *, thread_ts: str, filename: str) -> bool:
        """Whether a message of the thread carries a file named `filename` (needs the history scopes)."""
        response = self._call(
            "conversations.replies",
            channel,
            lambda: self.client.conversations_replies(channel=channel, ts=thread_ts, limit=200),
        )
        return any(
            (file or {}).get("name") == filename
            for message in list(response.get("messages") or [])
            for file in message.get("files") or []
        )

    def find_posted(
        self, channel: str, *, event_type: str, dedupe_key: str, thread_ts: str | None, oldest: float | None
    ) -> str | None:
        """The ts of a bot message in the channel (or thread) whose metadata carries `dedupe_key`.

        Needs the history scopes (channels:history, groups:history); raises SlackUnavailable otherwise.
        """
        if thread_ts:
            response = self._call(
                "conversations.replies",
                channel,
                lambda: self.client.conversations_replies(
                    channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
                ),
            )
        else:
            since = f"{oldest:.6f}" if oldest else None
            response = self._call(
                "conversations.history",
                channel,
                lambda: self.client.conversations_history(
                    channel=channel, oldest=since, include_all_metadata=True, limit=200
                ),
            )
        for message in list(response.get("messages") or []):
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == event_type
                and (metadata.get("event_payload") or {}).get("dedupe") == dedupe_key
            ):
                return str(message.get("ts"))
        return None


def upload_file(client: WebClient, channel: str, file: SlackFile, *, thread_ts: str | None = None) -> Any:
    """files upload v2 of a rendered `SlackFile` (safe name, escaped title and alt text); no free-text comment."""
    return client.files_upload_v2(
        channel=channel,
        filename=file.filename,
        content=file.content,
        title=file.title,
        alt_txt=file.alt_text,
        thread_ts=thread_ts,
    )
