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

Both tables name the cluster the alert is about, in their keys: an `AlertInbox` scoped to a cluster
stores, hands out and links that cluster's alerts only; one scoped to None reads every cluster's
rows and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.model import DEFAULT_CLUSTER
from bot.store.database import ClusterStep, Database, Migration, rebuild_with_cluster


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


def _add_cluster(db: sqlite_utils.Database, legacy_cluster: str) -> None:
    """The cluster of every received alert and link (issue 14): rows before this step get `legacy_cluster`."""
    rebuild_with_cluster(
        db,
        "am_inbox",
        create="""CREATE TABLE {table} (
            id INTEGER PRIMARY KEY,
            cluster TEXT NOT NULL,
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
            UNIQUE (cluster, fingerprint, status, starts_at)
        )""",
        indexes=["CREATE INDEX am_inbox_pending ON am_inbox (cluster, processed_at, id)"],
        legacy_cluster=legacy_cluster,
    )
    rebuild_with_cluster(
        db,
        "am_links",
        create="""CREATE TABLE {table} (
            cluster TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            alert_id INTEGER NOT NULL,
            linked_at REAL NOT NULL,
            PRIMARY KEY (cluster, fingerprint)
        )""",
        indexes=[],
        legacy_cluster=legacy_cluster,
    )


MIGRATIONS: list[Migration] = [_create_tables, ClusterStep(_add_cluster)]
INBOX_COLUMNS = (
    "id, fingerprint, status, starts_at, ends_at, labels, annotations, generator_url, group_key, external_url, "
    "received_at, cluster"
)


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
    cluster: str = DEFAULT_CLUSTER


class AlertInbox:
    """Writes what Alertmanager sent (any replica) and hands it to the alert engine (the leader).

    `cluster` scopes every read and stamps every write; None reads every cluster and refuses writes."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utcnow,
        retention: timedelta = timedelta(days=30),
        cluster: str | None = DEFAULT_CLUSTER,
    ) -> None:
        self.database = database
        self.clock = clock
        self.retention = retention
        self.cluster = cluster
        database.ensure_schema("alertmanager", MIGRATIONS)

    def _writing(self) -> str:
        if self.cluster is None:
            raise ValueError("an AlertInbox that reads every cluster writes nothing: scope it to one cluster")
        return self.cluster

    def _scoped(self, where: str, params: list[object]) -> tuple[str, list[object]]:
        if self.cluster is None:
            return where, params
        return (f"cluster = ? AND {where}" if where else "cluster = ?"), [self.cluster, *params]

    def add(self, alerts: Sequence[ReceivedAlert]) -> int:
        """Store one notification's alerts in one transaction. Returns how many were new (the rest
        Alertmanager had sent before: a repeat or a retry)."""
        cluster = self._writing()
        now = _ts(self.clock())
        new = 0
        with self.database.transaction() as db:
            for alert in alerts:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO am_inbox (cluster, fingerprint, status, starts_at, ends_at, labels, "
                    "annotations, generator_url, group_key, external_url, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        cluster,
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
        where, params = self._scoped("processed_at IS NULL", [limit])
        sql = f"SELECT {INBOX_COLUMNS} FROM am_inbox WHERE {where} ORDER BY id LIMIT ?"  # noqa: S608 - our own SQL
        rows = self.database.db.execute(sql, params).fetchall()
        return [_row(r) for r in rows]

    def processed(self, db: sqlite_utils.Database, ids: Sequence[int]) -> None:
        """Mark rows done inside the caller's transaction (with the alert rows they became)."""
        cluster = self._writing()
        now = _ts(self.clock())
        for row_id in ids:
            db.execute("UPDATE am_inbox SET processed_at = ? WHERE id = ? AND cluster = ?", [now, row_id, cluster])

    def link(self, db: sqlite_utils.Database, fingerprint: str, alert_id: int) -> None:
        db.execute(
            "INSERT INTO am_links (cluster, fingerprint, alert_id, linked_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (cluster, fingerprint) DO UPDATE SET alert_id = excluded.alert_id, "
            "linked_at = excluded.linked_at",
            [self._writing(), fingerprint, alert_id, _ts(self.clock())],
        )

    def linked(self, fingerprint: str) -> int | None:
        """The alert this cluster's fingerprint was folded into (across clusters: the newest link)."""
        where, params = self._scoped("fingerprint = ?", [fingerprint])
        row = self.database.db.execute(
            f"SELECT alert_id FROM am_links WHERE {where} ORDER BY linked_at DESC LIMIT 1",  # noqa: S608
            params,
        ).fetchone()
        return int(row[0]) if row else None

    def count(self, *, pending: bool | None = None) -> int:
        condition = "" if pending is None else "processed_at IS NULL" if pending else "processed_at IS NOT NULL"
        where, params = self._scoped(condition, [])
        sql = "SELECT COUNT(*) FROM am_inbox" + (f" WHERE {where}" if where else "")  # noqa: S608 - our own SQL
        return int(self.database.db.execute(sql, params).fetchone()[0])

    def prune(self, *, now: datetime | None = None) -> int:
        """Forget this cluster's processed rows and links older than the retention period."""
        cluster = self._writing()
        cutoff = _ts((now or self.clock()) - self.retention)
        with self.database.transaction() as db:
            gone = db.execute(
                "DELETE FROM am_inbox WHERE cluster = ? AND processed_at IS NOT NULL AND processed_at < ?",
                [cluster, cutoff],
            )
            db.execute("DELETE FROM am_links WHERE cluster = ? AND linked_at < ?", [cluster, cutoff])
            return int(gone.rowcount or 0)


def _row(row: Sequence[object]) -> InboxRow:
    (row_id, fingerprint, status, starts, ends, labels, annotations, url, group_key, external, received, cluster) = row
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
        str(cluster),
    )
