"""The audit log: one row per attempt, the action id as an idempotency key, the audit channel, and
`k8sbot audit`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.kube.client import UnconfiguredKubeClient
from bot.model import Command, Decision, Subject
from bot.settings import Settings
from bot.slack.audit import render_audit_entry
from bot.store.audit import AlreadyClaimed, AuditEntry, AuditLog
from bot.store.database import Database
from k8sbot.cli_permissions import add_parsers, since_time
from k8sbot.wiring import build_core

ALICE = Subject("U0ALICE", frozenset({"S0SHOPDEV"}), "slack:U0ALICE", ("team-shop",))
ROLLBACK = Command("rollback", "checkout", "shop", (("to-revision", "1"),))
ALLOWED = Decision(True, "permissions.yaml: team shop allows rollback")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(tmp_path / "audit.db")


def test_a_claimed_action_id_runs_once_and_counts_repeats(database: Database, clock: Clock) -> None:
    audit = AuditLog(database, clock=clock)
    entry = audit.begin(subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=ALLOWED, action_id="abc12345")
    assert entry.outcome == "running"
    with pytest.raises(AlreadyClaimed) as first_repeat:
        audit.begin(subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=ALLOWED, action_id="abc12345")
    assert first_repeat.value.entry.id == entry.id and first_repeat.value.entry.repeats == 1
    done = audit.finish(entry, outcome="done", message="Rolled back to revision 1")
    with pytest.raises(AlreadyClaimed) as second_repeat:
        audit.begin(subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=ALLOWED, action_id="abc12345")
    assert second_repeat.value.entry.outcome == "done" and second_repeat.value.entry.repeats == 2
    assert audit.count() == 1
    assert done.to_json() | {"repeats": 2} == audit.since(None)[0].to_json()


def test_the_row_says_who_what_where_decision_outcome_and_when(database: Database, clock: Clock) -> None:
    audit = AuditLog(database, clock=clock)
    audit.record(subject=ALICE, command=ROLLBACK, channel="C0SHOP", decision=Decision(False, "no"), outcome="denied")
    (row,) = audit.since(None)
    assert row.to_json() == {
        "id": row.id,
        "cluster": "k8sbot-dev",
        "at": "2026-05-01T12:00:00+00:00",
        "slack_user": "U0ALICE",
        "usergroups": ["S0SHOPDEV"],
        "k8s_user": "slack:U0ALICE",
        "k8s_groups": ["team-shop"],
        "channel": "C0SHOP",
        "verb": "rollback",
        "target": "checkout",
        "namespace": "shop",
        "params": {"to-revision": "1"},
        "command": "rollback checkout -n shop --to-revision 1",
        "action_id": None,
        "decision": "denied",
        "reason": "no",
        "outcome": "denied",
        "message": None,
        "finished_at": "2026-05-01T12:00:00+00:00",
        "repeats": 0,
    }


def test_since_filters_by_time(database: Database, clock: Clock) -> None:
    audit = AuditLog(database, clock=clock)
    for hours_ago in (30, 5, 1):
        clock.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) - timedelta(hours=hours_ago)
        audit.record(
            subject=ALICE, command=ROLLBACK, channel=None, decision=ALLOWED, outcome="done", message=str(hours_ago)
        )
    start = datetime(2026, 5, 1, 12, 0, tzinfo=UTC) - timedelta(hours=24)
    assert [e.message for e in audit.since(start)] == ["5", "1"]
    assert [e.message for e in audit.since(None)] == ["30", "5", "1"]


def test_actions_and_refusals_are_posted_reads_are_not_and_a_failing_post_is_harmless(
    database: Database, clock: Clock
) -> None:
    posted: list[AuditEntry] = []
    audit = AuditLog(database, announce=posted.append, clock=clock)
    audit.record(subject=ALICE, command=Command("status", None, "shop"), channel=None, decision=ALLOWED, outcome="done")
    audit.record(subject=ALICE, command=ROLLBACK, channel=None, decision=Decision(False, "viewer"), outcome="denied")
    entry = audit.begin(subject=ALICE, command=ROLLBACK, channel=None, decision=ALLOWED, action_id="0123abcd")
    audit.finish(entry, outcome="done", message="Rolled back")
    assert [e.outcome for e in posted] == ["denied", "done"]
    assert "DENIED" in posted[0].line() and "viewer" in posted[0].line()
    assert "DONE" in posted[1].line() and "U0ALICE as slack:U0ALICE" in posted[1].line()
    assert "Rolled back" in posted[1].line()
    shown = render_audit_entry(posted[1]).blocks[0]["text"]["text"]
    assert "*DONE*" in shown and "U0ALICE as slack:U0ALICE" in shown and "`rollback checkout" in shown

    def broken(entry: AuditEntry) -> None:
        raise RuntimeError("slack down")

    AuditLog(database, announce=broken, clock=clock).record(
        subject=ALICE, command=ROLLBACK, channel=None, decision=Decision(False, "x"), outcome="denied"
    )
    assert audit.count() == 4


def test_since_accepts_durations_dates_and_all() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert since_time("2h", now) == now - timedelta(hours=2)
    assert since_time("2026-04-30", now) == datetime(2026, 4, 30, tzinfo=UTC)
    assert since_time("all", now) is None


def test_k8sbot_audit_lists_the_rows(tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    core = build_core(
        Settings(db=str(tmp_path / "audit.db")), permissions=False, kube=UnconfiguredKubeClient("none"), clock=clock
    )
    database = core.database
    AuditLog(database, clock=clock).record(
        subject=ALICE, command=ROLLBACK, channel=None, decision=Decision(False, "not an operator"), outcome="denied"
    )
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["audit", "--since", "1h"])
    assert args.handler(args, core) == 0
    out = capsys.readouterr().out
    assert "DENIED  U0ALICE as slack:U0ALICE: rollback checkout -n shop --to-revision 1 — not an operator" in out
