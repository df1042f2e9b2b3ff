"""Hostile config files: the two YAML files the bot reads (permissions.yaml and K8SBOT_CONFIG) are
input an attacker may control (a merged pull request, a writable ConfigMap). Each must be refused
with one line naming the file and the line, promptly, without a traceback, and a bad edit of
permissions.yaml must never stall commands or replace the last good policy.

Everything goes through the public paths: `k8sbot permissions validate --file F`, `k8sbot ask --as U…`,
`k8sbot run` (k8sbot.cli.main with a prepared environment) and the hot reload a running bot does
(`PolicyFile.current()`, what every command calls). Thread joins with a timeout are liveness checks
(a hang fails the test instead of blocking the suite), not speed assertions.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.permissions.policy import Policy, PolicyFile
from k8sbot.cli import main
from tests.cli_run import LIVENESS, clean_cli_env, one_line, run_cli
from tests.wiring_helpers import VERB_NAMES

pytestmark = pytest.mark.hostile

GOOD = """\
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:
    namespaces: [shop]
    members: {users: [U0ALICE]}
    role: operator
limits: {max_replicas: 20}
"""

# The example: ~330 bytes whose aliases expand to 9^9 leaves.
BOMB = "roles: {viewer: [why]}\n" + "".join(
    f"{name}: &{name} [{','.join([f'*{prev}'] * 9) if prev else ','.join(['x'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

RECURSIVE = "roles: {viewer: [why]}\nloop: &a [*a]\n"


def deeply_nested(depth: int) -> str:
    return "roles: {viewer: [why]}\nx: " + "[" * depth + "]" * depth + "\n"


HOSTILE_POLICIES: dict[str, tuple[bytes, str]] = {
    # name: (file content, what the one-line error must say after `file:line:`)
    "alias-bomb": (BOMB.encode(), r"anchors and aliases"),
    "recursive-alias": (RECURSIVE.encode(), r"anchors and aliases"),
    "merge-key": (b"roles: &r {viewer: [why]}\nother: {<<: *r}\n", r"anchors and aliases"),
    "deep-nesting": (deeply_nested(5000).encode(), r"nested more than \d+ levels deep"),
    "python-tag": (b"roles: !!python/object/apply:os.system [echo pwned]\n", r"tags .* are not allowed"),
    "custom-tag": (b"roles: {viewer: !secret [why]}\n", r"tags .* are not allowed"),
    "two-documents": (GOOD.encode() + b"---\n" + GOOD.encode(), r"more than one YAML document"),
    "not-utf8": (GOOD.encode().replace(b"shop]", b"sh\xffop]"), r"not UTF-8"),
    "control-character": (GOOD.encode().replace(b"shop]", b"sh\x07op]"), r"not valid YAML"),
    # Python refuses to convert an int of more than 4300 digits (ValueError, a traceback before).
    "huge-number": (b"roles: {viewer: [why]}\nlimits: {max_replicas: " + b"9" * 5000 + b"}\n", r"more than \d+ digits"),
    # Small values, many of them: parse time follows the number of nodes, so that is bounded too.
    "too-many-values": (b"roles: {viewer: [why]}\nx: [" + b"0," * 30_000 + b"]\n", r"more than \d+ values"),
}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return clean_cli_env(tmp_path, monkeypatch)


# -- permissions.yaml ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE_POLICIES))
def test_validate_refuses_a_hostile_permissions_file_with_one_line(
    name: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, problem = HOSTILE_POLICIES[name]
    path = cli_env / "permissions.yaml"
    path.write_bytes(content)
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: .*{problem}.*", one_line(err)), err


@pytest.mark.parametrize("name", ["alias-bomb", "recursive-alias", "deep-nesting", "not-utf8", "python-tag"])
def test_ask_as_a_user_refuses_a_hostile_permissions_file(
    name: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    content, problem = HOSTILE_POLICIES[name]
    path = cli_env / "permissions.yaml"
    path.write_bytes(content)
    monkeypatch.setenv("K8SBOT_PERMISSIONS", str(path))
    code, err = run_cli(["ask", "--as", "U0ALICE", "status -n shop"], capsys)
    assert code == 2
    assert re.fullmatch(rf"k8sbot: {re.escape(str(path))}:\d+: .*{problem}.*", one_line(err)), err


@pytest.mark.parametrize("name", ["recursive-alias", "alias-bomb", "deep-nesting"])
def test_start_with_a_hostile_permissions_file_prints_one_line_and_exits_2(
    name: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    content, problem = HOSTILE_POLICIES[name]
    path = cli_env / "permissions.yaml"
    path.write_bytes(content)
    monkeypatch.setenv("K8SBOT_PERMISSIONS", str(path))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("K8SBOT_SLACK_API_URL", "http://127.0.0.1:9/api/")  # never reached: the file stops it
    code, err = run_cli(["run"], capsys)
    assert code == 2
    assert re.fullmatch(rf"k8sbot: {re.escape(str(path))}:\d+: .*{problem}.*", one_line(err)), err


def test_the_bomb_names_the_line_and_field_of_the_first_anchor(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli_env / "permissions.yaml"
    path.write_text(BOMB)
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    assert one_line(err).startswith(f"{path}:2: a: anchors and aliases")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.mkdir(), "not a regular file"),
        (os.mkfifo, "not a regular file"),  # reading a FIFO would block until a writer comes
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),  # endless
        (lambda p: p.write_bytes(b"# padding\n" * 200_000), r"larger than \d+ KiB"),  # 2 MB
    ],
    ids=["directory", "fifo", "dev-zero", "huge"],
)
def test_validate_refuses_files_that_are_not_small_regular_files(
    make: Callable[[Path], None], problem: str, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = cli_env / "permissions.yaml"
    make(path)
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    assert re.fullmatch(rf"cannot read permissions file {re.escape(str(path))}: .*{problem}.*", one_line(err)), err


# -- hot reload -----------------------------------------------------------------------------------


def _current_from_threads(policy_file: PolicyFile, count: int) -> list[Policy]:
    """`current()` from `count` threads at once, as concurrent commands call it; each must return."""
    results: list[Policy] = []
    threads = [
        threading.Thread(target=lambda: results.append(policy_file.current()), daemon=True) for _ in range(count)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(LIVENESS)
    assert not any(thread.is_alive() for thread in threads), "PolicyFile.current() hung on a hostile edit"
    return results


@pytest.mark.parametrize("name", ["alias-bomb", "recursive-alias", "deep-nesting", "not-utf8", "two-documents"])
def test_a_hostile_edit_at_hot_reload_keeps_the_last_good_policy_and_blocks_no_command(
    name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(GOOD)
    policy_file = PolicyFile(path, verbs=VERB_NAMES, check_every=0)
    assert policy_file.current().limits.max_replicas == 20

    content, problem = HOSTILE_POLICIES[name]
    path.write_bytes(content)
    results = _current_from_threads(policy_file, 4)
    assert [p.limits.max_replicas for p in results] == [20] * 4  # the last good policy, for every caller
    assert policy_file.last_error is not None
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: .*{problem}.*", policy_file.last_error)
    assert "keeping the last good policy" in caplog.text

    path.write_text(GOOD.replace("max_replicas: 20", "max_replicas: 7"))  # a good edit is picked up again
    assert policy_file.current().limits.max_replicas == 7
    assert policy_file.last_error is None


def test_a_permissions_file_swapped_for_a_fifo_does_not_block_hot_reload(tmp_path: Path) -> None:
    path = tmp_path / "permissions.yaml"
    path.write_text(GOOD)
    policy_file = PolicyFile(path, verbs=VERB_NAMES, check_every=0)
    path.unlink()
    os.mkfifo(path)
    (policy,) = _current_from_threads(policy_file, 1)
    assert policy.limits.max_replicas == 20
    assert policy_file.last_error is not None and "not a regular file" in policy_file.last_error


# -- K8SBOT_CONFIG ----------------------------------------------------------------------------------

HOSTILE_CONFIGS: dict[str, tuple[bytes, str]] = {
    "alias-bomb": (BOMB.replace("roles: {viewer: [why]}\n", "").encode() + b"watch_namespaces: *i\n", "anchors"),
    "recursive-alias": (b"watch_namespaces: &a [*a]\n", "anchors and aliases"),
    "deep-nesting": (b"watch_namespaces: " + b"[" * 5000 + b"]" * 5000 + b"\n", r"nested more than \d+ levels"),
    "python-tag": (b"cluster_name: !!python/object/apply:os.system [echo pwned]\n", r"tags .* are not allowed"),
    "two-documents": (b"cluster_name: a\n---\ncluster_name: b\n", "more than one YAML document"),
    "not-utf8": (b"cluster_name: caf\xe9\n", "not UTF-8"),
    "duplicate-key": (b"cluster_name: a\ncluster_name: b\n", "duplicate key"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CONFIGS))
def test_a_hostile_config_file_stops_any_command_with_one_line(
    name: str, cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    content, problem = HOSTILE_CONFIGS[name]
    path = cli_env / "k8sbot.yaml"
    path.write_bytes(content)
    monkeypatch.setenv("K8SBOT_CONFIG", str(path))
    code, err = run_cli(["ask", "status -n shop"], capsys)
    assert code == 2
    assert re.fullmatch(rf"k8sbot: K8SBOT_CONFIG: {re.escape(str(path))}:\d+: .*{problem}.*", one_line(err)), err


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p.mkdir(), "not a regular file"),
        (os.mkfifo, "not a regular file"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
        (lambda p: p.write_bytes(b"# padding\n" * 200_000), r"larger than \d+ KiB"),
        (lambda p: None, "No such file or directory"),
    ],
    ids=["directory", "fifo", "dev-zero", "huge", "missing"],
)
def test_a_config_path_that_is_not_a_small_regular_file_stops_the_start_with_one_line(
    make: Callable[[Path], None],
    problem: str,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = cli_env / "k8sbot.yaml"
    make(path)
    monkeypatch.setenv("K8SBOT_CONFIG", str(path))
    code, err = run_cli(["ask", "status -n shop"], capsys)
    assert code == 2
    assert re.fullmatch(rf"k8sbot: K8SBOT_CONFIG: cannot read {re.escape(str(path))}: .*{problem}.*", one_line(err)), (
        err
    )


def test_help_reads_no_configuration(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `k8sbot ask help` answers from the verb table alone (no settings, cluster, database or Slack), so
    # a broken config file does not hide how to use the bot; every command that reads it stops.
    path = cli_env / "k8sbot.yaml"
    path.write_bytes(HOSTILE_CONFIGS["alias-bomb"][0])
    monkeypatch.setenv("K8SBOT_CONFIG", str(path))
    assert main(["ask", "help"]) == 0
    assert "/k8s why <target>" in capsys.readouterr().out
    code, err = run_cli(["ask", "status -n shop"], capsys)
    assert code == 2 and "K8SBOT_CONFIG" in err


def test_a_config_value_of_the_wrong_type_names_its_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cli_env / "k8sbot.yaml"
    path.write_text("cluster_name: prod\nretention_days: [1, 2]\n")
    monkeypatch.setenv("K8SBOT_CONFIG", str(path))
    code, err = run_cli(["ask", "status -n shop"], capsys)
    assert code == 2
    assert one_line(err).startswith(f"k8sbot: K8SBOT_CONFIG: {path}:2: retention_days: ")


# -- files of many mistakes, or of very long values --------------------------------------------------


def test_thousands_of_mistakes_are_reported_promptly_as_a_bounded_list(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each reported problem costs a walk of the file's nodes: 6,000 of them took seconds and printed
    900 KB. The first ones are listed, the rest counted."""
    path = cli_env / "permissions.yaml"
    path.write_text("roles:\n" + "".join(f"  r{i}: [nope]\n" for i in range(6000)))
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{path}:2: roles.r0[0]: unknown verb 'nope'")
    assert len(lines) <= 21 and lines[-1] == f"... and {6000 - len(lines) + 1} more problems"


def test_a_huge_value_gives_a_short_line(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = cli_env / "permissions.yaml"
    path.write_text(GOOD.replace("users: [U0ALICE]", "users: [" + "x" * 100_000 + "]"))
    code, err = run_cli(["permissions", "validate", "--file", str(path)], capsys)
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"{path}:7: teams.shop.members.users[0]: 'xxx") and len(line) <= 300


def test_a_huge_config_value_gives_a_short_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cli_env / "k8sbot.yaml"
    path.write_text("timezone: Mars/" + "x" * 100_000 + "\n")
    monkeypatch.setenv("K8SBOT_CONFIG", str(path))
    code, err = run_cli(["ask", "status -n shop"], capsys)
    assert code == 2
    line = one_line(err)
    assert line.startswith(f"k8sbot: K8SBOT_CONFIG: {path}:1: timezone: unknown time zone") and len(line) <= 400
