"""One SQLite file, one connection per thread, WAL, and per-component migrations; failing closed.

Watchers, Slack listeners and scheduled jobs run in different threads; SQLite connections must not
be shared between them, so `Database.db` hands each thread its own connection to the same file.
Each feature (changes, audit, alerts, ...) owns its tables and declares them as an ordered list of
migration steps under a component name; `ensure_schema` applies the steps not yet applied, each in
its own transaction, and records the version in `schema_versions`.

Rows about something that happened in a cluster carry its name (`cluster TEXT NOT NULL`). Those tables
got the column in a later step of their component (`ClusterStep`); the rows a database held before
that step are given `Database(..., legacy_cluster=...)`, the cluster a single-cluster bot watched.

The file is the audit record, so the store fails closed:

- At start (`Database(path)`), a file that is not a SQLite database, is corrupt or truncated, is
  read-only or in a read-only directory, is a directory, or whose directory does not exist stops the
  start with one line (ConfigError) naming the file and what to do. The file is opened, read and
  written (a rolled-back probe) before anything else happens.
- While running, the (st_dev, st_ino) of the path is compared with the file that was opened before
  write transactions: at most once per second per thread, and always before an action's audit claim
  (`transaction(verify=True)`). If the file was deleted or replaced, the write that noticed it is
  refused with StoreUnavailable (an action is refused before it changes anything: its claim comes
  first) and the bot recovers: it stops using its connections to the lost file, opens the database now
  at the path (a new, empty one if the file was deleted), applies the migrations and logs loudly that
  the history before this moment is not in it. If that file cannot be opened either (garbage, a
  removed directory), every write is refused until it can.
- Connections to a lost file are abandoned, never closed, while the process runs: SQLite deletes
  FILE-wal and FILE-shm *by name* when the last connection to a database closes, and by then those
  names belong to the new database. Their own -wal/-shm left at the path are removed before the new
  database is opened (they would otherwise be taken for the new file's).
- A write that fails because of the file itself (corrupt, read-only, I/O error, disk full) raises
  StoreUnavailable with the file's name, not a bare sqlite3 error.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import sqlite_utils

from bot.errors import ConfigError, StoreUnavailable
from bot.model import DEFAULT_CLUSTER

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterStep:
    """A migration step that needs the cluster of the rows written before it: `apply(db, legacy_cluster)`."""

    apply: Callable[[sqlite_utils.Database, str], None]


Migration = Callable[[sqlite_utils.Database], None] | ClusterStep
MEMORY = ":memory:"
CHECK_EVERY = 1.0
"""Seconds between checks of the file's identity before ordinary writes, per thread."""

# Primary SQLite result codes that say the file, not the statement, is the problem.
_FILE_PROBLEMS = {
    sqlite3.SQLITE_NOTADB: "is not a SQLite database",
    sqlite3.SQLITE_CORRUPT: "is corrupt (damaged or truncated)",
    sqlite3.SQLITE_READONLY: "is read-only",
    sqlite3.SQLITE_CANTOPEN: "cannot be opened",
    sqlite3.SQLITE_IOERR: "cannot be read or written (an I/O error)",
    sqlite3.SQLITE_FULL: "cannot grow: the disk is full",
    sqlite3.SQLITE_PERM: "may not be accessed",
}
_FIX = {
    sqlite3.SQLITE_NOTADB: "move it aside and start again (the bot creates a new, empty database), or restore a backup",
    sqlite3.SQLITE_CORRUPT: "move it aside (with its -wal and -shm) and start again, or restore a backup",
    sqlite3.SQLITE_READONLY: "make it (and its -wal and -shm) writable by the bot's user",
    sqlite3.SQLITE_FULL: "free space on that disk",
}


def _code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def is_file_problem(error: BaseException) -> bool:
    """The error is about the database file (corrupt, read-only, gone, full), not about a statement."""
    return isinstance(error, sqlite3.Error) and _code(error) in _FILE_PROBLEMS


class Database:
    def __init__(
        self,
        path: str | Path,
        *,
        check_every: float = CHECK_EVERY,
        monotonic: Callable[[], float] = time.monotonic,
        legacy_cluster: str = DEFAULT_CLUSTER,
    ) -> None:
        if not legacy_cluster:
            raise ValueError("legacy_cluster: the cluster of the rows written before clusters were recorded is needed")
        self.path = str(path)
        self.legacy_cluster = legacy_cluster
        """The cluster that rows written before their table recorded clusters are given when it migrates."""
        self.check_every = check_every
        self._monotonic = monotonic
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._lock = threading.RLock()  # identity, generation, recovery
        self._migrations: dict[str, Sequence[Migration]] = {}
        self._connections: weakref.WeakSet[sqlite_utils.Database] = weakref.WeakSet()
        self._abandoned: list[sqlite_utils.Database] = []  # connections to a lost file: kept, never closed
        self._sidecars: set[tuple[int, int]] = set()  # identities of the -wal/-shm our connections use
        self._generation = 0
        self._identity: tuple[int, int] | None = None
        self._broken: str | None = None
        self._lost = ""
        if self.path != MEMORY:
            self._file = Path(self.path).absolute()
            self._open_at_start()

    # -- connections ----------------------------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (created on first use, and again after the file was replaced)."""
        existing: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if existing is not None and self._local.generation == self._generation:
            return existing
        existing = self._track(self._connect(MEMORY)) if self.path == MEMORY else self._thread_connection()
        self._local.db = existing
        self._local.generation = self._generation
        self._local.checked_at = self._monotonic()
        return existing

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        connection = sqlite3.connect(target, timeout=30.0, isolation_level=None, check_same_thread=True, uri=uri)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=30000")
        except BaseException:
            connection.close()
            raise
        return connection

    def _connect_file(self, *, create: bool) -> sqlite3.Connection:
        """A connection to the path. Without `create` a missing file is an error, never a new database."""
        return self._connect(f"file:{quote(str(self._file))}?mode={'rwc' if create else 'rw'}", uri=True)

    def _track(self, connection: sqlite3.Connection) -> sqlite_utils.Database:
        db = sqlite_utils.Database(connection)
        with self._lock:
            self._connections.add(db)
            if self.path != MEMORY:
                for sidecar in ("-wal", "-shm"):
                    identity = _identity_of(self._file.with_name(self._file.name + sidecar))
                    if identity is not None:
                        self._sidecars.add(identity)
        return db

    def _thread_connection(self) -> sqlite_utils.Database:
        """A new connection for this thread to the file that was opened, or StoreUnavailable."""
        self._local.db = None  # a stale connection was abandoned by the recovery: it stays open there
        for _ in range(3):  # the file can change between the check and the open: check again after
            if self._broken is not None or self._stat_identity() != self._identity:
                self._recover()  # raises when this thread is the one to notice a loss
                recovered: sqlite_utils.Database | None = getattr(self._local, "db", None)
                if recovered is not None:  # this thread reopened the store: that is its connection
                    return recovered
            try:
                db = self._track(self._connect_file(create=False))
            except sqlite3.Error as e:
                if self._stat_identity() == self._identity:  # not a swap: the file itself fails
                    raise self.unavailable(e) from e
                continue
            if self._stat_identity() == self._identity:
                return db
            self._abandon([db])  # replaced while connecting
        raise StoreUnavailable(f"The bot's database {self.path} keeps changing under the bot; nothing was recorded.")

    def _abandon(self, connections: list[sqlite_utils.Database]) -> None:
        """Keep connections to a lost file open and referenced until the process ends (see the module
        docstring); their threads, seeing the generation change, take new ones."""
        with self._lock:
            for db in connections:
                self._connections.discard(db)
                self._abandoned.append(db)

    # -- start ----------------------------------------------------------------------------------

    def _open_at_start(self) -> None:
        """Open, read and write the file now, so that a bad one stops the start with one line."""
        name = f"K8SBOT_DB: {self.path}"
        parent = self._file.parent
        if self._file.is_dir():
            raise ConfigError(f"{name} is a directory, not a file: point K8SBOT_DB at a file inside it.")
        if not parent.is_dir():
            raise ConfigError(
                f"{name} cannot be created: its directory {parent} does not exist: create it (the bot creates "
                "the file, not its directory) or point K8SBOT_DB elsewhere."
            )
        if self._file.exists() and not stat.S_ISREG(self._file.stat().st_mode):
            raise ConfigError(f"{name} is not a regular file: point K8SBOT_DB at a SQLite file.")
        try:
            connection = self._connect_file(create=True)
            try:
                _probe(connection)
            except BaseException:
                connection.close()
                raise
        except sqlite3.Error as e:
            if not os.access(parent, os.W_OK):
                raise ConfigError(
                    f"{name} cannot be opened: its directory {parent} is not writable (SQLite creates "
                    f"{self._file.name}-wal and {self._file.name}-shm next to the file): make it writable by the "
                    "bot's user."
                ) from None
            problem = _FILE_PROBLEMS.get(_code(e) or -1, f"cannot be used ({e})")
            fix = _FIX.get(_code(e) or -1, "check the file and its directory")
            raise ConfigError(f"{name} {problem}: {fix}.") from None
        self._local.db = self._track(connection)
        self._local.generation = self._generation
        self._local.checked_at = self._monotonic()
        self._identity = self._stat_identity()

    def _stat_identity(self) -> tuple[int, int] | None:
        return _identity_of(self._file)

    def _remove_own_sidecars(self) -> None:
        """Delete the -wal/-shm at the path that our connections to the lost file use (a new database
        at the path would take them for its own); a replacement's own sidecars are left alone."""
        for sidecar in ("-wal", "-shm"):
            path = self._file.with_name(self._file.name + sidecar)
            if _identity_of(path) in self._sidecars:
                try:
                    path.unlink()
                except OSError:
                    log.warning("could not remove %s of the lost database", path, exc_info=True)
        self._sidecars.clear()

    # -- the check before writes, and recovery --------------------------------------------------

    def verify(self, *, force: bool = False) -> None:
        """Raise StoreUnavailable if the file at the path is not the one this Database opened (deleted,
        replaced) or cannot be opened; recover for the next write. Without `force`, at most once per
        `check_every` seconds per thread (one stat)."""
        if self.path == MEMORY:
            return
        now = self._monotonic()
        if not force and self._broken is None and now - getattr(self._local, "checked_at", now) < self.check_every:
            return
        self._local.checked_at = now
        if self._broken is None and self._stat_identity() == self._identity:
            return
        self._recover()

    def _recover(self) -> None:
        """The file was lost: abandon every connection to it and open the database now at the path.

        Raises StoreUnavailable for the write that noticed the loss (and for every write while no
        database can be opened); returns when another thread had already recovered, or when a broken
        store could be opened again (that loss was reported already)."""
        with self._lock:
            identity = self._stat_identity()
            if self._broken is None and identity is not None and identity == self._identity:
                return  # another thread recovered; this thread's connection is replaced by `db`
            first = self._broken is None
            if first:
                what = "was deleted" if identity is None else "was replaced by another file"
                self._lost = what
                self._generation += 1  # every thread takes a new connection at its next use
                self._abandon(list(self._connections))
                self._local.db = None
                self._remove_own_sidecars()
            what = self._lost
            try:
                connection = self._connect_file(create=identity is None)
                try:
                    _probe(connection)
                    db = sqlite_utils.Database(connection)
                    for component, steps in self._migrations.items():
                        _migrate(db, component, steps, legacy_cluster=self.legacy_cluster)
                except BaseException:
                    connection.close()
                    raise
            except sqlite3.Error as e:
                problem = _FILE_PROBLEMS.get(_code(e) or -1, f"cannot be used ({e})")
                if not self._file.parent.is_dir():
                    problem = f"cannot be created again: its directory {self._file.parent} does not exist"
                self._broken = problem
                self._identity = None
                message = (
                    f"The bot's database {self.path} {what} while the bot was running, and the file now at that path "
                    f"{problem}. Nothing that needs recording is done until it can be opened: move the file aside "
                    "or restore the directory (the bot then starts a new, empty database), or restore a backup."
                )
                if first:
                    log.critical("%s", message)
                raise StoreUnavailable(message) from None
            self._generation += 1
            self._local.db = self._track(connection)
            self._local.generation = self._generation
            self._local.checked_at = self._monotonic()
            self._identity = self._stat_identity()
            self._broken = None
            log.critical(
                "The database %s %s while the bot was running. The bot now uses the database at that path "
                "(a new, empty one if the file was deleted): the history before this moment (changes, alerts, "
                "audit rows) is not in it, and rows written to the lost file in the last %.0fs may be lost.",
                self.path,
                what,
                self.check_every,
            )
            if first:
                raise StoreUnavailable(
                    f"The bot's database {self.path} {what} while the bot was running, so this was not done: it "
                    f"could not have been recorded in the audit log. The bot now uses a database at {self.path} "
                    "(the history before this moment is not in it); run the command again."
                )
            log.warning("the database %s can be used again", self.path)

    def unavailable(self, error: sqlite3.Error) -> StoreUnavailable:
        """A StoreUnavailable naming the file for an sqlite3 error about it (is_file_problem)."""
        code = _code(error)
        problem = _FILE_PROBLEMS.get(code or -1, "was closed under the bot (it was replaced)")
        fix = _FIX.get(code or -1, "check the file and its directory")
        return StoreUnavailable(f"The bot's database {self.path} {problem}, so nothing was recorded: {fix}.")

    # -- writing --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, verify: bool = False) -> Iterator[sqlite_utils.Database]:
        """BEGIN IMMEDIATE ... COMMIT on this thread's connection; rolls back on error.

        First checks that the file is still the one opened (see `verify`; `verify=True` always checks,
        as an action's audit claim does). Errors about the file become StoreUnavailable."""
        self.verify(force=verify)
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            if is_file_problem(e):
                raise self.unavailable(e) from e
            raise
        try:
            yield db
        except BaseException as e:
            _rollback(db)
            if isinstance(e, sqlite3.Error) and is_file_problem(e):
                raise self.unavailable(e) from e
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error as e:
            _rollback(db)
            if is_file_problem(e):
                raise self.unavailable(e) from e
            raise

    def ensure_schema(self, component: str, steps: Sequence[Migration]) -> int:
        """Apply the migration steps of `component` not applied yet. Returns the schema version.

        The steps are remembered: a database opened again after the file was lost gets them too."""
        with self._schema_lock:
            self._migrations[component] = steps
            self.verify()
            try:
                _migrate(self.db, component, steps, legacy_cluster=self.legacy_cluster)
            except sqlite3.Error as e:
                if is_file_problem(e):
                    raise self.unavailable(e) from e
                raise
            return len(steps)

    def close(self) -> None:
        """Close this thread's connection (not one to a lost file: those stay open, see above)."""
        existing: sqlite_utils.Database | None = getattr(self._local, "db", None)
        self._local.db = None
        if existing is not None and getattr(self._local, "generation", None) == self._generation:
            with self._lock:
                self._connections.discard(existing)
            existing.conn.close()


def _identity_of(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _probe(connection: sqlite3.Connection) -> None:
    """Read the schema and write (rolled back): a garbage, truncated or read-only file fails here."""
    connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute("CREATE TABLE k8sbot_write_probe (x)")
    finally:
        connection.execute("ROLLBACK")


def _migrate(db: sqlite_utils.Database, component: str, steps: Sequence[Migration], *, legacy_cluster: str) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_versions WHERE component = ?", [component]).fetchone()
    version = int(row[0]) if row else 0
    for index in range(version, len(steps)):
        db.execute("BEGIN IMMEDIATE")
        try:
            step = steps[index]
            if isinstance(step, ClusterStep):
                step.apply(db, legacy_cluster)
            else:
                step(db)
            db.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                [component, index + 1],
            )
        except BaseException:
            _rollback(db)
            raise
        db.execute("COMMIT")


def rebuild_with_cluster(
    db: sqlite_utils.Database, table: str, *, create: str, indexes: Sequence[str], legacy_cluster: str
) -> int:
    """Give `table` a `cluster` column that takes part in its keys (a migration step's body).

    SQLite cannot change a table's primary key or UNIQUE constraints in place, so the table is made
    again the way its documentation describes (https://sqlite.org/lang_altertable.html#otheralter):
    `create` (a CREATE TABLE for `{table}`, with `cluster TEXT NOT NULL` and without a default, so a
    write that names no cluster fails) makes the new table beside the old one, every row is copied with
    `legacy_cluster`, the old table (and its indexes) goes, the new one takes its name and `indexes`
    (CREATE INDEX statements) are made. Runs inside the step's transaction. Returns the rows copied."""
    new = f"{table}_clustered"
    old_columns = [str(row[1]) for row in db.execute(f"PRAGMA table_info({table})")]
    db.execute(create.format(table=new))
    columns = ", ".join(old_columns)
    db.execute(
        f"INSERT INTO {new} (cluster, {columns}) SELECT ?, {columns} FROM {table}",  # noqa: S608 - our own names
        [legacy_cluster],
    )
    copied = int(db.execute(f"SELECT COUNT(*) FROM {new}").fetchone()[0])  # noqa: S608
    before = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
    if copied != before:  # pragma: no cover - the new keys contain the old ones: nothing can collide
        raise RuntimeError(f"migrating {table}: {before} rows, {copied} copied")
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE {new} RENAME TO {table}")
    for index in indexes:
        db.execute(index)
    return copied


def _rollback(db: sqlite_utils.Database) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:  # already rolled back (SQLite does so itself after some errors), or closed
        log.debug("rollback failed", exc_info=True)
