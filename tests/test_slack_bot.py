"""The Slack side end to end: the real bot (BotRunner) against the Slack emulator, in both modes."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.commands.context import VerbContext
from bot.commands.registry import VerbRegistry
from bot.commands.specs import FlagSpec, VerbSpec
from bot.model import Answer, Command
from bot.slack.blocks import MAX_BLOCKS, render_answer
from bot.slack.client import POST_BURST, POST_RATE, ChannelRateLimiter, Poster, make_web_client
from bot.slack.message import Message
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, OPS, answers_after, running_bot, wait_answer
from tests.wiring_helpers import VERBS

MODES = ["http", "socket"]


@pytest.fixture
def emu(slack: SlackEmulator) -> SlackEmulator:
    return slack


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "k8sbot.db")


class Runs(list[Command]):
    """The commands a test verb ran, and the registry it is in (the production verbs plus it)."""

    verbs: VerbRegistry


@pytest.fixture
def slow_verb() -> Runs:
    """A slow verb for exercising the plumbing (placeholder, ack deadline, trimming), in a registry of
    this test's own: pass `verbs=slow_verb.verbs` to the bot."""
    runs = Runs()
    spec = VerbSpec(
        name="plumbing",
        summary="test verb",
        usage="plumbing [--lines N] [--sleep S]",
        flags=(FlagSpec("lines", "int", "lines"), FlagSpec("sleep", "int", "seconds", maximum=10)),
        slow=True,
    )

    def run(ctx: VerbContext, command: Command) -> Answer:
        runs.append(command)
        time.sleep(int(command.flag("sleep", "0")))
        lines = tuple(f"line {i} <!here> *x*" + " pad" * 40 for i in range(int(command.flag("lines", "3"))))
        return Answer(verb="plumbing", data={"n": len(lines)}, title="Plumbing works", lines=lines)

    runs.verbs = VerbRegistry.of([*((VERBS.specs[n], VERBS.funcs[n]) for n in VERBS.specs), (spec, run)])
    return runs


def _ack_text(result: object) -> str:
    payload = result.payload  # type: ignore[attr-defined]
    blocks = payload.get("blocks") or []
    texts = [payload.get("text", "")]
    for block in blocks:
        if block.get("type") == "section":
            texts.append(block["text"]["text"])
        if block.get("type") == "header":
            texts.append(block["text"]["text"])
    return "\n".join(texts)


@pytest.mark.parametrize("mode", MODES)
def test_help_round_trip(emu: SlackEmulator, db: str, mode: str) -> None:
    with running_bot(emu, mode=mode, db=db):
        result = emu.driver.slash_command("help", user_id=ALICE, channel_id=OPS)
    assert result.ok and not result.timed_out
    assert result.payload["response_type"] == "ephemeral"
    text = _ack_text(result)
    assert "/k8s help [verb]" in text
    for name in VERBS.specs:
        assert f"/k8s {VERBS.specs[name].usage}".replace("<", "&lt;").replace(">", "&gt;") in text
    assert emu.lints(kind="broadcast_ping") == []


@pytest.mark.parametrize("mode", MODES)
def test_malformed_command_gets_private_usage(emu: SlackEmulator, db: str, mode: str) -> None:
    with running_bot(emu, mode=mode, db=db):
        result = emu.driver.slash_command("hlep me", user_id=ALICE, channel_id=OPS)
        unknown_flag = emu.driver.slash_command("help --verbose", user_id=ALICE, channel_id=OPS)
    assert result.ok and result.payload["response_type"] == "ephemeral"
    assert "Did you mean `help`?" in _ack_text(result)
    assert "has no option" in _ack_text(unknown_flag)
    assert "Traceback" not in _ack_text(result) + _ack_text(unknown_flag)
    assert emu.calls("chat.postMessage") == []
    assert emu.response_posts() == []


@pytest.mark.parametrize("tamper", ["bad_signature", "stale_timestamp", "no_signature"])
def test_bad_or_stale_signature_is_rejected_and_nothing_runs(
    emu: SlackEmulator, db: str, tamper: str, slow_verb: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.commands.dispatch")
    with running_bot(emu, mode="http", db=db, verbs=slow_verb.verbs):
        result = emu.driver.slash_command("plumbing", user_id=ALICE, channel_id=OPS, tamper=tamper)
        time.sleep(0.5)  # give a wrongly accepted command time to run, so the checks below would see it
    assert result.status == 401
    assert slow_verb == []
    assert emu.response_posts() == []
    assert not [r for r in caplog.records if r.getMessage().startswith("running")]


@pytest.mark.parametrize("mode", MODES)
def test_slow_verb_acks_at_once_posts_placeholder_then_replaces_it(
    emu: SlackEmulator, db: str, mode: str, slow_verb: Runs
) -> None:
    with running_bot(emu, mode=mode, db=db, verbs=slow_verb.verbs):
        result = emu.driver.slash_command("plumbing --sleep 4", user_id=ALICE, channel_id=OPS)
        assert result.ok and not result.timed_out  # acked well inside Slack's 3 seconds
        wait_answer(emu, 0, what="the answer", timeout=15)
    placeholder, removal, answer = emu.response_posts()
    assert placeholder.body["text"].startswith("Looking into") and placeholder.body["response_type"] == "ephemeral"
    assert removal.body["delete_original"] is True
    assert answer.body["response_type"] == "in_channel"
    assert [p.status for p in emu.response_posts()] == [200, 200, 200]
    assert [e for e in emu.ephemerals(OPS) if "Looking into" in e.message.get("text", "")] == []  # removed
    messages = emu.messages(OPS)
    assert len(messages) == 1 and messages[0]["blocks"][0]["text"]["text"] == "Plumbing works"
    assert len(slow_verb) == 1


def test_a_message_beyond_block_kit_limits_is_trimmed_never_rejected(
    emu: SlackEmulator, db: str, slow_verb: Runs
) -> None:
    with running_bot(emu, mode="http", db=db, verbs=slow_verb.verbs):
        emu.driver.slash_command("plumbing --lines 5000", user_id=ALICE, channel_id=OPS)
        wait_answer(emu, 0, what="the long answer", timeout=15)
    answer = emu.response_posts()[-1]
    assert answer.status == 200, answer.result
    blocks = emu.messages(OPS)[-1]["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert any("more lines" in json.dumps(b) for b in blocks)
    assert emu.lints(kind="broadcast_ping") == []  # "<!here>" in cluster data was escaped
    # The same message through chat.postMessage is accepted too.
    poster = Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url))
    message = render_answer(Answer(verb="x", data={}, title="t", lines=tuple("y" * 2900 for _ in range(500))))
    poster.post(OPS, message)
    assert [c.response.get("error") for c in emu.calls("chat.postMessage")] == [None]


def test_socket_mode_reconnects_and_loses_or_repeats_no_command(emu: SlackEmulator, db: str, slow_verb: Runs) -> None:
    with running_bot(emu, mode="socket", db=db, verbs=slow_verb.verbs):
        first = [emu.driver.slash_command(f"plumbing --lines {i}", user_id=ALICE, channel_id=OPS) for i in (1, 2)]
        emu.socket.disconnect("refresh_requested", close_after=0.5)
        during = [
            emu.driver.slash_command(f"plumbing --lines {i}", user_id=ALICE, channel_id=OPS, wait=False) for i in (3, 4)
        ]
        emu.wait_for(lambda: len(slow_verb) >= 4, timeout=30, what="the commands sent around the disconnect")
        emu.socket.wait_connected()
        emu.socket.drop()  # abrupt: no disconnect message; the client notices by its ping/pong check
        after = [
            emu.driver.slash_command(f"plumbing --lines {i}", user_id=ALICE, channel_id=OPS, wait=False) for i in (5, 6)
        ]
        emu.wait_for(lambda: len(slow_verb) >= 6, timeout=30, what="all six commands to run")
        emu.wait_for(lambda: len(answers_after(emu, 0)) >= 6, timeout=15, what="six answers")
        time.sleep(1)  # a duplicate delivery would show up here
    assert all(r.ok for r in first)
    assert sorted(int(c.flag("lines")) for c in slow_verb) == [1, 2, 3, 4, 5, 6]
    assert emu.socket.duplicate_acks == []
    assert len(during) == len(after) == 2


def test_429_from_chat_post_message_is_retried_after_retry_after(emu: SlackEmulator) -> None:
    emu.rate_limit("chat.postMessage", retry_after=1, times=1)
    poster = Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url))
    ts = poster.post(OPS, Message(text="alert", blocks=[]))
    calls = emu.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= 1.0
    assert [m["ts"] for m in emu.messages(OPS)] == [ts]


def test_one_channel_never_gets_more_than_the_posting_rate(emu: SlackEmulator) -> None:
    """More messages than Slack's burst, back to back, to one channel: the bot's default pacing gets them
    all there, in order, without a single 429 (a 429 would be retried, so look at the emulator's calls)."""
    emu.enforce_posting_rate(per_second=1.0, burst=3)  # Slack's documented ~1 msg/s per channel, short bursts
    poster = Poster(make_web_client(token=emu.bot_token, base_url=emu.api_url))
    texts = [f"message {i}" for i in range(5)]
    for text in texts:
        poster.post(OPS, Message(text=text, blocks=[]))
    assert [c.status for c in emu.calls("chat.postMessage")] == [200] * len(texts)  # nothing rejected
    assert [m["text"] for m in emu.messages(OPS)] == texts  # nothing lost, nothing reordered


def test_channel_rate_limiter_bursts_then_paces_each_channel() -> None:
    """Pure, on a fake clock: `POST_BURST` messages go at once, then one every 1/`POST_RATE` seconds."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = ChannelRateLimiter(clock=lambda: now[0], sleep=sleep)
    sent = []
    for _ in range(6):
        limiter.acquire(OPS)
        sent.append(now[0])
    assert sent[:POST_BURST] == [0.0] * POST_BURST
    gaps = [sent[i] - sent[i - 1] for i in range(POST_BURST, len(sent))]
    assert gaps == pytest.approx([1 / POST_RATE] * len(gaps))
    assert limiter.acquire("C0OTHER01") == 0.0  # another channel has its own bucket


def test_default_pacing_keeps_a_margin_under_slacks_posting_rate(emu: SlackEmulator) -> None:
    """Deterministic, no sleeping: the default limiter and the emulator's posting bucket share one fake
    timeline, and the first request is slow (0.5 s, like a connection set-up) while the rest arrive at
    once. A limiter pacing at exactly Slack's rate and burst gets a 429 on the fourth message here."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = ChannelRateLimiter(clock=lambda: now[0], sleep=sleep)
    emu.enforce_posting_rate(per_second=1.0, burst=3)
    start = emu.clock.now()
    client = WebClient(token=emu.bot_token, base_url=emu.api_url)  # no 429 retries
    for i in range(8):
        limiter.acquire(OPS)
        now[0] += 0.5 if i == 0 else 0.0  # request latency
        emu.clock.freeze(start + now[0])  # the emulator sees the request arrive
        with contextlib.suppress(SlackApiError):  # a 429 is recorded by the emulator; asserted below
            client.chat_postMessage(channel=OPS, text=f"message {i}")
    assert [c.status for c in emu.calls("chat.postMessage")] == [200] * 8


def test_health_and_readiness(emu: SlackEmulator, db: str) -> None:
    with running_bot(emu, mode="socket", db=db) as runner:
        health = urllib.request.urlopen(runner.url + "/healthz", timeout=5)
        assert health.status == 200
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(runner.url + "/readyz", timeout=5)
        assert not_ready.value.code == 503
        state = json.loads(not_ready.value.read())
        assert state["slack"] is True and state["cluster"] is False
        assert set(state) == {"slack", "cluster", "cluster_checked_seconds_ago", "clusters"}
        assert state["clusters"]["k8sbot-dev"]["reachable"] is False and state["clusters"]["k8sbot-dev"]["error"]
        metrics = urllib.request.urlopen(runner.url + "/metrics", timeout=5).read().decode()
        assert "python_info" in metrics


def test_ask_help_prints_the_same_help_as_slack(emu: SlackEmulator, db: str, tmp_path: Path) -> None:
    with running_bot(emu, mode="http", db=db):
        slack = _ack_text(emu.driver.slash_command("help", user_id=ALICE, channel_id=OPS))
    terminal = subprocess.run(
        [sys.executable, "-m", "k8sbot", "ask", "help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent.parent)},
    )
    assert terminal.returncode == 0, terminal.stderr
    lines = [line for line in terminal.stdout.splitlines() if line.strip()]
    assert len(lines) > 3
    shown = slack.replace("\u200b", "")  # the blocks' markers are disarmed; the fallback text may be clipped
    for line in lines:
        assert line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in shown
