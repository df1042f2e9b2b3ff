"""The outbox against the Slack emulator: order, retries, and no double post after a crash mid-send."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.alerting.sending import EVENT_TYPE, OutboxSender
from bot.model import Category, ObjectRef
from bot.slack.alerts import SlackAlertPoster
from bot.slack.client import Poster, make_web_client
from bot.store.alerts import AlertStore
from bot.store.database import Database
from bot.store.outbox import Outbox
from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env
from slack_emulator.webapi import DEFAULT_SCOPES

CHANNEL = "C0SHOP"


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    # channels:history lets the sender look for an in-doubt message before posting it again
    with clean_slack_env(), SlackEmulator(scopes=[*DEFAULT_SCOPES, "channels:history"]) as emulator:
        emulator.add_channel(CHANNEL, "shop", members=[emulator.workspace.bot_user_id])
        yield emulator


def _alert(db: Database, alerts: AlertStore, outbox: Outbox, text: str) -> int:
    with db.transaction() as tx:
        alert_id = alerts.insert(
            tx,
            workload=ObjectRef("Deployment", "shop", "checkout"),
            category=Category.CRASH_LOOP,
            title=text,
            since=alerts.clock(),
            channel=CHANNEL,
            team="shop",
            route_reason="test",
            details={},
        )
        outbox.enqueue(tx, alert_id=alert_id, op="post", channel=CHANNEL, text=text, blocks=[])
        outbox.enqueue(tx, alert_id=alert_id, op="reply", channel=CHANNEL, text=f"{text} again", blocks=[])
        outbox.enqueue(tx, alert_id=alert_id, op="update", channel=CHANNEL, text=f"{text} v2", blocks=[])
        outbox.enqueue(tx, alert_id=alert_id, op="update", channel=CHANNEL, text=f"{text} v3", blocks=[])
    return alert_id


def _drain(sender: OutboxSender, outbox: Outbox) -> None:
    while (row := outbox.claim()) is not None:
        sender.send(row)


def test_rows_go_in_order_and_only_the_newest_update_is_sent(emu: SlackEmulator, tmp_path: Path) -> None:
    db = Database(tmp_path / "bot.db")
    alerts, outbox = AlertStore(db), Outbox(db)
    alert_id = _alert(db, alerts, outbox, "checkout crashes")
    sender = OutboxSender(outbox, SlackAlertPoster(Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url))))
    _drain(sender, outbox)
    (message,) = emu.messages(CHANNEL)
    assert message["text"] == "checkout crashes v3"
    assert [m["text"] for m in emu.thread(CHANNEL, message["ts"])][1:] == ["checkout crashes again"]
    assert len(emu.calls("chat.update")) == 1  # v2 was superseded by v3
    assert alerts.get(alert_id).ts == message["ts"]  # type: ignore[union-attr]
    assert outbox.counts() == {"sent": 3, "superseded": 1}


def test_errors_are_retried_with_backoff_until_slack_takes_the_message(emu: SlackEmulator, tmp_path: Path) -> None:
    db = Database(tmp_path / "bot.db")
    alerts, outbox = AlertStore(db), Outbox(db)
    _alert(db, alerts, outbox, "checkout crashes")
    emu.fail("chat.postMessage", error="internal_error", times=2)
    emu.rate_limit("chat.postMessage", retry_after=1, times=1)
    sender = OutboxSender(
        outbox,
        SlackAlertPoster(Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url))),
        backoff=(0.05, 0.2),
        idle_wait=0.05,
    )
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    thread.start()
    emu.wait_for(lambda: outbox.counts().get("sent") == 3, 20, "the outbox drained")
    stop.set()
    thread.join(5)
    assert sender.failures >= 2
    assert len([c for c in emu.calls("chat.postMessage") if c.ok and not c.args.get("thread_ts")]) == 1


def test_a_message_posted_just_before_a_crash_is_found_by_its_dedupe_key_not_posted_again(
    emu: SlackEmulator, tmp_path: Path
) -> None:
    db = Database(tmp_path / "bot.db")
    alerts, outbox = AlertStore(db), Outbox(db)
    alert_id = _alert(db, alerts, outbox, "checkout crashes")
    poster = SlackAlertPoster(Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url)))
    row = outbox.claim()  # the crashed process claimed the post...
    assert row is not None and row.op == "post"
    ts = poster.post(
        CHANNEL, text=row.text, metadata={"event_type": EVENT_TYPE, "event_payload": {"dedupe": row.dedupe_key}}
    )
    # ...Slack took it, and the process died before writing the ts. A new process starts:
    restarted = Outbox(Database(tmp_path / "bot.db"))
    assert restarted.recover() == 1
    _drain(OutboxSender(restarted, poster), restarted)
    assert len(emu.messages(CHANNEL)) == 1
    assert alerts.get(alert_id).ts == ts  # type: ignore[union-attr]
