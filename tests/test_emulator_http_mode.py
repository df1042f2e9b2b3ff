"""HTTP mode: the emulator signs and sends Slack traffic to a real (throwaway) Bolt app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from slack_emulator import Clock, SlackEmulator
from slack_emulator.testing import BoltHttpServer, clean_slack_env

CHANNEL = "C0OPS0001"
ALICE = "U0ALICE01"


def build_app(emu: SlackEmulator, seen: dict[str, list[Any]]) -> App:
    app = App(client=WebClient(token=emu.bot_token, base_url=emu.api_url), signing_secret=emu.signing_secret)

    @app.command("/k8s")
    def k8s(ack: Any, command: dict[str, Any], respond: Any, client: WebClient) -> None:
        seen["commands"].append(command)
        if command["text"] == "modal":
            ack()
            client.views_open(
                trigger_id=command["trigger_id"],
                view={
                    "type": "modal",
                    "callback_id": "scale",
                    "title": {"type": "plain_text", "text": "Scale"},
                    "submit": {"type": "plain_text", "text": "Scale"},
                    "private_metadata": "deploy/web",
                    "blocks": [
                        {
                            "type": "input",
                            "block_id": "replicas",
                            "label": {"type": "plain_text", "text": "Replicas"},
                            "element": {"type": "plain_text_input", "action_id": "n"},
                        }
                    ],
                },
            )
            return
        ack(f"got: {command['text']}")
        respond(response_type="in_channel", text=f"result for {command['text']}")

    @app.action("restart")
    def restart(ack: Any, body: dict[str, Any], respond: Any) -> None:
        ack()
        seen["actions"].append(body)
        respond(replace_original=True, text=f"restarted {body['actions'][0]['value']}")

    @app.view("scale")
    def scale(ack: Any, view: dict[str, Any]) -> None:
        seen["views"].append(view)
        value = view["state"]["values"]["replicas"]["n"]["value"]
        if not value.isdigit():
            ack(response_action="errors", errors={"replicas": "must be a number"})
        else:
            ack()

    @app.event("app_mention")
    def mention(event: dict[str, Any], say: Any) -> None:
        say(text="looking", thread_ts=event["ts"])

    return app


@pytest.fixture
def env() -> Iterator[tuple[SlackEmulator, dict[str, list[Any]], str]]:
    with clean_slack_env(), SlackEmulator(clock=Clock()) as emu:
        emu.add_user(ALICE, name="alice")
        emu.add_channel(CHANNEL, "ops", members=[ALICE], bot_member=True)
        seen: dict[str, list[Any]] = {"commands": [], "actions": [], "views": []}
        with BoltHttpServer(build_app(emu, seen)) as server:
            emu.driver.configure(mode="http", url=server.url)
            yield emu, seen, server.url


def test_slash_command_signed_form_and_ack_text(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, seen, _ = env
    res = emu.driver.slash_command("why web", user_id=ALICE, channel_id=CHANNEL)
    assert res.status == 200 and res.body == "got: why web"
    cmd = seen["commands"][0]
    assert cmd["command"] == "/k8s" and cmd["channel_name"] == "ops" and cmd["trigger_id"]
    assert cmd["response_url"].startswith(emu.base_url + "/commands/")
    # the text ack is shown to the invoking user only; respond(in_channel) posts to the channel
    assert [e.text for e in emu.ephemerals(CHANNEL, ALICE)] == ["got: why web"]
    emu.wait_for(lambda: emu.messages(CHANNEL), what="the in_channel response")
    assert emu.messages(CHANNEL)[0]["text"] == "result for why web"
    assert emu.calls("auth.test")  # Bolt verified the token against the emulator


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        ("bad_signature", 401),
        ("stale_timestamp", 401),
        ("no_signature", 401),
        ("future_timestamp", 200),
        ("non_numeric_timestamp", 500),
    ],
)
def test_signature_checks(env: tuple[SlackEmulator, dict[str, list[Any]], str], tamper: str, status: int) -> None:
    emu, seen, _ = env
    res = emu.driver.slash_command("x", user_id=ALICE, channel_id=CHANNEL, tamper=tamper)
    assert res.status == status
    if status == 401:
        assert res.json() == {"error": "invalid request"} and not seen["commands"]


def test_bolt_payload_quirk_is_not_masked(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, _, _ = env
    assert emu.driver.slash_command("show payload", user_id=ALICE, channel_id=CHANNEL).status == 404


def test_click_uses_stored_button_value_and_replaces_original(
    env: tuple[SlackEmulator, dict[str, list[Any]], str],
) -> None:
    emu, seen, _ = env
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    posted = client.chat_postMessage(
        channel=CHANNEL,
        text="web is crashlooping",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "web is crashlooping"}},
            {
                "type": "actions",
                "block_id": "acts",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "restart",
                        "text": {"type": "plain_text", "text": "Restart"},
                        "value": "deploy/web",
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Sure?"},
                            "text": {"type": "plain_text", "text": "Restart web"},
                            "confirm": {"type": "plain_text", "text": "Yes"},
                            "deny": {"type": "plain_text", "text": "No"},
                        },
                    }
                ],
            },
        ],
    )
    denied = emu.driver.click(CHANNEL, posted["ts"], "restart", ALICE, confirm=False)
    assert denied.sent is False and not seen["actions"]
    res = emu.driver.click(CHANNEL, posted["ts"], "restart", ALICE)
    assert res.status == 200 and res.body == ""
    body = seen["actions"][0]
    assert body["actions"][0]["value"] == "deploy/web" and body["actions"][0]["block_id"] == "acts"
    assert body["container"] == {
        "type": "message",
        "message_ts": posted["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert body["channel"]["id"] == CHANNEL and body["message"]["ts"] == posted["ts"]
    emu.wait_for(
        lambda: emu.message(CHANNEL, posted["ts"])["text"] == "restarted deploy/web",
        what="replace_original via response_url",
    )
    assert "blocks" not in emu.message(CHANNEL, posted["ts"])
    assert emu.edits(CHANNEL, posted["ts"])[0]["text"] == "web is crashlooping"


def test_response_url_five_uses_and_expiry(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, _, _ = env
    res = emu.driver.slash_command("a", user_id=ALICE, channel_id=CHANNEL)
    assert res.response_url
    emu.wait_for(lambda: emu.messages(CHANNEL), what="the bot's own respond()")  # 1 use
    hook = WebhookClient(res.response_url)
    statuses = [hook.send(text=f"update {i}").status_code for i in range(5)]
    assert statuses == [200, 200, 200, 200, 404]
    sixth = hook.send(text="too many")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    fresh = emu.driver.slash_command("b", user_id=ALICE, channel_id=CHANNEL)
    emu.wait_for(lambda: len(emu.messages(CHANNEL)) == 2, what="second command's respond()")
    emu.clock.advance(30 * 60 + 1)
    late = WebhookClient(fresh.response_url).send(text="late")
    assert (late.status_code, late.body) == (404, "expired_url")
    bad = WebhookClient(fresh.response_url.replace("/commands/", "/commands/x")).send(text="?")
    assert bad.status_code == 404
    results = [p.result for p in emu.response_posts()]
    assert results.count("ok") == 6 and results[-3:] == ["ok", "expired_url", "invalid_url"]
    assert "used_url" in results


def test_response_url_delete_original(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, _, _ = env
    res = emu.driver.slash_command("a", user_id=ALICE, channel_id=CHANNEL)
    emu.wait_for(lambda: emu.messages(CHANNEL), what="in_channel response")
    resp = WebhookClient(res.response_url).send_dict({"delete_original": True})
    assert resp.status_code == 200 and resp.body == "ok"
    assert emu.messages(CHANNEL) == []


def test_modal_open_trigger_rules_and_submission(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, seen, _ = env
    res = emu.driver.slash_command("modal", user_id=ALICE, channel_id=CHANNEL)
    assert res.status == 200
    [view] = emu.wait_for(lambda: emu.views(ALICE, "open"), what="the modal")
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    with pytest.raises(SlackApiError, match="exchanged_trigger_id"):
        client.views_open(
            trigger_id=res.trigger_id,
            view={"type": "modal", "title": {"type": "plain_text", "text": "again"}, "blocks": []},
        )
    stale = emu.workspace.mint_trigger()
    emu.clock.advance(3.5)
    with pytest.raises(SlackApiError, match="expired_trigger_id"):
        client.views_open(
            trigger_id=stale, view={"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
        )
    with pytest.raises(SlackApiError, match="invalid_trigger_id"):
        client.views_open(
            trigger_id="nonsense", view={"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
        )
    bad = emu.driver.submit_view(view.id, {"replicas": {"n": "lots"}})
    assert bad.status == 200 and bad.json() == {"response_action": "errors", "errors": {"replicas": "must be a number"}}
    assert emu.view(view.id)["_state"] == "open" and emu.view_errors[-1]["errors"] == {"replicas": "must be a number"}
    good = emu.driver.submit_view(view.id, {"n": "3"})
    assert good.status == 200 and good.body == ""
    assert emu.view(view.id)["_state"] == "closed"
    submitted = seen["views"][-1]
    assert submitted["type"] == "modal" and submitted["private_metadata"] == "deploy/web"
    assert submitted["state"]["values"] == {"replicas": {"n": {"type": "plain_text_input", "value": "3"}}}


def test_events_and_url_verification(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, _, _ = env
    res = emu.driver.app_mention(f"<@{emu.workspace.bot_user_id}> why is web down", ALICE, CHANNEL)
    assert res.status == 200 and res.body == ""
    mention_ts = res.request["event"]["ts"]  # type: ignore[index]
    emu.wait_for(lambda: len(emu.thread(CHANNEL, mention_ts)) == 2, what="threaded reply to the mention")
    assert emu.thread(CHANNEL, mention_ts)[1]["text"] == "looking"
    ver = emu.driver.url_verification("abc")
    assert ver.status == 200 and json.loads(ver.body) == {"challenge": "abc"}
    assert emu.driver.url_verification("abc", tamper="bad_signature").status == 401


def test_unhandled_event_http_retries_with_headers(env: tuple[SlackEmulator, dict[str, list[Any]], str]) -> None:
    emu, _, _ = env
    res = emu.driver.send_event({"type": "reaction_added", "user": ALICE}, retries=2)
    assert res.status == 404  # Bolt: unhandled request, Slack would retry
    assert res.request["type"] == "event_callback"  # type: ignore[index]
