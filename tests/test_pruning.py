"""The scheduled prune: each cluster's Alertmanager inbox past retention is forgotten, the rest kept.

Built with the real wiring (`build_core`, `build_background`) over a real SQLite file; no cluster and
no Slack call is needed (nothing is started)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.kube.client import UnconfiguredKubeClient
from bot.settings import Settings
from bot.slack.client import Poster, make_web_client
from bot.store.inbox import ReceivedAlert
from k8sbot.running import prune_history
from k8sbot.wiring import build_background, build_core

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _alert(fingerprint: str) -> ReceivedAlert:
    return ReceivedAlert(
        fingerprint=fingerprint,
        status="firing",
        starts_at=START,
        ends_at=None,
        labels={"alertname": "HighLatency", "namespace": "shop"},
        annotations={},
        generator_url="",
        group_key="{}:{}",
        external_url="",
    )


def test_the_scheduled_prune_forgets_alertmanager_alerts_taken_in_past_retention(tmp_path: Path) -> None:
    clock = Clock()
    core = build_core(
        Settings(db=str(tmp_path / "bot.db"), retention_days=30),
        permissions=False,
        kube=UnconfiguredKubeClient("no cluster"),
        clock=clock,
    )
    background = build_background(core, Poster(make_web_client(token="xoxb-test", base_url="http://127.0.0.1:9/")))
    core.inbox.add([_alert("old0"), _alert("pending")])
    old = [row.id for row in core.inbox.pending() if row.alert.fingerprint == "old0"]
    with core.database.transaction() as db:
        core.inbox.processed(db, old)
    clock.now = START + timedelta(days=20)
    core.inbox.add([_alert("new0")])
    new = [row.id for row in core.inbox.pending() if row.alert.fingerprint == "new0"]
    with core.database.transaction() as db:
        core.inbox.processed(db, new)

    clock.now = START + timedelta(days=35)  # old0 was taken in 35 days ago, new0 15 days ago
    prune_history(background)
    assert core.inbox.count(pending=False) == 1  # new0 kept
    assert [row.alert.fingerprint for row in core.inbox.pending()] == ["pending"]  # never taken in: kept
