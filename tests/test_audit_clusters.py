"""The audit log of a bot serving several clusters: lines and the audit channel name the cluster
(with one cluster they are as they were), and `k8sbot audit` reads every cluster with `--cluster`
to pick one. No cluster is needed: the kubeconfigs point at a closed port."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import UsageError
from bot.model import Command, Decision, Subject
from bot.settings import Settings
from bot.slack.audit import render_audit_entry
from bot.slack.client import make_web_client
from bot.store.audit import AuditEntry
from k8sbot.cli_permissions import add_parsers
from k8sbot.wiring import Core, build_core
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, bot_settings
from tests.wiring_helpers import unanswered_kubeconfig

EU, US = "prod-eu", "prod-us"
BOB = Subject("U0BOB", frozenset(), "slack:U0BOB", ())
ROLLBACK = Command("rollback", "checkout", "shop", (("to-revision", "1"),))
AUDIT = "C0AUDIT01"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def two_clusters(tmp_path: Path) -> list[dict[str, str]]:
    return [
        {"name": EU, "kubeconfig": unanswered_kubeconfig(tmp_path / "eu.yaml", "eu")},
        {"name": US, "kubeconfig": unanswered_kubeconfig(tmp_path / "us.yaml", "us")},
    ]


def entry(cluster: str = EU) -> AuditEntry:
    return AuditEntry(
        id=1,
        at=datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        slack_user="U0BOB",
        usergroups=(),
        k8s_user="slack:U0BOB",
        k8s_groups=(),
        channel=None,
        verb="rollback",
        target="checkout",
        namespace="shop",
        params={},
        command="rollback checkout -n shop",
        action_id=None,
        decision="denied",
        reason="not an operator",
        outcome="denied",
        message=None,
        finished_at=None,
        repeats=0,
        cluster=cluster,
    )


def test_a_line_names_its_cluster_when_asked_and_is_unchanged_otherwise() -> None:
    plain = "2026-05-01 12:00:00 DENIED  U0BOB as slack:U0BOB: rollback checkout -n shop — not an operator"
    assert entry().line() == plain
    assert entry().line(cluster=True) == plain.replace("12:00:00 ", "12:00:00 [prod-eu] ")
    one = render_audit_entry(entry())
    assert "prod-eu" not in json.dumps(one.blocks) and "prod-eu" not in one.text
    several = render_audit_entry(entry(), cluster=True)
    assert several.blocks[0]["text"]["text"].startswith("2026-05-01 12:00:00 [prod-eu] *DENIED* U0BOB")
    assert "[prod-eu] DENIED" in several.text


def test_the_audit_channel_of_a_bot_with_two_clusters_names_each_rows_cluster(
    slack: SlackEmulator, tmp_path: Path
) -> None:
    slack.add_channel(AUDIT, "audit", members=[ALICE], bot_member=True)
    settings = bot_settings(slack, db=str(tmp_path / "bot.db"), clusters=two_clusters(tmp_path), audit_channel=AUDIT)
    client = make_web_client(token=slack.bot_token, base_url=slack.api_url)
    core = build_core(settings, permissions=False, slack=client)
    for cluster in (EU, US):
        core.cluster(cluster).audit.record(
            subject=BOB, command=ROLLBACK, channel=None, decision=Decision(False, "no"), outcome="denied"
        )
    posted = slack.wait_for(lambda: len(slack.messages(AUDIT)) == 2 and slack.messages(AUDIT), what="two audit lines")
    assert [m["blocks"][0]["text"]["text"].split("*DENIED*")[0][20:] for m in posted] == ["[prod-eu] ", "[prod-us] "]
    assert slack.lints() == []


def audit(core: Core, *argv: str) -> None:
    """`k8sbot audit --since all ARGV` with `core` (what it prints: capsys)."""
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["audit", "--since", "all", *argv])
    assert args.handler(args, core) == 0


@pytest.fixture
def core(tmp_path: Path) -> Core:
    clock = Clock()
    core = build_core(
        Settings(db=str(tmp_path / "bot.db"), clusters=two_clusters(tmp_path)), permissions=False, clock=clock
    )
    for cluster, reason in ((EU, "eu says no"), (US, "us says no")):
        core.cluster(cluster).audit.record(
            subject=BOB, command=ROLLBACK, channel=None, decision=Decision(False, reason), outcome="denied"
        )
    return core


def test_k8sbot_audit_reads_every_cluster_and_names_each(core: Core, capsys: pytest.CaptureFixture[str]) -> None:
    audit(core)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("2026-05-01 12:00:00 [prod-eu] DENIED") and lines[0].endswith("eu says no")
    assert lines[1].startswith("2026-05-01 12:00:00 [prod-us] DENIED") and lines[1].endswith("us says no")
    audit(core, "--json")
    rows = json.loads(capsys.readouterr().out)
    assert [(r["cluster"], r["reason"]) for r in rows] == [(EU, "eu says no"), (US, "us says no")]


def test_k8sbot_audit_cluster_keeps_one_clusters_rows(core: Core, capsys: pytest.CaptureFixture[str]) -> None:
    audit(core, "--cluster", US, "--json")
    assert [(r["cluster"], r["reason"]) for r in json.loads(capsys.readouterr().out)] == [(US, "us says no")]
    audit(core, "--cluster", US)
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("2026-05-01 12:00:00 [prod-us] DENIED") and "eu says" not in line
    audit(core, "--cluster", "staging")  # not configured (any more): its rows would still be the record
    assert capsys.readouterr().out.strip() == "no audited attempts since all in cluster staging"
    with pytest.raises(UsageError, match="is not a cluster name"):
        audit(core, "--cluster", "Prod_EU;drop")


def test_with_one_cluster_k8sbot_audit_lines_are_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    core = build_core(
        Settings(db=str(tmp_path / "bot.db"), kubeconfig=unanswered_kubeconfig(tmp_path / "k.yaml", "k")),
        permissions=False,
        clock=Clock(),
    )
    core.audit.record(subject=BOB, command=ROLLBACK, channel=None, decision=Decision(False, "no"), outcome="denied")
    audit(core)
    (line,) = capsys.readouterr().out.splitlines()
    assert line == replace(entry(), reason="no", command=ROLLBACK.as_text()).line() and "[" not in line
