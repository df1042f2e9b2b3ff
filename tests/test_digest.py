"""The daily digest with a controlled clock: content, grouping, once per period, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.digest.content import AlertLine, Digest, DigestSender, DigestTeam, latest_period
from bot.digest.scheduling import DIGEST_JOB, build_scheduler, schedule_digest, start_scheduler
from bot.model import Change, ChangeKind, FieldChange, ObjectRef
from bot.store.changes import ChangeStore, Recorded
from bot.store.database import Database
from bot.store.digests import DigestLedger
from bot.store.events import EventStore, WarningEvent

TZ = "Europe/Berlin"
MONDAY_0900 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)  # 09:00 CEST


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Outbox:
    def __init__(self) -> None:
        self.posts: list[tuple[str, str]] = []

    def __call__(self, digest: Digest) -> None:
        self.posts.append((digest.channel, digest.text()))


def record(
    store: ChangeStore,
    at: datetime,
    kind: ChangeKind,
    namespace: str,
    name: str,
    summary: str,
    obj_kind: str = "Deployment",
) -> None:
    change = Change(
        ObjectRef(obj_kind, namespace, name),
        at,
        kind,
        summary,
        fields=(FieldChange("spec.x", 1, 2),),
        actor="kubectl-set",
    )
    store.commit(changes=[Recorded(change, uid=f"{namespace}/{name}/{at.timestamp()}", resource_version="1")])


def setup(tmp_path: Path, clock: Clock, outbox: Outbox, **kw: Any) -> tuple[ChangeStore, EventStore, DigestSender]:
    db = Database(tmp_path / "k.db")
    changes = ChangeStore(db, clock=clock)
    events = EventStore(db, clock=clock)
    teams = [DigestTeam("C-SHOP", ("shop", "shop-*")), DigestTeam("C-OPS", ("ops",))]
    sender = DigestSender(
        DigestLedger(db, clock=clock),
        changes=changes,
        events=events,
        teams=teams,
        post=outbox,
        timezone=TZ,
        clock=clock,
        **kw,
    )
    return changes, events, sender


def test_periods_follow_the_cron_in_the_time_zone() -> None:
    period = latest_period("0 9 * * mon-fri", TZ, MONDAY_0900 + timedelta(minutes=5))
    assert period is not None
    assert period.end == MONDAY_0900
    assert period.start == MONDAY_0900 - timedelta(days=3)  # Friday 09:00: Monday's digest covers the weekend
    assert period.name == "Mon 2026-05-04 09:00 CEST"


def test_content_grouped_by_namespace_per_team(tmp_path: Path) -> None:
    clock, outbox = Clock(MONDAY_0900 - timedelta(hours=5)), Outbox()
    changes, events, sender = setup(
        tmp_path,
        clock,
        outbox,
        alerts=lambda start, end: [
            AlertLine("shop", "checkout CrashLoopBackOff"),
            AlertLine("ops", "grafana OOMKilled"),
        ],
    )
    t = MONDAY_0900 - timedelta(hours=5)
    record(changes, t, ChangeKind.IMAGE, "shop", "checkout", "image web: app:1.4.2 → app:1.4.3")
    record(changes, t, ChangeKind.IMAGE, "shop-eu", "cart", "image cart: cart:7 → cart:8")
    record(changes, t, ChangeKind.ROLLBACK, "shop", "checkout", "rolled back to revision 1 (now revision 3)")
    record(changes, t, ChangeKind.SCALE, "shop", "checkout", "scaled 2 → 5 replicas")
    record(changes, t, ChangeKind.CONFIG, "shop", "checkout-config", "ConfigMap keys changed: LOG_LEVEL", "ConfigMap")
    record(changes, t, ChangeKind.NODE_CONDITION, "", "kwok-node-0", "node condition Ready True → False", "Node")
    record(changes, t, ChangeKind.IMAGE, "ops", "grafana", "image grafana: g:10 → g:11")
    record(changes, MONDAY_0900 - timedelta(days=4), ChangeKind.IMAGE, "shop", "old", "image old: a → b")
    events.record(
        WarningEvent("e1", ObjectRef("Node", None, "kwok-node-1"), "NodeNotReady", "Node is not ready", 2, t, t)
    )
    clock.now = MONDAY_0900 + timedelta(seconds=1)
    sent = sender.send_due()
    assert [d.channel for d in sent] == ["C-SHOP", "C-OPS"]
    shop = dict(outbox.posts)["C-SHOP"]
    assert shop.splitlines()[0] == "Daily digest for Mon 2026-05-04 09:00 CEST"
    assert "Deploys (2)" in shop
    assert "• shop: deployment/checkout image web: app:1.4.2 → app:1.4.3 by kubectl-set" in shop
    assert "• shop-eu: deployment/cart image cart: cart:7 → cart:8 by kubectl-set" in shop
    assert "Rollbacks (1)" in shop and "Scale changes (1)" in shop and "Config changes (1)" in shop
    assert "kwok-node-0: node condition Ready True → False" in shop
    assert "kwok-node-1: NodeNotReady ×2" in shop
    assert "• shop: checkout CrashLoopBackOff" in shop
    assert "grafana" not in shop and "old" not in shop  # other team's namespace; previous period
    assert "/k8s changes" in shop
    ops = dict(outbox.posts)["C-OPS"]
    assert "grafana" in ops and "checkout" not in ops


def test_sent_once_per_period_across_a_restart(tmp_path: Path) -> None:
    clock, outbox = Clock(MONDAY_0900), Outbox()
    _, _, sender = setup(tmp_path, clock, outbox)
    assert len(sender.send_due()) == 2
    clock.now += timedelta(minutes=2)
    _, _, restarted = setup(tmp_path, clock, outbox)  # a restart around 09:00: same database, new bot
    assert restarted.send_due() == []
    assert sender.send_due() == []  # the scheduler firing twice is harmless too
    assert len(outbox.posts) == 2
    clock.now = MONDAY_0900 + timedelta(days=1)  # next period goes out
    assert len(restarted.send_due()) == 2


def test_missed_digest_is_sent_on_start_with_its_period_named(tmp_path: Path) -> None:
    clock, outbox = Clock(MONDAY_0900 + timedelta(hours=3)), Outbox()  # the bot was down at 09:00
    _, _, sender = setup(tmp_path, clock, outbox)
    sent = sender.send_due()
    assert len(sent) == 2
    assert outbox.posts[0][1].splitlines()[0] == (
        "Daily digest for Mon 2026-05-04 09:00 CEST (sent late: I was not running then)"
        ": no deploys, rollbacks, scale or config changes"
    )
    clock.now = MONDAY_0900 + timedelta(days=3)  # Thursday: Tuesday's and Wednesday's are too old
    clock.now = datetime(2026, 5, 7, 6, 0, tzinfo=UTC)  # 08:00 CEST, Thursday; Wednesday 09:00 was missed
    sent = sender.send_due()
    assert [d.period for d in sent] == ["Wed 2026-05-06 09:00 CEST"] * 2


def test_failed_post_releases_the_claim(tmp_path: Path) -> None:
    clock = Clock(MONDAY_0900)
    calls: list[str] = []

    def flaky(digest: Digest) -> None:
        calls.append(digest.channel)
        if len(calls) == 1:
            raise RuntimeError("slack down")

    _, _, sender = setup(tmp_path, clock, Outbox())
    sender.post = flaky
    assert [d.channel for d in sender.send_due()] == ["C-OPS"]
    assert [d.channel for d in sender.send_due()] == ["C-SHOP"]  # retried, and only that one


def test_scheduler_job_has_a_stable_id_and_the_configured_cron(tmp_path: Path) -> None:
    clock, outbox = Clock(MONDAY_0900), Outbox()
    _, _, sender = setup(tmp_path, clock, outbox)
    scheduler = build_scheduler(timezone=TZ)
    scheduler.start(paused=True)
    schedule_digest(scheduler, sender)
    schedule_digest(scheduler, sender)  # rebuilt at start: replaced, not duplicated
    jobs = scheduler.get_jobs()
    assert [j.id for j in jobs] == [DIGEST_JOB]
    trigger = jobs[0].trigger
    assert str(trigger.timezone) == TZ
    assert {f.name: str(f) for f in trigger.fields}["day_of_week"] == "mon-fri"
    assert {f.name: str(f) for f in trigger.fields}["hour"] == "9"
    scheduler.shutdown(wait=False)


def test_start_scheduler_catches_up_at_start(tmp_path: Path) -> None:
    clock, outbox = Clock(MONDAY_0900 + timedelta(hours=1)), Outbox()
    _, _, sender = setup(tmp_path, clock, outbox)
    pruned: list[bool] = []
    scheduler = start_scheduler(sender, prune=lambda: pruned.append(True))
    try:
        assert sorted(j.id for j in scheduler.get_jobs()) == ["digest", "prune-history"]
        assert [c for c, _ in outbox.posts] == ["C-SHOP", "C-OPS"]  # the 09:00 digest, missed: sent on start
        assert "sent late" in outbox.posts[0][1]
    finally:
        scheduler.shutdown(wait=False)
