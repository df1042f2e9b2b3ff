"""Grouping keys, settle delay, repeats, resolution and reopening, with a controlled clock."""

from __future__ import annotations

from bot.alerting.grouping import AlertKey, Fire, Repeat, Resolve, Timing, Tracker
from bot.model import Category, Finding, ObjectRef

DEPLOY = ObjectRef("Deployment", "shop", "checkout")
CRASH = Category.CRASH_LOOP


def crashing(*pods: str) -> dict[Category, tuple[Finding, ...]]:
    return {
        CRASH: tuple(
            Finding(ObjectRef("Pod", "shop", p), CRASH, "CrashLoopBackOff", "crashes", parent=DEPLOY) for p in pods
        )
    }


def tracker() -> Tracker:
    return Tracker(Timing(settle=30, resolve_after=60, repeat_interval=300, reopen_window=3600))


def test_twenty_crashing_pods_of_one_deployment_are_one_alert() -> None:
    t = tracker()
    pods = [f"checkout-{i}" for i in range(20)]
    assert t.observe(DEPLOY, crashing(*pods[:5]), 0) == []
    assert t.observe(DEPLOY, crashing(*pods), 10) == []
    decisions = t.observe(DEPLOY, crashing(*pods), 31)
    assert len(decisions) == 1
    (fire,) = decisions
    assert isinstance(fire, Fire) and fire.key == AlertKey(DEPLOY, CRASH) and len(fire.findings) == 20
    assert fire.since == 0
    t.fired(fire.key, 7)
    assert t.observe(DEPLOY, crashing(*pods), 40) == [] and t.tick(100) == []


def test_a_pod_that_fails_briefly_does_not_page() -> None:
    t = tracker()
    assert t.observe(DEPLOY, crashing("a"), 0) == []
    assert t.observe(DEPLOY, {}, 5) == []
    assert t.tick(31) == []  # absent at the end of the settle period
    assert t.tick(40) == [] and t.pending() == []  # and forgotten after staying away


def test_different_causes_of_one_workload_are_different_alerts() -> None:
    t = tracker()
    found = {
        **crashing("a"),
        Category.IMAGE_PULL: (
            Finding(ObjectRef("Pod", "shop", "b"), Category.IMAGE_PULL, "ImagePullBackOff", "no image", parent=DEPLOY),
        ),
    }
    t.observe(DEPLOY, found, 0)
    fired = t.tick(30)
    assert {d.key.category for d in fired} == {CRASH, Category.IMAGE_PULL}


def test_healthy_for_resolve_after_resolves_with_the_start_time() -> None:
    t = tracker()
    t.observe(DEPLOY, crashing("a"), 0)
    (fire,) = t.tick(30)
    t.fired(fire.key, 7)
    assert t.observe(DEPLOY, {}, 100) == []
    assert t.tick(159) == []
    (resolve,) = t.tick(160)
    assert resolve == Resolve(AlertKey(DEPLOY, CRASH), 7, 0, 160)
    assert t.firing() == {}


def test_failing_again_before_resolution_keeps_the_alert_open() -> None:
    t = tracker()
    t.observe(DEPLOY, crashing("a"), 0)
    (fire,) = t.tick(30)
    t.fired(fire.key, 7)
    t.observe(DEPLOY, {}, 100)
    assert t.observe(DEPLOY, crashing("a"), 150) == []
    assert t.tick(1000) == []
    assert t.firing() == {AlertKey(DEPLOY, CRASH): 7}


def test_more_pods_failing_is_a_repeat_at_most_once_per_interval() -> None:
    t = tracker()
    t.observe(DEPLOY, crashing("a"), 0)
    (fire,) = t.tick(30)
    t.fired(fire.key, 7)
    assert t.observe(DEPLOY, crashing("a", "b"), 100) == []  # within the repeat interval
    (repeat,) = t.observe(DEPLOY, crashing("a", "b"), 331)
    assert isinstance(repeat, Repeat) and repeat.alert_id == 7
    assert [s.name for s in repeat.new_subjects] == ["b"]
    assert t.tick(2000) == []  # nothing new


def test_the_same_cause_soon_after_resolution_reopens_the_alert() -> None:
    t = tracker()
    t.observe(DEPLOY, crashing("a"), 0)
    (fire,) = t.tick(30)
    t.fired(fire.key, 7)
    t.observe(DEPLOY, {}, 40)
    assert isinstance(t.tick(100)[0], Resolve)
    t.observe(DEPLOY, crashing("a"), 200)
    (again,) = t.tick(230)
    assert isinstance(again, Fire) and again.reopen == 7


def test_an_adopted_alert_resolves_unless_seen_again() -> None:
    t = tracker()
    key = AlertKey(DEPLOY, CRASH)
    t.adopt(key, 3, since=0, now=1000)
    assert t.observe(DEPLOY, crashing("a"), 1010) == []  # seen: stays open, nothing posted again
    assert t.tick(5000) == []
    other = tracker()
    other.adopt(key, 3, since=0, now=1000)
    (resolve,) = other.tick(1060)
    assert isinstance(resolve, Resolve) and resolve.alert_id == 3


def test_a_silenced_fire_is_tracked_without_an_alert_and_resolves_quietly() -> None:
    t = tracker()
    t.observe(DEPLOY, crashing("a"), 0)
    (fire,) = t.tick(30)
    t.fired(fire.key, None)
    assert t.tick(60) == []
    t.observe(DEPLOY, {}, 70)
    (resolve,) = t.tick(130)
    assert resolve.alert_id is None
