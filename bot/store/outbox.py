"""The alert outbox: Slack messages to send, written in the same transaction as the alert they carry.

Nothing is posted directly. The engine writes a row (`post`, `reply` in the alert's thread, or
`update` of the alert message) and the sender thread claims rows one by one in a transaction
(`pending` → `sending`), sends them, and records the result (`sent` with the Slack ts, or back to
`pending` with a later `next_at`, or `dead` for an error retrying cannot fix).

Restart safety: a row left in `sending` by a stopped process is *in doubt* (Slack may have accepted
the message before the ts was written). `recover()` marks those rows `doubt`; the sender then looks
for the row's `dedupe_key` in the message metadata of the channel (or thread) before posting again.
`update` rows are idempotent and are simply sent again. Only the newest pending update of an alert
is sent: older ones are superseded.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.store.database import Database

OPS = ("post", "reply", "update", "picture")
"""`picture`: an image uploaded into the alert's thread (the timeline); `payload` says what to draw."""


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL,
            op TEXT NOT NULL,
            channel TEXT NOT NULL,
            text TEXT NOT NULL,
            blocks TEXT NOT NULL,
            dedupe_key TEXT NOT NULL UNIQUE,
            state TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at REAL NOT NULL,
            created_at REAL NOT NULL,
            claimed_at REAL,
            sent_at REAL,
            ts TEXT,
            error TEXT
        )"""
    )
    db.execute("CREATE INDEX outbox_due ON outbox (state, next_at, id)")
    db.execute("CREATE INDEX outbox_alert ON outbox (alert_id, id)")


def _add_payload(db: sqlite_utils.Database) -> None:
    """What a `picture` row draws (its kind, plain data, file name and title); its alt text is `text`."""
    db.execute("ALTER TABLE outbox ADD COLUMN payload TEXT")


MIGRATIONS = [_create_tables, _add_payload]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    alert_id: int
    op: str
    channel: str
    text: str
    blocks: list[dict[str, Any]]
    dedupe_key: str
    attempts: int
    in_doubt: bool
    claimed_at: float | None
    alert_ts: str | None
    """The alert message's ts (the thread of a `reply` or a `picture`, the message of an `update`)."""
    payload: dict[str, Any] | None = None
    """A `picture` row's drawing: {"kind", "data", "filename", "title"}."""


class Outbox:
    def __init__(self, database: Database, *, clock: Clock = utcnow) -> None:
        self.database = database
        self.clock = clock
        database.ensure_schema("outbox", MIGRATIONS)

    def _now(self) -> float:
        return self.clock().timestamp()

    def enqueue(
        self,
        db: sqlite_utils.Database,
        *,
        alert_id: int,
        op: str,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]],
        payload: dict[str, Any] | None = None,
    ) -> int:
        """Add a message inside the caller's transaction (with the alert row it belongs to)."""
        if op not in OPS:
            raise ValueError(f"unknown outbox op {op!r}")
        now = self._now()
        cursor = db.execute(
            "INSERT INTO outbox (alert_id, op, channel, text, blocks, dedupe_key, next_at, created_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                alert_id,
                op,
                channel,
                text,
                json.dumps(blocks),
                uuid.uuid4().hex,
                now,
                now,
                json.dumps(payload) if payload is not None else None,
            ],
        )
        return int(cursor.lastrowid or 0)

    def recover(self) -> int:
        """At start: rows a stopped process was sending become `doubt` (checked before re-posting)."""
        with self.database.transaction() as db:
            cursor = db.execute("UPDATE outbox SET state = 'doubt' WHERE state = 'sending'")
            return int(cursor.rowcount or 0)

    def claim(self) -> OutboxRow | None:
        """Take the next due row, in order per alert: a reply/update waits for its alert's post. Pictures
        go last: drawing one takes a moment, and no alert, update or reply waits behind it."""
        now = self._now()
        with self.database.transaction() as db:
            rows = db.execute(
                "SELECT o.id, o.alert_id, o.op, o.channel, o.text, o.blocks, o.dedupe_key, o.attempts, o.state, "
                "o.claimed_at, a.ts, o.payload FROM outbox o JOIN alerts a ON a.id = o.alert_id "
                "WHERE o.state IN ('pending', 'doubt') AND o.next_at <= ? ORDER BY o.op = 'picture', o.id LIMIT 50",
                [now],
            ).fetchall()
            for row in rows:
                (row_id, alert_id, op, channel, text, blocks, key, attempts, state, claimed_at, alert_ts, payload) = row
                if self._blocked(db, row_id=row_id, alert_id=alert_id):
                    continue
                if op == "update" and self._superseded(db, row_id=row_id, alert_id=alert_id):
                    db.execute("UPDATE outbox SET state = 'superseded' WHERE id = ?", [row_id])
                    continue
                if op != "post" and not alert_ts:
                    continue
                db.execute(
                    "UPDATE outbox SET state = 'sending', claimed_at = ?, attempts = attempts + 1 WHERE id = ?",
                    [now, row_id],
                )
                return OutboxRow(
                    int(row_id),
                    int(alert_id),
                    op,
                    channel,
                    text,
                    json.loads(blocks),
                    key,
                    int(attempts) + 1,
                    state == "doubt",
                    claimed_at,
                    alert_ts,
                    json.loads(payload) if payload else None,
                )
        return None

    @staticmethod
    def _blocked(db: sqlite_utils.Database, *, row_id: int, alert_id: int) -> bool:
        """An earlier unsent row of the same alert goes first (the post before its replies); a picture
        holds nothing back (its drawing must not delay the alert's updates and replies)."""
        row = db.execute(
            "SELECT 1 FROM outbox WHERE alert_id = ? AND id < ? AND state IN ('pending', 'doubt', 'sending') "
            "AND op NOT IN ('update', 'picture') LIMIT 1",
            [alert_id, row_id],
        ).fetchone()
        return row is not None

    @staticmethod
    def _superseded(db: sqlite_utils.Database, *, row_id: int, alert_id: int) -> bool:
        row = db.execute(
            "SELECT 1 FROM outbox WHERE alert_id = ? AND id > ? AND op = 'update' AND state IN ('pending', 'doubt') "
            "LIMIT 1",
            [alert_id, row_id],
        ).fetchone()
        return row is not None

    def mark_sent(self, row: OutboxRow, *, ts: str | None) -> None:
        """Record success; a `post` also gives its alert the message ts (same transaction)."""
        with self.database.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, ts = ?, error = NULL WHERE id = ?",
                [self._now(), ts, row.id],
            )
            if row.op == "post" and ts:
                db.execute("UPDATE alerts SET ts = ?, channel = ? WHERE id = ?", [ts, row.channel, row.alert_id])

    def mark_retry(self, row: OutboxRow, *, error: str, delay: float, in_doubt: bool) -> None:
        """Try again after `delay`. `in_doubt`: Slack may have taken the message (no clear answer came)."""
        state = "doubt" if in_doubt else "pending"
        with self.database.transaction() as db:
            db.execute(
                "UPDATE outbox SET state = ?, next_at = ?, error = ? WHERE id = ?",
                [state, self._now() + delay, error[:500], row.id],
            )

    def mark_dead(self, row: OutboxRow, *, error: str) -> None:
        with self.database.transaction() as db:
            db.execute("UPDATE outbox SET state = 'dead', error = ? WHERE id = ?", [error[:500], row.id])

    def reroute(self, row: OutboxRow, *, channel: str) -> None:
        """Send the row (and the rest of its alert's rows) to another channel instead."""
        with self.database.transaction() as db:
            db.execute(
                "UPDATE outbox SET channel = ?, state = 'pending', next_at = ? WHERE alert_id = ? "
                "AND state IN ('pending', 'doubt', 'sending')",
                [channel, self._now(), row.alert_id],
            )
            db.execute("UPDATE alerts SET channel = ?, route_reason = 'rerouted' WHERE id = ?", [channel, row.alert_id])

    def counts(self) -> dict[str, int]:
        rows = self.database.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {str(state): int(n) for state, n in rows}
