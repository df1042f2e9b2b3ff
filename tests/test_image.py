"""The container image (scripts/build-image) as the chart runs it, against the real cluster and the
Slack emulator: read-only root filesystem, the database on a writable volume, a non-root user, every
capability dropped, host networking (the emulator and the API server listen on loopback).

The pruned image still draws: a timeline PNG rendered inside it by the bot's own drawing code.
`/healthz` and `/readyz` answer, a signed `/k8s why` round trip answers, an alert is posted, and
SIGTERM (the kubelet's, sent to the container's process 1) stops the bot with exit code 0 within its
shutdown bound. Skipped, saying so, only where podman is missing.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from image_helpers import BotContainer, built_image, labels, owned_by_image_user, podman, status, ulimits
from kube_helpers import REPO
from scenarios import break_image, deploy_checkout
from test_shutdown import POLICY, alert_texts, bot_env
from test_timeline import _has_color, _pixels, sample

from bot.kube.client import KubeClient
from bot.timeline.drawing import CULPRIT, HEIGHT, WIDTH
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, SHOP, wait_answer

pytestmark = pytest.mark.image

GRACE = 8.0
"""The bot's shutdown bound here (shutdown_grace_seconds)."""


@pytest.fixture(scope="session")
def image() -> str:
    return built_image()


def test_the_image_is_labelled_non_root_and_has_no_compilers_caches_or_build_ca(image: str) -> None:
    found = labels(image)
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert found["org.opencontainers.image.version"] == version
    assert found["org.opencontainers.image.source"].startswith("https://")
    assert len(found["org.opencontainers.image.revision"].split("-")[0]) == 40, found
    config = json.loads(podman("image", "inspect", "--format", "{{json .Config}}", image).stdout)
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["k8sbot"] and config["Cmd"] == ["run"]
    inside = podman(
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--no-healthcheck",
        *ulimits(),
        "--entrypoint",
        "sh",
        image,
        "-c",
        "for c in gcc cc c++ make pip pip3; do command -v $c; done;"
        " ls -d /root/.cache /var/lib/k8sbot/.cache /run/registry-ca.pem /usr/share/doc/* /usr/share/man/* 2>/dev/null;"
        " ls /opt/k8sbot/lib/python3*/site-packages | grep -i -E '^(pip|setuptools|wheel)([-_.]|$)';"
        " k8sbot --help >/dev/null && echo k8sbot-ok",
    )
    assert inside.stdout.split() == ["k8sbot-ok"], inside.stdout + inside.stderr
    # The registry CA is mounted for the build only: no layer and no history line names it.
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    assert history.returncode == 0 and "registry-ca" not in history.stdout and "PIP_CERT" not in history.stdout


DRAW_IN_THE_IMAGE = """
import base64, json, sys
from matplotlib import font_manager
from bot.timeline.pictures import draw

png = draw("timeline", json.loads(sys.argv[1]))
with open("/tmp/timeline.png", "wb") as out:  # the chart's /tmp: an emptyDir (here a tmpfs)
    out.write(png)
with open("/tmp/timeline.png", "rb") as back:
    written = back.read()
fonts = {
    weight: font_manager.findfont(
        font_manager.FontProperties(family="DejaVu Sans", weight=weight), fallback_to_default=False
    )
    for weight in ("normal", "bold")
}
print(json.dumps({"png": base64.b64encode(written).decode(), "fonts": fonts}))
"""


def test_the_image_draws_a_timeline_png_with_its_own_fonts(image: str, tmp_path: Path) -> None:
    """What scripts/image-prune.py removes (fonts, Pillow codecs, fontTools and numpy parts, debug
    sections) must leave the picture's path whole: the Slack edge's `draw` on a timeline's JSON, in the
    image as the chart runs it (read-only root, /tmp and the data directory writable, no network),
    without a warning, with DejaVu Sans regular and bold found."""
    data = tmp_path / "data"
    data.mkdir()
    owned_by_image_user(data, 0o700)
    timeline = sample()  # every lane and a culprit (tests/test_timeline.py)
    inside = podman(
        "run",
        "--rm",
        "--read-only",
        "--network",
        "none",
        "--no-healthcheck",
        "--cap-drop",
        "all",
        *ulimits(),
        "--tmpfs",
        "/tmp",
        "-v",
        f"{data}:/var/lib/k8sbot:rw",
        "--entrypoint",
        "python",
        image,
        "-c",
        DRAW_IN_THE_IMAGE,
        json.dumps(timeline.to_json()),
    )
    assert inside.returncode == 0, inside.stderr[-3000:]
    warnings = [line for line in inside.stderr.splitlines() if not line.startswith("time=")]
    assert warnings == [], warnings  # no missing font, glyph or config directory
    answer = json.loads(inside.stdout)
    assert answer["fonts"]["normal"].endswith("/DejaVuSans.ttf"), answer["fonts"]
    assert answer["fonts"]["bold"].endswith("/DejaVuSans-Bold.ttf"), answer["fonts"]
    png = base64.b64decode(answer["png"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 20_000, len(png)  # lanes, labels and markers, not a blank canvas
    picture = _pixels(png)
    assert picture.size == (WIDTH, HEIGHT)
    assert _has_color(picture, CULPRIT)
    assert len(picture.getcolors(WIDTH * HEIGHT) or []) > 100  # anti-aliased text and markers


@pytest.mark.kwok
def test_the_image_serves_answers_alerts_and_stops_cleanly_on_sigterm(
    image: str, slack: SlackEmulator, kube: KubeClient, namespace: str, cluster: Any, tmp_path: Path
) -> None:
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    permissions.chmod(0o644)
    app = deploy_checkout(kube, namespace)
    break_image(kube, app)
    config = {
        "permissions": str(permissions),
        "watch_namespaces": [namespace],
        "alert_settle_seconds": 1.0,
        "alert_resolve_seconds": 2.0,
        "leader_namespace": namespace,
        "audit_channel": OPS,
        "shutdown_grace_seconds": GRACE,
    }
    env = bot_env(slack, tmp_path, db=tmp_path / "unused.db", kubeconfig=cluster.kubeconfig, config=config)
    bot = BotContainer(image, env, tmp_path)
    try:
        url = bot.wait_url()
        ready_after = bot.wait_ready(url)
        assert status(url + "/healthz") == 200
        assert bot.inspect("{{.HostConfig.ReadonlyRootfs}}") == "true"
        assert bot.inspect("{{.Config.User}}") == "10001:10001"

        before = len(slack.response_posts())
        slack.driver.slash_command(
            f"why checkout -n {namespace}", user_id=ALICE, channel_id=SHOP, mode="http", url=url + "/slack/events"
        )
        answer = wait_answer(slack, before, what="the why answer from the container", timeout=60)
        assert "checkout" in json.dumps(answer), answer

        slack.wait_for(lambda: alert_texts(slack, SHOP), timeout=90, what="the alert from the container")
        assert "checkout" in alert_texts(slack, SHOP)[0]
        assert (tmp_path / "data" / "k8sbot.db").exists(), "the database is not on the volume"

        sent = time.monotonic()
        bot.terminate()
        code = bot.process.wait(GRACE + 10)
        took = time.monotonic() - sent
    finally:
        bot.stop()
    assert code == 0, bot.log[-3000:]
    assert took < GRACE + 3, f"exited {took:.1f}s after SIGTERM (bound {GRACE:g}s)"
    assert "stopped" in bot.log, bot.log[-3000:]
    assert len(alert_texts(slack, SHOP)) == 1
    print(f"\nimage {image}: start to ready {ready_after:.1f}s, stopped {took:.1f}s after SIGTERM")


def test_sigterm_while_the_bot_still_starts_is_not_lost(
    image: str, slack: SlackEmulator, namespace: str, cluster: Any, tmp_path: Path
) -> None:
    """In a container the bot is process 1, and the kernel drops a signal process 1 has no handler for.
    `/readyz` answers while `run` still starts its background work (here: the start-up digest, held up
    by Slack's 429), and a pod deleted then must still stop within the bound, not at the SIGKILL."""
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    permissions.chmod(0o644)
    config = {
        "permissions": str(permissions),
        "watch_namespaces": [namespace],
        "leader_namespace": namespace,
        "digest_cron": "0 0 * * *",  # a digest is always due at start: the catch-up posts it
        "shutdown_grace_seconds": GRACE,
    }
    env = bot_env(slack, tmp_path, db=tmp_path / "unused.db", kubeconfig=cluster.kubeconfig, config=config)
    slack.rate_limit("chat.postMessage", retry_after=6, times=1)
    bot = BotContainer(image, env, tmp_path)
    try:
        bot.wait_ready(bot.wait_url())
        sent = time.monotonic()
        bot.terminate()
        try:
            code: int | None = bot.process.wait(GRACE + 10)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - sent
    finally:
        bot.stop()
    assert code == 0, f"exit code {code} {took:.1f}s after SIGTERM:\n{bot.log[-3000:]}"
    # Start-up work still running (the catch-up digest waits out Slack's Retry-After) comes before the
    # bounded stop: within the chart's grace period (the bound plus 10 s), not within the bound.
    assert took < GRACE + 10, f"exited {took:.1f}s after SIGTERM (grace period {GRACE + 10:g}s)"
