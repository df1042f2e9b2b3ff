"""Hostile label and annotation text from Alertmanager on its way to Slack: escaped, never a mention,
link or broken entity. Through the public path (the webhook into the running bot, the emulator's
messages) and, for every hostile string, through the alert engine's own details and renderers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alertmanager_payloads import alert, webhook
from kube_helpers import wait_for
from scenarios import deploy_checkout
from test_alertmanager_cluster import alerts_in, bot_with_integrations, send, thread_texts
from test_hostile_slack import HOSTILE, assert_inert, tokens

from bot.alerting.external import merge
from bot.integrations.alertmanager import Webhook, received
from bot.kube.client import KubeClient
from bot.redaction import DEFAULT
from bot.slack.alerts import BlockKitAlerts
from bot.slack.buttons import INLINE
from slack_emulator import SlackEmulator
from tests.slack_harness import OPS, SHOP

pytestmark = pytest.mark.hostile

SAMPLE = ("<!channel>", "<@U0ALICE01>", "<http://evil.example|click>", "*bold* `code`", "&lt;!here&gt;", "<" * 300)


def _details(hostile: str, *, plain: bool) -> dict[str, Any]:
    labels = {"alertname": hostile[:4000], "namespace": "shop", "severity": hostile[:100], hostile[:200] or "x": "v"}
    payload = webhook(alert(labels, summary=hostile))
    payload["alerts"][0]["generatorURL"] = hostile[:4000]
    known, _ = merge({}, received(Webhook.model_validate(payload)), DEFAULT)
    workload = {"kind": "Deployment", "namespace": "shop", "name": "checkout"}
    return {
        "plain": plain,
        "id": 7,
        "workload": workload,
        "category": "external",
        "what": hostile,
        "cluster": "c",
        "since": "2026-11-30T10:00:00+00:00",
        "state": "firing",
        "notes": [hostile],
        "why": hostile,
        "suggestion": hostile,
        "changes": [hostile],
        "external": known,
    }


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("plain", [False, True])
def test_alertmanager_text_in_alert_messages_is_inert(hostile: str, plain: bool) -> None:
    text, blocks = BlockKitAlerts(values=INLINE).alert(_details(hostile, plain=plain))
    assert_inert(text, blocks)


def test_hostile_alerts_through_the_running_bot_reach_slack_inert(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path) as runner:
        hostile = [
            alert({"alertname": h, "namespace": namespace, "team": h}, summary=f"{h} <!here> {h}") for h in SAMPLE
        ]
        status, body = send(runner.url, webhook(*hostile))
        assert (status, body["new"]) == (200, len(SAMPLE))
        posted = wait_for(lambda: len(alerts_in(slack, OPS)) >= len(SAMPLE) and alerts_in(slack, OPS), 60, "alerts")
        for message in posted:
            assert tokens(message.get("blocks")) == [] and tokens(message.get("text")) == [], message
            assert "&lt;!channel&gt;" in json.dumps(message) or "channel" not in json.dumps(message)
        for message in posted:
            for reply in thread_texts(slack, OPS, message["ts"]):
                assert "<!" not in reply and "<@" not in reply
        assert alerts_in(slack, SHOP) == []


def test_a_hostile_or_look_alike_cluster_label_is_never_matched_to_a_workload(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """One cluster named k8sbot-dev, and a real Deployment the alerts name: a `cluster` label that only
    looks like the name (case, spaces, invisible or look-alike characters) or carries Slack syntax is no
    configured cluster, so every alert is posted plainly as of an unknown cluster, inert, and none joins
    or starts an alert of the workload."""
    deploy_checkout(kube, namespace)
    values = (
        *SAMPLE,
        "K8SBOT-DEV",
        " k8sbot-dev",
        "k8sbot-dev\u200b",
        "k8sbot-d\u0435v",
        "k8sbot-dev,prod-eu",
        "k8sbot-dev\n",
    )
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path, cluster_name="k8sbot-dev") as runner:
        hostile = [
            alert(
                {"alertname": f"Odd{i}", "namespace": namespace, "deployment": "checkout", "cluster": value},
                summary=f"{value} <!here>",
            )
            for i, value in enumerate(values)
        ]
        status, body = send(runner.url, webhook(*hostile))
        assert (status, body["new"]) == (200, len(values))
        posted = wait_for(lambda: len(alerts_in(slack, OPS)) >= len(values) and alerts_in(slack, OPS), 60, "alerts")
        assert len(posted) == len(values)
        for message in posted:
            assert tokens(message.get("blocks")) == [] and tokens(message.get("text")) == [], message
            assert "names no configured cluster (k8sbot-dev)" in json.dumps(message, ensure_ascii=False)
        assert alerts_in(slack, SHOP) == []
        assert runner.core is not None
        assert {r.workload.kind for r in runner.core.alerts.open_alerts()} == {"AlertmanagerAlertOfUnknownCluster"}
