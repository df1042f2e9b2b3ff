"""Commands too long for a Slack button's value (2,000 characters), kept here under a short id.

A button carries `cmd:<id>` instead of a cut command, and the click looks the command up again. The
id is derived from the command text (a SHA-256 prefix), so rendering the same message twice (an alert
updated, a restart) reuses one row; saving refreshes `created_at`, and rows older than the retention
are pruned on the way, so a button on a message older than that answers "expired" and runs nothing.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, timedelta

import sqlite_utils

from bot.clock import Clock, utcnow
from bot.store.database import Database

ID_CHARS = 24
DEFAULT_RETENTION = timedelta(days=30)


def _create(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE button_commands (id TEXT PRIMARY KEY, command TEXT NOT NULL, created_at TEXT NOT NULL)")
    db.execute("CREATE INDEX button_commands_created_at ON button_commands (created_at)")


MIGRATIONS = [_create]


def command_id(command: str) -> str:
    return hashlib.sha256(command.encode()).hexdigest()[:ID_CHARS]


class ButtonCommands:
    """The `button_commands` table: id → command text, for `retention` after it was last rendered."""

    def __init__(self, database: Database, *, retention: timedelta = DEFAULT_RETENTION, clock: Clock = utcnow) -> None:
        self.database = database
        self.retention = retention
        self._clock = clock
        database.ensure_schema("button_commands", MIGRATIONS)

    def _cutoff(self) -> str:
        return (self._clock() - self.retention).astimezone(UTC).isoformat()

    def save(self, command: str) -> str:
        """Keep `command` (again) and return its id; prunes expired rows on the way.

        Rendering may happen inside a caller's transaction (the alert engine renders an alert in the
        transaction that writes its outbox row): then the rows join that transaction.
        """
        key = command_id(command)
        now = self._clock().astimezone(UTC).isoformat()
        if self.database.db.conn.in_transaction:
            self._save(self.database.db, key, command, now)
        else:
            with self.database.transaction() as db:
                self._save(db, key, command, now)
        return key

    def _save(self, db: sqlite_utils.Database, key: str, command: str, now: str) -> None:
        db.execute("DELETE FROM button_commands WHERE created_at < ?", [self._cutoff()])
        db.execute(
            "INSERT INTO button_commands (id, command, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET command = excluded.command, created_at = excluded.created_at",
            [key, command, now],
        )

    def get(self, key: str) -> str | None:
        """The command saved under `key`, or None when unknown or expired."""
        row = self.database.db.execute(
            "SELECT command FROM button_commands WHERE id = ? AND created_at >= ?", [key, self._cutoff()]
        ).fetchone()
        return str(row[0]) if row else None

    def prune(self) -> int:
        with self.database.transaction() as db:
            cursor = db.execute("DELETE FROM button_commands WHERE created_at < ?", [self._cutoff()])
            return int(cursor.rowcount or 0)
