"""Socket Mode: Bolt's SocketModeHandler (builtin slack_sdk client) against the emulator's websocket server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env

CHANNEL = "C0OPS0001"
ALICE = "U0ALICE01"


class Bot:
    """A throwaway Bolt app that counts what it handled."""

    def __init__(self, emu: SlackEmulator) -> None:
        self.lock = threading.Lock()
        self.commands: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.failed_once: set[str] = set()
        self.app = App(client=WebClient(token=emu.bot_token, base_url=emu.api_url), signing_secret=emu.signing_secret)

        @self.app.middleware
        def flaky(body: dict[str, Any], next: Any) -> Any:
            # fail (-> no ack) the first delivery of events whose text says "flaky"
            event = body.get("event") or {}
            if "flaky" in str(event.get("text", "")) and body["event_id"] not in self.failed_once:
                self.failed_once.add(body["event_id"])
                raise RuntimeError("boom")
            return next()

        @self.app.command("/k8s")
        def k8s(ack: Any, command: dict[str, Any]) -> None:
            if command["text"] == "silent":
                return  # never acks -> Slack times out
            with self.lock:
                self.commands.append(command["text"])
            ack(f"got: {command['text']}")

        @self.app.event("app_mention")
        def mention(event: dict[str, Any], context: Any, request: Any) -> None:
            with self.lock:
                self.events.append({"text": event["text"], "retry": request.headers.get("x-slack-retry-num")})

        @self.app.view("scale")
        def scale(ack: Any) -> None:
            ack(response_action="errors", errors={"replicas": "must be a number"})

    def handler(self, emu: SlackEmulator, ping_interval: float = 10) -> SocketModeHandler:
        handler = SocketModeHandler(self.app, emu.app_token, ping_interval=ping_interval)
        handler.connect()
        return handler


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with clean_slack_env(), SlackEmulator(ack_timeout=0.6) as e:
        e.add_user(ALICE, name="alice")
        e.add_channel(CHANNEL, "ops", members=[ALICE], bot_member=True)
        e.driver.configure(mode="socket")
        yield e


@pytest.fixture
def bot(emu: SlackEmulator) -> Iterator[tuple[Bot, SocketModeHandler]]:
    bot = Bot(emu)
    handler = bot.handler(emu)
    emu.socket.wait_connected(1)
    yield bot, handler
    handler.close()


def test_hello_command_ack_payload(emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]) -> None:
    res = emu.driver.slash_command("why web", user_id=ALICE, channel_id=CHANNEL)
    assert res.ok and res.payload == {"text": "got: why web"} and res.text == "got: why web"
    assert res.envelope is not None and res.envelope.ack_frames == 1
    assert [e.text for e in emu.ephemerals(CHANNEL, ALICE)] == ["got: why web"]
    assert emu.calls("apps.connections.open")[0].token == emu.app_token
    [conn] = emu.socket.live()
    assert conn.frames and conn.frames[0]["envelope_id"] == res.envelope.envelope_id


def test_reconnect_after_disconnect_no_lost_or_duplicate_command(
    emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]
) -> None:
    b, _ = bot
    assert emu.driver.slash_command("one", user_id=ALICE, channel_id=CHANNEL).ok
    old = emu.socket.disconnect("refresh_requested", close_after=0.5)
    # sent right away: the draining socket is skipped, so it waits for the new one
    pending = emu.driver.slash_command("two", user_id=ALICE, channel_id=CHANNEL, wait=False)
    emu.wait_for(lambda: any(c.id != old.id for c in emu.socket.live()), what="a fresh socket")
    res = emu.socket.wait(pending.envelope)  # type: ignore[arg-type]
    assert res.acked and res.connection_id != old.id and res.ack_payload == {"text": "got: two"}
    assert emu.driver.slash_command("three", user_id=ALICE, channel_id=CHANNEL).ok
    assert b.commands == ["one", "two", "three"]
    assert emu.socket.duplicate_acks == [] and emu.socket.pending() == []
    assert len(emu.calls("apps.connections.open")) >= 2


def test_abrupt_drop_queues_until_reconnect(emu: SlackEmulator) -> None:
    # The builtin client only notices a dead TCP socket through its ping/pong check
    # (stale after 4 x ping_interval), so use a short interval here.
    b = Bot(emu)
    handler = b.handler(emu, ping_interval=0.3)
    try:
        emu.socket.wait_connected(1)
        dropped = emu.socket.drop()
        res = emu.driver.slash_command("after drop", user_id=ALICE, channel_id=CHANNEL, timeout=15)
        assert res.ok and res.envelope is not None and res.envelope.connection_id != dropped.id
        assert b.commands == ["after drop"]
    finally:
        handler.close()


def test_command_sent_before_any_socket_is_delivered_on_connect(emu: SlackEmulator) -> None:
    queued = emu.driver.slash_command("early", user_id=ALICE, channel_id=CHANNEL, wait=False)
    assert emu.socket.pending() and queued.envelope is not None
    b = Bot(emu)
    handler = b.handler(emu)
    try:
        env = emu.socket.wait(queued.envelope)
        assert env.acked and b.commands == ["early"]
    finally:
        handler.close()


def test_unacked_command_times_out(emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]) -> None:
    res = emu.driver.slash_command("silent", user_id=ALICE, channel_id=CHANNEL)
    assert res.timed_out and not res.ok and res.status is None
    assert res.envelope is not None and res.envelope.retry is None  # commands are not redelivered


def test_event_redelivered_with_retry_attempt_after_missing_ack(
    emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]
) -> None:
    b, _ = bot
    res = emu.driver.app_mention(f"<@{emu.workspace.bot_user_id}> flaky", ALICE, CHANNEL)
    assert res.ok and res.envelope is not None
    assert (res.envelope.retry_attempt, res.envelope.retry_reason) == (1, "timeout")
    assert b.events == [{"text": f"<@{emu.workspace.bot_user_id}> flaky", "retry": ["1"]}]
    first = emu.socket.envelopes[0]
    assert first.status == "timeout" and first.retry is res.envelope


def test_unhandled_event_gives_up_after_three_retries(emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]) -> None:
    res = emu.driver.send_event({"type": "reaction_added", "user": ALICE}, timeout=10)
    assert res.timed_out and res.envelope is not None and res.envelope.retry_attempt == 3
    assert [e.retry_attempt for e in emu.socket.envelopes] == [0, 1, 2, 3]


def test_view_submission_ack_payload(emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]) -> None:
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)
    trigger = emu.workspace.mint_trigger()
    view = client.views_open(
        trigger_id=trigger,
        view={
            "type": "modal",
            "callback_id": "scale",
            "title": {"type": "plain_text", "text": "Scale"},
            "submit": {"type": "plain_text", "text": "Go"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "replicas",
                    "label": {"type": "plain_text", "text": "n"},
                    "element": {"type": "plain_text_input", "action_id": "n"},
                }
            ],
        },
    )["view"]
    res = emu.driver.submit_view(view["id"], {"n": "lots"}, user_id=ALICE)
    assert res.payload == {"response_action": "errors", "errors": {"replicas": "must be a number"}}
    assert res.envelope is not None and res.envelope.accepts_response_payload is True
    assert emu.view(view["id"])["_state"] == "open"


def test_several_live_sockets_and_fresh_urls(emu: SlackEmulator, bot: tuple[Bot, SocketModeHandler]) -> None:
    second = Bot(emu).handler(emu)
    try:
        emu.socket.wait_connected(2)
        urls = [c.response["url"] for c in emu.calls("apps.connections.open")]
        assert len(set(urls)) == len(urls) >= 2
        assert emu.driver.slash_command("x", user_id=ALICE, channel_id=CHANNEL).ok
    finally:
        second.close()
