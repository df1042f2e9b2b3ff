"""Typed actions and long logs through Slack (emulator) against the real cluster, with the full
`k8sbot run` wiring (permissions.yaml, impersonation, audit).

- `/k8s rollback` previews exactly what will change with Confirm/Cancel; Confirm rolls back as the
  person who clicked, the preview message is replaced by the result; a second Confirm runs nothing.
- Cancel changes nothing.
- `/k8s logs` with long output shows the tail, says how much more there is, and uploads the whole
  (redacted) log as a file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import bind_role, get, set_pod_logs, wait_rolled_out
from scenarios import break_image, deploy_checkout

from bot.commands.dispatch import execute
from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, BOB, SHOP, running_bot, wait_answer

POLICY = """
roles:
  viewer: [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-slack-edit]}}
  readers:
    namespaces: [{ns}]
    members: {{users: [{bob}]}}
    role: viewer
defaults: {{role: null}}
"""

pytestmark = pytest.mark.kwok


@pytest.fixture
def policy(kube: KubeClient, namespace: str, tmp_path: Path) -> str:
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE, bob=BOB))
    bind_role(kube, namespace, "edit", group="team-slack-edit")
    return str(path)


def _buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        e["text"]["text"]: e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
    }


def _header(message: dict[str, Any]) -> str:
    return str(next(b["text"]["text"] for b in message.get("blocks") or [] if b["type"] == "header"))


def _preview(slack: SlackEmulator, user: str) -> tuple[str, dict[str, Any]]:
    """The ts and message of the newest ephemeral shown to `user` (action previews are private)."""
    ephemeral = slack.ephemerals(SHOP, user)[-1]
    return ephemeral.ts, copy.deepcopy(ephemeral.message)  # the emulator edits its copy in place


def test_typed_rollback_confirm_runs_once_as_the_clicker_and_replaces_the_preview(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path, policy: str
) -> None:
    app = deploy_checkout(kube, namespace)
    break_image(kube, app)
    with running_bot(
        slack, mode="http", db=str(tmp_path / "bot.db"), kubeconfig=cluster.kubeconfig, permissions=policy
    ) as runner:
        # Bob (viewer) clicks "Roll back" under a public `why` answer: refused privately, nothing changes.
        before = len(slack.response_posts())
        slack.driver.slash_command(f"why checkout -n {namespace}", user_id=ALICE, channel_id=SHOP)
        why = wait_answer(slack, before, what="the why answer")
        why_ts = slack.messages(SHOP)[-1]["ts"]
        assert _header(slack.messages(SHOP)[-1]) == _header(why)
        before = len(slack.response_posts())
        slack.driver.click(SHOP, why_ts, _buttons(why)["Roll back"], BOB)
        refusal = wait_answer(slack, before, what="Bob's refusal")
        assert refusal["response_type"] == "ephemeral" and "rollback" in json.dumps(refusal)
        assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"] == 2

        before = len(slack.response_posts())
        slack.driver.slash_command(f"rollback checkout -n {namespace}", user_id=ALICE, channel_id=SHOP)
        wait_answer(slack, before, what="the rollback preview")
        preview_ts, preview = _preview(slack, ALICE)
        text = json.dumps(preview)
        assert "revision 1" in text and app.image in text, text
        assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"] == 2

        before = len(slack.response_posts())
        slack.driver.click(SHOP, preview_ts, _buttons(preview)["Confirm"], ALICE)
        result = wait_answer(slack, before, what="the rollback result")
        assert result["replace_original"] is True
        wait_rolled_out(kube, namespace, "checkout")
        deployment = get(kube, "apps/v1", "Deployment", namespace, "checkout")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == app.image
        generation = deployment["metadata"]["generation"]
        managers = {entry["manager"] for entry in deployment["metadata"]["managedFields"]}
        assert f"k8sbot/{ALICE}" in managers  # the change history's "who" names the person
        shown = next(e for e in slack.ephemerals(SHOP, ALICE) if e.ts == preview_ts).message
        assert _header(shown) == _header(result) != _header(preview)  # the preview became the result, in place
        slack.wait_for(
            lambda: any(_header(m) == _header(result) for m in slack.messages(SHOP)),
            timeout=10,
            what="the result posted for the channel too",
        )

        # The same confirmation sent again (a double click, or a stale copy of the preview) runs nothing.
        confirm_command = next(
            e["value"]
            for b in preview["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["text"]["text"] == "Confirm"
        )
        again = execute(runner.commands, text=confirm_command, slack_user=ALICE, channel=SHOP, confirmed=True)
        assert again.data.get("outcome") == "duplicate"
        assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"] == generation
    rows = [r for r in runner.commands.audit.since(None, limit=50) if r.verb == "rollback"]
    confirmed = [r for r in rows if r.action_id and r.slack_user == ALICE and r.decision == "allowed"]
    assert len(confirmed) == 1 and confirmed[0].repeats == 1, rows
    assert [r.decision for r in rows if r.slack_user == BOB] == ["denied"], rows


def test_cancel_changes_nothing(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path, policy: str
) -> None:
    app = deploy_checkout(kube, namespace)
    break_image(kube, app)
    with running_bot(
        slack, mode="socket", db=str(tmp_path / "bot.db"), kubeconfig=cluster.kubeconfig, permissions=policy
    ):
        before = len(slack.response_posts())
        slack.driver.slash_command(f"scale checkout -n {namespace} --replicas 3", user_id=ALICE, channel_id=SHOP)
        wait_answer(slack, before, what="the scale preview")
        preview_ts, preview = _preview(slack, ALICE)
        before = len(slack.response_posts())
        slack.driver.click(SHOP, preview_ts, _buttons(preview)["Cancel"], ALICE)
        slack.wait_for(lambda: len(slack.response_posts()) > before, timeout=30, what="the cancellation")
        cancelled = slack.response_posts()[-1].body
    assert "Nothing was changed" in json.dumps(cancelled)
    assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["spec"]["replicas"] == 2


def test_long_logs_are_trimmed_and_attached_as_a_redacted_file(
    kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path, policy: str
) -> None:
    app = deploy_checkout(kube, namespace, replicas=1)
    secret_line = "connecting with password=hunter2-very-secret"
    lines = [f"request {i} served in {i % 7} ms" for i in range(400)] + [secret_line]
    set_pod_logs(kube, namespace, "app=checkout", app.container, current=lines)
    with running_bot(
        slack, mode="http", db=str(tmp_path / "bot.db"), kubeconfig=cluster.kubeconfig, permissions=policy
    ):
        before = len(slack.response_posts())
        slack.driver.slash_command(f"logs checkout -n {namespace} --tail 1000", user_id=ALICE, channel_id=SHOP)
        answer = wait_answer(slack, before, what="the logs answer")
        what = f"the full log uploaded as a file; answer: {json.dumps(answer)[:600]}"
        slack.wait_for(lambda: [f for f in slack.files() if f.channels], timeout=30, what=what)
    shown = json.dumps(answer)
    assert "request 399" in shown and "hunter2" not in shown
    files = slack.files()
    assert len(files) == 1
    content = files[0].content.decode() if isinstance(files[0].content, bytes) else str(files[0].content)
    assert "request 0 served" in content and "request 399 served" in content
    assert "hunter2" not in content
