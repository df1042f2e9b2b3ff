"""The change history: recorded changes, each object's last-seen state, and per-kind watch checkpoints.

Tables (component "changes"):

* `changes` — one row per recorded change; indexed for "this object since T" and "this namespace
  since T". `(uid, resource_version)` is unique, so replaying a watch event records nothing twice.
* `change_state` — the last-seen, stripped state of every watched object (`model.ObjectState`). A
  restart compares what it lists with this, so a change made while the bot was down is recorded
  exactly once, and an unchanged object records nothing.
* `watch_checkpoints` — the resourceVersion each kind's watch has reached; its presence also says
  the kind's baseline was taken (the first listing records states, not changes).
* `changes_meta` — the random key of this database's secret fingerprints.

Times are stored as UNIX seconds (REAL) so range queries use the indexes; namespaces of
cluster-scoped objects are stored as "" so they take part in primary keys.

Every row of `changes`, `change_state` and `watch_checkpoints` names its cluster, and the cluster is
part of every key: the same object in two clusters has two states, a watch's resourceVersion is one
cluster's, an external event id is unique per cluster. A `ChangeStore` scoped to a cluster reads and
writes only that cluster's rows; one scoped to None reads the history of every cluster (each Change
carries its own) and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.model import (
    DEFAULT_CLUSTER,
    KUBERNETES,
    Change,
    ChangeKind,
    FieldChange,
    Management,
    ObjectRef,
    ObjectState,
)
from bot.store.database import ClusterStep, Database, Migration, rebuild_with_cluster

DEFAULT_RETENTION = timedelta(days=30)
FINGERPRINT_CHARS = 16


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            change_kind TEXT NOT NULL,
            summary TEXT NOT NULL,
            actor TEXT,
            revision INTEGER,
            fields TEXT NOT NULL,
            uid TEXT,
            resource_version TEXT
        )"""
    )
    db.execute("CREATE INDEX changes_object_at ON changes (namespace, kind, name, at)")
    db.execute("CREATE INDEX changes_namespace_at ON changes (namespace, at)")
    db.execute("CREATE INDEX changes_at ON changes (at)")
    db.execute("CREATE UNIQUE INDEX changes_event ON changes (uid, resource_version, change_kind)")
    db.execute(
        """CREATE TABLE change_state (
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            uid TEXT NOT NULL,
            resource_version TEXT NOT NULL,
            revision INTEGER,
            first_revision INTEGER,
            owner TEXT,
            template_hash TEXT,
            body TEXT NOT NULL,
            PRIMARY KEY (kind, namespace, name)
        ) WITHOUT ROWID"""
    )
    db.execute("CREATE INDEX change_state_owner ON change_state (kind, namespace, owner, template_hash)")
    db.execute(
        "CREATE TABLE watch_checkpoints (kind TEXT PRIMARY KEY, resource_version TEXT NOT NULL, updated_at REAL)"
    )
    db.execute("CREATE TABLE changes_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _add_sources(db: sqlite_utils.Database) -> None:
    """Where a change came from (issue 13): the cluster, or an external event with its id and link;
    and the GitOps tool or Helm release that manages a cluster change's object."""
    db.execute(f"ALTER TABLE changes ADD COLUMN source TEXT NOT NULL DEFAULT '{KUBERNETES}'")
    db.execute("ALTER TABLE changes ADD COLUMN link TEXT")
    db.execute("ALTER TABLE changes ADD COLUMN event_id TEXT")
    db.execute("ALTER TABLE changes ADD COLUMN managed_by TEXT")
    db.execute("CREATE UNIQUE INDEX changes_external_event ON changes (event_id) WHERE event_id IS NOT NULL")


def _add_cluster(db: sqlite_utils.Database, legacy_cluster: str) -> None:
    """The cluster of every row (issue 14), in every key: rows before this step get `legacy_cluster`."""
    rebuild_with_cluster(
        db,
        "changes",
        create=f"""CREATE TABLE {{table}} (
            id INTEGER PRIMARY KEY,
            cluster TEXT NOT NULL,
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            change_kind TEXT NOT NULL,
            summary TEXT NOT NULL,
            actor TEXT,
            revision INTEGER,
            fields TEXT NOT NULL,
            uid TEXT,
            resource_version TEXT,
            source TEXT NOT NULL DEFAULT '{KUBERNETES}',
            link TEXT,
            event_id TEXT,
            managed_by TEXT
        )""",
        # the cluster after the equality columns: a scoped read uses the whole index, a read across
        # clusters its prefix; `changes_at` serves reads across clusters (a digest of every cluster)
        indexes=[
            "CREATE INDEX changes_object_at ON changes (namespace, kind, name, cluster, at)",
            "CREATE INDEX changes_namespace_at ON changes (namespace, cluster, at)",
            "CREATE INDEX changes_cluster_at ON changes (cluster, at)",
            "CREATE INDEX changes_at ON changes (at)",
            "CREATE UNIQUE INDEX changes_event ON changes (cluster, uid, resource_version, change_kind)",
            "CREATE UNIQUE INDEX changes_external_event ON changes (cluster, event_id) WHERE event_id IS NOT NULL",
        ],
        legacy_cluster=legacy_cluster,
    )
    rebuild_with_cluster(
        db,
        "change_state",
        create="""CREATE TABLE {table} (
            cluster TEXT NOT NULL,
            kind TEXT NOT NULL,
            namespace TEXT NOT NULL,
            name TEXT NOT NULL,
            uid TEXT NOT NULL,
            resource_version TEXT NOT NULL,
            revision INTEGER,
            first_revision INTEGER,
            owner TEXT,
            template_hash TEXT,
            body TEXT NOT NULL,
            PRIMARY KEY (cluster, kind, namespace, name)
        ) WITHOUT ROWID""",
        indexes=["CREATE INDEX change_state_owner ON change_state (cluster, kind, namespace, owner, template_hash)"],
        legacy_cluster=legacy_cluster,
    )
    rebuild_with_cluster(
        db,
        "watch_checkpoints",
        create="""CREATE TABLE {table} (
            cluster TEXT NOT NULL,
            kind TEXT NOT NULL,
            resource_version TEXT NOT NULL,
            updated_at REAL,
            PRIMARY KEY (cluster, kind)
        )""",
        indexes=[],
        legacy_cluster=legacy_cluster,
    )


MIGRATIONS: list[Migration] = [_create_tables, _add_sources, ClusterStep(_add_cluster)]
COLUMNS = (
    "id, at, kind, namespace, name, change_kind, summary, actor, revision, fields, source, link, managed_by, cluster"
)
STATE_COLUMNS = "kind, namespace, name, uid, resource_version, revision, first_revision, owner, template_hash, body"


@dataclass(frozen=True, slots=True)
class Recorded:
    """A change as the recorder hands it to the store: the Change plus the event that caused it."""

    change: Change
    uid: str | None = None
    resource_version: str | None = None
    event_id: str | None = None
    """An external change event's id: the same id is stored once (`ChangeStore.record_external`)."""


def _ts(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


class ChangeStore:
    """Reads and writes the change history. Safe to use from several threads (one connection each).

    `cluster` names the cluster whose history this is: every read is limited to it and every write is
    stamped with it. None reads the history of every cluster and refuses writes (ValueError), as it
    refuses the reads that only make sense in one cluster (an object's last-seen state, a checkpoint)."""

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
        database.ensure_schema("changes", MIGRATIONS)
        self._key = self._fingerprint_key()

    def _one_cluster(self, what: str) -> str:
        if self.cluster is None:
            raise ValueError(f"{what} needs a ChangeStore scoped to one cluster (this one reads every cluster)")
        return self.cluster

    def _scope(self, where: list[str], params: list[Any]) -> None:
        if self.cluster is not None:
            where.append("cluster = ?")
            params.append(self.cluster)

    # -- secrets ----------------------------------------------------------------------------------

    def _fingerprint_key(self) -> bytes:
        with self.database.transaction() as db:
            row = db.execute("SELECT value FROM changes_meta WHERE key = 'fingerprint_key'").fetchone()
            if row:
                return bytes.fromhex(row[0])
            key = secrets.token_bytes(32)
            db.execute("INSERT INTO changes_meta (key, value) VALUES ('fingerprint_key', ?)", [key.hex()])
            return key

    def fingerprint(self, value: str) -> str:
        """A keyed, truncated HMAC-SHA256 of a secret value: equal values match, values cannot be read back."""
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return f"hmac:{digest[:FINGERPRINT_CHARS]}"

    # -- checkpoints and state --------------------------------------------------------------------

    def checkpoint(self, kind: str) -> str | None:
        cluster = self._one_cluster("a watch checkpoint")
        row = self.database.db.execute(
            "SELECT resource_version FROM watch_checkpoints WHERE cluster = ? AND kind = ?", [cluster, kind]
        ).fetchone()
        return str(row[0]) if row else None

    def set_checkpoint(self, kind: str, resource_version: str) -> None:
        cluster = self._one_cluster("writing a checkpoint")
        with self.database.transaction() as db:
            self._write_checkpoint(db, cluster, kind, resource_version)

    def _write_checkpoint(self, db: sqlite_utils.Database, cluster: str, kind: str, resource_version: str) -> None:
        db.execute(
            "INSERT INTO watch_checkpoints (cluster, kind, resource_version, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(cluster, kind) DO UPDATE SET resource_version = excluded.resource_version, "
            "updated_at = excluded.updated_at",
            [cluster, kind, resource_version, _ts(self.clock())],
        )

    def state(self, ref: ObjectRef) -> ObjectState | None:
        cluster = self._one_cluster("an object's last-seen state")
        row = self.database.db.execute(
            f"SELECT {STATE_COLUMNS} FROM change_state "  # noqa: S608 - a constant column list
            "WHERE cluster = ? AND kind = ? AND namespace = ? AND name = ?",
            [cluster, ref.kind, ref.namespace or "", ref.name],
        ).fetchone()
        return _snapshot_from_row(ref.kind, row) if row else None

    def states(self, kind: str) -> list[ObjectRef]:
        """The refs of every object of `kind` with a stored state (for deletions found by a re-list)."""
        cluster = self._one_cluster("the last-seen states")
        rows = self.database.db.execute(
            "SELECT namespace, name FROM change_state WHERE cluster = ? AND kind = ?", [cluster, kind]
        )
        return [ObjectRef(kind, ns or None, name) for ns, name in rows]

    def first_revision_of_template(self, *, namespace: str | None, owner: str, template_hash: str) -> int | None:
        """The oldest revision a ReplicaSet of `owner` with this pod template was created at, if any."""
        cluster = self._one_cluster("a ReplicaSet's first revision")
        row = self.database.db.execute(
            "SELECT MIN(first_revision) FROM change_state "
            "WHERE cluster = ? AND kind = 'ReplicaSet' AND namespace = ? AND owner = ? AND template_hash = ?",
            [cluster, namespace or "", owner, template_hash],
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    # -- writing ----------------------------------------------------------------------------------

    def commit(
        self,
        *,
        changes: Sequence[Recorded] = (),
        states: Iterable[ObjectState] = (),
        deleted: Iterable[ObjectRef] = (),
        checkpoint: tuple[str, str] | None = None,
    ) -> list[Change]:
        """Write changes, states and a checkpoint in one transaction. Returns the changes newly stored.

        A change whose (cluster, uid, resourceVersion) is already stored is skipped: a replayed event.
        The changes returned carry their id and this store's cluster.
        """
        cluster = self._one_cluster("recording changes")
        stored: list[Change] = []
        with self.database.transaction() as db:
            for recorded in changes:
                row_id = _insert_change(db, cluster, recorded)
                if row_id is not None:
                    stored.append(replace(recorded.change, id=row_id, cluster=cluster))
            for snap in states:
                _upsert_state(db, cluster, snap)
            for ref in deleted:
                db.execute(
                    "DELETE FROM change_state WHERE cluster = ? AND kind = ? AND namespace = ? AND name = ?",
                    [cluster, ref.kind, ref.namespace or "", ref.name],
                )
            if checkpoint is not None:
                self._write_checkpoint(db, cluster, *checkpoint)
        return stored

    def prune(self, *, now: datetime | None = None) -> int:
        """Delete this cluster's changes older than the retention period. Returns how many rows went."""
        cluster = self._one_cluster("pruning")
        cutoff = _ts((now or self.clock()) - self.retention)
        with self.database.transaction() as db:
            cursor = db.execute("DELETE FROM changes WHERE cluster = ? AND at < ?", [cluster, cutoff])
            return int(cursor.rowcount or 0)

    # -- reading ----------------------------------------------------------------------------------

    def query(
        self,
        *,
        since: datetime,
        until: datetime | None = None,
        ref: ObjectRef | None = None,
        namespace: str | None = None,
        name: str | None = None,
        kinds: Sequence[ChangeKind] = (),
        skip_kinds: Sequence[str] = (),
        limit: int = 200,
    ) -> list[Change]:
        """Changes newest first: of one object (`ref`), of a name in a namespace, of a namespace, or all.
        `skip_kinds`: object kinds left out (those the asker may not read)."""
        where = ["at >= ?"]
        params: list[Any] = [_ts(since)]
        self._scope(where, params)
        if until is not None:
            where.append("at < ?")
            params.append(_ts(until))
        if ref is not None:
            where += ["namespace = ?", "kind = ?", "name = ?"]
            params += [_namespace_column(ref), ref.kind, ref.name]
        else:
            if namespace is not None:
                where.append("namespace = ?")
                params.append(namespace)
            if name is not None:
                where.append("name = ?")
                params.append(name)
        if kinds:
            where.append(f"change_kind IN ({', '.join('?' * len(kinds))})")
            params += [str(k) for k in kinds]
        if skip_kinds:
            where.append(f"kind NOT IN ({', '.join('?' * len(skip_kinds))})")
            params += list(skip_kinds)
        sql = f"SELECT {COLUMNS} FROM changes WHERE {' AND '.join(where)} ORDER BY at DESC, id DESC LIMIT ?"  # noqa: S608
        rows = self.database.db.execute(sql, [*params, limit]).fetchall()
        return [_change_from_row(row) for row in rows]

    def get(self, change_id: int) -> Change | None:
        """One recorded change by its id (`changes --id N`): None if it is another cluster's."""
        where, params = ["id = ?"], [change_id]
        self._scope(where, params)
        sql = f"SELECT {COLUMNS} FROM changes WHERE {' AND '.join(where)}"  # noqa: S608 - a constant column list
        row = self.database.db.execute(sql, params).fetchone()
        return _change_from_row(row) if row else None

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]:
        """The recorded changes of these objects since `since`, newest first (what diagnosis and alerts read).

        A Namespace among `refs` stands for the external events about that namespace as a whole (a
        feature flag, a config push): those, not the Namespace object's own edits."""
        found: list[Change] = []
        for ref in refs:
            changes = self.query(since=since, ref=ref, limit=50)
            if ref.kind == "Namespace":
                changes = [c for c in changes if c.external]
            found += changes
        return sorted(found, key=lambda c: (c.at, c.id or 0), reverse=True)

    def record_external(self, change: Change, *, event_id: str) -> tuple[Change, bool]:
        """Store an external change event once per `event_id` in this cluster: (the stored change, whether
        it was stored before: a duplicate stores nothing and answers the first one)."""
        cluster = self._one_cluster("recording an external change")
        with self.database.transaction() as db:
            row_id = _insert_change(db, cluster, Recorded(change, event_id=event_id))
            if row_id is not None:
                return replace(change, id=row_id, cluster=cluster), False
            row = db.execute(
                f"SELECT {COLUMNS} FROM changes WHERE cluster = ? AND event_id = ?",  # noqa: S608
                [cluster, event_id],
            ).fetchone()
        if row is None:  # pruned between the two statements: cannot happen inside one transaction
            raise RuntimeError(f"external change {event_id!r} is neither new nor stored")
        return _change_from_row(row), True

    def count(self, *, since: datetime, namespace: str | None = None) -> int:
        where = ["at >= ?"]
        params: list[Any] = [_ts(since)]
        self._scope(where, params)
        if namespace is not None:
            where.append("namespace = ?")
            params.append(namespace)
        row = self.database.db.execute(f"SELECT COUNT(*) FROM changes WHERE {' AND '.join(where)}", params).fetchone()  # noqa: S608
        return int(row[0])

    def known_names(self, *, namespace: str | None) -> list[ObjectRef]:
        """Objects the history knows in a namespace (stored state or recorded changes), for suggestions."""
        where = ["namespace = ?"]
        params: list[Any] = [namespace or ""]
        self._scope(where, params)
        condition = " AND ".join(where)
        rows = self.database.db.execute(
            f"SELECT kind, name FROM change_state WHERE {condition} AND kind != 'ReplicaSet' "  # noqa: S608
            f"UNION SELECT kind, name FROM changes WHERE {condition}",
            [*params, *params],
        )
        return [ObjectRef(kind, namespace, name) for kind, name in rows]


def _namespace_column(ref: ObjectRef) -> str:
    """The row's namespace: a Namespace's own name, so `changes -n shop` and the culprit search find the
    events about namespace shop as a whole; "" for other cluster-scoped objects."""
    return ref.name if ref.kind == "Namespace" else ref.namespace or ""


def _insert_change(db: sqlite_utils.Database, cluster: str, recorded: Recorded) -> int | None:
    change = recorded.change
    managed = change.managed_by
    cursor = db.execute(
        "INSERT OR IGNORE INTO changes (cluster, at, kind, namespace, name, change_kind, summary, actor, revision, "
        "fields, uid, resource_version, source, link, event_id, managed_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            cluster,
            _ts(change.at),
            change.ref.kind,
            _namespace_column(change.ref),
            change.ref.name,
            str(change.kind),
            change.summary,
            change.actor,
            change.revision,
            json.dumps([f.to_json() for f in change.fields], default=str),
            recorded.uid,
            recorded.resource_version,
            change.source,
            change.link,
            recorded.event_id,
            json.dumps(managed.to_json()) if managed else None,
        ],
    )
    return int(cursor.lastrowid) if cursor.rowcount and cursor.lastrowid is not None else None


def _upsert_state(db: sqlite_utils.Database, cluster: str, snap: ObjectState) -> None:
    db.execute(
        "INSERT INTO change_state (cluster, kind, namespace, name, uid, resource_version, revision, first_revision, "
        "owner, template_hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(cluster, kind, namespace, name) DO UPDATE SET uid = excluded.uid, "
        "resource_version = excluded.resource_version, revision = excluded.revision, "
        # the revision a ReplicaSet was first seen at survives the bumps a rollback gives it
        "first_revision = CASE WHEN change_state.uid = excluded.uid "
        "THEN COALESCE(change_state.first_revision, excluded.first_revision) ELSE excluded.first_revision END, "
        "owner = excluded.owner, template_hash = excluded.template_hash, body = excluded.body",
        [
            cluster,
            snap.ref.kind,
            snap.ref.namespace or "",
            snap.ref.name,
            snap.uid,
            snap.resource_version,
            snap.revision,
            snap.first_revision if snap.first_revision is not None else snap.revision,
            snap.owner,
            snap.template_hash,
            json.dumps(snap.body, sort_keys=True, separators=(",", ":")),
        ],
    )


def _snapshot_from_row(kind: str, row: Any) -> ObjectState:
    _, namespace, name, uid, rv, revision, first_revision, owner, template_hash, body = row
    return ObjectState(
        ref=ObjectRef(kind, namespace or None, name),
        uid=uid,
        resource_version=rv,
        body=json.loads(body),
        revision=revision,
        owner=owner,
        template_hash=template_hash,
        first_revision=first_revision,
    )


def _change_from_row(row: Any) -> Change:
    """A row selected as COLUMNS."""
    row_id, at, kind, namespace, name, change_kind, summary, actor, revision, fields, source, link, managed, cluster = (
        row
    )
    managed_by = Management(**json.loads(managed)) if managed else None
    return Change(
        ref=ObjectRef(kind, None if kind == "Namespace" else namespace or None, name),
        at=datetime.fromtimestamp(at, UTC),
        kind=ChangeKind(change_kind),
        summary=summary,
        fields=tuple(FieldChange(f["path"], f["before"], f["after"], f.get("label")) for f in json.loads(fields)),
        actor=actor,
        revision=revision,
        id=row_id,
        source=source,
        link=link,
        managed_by=managed_by,
        cluster=cluster,
    )
