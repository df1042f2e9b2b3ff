"""The audit log: one row per attempt — allowed, denied or failed — and the actions' idempotency keys.

Who (Slack user and the Kubernetes identity the bot acted as), what (verb, target, namespace,
parameters, the canonical command), the decision and the rule that made it, the outcome and when.
A confirmed action's row is written BEFORE the change with its action id under a UNIQUE constraint:
that row is the idempotency key, so a second click with the same id finds it, changes nothing and
only counts a repeat on the same row. Optionally each action and each refusal is also announced:
`announce(entry)` is given the row itself (typed parts, not a line of text), and rendering it for a
chat channel is the announcer's job (`bot.slack.audit.AuditChannel` in the bot; no Slack imports here).

Every row names the cluster the command was for. An `AuditLog` scoped to a cluster writes and reads
that cluster's rows; one scoped to None reads every cluster's and writes nothing. An action id stays
unique across clusters: it is a one-time token of one confirmation, so the same id claimed in another
cluster is refused as already claimed (that row, with its cluster, is the answer), never run twice.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.clock import Clock, utcnow
from bot.errors import StoreUnavailable
from bot.model import DEFAULT_CLUSTER, Command, Decision, Subject
from bot.store.database import ClusterStep, Migration, rebuild_with_cluster

if TYPE_CHECKING:  # annotations only
    import sqlite_utils

    from bot.store.database import Database

log = logging.getLogger(__name__)

RUNNING, DONE, FAILED, DENIED = "running", "done", "failed", "denied"


def _create(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            slack_user TEXT,
            usergroups TEXT NOT NULL,
            k8s_user TEXT,
            k8s_groups TEXT NOT NULL,
            channel TEXT,
            verb TEXT NOT NULL,
            target TEXT,
            namespace TEXT,
            params TEXT NOT NULL,
            command TEXT NOT NULL,
            action_id TEXT UNIQUE,
            decision TEXT NOT NULL CHECK (decision IN ('allowed', 'denied')),
            reason TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('running', 'done', 'failed', 'denied')),
            message TEXT,
            finished_at TEXT,
            repeats INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX audit_at ON audit (at)")


def _add_cluster(db: sqlite_utils.Database, legacy_cluster: str) -> None:
    """The cluster of every attempt (issue 14): rows before this step get `legacy_cluster`."""
    rebuild_with_cluster(
        db,
        "audit",
        create="""
        CREATE TABLE {table} (
            id INTEGER PRIMARY KEY,
            cluster TEXT NOT NULL,
            at TEXT NOT NULL,
            slack_user TEXT,
            usergroups TEXT NOT NULL,
            k8s_user TEXT,
            k8s_groups TEXT NOT NULL,
            channel TEXT,
            verb TEXT NOT NULL,
            target TEXT,
            namespace TEXT,
            params TEXT NOT NULL,
            command TEXT NOT NULL,
            action_id TEXT UNIQUE,
            decision TEXT NOT NULL CHECK (decision IN ('allowed', 'denied')),
            reason TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('running', 'done', 'failed', 'denied')),
            message TEXT,
            finished_at TEXT,
            repeats INTEGER NOT NULL DEFAULT 0
        )
        """,
        indexes=["CREATE INDEX audit_at ON audit (at)", "CREATE INDEX audit_cluster_at ON audit (cluster, at)"],
        legacy_cluster=legacy_cluster,
    )


MIGRATIONS: list[Migration] = [_create, ClusterStep(_add_cluster)]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    slack_user: str | None
    usergroups: tuple[str, ...]
    k8s_user: str | None
    k8s_groups: tuple[str, ...]
    channel: str | None
    verb: str
    target: str | None
    namespace: str | None
    params: dict[str, Any]
    command: str
    action_id: str | None
    decision: str
    reason: str
    outcome: str
    message: str | None
    finished_at: datetime | None
    repeats: int
    cluster: str = DEFAULT_CLUSTER

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        return cls(
            id=int(row["id"]),
            at=datetime.fromisoformat(row["at"]),
            slack_user=row["slack_user"],
            usergroups=tuple(json.loads(row["usergroups"])),
            k8s_user=row["k8s_user"],
            k8s_groups=tuple(json.loads(row["k8s_groups"])),
            channel=row["channel"],
            verb=row["verb"],
            target=row["target"],
            namespace=row["namespace"],
            params=json.loads(row["params"]),
            command=row["command"],
            action_id=row["action_id"],
            decision=row["decision"],
            reason=row["reason"],
            outcome=row["outcome"],
            message=row["message"],
            finished_at=datetime.fromisoformat(row["finished_at"]) if row["finished_at"] else None,
            repeats=int(row["repeats"]),
            cluster=row["cluster"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cluster": self.cluster,
            "at": self.at.isoformat(),
            "slack_user": self.slack_user,
            "usergroups": list(self.usergroups),
            "k8s_user": self.k8s_user,
            "k8s_groups": list(self.k8s_groups),
            "channel": self.channel,
            "verb": self.verb,
            "target": self.target,
            "namespace": self.namespace,
            "params": self.params,
            "command": self.command,
            "action_id": self.action_id,
            "decision": self.decision,
            "reason": self.reason,
            "outcome": self.outcome,
            "message": self.message,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "repeats": self.repeats,
        }

    def line(self, *, cluster: bool = False) -> str:
        """One plain line for `k8sbot audit` (the audit channel renders the entry itself, escaped).
        `cluster`: name the cluster (a bot serving several)."""
        who = self.slack_user or "terminal"
        if self.k8s_user:
            who += f" as {self.k8s_user}"
        repeats = f" (+{self.repeats} repeated click{'s' if self.repeats > 1 else ''})" if self.repeats else ""
        detail = self.message if self.outcome != DENIED else self.reason
        where = f"[{self.cluster}] " if cluster else ""
        return (
            f"{self.at:%Y-%m-%d %H:%M:%S} {where}{self.outcome.upper():7} {who}: {self.command}{repeats}"
            f" — {detail or ''}"
        )


AuditAnnouncer = Callable[[AuditEntry], object]
"""Announces an action or a refusal somewhere people see it (the audit channel)."""


class AlreadyClaimed(Exception):
    """`begin` found a row with the same action id: the action already ran (or is running)."""

    def __init__(self, entry: AuditEntry) -> None:
        super().__init__(entry.action_id)
        self.entry = entry


class AuditLog:
    """Writes and reads the `audit` table of one Database (thread-safe through per-thread connections).

    `cluster` scopes every read and stamps every write; None reads every cluster and refuses writes."""

    def __init__(
        self,
        database: Database,
        *,
        announce: AuditAnnouncer | None = None,
        clock: Clock = utcnow,
        cluster: str | None = DEFAULT_CLUSTER,
    ) -> None:
        self.database = database
        self.announce = announce
        self._clock = clock
        self.cluster = cluster
        database.ensure_schema("audit", MIGRATIONS)

    def _writing(self) -> str:
        if self.cluster is None:
            raise ValueError("an AuditLog that reads every cluster writes nothing: scope it to one cluster")
        return self.cluster

    def _scoped(self, where: str, params: list[Any]) -> tuple[str, list[Any]]:
        if self.cluster is None:
            return where, params
        return f"cluster = ? AND {where}", [self.cluster, *params]

    def _now(self) -> str:
        # Stored as UTC ISO text so that text order is time order (`since` compares strings).
        return self._clock().astimezone(UTC).isoformat()

    # -- writing --------------------------------------------------------------------------------

    def record(
        self,
        *,
        subject: Subject,
        command: Command,
        channel: str | None,
        decision: Decision,
        outcome: str,
        message: str | None = None,
        action_id: str | None = None,
    ) -> AuditEntry:
        """One finished attempt (a refusal, a read, a failed preview) as a single row."""
        row = self._row(
            subject=subject,
            command=command,
            channel=channel,
            decision=decision,
            action_id=action_id,
            outcome=outcome,
            message=message,
        )
        row["finished_at"] = row["at"]
        entry = self._insert(row)
        self._announce(entry)
        return entry

    def begin(
        self, *, subject: Subject, command: Command, channel: str | None, decision: Decision, action_id: str
    ) -> AuditEntry:
        """Claim `action_id` before an action runs; raises AlreadyClaimed (and counts a repeat) if taken."""
        row = self._row(
            subject=subject,
            command=command,
            channel=channel,
            decision=decision,
            action_id=action_id,
            outcome=RUNNING,
            message=None,
        )
        try:
            return self._insert(row, verify=True)  # the file is checked before every claim, not once a second
        except sqlite3.IntegrityError:
            with self.database.transaction() as db:
                db.execute("UPDATE audit SET repeats = repeats + 1 WHERE action_id = ?", [action_id])
            # the claim may be another cluster's (an action id is unique across clusters): that row answers
            existing = self._one("SELECT * FROM audit WHERE action_id = ?", [action_id])
            if existing is None:  # pragma: no cover - the unique row cannot vanish
                raise
            raise AlreadyClaimed(existing) from None

    def finish(self, entry: AuditEntry, *, outcome: str, message: str) -> AuditEntry:
        """Record how a claimed action ended. The action has run by now, so a store that fails here
        must not turn its answer into an error: the outcome is logged (and announced) instead."""
        finished = self._now()
        cluster = self._writing()
        try:
            with self.database.transaction(verify=True) as db:  # a lost file is noticed and said, not written to
                db.execute(
                    "UPDATE audit SET outcome = ?, message = ?, finished_at = ? WHERE id = ? AND cluster = ?",
                    [outcome, message, finished, entry.id, cluster],
                )
            done = self.get(entry.id)
        except StoreUnavailable as e:
            log.error(
                "audit: %s of action %s ended %s (%s) but was not recorded: %s",
                entry.command,
                entry.action_id,
                outcome,
                message,
                e,
            )
            done = None
        if done is None:
            done = replace(entry, outcome=outcome, message=message, finished_at=datetime.fromisoformat(finished))
        self._announce(done)
        return done

    def _row(
        self,
        *,
        subject: Subject,
        command: Command,
        channel: str | None,
        decision: Decision,
        action_id: str | None,
        outcome: str,
        message: str | None,
    ) -> dict[str, Any]:
        return {
            "cluster": self._writing(),
            "at": self._now(),
            "slack_user": subject.slack_user,
            "usergroups": json.dumps(sorted(subject.usergroups)),
            "k8s_user": subject.k8s_user,
            "k8s_groups": json.dumps(list(subject.k8s_groups)),
            "channel": channel,
            "verb": command.verb,
            "target": command.target,
            "namespace": command.namespace,
            "params": json.dumps({k: v for k, v in command.flags if k != "action-id"}, sort_keys=True),
            "command": command.as_text(),
            "action_id": action_id,
            "decision": "allowed" if decision.allowed else "denied",
            "reason": decision.reason,
            "outcome": outcome,
            "message": message,
        }

    def _insert(self, row: dict[str, Any], *, verify: bool = False) -> AuditEntry:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.database.transaction(verify=verify) as db:
            cursor = db.execute(f"INSERT INTO audit ({columns}) VALUES ({marks})", list(row.values()))  # noqa: S608
            new_id = cursor.lastrowid
        entry = self.get(int(new_id or 0))
        assert entry is not None
        return entry

    def _announce(self, entry: AuditEntry) -> None:
        # Reads are recorded but not posted: the channel is for changes and refusals.
        if self.announce is None or (entry.outcome == DONE and entry.action_id is None):
            return
        try:
            self.announce(entry)
        except Exception:  # the audit row is the record; a failed post must not fail the action
            log.exception("could not announce audit entry %s", entry.id)

    # -- reading --------------------------------------------------------------------------------

    def get(self, entry_id: int) -> AuditEntry | None:
        return self._one(*self._query("id = ?", [entry_id]))

    def for_action(self, action_id: str) -> AuditEntry | None:
        return self._one(*self._query("action_id = ?", [action_id]))

    def since(self, since: datetime | None = None, *, limit: int = 500) -> list[AuditEntry]:
        """Entries at or after `since` (all when None), oldest first, at most `limit` (the newest)."""
        start = since.astimezone(UTC).isoformat() if since else ""
        query, params = self._query("at >= ?", [start], " ORDER BY id DESC LIMIT ?")
        cursor = self.database.db.execute(query, [*params, limit])
        names = [c[0] for c in cursor.description]
        entries = [AuditEntry.from_row(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        return list(reversed(entries))

    def count(self) -> int:
        where, params = self._scoped("1", [])
        return int(self.database.db.execute(f"SELECT count(*) FROM audit WHERE {where}", params).fetchone()[0])  # noqa: S608

    def _query(self, where: str, params: list[Any], tail: str = "") -> tuple[str, list[Any]]:
        scoped, values = self._scoped(where, params)
        return f"SELECT * FROM audit WHERE {scoped}{tail}", values  # noqa: S608 - our own SQL

    def _one(self, query: str, params: list[Any]) -> AuditEntry | None:
        cursor = self.database.db.execute(query, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return AuditEntry.from_row(dict(zip([c[0] for c in cursor.description], row, strict=True)))
