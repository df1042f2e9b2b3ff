"""Block Kit limits enforced server-side (invalid_blocks / invalid_arguments) and mrkdwn lint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slack_emulator import SlackEmulator, lint_mrkdwn, validate_blocks
from slack_emulator.testing import clean_slack_env


def txt(text: str, kind: str = "plain_text") -> dict[str, Any]:
    return {"type": kind, "text": text}


def button(text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": txt(text), "action_id": "go", **extra}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": txt(text, "mrkdwn")}


CONFIRM = {"title": txt("Sure?"), "text": txt("Really"), "confirm": txt("Yes"), "deny": txt("No")}

BAD_BLOCKS: list[tuple[str, list[Any], str]] = [
    ("too many blocks", [{"type": "divider"}] * 51, "/blocks"),
    ("section text > 3000", [section("x" * 3001)], "/blocks/0/text/text"),
    ("section fields > 10", [{"type": "section", "fields": [txt("a")] * 11}], "/blocks/0/fields"),
    ("field > 2000", [{"type": "section", "fields": [txt("a" * 2001)]}], "/blocks/0/fields/0/text"),
    ("header > 150", [{"type": "header", "text": txt("h" * 151)}], "/blocks/0/text/text"),
    ("header mrkdwn", [{"type": "header", "text": txt("h", "mrkdwn")}], "/blocks/0/text/type"),
    ("context > 10", [{"type": "context", "elements": [txt("c")] * 11}], "/blocks/0/elements"),
    ("actions > 25", [{"type": "actions", "elements": [button()] * 26}], "/blocks/0/elements"),
    ("button text > 75", [{"type": "actions", "elements": [button("b" * 76)]}], "/blocks/0/elements/0/text/text"),
    (
        "action_id > 255",
        [{"type": "actions", "elements": [button(action_id="a" * 256)]}],
        "/blocks/0/elements/0/action_id",
    ),
    ("block_id > 255", [{"type": "divider", "block_id": "b" * 256}], "/blocks/0/block_id"),
    (
        "button value > 2000",
        [{"type": "actions", "elements": [button(value="v" * 2001)]}],
        "/blocks/0/elements/0/value",
    ),
    (
        "button url > 3000",
        [{"type": "actions", "elements": [button(url="https://x/" + "u" * 3000)]}],
        "/blocks/0/elements/0/url",
    ),
    (
        "confirm title > 100",
        [{"type": "actions", "elements": [button(confirm={**CONFIRM, "title": txt("t" * 101)})]}],
        "/blocks/0/elements/0/confirm/title/text",
    ),
    (
        "confirm confirm > 30",
        [{"type": "actions", "elements": [button(confirm={**CONFIRM, "confirm": txt("c" * 31)})]}],
        "/blocks/0/elements/0/confirm/confirm/text",
    ),
    ("missing type", [{"text": txt("x")}], "/blocks/0"),
    ("unknown type", [{"type": "sektion", "text": txt("x")}], "/blocks/0/type"),
    ("block not object", ["divider"], "/blocks/0"),
    ("text not object", [{"type": "section", "text": "plain string"}], "/blocks/0/text"),
]


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with clean_slack_env(), SlackEmulator() as e:
        e.add_user("U0ALICE01", name="alice")
        e.add_channel("C0OPS0001", "ops", members=["U0ALICE01"], bot_member=True)
        yield e


@pytest.fixture
def client(emu: SlackEmulator) -> WebClient:
    return WebClient(token=emu.bot_token, base_url=emu.api_url)


@pytest.mark.parametrize(("case", "blocks", "pointer"), BAD_BLOCKS, ids=[c[0] for c in BAD_BLOCKS])
def test_invalid_blocks_via_webclient(client: WebClient, case: str, blocks: list[Any], pointer: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0OPS0001", text="fallback", blocks=blocks)
    resp = exc.value.response
    assert resp.status_code == 200 and resp["error"] == "invalid_blocks"
    assert any(e.endswith(f"[json-pointer:{pointer}]") for e in resp["errors"]), resp["errors"]
    assert resp["response_metadata"]["messages"][0].startswith("[ERROR] ")


def test_section_text_error_wording(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C0OPS0001", text="t", blocks=[section("x" * 3001)])
    assert exc.value.response["errors"] == ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]


def test_limits_exactly_at_max_are_accepted(client: WebClient) -> None:
    blocks = [
        section("x" * 3000),
        {"type": "header", "text": txt("h" * 150)},
        {"type": "actions", "elements": [button("b" * 75, value="v" * 2000)] * 25},
        {"type": "context", "elements": [txt("c")] * 10},
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    assert client.chat_postMessage(channel="C0OPS0001", text="ok", blocks=blocks)["ok"]


def test_chat_update_and_ephemeral_validate_too(emu: SlackEmulator, client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C0OPS0001", text="x")["ts"]
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        client.chat_update(channel="C0OPS0001", ts=ts, text="x", blocks=[{"type": "divider"}] * 51)
    with pytest.raises(SlackApiError, match="invalid_blocks"):
        client.chat_postEphemeral(channel="C0OPS0001", user="U0ALICE01", text="x", blocks=[section("")])


def modal(**over: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "title": txt("Title"),
        "submit": txt("Go"),
        "close": txt("Cancel"),
        "blocks": [section("hi")],
    }
    view.update(over)
    return view


@pytest.mark.parametrize(
    ("over", "pointer"),
    [
        ({"title": txt("t" * 25)}, "/view/title/text"),
        ({"submit": txt("s" * 25)}, "/view/submit/text"),
        ({"close": txt("c" * 25)}, "/view/close/text"),
        ({"private_metadata": "m" * 3001}, "/view/private_metadata"),
        ({"blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
    ],
)
def test_view_limits_are_invalid_arguments(
    emu: SlackEmulator, client: WebClient, over: dict[str, Any], pointer: str
) -> None:
    trigger = emu.workspace.mint_trigger()
    with pytest.raises(SlackApiError) as exc:
        client.views_open(trigger_id=trigger, view=modal(**over))
    resp = exc.value.response
    assert resp["error"] == "invalid_arguments"  # Slack reports view schema problems this way
    assert any(m.endswith(f"[json-pointer:{pointer}]") for m in resp["response_metadata"]["messages"])


def test_modal_accepts_100_blocks(emu: SlackEmulator, client: WebClient) -> None:
    trigger = emu.workspace.mint_trigger()
    assert client.views_open(trigger_id=trigger, view=modal(blocks=[{"type": "divider"}] * 100))["ok"]


def test_lint_records_raw_brackets_and_pings(emu: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(
        channel="C0OPS0001",
        text="<!channel> pod <none> restarted; see <https://x|logs>",
        blocks=[section("cpu > 90% for <@U0ALICE01> and <!subteam^S0ONCALL1>")],
    )
    kinds = sorted((lint.kind, lint.pointer) for lint in emu.lints())
    assert kinds == [
        ("broadcast_ping", "/text"),
        ("raw_angle_bracket", "/blocks/0/text/text"),
        ("raw_angle_bracket", "/text"),
    ]
    assert emu.lints("broadcast_ping")[0].snippet == "<!channel>"
    assert emu.messages("C0OPS0001")  # lint never rejects


def test_lint_clean_text() -> None:
    assert lint_mrkdwn("&lt;none&gt; <@U1> <#C1|ops> <mailto:a@b.c|mail> <!date^1^{date}|x>\n> quote", "/t") == []
    assert validate_blocks([{"type": "divider"}]).ok
