"""Alertmanager's alerts as received: a durable inbox any replica writes and the leader's alert engine reads.

Tables (component "alertmanager"):

* `am_inbox` — one row per alert *state* Alertmanager told us about: its fingerprint, `firing` or
  `resolved`, `startsAt`, labels, annotations. `(fingerprint, status, starts_at)` is unique, so
  Alertmanager's repeat notifications and its retries after a failed delivery store nothing twice.
  `processed_at` is set by the alert engine in the same transaction as the alert and outbox rows
  the row became: a stop in between leaves the row to be processed again, never lost.
* `am_links` — which alert (bot/store/alerts.py) an Alertmanager fingerprint was folded into, so its
  `resolved` notification finds it.

Times are UNIX seconds (REAL); labels and annotations are JSON objects of strings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.store.database import Database


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE am_inbox (
            id INTEGER PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            status TEXT NOT NULL,
            starts_at REAL NOT NULL,
            ends_at REAL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            generator_url TEXT NOT NULL,
            group_key TEXT NOT NULL,
            external_url TEXT NOT NULL,
            received_at REAL NOT NULL,
            processed_at REAL,
            UNIQUE (fingerprint, status, starts_at)
        )"""
    )
    db.execute("CREATE INDEX am_inbox_pending ON am_inbox (processed_at, id)")
    db.execute(
        """CREATE TABLE am_links (
            fingerprint TEXT PRIMARY KEY,
            alert_id INTEGER NOT NULL,
            linked_at REAL NOT NULL
        )"""
    )


MIGRATIONS = [_create_tables]


def _ts(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class ReceivedAlert:
    """One alert of a webhook notification, validated (bot/integrations/alertmanager.py)."""

    fingerprint: str
    status: str
    """`firing` or `resolved`."""
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    group_key: str
    external_url: str


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    alert: ReceivedAlert
    received_at: datetime


class AlertInbox:
    """Writes what Alertmanager sent (any replica) and hands it to the alert engine (the leader)."""

    def __init__(self, database: Database, *, clock: Clock = utcnow, retention: timedelta = timedelta(days=30)) -> None:
        self.database = database
        self.clock = clock
        self.retention = retention
        database.ensure_schema("alertmanager", MIGRATIONS)

    def add(self, alerts: Sequence[ReceivedAlert]) -> int:
        """Store one notification's alerts in one transaction. Returns how many were new (the rest
        Alertmanager had sent before: a repeat or a retry)."""
        now = _ts(self.clock())
        new = 0
        with self.database.transaction() as db:
            for alert in alerts:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO am_inbox (fingerprint, status, starts_at, ends_at, labels, annotations, "
                    "generator_url, group_key, external_url, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        alert.fingerprint,
                        alert.status,
                        _ts(alert.starts_at),
                        _ts(alert.ends_at) if alert.ends_at else None,
                        json.dumps(alert.labels, sort_keys=True),
                        json.dumps(alert.annotations, sort_keys=True),
                        alert.generator_url,
                        alert.group_key,
                        alert.external_url,
                        now,
                    ],
                )
                new += int(cursor.rowcount or 0)
        return new

    def pending(self, *, limit: int = 500) -> list[InboxRow]:
        """Rows not processed yet, oldest first."""
        rows = self.database.db.execute(
            "SELECT id, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, group_key, "
            "external_url, received_at FROM am_inbox WHERE processed_at IS NULL ORDER BY id LIMIT ?",
            [limit],
        ).fetchall()
        return [_row(r) for r in rows]

    def processed(self, db: sqlite_utils.Database, ids: Sequence[int]) -> None:
        """Mark rows done inside the caller's transaction (with the alert rows they became)."""
        now = _ts(self.clock())
        for row_id in ids:
            db.execute("UPDATE am_inbox SET processed_at = ? WHERE id = ?", [now, row_id])

    def link(self, db: sqlite_utils.Database, fingerprint: str, alert_id: int) -> None:
        db.execute(
            "INSERT INTO am_links (fingerprint, alert_id, linked_at) VALUES (?, ?, ?) "
            "ON CONFLICT (fingerprint) DO UPDATE SET alert_id = excluded.alert_id, linked_at = excluded.linked_at",
            [fingerprint, alert_id, _ts(self.clock())],
        )

    def linked(self, fingerprint: str) -> int | None:
        row = self.database.db.execute("SELECT alert_id FROM am_links WHERE fingerprint = ?", [fingerprint]).fetchone()
        return int(row[0]) if row else None

    def count(self, *, pending: bool | None = None) -> int:
        sql = "SELECT COUNT(*) FROM am_inbox"
        if pending is not None:
            sql += " WHERE processed_at IS NULL" if pending else " WHERE processed_at IS NOT NULL"
        return int(self.database.db.execute(sql).fetchone()[0])

    def prune(self, *, now: datetime | None = None) -> int:
        """Forget processed rows and links older than the retention period."""
        cutoff = _ts((now or self.clock()) - self.retention)
        with self.database.transaction() as db:
            gone = db.execute("DELETE FROM am_inbox WHERE processed_at IS NOT NULL AND processed_at < ?", [cutoff])
            db.execute("DELETE FROM am_links WHERE linked_at < ?", [cutoff])
            return int(gone.rowcount or 0)


def _row(row: Sequence[object]) -> InboxRow:
    (row_id, fingerprint, status, starts, ends, labels, annotations, url, group_key, external, received) = row
    return InboxRow(
        int(str(row_id)),
        ReceivedAlert(
            fingerprint=str(fingerprint),
            status=str(status),
            starts_at=datetime.fromtimestamp(float(str(starts)), UTC),
            ends_at=datetime.fromtimestamp(float(str(ends)), UTC) if ends is not None else None,
            labels=json.loads(str(labels)),
            annotations=json.loads(str(annotations)),
            generator_url=str(url),
            group_key=str(group_key),
            external_url=str(external),
        ),
        datetime.fromtimestamp(float(str(received)), UTC),
    )
