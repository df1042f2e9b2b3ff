"""The outbox sender: one thread that posts what the outbox holds, retrying until Slack takes it.

Failures back off exponentially (with jitter) per row; 429s are first retried by the Slack client's
own handler after Retry-After. Errors that retrying cannot fix (`channel_not_found`, `not_in_channel`,
`is_archived`...) re-route the alert to the default channel once, else mark the row dead and log
loudly. A row in doubt (a previous attempt may have reached Slack) is first looked up by its dedupe
key in the channel's (or thread's) message metadata; see bot/store/outbox.py and docs/alerts.md.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from bot.errors import SlackUnavailable
from bot.model import Picture
from bot.store.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

EVENT_TYPE = "k8sbot_alert"
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "no_permission",
        "message_not_found",
        "cant_update_message",
        "restricted_action",
        "invalid_metadata_format",
    }
)
CANNOT_LOOK = frozenset({"missing_scope", "not_allowed_token_type", "channel_not_found", "not_in_channel"})
REROUTABLE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action"})


class LookupFailed(SlackUnavailable):
    """We could not tell whether an in-doubt message was posted: it stays in doubt."""


class AlertPoster(Protocol):
    """What the sender needs from the chat service (the Slack client's `Poster` in the bot).

    Failures raise `SlackUnavailable` whose `code` is the service's error code when it answered
    clearly (`channel_not_found`, ...) and None when no clear answer came (it may have been taken).
    """

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str: ...

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None: ...

    def find_posted(
        self, channel: str, *, event_type: str, dedupe_key: str, thread_ts: str | None, oldest: float | None
    ) -> str | None:
        """The ts of a message in the channel (or thread) whose metadata carries `dedupe_key`."""

    def warm_up(self) -> None:
        """Prepare what pictures need (called once when the sender starts; must not block)."""

    def upload_picture(self, channel: str, *, thread_ts: str, picture: Picture) -> bool:
        """Draw `picture` and upload it into the thread; False (logged) when it could not be drawn."""

    def has_file(self, channel: str, *, thread_ts: str, filename: str) -> bool:
        """Whether the thread already holds a file of this name (a picture row in doubt)."""


class OutboxSender:
    def __init__(
        self,
        outbox: Outbox,
        poster: AlertPoster,
        *,
        default_channel: str | None = None,
        backoff: tuple[float, float] = (1.0, 10.0),
        idle_wait: float = 0.5,
        on_sent: Callable[[OutboxRow, str | None], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.poster = poster
        self.default_channel = default_channel
        self.backoff = backoff
        self.idle_wait = idle_wait
        self.on_sent = on_sent
        self.wake = threading.Event()
        self.sent = 0
        self.failures = 0

    def run(self, stop: threading.Event) -> None:
        self.poster.warm_up()
        recovered = self.outbox.recover()
        if recovered:
            log.warning(
                "outbox: %d message(s) were being sent when the bot stopped; checking before resending", recovered
            )
        while not stop.is_set():
            try:
                row = self.outbox.claim()
            except Exception:  # the sender loop is an edge: log, wait, go on
                log.exception("outbox: claiming failed")
                stop.wait(self.backoff[0])
                continue
            if row is None:
                self.wake.wait(self.idle_wait)
                self.wake.clear()
                continue
            self.send(row)

    def flush(self, timeout: float) -> int:
        """On shutdown, after `run` has stopped: send what is due now, for at most `timeout` seconds (a
        row that fails is left for the next start). Returns how many rows were sent."""
        deadline = time.monotonic() + timeout
        sent = self.sent
        while time.monotonic() < deadline:
            try:
                row = self.outbox.claim()
            except Exception:  # shutting down: what is left is sent by the next start
                log.exception("outbox: claiming failed while flushing")
                break
            if row is None:
                break
            self.send(row)
        return self.sent - sent

    def send(self, row: OutboxRow) -> None:
        try:
            ts = self._deliver(row)
        except SlackUnavailable as e:
            self._failed(row, e)
            return
        except Exception as e:  # a bug must not lose the row: retry later, loudly
            log.exception("outbox: row %d failed unexpectedly", row.id)
            self.outbox.mark_retry(row, error=str(e), delay=self._delay(row), in_doubt=True)
            return
        self.outbox.mark_sent(row, ts=ts)
        self.sent += 1
        if self.on_sent is not None:
            self.on_sent(row, ts)

    def _deliver(self, row: OutboxRow) -> str | None:
        if row.op == "picture":
            self._picture(row)
            return None
        if row.op == "update":
            assert row.alert_ts is not None
            self.poster.update(row.channel, row.alert_ts, text=row.text, blocks=row.blocks)
            return row.alert_ts
        thread = row.alert_ts if row.op == "reply" else None
        if row.in_doubt:
            found = self._already_posted(row, thread_ts=thread)
            if found is not None:
                log.info("outbox: row %d was already posted (ts %s); not posting it again", row.id, found)
                return found
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"dedupe": row.dedupe_key, "alert": row.alert_id}}
        return self.poster.post(row.channel, text=row.text, blocks=row.blocks, thread_ts=thread, metadata=metadata)

    def _picture(self, row: OutboxRow) -> None:
        """The alert's picture into its thread. Its file name carries the row's dedupe key, so a row in
        doubt is looked for in the thread before it is uploaded again."""
        assert row.alert_ts is not None
        payload = row.payload or {}
        filename = f"{payload.get('filename') or 'picture'}-{row.dedupe_key[:12]}.png"
        if row.in_doubt:
            try:
                if self.poster.has_file(row.channel, thread_ts=row.alert_ts, filename=filename):
                    log.info("outbox: picture row %d was already uploaded; not uploading it again", row.id)
                    return
            except SlackUnavailable as e:
                if e.code not in CANNOT_LOOK:
                    raise LookupFailed(f"checking {row.channel} for an earlier upload failed: {e}") from e
        picture = Picture(
            kind=str(payload.get("kind") or ""),
            data=dict(payload.get("data") or {}),
            alt_text=row.text,
            filename=filename,
            title=str(payload.get("title") or filename),
        )
        if not self.poster.upload_picture(row.channel, thread_ts=row.alert_ts, picture=picture):
            log.error("outbox: the picture of alert %d could not be drawn; the alert stands without it", row.alert_id)

    def _already_posted(self, row: OutboxRow, *, thread_ts: str | None) -> str | None:
        """The ts of a message carrying this row's dedupe key, if Slack has one (raises if we can't tell)."""
        oldest = (row.claimed_at or 0) - 300 if row.claimed_at else None
        try:
            return self.poster.find_posted(
                row.channel, event_type=EVENT_TYPE, dedupe_key=row.dedupe_key, thread_ts=thread_ts, oldest=oldest
            )
        except SlackUnavailable as e:
            if e.code in CANNOT_LOOK:
                # Losing the alert is worse than a possible duplicate: post, and say why loudly.
                log.error(
                    "outbox: can't check %s for an earlier post of alert %d (%s; the app needs "
                    "channels:history/groups:history); posting it, which may duplicate it",
                    row.channel,
                    row.alert_id,
                    e.code,
                )
                return None
            raise LookupFailed(f"checking {row.channel} for an earlier post failed: {e}") from e

    def _failed(self, row: OutboxRow, error: SlackUnavailable) -> None:
        self.failures += 1
        code = None if isinstance(error, LookupFailed) else error.code
        if code in REROUTABLE and self.default_channel and row.channel != self.default_channel:
            log.error(
                "outbox: alert %d can't go to %s (%s); sending it to the default channel %s",
                row.alert_id,
                row.channel,
                code,
                self.default_channel,
            )
            self.outbox.reroute(row, channel=self.default_channel)
            return
        if code in PERMANENT:
            log.error("outbox: alert %d message %d is UNDELIVERABLE to %s: %s", row.alert_id, row.id, row.channel, code)
            self.outbox.mark_dead(row, error=str(error))
            return
        # Slack answered with an error (not taken) vs. no clear answer (maybe taken: check before resending)
        in_doubt = row.op != "update" and (code is None or isinstance(error, LookupFailed))
        delay = self._delay(row)
        log.warning(
            "outbox: %s of alert %d failed (%s); retry %d in %.1fs",
            row.op,
            row.alert_id,
            code or error,
            row.attempts,
            delay,
        )
        self.outbox.mark_retry(row, error=str(error), delay=delay, in_doubt=in_doubt)

    def _delay(self, row: OutboxRow) -> float:
        low, high = self.backoff
        return float(min(high, low * 2 ** min(row.attempts - 1, 16))) * random.uniform(0.8, 1.2)  # noqa: S311
