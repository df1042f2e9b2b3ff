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
from bot.model import KUBERNETES, Change, ChangeKind, FieldChange, Management, ObjectRef, ObjectState
from bot.store.database import Database

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


MIGRATIONS = [_create_tables, _add_sources]
COLUMNS = "id, at, kind, namespace, name, change_kind, summary, actor, revision, fields, source, link, managed_by"


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
    """Reads and writes the change history. Safe to use from several threads (one connection each)."""

    def __init__(
        self,
        database: Database,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        clock: Clock = utcnow,
    ) -> None:
        self.database = database
        self.retention = retention
        self.clock = clock
        database.ensure_schema("changes", MIGRATIONS)
        self._key = self._fingerprint_key()

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
        row = self.database.db.execute(
            "SELECT resource_version FROM watch_checkpoints WHERE kind = ?", [kind]
        ).fetchone()
        return str(row[0]) if row else None

    def set_checkpoint(self, kind: str, resource_version: str) -> None:
        with self.database.transaction() as db:
            self._write_checkpoint(db, kind, resource_version)

    def _write_checkpoint(self, db: sqlite_utils.Database, kind: str, resource_version: str) -> None:
        db.execute(
            "INSERT INTO watch_checkpoints (kind, resource_version, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(kind) DO UPDATE SET resource_version = excluded.resource_version, "
            "updated_at = excluded.updated_at",
            [kind, resource_version, _ts(self.clock())],
        )

    def state(self, ref: ObjectRef) -> ObjectState | None:
        row = self.database.db.execute(
            "SELECT * FROM change_state WHERE kind = ? AND namespace = ? AND name = ?",
            [ref.kind, ref.namespace or "", ref.name],
        ).fetchone()
        return _snapshot_from_row(ref.kind, row) if row else None

    def states(self, kind: str) -> list[ObjectRef]:
        """The refs of every object of `kind` with a stored state (for deletions found by a re-list)."""
        rows = self.database.db.execute("SELECT namespace, name FROM change_state WHERE kind = ?", [kind])
        return [ObjectRef(kind, ns or None, name) for ns, name in rows]

    def first_revision_of_template(self, *, namespace: str | None, owner: str, template_hash: str) -> int | None:
        """The oldest revision a ReplicaSet of `owner` with this pod template was created at, if any."""
        row = self.database.db.execute(
            "SELECT MIN(first_revision) FROM change_state "
            "WHERE kind = 'ReplicaSet' AND namespace = ? AND owner = ? AND template_hash = ?",
            [namespace or "", owner, template_hash],
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

        A change whose (uid, resourceVersion) is already stored is skipped: a replayed event.
        """
        stored: list[Change] = []
        with self.database.transaction() as db:
            for recorded in changes:
                row_id = _insert_change(db, recorded)
                if row_id is not None:
                    stored.append(replace(recorded.change, id=row_id))
            for snap in states:
                _upsert_state(db, snap)
            for ref in deleted:
                db.execute(
                    "DELETE FROM change_state WHERE kind = ? AND namespace = ? AND name = ?",
                    [ref.kind, ref.namespace or "", ref.name],
                )
            if checkpoint is not None:
                self._write_checkpoint(db, *checkpoint)
        return stored

    def prune(self, *, now: datetime | None = None) -> int:
        """Delete changes older than the retention period. Returns how many rows went."""
        cutoff = _ts((now or self.clock()) - self.retention)
        with self.database.transaction() as db:
            cursor = db.execute("DELETE FROM changes WHERE at < ?", [cutoff])
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
        """One recorded change by its id (`changes --id N`)."""
        sql = f"SELECT {COLUMNS} FROM changes WHERE id = ?"  # noqa: S608 - a constant column list
        row = self.database.db.execute(sql, [change_id]).fetchone()
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
        """Store an external change event once per `event_id`: (the stored change, whether it was
        stored before: a duplicate stores nothing and answers the first one)."""
        with self.database.transaction() as db:
            row_id = _insert_change(db, Recorded(change, event_id=event_id))
            if row_id is not None:
                return replace(change, id=row_id), False
            row = db.execute(f"SELECT {COLUMNS} FROM changes WHERE event_id = ?", [event_id]).fetchone()  # noqa: S608
        if row is None:  # pruned between the two statements: cannot happen inside one transaction
            raise RuntimeError(f"external change {event_id!r} is neither new nor stored")
        return _change_from_row(row), True

    def count(self, *, since: datetime, namespace: str | None = None) -> int:
        if namespace is None:
            row = self.database.db.execute("SELECT COUNT(*) FROM changes WHERE at >= ?", [_ts(since)]).fetchone()
        else:
            row = self.database.db.execute(
                "SELECT COUNT(*) FROM changes WHERE at >= ? AND namespace = ?", [_ts(since), namespace]
            ).fetchone()
        return int(row[0])

    def known_names(self, *, namespace: str | None) -> list[ObjectRef]:
        """Objects the history knows in a namespace (stored state or recorded changes), for suggestions."""
        ns = namespace or ""
        rows = self.database.db.execute(
            "SELECT kind, name FROM change_state WHERE namespace = ? AND kind != 'ReplicaSet' "
            "UNION SELECT kind, name FROM changes WHERE namespace = ?",
            [ns, ns],
        )
        return [ObjectRef(kind, namespace, name) for kind, name in rows]


def _namespace_column(ref: ObjectRef) -> str:
    """The row's namespace: a Namespace's own name, so `changes -n shop` and the culprit search find the
    events about namespace shop as a whole; "" for other cluster-scoped objects."""
    return ref.name if ref.kind == "Namespace" else ref.namespace or ""


def _insert_change(db: sqlite_utils.Database, recorded: Recorded) -> int | None:
    change = recorded.change
    managed = change.managed_by
    cursor = db.execute(
        "INSERT OR IGNORE INTO changes (at, kind, namespace, name, change_kind, summary, actor, revision, "
        "fields, uid, resource_version, source, link, event_id, managed_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
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


def _upsert_state(db: sqlite_utils.Database, snap: ObjectState) -> None:
    db.execute(
        "INSERT INTO change_state (kind, namespace, name, uid, resource_version, revision, first_revision, owner, "
        "template_hash, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(kind, namespace, name) DO UPDATE SET uid = excluded.uid, "
        "resource_version = excluded.resource_version, revision = excluded.revision, "
        # the revision a ReplicaSet was first seen at survives the bumps a rollback gives it
        "first_revision = CASE WHEN change_state.uid = excluded.uid "
        "THEN COALESCE(change_state.first_revision, excluded.first_revision) ELSE excluded.first_revision END, "
        "owner = excluded.owner, template_hash = excluded.template_hash, body = excluded.body",
        [
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
    row_id, at, kind, namespace, name, change_kind, summary, actor, revision, fields, source, link, managed = row
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
    )
