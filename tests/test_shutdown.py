"""Graceful shutdown of `k8sbot run` as a real process: SIGTERM while a command is in flight.

The bot runs as `python -m k8sbot run --http` against the Slack emulator and the real cluster. A
`/k8s why` is sent and SIGTERM follows its ack at once: the answer must still arrive, the process must
exit 0 within `shutdown_grace_seconds`, and a restart on the same database must post nothing twice
(the outbox and the digest ledger record what was sent).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from logged_process import LoggedProcess
from scenarios import break_image, deploy_checkout

from bot.kube.client import KubeClient
from slack_emulator import SlackEmulator
from tests.slack_harness import ALICE, BOB, OPS, SHOP, is_answer

ROOT = Path(__file__).resolve().parent.parent
GRACE = 8.0
"""The bot's shutdown bound in these tests (K8SBOT_SHUTDOWN_GRACE_SECONDS)."""

POLICY = """
roles:
  operator: [why, status, logs, describe, changes]
teams:
  shop:
    channel: {channel}
    namespaces: [{ns}]
    members: {{users: [{alice}]}}
    role: operator
defaults: {{role: null}}
"""


class BotProcess(LoggedProcess):
    """`python -m k8sbot run` (`--http` in HTTP mode) with `env`; its log lines are collected as they come."""

    def __init__(self, env: dict[str, str], cwd: Path, *, mode: str = "http") -> None:
        super().__init__(
            [sys.executable, "-m", "k8sbot", "run", *(["--http"] if mode == "http" else [])], env=env, cwd=cwd
        )

    def ready(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def bot_env(
    slack: SlackEmulator, tmp_path: Path, *, db: Path, kubeconfig: str, config: dict[str, Any]
) -> dict[str, str]:
    """The environment `k8sbot run` needs (as tests/slack_harness.py `bot_settings`), plus a config file."""
    config_file = tmp_path / f"config-{db.stem}.yaml"
    config_file.write_text(json.dumps(config))  # JSON is YAML
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "SLACK_SIGNING_SECRET": slack.signing_secret,
        "K8SBOT_SLACK_API_URL": slack.api_url,
        "K8SBOT_DB": str(db),
        "KUBECONFIG": kubeconfig,
        "K8SBOT_HTTP_HOST": "127.0.0.1",
        "K8SBOT_HTTP_PORT": "0",
        "K8SBOT_CONFIG": str(config_file),
        "K8SBOT_LOG_LEVEL": "INFO",
        "NO_PROXY": "*",
    }


def alert_texts(emu: SlackEmulator, channel: str) -> list[str]:
    return [
        json.dumps(m.get("blocks") or m.get("text"))
        for m in emu.messages(channel)
        if (m.get("metadata") or {}).get("event_type") == "k8sbot_alert"
    ]


def _all_posts(emu: SlackEmulator) -> list[str]:
    """Every top-level message in the bot's channels, as text (for "nothing posted twice")."""
    return [json.dumps(m.get("blocks") or m.get("text"), sort_keys=True) for m in emu.messages(SHOP)]


def _slow_denial(slack: SlackEmulator, url: str, namespace: str, *, retry_after: int, mode: str = "http") -> int:
    """A command that is slow the way Slack makes things slow: Bob is not in the shop team, so the
    refusal is announced in the audit channel first, and Slack answers that post 429 Retry-After.
    Returns the count of response_url posts before it."""
    slack.rate_limit("chat.postMessage", retry_after=retry_after, times=1)
    before = len(slack.response_posts())
    slack.driver.slash_command(
        f"why deploy/checkout -n {namespace}",
        user_id=BOB,
        channel_id=SHOP,
        mode=mode,
        url=url + "/slack/events" if mode == "http" else None,
    )
    return before


def _answers(slack: SlackEmulator, before: int) -> list[Any]:
    return [p.body for p in slack.response_posts()[before:] if is_answer(p.body)]


@pytest.fixture
def shop(kube: KubeClient, namespace: str, cluster: Any, slack: SlackEmulator, tmp_path: Path) -> dict[str, str]:
    """A broken checkout in `namespace` and the environment of a bot that alerts the shop channel and
    announces refusals in the ops channel (the audit channel)."""
    permissions = tmp_path / "permissions.yaml"
    permissions.write_text(POLICY.format(channel=SHOP, ns=namespace, alice=ALICE))
    app = deploy_checkout(kube, namespace)
    break_image(kube, app)
    config = {
        "permissions": str(permissions),
        "watch_namespaces": [namespace],
        "alert_settle_seconds": 1.0,
        "alert_resolve_seconds": 2.0,
        "leader_namespace": namespace,
        "audit_channel": OPS,
        "shutdown_grace_seconds": GRACE,
    }
    return bot_env(slack, tmp_path, db=tmp_path / "bot.db", kubeconfig=cluster.kubeconfig, config=config)


def _alerted(slack: SlackEmulator) -> None:
    slack.wait_for(lambda: alert_texts(slack, SHOP), timeout=90, what="the alert for the broken image")


@pytest.mark.kwok
@pytest.mark.parametrize("mode", ["http", "socket"])
def test_sigterm_finishes_the_command_in_flight_exits_0_and_a_restart_posts_nothing_twice(
    slack: SlackEmulator, namespace: str, shop: dict[str, str], tmp_path: Path, mode: str
) -> None:
    bot = BotProcess(shop, tmp_path, mode=mode)
    try:
        url = bot.wait_url()
        if mode == "socket":
            slack.socket.wait_connected(timeout=30)
        _alerted(slack)
        before = _slow_denial(slack, url, namespace, retry_after=3, mode=mode)
        assert not _answers(slack, before), "answered at once: the command would not be in flight"
        sent = time.monotonic()
        bot.process.send_signal(signal.SIGTERM)
        code = bot.process.wait(GRACE + 5)
        took = time.monotonic() - sent
    finally:
        bot.stop()
    assert code == 0, bot.log
    assert took < GRACE + 3, f"exited {took:.1f}s after SIGTERM (bound {GRACE:g}s)"
    answers = _answers(slack, before)
    assert len(answers) == 1, slack.response_posts()[before:]
    assert "stopped" in bot.log

    posted = _all_posts(slack)
    assert len(alert_texts(slack, SHOP)) == 1, alert_texts(slack, SHOP)

    # The next start, same database: the open alert is adopted, not posted again.
    again = BotProcess(shop, tmp_path, mode=mode)
    try:
        again_url = again.wait_url()
        slack.wait_for(lambda: again.ready(again_url), timeout=30, what="the restarted bot ready")
        slack.wait_for(
            lambda: any("alerting:" in line and "adopted" in line for line in again.lines),
            timeout=30,
            what="the restarted bot adopting the open alert",
        )
        time.sleep(4)  # more than settle + a sender round: a duplicate would have been posted by now
        again.process.send_signal(signal.SIGTERM)
        assert again.process.wait(GRACE + 5) == 0, again.log
    finally:
        again.stop()
    assert _all_posts(slack) == posted, "the restart posted again"
    assert len(alert_texts(slack, SHOP)) == 1


@pytest.mark.kwok
def test_a_command_stuck_past_the_bound_does_not_hold_the_exit(
    slack: SlackEmulator, namespace: str, shop: dict[str, str], tmp_path: Path
) -> None:
    bot = BotProcess(shop, tmp_path)
    try:
        url = bot.wait_url()
        _alerted(slack)
        _slow_denial(slack, url, namespace, retry_after=60)
        sent = time.monotonic()
        bot.process.send_signal(signal.SIGTERM)
        try:
            code = bot.process.wait(GRACE + 10)
        except subprocess.TimeoutExpired:
            code = None
        took = time.monotonic() - sent
    finally:
        bot.stop()
    assert code == 0, f"exit code {code} after {took:.1f}s (bound {GRACE:g}s):\n{bot.log[-3000:]}"
    assert took < GRACE + 3, f"exited {took:.1f}s after SIGTERM (bound {GRACE:g}s)"
    assert "commands still running" in bot.log
