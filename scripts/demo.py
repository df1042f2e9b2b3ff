#!/usr/bin/env python3
"""The local demo: a real cluster, demo workloads, the Slack emulator and the bot, end to end.

Starts (or reuses) the local cluster, applies deploy/demo/workloads.yaml, breaks the payments rollout
with an image that cannot be pulled, starts the Slack emulator and the bot in HTTP mode, and sends a
few /k8s commands as a person would, printing what Slack would show. `--keep` leaves everything
running so you can try more commands (printed at the end).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.errors import Conflict  # noqa: E402
from bot.kube.client import KubeClient  # noqa: E402
from bot.kube.kinds import KINDS  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from k8sbot.running import BotRunner  # noqa: E402
from slack_emulator import SlackEmulator  # noqa: E402

USER, CHANNEL = "U0DEMOALICE", "C0DEMO0001"
RBAC_PATH = "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"


def apply_manifests(kube: KubeClient, path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kind = doc["kind"]
        ns = doc["metadata"].get("namespace")
        base = RBAC_PATH.format(ns=ns) if kind == "RoleBinding" else KINDS[kind].path(ns)
        try:
            kube.request("POST", base, body=doc)
        except Conflict:
            kube.request("PUT", f"{base}/{doc['metadata']['name']}", body=_with_version(kube, base, doc))


def _with_version(kube: KubeClient, base: str, doc: dict[str, Any]) -> dict[str, Any]:
    current = kube.get(f"{base}/{doc['metadata']['name']}")
    doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return doc


def wait(what: str, check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: timed out waiting for {what}")
        time.sleep(0.5)


def ready(kube: KubeClient, name: str) -> bool:
    status = kube.get(KINDS["Deployment"].path("demo", name)).get("status") or {}
    return int(status.get("readyReplicas") or 0) >= 2


def break_payments(kube: KubeClient) -> None:
    """A new rollout whose image cannot be pulled (kwok's imagepull scenario plays the kubelet)."""
    patch = {
        "spec": {
            "template": {
                "metadata": {"labels": {"sim.k8sbot.dev/scenario": "imagepull"}},
                "spec": {"containers": [{"name": "payments", "image": "registry.example/payments:2.5.0-rc1"}]},
            }
        }
    }
    kube.request(
        "PATCH",
        KINDS["Deployment"].path("demo", "payments"),
        body=patch,
        content_type="application/strategic-merge-patch+json",
        query={"fieldManager": "kubectl-set"},
    )


def show(message: dict[str, Any]) -> None:
    """Print a Slack message the way a person would read it."""
    for block in message.get("blocks") or []:
        if block["type"] == "header":
            print(f"  ┃ {block['text']['text']}")
        elif block["type"] == "section":
            for line in block["text"]["text"].replace("\u200b", "").splitlines():
                print(f"  ┃ {line.replace('&lt;', '<').replace('&gt;', '>').replace('&amp;', '&')}")
        elif block["type"] == "context":
            print("  ┃ " + " ".join(e.get("text", "") for e in block["elements"]))
        elif block["type"] == "actions":
            print("  ┃ " + "  ".join(f"[{e['text']['text']}]" for e in block["elements"]))
    if not message.get("blocks"):
        print(f"  ┃ {message.get('text', '')}")


def wait_alert(emu: SlackEmulator) -> dict[str, Any] | None:
    """The alert the bot posts (chat.postMessage) to the team channel for the broken rollout."""

    def alerts() -> list[dict[str, Any]]:
        # Alerts carry the outbox's metadata; other bot messages share the channel (on a weekday after
        # the digest time, the start-up catch-up posts the daily digest there first).
        return [m for m in emu.messages(CHANNEL) if (m.get("metadata") or {}).get("event_type") == "k8sbot_alert"]

    try:
        emu.wait_for(alerts, timeout=90, what="the alert")
    except AssertionError:
        print("  (no alert within 90 s)")
        return None
    return alerts()[0]


def slash(emu: SlackEmulator, text: str) -> dict[str, Any]:
    print(f"\n/k8s {text}")
    before = len(emu.response_posts())
    result = emu.driver.slash_command(text, user_id=USER, channel_id=CHANNEL)
    if result.payload and result.payload.get("blocks"):  # answered inside the ack (help, usage errors)
        show(result.payload)
        return dict(result.payload)

    def answers() -> list[dict[str, Any]]:
        return [p.body for p in emu.response_posts()[before:] if p.body.get("blocks")]

    emu.wait_for(answers, timeout=60, what=f"the answer to /k8s {text}")
    body: dict[str, Any] = answers()[0]
    show(body)
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the emulator and the bot running")
    args = parser.parse_args()
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(variable, None)

    print("Starting the local cluster (the first run builds it; see docs/local-cluster.md)…")
    up = subprocess.run([str(REPO / "scripts/local-cluster"), "up"], check=True, capture_output=True, text=True)
    kubeconfig = up.stdout.strip().splitlines()[-1]
    kube = KubeClient.from_kubeconfig(kubeconfig)
    apply_manifests(kube, REPO / "deploy/demo/workloads.yaml")
    wait("checkout and payments to be Ready", lambda: ready(kube, "checkout") and ready(kube, "payments"))
    break_payments(kube)
    time.sleep(5)  # let the new ReplicaSet's pods reach ImagePullBackOff

    workdir = Path(tempfile.mkdtemp(prefix="k8sbot-demo-"))
    emu = SlackEmulator().start()
    emu.add_user(USER, name="alice", real_name="Alice (on call)")
    emu.add_channel(CHANNEL, "demo-team", members=[USER], bot_member=True)
    os.environ.update({"KUBECONFIG": kubeconfig})

    settings = load_settings(
        {},
        slack_bot_token=emu.bot_token,
        slack_signing_secret=emu.signing_secret,
        slack_api_url=emu.api_url,
        db=str(workdir / "k8sbot.db"),
        permissions=str(REPO / "deploy/demo/permissions.yaml"),
        kubeconfig=kubeconfig,
        http_port=0,
        cluster_name="k8sbot-dev (local)",
        channel_namespaces={CHANNEL: "demo"},
        alert_settle_seconds=3,
        alert_resolve_seconds=5,
        watch_namespaces=["demo"],
    )
    runner = BotRunner(settings, http=True).start()
    emu.driver.configure(mode="http", url=runner.url + "/slack/events")
    print(f"Slack emulator at {emu.api_url}, bot at {runner.url} (HTTP mode), cluster {kube.server}")
    try:
        slash(emu, "help")
        slash(emu, "status")
        print("\n(meanwhile the alert engine has watched the rollout go bad…)")
        alert = wait_alert(emu)
        if alert:
            show(alert)
        slash(emu, "why payments")
        preview = slash(emu, "rollback payments")
        buttons = [e for b in preview.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]
        if buttons:
            print("\n(alice clicks Confirm)")
            ts = emu.ephemerals(CHANNEL, USER)[-1].ts  # action previews are shown only to the asker
            before = len(emu.response_posts())
            emu.driver.click(CHANNEL, ts, buttons[0]["action_id"], USER)
            emu.wait_for(lambda: len(emu.response_posts()) > before, timeout=60, what="the rollback result")
            show(emu.response_posts()[-1].body)
            wait("payments to be Ready again", lambda: ready(kube, "payments"))
            slash(emu, "why payments")
            if alert:
                print("\n(the alert, once payments stayed healthy for a few seconds)")
                emu.wait_for(
                    lambda: "Resolved" in str(emu.message(CHANNEL, alert["ts"])), timeout=60, what="resolution"
                )
                show(emu.message(CHANNEL, alert["ts"]) or {})
        if args.keep:
            print(f"\nRunning. Bot: {runner.url}/slack/events  Emulator: {emu.base_url}. Ctrl-C to stop.")
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()
        emu.stop()
    print("\nDemo finished. `scripts/local-cluster down` stops the cluster.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
