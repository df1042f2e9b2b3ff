"""`timeline` on the real local control plane: recorded changes, crash-looping pods and the culprit,
through `k8sbot ask --json --png` and through Slack (an image upload with its alt text, and the
Timeline button under a `why` answer)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import wait_for
from PIL import Image
from scenarios import break_memory_limit, deploy_checkout

from bot.changes.recording import ChangeRecorder, NamespaceFilter
from bot.kube.client import KubeClient
from bot.kube.watching import WatchedKind, Watchers
from bot.model import ChangeKind, ObjectRef
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.events import EventStore
from bot.timeline.building import LANES
from bot.timeline.drawing import CULPRIT, HEIGHT, WIDTH
from k8sbot import cli
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, running_bot, wait_answer

pytestmark = pytest.mark.kwok
KINDS = (WatchedKind("Deployment"), WatchedKind("ReplicaSet"), WatchedKind("ConfigMap"))


@pytest.fixture
def recorded(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """The change tracker recording `namespace` into a database file (the one `ask` and the bot read)."""
    path = tmp_path / "k8sbot.db"
    database = Database(path)
    recorder = ChangeRecorder(ChangeStore(database), EventStore(database), namespaces=NamespaceFilter((namespace,)))
    watchers = Watchers(kube, recorder, kinds=KINDS, watch_seconds=60)
    watchers.start()
    assert watchers.wait_synced(30)
    try:
        yield path
    finally:
        watchers.stop()
        database.close()


def crash_looping_checkout(kube: KubeClient, namespace: str, db: Path) -> Any:
    """checkout, then its memory limit lowered (OOMKilled, restarts), the edit recorded."""
    app = deploy_checkout(kube, namespace)
    breakage = break_memory_limit(kube, app)
    store = ChangeStore(Database(db))
    ref = ObjectRef("Deployment", namespace, "checkout")

    def recorded_edit() -> bool:
        since = datetime.now(UTC) - timedelta(hours=1)
        return any(c.kind is not ChangeKind.CREATED for c in store.query(since=since, ref=ref))

    wait_for(recorded_edit, 30, "the memory limit edit in the change history")
    return breakage


def ask(argv: list[str], cluster: Any, db: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> tuple[int, str]:
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.setenv("K8SBOT_DB", str(db))
    for name in ("K8SBOT_CONFIG", "SLACK_BOT_TOKEN", "K8SBOT_DEFAULT_NAMESPACE", "K8SBOT_PERMISSIONS"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(argv)
    return code, capsys.readouterr().out


def image(png: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(png))
    picture.load()
    return picture.convert("RGB")


def has_color(picture: Image.Image, hex_color: str) -> bool:
    wanted = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return wanted in {color for _, color in picture.getcolors(picture.width * picture.height) or []}


def test_timeline_json_and_png_through_k8sbot_ask(
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    recorded: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Any,
) -> None:
    breakage = crash_looping_checkout(kube, namespace, recorded)
    png = tmp_path / "timeline.png"
    code, out = ask(
        ["ask", "--json", "--png", str(png), f"timeline checkout -n {namespace} --since 1h"],
        cluster,
        recorded,
        monkeypatch,
        capsys,
    )
    assert code == 0, out
    data = json.loads(out)
    assert set(data) == {"cluster", "target", "from", "to", "events"}
    assert data["target"] == {"kind": "Deployment", "namespace": namespace, "name": "checkout"}
    assert datetime.fromisoformat(data["to"]) - datetime.fromisoformat(data["from"]) == timedelta(hours=1)
    events = data["events"]
    assert {e["lane"] for e in events} <= set(LANES)
    [culprit] = [e for e in events if e["culprit"]]
    assert culprit["lane"] == "changes" and culprit["actor"], culprit
    # the lowered memory limit (the field the diagnosis blames), when and by whom the recorded edit made it
    assert f"{breakage.path}: {breakage.before} → {breakage.after}" in culprit["text"], culprit
    assert any(e["lane"] == "pods" and "restarted (OOMKilled" in e["text"] for e in events), events
    assert any(e["lane"] == "changes" and not e["culprit"] and "created" in e["text"] for e in events)

    picture = image(png.read_bytes())
    assert picture.size == (WIDTH, HEIGHT)
    assert has_color(picture, CULPRIT)


def test_ask_png_for_an_answer_without_a_picture_says_so(
    kube: KubeClient, namespace: str, cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    deploy_checkout(kube, namespace)
    png = tmp_path / "status.png"
    code, _ = ask(["ask", "--png", str(png), f"status -n {namespace}"], cluster, tmp_path / "db", monkeypatch, capsys)
    assert code == 1 and not png.exists()


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["text"]["text"]: e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    }


def test_timeline_uploaded_to_slack_and_offered_under_why(
    kube: KubeClient, namespace: str, recorded: Path, slack: SlackEmulator
) -> None:
    crash_looping_checkout(kube, namespace, recorded)
    with running_bot(slack, mode="http", db=str(recorded), kube=kube):
        before = len(slack.response_posts())
        slack.driver.slash_command(f"timeline checkout -n {namespace}", user_id=ALICE, channel_id=OPS)
        answer = wait_answer(slack, before, what="the timeline answer")
        [upload] = slack.wait_for(
            lambda: [f for f in slack.files() if f.channels], timeout=30, what="the timeline picture"
        )
        assert upload.filename == f"timeline-{namespace}-checkout.png"
        assert upload.channels == [OPS]
        api = upload.to_api("T0")
        assert (api["mimetype"], api["original_w"], api["original_h"]) == ("image/png", WIDTH, HEIGHT)
        assert upload.alt_txt and upload.alt_txt.startswith(f"Timeline of Deployment checkout in {namespace}")
        assert "Likely culprit, highlighted:" in upload.alt_txt
        assert has_color(image(upload.content or b""), CULPRIT)
        assert "culprit" in json.dumps(answer["blocks"])

        # `why` offers the same picture: its Timeline button runs `timeline` for the clicker.
        before = len(slack.response_posts())
        slack.driver.slash_command(f"why checkout -n {namespace}", user_id=ALICE, channel_id=OPS)
        why = wait_answer(slack, before, what="the why answer")
        why_ts = slack.messages(OPS)[-1]["ts"]
        before = len(slack.response_posts())
        slack.driver.click(OPS, why_ts, _buttons(why)["Timeline"], ALICE)
        wait_answer(slack, before, what="the timeline from the button")
        slack.wait_for(lambda: len(slack.files()) == 2, timeout=30, what="the second picture")
    assert slack.lints(kind="broadcast_ping") == []
