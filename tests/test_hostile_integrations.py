"""Hostile change events through the public paths: `POST /integrations/changes` on the real bot, then
`/k8s changes` through the Slack emulator. Mentions, broadcasts, links and formatting in summary,
actor, link and field values arrive inert; bodies built to hurt the parser are answered, not crashed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_integrations_changes import TOKEN, event, post, stored

from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, running_bot, wait_answer

pytestmark = pytest.mark.hostile

HOSTILE = [
    "<!channel> deploy",
    "<!here|here> now",
    "<@U0ALICE01> did it",
    "<!subteam^S123|@oncall>",
    "<https://evil.example.com|click me>",
    "*bold* _it_ ~strike~ `code`",
    "&lt;!channel&gt; pre-escaped",
    "\u202eoverride \u200b zero width",
]


@pytest.fixture
def bot(slack: SlackEmulator, tmp_path: Path) -> Iterator[BotRunner]:
    with running_bot(slack, mode="http", db=str(tmp_path / "bot.db"), integration_token=TOKEN) as runner:
        yield runner


def slack_changes(emu: SlackEmulator, text: str) -> dict[str, Any]:
    before = len(emu.response_posts())
    result = emu.driver.slash_command(text, user_id=ALICE, channel_id=OPS)
    assert result.ok and not result.timed_out
    return wait_answer(emu, before, what=f"the answer to /k8s {text}")


def test_hostile_text_in_summary_actor_and_values_reaches_slack_inert(bot: BotRunner, slack: SlackEmulator) -> None:
    for number, text in enumerate(HOSTILE):
        payload = event(
            id=f"hostile-{number}",
            summary=text,
            actor=text,
            link=f"https://ci.example.com/run/{number}?q=%3C!channel%3E&x=_y_",
            fields=[{"path": "flags.x", "before": text, "after": text}],
        )
        status, answer = post(bot.url, payload)
        assert status == 200, answer
    message = slack_changes(slack, "changes -n shop --since 1h")
    blocks = json.dumps(message["blocks"])
    for token in ("<!channel>", "<!here", "<@U0ALICE01>", "<!subteam", "<https://evil"):
        assert token not in blocks, token
    assert "&lt;!channel&gt; deploy" in blocks
    assert "https://ci.example.com/run/0?q=%3C!channel%3E&amp;x=" in blocks
    assert slack.lints(kind="broadcast_ping") == []
    assert [lint for lint in slack.lints() if "mention" in str(lint).lower()] == []


@pytest.mark.parametrize(
    "link",
    [
        "https://ci.example.com/<!channel>",
        "https://ci.example.com/a|b",
        "javascript://ci.example.com/%0Aalert(1)",
        "data:text/html,<script>",
        "https://ci.example.com/\u0000",
        "https://user:token@ci.example.com/",
        " https://ci.example.com/",
    ],
)
def test_a_link_that_could_carry_a_slack_token_or_a_credential_is_refused(bot: BotRunner, link: str) -> None:
    status, answer = post(bot.url, event(id="l1", link=link))
    assert status == 400 and answer["error"].startswith("link:")
    assert stored(bot) == []


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("deeply nested arrays", b"[" * 200_000 + b"]" * 200_000),
        ("deeply nested objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        ("a huge number", b'{"id": 1' + b"0" * 500_000 + b"}"),
        ("many fields", json.dumps(event(fields=[{"path": f"p{i}", "after": i} for i in range(20_000)])).encode()),
        ("a lone surrogate", b'{"id": "a", "source": "ci", "summary": "\\ud800"}'),
    ],
)
def test_bodies_built_to_hurt_the_parser_are_answered_and_store_nothing(bot: BotRunner, name: str, raw: bytes) -> None:
    status, answer = post(bot.url, None, raw=raw)
    assert status == 400, (name, status, answer)
    assert answer["ok"] is False
    assert stored(bot) == []
    # and the bot still serves the next one
    assert post(bot.url, event(id=f"after-{len(raw)}"))[0] == 200


@pytest.mark.parametrize(
    "cluster",
    [
        "<!channel>",
        "k8sbot-dev\n<!here>",
        "../k8sbot-dev",
        "K8SBOT-DEV",
        " k8sbot-dev",
        "k8sbot-dev\u200b",
        "k8sbot-d\u0435v",  # a Cyrillic e
        "k8sbot-dev'; DROP TABLE changes;--",
        "*",
        "",
        "a" * 64,
        "x" * 100_000,
        12,
        0,
        True,
        ["k8sbot-dev"],
        {"name": "k8sbot-dev"},
    ],
    ids=lambda value: repr(value)[:30],
)
def test_a_hostile_cluster_value_is_refused_naming_the_field_and_stores_nothing(bot: BotRunner, cluster: Any) -> None:
    status, answer = post(bot.url, event(id="hostile-cluster", cluster=cluster))
    assert status == 400, answer
    assert answer["error"].startswith("cluster:"), answer["error"]
    if isinstance(cluster, str) and len(cluster) > 3:
        assert cluster not in answer["error"]  # never echoed: not a cluster name
    assert stored(bot) == []
    assert post(bot.url, event(id="after-hostile-cluster"))[0] == 200  # the bot still serves the next one


def test_a_null_cluster_is_the_only_cluster_as_if_left_out(bot: BotRunner) -> None:
    status, answer = post(bot.url, event(cluster=None))
    assert status == 200 and answer["change"]["cluster"] == bot.settings.cluster_name
