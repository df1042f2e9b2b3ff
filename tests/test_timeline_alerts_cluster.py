"""Every alert's thread gets the workload's timeline picture: the real control plane, the change
tracker's watchers, the alert engine and the Slack emulator (the harness of test_alerts_cluster)."""

from __future__ import annotations

import io

import pytest
from kube_helpers import wait_for
from PIL import Image
from scenarios import break_image, deploy_checkout
from test_alerts_cluster import CHANNEL, Bot, bot  # noqa: F401 - `bot` is the fixture

from bot.kube.client import KubeClient
from bot.timeline.drawing import HEIGHT, WIDTH

pytestmark = pytest.mark.kwok


def test_the_alert_thread_gets_the_timeline_with_the_culprit(bot: Bot, kube: KubeClient, namespace: str) -> None:  # noqa: F811
    app = deploy_checkout(kube, namespace)
    bot.start()
    broken = break_image(kube, app)
    (alert,) = wait_for(lambda: bot.alerts() or None, 60, "an alert in the team channel")
    [upload] = wait_for(
        lambda: [f for f in bot.emu.files() if f.channels] or None, 60, "the timeline picture shared in the thread"
    )  # shared a moment after its bytes arrive (files.completeUploadExternal)
    assert upload.thread_ts == alert["ts"] and upload.channels == [CHANNEL]
    assert upload.filename.startswith(f"timeline-{namespace}-checkout-") and upload.filename.endswith(".png")
    assert Image.open(io.BytesIO(upload.content or b"")).size == (WIDTH, HEIGHT)
    assert upload.alt_txt is not None
    assert upload.alt_txt.startswith(f"Timeline of Deployment checkout in {namespace}")
    assert f"Likely culprit, highlighted: Deployment/checkout: {broken.path}: {broken.before} → {broken.after}" in (
        upload.alt_txt
    )
    thread = bot.emu.thread(CHANNEL, alert["ts"])
    assert any(f["id"] == upload.id for m in thread[1:] for f in m.get("files") or [])
    assert len(bot.alert_posts()) == 1
