"""One SQLite file, one connection per thread, WAL, and per-component migrations.

Watchers, Slack listeners and scheduled jobs run in different threads; SQLite connections must not
be shared between them, so `Database.db` hands each thread its own connection to the same file.
Each feature (changes, audit, alerts, ...) owns its tables and declares them as an ordered list of
migration steps under a component name; `ensure_schema` applies the steps not yet applied, each in
its own transaction, and records the version in `schema_versions`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]


class Database:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (created on first use)."""
        existing: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if existing is None:
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=30000")
            existing = sqlite_utils.Database(connection)
            self._local.db = existing
        return existing

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection; rolls back on error."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def ensure_schema(self, component: str, steps: Sequence[Migration]) -> int:
        """Apply the migration steps of `component` not applied yet. Returns the schema version."""
        with self._schema_lock:
            db = self.db
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = db.execute("SELECT version FROM schema_versions WHERE component = ?", [component]).fetchone()
            version = int(row[0]) if row else 0
            for index in range(version, len(steps)):
                with self.transaction() as tx:
                    steps[index](tx)
                    tx.execute(
                        "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                        "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        [component, index + 1],
                    )
            return len(steps)

    def close(self) -> None:
        existing: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if existing is not None:
            existing.conn.close()
            self._local.db = None
