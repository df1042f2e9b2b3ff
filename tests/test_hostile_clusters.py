"""Hostile `--cluster` values through Slack: anyone in the workspace can type any text after it.

A two-cluster bot (its kubeconfigs point at a closed port on 127.0.0.1: nothing here needs a cluster)
runs behind the Slack emulator. A value that is not a cluster name is refused in the ack, privately,
quoted inert; a well-formed name that is not configured is refused after the ack, privately, naming the
configured clusters; neither reaches a cluster or pings anyone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, running_bot, seeded_emulator, wait_answer
from tests.wiring_helpers import unanswered_kubeconfig

pytestmark = pytest.mark.hostile

POLICY = """
roles:
  viewer: [why, status, logs, describe, changes, timeline, can-i]
teams:
  ops:
    channel: C0OPS0001
    namespaces: ["*"]
    members: {users: [U0ALICE01]}
    role: viewer
defaults: {role: null}
"""


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlackEmulator, BotRunner]]:
    tmp = tmp_path_factory.mktemp("hostile-clusters")
    (tmp / "permissions.yaml").write_text(POLICY)
    emu = seeded_emulator()
    try:
        with running_bot(
            emu,
            mode="http",
            db=str(tmp / "bot.db"),
            clusters=[
                {"name": "prod-eu", "kubeconfig": unanswered_kubeconfig(tmp / "eu.yaml")},
                {"name": "prod-us", "kubeconfig": unanswered_kubeconfig(tmp / "us.yaml")},
            ],
            permissions=str(tmp / "permissions.yaml"),
        ) as runner:
            yield emu, runner
    finally:
        emu.stop()


def _shown(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


def _inert(text: str) -> None:
    assert "<!channel>" not in text and "<!here>" not in text and "<!everyone>" not in text
    assert "<@U" not in text and "<#C" not in text and "<http" not in text


@pytest.mark.parametrize(
    "value",
    [
        "<!channel>",
        "<@U0BOB0001>",
        "<#C0OPS0001|ops>",
        "<https://evil.example|prod-eu>",
        "prod-eu\nALLOWED",
        "PROD-EU",
        "../prod-eu",
        "prod_eu",
        "a" * 300,
        "prod-eu\u202e",
        "`prod-eu`",
    ],
)
def test_a_value_that_is_not_a_cluster_name_is_refused_in_the_ack_inert(
    bot: tuple[SlackEmulator, BotRunner], value: str
) -> None:
    emu, _ = bot
    result = emu.driver.slash_command(f"why checkout -n shop --cluster {value}", user_id=ALICE, channel_id=OPS)
    payload = result.payload
    assert payload["response_type"] == "ephemeral"
    text = _shown(payload)
    refusals = ("is not a valid cluster name", "needs a cluster name", "couldn't read", "I expected one target")
    assert any(refusal in text for refusal in refusals), text
    _inert(text)


@pytest.mark.parametrize("value", ["staging", "prod-euu", "x" * 63])
def test_a_well_formed_unknown_cluster_is_refused_privately_naming_the_configured_ones(
    bot: tuple[SlackEmulator, BotRunner], value: str
) -> None:
    emu, _ = bot
    before = len(emu.response_posts())
    emu.driver.slash_command(f"status -n shop --cluster {value}", user_id=ALICE, channel_id=OPS)
    answer = wait_answer(emu, before, what="the refusal")
    assert answer["response_type"] == "ephemeral"
    text = _shown(answer)
    assert "I don't know a cluster" in text and "prod-eu, prod-us" in text
    _inert(text)


def test_no_cluster_in_a_channel_without_a_default_is_a_question_not_a_guess(
    bot: tuple[SlackEmulator, BotRunner],
) -> None:
    emu, runner = bot
    before = len(emu.response_posts())
    emu.driver.slash_command("status -n shop", user_id=ALICE, channel_id=OPS)
    answer = wait_answer(emu, before, what="the question back")
    assert answer["response_type"] == "ephemeral" and "Which cluster?" in _shown(answer)
    assert runner.core is not None
    assert all(not c.audit.since(None, limit=10) for c in runner.core.clusters)  # nothing ran anywhere
