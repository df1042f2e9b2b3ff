"""Hostile text on the timeline: an annotation, a field manager (the actor) and a Warning event whose
words are Slack markup (broadcasts, a user mention, a link, bold) or mathtext, made in the real
cluster and recorded by the real watchers, then asked for through Slack. Nothing pings, links or
formats, in the answer or in the picture's alt text and title, and the picture is still drawn."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kube_helpers import create, wait_for
from PIL import Image
from scenarios import deploy_checkout

from bot.changes.recording import ChangeRecorder, NamespaceFilter
from bot.kube.client import KubeClient
from bot.kube.watching import WatchedKind, Watchers
from bot.model import ChangeKind, ObjectRef
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.events import EventStore
from bot.timeline.drawing import HEIGHT, WIDTH
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, BOB, OPS, running_bot, wait_answer

pytestmark = [pytest.mark.hostile, pytest.mark.kwok]

ACTOR = "<!here>"
NOTE = f"<!channel> <@{BOB}> *pwned* <https://evil.example|click> $\\frac{{1}}{{0}}$"
EVENT = "<!everyone> _boom_ <#C0OPS0001> $x$"
RAW = ("<!here>", "<!channel>", "<!everyone>", f"<@{BOB}>", "<https://evil", "<#C0OPS0001>")


@pytest.fixture
def recorded(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "k8sbot.db"
    database = Database(path)
    recorder = ChangeRecorder(ChangeStore(database), EventStore(database), namespaces=NamespaceFilter((namespace,)))
    kinds = (WatchedKind("Deployment"), WatchedKind("ReplicaSet"))
    watchers = Watchers(kube, recorder, kinds=kinds, watch_seconds=60)
    watchers.start()
    assert watchers.wait_synced(30)
    try:
        yield path
    finally:
        watchers.stop()
        database.close()


def hostile_history(kube: KubeClient, namespace: str, db: Path) -> None:
    """An annotation edit by a field manager named like a broadcast, and a Warning event in markup."""
    deploy_checkout(kube, namespace)
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/checkout",
        body={"metadata": {"annotations": {"note": NOTE}}},
        content_type="application/strategic-merge-patch+json",
        query={"fieldManager": ACTOR},
    )
    store = ChangeStore(Database(db))
    ref = ObjectRef("Deployment", namespace, "checkout")

    def recorded_edit() -> bool:
        return any(c.kind is ChangeKind.METADATA and c.actor == ACTOR for c in store.query(since=_long_ago(), ref=ref))

    wait_for(recorded_edit, 30, "the hostile annotation edit in the change history")
    create(
        kube,
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "checkout.hostile", "namespace": namespace},
            "type": "Warning",
            "reason": "<!here>",
            "message": EVENT,
            "count": 3,
            "involvedObject": {"kind": "Deployment", "name": "checkout", "namespace": namespace},
            "lastTimestamp": _now_text(),
            "firstTimestamp": _now_text(),
            "source": {"component": "<!channel>"},
        },
    )


def _long_ago() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_hostile_actor_annotation_and_event_are_inert_in_the_answer_and_the_alt_text(
    kube: KubeClient, namespace: str, recorded: Path, slack: SlackEmulator
) -> None:
    hostile_history(kube, namespace, recorded)
    with running_bot(slack, mode="http", db=str(recorded), kube=kube):
        before = len(slack.response_posts())
        slack.driver.slash_command(f"timeline checkout -n {namespace}", user_id=ALICE, channel_id=OPS)
        answer = wait_answer(slack, before, what="the timeline answer")
        [upload] = slack.wait_for(
            lambda: [f for f in slack.files() if f.channels], timeout=30, what="the timeline picture"
        )
    shown = json.dumps(answer)
    assert "&lt;!here&gt;" in shown and "&lt;!everyone&gt;" in shown  # the actor and the event are there...
    for raw in RAW:  # ...and none of them can ping, mention, link
        assert raw not in shown, raw
        assert raw not in (upload.alt_txt or ""), raw
        assert raw not in (upload.title or ""), raw
    assert "by &lt;!here&gt;" in (upload.alt_txt or "")  # the newest change and who made it, in words
    assert slack.lints(kind="broadcast_ping") == []
    # mathtext-looking words are text: the picture is drawn, at its size
    assert Image.open(io.BytesIO(upload.content or b"")).size == (WIDTH, HEIGHT)
