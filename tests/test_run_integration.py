"""`k8sbot run` as a whole: BotRunner with its background work (shared watchers, alert engine,
scheduler) and the full wiring (permissions.yaml, audit), against the real cluster and the emulator.

The pieces have their own tests; this one shows they are connected the way `k8sbot run` connects
them: a bad rollout is recorded as a change, alerts the owning team's channel naming that change,
and `/k8s changes` from Slack shows it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import bind_role
from scenarios import break_image, deploy_checkout

from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, SHOP, running_bot

POLICY = """
roles:
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-run-edit]}}
defaults: {{role: null}}
"""


def _alert_texts(emu: SlackEmulator, channel: str) -> list[str]:
    """The alerts in the channel (posted with the outbox's metadata). Other messages may share the
    channel: on a weekday after the digest time, the start-up catch-up posts the daily digest there."""
    return [
        json.dumps(m.get("blocks") or m.get("text"))
        for m in emu.messages(channel)
        if (m.get("metadata") or {}).get("event_type") == "k8sbot_alert"
    ]


@pytest.mark.kwok
def test_run_records_the_change_alerts_the_team_and_answers_changes(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path
) -> None:
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    bind_role(kube, namespace, "edit", group="team-run-edit")
    app = deploy_checkout(kube, namespace)
    with running_bot(
        slack,
        mode="socket",
        db=str(tmp_path / "bot.db"),
        background=True,
        kubeconfig=cluster.kubeconfig,
        permissions=str(permissions),
        watch_namespaces=[namespace],
        alert_settle_seconds=1.0,
        alert_resolve_seconds=2.0,
    ) as runner:
        assert runner.background is not None and runner.background.tracker.wait_synced(60)
        breakage = break_image(kube, app)
        slack.wait_for(
            lambda: any(breakage.after in t for t in _alert_texts(slack, SHOP)),
            timeout=90,
            what="an alert in the shop channel naming the new image",
        )
        alerts = _alert_texts(slack, SHOP)
        assert len(alerts) == 1, alerts
        assert breakage.before in alerts[0] and f"--to-revision {breakage.revision - 1}" in alerts[0]

        before = len(slack.response_posts())
        slack.driver.slash_command(f"changes checkout -n {namespace} --since 1h", user_id=ALICE, channel_id=SHOP)
        slack.wait_for(lambda: len(slack.response_posts()) > before, timeout=30, what="the changes answer")
        answer = json.dumps(slack.response_posts()[-1].body)
        assert breakage.before in answer and breakage.after in answer
