"""Block Kit rendering: inside Slack's limits, and cluster data cannot inject formatting or pings."""

from __future__ import annotations

import json

from bot.model import Answer, Button
from bot.slack.blocks import (
    ACTION_CONFIRM,
    MAX_BLOCKS,
    SECTION_TEXT,
    escape_mrkdwn,
    render_answer,
    render_error,
)
from k8sbot.terminal import render_text


def _texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if block["type"] == "section":
            out.append(block["text"]["text"])
        elif block["type"] == "context":
            out.extend(element["text"] for element in block["elements"])
    return out


def test_escaping_neutralises_mentions_links_and_formatting() -> None:
    text = escape_mrkdwn("<!here> <@U123> <https://evil|click> *bold* _it_ ~s~ `code` a&b")
    assert "<" not in text and ">" not in text
    assert "&lt;!here&gt;" in text and "a&amp;b" in text
    assert "*bold*" not in text and "_it_" not in text and "`code`" not in text


def test_escaping_keeps_names_with_inner_underscores_intact() -> None:
    assert escape_mrkdwn("[image_pull, 95%] my_app") == "[image_pull, 95%] my_app"
    assert escape_mrkdwn("_x") != "_x" and escape_mrkdwn("x_") != "x_"


def test_long_answer_is_trimmed_with_a_note_and_stays_within_limits() -> None:
    lines = tuple(f"pod-{i} " + "x" * 300 for i in range(3000))
    message = render_answer(Answer(verb="logs", data={}, title="logs", lines=lines, attachments=(("a.log", "…"),)))
    assert len(message.blocks) <= MAX_BLOCKS
    for text in _texts(message.blocks):
        assert len(text) <= SECTION_TEXT
    notes = [t for t in _texts(message.blocks) if t.startswith("…")]
    assert len(notes) == 1 and "more lines" in notes[0] and "attached" in notes[0]
    shown = sum(t.count("pod-") for t in _texts(message.blocks))
    left_out = int(notes[0].split()[0].lstrip("…"))
    assert shown + left_out == 3000
    assert [(f.filename, f.title, f.content) for f in message.files] == [("a.log", "a.log", "…")]


def test_a_single_huge_line_is_clipped() -> None:
    message = render_answer(Answer(verb="x", data={}, title="t" * 500, lines=("y" * 10_000,)))
    assert len(message.blocks[0]["text"]["text"]) <= 150
    assert all(len(t) <= SECTION_TEXT for t in _texts(message.blocks))


def test_confirmation_renders_confirm_and_cancel_buttons_with_the_command() -> None:
    answer = Answer(
        verb="rollback",
        data={"confirm": {"command": "rollback checkout -n shop --to-revision 1 --action-id abc", "text": "t"}},
        title="Roll back?",
    )
    actions = next(b for b in render_answer(answer).blocks if b["type"] == "actions")
    confirm = actions["elements"][0]
    assert confirm["action_id"] == ACTION_CONFIRM
    assert confirm["value"] == "rollback checkout -n shop --to-revision 1 --action-id abc"
    assert actions["elements"][1]["text"]["text"] == "Cancel"


def test_buttons_carry_command_text_and_button_text_is_clipped() -> None:
    answer = Answer(verb="why", data={}, title="t", buttons=(Button("L" * 200, "logs checkout -n shop"),))
    element = next(b for b in render_answer(answer).blocks if b["type"] == "actions")["elements"][0]
    assert element["value"] == "logs checkout -n shop"
    assert len(element["text"]["text"]) <= 75


def test_cluster_name_is_shown_and_escaped() -> None:
    message = render_answer(Answer(verb="x", data={}, title="t"), cluster_name="prod<!here>")
    assert any("prod&lt;!here&gt;" in t for t in _texts(message.blocks))


def test_error_is_private_and_includes_usage() -> None:
    message = render_error("bad <input>", usage="why <target>")
    assert message.private
    assert "bad &lt;input&gt;" in message.blocks[0]["text"]["text"]
    assert "why &lt;target&gt;" in message.blocks[0]["text"]["text"]
    json.dumps(message.blocks)


def test_text_rendering_for_the_terminal() -> None:
    answer = Answer(verb="x", data={"confirm": {"command": "c", "text": "will scale"}}, title="T", lines=("a",))
    assert render_text(answer).splitlines() == ["T", "a", "", "will scale"]
