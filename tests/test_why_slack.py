"""`why` end to end through the Slack emulator and through `k8sbot ask --json`, on the real cluster.

Every scenario of the test library must give the right top category and, where a change caused it,
name the culprit change, in the Slack message and in the JSON contract alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from scenarios import BREAKERS, EXPECTED_CATEGORY, deploy_checkout, run_failing_job

from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, running_bot, wait_answer
from tests.why_helpers import answering_bot, ask_json, assert_told, slack_ask, slack_why

EXPECTED = EXPECTED_CATEGORY


@pytest.fixture
def emu(slack: SlackEmulator) -> SlackEmulator:
    return slack


@pytest.fixture(scope="module")
def slack_bot(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlackEmulator]:
    """One emulator and one bot (HTTP mode) answering there for the module's scenarios."""
    with answering_bot(cluster.client(), tmp_path_factory.mktemp("why-slack-bot")) as emu:
        yield emu


@pytest.mark.kwok
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_why_scenario_through_slack_and_ask_json(
    kube: KubeClient, namespace: str, cluster: Any, slack_bot: SlackEmulator, tmp_path: Path, scenario: str
) -> None:
    app = deploy_checkout(kube, namespace)
    breakage = BREAKERS[scenario](kube, app)

    data = ask_json(cluster.kubeconfig, f"why checkout -n {namespace}", tmp_path)
    assert data["healthy"] is False
    top = data["causes"][0]
    assert top["category"] == EXPECTED[scenario], data
    if breakage.path is not None:
        assert top["change"] is not None, data
        assert top["change"]["before"] == breakage.before and top["change"]["after"] == breakage.after

    before = len(slack_bot.lints(kind="broadcast_ping"))
    message = slack_ask(slack_bot, f"why checkout -n {namespace}", channel=OPS)
    assert_told(message, data)  # its top cause, evidence and culprit, as `ask --json` said them
    shown = json.dumps(message["blocks"])
    assert f"[{EXPECTED[scenario]}," in shown
    if breakage.path is not None:
        # Named in a person's words (`env var PAYMENT_API_URL of container app`), not as the API's path.
        assert top["change"]["what"] in shown
        if "[" in top["change"]["path"]:  # list indices of the API's JSON mean nothing to a person
            assert top["change"]["path"] not in shown
    assert slack_bot.lints(kind="broadcast_ping")[before:] == []


@pytest.mark.kwok
def test_why_failing_job_and_healthy_service_in_socket_mode(
    kube: KubeClient, namespace: str, emu: SlackEmulator, tmp_path: Path
) -> None:
    deploy_checkout(kube, namespace)
    run_failing_job(kube, namespace)
    with running_bot(emu, mode="socket", db=str(tmp_path / "bot.db"), kube=kube):
        healthy = slack_why(emu, f"why checkout -n {namespace}")
        job = slack_why(emu, f"why nightly-report -n {namespace}")
    assert "healthy" in healthy.lower()
    assert "[job_failed," in job


@pytest.mark.kwok
def test_why_offers_rollback_and_logs_buttons_that_carry_commands(
    kube: KubeClient, namespace: str, slack_bot: SlackEmulator
) -> None:
    app = deploy_checkout(kube, namespace)
    BREAKERS["bad_image"](kube, app)
    blocks = json.loads(slack_why(slack_bot, f"why checkout -n {namespace}"))
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    values = [b["value"] for b in buttons]
    assert f"rollback checkout -n {namespace} --to-revision 1" in values
    assert f"logs deployment/checkout -n {namespace}" in values


def test_unknown_target_and_unreachable_cluster_answer_privately(emu: SlackEmulator, tmp_path: Path) -> None:
    configuration = k8s_client.Configuration()
    configuration.host = "https://127.0.0.1:9"  # nothing listens: connection refused
    with running_bot(emu, mode="http", db=str(tmp_path / "bot.db"), kube=KubeClient(configuration)):
        before = len(emu.response_posts())
        result = emu.driver.slash_command("why checkout -n shop", user_id=ALICE, channel_id=OPS)
        assert result.ok and not result.timed_out
        final = wait_answer(emu, before, what="the refusal")
    assert final["response_type"] == "ephemeral"
    assert "cannot reach the Kubernetes API" in json.dumps(final)
