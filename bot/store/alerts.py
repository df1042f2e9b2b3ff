"""Alerts and silences: what fired, where it went, its Slack message, and who silenced what.

Tables (component "alerts"):

* `alerts` — one row per alert (one workload + one cause, from firing to resolved). `state` is
  `firing`, `resolved` or `undeliverable` (no channel at all: kept, never dropped). `channel` and
  `ts` are the Slack message once posted; `ts` is written by the outbox sender.
* `silences` — a workload (and optionally one category) muted until a time.

Times are UNIX seconds (REAL). The digest reads `recent_by_namespace`.

Every alert and silence names its cluster, and the cluster is part of an alert's identity (workload +
cause) and of a silence's target: the same Deployment in two clusters makes two alerts, and silencing
it in one leaves the other paging. An `AlertStore` scoped to a cluster reads and writes only its rows;
one scoped to None reads every cluster's (each record carries its own) and writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.model import DEFAULT_CLUSTER, Category, ObjectRef
from bot.store.database import ClusterStep, Database, Migration, rebuild_with_cluster


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            category TEXT NOT NULL,
            state TEXT NOT NULL,
            title TEXT NOT NULL,
            since REAL NOT NULL,
            fired_at REAL NOT NULL,
            resolved_at REAL,
            channel TEXT,
            team TEXT,
            route_reason TEXT,
            ts TEXT,
            details TEXT NOT NULL
        )"""
    )
    db.execute("CREATE INDEX alerts_open ON alerts (state, namespace, kind, name, category)")
    db.execute("CREATE INDEX alerts_fired ON alerts (fired_at, namespace)")
    db.execute(
        """CREATE TABLE silences (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            category TEXT,
            until REAL NOT NULL,
            created_by TEXT,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX silences_target ON silences (namespace, kind, name, until)")


def _add_cluster(db: sqlite_utils.Database, legacy_cluster: str) -> None:
    """The cluster of every alert and silence (issue 14): rows before this step get `legacy_cluster`."""
    rebuild_with_cluster(
        db,
        "alerts",
        create="""CREATE TABLE {table} (
            id INTEGER PRIMARY KEY,
            cluster TEXT NOT NULL,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            category TEXT NOT NULL,
            state TEXT NOT NULL,
            title TEXT NOT NULL,
            since REAL NOT NULL,
            fired_at REAL NOT NULL,
            resolved_at REAL,
            channel TEXT,
            team TEXT,
            route_reason TEXT,
            ts TEXT,
            details TEXT NOT NULL
        )""",
        indexes=[
            "CREATE INDEX alerts_open ON alerts (state, cluster, namespace, kind, name, category)",
            "CREATE INDEX alerts_fired ON alerts (fired_at, namespace)",
            "CREATE INDEX alerts_cluster_fired ON alerts (cluster, fired_at)",
        ],
        legacy_cluster=legacy_cluster,
    )
    rebuild_with_cluster(
        db,
        "silences",
        create="""CREATE TABLE {table} (
            id INTEGER PRIMARY KEY,
            cluster TEXT NOT NULL,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            category TEXT,
            until REAL NOT NULL,
            created_by TEXT,
            created_at REAL NOT NULL
        )""",
        indexes=["CREATE INDEX silences_target ON silences (namespace, kind, name, cluster, until)"],
        legacy_cluster=legacy_cluster,
    )


MIGRATIONS: list[Migration] = [_create_tables, ClusterStep(_add_cluster)]
ALERT_COLUMNS = (
    "id, kind, namespace, name, category, state, title, since, fired_at, resolved_at, channel, team, route_reason, "
    "ts, details, cluster"
)


def _ts(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    workload: ObjectRef
    category: Category
    state: str
    title: str
    since: datetime
    fired_at: datetime
    resolved_at: datetime | None
    channel: str | None
    team: str | None
    ts: str | None
    details: dict[str, Any]
    cluster: str = DEFAULT_CLUSTER

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cluster": self.cluster,
            "workload": self.workload.to_json(),
            "category": str(self.category),
            "state": self.state,
            "title": self.title,
            "since": self.since.isoformat(),
            "fired_at": self.fired_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "channel": self.channel,
            "team": self.team,
            "ts": self.ts,
        }


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    workload: ObjectRef
    category: Category | None
    until: datetime
    created_by: str | None
    cluster: str = DEFAULT_CLUSTER


class AlertStore:
    """Reads and writes alerts and silences (one SQLite connection per thread, via Database).

    `cluster` scopes every read and stamps every write; None reads every cluster and refuses writes."""

    def __init__(self, database: Database, *, clock: Clock = utcnow, cluster: str | None = DEFAULT_CLUSTER) -> None:
        self.database = database
        self.clock = clock
        self.cluster = cluster
        database.ensure_schema("alerts", MIGRATIONS)

    def _writing(self) -> str:
        if self.cluster is None:
            raise ValueError("an AlertStore that reads every cluster writes nothing: scope it to one cluster")
        return self.cluster

    def _select(self, table_columns: str, table: str, where: str, params: list[Any], tail: str = "") -> list[Any]:
        if self.cluster is not None:
            where = f"cluster = ? AND {where}"
            params = [self.cluster, *params]
        sql = f"SELECT {table_columns} FROM {table} WHERE {where}{tail}"  # noqa: S608 - our own names
        return list(self.database.db.execute(sql, params).fetchall())

    # -- alerts -----------------------------------------------------------------------------------

    def insert(
        self,
        db: sqlite_utils.Database,
        *,
        workload: ObjectRef,
        category: Category,
        title: str,
        since: datetime,
        channel: str | None,
        team: str | None,
        route_reason: str,
        details: dict[str, Any],
    ) -> int:
        """Insert an alert of this store's cluster inside the caller's transaction (the outbox row goes in
        the same one)."""
        cluster = self._writing()
        cursor = db.execute(
            "INSERT INTO alerts (cluster, kind, namespace, name, category, state, title, since, fired_at, channel, "
            "team, route_reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                cluster,
                workload.kind,
                workload.namespace or "",
                workload.name,
                str(category),
                "firing" if channel else "undeliverable",
                title,
                _ts(since),
                _ts(self.clock()),
                channel,
                team,
                route_reason,
                json.dumps(details, default=str),
            ],
        )
        return int(cursor.lastrowid or 0)

    def set_state(self, db: sqlite_utils.Database, alert_id: int, *, state: str, at: datetime | None = None) -> None:
        resolved = _ts(at) if at is not None and state == "resolved" else None
        db.execute(
            "UPDATE alerts SET state = ?, resolved_at = ? WHERE id = ? AND cluster = ?",
            [state, resolved, alert_id, self._writing()],
        )

    def set_details(self, db: sqlite_utils.Database, alert_id: int, details: dict[str, Any]) -> None:
        db.execute(
            "UPDATE alerts SET details = ? WHERE id = ? AND cluster = ?",
            [json.dumps(details, default=str), alert_id, self._writing()],
        )

    def set_ts(self, alert_id: int, *, channel: str, ts: str) -> None:
        cluster = self._writing()
        with self.database.transaction() as db:
            db.execute(
                "UPDATE alerts SET ts = ?, channel = ? WHERE id = ? AND cluster = ?", [ts, channel, alert_id, cluster]
            )

    def get(self, alert_id: int) -> AlertRecord | None:
        """One alert by id: None if it is another cluster's."""
        rows = self._select(ALERT_COLUMNS, "alerts", "id = ?", [alert_id])
        return _record(rows[0]) if rows else None

    def open_alerts(self) -> list[AlertRecord]:
        """Alerts still firing (a restart adopts them instead of posting them again)."""
        return [_record(r) for r in self._select(ALERT_COLUMNS, "alerts", "state = 'firing'", [], " ORDER BY id")]

    def open_for(self, workload: ObjectRef, category: Category) -> AlertRecord | None:
        """The firing alert of this workload and cause, if any (the newest)."""
        rows = self._select(
            ALERT_COLUMNS,
            "alerts",
            "state = 'firing' AND namespace = ? AND kind = ? AND name = ? AND category = ?",
            [workload.namespace or "", workload.kind, workload.name, str(category)],
            " ORDER BY id DESC LIMIT 1",
        )
        return _record(rows[0]) if rows else None

    def open_all_for(self, workload: ObjectRef) -> list[AlertRecord]:
        """Every firing alert of this workload, newest first."""
        rows = self._select(
            ALERT_COLUMNS,
            "alerts",
            "state = 'firing' AND namespace = ? AND kind = ? AND name = ?",
            [workload.namespace or "", workload.kind, workload.name],
            " ORDER BY id DESC",
        )
        return [_record(r) for r in rows]

    def since(self, since: datetime, *, namespace: str | None = None) -> list[AlertRecord]:
        where = "fired_at >= ?"
        params: list[Any] = [_ts(since)]
        if namespace is not None:
            where += " AND namespace = ?"
            params.append(namespace)
        rows = self._select(ALERT_COLUMNS, "alerts", where, params, " ORDER BY fired_at DESC, id DESC")
        return [_record(r) for r in rows]

    def recent_by_namespace(self, *, now: datetime | None = None, hours: int = 24) -> dict[str, list[AlertRecord]]:
        """The digest's view: alerts fired in the last `hours`, grouped by namespace (newest first).

        Cluster-scoped alerts (nodes) are grouped under "" .
        """
        start = (now or self.clock()) - timedelta(hours=hours)
        grouped: dict[str, list[AlertRecord]] = {}
        for record in self.since(start):
            grouped.setdefault(record.workload.namespace or "", []).append(record)
        return grouped

    # -- silences ---------------------------------------------------------------------------------

    def silence(
        self, workload: ObjectRef, *, until: datetime, category: Category | None = None, by: str | None = None
    ) -> int:
        cluster = self._writing()
        with self.database.transaction() as db:
            cursor = db.execute(
                "INSERT INTO silences (cluster, kind, namespace, name, category, until, created_by, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    cluster,
                    workload.kind,
                    workload.namespace or "",
                    workload.name,
                    str(category) if category else None,
                    _ts(until),
                    by,
                    _ts(self.clock()),
                ],
            )
            return int(cursor.lastrowid or 0)

    def silenced(self, workload: ObjectRef, category: Category, *, now: datetime | None = None) -> Silence | None:
        """The silence covering this workload and cause now, if any (the one lasting longest)."""
        rows = self._select(
            "id, category, until, created_by, cluster",
            "silences",
            "namespace = ? AND kind = ? AND name = ? AND until > ? AND (category IS NULL OR category = ?)",
            [workload.namespace or "", workload.kind, workload.name, _ts(now or self.clock()), str(category)],
            " ORDER BY until DESC LIMIT 1",
        )
        if not rows:
            return None
        silence_id, cat, until, by, cluster = rows[0]
        return Silence(
            int(silence_id), workload, Category(cat) if cat else None, _dt(until) or self.clock(), by, cluster
        )


def _record(row: Any) -> AlertRecord:
    (
        alert_id,
        kind,
        namespace,
        name,
        category,
        state,
        title,
        since,
        fired_at,
        resolved_at,
        channel,
        team,
        _,
        ts,
        details,
        cluster,
    ) = row
    return AlertRecord(
        id=int(alert_id),
        workload=ObjectRef(kind, namespace or None, name),
        category=Category(category),
        state=state,
        title=title,
        since=_dt(since) or utcnow(),
        fired_at=_dt(fired_at) or utcnow(),
        resolved_at=_dt(resolved_at),
        channel=channel,
        team=team,
        ts=ts,
        details=json.loads(details),
        cluster=cluster,
    )
