"""A real Prometheus Alertmanager (v0.35.0, built by scripts/build-alertmanager) in front of the bot.

Alertmanager runs on loopback with gossip off and a webhook receiver pointing at the running bot
(`http_config.authorization` carrying the integration token), with short group timings. Alerts are
pushed to its API (`POST /api/v2/alerts`), as Prometheus does; Alertmanager groups them and calls
the bot. Shown: three alerts for one Deployment are one Slack message naming the culprit change,
whose Rollback button rolls the Deployment back in the real cluster; resolving them resolves it;
during an outage of the bot Alertmanager's retries deliver late, and nothing is posted twice.

Without the binary (not built yet) these tests skip, saying how to build it, except in CI (`CI`
set), where .ci/run builds it first and its absence is a failure.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import wait_for, wait_rolled_out
from scenarios import break_image, deploy_checkout
from test_alertmanager_cluster import (
    TOKEN,
    alerts_in,
    bot_with_integrations,
    header,
    rollback_through_slack,
    text_of,
)

from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, SHOP

pytestmark = pytest.mark.kwok

VERSION = "v0.35.0"
CACHE = Path(
    os.environ.get("K8SBOT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "k8sbot"
)
BINARY = CACHE / "bin" / f"alertmanager-{VERSION}" / "alertmanager"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def alertmanager_bin() -> Path:
    if BINARY.is_file():
        return BINARY
    if os.environ.get("CI"):
        pytest.fail(f"{BINARY} is missing: .ci/run builds it with scripts/build-alertmanager before the tests")
    pytest.skip(f"needs Alertmanager {VERSION}: run scripts/build-alertmanager once (about 11 min on 2 cores)")


class Alertmanager:
    def __init__(self, binary: Path, workdir: Path, *, bot_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "route": {
                "receiver": "k8sbot",
                "group_by": ["namespace", "deployment"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "k8sbot",
                    "webhook_configs": [
                        {
                            "url": f"{bot_url}/integrations/alertmanager",
                            "send_resolved": True,
                            "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                        }
                    ],
                }
            ],
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.log = (workdir / "alertmanager.log").open("w")
        self.process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 30, "Alertmanager to be ready")

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def push(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200

    def failed_notifications(self) -> float:
        """Failed webhook notifications so far (summed over Alertmanager's failure reasons)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as r:
            lines = r.read().decode().splitlines()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in lines
            if line.startswith("alertmanager_notifications_failed_total{") and 'integration="webhook"' in line
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def pushed(labels: dict[str, str], *, summary: str, resolved: bool = False) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": labels,
        "annotations": {"summary": summary},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now - timedelta(seconds=1) if resolved else now + timedelta(hours=1)).isoformat(),
        "generatorURL": "http://prometheus.example/graph",
    }


@pytest.fixture
def am_dir(tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager"
    path.mkdir()
    return path


def test_three_alerts_for_one_deployment_are_one_message_whose_rollback_works_and_resolve(
    alertmanager_bin: Path,
    am_dir: Path,
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    slack: SlackEmulator,
    tmp_path: Path,
) -> None:
    app = deploy_checkout(kube, namespace)
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path) as runner:
        am = Alertmanager(alertmanager_bin, am_dir, bot_url=runner.url)
        try:
            broken = break_image(kube, app)
            names = ("KubeDeploymentReplicasMismatch", "KubeDeploymentRolloutStuck", "CheckoutErrorRate")
            three = [
                pushed({"alertname": n, "namespace": namespace, "deployment": "checkout"}, summary=f"{n} fired")
                for n in names
            ]
            am.push(three)

            def grouped() -> dict[str, Any] | None:
                found = alerts_in(slack, SHOP)
                return found[0] if found and all(n in text_of(found[0]) for n in names) else None

            message = wait_for(grouped, 90, "one message with the three Alertmanager alerts")
            assert len(alerts_in(slack, SHOP)) == 1
            assert broken.after in text_of(message) and broken.before in text_of(message)  # the culprit change

            rollback_through_slack(slack, message, ALICE)
            rolled = wait_rolled_out(kube, namespace, "checkout", timeout=90)
            assert rolled["spec"]["template"]["spec"]["containers"][0]["image"] == broken.before

            am.push([pushed(a["labels"], summary="ok", resolved=True) for a in three])
            wait_for(lambda: header(slack.message(SHOP, message["ts"]) or {}).startswith("✅"), 120, "resolved")
            assert len(alerts_in(slack, SHOP)) == 1
        finally:
            am.stop()


def test_an_outage_of_the_bot_is_bridged_by_alertmanagers_retries_without_duplicates(
    alertmanager_bin: Path,
    am_dir: Path,
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    slack: SlackEmulator,
    tmp_path: Path,
) -> None:
    deploy_checkout(kube, namespace)
    port = free_port()
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path, http_port=port) as runner:
        am = Alertmanager(alertmanager_bin, am_dir, bot_url=runner.url)
    try:
        labels = {"alertname": "CheckoutLatency", "namespace": namespace, "deployment": "checkout"}
        am.push([pushed(labels, summary="p99 above 2s")])
        wait_for(lambda: am.failed_notifications() >= 1, 60, "Alertmanager failing to reach the stopped bot")
        assert alerts_in(slack, SHOP) == []
        with bot_with_integrations(slack, kube, namespace, cluster, tmp_path, restart=True, http_port=port):
            (late,) = wait_for(lambda: alerts_in(slack, SHOP) or None, 60, "the alert delivered late")
            assert "CheckoutLatency" in text_of(late)
            am.push([pushed(labels, summary="p99 above 2s")])  # Prometheus re-sends it every evaluation
            time.sleep(6)  # three group intervals: any duplicate would have come
            assert len(alerts_in(slack, SHOP)) == 1
            assert [m for m in slack.thread(SHOP, late["ts"]) if m["ts"] != late["ts"]] == []  # no reply either
    finally:
        am.stop()
