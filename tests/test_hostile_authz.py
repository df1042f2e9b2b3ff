"""Hostile: authorization on what is touched, and fail-closed identity (issue 11, items 3 and 7).

Every attempt goes through the public command path (`bot.commands.dispatch.execute`, what Slack and
`k8sbot ask --as` run) or `k8sbot ask --as` itself, against the real API server with real RBAC:

  U0OPER   operator in the test namespace only, acts as slack:U0OPER in group authz-edit (bound `edit`)
  U0VIEW   viewer in the test namespace, acts as slack:U0VIEW in group authz-view (bound `view`:
           Kubernetes' view role cannot read Secrets)
  U0PLAIN  viewer in the test namespace, mapped to no Kubernetes identity (the bot reads as itself)
  U0SRE    operator in every namespace ("*"), mapped to no Kubernetes identity

Classes covered:
- the namespace a decision is made in is the namespace the verb acts on (cluster-scoped targets such
  as Nodes and Namespaces need a cluster-wide grant; `ns/name` targets are decided in `ns`);
- recorded history is served only for kinds the asker may read there (Secrets need `get secrets`);
- an unknown Slack account state (users.info failing, no recent answer) refuses actions; reads go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import bind_role, create, get, patch, resource_path, wait_for
from scenarios import App, _template_patch, _wait_symptom, _waiting, deploy_checkout
from test_permissions_cluster import _may

from bot.commands.dispatch import execute
from bot.errors import NotFound, PermissionDenied, SlackUnavailable
from bot.kube.client import KubeClient
from bot.kube.watching import WatchedKind, Watchers
from bot.model import Answer, Category, ChangeKind, ObjectRef
from bot.permissions.engine import PermissionEngine
from bot.permissions.policy import PolicyFile
from bot.settings import Settings
from bot.store.audit import AuditEntry, AuditLog
from bot.store.database import Database
from k8sbot import cli
from k8sbot.wiring import Core, build_core
from slack_emulator import SlackEmulator
from slack_emulator.testing import clean_slack_env
from tests.slack_harness import ALICE, SHOP, running_bot, wait_answer
from tests.wiring_helpers import VERB_NAMES, command_services

pytestmark = pytest.mark.hostile

CHANNEL = "C0SHOP"
POLICY = """
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart, silence]
teams:
  shop:
    channel: C0SHOP
    namespaces: [{ns}]
    members: {{users: [U0OPER]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [authz-edit]}}
  lookers:
    namespaces: [{ns}]
    members: {{users: [U0VIEW]}}
    role: viewer
    kubernetes: {{user: "slack:{{user_id}}", groups: [authz-view]}}
  plain:
    namespaces: [{ns}]
    members: {{users: [U0PLAIN]}}
    role: viewer
bindings:
  - {{name: sre, users: [U0SRE], role: operator, namespaces: ["*"]}}
"""


class FakeDirectory:
    """Our own Directory protocol in memory; `failing` users get the error Slack's outage gives."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.deleted: set[str] = set()
        self.calls = 0

    def users_info(self, user_id: str) -> Mapping[str, Any]:
        self.calls += 1
        if user_id in self.failing:
            raise SlackUnavailable("Slack users.info failed: internal_error")
        return {"id": user_id, "deleted": user_id in self.deleted}

    def usergroup_members(self, group_id: str) -> Collection[str]:
        return ()


@dataclass
class World:
    kube: KubeClient
    core: Core
    app: App
    directory: FakeDirectory
    tmp_path: Path
    watchers: list[Watchers] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.app.namespace

    def run(self, user: str, text: str, *, confirmed: bool = False, channel: str | None = None) -> Answer:
        return execute(self.core.commands, text=text, slack_user=user, confirmed=confirmed, channel=channel)

    def rows(self) -> list[AuditEntry]:
        return self.core.audit.since(None)

    def silence_rows(self) -> list[tuple[Any, ...]]:
        return [
            tuple(r) for r in self.core.database.db.execute("SELECT kind, namespace, name FROM silences ORDER BY id")
        ]

    def record_history(self) -> None:
        """Run the bot's own change recorder (core.recorder) with real watchers on this namespace."""
        kinds = (WatchedKind("Deployment"), WatchedKind("ConfigMap"), WatchedKind("Secret"))
        watchers = Watchers(self.kube, self.core.recorder, kinds=kinds, watch_seconds=60)
        watchers.start()
        self.watchers.append(watchers)
        assert watchers.wait_synced(30)


def _node(kube: KubeClient) -> str:
    nodes = kube.list(resource_path("v1", "Node"))
    assert nodes, "the test cluster has no nodes"
    return str(nodes[0]["metadata"]["name"])


@pytest.fixture
def world(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[World]:
    bind_role(kube, namespace, "edit", group="authz-edit")
    bind_role(kube, namespace, "view", group="authz-view")
    wait_for(lambda: _may(kube, "authz-edit", namespace, "patch", "deployments"), 30, "authz-edit to be bound")
    wait_for(lambda: _may(kube, "authz-view", namespace, "list", "deployments"), 30, "authz-view to be bound")
    app = deploy_checkout(kube, namespace, replicas=1, wait=False)
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(ns=namespace))
    settings = Settings(
        db=str(tmp_path / "bot.db"),
        permissions=str(path),
        channel_namespaces={CHANNEL: namespace},
        watch_namespaces=[namespace],
    )
    directory = FakeDirectory()
    core = build_core(settings, permissions=True, kube=kube, directory=directory)
    found = World(kube, core, app, directory, tmp_path)
    yield found
    for watchers in found.watchers:
        watchers.stop()
    core.database.close()


# -- the namespace decided on is the namespace acted on --------------------------------------------


def test_a_namespace_operator_cannot_silence_a_node_for_30_days(world: World) -> None:
    node = _node(world.kube)
    with pytest.raises(PermissionDenied, match=r"silence is granted only in .*all namespaces is outside"):
        world.run("U0OPER", f"silence node/{node} -n {world.namespace} --for 30d")
    assert world.silence_rows() == []
    assert world.core.alerts.silenced(ObjectRef("Node", None, node), Category.NODE_NOT_READY) is None
    (row,) = world.rows()
    assert (row.slack_user, row.verb, row.decision, row.outcome) == ("U0OPER", "silence", "denied", "denied")


def test_a_namespace_operator_cannot_silence_another_namespace(world: World) -> None:
    with pytest.raises(PermissionDenied, match="all namespaces is outside"):
        world.run("U0OPER", f"silence ns/default -n {world.namespace} --for 30d")
    # The `ns/name` form, in a channel whose default namespace is the operator's: decided in `default`.
    with pytest.raises(PermissionDenied, match="namespace default is outside"):
        world.run("U0OPER", "silence default/checkout --for 30d", channel=CHANNEL)
    assert world.silence_rows() == []
    assert [(r.verb, r.decision) for r in world.rows()] == [("silence", "denied"), ("silence", "denied")]


def test_silencing_what_one_may_touch_still_works(world: World) -> None:
    ns = world.namespace
    mine = world.run("U0OPER", f"silence checkout -n {ns} --for 1h", channel=CHANNEL)
    assert mine.data["silence"]["target"] == ObjectRef("Deployment", ns, "checkout").to_json()
    node = _node(world.kube)
    sre = world.run("U0SRE", f"silence node/{node} --for 1h")  # a grant on every namespace
    assert sre.data["silence"]["target"]["namespace"] is None
    assert world.silence_rows() == [("Deployment", ns, "checkout"), ("Node", "", node)]


def test_the_cluster_lock_is_asked_about_the_silenced_object(world: World) -> None:
    answer = world.run("U0OPER", f"can-i silence checkout -n {world.namespace}")
    assert answer.data["allowed"] is True and answer.data["rbac"]["allowed"] is True
    assert "may get deployments.apps checkout" in answer.data["rbac"]["reason"]


def test_can_i_explains_the_decision_where_the_verb_acts(world: World) -> None:
    node = _node(world.kube)
    answer = world.run("U0OPER", f"can-i silence node/{node} -n {world.namespace}")
    assert answer.data["allowed"] is False
    assert answer.data["namespace"] is None
    assert "all namespaces is outside" in answer.data["reason"]


@pytest.mark.parametrize("verb", ["describe", "changes"])
def test_reading_a_node_needs_a_cluster_wide_grant(world: World, verb: str) -> None:
    node = _node(world.kube)
    with pytest.raises(PermissionDenied, match="all namespaces is outside"):
        world.run("U0PLAIN", f"{verb} node/{node} -n {world.namespace}")
    (row,) = world.rows()
    assert row.decision == "denied"
    described = world.run("U0SRE", f"describe node/{node}")
    assert described.title.startswith(f"Node {node}")


def test_k8sbot_ask_refuses_the_node_silence(world: World, cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    db = world.tmp_path / "ask.db"
    monkeypatch.setenv("K8SBOT_PERMISSIONS", str(world.tmp_path / "permissions.yaml"))
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.setenv("K8SBOT_DB", str(db))
    for name in ("K8SBOT_CONFIG", "SLACK_BOT_TOKEN", "K8SBOT_DEFAULT_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    node = _node(world.kube)
    assert cli.main(["ask", "--as", "U0OPER", f"silence node/{node} -n {world.namespace} --for 30d"]) == 1
    # The terminal's own check makes the same decision.
    check = ["permissions", "check", "--as", "U0OPER", "--verb", "silence", "--namespace", world.namespace]
    assert cli.main([*check, "--target", f"node/{node}"]) == 1
    assert cli.main([*check, "--target", "checkout"]) == 0
    database = Database(db)
    try:
        assert list(database.db.execute("SELECT * FROM silences")) == []
        (row,) = AuditLog(database).since(None)
        assert (row.slack_user, row.verb, row.decision) == ("U0OPER", "silence", "denied")
        assert "all namespaces is outside" in row.reason
    finally:
        database.close()


# -- history is served only for kinds the asker may read ------------------------------------------


SECRET = "payment-keys"
CONFIG = "checkout-settings"


def _history(world: World) -> None:
    ns = world.namespace
    world.record_history()
    create(
        world.kube,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": ns},
            "stringData": {"stripe-key": "sk-live-first-value-1"},
        },
    )
    create(
        world.kube,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG, "namespace": ns}, "data": {"A": "1"}},
    )
    patch(world.kube, "v1", "Secret", ns, SECRET, {"stringData": {"stripe-key": "sk-live-second-2", "webhook": "w"}})
    patch(world.kube, "v1", "ConfigMap", ns, CONFIG, {"data": {"A": "2"}})
    store = world.core.changes

    def recorded() -> bool:
        kinds = {(c.ref.kind, c.kind) for c in store.query(since=datetime.now(UTC) - timedelta(hours=1))}
        return {("Secret", ChangeKind.SECRET), ("ConfigMap", ChangeKind.CONFIG)} <= kinds

    wait_for(recorded, 30, "the Secret and ConfigMap edits in the history")


def _shown(answer: Answer) -> str:
    return repr(answer.data) + answer.title + "\n".join(answer.lines)


def test_changes_hides_secret_history_from_a_view_bound_user(world: World) -> None:
    _history(world)
    ns = world.namespace
    viewer = world.run("U0VIEW", f"changes -n {ns} --since 1h")
    shown = _shown(viewer)
    assert SECRET not in shown and "stripe-key" not in shown and "webhook" not in shown
    assert all(c["ref"]["kind"] != "Secret" for c in viewer.data["changes"])
    assert CONFIG in shown and "data.A" in shown  # what view may read is still there
    assert any("history of secrets hidden" in line.lower() and "get secrets" in line for line in viewer.lines)
    assert viewer.data["hidden"] == [{"kind": "Secret", "reason": viewer.data["hidden"][0]["reason"]}]

    editor = world.run("U0OPER", f"changes -n {ns} --since 1h")
    assert SECRET in _shown(editor) and "stripe-key" in _shown(editor)
    assert editor.data["hidden"] == []


def test_changes_by_name_does_not_reveal_secrets_or_suggest_their_names(world: World) -> None:
    _history(world)
    ns = world.namespace
    with pytest.raises(NotFound) as missing:
        world.run("U0VIEW", f"changes {SECRET} -n {ns} --since 1h")
    assert SECRET not in str(missing.value.candidates)
    with pytest.raises(NotFound) as typo:
        world.run("U0VIEW", f"changes payment-key -n {ns} --since 1h")
    assert SECRET not in str(typo.value.candidates)
    with pytest.raises(PermissionDenied, match="may not get secrets"):
        world.run("U0VIEW", f"changes secret/{SECRET} -n {ns} --since 1h")
    named = world.run("U0OPER", f"changes secret/{SECRET} -n {ns} --since 1h")
    assert "stripe-key" in _shown(named)


def test_changes_for_an_unmapped_reader_hides_secrets_only(world: World) -> None:
    _history(world)
    ns = world.namespace
    plain = world.run("U0PLAIN", f"changes -n {ns} --since 1h")
    shown = _shown(plain)
    assert SECRET not in shown and "stripe-key" not in shown
    assert CONFIG in shown
    assert [h["kind"] for h in plain.data["hidden"]] == ["Secret"]
    assert any("no kubernetes identity" in line.lower() for line in plain.lines)
    with pytest.raises(PermissionDenied, match="no Kubernetes identity"):
        world.run("U0PLAIN", f"describe secret/{SECRET} -n {ns}")


@pytest.mark.kwok
def test_why_does_not_blame_a_secret_change_the_asker_may_not_read(world: World) -> None:
    """`why` shows the culprit change from the same history: a Secret's only to people who may get it."""
    ns, app = world.namespace, world.app
    world.record_history()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": ns}}
    create(world.kube, {**secret, "stringData": {"password": "first-pass-1", "username": "checkout"}})
    entry = {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}
    containers = [{"name": app.container, "env": [entry]}]
    patch(
        world.kube, "apps/v1", "Deployment", ns, app.name, {"spec": {"template": {"spec": {"containers": containers}}}}
    )
    secret_ref = ObjectRef("Secret", ns, "db-credentials")

    def changed(ref: ObjectRef) -> list[str]:
        since = datetime.now(UTC) - timedelta(hours=1)
        return [f"{c.kind}:{f.path}" for c in world.core.changes.query(since=since, ref=ref) for f in c.fields]

    def secret_changes() -> list[ChangeKind]:
        since = datetime.now(UTC) - timedelta(hours=1)
        return [c.kind for c in world.core.changes.query(since=since, ref=secret_ref)]

    # The env reference is recorded first, so the Secret's key removal is the newer, matching change.
    deployment = ObjectRef("Deployment", ns, app.name)
    wait_for(lambda: any(".env[0]" in c for c in changed(deployment)), 60, "the env change in the history")
    wait_for(secret_changes, 30, "the Secret in the history")
    remove = [{"op": "remove", "path": "/data/password"}]
    patch(world.kube, "v1", "Secret", ns, "db-credentials", remove, kind_of_patch="json")
    wait_for(lambda: ChangeKind.SECRET in secret_changes(), 30, "the Secret's key removal in the history")
    message = f"couldn't find key password in Secret {ns}/db-credentials"
    _template_patch(world.kube, app, {}, scenario="configerror", annotations={"sim.k8sbot.dev/message": message})
    _wait_symptom(world.kube, app, "CreateContainerConfigError", _waiting("CreateContainerConfigError"))

    def culprits(user: str) -> list[Any]:
        answer = world.run(user, f"why checkout -n {ns}")
        return [c["change"]["ref"]["kind"] for c in answer.data["causes"] if c.get("change")]

    assert "Secret" in culprits("U0OPER")  # edit may get secrets: the removed key is the culprit
    assert "Secret" not in culprits("U0VIEW")  # view may not: the Secret's history is not served
    assert "Secret" not in culprits("U0PLAIN")  # no Kubernetes identity: never a Secret


# -- fail closed on identity ------------------------------------------------------------------------


def test_an_unknown_slack_account_state_refuses_actions_but_not_reads(world: World) -> None:
    ns = world.namespace
    world.directory.failing.add("U0OPER")
    with pytest.raises(PermissionDenied, match="cannot confirm that U0OPER's Slack account is active"):
        world.run("U0OPER", f"silence checkout -n {ns} --for 30d")
    generation = get(world.kube, "apps/v1", "Deployment", ns, "checkout")["metadata"]["generation"]
    with pytest.raises(PermissionDenied, match="cannot confirm"):
        world.run("U0OPER", f"scale checkout -n {ns} --replicas 3", confirmed=True)
    assert get(world.kube, "apps/v1", "Deployment", ns, "checkout")["metadata"]["generation"] == generation
    assert world.silence_rows() == []
    status = world.run("U0OPER", f"status -n {ns}")
    assert status.verb == "status"
    assert [(r.verb, r.decision) for r in world.rows()] == [
        ("silence", "denied"),
        ("scale", "denied"),
        ("status", "allowed"),
    ]


def test_a_known_state_is_kept_through_a_short_outage_and_forgotten_after_max_stale(
    kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    bind_role(kube, namespace, "edit", group="authz-edit")
    wait_for(lambda: _may(kube, "authz-edit", namespace, "patch", "deployments"), 30, "authz-edit to be bound")
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(ns=namespace))
    now = [1000.0]
    directory = FakeDirectory()
    directory.deleted.add("U0SRE")
    policy = PolicyFile(path, verbs=VERB_NAMES)
    clock = lambda: now[0]  # noqa: E731
    engine = PermissionEngine(policy, kube=kube, directory=directory, ttl=60, max_stale=3600, monotonic=clock)
    services = command_services(kube, Database(tmp_path / "bot.db"), permissions=engine)

    def silence(user: str) -> Answer:
        return execute(services, text=f"silence checkout -n {namespace} --for 1h", slack_user=user)

    assert silence("U0OPER").data["silence"]["by"] == "U0OPER"  # known active
    with pytest.raises(PermissionDenied, match="deactivated"):
        silence("U0SRE")
    directory.failing |= {"U0OPER", "U0SRE"}
    now[0] += 600  # past the TTL, within max_stale: the last known state holds
    assert silence("U0OPER").ok
    with pytest.raises(PermissionDenied, match="deactivated"):
        silence("U0SRE")
    now[0] += 3600  # past max_stale: no longer known; an action is refused, a read goes on
    with pytest.raises(PermissionDenied, match="cannot confirm"):
        silence("U0OPER")
    with pytest.raises(PermissionDenied, match="deactivated"):  # a known deactivation is never forgotten
        silence("U0SRE")
    assert (
        execute(services, text=f"can-i silence checkout -n {namespace}", slack_user="U0OPER").data["allowed"] is False
    )
    directory.failing.clear()
    assert silence("U0OPER").ok  # Slack answers again
    services.audit.database.close()


def test_k8sbot_ask_through_slack_with_users_info_failing(
    world: World, cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Slack path: `k8sbot ask --as` with a bot token asks the (emulated) Slack's users.info."""
    ns = world.namespace
    db = world.tmp_path / "slack.db"
    with clean_slack_env(), SlackEmulator() as emu:
        emu.add_user("U0OPER", name="oper")
        emu.add_user("U0SRE", name="gone", deleted=True)
        monkeypatch.setenv("SLACK_BOT_TOKEN", emu.bot_token)
        monkeypatch.setenv("K8SBOT_SLACK_API_URL", emu.api_url)
        monkeypatch.setenv("K8SBOT_PERMISSIONS", str(world.tmp_path / "permissions.yaml"))
        monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
        monkeypatch.setenv("K8SBOT_DB", str(db))
        monkeypatch.delenv("K8SBOT_CONFIG", raising=False)
        assert cli.main(["ask", "--as", "U0SRE", f"status -n {ns}"]) == 1  # deactivated: refused
        emu.fail("users.info", "internal_error", for_seconds=600)
        started = time.monotonic()
        assert cli.main(["ask", "--as", "U0OPER", f"silence checkout -n {ns} --for 30d"]) == 1
        assert cli.main(["ask", "--as", "U0OPER", f"status -n {ns}"]) == 0  # reading goes on
        assert time.monotonic() - started < 30
    database = Database(db)
    try:
        assert list(database.db.execute("SELECT * FROM silences")) == []
        rows = AuditLog(database).since(None)
        assert [(r.slack_user, r.verb, r.decision) for r in rows] == [
            ("U0SRE", "status", "denied"),
            ("U0OPER", "silence", "denied"),
            ("U0OPER", "status", "allowed"),
        ]
        assert "cannot confirm" in rows[1].reason
    finally:
        database.close()


def test_a_slash_command_while_users_info_fails_is_refused_privately(
    world: World, cluster: Any, slack: SlackEmulator
) -> None:
    """The whole `k8sbot run` wiring over HTTP: Slack sends the slash command, users.info fails."""
    ns = world.namespace
    path = world.tmp_path / "slack-permissions.yaml"
    path.write_text(POLICY.format(ns=ns).replace("U0OPER", ALICE))
    db = str(world.tmp_path / "run.db")
    settings = {"kubeconfig": cluster.kubeconfig, "permissions": str(path)}
    with running_bot(slack, mode="http", db=db, **settings) as runner:
        slack.fail("users.info", "internal_error", for_seconds=600)
        before = len(slack.response_posts())
        slack.driver.slash_command(f"silence checkout -n {ns} --for 30d", user_id=ALICE, channel_id=SHOP)
        refusal = wait_answer(slack, before, what="the refusal")
        assert refusal["response_type"] == "ephemeral"
        assert "cannot confirm" in json.dumps(refusal) and "reading still works" in json.dumps(refusal)
        before = len(slack.response_posts())
        slack.driver.slash_command(f"changes -n {ns} --since 1h", user_id=ALICE, channel_id=SHOP)
        assert "Changes of namespace" in json.dumps(wait_answer(slack, before, what="the changes answer"))
        assert runner.core is not None and runner.core.permissions is not None
    database = Database(db)
    try:
        assert list(database.db.execute("SELECT * FROM silences")) == []
        rows = AuditLog(database).since(None)
        assert [(r.slack_user, r.verb, r.decision) for r in rows] == [
            (ALICE, "silence", "denied"),
            (ALICE, "changes", "allowed"),
        ]
    finally:
        database.close()
