"""Run the real bot (k8sbot.running.BotRunner) against the Slack emulator, in either mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bot.commands.registry import VerbRegistry
from bot.kube.client import KubeClient, UnconfiguredKubeClient
from bot.settings import Settings, load_settings
from handlers.serving import ReadinessPolicy
from k8sbot.running import BotRunner
from slack_emulator import SlackEmulator

ALICE = "U0ALICE01"
BOB = "U0BOB0001"
OPS = "C0OPS0001"
SHOP = "C0SHOP001"


def seeded_emulator() -> SlackEmulator:
    emu = SlackEmulator().start()
    emu.add_user(ALICE, name="alice", real_name="Alice")
    emu.add_user(BOB, name="bob", real_name="Bob")
    emu.add_channel(OPS, "ops", members=[ALICE, BOB], bot_member=True)
    emu.add_channel(SHOP, "shop", members=[ALICE, BOB], bot_member=True)
    return emu


def bot_settings(emu: SlackEmulator, *, db: str, **overrides: object) -> Settings:
    return load_settings(
        {},
        slack_bot_token=emu.bot_token,
        slack_app_token=emu.app_token,
        slack_signing_secret=emu.signing_secret,
        slack_api_url=emu.api_url,
        db=db,
        **{"http_host": "127.0.0.1", "http_port": 0, **overrides},
    )


@contextmanager
def running_bot(
    emu: SlackEmulator,
    *,
    mode: str,
    db: str,
    kube: KubeClient | None = None,
    verbs: VerbRegistry | None = None,
    background: bool = False,
    readiness: ReadinessPolicy | None = None,
    **settings_overrides: object,
) -> Iterator[BotRunner]:
    """Start the bot against `emu` (HTTP mode: the driver posts to the bot's /slack/events).

    With a kubeconfig in the settings this is the full wiring of `k8sbot run` (permissions.yaml
    included); without one, `kube` (or no cluster) and no permissions file. `background` also starts
    the watchers, the alert engine and the scheduler, as `k8sbot run` does.
    """
    settings = bot_settings(emu, db=db, **settings_overrides)
    full = bool(settings.kubeconfig or settings.clusters)
    runner = BotRunner(
        settings,
        http=mode == "http",
        permissions=full,
        kube=None if full else kube or UnconfiguredKubeClient("no cluster in this test"),
        verbs=verbs,
        ping_interval=0.3,
        background=background,
        readiness=readiness,
    ).start()
    try:
        if mode == "http":
            emu.driver.configure(mode="http", url=runner.url + "/slack/events")
        else:
            emu.socket.wait_connected()
            emu.driver.configure(mode="socket")
        yield runner
    finally:
        runner.stop()


def is_answer(body: Any) -> bool:
    """A response_url post that is an answer: not the "Looking into…" placeholder, not a deletion."""
    return isinstance(body, dict) and bool(body.get("blocks")) and not body.get("delete_original")


def answers_after(emu: SlackEmulator, before: int) -> list[dict[str, Any]]:
    return [p.body for p in emu.response_posts()[before:] if is_answer(p.body)]


def wait_answer(emu: SlackEmulator, before: int, *, what: str, timeout: float = 30) -> dict[str, Any]:
    """The first answer posted through a response_url after the first `before` posts."""
    emu.wait_for(lambda: answers_after(emu, before), timeout=timeout, what=what)
    return answers_after(emu, before)[0]
