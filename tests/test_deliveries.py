"""The memory of Slack deliveries seen (handlers/deliveries.py) is bounded by age and by count."""

from __future__ import annotations

from slack_bolt import BoltRequest

from handlers.deliveries import Deliveries, delivery_keys


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_delivery_is_new_once_within_the_window_and_new_again_after_it() -> None:
    clock = Clock()
    seen = Deliveries(window=600, capacity=100, clock=clock)
    assert seen.first_time(["trigger_id:1", "signature:v0=a"])
    clock.now += 599
    assert not seen.first_time(["trigger_id:1", "signature:v0=b"])  # a retry: same trigger, new signature
    assert not seen.first_time(["signature:v0=a"])  # a replay: same signature
    clock.now += 2  # 601 s after the first: forgotten
    assert seen.first_time(["trigger_id:1"])


def test_a_flood_keeps_at_most_capacity_and_forgets_the_oldest_first() -> None:
    clock = Clock()
    seen = Deliveries(window=600, capacity=50, clock=clock)
    for i in range(500):
        assert seen.first_time([f"trigger_id:{i}", f"signature:{i}"])
        clock.now += 0.01
    assert len(seen) == 50
    assert seen.evicted_early == 1000 - 50
    assert not seen.first_time(["trigger_id:499"])
    assert seen.first_time(["trigger_id:0"])  # evicted early: the price of the bound, counted above


def test_expired_entries_are_dropped_as_time_passes() -> None:
    clock = Clock()
    seen = Deliveries(window=10, capacity=1000, clock=clock)
    for i in range(100):
        seen.first_time([f"event_id:{i}"])
    clock.now += 11
    seen.first_time(["event_id:new"])
    assert len(seen) == 1


def test_keys_are_the_event_id_the_trigger_id_and_in_http_mode_the_signature() -> None:
    command = BoltRequest(
        body="command=%2Fk8s&text=help&trigger_id=123.456.abc",
        headers={"content-type": ["application/x-www-form-urlencoded"], "x-slack-signature": ["v0=ff"]},
    )
    assert delivery_keys(command) == ["trigger_id:123.456.abc", "signature:v0=ff"]
    event = BoltRequest(
        body={"type": "event_callback", "event_id": "Ev01", "event": {"type": "app_mention"}}, mode="socket_mode"
    )
    assert delivery_keys(event) == ["event_id:Ev01"]
