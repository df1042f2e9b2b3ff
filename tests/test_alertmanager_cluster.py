"""Alertmanager's webhook into the whole running bot (BotRunner with its background work, the real
cluster, the Slack emulator): one message per workload and cause shared with the bot's own alert,
enriched with `why` and the culprit change, the Rollback button through the permission path,
`resolved` resolving it, alerts naming no workload posted plainly. (The same with a real Alertmanager
in front: tests/test_alertmanager_real.py.)
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alertmanager_payloads import alert, webhook
from kube_helpers import bind_role, patch, pods, wait_for, wait_rolled_out
from scenarios import break_image, deploy_checkout

from bot.alerting.external import ClusterLabel
from bot.kube.client import KubeClient
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, SHOP, running_bot
from tests.wiring_helpers import unanswered_kubeconfig

TOKEN = "am-test-token-0123456789abcdef"
POLICY = """
roles:
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-am-edit]}}
defaults: {{role: null}}
"""


@contextmanager
def bot_with_integrations(
    slack: SlackEmulator,
    kube: KubeClient,
    namespace: str,
    cluster: Any,
    tmp_path: Path,
    *,
    restart: bool = False,
    **overrides: Any,
) -> Iterator[BotRunner]:
    """The whole bot on the test's database; `restart`: again, after a first one (same files, same role)."""
    permissions = tmp_path / "permissions.yaml"
    if not restart:
        permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
        bind_role(kube, namespace, "edit", group="team-am-edit")
    settings: dict[str, Any] = {
        "background": True,
        "kubeconfig": cluster.kubeconfig,
        "permissions": str(permissions),
        "watch_namespaces": [namespace],
        "alert_settle_seconds": 1.0,
        "alert_resolve_seconds": 2.0,
        "default_channel": OPS,
        "integration_token": TOKEN,
        **overrides,
    }
    with running_bot(slack, mode="socket", db=str(tmp_path / "bot.db"), **settings) as runner:
        assert runner.background is not None and runner.background.tracker.wait_synced(60)
        yield runner


def send(base: str, payload: Any, *, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        base + "/integrations/alertmanager",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def alerts_in(slack: SlackEmulator, channel: str) -> list[dict[str, Any]]:
    return [m for m in slack.messages(channel) if (m.get("metadata") or {}).get("event_type") == "k8sbot_alert"]


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or message.get("text"), ensure_ascii=False)


def button(message: dict[str, Any], label: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button" and element["text"]["text"] == label:
                return dict(element)
    return None


def header(message: dict[str, Any]) -> str:
    return str((message.get("blocks") or [{}])[0].get("text", {}).get("text", ""))


def thread_texts(slack: SlackEmulator, channel: str, ts: str) -> list[str]:
    return [json.dumps(m.get("blocks") or m.get("text"), ensure_ascii=False) for m in slack.thread(channel, ts)]


def rollback_through_slack(slack: SlackEmulator, message: dict[str, Any], user: str) -> None:
    """Click the alert's Rollback button as `user`, then confirm (the command path's confirmation)."""
    rollback = button(message, "Rollback")
    assert rollback is not None, text_of(message)
    slack.driver.click(SHOP, message["ts"], rollback["action_id"], user)

    def confirmation() -> dict[str, Any] | None:
        return next((e.message for e in slack.ephemerals(SHOP, user) if "k8s_confirm" in str(e.message)), None)

    ask = wait_for(confirmation, 30, "the rollback confirmation")
    slack.driver.click(SHOP, ask["ts"], "k8s_confirm", user)


@pytest.mark.kwok
def test_alertmanager_alerts_join_the_bots_alert_and_its_rollback_and_resolve(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    app = deploy_checkout(kube, namespace)
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path) as runner:
        broken = break_image(kube, app)
        (own,) = wait_for(lambda: alerts_in(slack, SHOP) or None, 90, "the bot's own alert")
        pod = pods(kube, namespace, "app=checkout")[0]["metadata"]["name"]
        three = [
            alert({"alertname": "KubePodNotReady", "namespace": namespace, "pod": pod}, summary="pod not ready"),
            alert({"alertname": "KubeDeploymentReplicasMismatch", "namespace": namespace, "deployment": "checkout"}),
            alert({"alertname": "KubeContainerWaiting", "namespace": namespace, "pod": pod, "container": "checkout"}),
        ]
        status, body = send(runner.url, webhook(*three))
        assert (status, body["received"]) == (200, 3)

        def enriched() -> dict[str, Any] | None:
            message = slack.message(SHOP, own["ts"]) or {}
            text = text_of(message)
            names = ("KubePodNotReady", "KubeDeploymentReplicasMismatch", "KubeContainerWaiting")
            return message if all(n in text for n in names) else None

        message = wait_for(enriched, 30, "the Alertmanager alerts on the bot's own alert")
        text = text_of(message)
        assert broken.after in text and broken.before in text  # the culprit change
        assert len(alerts_in(slack, SHOP)) == 1 and alerts_in(slack, OPS) == []
        assert any("Alertmanager: 3 more alert(s)" in t for t in thread_texts(slack, SHOP, own["ts"]))

        # A repeat of the same notification (Alertmanager's repeat_interval) adds nothing.
        replies = len(slack.thread(SHOP, own["ts"]))
        assert send(runner.url, webhook(*three))[1]["new"] == 0

        rollback_through_slack(slack, message, ALICE)
        rolled = wait_rolled_out(kube, namespace, "checkout", timeout=90)
        assert rolled["spec"]["template"]["spec"]["containers"][0]["image"] == broken.before

        # Healthy again in the cluster, but Alertmanager still says firing: the alert stays open.
        wait_for(lambda: any("no longer sees" in t for t in thread_texts(slack, SHOP, own["ts"])), 90, "the bot's note")
        assert not header(slack.message(SHOP, own["ts"]) or {}).startswith("✅")
        resolved = [{**a, "status": "resolved", "endsAt": "2026-11-30T10:30:00Z"} for a in three]
        assert send(runner.url, webhook(*resolved, status="resolved"))[0] == 200
        wait_for(lambda: header(slack.message(SHOP, own["ts"]) or {}).startswith("✅"), 30, "the alert resolved")
        assert len(alerts_in(slack, SHOP)) == 1
        assert len(slack.thread(SHOP, own["ts"])) > replies


@pytest.mark.kwok
def test_alerts_about_a_healthy_workload_or_no_workload_and_a_thousand_at_once(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    deploy_checkout(kube, namespace)
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path) as runner:
        patch(kube, "apps/v1", "Deployment", namespace, "checkout", {"spec": {"replicas": 3}})
        wait_for(
            lambda: runner.core and runner.core.changes.count(since=datetime.now(UTC) - timedelta(hours=1)),
            30,
            "a change",
        )
        latency = alert(
            {"alertname": "HighLatency", "namespace": namespace, "service": "checkout", "severity": "warning"},
            summary="p99 above 2s",
        )
        plain = alert({"alertname": "DiskFilling", "namespace": namespace}, summary="volume 90% full")
        flood = [alert({"alertname": "GhostPods", "namespace": namespace, "pod": f"ghost-{i}"}) for i in range(1000)]
        status, body = send(runner.url, webhook(latency, plain, *flood))
        assert (status, body["received"], body["new"]) == (200, 1002, 1002)

        (shop,) = wait_for(lambda: alerts_in(slack, SHOP) or None, 60, "the latency alert in the team channel")
        text = text_of(shop)
        assert "HighLatency" in text and "p99 above 2s" in text and "looks healthy" in text
        assert "Deployment" in header(shop) and "checkout" in header(shop)
        assert button(shop, "Why") is not None and button(shop, "Silence 1h") is not None

        def plain_ones() -> list[dict[str, Any]] | None:
            found = alerts_in(slack, OPS)
            return found if len(found) >= 2 else None

        ops = wait_for(plain_ones, 60, "the alerts naming no workload in the default channel")
        assert len(ops) == 2  # DiskFilling, and the 1,000 GhostPods as one message
        texts = " ".join(text_of(m) for m in ops)
        assert "DiskFilling" in texts and "GhostPods" in texts and "1000 firing" in texts
        ghost = next(m for m in ops if "GhostPods" in text_of(m))
        assert "pod=ghost-" in text_of(ghost) and "… and 992 more" in text_of(ghost)
        assert "Recent changes in" in text_of(ghost) and "replicas" in text_of(ghost)

        resolved = {**latency, "status": "resolved", "endsAt": "2026-11-30T10:30:00Z"}
        send(runner.url, webhook(resolved, status="resolved"))
        wait_for(lambda: header(slack.message(SHOP, shop["ts"]) or {}).startswith("✅"), 30, "resolved")
        assert runner.core is not None and runner.core.inbox.count(pending=True) == 0


@pytest.mark.kwok
def test_with_two_clusters_an_alert_goes_where_its_cluster_label_says_and_none_is_ever_guessed(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    """prod-us is the real local cluster (home); prod-eu a configured cluster nobody answers for (a closed
    port: its watchers never sync, so its engine never takes in its inbox). What is checked: the alert
    labelled prod-us is matched to prod-us's workload; the one labelled prod-eu waits in prod-eu's inbox,
    never posted from prod-us; those without the label or naming no configured cluster are posted plainly
    to the default channel saying the cluster is unknown, matched to no workload."""
    deploy_checkout(kube, namespace)
    eu = unanswered_kubeconfig(tmp_path / "eu.yaml", "prod-eu")
    clusters = [{"name": "prod-us", "kubeconfig": cluster.kubeconfig}, {"name": "prod-eu", "kubeconfig": eu}]
    with bot_with_integrations(slack, kube, namespace, cluster, tmp_path, clusters=clusters) as runner:
        about = {"namespace": namespace, "deployment": "checkout", "severity": "warning"}
        ours = alert({**about, "alertname": "HighLatency", "cluster": "prod-us"}, summary="p99 above 2s in us")
        theirs = alert({**about, "alertname": "HighLatency", "cluster": "prod-eu"}, summary="p99 above 2s in eu")
        unlabelled = alert({**about, "alertname": "ErrorRate"}, summary="5xx above 1%")
        stranger = alert({**about, "alertname": "DiskFilling", "cluster": "staging"}, summary="disk 90% full")
        status, body = send(runner.url, webhook(ours, theirs, unlabelled, stranger))
        assert (status, body["new"]) == (200, 4)

        (shop,) = wait_for(lambda: alerts_in(slack, SHOP) or None, 60, "prod-us's alert in the team channel")
        text = text_of(shop)
        assert "p99 above 2s in us" in text and "prod-us" in text and "Deployment" in header(shop)
        assert "in eu" not in text and "5xx" not in text and "disk" not in text

        def plain_ones() -> list[dict[str, Any]] | None:
            found = alerts_in(slack, OPS)
            return found if len(found) >= 2 else None

        ops = wait_for(plain_ones, 60, "the alerts of no known cluster in the default channel")
        assert len(ops) == 2
        for message in ops:
            words = text_of(message)
            assert "unknown: the alert" in words and "label is missing or names no configured cluster" in words
            assert "(prod-us, prod-eu)" in words and "matched to no workload" in words
            assert button(message, "Rollback") is None and button(message, "Why") is None
            assert "Recent changes" not in words and "No recorded change" not in words  # no cluster's history
        texts = " ".join(text_of(m) for m in ops)
        assert "5xx above 1%" in texts and "disk 90% full" in texts and "cluster=staging" in texts
        assert "in eu" not in texts

        assert runner.core is not None
        wait_for(lambda: runner.core.cluster("prod-us").inbox.count(pending=True) == 0, 30, "prod-us's inbox taken in")
        (waiting,) = runner.core.cluster("prod-eu").inbox.pending()
        assert waiting.alert.annotations["summary"] == "p99 above 2s in eu" and waiting.cluster == "prod-eu"
        stored = {(r.workload.kind, r.cluster) for r in runner.core.cluster("prod-us").alerts.open_alerts()}
        assert stored == {("Deployment", "prod-us"), ("AlertmanagerAlertOfUnknownCluster", "prod-us")}

        # Resolved ones find their message: the unknown cluster's too.
        resolved = {**unlabelled, "status": "resolved", "endsAt": "2026-11-30T10:30:00Z"}
        send(runner.url, webhook(resolved, status="resolved"))
        error_rate = next(m for m in ops if "5xx" in text_of(m))
        wait_for(lambda: header(slack.message(OPS, error_rate["ts"]) or {}).startswith("✅"), 30, "resolved")


def test_a_single_cluster_bot_does_not_guess_an_alert_labelled_with_another_cluster(tmp_path: Path) -> None:
    """The pure rule the engine applies to each inbox row (its cluster and the configured label)."""
    rule = ClusterLabel("cluster", ("k8sbot-dev",))
    assert rule.cluster_of({"namespace": "shop", "deployment": "checkout"}) == "k8sbot-dev"
    assert rule.cluster_of({"namespace": "shop", "deployment": "checkout", "cluster": "k8sbot-dev"}) == "k8sbot-dev"
    assert rule.cluster_of({"namespace": "shop", "deployment": "checkout", "cluster": "prod-eu"}) is None
