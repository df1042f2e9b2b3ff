"""An alert's timeline picture through the outbox and the Slack emulator: uploaded into the alert's
thread after the alert (files upload v2, with its alt text), once, even when the row was in doubt."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from bot.alerting.sending import OutboxSender
from bot.model import Category, Change, ChangeKind, CulpritChange, FieldChange, ObjectRef
from bot.slack.alerts import SlackAlertPoster
from bot.slack.client import Poster, make_web_client
from bot.store.alerts import AlertStore
from bot.store.database import Database
from bot.store.outbox import Outbox
from bot.timeline.building import build_timeline, describe_in_words, title_of
from bot.timeline.drawing import HEIGHT, WIDTH
from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env
from slack_emulator.webapi import DEFAULT_SCOPES

CHANNEL = "C0SHOP"
REF = ObjectRef("Deployment", "shop", "checkout")


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with clean_slack_env(), SlackEmulator(scopes=[*DEFAULT_SCOPES, "channels:history"]) as emulator:
        emulator.add_channel(CHANNEL, "shop", members=[emulator.workspace.bot_user_id])
        yield emulator


def _alert_with_picture(db: Database, alerts: AlertStore, outbox: Outbox) -> int:
    now = datetime.now(UTC)
    change = Change(
        REF, now - timedelta(minutes=30), ChangeKind.IMAGE, "image app: 1.4 → 9", (FieldChange("x", "1.4", "9"),)
    )
    timeline = build_timeline(
        cluster="dev",
        target=REF,
        start=now - timedelta(hours=6),
        end=now,
        changes=[change],
        culprit=CulpritChange(REF, change.at, "<!here> alice", None, "x", "1.4", "9"),
    )
    with db.transaction() as tx:
        alert_id = alerts.insert(
            tx,
            workload=REF,
            category=Category.IMAGE_PULL,
            title="checkout can't pull",
            since=now,
            channel=CHANNEL,
            team="shop",
            route_reason="test",
            details={},
        )
        outbox.enqueue(tx, alert_id=alert_id, op="post", channel=CHANNEL, text="checkout can't pull", blocks=[])
        outbox.enqueue(
            tx,
            alert_id=alert_id,
            op="picture",
            channel=CHANNEL,
            text=describe_in_words(timeline),
            blocks=[],
            payload={
                "kind": "timeline",
                "data": timeline.to_json(),
                "filename": "timeline-shop-checkout",
                "title": title_of(timeline),
            },
        )
    return alert_id


def _drain(sender: OutboxSender, outbox: Outbox) -> None:
    while (row := outbox.claim()) is not None:
        sender.send(row)


def _poster(emu: SlackEmulator) -> SlackAlertPoster:
    return SlackAlertPoster(Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url)))


def test_the_picture_goes_into_the_alert_thread_after_the_alert(emu: SlackEmulator, tmp_path: Path) -> None:
    db = Database(tmp_path / "bot.db")
    alerts, outbox = AlertStore(db), Outbox(db)
    _alert_with_picture(db, alerts, outbox)
    _drain(OutboxSender(outbox, _poster(emu)), outbox)
    (alert,) = emu.messages(CHANNEL)
    [_, reply] = emu.thread(CHANNEL, alert["ts"])
    [shown] = reply["files"]
    [stored] = emu.files()
    assert shown["id"] == stored.id and stored.thread_ts == alert["ts"]
    assert stored.filename.startswith("timeline-shop-checkout-") and stored.filename.endswith(".png")
    assert (shown["mimetype"], shown["original_w"], shown["original_h"]) == ("image/png", WIDTH, HEIGHT)
    assert Image.open(io.BytesIO(stored.content or b"")).size == (WIDTH, HEIGHT)
    assert stored.alt_txt is not None and "Likely culprit, highlighted" in stored.alt_txt
    assert "<!here>" not in stored.alt_txt and "&lt;!here&gt; alice" in stored.alt_txt
    assert outbox.counts() == {"sent": 2}


def test_a_picture_row_in_doubt_is_not_uploaded_twice(emu: SlackEmulator, tmp_path: Path) -> None:
    db = Database(tmp_path / "bot.db")
    alerts, outbox = AlertStore(db), Outbox(db)
    _alert_with_picture(db, alerts, outbox)
    poster = _poster(emu)
    sender = OutboxSender(outbox, poster)
    sender.send(outbox.claim())  # type: ignore[arg-type]  # the alert
    row = outbox.claim()
    assert row is not None and row.op == "picture"
    sender._picture(row)  # uploaded, then the process died before marking the row sent
    restarted = Outbox(Database(tmp_path / "bot.db"))
    assert restarted.recover() == 1
    _drain(OutboxSender(restarted, poster), restarted)
    assert len(emu.files()) == 1
    assert restarted.counts() == {"sent": 2}
