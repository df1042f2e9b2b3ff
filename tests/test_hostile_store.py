"""Hostile store: the SQLite file is the audit record, so the bot must fail closed on it.

At start, a database that is garbage, truncated, read-only, in a read-only directory, a directory, or
under a directory that does not exist stops `k8sbot` with one line naming the file and what to do.
While running, a database deleted or replaced under the bot (with its -wal/-shm) is noticed before
the next write: the action that noticed it is refused before it changes anything (the audit claim
comes first), the answer and the log say why, and a fresh database at the path takes the next
action's audit row.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_permissions_cluster import Shop, open_shop

from bot.commands.dispatch import execute
from bot.errors import ClusterUnavailable, StoreUnavailable
from bot.kube.client import KubeClient, UnconfiguredKubeClient
from bot.settings import Settings
from k8sbot.wiring import Core, build_core
from tests.cli_run import clean_cli_env, one_line, run_cli

pytestmark = pytest.mark.hostile


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    clean_cli_env(tmp_path, monkeypatch)
    # `run` stops at the database, before any Slack call; the Slack settings only let it get there.
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("K8SBOT_SLACK_API_URL", "http://127.0.0.1:9/api/")
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text("roles: {viewer: [why]}\n")
    monkeypatch.setenv("K8SBOT_PERMISSIONS", str(permissions))
    return tmp_path


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make a file or directory read-only for this process: chmod for a normal user; as root (who
    ignores modes) the immutable attribute, or skip where the file system or capabilities lack it."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True, check=False).returncode:
        pytest.skip("running as root without `chattr +i`: cannot make a file read-only for this process")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def _bot_database(path: Path) -> None:
    """A database the bot made (all its tables), with some rows, as a running bot leaves it."""
    core = build_core(Settings(db=str(path)), permissions=False, kube=UnconfiguredKubeClient("no cluster"))
    for _ in range(40):
        with pytest.raises(ClusterUnavailable):
            execute(core.commands, text="status -n shop")
    core.database.close()


def _garbage(db: Path) -> Path:
    db.write_bytes(b"this is not a database, it is a text file\n" * 200)
    return db


def _truncated(db: Path) -> Path:
    _bot_database(db)
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size // 2)
    return db


def _directory(db: Path) -> Path:
    db.mkdir()
    return db


def _missing_parent(db: Path) -> Path:
    return db.parent / "no-such-dir" / db.name


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "garbage": (_garbage, "is not a SQLite database"),
    "truncated": (_truncated, "is corrupt"),
    "directory": (_directory, "is a directory"),
    "missing-parent": (_missing_parent, "does not exist"),
}
COMMANDS = {"audit": ["audit"], "ask": ["ask", "changes -n shop"], "run": ["run"]}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_broken_database_at_start_is_one_line_naming_the_file(
    case: str, command: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make, problem = CASES[case]
    db = make(cli_env / "bot.db")
    monkeypatch.setenv("K8SBOT_DB", str(db))
    code, err = run_cli(COMMANDS[command], capsys)
    line = one_line(err)
    assert code == 2, line
    assert line.startswith(f"k8sbot: K8SBOT_DB: {db} "), line
    assert problem in line


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_read_only_database_at_start_is_one_line_naming_the_file(
    command: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = cli_env / "bot.db"
    _bot_database(db)
    with unwritable(db):
        code, err = run_cli(COMMANDS[command], capsys)
    line = one_line(err)
    assert code == 2, line
    assert line.startswith(f"k8sbot: K8SBOT_DB: {db} is read-only"), line
    assert "writable" in line  # what to do


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_database_in_a_read_only_directory_at_start_is_one_line_naming_the_file(
    command: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = cli_env / "state"
    directory.mkdir()
    db = directory / "bot.db"
    _bot_database(db)
    for leftover in (directory / "bot.db-wal", directory / "bot.db-shm"):
        leftover.unlink(missing_ok=True)
    monkeypatch.setenv("K8SBOT_DB", str(db))
    with unwritable(directory):
        code, err = run_cli(COMMANDS[command], capsys)
    line = one_line(err)
    assert code == 2, line
    assert line.startswith(f"k8sbot: K8SBOT_DB: {db} "), line
    assert f"its directory {directory} is not writable" in line


# -- while running, without a cluster: the claim is the first thing a confirmed action does --------


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings(db=str(tmp_path / "bot.db")), permissions=False, kube=UnconfiguredKubeClient("none"))
    yield built
    built.database.close()


SCALE = "scale web -n shop --replicas 2"


def _files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _audit_rows(db: Path) -> list[tuple[str, str]]:
    """What the file at the path holds, read by a separate connection (not the bot's)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return [(str(v), str(o)) for v, o in connection.execute("SELECT verb, outcome FROM audit ORDER BY id")]


def test_a_confirmed_action_is_claimed_normally(core: Core, tmp_path: Path) -> None:
    """The baseline the next tests change: the claim is written, then the verb fails on the cluster."""
    with pytest.raises(ClusterUnavailable):
        execute(core.commands, text=SCALE, confirmed=True)
    assert _audit_rows(tmp_path / "bot.db") == [("scale", "failed")]


def test_a_deleted_database_refuses_the_next_action_then_a_new_one_records(
    core: Core, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "bot.db"
    execute(core.commands, text="help")  # the bot is running and has its connection open
    for path in _files(db):
        path.unlink(missing_ok=True)

    with caplog.at_level(logging.ERROR), pytest.raises(StoreUnavailable) as refused:
        execute(core.commands, text=SCALE, confirmed=True)
    message = str(refused.value)
    assert str(db) in message and "was deleted" in message and "not done" in message
    assert "run the command again" in message
    assert f"{db} was deleted" in caplog.text and "history" in caplog.text

    with pytest.raises(ClusterUnavailable):  # the next action is claimed again, in a new file at the path
        execute(core.commands, text=SCALE, confirmed=True)
    assert _audit_rows(db) == [("scale", "failed")]


def test_ordinary_audit_rows_do_not_go_on_into_a_deleted_file(core: Core, tmp_path: Path) -> None:
    """The issue's example: rows of reads kept going to the unlinked file. Ordinary writes check the
    file at most once a second per thread, so after that second the next row notices."""
    db = tmp_path / "bot.db"
    with pytest.raises(ClusterUnavailable):
        execute(core.commands, text="status -n shop")
    for path in _files(db):
        path.unlink(missing_ok=True)
    time.sleep(1.1)  # past the check interval of this thread (waiting, not measuring)

    with pytest.raises(StoreUnavailable, match="was deleted"):
        execute(core.commands, text="status -n shop")
    with pytest.raises(ClusterUnavailable):
        execute(core.commands, text="status -n shop")
    assert _audit_rows(db) == [("status", "failed")]


def test_other_threads_write_to_the_new_file_after_recovery(core: Core, tmp_path: Path) -> None:
    """Each thread has its own connection: one thread's recovery moves every thread to the new file."""
    db = tmp_path / "bot.db"

    worker = ThreadPoolExecutor(1)
    try:
        first = worker.submit(_raised, lambda: execute(core.commands, text="status -n shop")).result()
        assert isinstance(first, ClusterUnavailable)  # the worker's connection is open, its row written
        for path in _files(db):
            path.unlink(missing_ok=True)
        with pytest.raises(StoreUnavailable):  # this thread notices first (an action's claim always checks)
            execute(core.commands, text=SCALE, confirmed=True)
        again = worker.submit(_raised, lambda: execute(core.commands, text="status -n shop")).result()
        assert isinstance(again, ClusterUnavailable)
    finally:
        worker.shutdown()
    assert _audit_rows(db) == [("status", "failed")]  # the worker's row is in the file at the path


def test_a_deletion_while_several_threads_write_loses_nothing_after_it_is_noticed(core: Core, tmp_path: Path) -> None:
    """Listener threads keep recording reads while the file is deleted: each sees its own errors only
    as StoreUnavailable (never a crash), and the new file is whole and takes their rows."""
    db = tmp_path / "bot.db"
    errors: list[BaseException] = []
    started = threading.Barrier(5)

    def reader() -> int:
        started.wait()
        for _ in range(150):
            error = _raised(lambda: execute(core.commands, text="status -n shop"))
            if not isinstance(error, ClusterUnavailable):
                errors.append(error or AssertionError("status answered without a cluster"))
        return 150

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(reader) for _ in range(4)]
        started.wait()
        for path in _files(db):
            path.unlink(missing_ok=True)
        refused = _raised(lambda: execute(core.commands, text=SCALE, confirmed=True))
        assert sum(f.result() for f in futures) == 600
    # Whoever wrote first after the deletion noticed it: the action's claim, or a reader's row (then the
    # claim went to the new file and the verb failed on the missing cluster).
    assert isinstance(refused, StoreUnavailable | ClusterUnavailable)
    assert isinstance(refused, StoreUnavailable) or errors, "nobody noticed the deletion"
    assert all(isinstance(e, StoreUnavailable) for e in errors), errors[:3]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert _audit_rows(db), "the rows after the loss was noticed are in the file at the path"


def _raised(call: Callable[[], object]) -> BaseException | None:
    try:
        call()
    except Exception as e:
        return e
    return None


def test_a_database_replaced_by_another_refuses_the_next_action_then_uses_the_new_file(
    core: Core, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(ClusterUnavailable):
        execute(core.commands, text=SCALE, confirmed=True)
    os.replace(other, db)  # e.g. a restore over the running bot's file

    with pytest.raises(StoreUnavailable, match="was replaced"):
        execute(core.commands, text=SCALE, confirmed=True)
    with pytest.raises(ClusterUnavailable):
        execute(core.commands, text=SCALE, confirmed=True)
    assert _audit_rows(db) == [("scale", "failed")]  # only the new attempt: the file at the path is the record


def test_a_database_replaced_by_garbage_keeps_refusing_until_it_is_fixed(core: Core, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    execute(core.commands, text="help")
    for path in _files(db):
        path.unlink(missing_ok=True)
    db.write_bytes(b"garbage " * 1000)

    for _ in range(3):  # every action is refused: none can be recorded
        with pytest.raises(StoreUnavailable, match="is not a SQLite database"):
            execute(core.commands, text=SCALE, confirmed=True)
    db.unlink()  # the operator moves it aside: the bot makes a new database and goes on
    with pytest.raises(ClusterUnavailable):
        execute(core.commands, text=SCALE, confirmed=True)
    assert _audit_rows(db) == [("scale", "failed")]


def test_a_removed_directory_keeps_refusing_actions(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    core = build_core(Settings(db=str(directory / "bot.db")), permissions=False, kube=UnconfiguredKubeClient("none"))
    shutil.rmtree(directory)
    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="does not exist"):
            execute(core.commands, text=SCALE, confirmed=True)
    assert not directory.exists()  # the bot does not invent a directory for its audit record


# -- while running, against the real cluster -----------------------------------------------------


@pytest.fixture
def shop(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Shop]:
    yield from open_shop(kube, namespace, tmp_path)


def test_a_scale_after_the_database_was_deleted_is_refused_and_changes_nothing(
    shop: Shop, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "bot.db"
    scale = f"scale checkout -n {shop.namespace} --replicas 3"
    shop.run("U0ALICE", f"status -n {shop.namespace}")  # a running bot: connection open, rows written
    before = shop.deployment()
    assert before["spec"]["replicas"] == 2
    for path in _files(db):
        path.unlink(missing_ok=True)

    with caplog.at_level(logging.ERROR), pytest.raises(StoreUnavailable) as refused:
        shop.run("U0ALICE", scale, confirmed=True)
    assert f"{db} was deleted" in str(refused.value) and "not done" in str(refused.value)
    after = shop.deployment()
    assert after["spec"]["replicas"] == 2
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert "was deleted" in caplog.text

    answer = shop.run("U0ALICE", scale, confirmed=True)  # the bot goes on with a new database at the path
    assert answer.ok, answer.title
    assert shop.deployment()["spec"]["replicas"] == 3
    assert _audit_rows(db) == [("scale", "done")]
