"""Warning Events seen by the watchers: one row per Event object, its count and times kept current.

Events are facts with their own times, not changes of state, so they live apart from `changes`.
The alerting work and the daily digest read them ("node events of the last 24 h").

Each row names its cluster, and an Event's uid is unique per cluster. An `EventStore` scoped to a
cluster reads and writes its rows only; one scoped to None reads every cluster's and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.model import DEFAULT_CLUSTER, KubeObject, ObjectRef, parse_time
from bot.store.database import ClusterStep, Database, Migration, rebuild_with_cluster

DEFAULT_RETENTION = timedelta(days=30)
MAX_MESSAGE = 1000


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE warning_events (
            uid TEXT PRIMARY KEY,
            namespace TEXT NOT NULL,
            involved_kind TEXT NOT NULL,
            involved_namespace TEXT NOT NULL,
            involved_name TEXT NOT NULL,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            source TEXT
        )"""
    )
    db.execute("CREATE INDEX warning_events_last_at ON warning_events (last_at)")
    db.execute("CREATE INDEX warning_events_involved ON warning_events (involved_namespace, involved_name, last_at)")


def _add_cluster(db: sqlite_utils.Database, legacy_cluster: str) -> None:
    """The cluster of every event (issue 14), in its key: rows before this step get `legacy_cluster`."""
    rebuild_with_cluster(
        db,
        "warning_events",
        create="""CREATE TABLE {table} (
            cluster TEXT NOT NULL,
            uid TEXT NOT NULL,
            namespace TEXT NOT NULL,
            involved_kind TEXT NOT NULL,
            involved_namespace TEXT NOT NULL,
            involved_name TEXT NOT NULL,
            reason TEXT NOT NULL,
            message TEXT NOT NULL,
            count INTEGER NOT NULL,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            source TEXT,
            PRIMARY KEY (cluster, uid)
        )""",
        indexes=[
            "CREATE INDEX warning_events_last_at ON warning_events (last_at)",
            "CREATE INDEX warning_events_cluster_last_at ON warning_events (cluster, last_at)",
            "CREATE INDEX warning_events_involved ON warning_events "
            "(involved_namespace, involved_name, cluster, last_at)",
        ],
        legacy_cluster=legacy_cluster,
    )


MIGRATIONS: list[Migration] = [_create_tables, ClusterStep(_add_cluster)]


@dataclass(frozen=True, slots=True)
class WarningEvent:
    uid: str
    involved: ObjectRef
    reason: str
    message: str
    count: int
    first_at: datetime
    last_at: datetime
    source: str | None = None
    cluster: str = DEFAULT_CLUSTER
    """The cluster it happened in (a stored event carries its row's)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "involved": self.involved.to_json(),
            "reason": self.reason,
            "message": self.message,
            "count": self.count,
            "first_at": self.first_at.isoformat(),
            "last_at": self.last_at.isoformat(),
            "source": self.source,
        }


def warning_event_of(obj: KubeObject, *, now: datetime) -> WarningEvent | None:
    """A WarningEvent from an Event object (core/v1 or events.k8s.io/v1 field names), None for others."""
    if obj.get("type") != "Warning":
        return None
    meta = obj.get("metadata") or {}
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    series = obj.get("series") or {}
    last = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(series.get("lastObservedTime"))
        or parse_time(obj.get("eventTime"))
        or now
    )
    first = parse_time(obj.get("firstTimestamp")) or parse_time(obj.get("eventTime")) or last
    source = (obj.get("source") or {}).get("component") or obj.get("reportingComponent") or None
    return WarningEvent(
        uid=meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}",
        involved=ObjectRef(involved.get("kind", ""), involved.get("namespace"), involved.get("name", "")),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or obj.get("note") or "")[:MAX_MESSAGE],
        count=int(obj.get("count") or series.get("count") or 1),
        first_at=first,
        last_at=last,
        source=source,
    )


class EventStore:
    """Warning Events of one cluster (`cluster`; None reads every cluster's and refuses writes)."""

    def __init__(
        self,
        database: Database,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        clock: Clock = utcnow,
        cluster: str | None = DEFAULT_CLUSTER,
    ) -> None:
        self.database = database
        self.retention = retention
        self.clock = clock
        self.cluster = cluster
        database.ensure_schema("events", MIGRATIONS)

    def _writing(self) -> str:
        if self.cluster is None:
            raise ValueError("an EventStore that reads every cluster writes nothing: scope it to one cluster")
        return self.cluster

    def record(self, event: WarningEvent, *, db: sqlite_utils.Database | None = None) -> None:
        """Insert or update (count, last time, message) one event of this store's cluster. Idempotent for
        a replayed event."""
        cluster = self._writing()
        (db or self.database.db).execute(
            "INSERT INTO warning_events (cluster, uid, namespace, involved_kind, involved_namespace, involved_name, "
            "reason, message, count, first_at, last_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(cluster, uid) DO UPDATE SET count = MAX(count, excluded.count), "
            "last_at = MAX(last_at, excluded.last_at), message = excluded.message",
            [
                cluster,
                event.uid,
                event.involved.namespace or "",
                event.involved.kind,
                event.involved.namespace or "",
                event.involved.name,
                event.reason,
                event.message,
                event.count,
                event.first_at.timestamp(),
                event.last_at.timestamp(),
                event.source,
            ],
        )

    def since(
        self, start: datetime, *, end: datetime | None = None, involved_kind: str | None = None, limit: int = 500
    ) -> list[WarningEvent]:
        """Events last seen in [start, end), newest first."""
        where: list[str] = ["last_at >= ?"]
        params: list[Any] = [start.timestamp()]
        if end is not None:
            where.append("last_at < ?")
            params.append(end.timestamp())
        if self.cluster is not None:
            where.append("cluster = ?")
            params.append(self.cluster)
        if involved_kind is not None:
            where.append("involved_kind = ?")
            params.append(involved_kind)
        columns = (
            "uid, involved_kind, involved_namespace, involved_name, reason, message, count, first_at, last_at, source, "
            "cluster"
        )
        sql = f"SELECT {columns} FROM warning_events WHERE {' AND '.join(where)} ORDER BY last_at DESC LIMIT ?"  # noqa: S608
        rows = self.database.db.execute(sql, [*params, limit]).fetchall()
        return [
            WarningEvent(
                uid=uid,
                involved=ObjectRef(kind, ns or None, name),
                reason=reason,
                message=message,
                count=count,
                first_at=datetime.fromtimestamp(first_at, UTC),
                last_at=datetime.fromtimestamp(last_at, UTC),
                source=source,
                cluster=cluster,
            )
            for uid, kind, ns, name, reason, message, count, first_at, last_at, source, cluster in rows
        ]

    def prune(self, *, now: datetime | None = None) -> int:
        """Delete this cluster's events last seen before the retention period."""
        cluster = self._writing()
        cutoff = ((now or self.clock()) - self.retention).timestamp()
        with self.database.transaction() as db:
            cursor = db.execute("DELETE FROM warning_events WHERE cluster = ? AND last_at < ?", [cluster, cutoff])
            return int(cursor.rowcount or 0)
