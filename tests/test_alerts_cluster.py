"""Alerts end to end: the real control plane, the change tracker's shared watchers, the alert engine,
the Bolt app in HTTP mode and the Slack emulator.

Team `shop` owns the test namespace and channel C0SHOP. U0ALICE is an operator (RBAC: edit), U0VIEW a
viewer. Settle and resolve delays are shortened (2 s / 3 s); the outage is the real 30 s.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import SIM_LABEL, apply, bind_role, get, is_ready, pods, wait_for, wait_rolled_out
from scenarios import break_image, deploy_checkout
from test_permissions_cluster import FakeDirectory, _may

from bot.alerting.engine import ALERT_KINDS, AlertEngine, AlertSettings
from bot.alerting.grouping import Timing
from bot.changes.recording import DEFAULT_KINDS, ChangeRecorder, NamespaceFilter
from bot.commands.context import CommandServices, Placement
from bot.commands.routing import ClusterRouter
from bot.kube.client import KubeClient
from bot.kube.watching import Watchers
from bot.permissions.engine import PermissionEngine
from bot.permissions.policy import PolicyFile
from bot.settings import Settings
from bot.slack.alerts import BlockKitAlerts, SlackAlertPoster
from bot.slack.blocks import AnswerRenderer
from bot.slack.buttons import StoredButtonValues
from bot.slack.client import Poster, make_web_client
from bot.store.alerts import AlertStore
from bot.store.buttons import ButtonCommands
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.events import EventStore
from bot.store.outbox import Outbox
from k8sbot.running import build_app
from slack_emulator import SlackEmulator
from slack_emulator.testing import BoltHttpServer, clean_slack_env
from tests.wiring_helpers import ANALYZERS, VERB_NAMES, command_services

pytestmark = pytest.mark.kwok

CHANNEL, DEFAULT = "C0SHOP", "C0DEFAULT"
POLICY = """
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: C0SHOP
    namespaces: [{ns}]
    members: {{users: [U0ALICE]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-edit]}}
  readers:
    namespaces: [{ns}]
    members: {{users: [U0VIEW]}}
    role: viewer
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-edit]}}
"""


@dataclass
class Bot:
    """The alert engine and the watchers it subscribes to; `restart()` builds new ones on the same DB."""

    kube: KubeClient
    namespace: str
    db_path: Path
    emu: SlackEmulator
    policy: PolicyFile
    stop: threading.Event = field(default_factory=threading.Event)
    engine: AlertEngine | None = None
    watchers: Watchers | None = None

    def start(self) -> AlertEngine:
        self.stop = threading.Event()
        db = Database(self.db_path)
        only = NamespaceFilter(include=(self.namespace,))
        recorder = ChangeRecorder(ChangeStore(db), EventStore(db), namespaces=only)
        self.watchers = Watchers(self.kube, recorder, kinds=(*DEFAULT_KINDS, *ALERT_KINDS), watch_seconds=60)
        poster = SlackAlertPoster(Poster(make_web_client(token=self.emu.bot_token, base_url=self.emu.api_url)))
        self.engine = AlertEngine(
            alerts=AlertStore(db),
            outbox=Outbox(db),
            kube=self.kube,
            recorder=recorder,
            poster=poster,
            messages=BlockKitAlerts(values=StoredButtonValues(ButtonCommands(db))),
            analyzers=ANALYZERS,
            settings=AlertSettings(
                cluster_name="test-cluster",
                default_channel=DEFAULT,
                timing=Timing(settle=2, resolve_after=3, repeat_interval=5),
                # A full pass every 2 s: the restart tests count evaluations, which otherwise depend on
                # how often kwok updates pod status (slow on a loaded machine).
                full_every=2.0,
            ),
            policy=self.policy.current,
            backoff=(0.5, 4.0),
        )
        self.watchers.start()
        self.engine.start(self.stop, synced=self.watchers.wait_synced)
        return self.engine

    def halt(self) -> None:
        self.stop.set()
        if self.engine is not None:
            self.engine.join()
        if self.watchers is not None:
            self.watchers.stop()

    def alert_posts(self) -> list[Any]:
        """Successful top-level alert posts (each carries the outbox's metadata)."""
        return [
            c
            for c in self.emu.calls("chat.postMessage")
            if c.ok and not c.args.get("thread_ts") and "k8sbot_alert" in str(c.args.get("metadata"))
        ]

    def alerts(self, channel: str = CHANNEL) -> list[dict[str, Any]]:
        return [m for m in self.emu.messages(channel) if (m.get("metadata") or {}).get("event_type") == "k8sbot_alert"]


@pytest.fixture
def bot(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Bot]:
    with clean_slack_env(), SlackEmulator() as emu:
        emu.add_user("U0ALICE", name="alice")
        emu.add_user("U0VIEW", name="victor")
        for channel, name in ((CHANNEL, "shop"), (DEFAULT, "alerts")):
            emu.add_channel(channel, name, members=[emu.workspace.bot_user_id, "U0ALICE", "U0VIEW"])
        path = tmp_path / "permissions.yaml"
        path.write_text(POLICY.format(ns=namespace))
        policy = PolicyFile(path, verbs=VERB_NAMES)  # the policy may name every verb (silence included)
        running = Bot(kube, namespace, tmp_path / "bot.db", emu, policy)
        yield running
        running.halt()


@pytest.fixture
def slack_app(bot: Bot, kube: KubeClient, namespace: str) -> Iterator[CommandServices]:
    """The Bolt app in HTTP mode, with the permission gate, so clicks run as the clicker."""
    bind_role(kube, namespace, "edit", group="team-edit")
    wait_for(lambda: _may(kube, "team-edit", namespace, "patch", "deployments"), 30, "team-edit to be bound")
    engine = PermissionEngine(bot.policy, kube=kube, directory=FakeDirectory({}))
    services = command_services(
        kube, Database(bot.db_path), permissions=engine, placement=Placement(cluster_name="test-cluster")
    )
    settings = Settings(
        slack_bot_token=bot.emu.bot_token, slack_signing_secret=bot.emu.signing_secret, slack_api_url=bot.emu.api_url
    )
    client = make_web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    renderer = AnswerRenderer("test-cluster", StoredButtonValues(ButtonCommands(Database(bot.db_path))))
    with BoltHttpServer(build_app(settings, ClusterRouter.single(services), client, renderer)) as server:
        bot.emu.driver.configure(mode="http", url=server.url)
        yield services


def _header(message: dict[str, Any]) -> str:
    return str(message["blocks"][0]["text"]["text"])


def _button(message: dict[str, Any], text: str) -> dict[str, Any] | None:
    for block in message.get("blocks") or []:
        for element in block.get("elements") or []:
            if element.get("type") == "button" and element["text"]["text"] == text:
                return dict(element)
    return None


def _ephemeral_with(emu: SlackEmulator, user: str, needle: str) -> dict[str, Any] | None:
    for eph in emu.ephemerals(CHANNEL, user):
        if needle in str(eph.message):
            return eph.message
    return None


def _pods_ready(kube: KubeClient, namespace: str, want: int) -> bool:
    found = [p for p in pods(kube, namespace, "app=checkout") if not p["metadata"].get("deletionTimestamp")]
    return len(found) == want and all(is_ready(p) for p in found)


def test_a_bad_image_rollout_alerts_the_team_once_and_its_rollback_button_fixes_it(
    bot: Bot, slack_app: CommandServices, kube: KubeClient, namespace: str
) -> None:
    app = deploy_checkout(kube, namespace)
    bot.start()
    broken = break_image(kube, app)

    (alert,) = wait_for(lambda: bot.alerts() or None, 60, "an alert in the team channel")
    assert "image" in _header(alert) and "checkout" in _header(alert)
    text = str(alert["blocks"])
    assert broken.after in text and broken.before in text  # the culprit change, before → after
    assert "image of container app" in text and "test-cluster" in text  # the culprit field, in words
    rollback = _button(alert, "Rollback")
    assert rollback is not None and rollback["value"] == f"rollback checkout -n {namespace} --to-revision 1"
    assert {"Logs", "Why", "Silence 1h"} <= {b["text"]["text"] for b in alert["blocks"][-2]["elements"]}
    assert bot.alerts(DEFAULT) == []

    # A viewer's click is refused, privately, and changes nothing.
    generation = get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"]
    bot.emu.driver.click(CHANNEL, alert["ts"], rollback["action_id"], "U0VIEW")
    refusal = wait_for(lambda: _ephemeral_with(bot.emu, "U0VIEW", "rollback"), 20, "a private refusal")
    assert "does not include rollback" in str(refusal)
    assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"] == generation

    # The operator's click asks to confirm; confirming rolls back as them.
    bot.emu.driver.click(CHANNEL, alert["ts"], rollback["action_id"], "U0ALICE")
    ask = wait_for(lambda: _ephemeral_with(bot.emu, "U0ALICE", "k8s_confirm"), 20, "a confirmation request")
    assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["metadata"]["generation"] == generation
    bot.emu.driver.click(CHANNEL, ask["ts"], "k8s_confirm", "U0ALICE")
    rolled = wait_rolled_out(kube, namespace, "checkout", timeout=90)
    assert rolled["spec"]["template"]["spec"]["containers"][0]["image"] == broken.before
    wait_for(lambda: _pods_ready(kube, namespace, 2), 90, "2 Ready checkout pods")

    # The alert is edited: first the rollback note, then resolved with its duration.
    def current() -> dict[str, Any]:
        return bot.emu.message(CHANNEL, alert["ts"]) or {}

    wait_for(lambda: _header(current()).startswith("✅ Resolved"), 60, "the alert edited to resolved")
    resolved = current()
    assert _button(resolved, "Rollback") is None and "after" in str(resolved["blocks"][1])
    updates = [
        str(c.args.get("blocks")) for c in bot.emu.calls("chat.update") if c.ok and c.args.get("ts") == alert["ts"]
    ]
    noted = next(i for i, u in enumerate(updates) if "rolled back to revision 1" in u)
    assert "Resolved" not in updates[noted] and "Resolved" in updates[-1]
    replies = [m.get("text", "") for m in bot.emu.thread(CHANNEL, alert["ts"])]
    assert any("Resolved" in r for r in replies)
    assert len(bot.alert_posts()) == 1  # one alert for the whole story


def test_twenty_crashing_pods_of_one_deployment_are_one_alert(bot: Bot, kube: KubeClient, namespace: str) -> None:
    bot.start()
    apply(
        kube,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": namespace},
            "spec": {
                "replicas": 20,
                "selector": {"matchLabels": {"app": "worker"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "worker", SIM_LABEL: "crashloop"},
                        "annotations": {"sim.k8sbot.dev/exit-code": "1"},
                    },
                    "spec": {"containers": [{"name": "app", "image": "registry.example.com/worker:2"}]},
                },
            },
        },
    )

    def all_crashing() -> bool:
        found = pods(kube, namespace, "app=worker")
        return len(found) == 20 and all("CrashLoopBackOff" in str(p["status"]) for p in found)

    wait_for(all_crashing, 90, "20 worker pods in CrashLoopBackOff")
    (alert,) = wait_for(lambda: bot.alerts() or None, 30, "an alert")
    assert "worker" in _header(alert) and "crash" in _header(alert).lower()
    engine = bot.engine
    assert engine is not None
    # keep watching for a while the pods keep restarting: still one alert, repeats go to its thread
    start = engine.evaluations
    wait_for(lambda: engine.evaluations > start + 40, 60, "more evaluations of the restarting pods")
    assert len(bot.alert_posts()) == 1
    assert len(bot.alerts()) == 1
    assert all(m.get("thread_ts") == alert["ts"] for m in bot.emu.thread(CHANNEL, alert["ts"])[1:])


def test_slack_failing_for_30_seconds_delays_the_alert_but_loses_and_duplicates_nothing(
    bot: Bot, kube: KubeClient, namespace: str
) -> None:
    app = deploy_checkout(kube, namespace)
    bot.start()
    bot.emu.fail("chat.postMessage", error="internal_error", for_seconds=30)
    break_image(kube, app)
    wait_for(
        lambda: [c for c in bot.emu.calls("chat.postMessage") if not c.ok] or None,
        60,
        "a failed post during the outage",
    )
    (alert,) = wait_for(lambda: bot.alerts() or None, 120, "the alert after the outage")
    failed = [c for c in bot.emu.calls("chat.postMessage") if not c.ok]
    assert failed and all(c.response.get("error") == "internal_error" for c in failed)
    assert alert["ts"] and len(bot.alert_posts()) == 1
    engine = bot.engine
    assert engine is not None
    wait_for(lambda: engine.outbox.counts().get("pending", 0) == 0, 30, "the outbox drained")
    assert len(bot.alert_posts()) == 1 and engine.outbox.counts().get("dead", 0) == 0


def test_a_restart_in_the_middle_posts_nothing_twice(bot: Bot, kube: KubeClient, namespace: str) -> None:
    app = deploy_checkout(kube, namespace)
    first = bot.start()
    bot.emu.fail("chat.postMessage", error="internal_error", for_seconds=6)
    break_image(kube, app)
    # the alert is decided and in the outbox, not yet posted, when the bot stops
    wait_for(lambda: first.store.open_alerts() or None, 60, "an alert written to the outbox")
    bot.halt()
    assert bot.alert_posts() == []
    second = bot.start()
    (alert,) = wait_for(lambda: bot.alerts() or None, 60, "the alert posted by the restarted bot")
    assert second.store.open_alerts()[0].ts == alert["ts"]
    # and a second restart, with the alert posted and still failing, adopts it instead of posting again
    bot.halt()
    third = bot.start()
    start = third.evaluations
    wait_for(lambda: third.evaluations > start + 20, 60, "the restarted engine evaluating the broken rollout")
    assert len(bot.alert_posts()) == 1
    assert [a.ts for a in third.store.open_alerts()] == [alert["ts"]]
