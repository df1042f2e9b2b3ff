"""Who may do what, without a cluster: grants, their combination, the file's decisions and reasons,
limits, Kubernetes identity mapping, the Slack directory cache, and the audited path's refusals."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.commands.auditing import run_audited
from bot.commands.context import CommandServices, VerbContext
from bot.commands.parsing import parse as parse_with
from bot.errors import PermissionDenied, SlackUnavailable, UsageError
from bot.kube.client import UnconfiguredKubeClient
from bot.model import Command, Decision, Subject
from bot.permissions.engine import PermissionEngine, file_decision, limit_decision, needs_for
from bot.permissions.identity import CachedDirectory, grants_for, subject_from_policy
from bot.permissions.policy import PolicyFile, parse_policy
from bot.permissions.targets import acted_namespace, target_kind
from bot.store.database import Database
from tests.wiring_helpers import VERB_NAMES, VERBS, command_services


def parse(text: str) -> Command:
    return parse_with(text, registry=VERBS)


POLICY = parse_policy(
    """
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:
    namespaces: [shop, shop-*]
    members: {users: [U0ALICE], usergroups: [S0SHOPDEV]}
    role: operator
    kubernetes: {user: "slack:{user_id}", groups: [team-shop]}
  payments:
    namespaces: [payments]
    members: {usergroups: [S0PAYDEV]}
    role: viewer
    kubernetes: {user: "pay:{user_id}", groups: [team-payments]}
bindings:
  - name: sre
    usergroups: [S0SRE]
    role: operator
    namespaces: ["*"]
    kubernetes: {user: "sre:{user_id}", groups: [sre]}
  - {users: [U0VIC], role: viewer, namespaces: [shop]}
defaults: {role: viewer, namespaces: [public]}
limits: {max_replicas: 20}
""",
    verbs=VERB_NAMES,
)


class FakeDirectory:
    """In-memory Slack directory (our own protocol), counting calls and able to fail."""

    def __init__(self, groups: dict[str, set[str]]) -> None:
        self.groups = groups
        self.calls = 0
        self.failing = False
        self.deleted: set[str] = set()

    def users_info(self, user_id: str) -> Mapping[str, Any]:
        self.calls += 1
        if self.failing:
            raise SlackUnavailable("slack is down")
        return {"id": user_id, "deleted": user_id in self.deleted}

    def usergroup_members(self, group_id: str) -> Collection[str]:
        self.calls += 1
        if self.failing:
            raise SlackUnavailable("slack is down")
        return self.groups.get(group_id, set())


def subject(user: str, *groups: str) -> Subject:
    return subject_from_policy(POLICY, user, set(groups))


def test_a_team_member_may_act_in_the_teams_namespaces_only() -> None:
    alice = subject("U0ALICE")
    allowed = file_decision(POLICY, alice, "rollback", "shop-eu")
    assert allowed.allowed and "team shop" in allowed.reason and "shop-*" in allowed.reason
    refused = file_decision(POLICY, alice, "rollback", "payments")
    assert not refused.allowed
    assert "granted only in shop, shop-*" in refused.reason and "namespace payments is outside" in refused.reason


def test_a_viewer_is_refused_actions_by_the_file_with_the_role_named() -> None:
    carol = subject("U0CAROL", "S0PAYDEV")
    assert file_decision(POLICY, carol, "why", "payments").allowed
    refused = file_decision(POLICY, carol, "rollback", "payments")
    assert not refused.allowed
    assert refused.reason == "permissions.yaml: your role viewer (team payments) does not include rollback"


def test_grants_are_never_mixed_across_rules() -> None:
    # viewer in payments + operator in shop must NOT make an operator in payments.
    both = subject("U0ALICE", "S0PAYDEV")
    assert file_decision(POLICY, both, "rollback", "shop").allowed
    assert file_decision(POLICY, both, "why", "payments").allowed
    assert not file_decision(POLICY, both, "rollback", "payments").allowed


def test_defaults_apply_only_to_people_matching_nothing_else() -> None:
    nobody = subject("U0NOBODY")
    assert file_decision(POLICY, nobody, "status", "public").allowed
    assert not file_decision(POLICY, nobody, "status", "shop").allowed
    vic = subject("U0VIC")  # a binding matches: the defaults do not add `public`
    assert [g.rule for g in grants_for(POLICY, "U0VIC", set())] == ["binding #2"]
    assert not file_decision(POLICY, vic, "status", "public").allowed


def test_no_grant_at_all_says_so() -> None:
    policy = parse_policy("roles: {viewer: [why]}\n", verbs=VERB_NAMES)
    decision = file_decision(policy, Subject("U0X"), "why", "shop")
    assert not decision.allowed and "in no team or binding, and defaults.role is not set" in decision.reason
    assert not file_decision(policy, Subject(None), "why", "shop").allowed


def test_a_command_without_namespace_needs_a_grant_on_every_namespace() -> None:
    assert not file_decision(POLICY, subject("U0ALICE"), "status", None).allowed
    assert file_decision(POLICY, subject("U0SAM", "S0SRE"), "status", None).allowed


def test_kubernetes_identity_first_user_and_union_of_groups() -> None:
    sam = subject("U0SAM", "S0SRE", "S0SHOPDEV")
    assert sam.k8s_user == "slack:U0SAM"  # teams come before bindings
    assert sam.k8s_groups == ("team-shop", "sre")
    assert sam.usergroups == {"S0SRE", "S0SHOPDEV"}
    vic = subject("U0VIC")  # a grant without mapping: the bot's own identity
    assert vic.k8s_user is None and vic.k8s_groups == ()


def test_user_groups_not_in_the_policy_are_ignored() -> None:
    assert subject("U0ALICE", "S0RANDOM").usergroups == frozenset()


def test_limits_bound_scale() -> None:
    over = limit_decision(POLICY, Command("scale", "checkout", "shop", (("replicas", "21"),)))
    assert over is not None and not over.allowed and "limits.max_replicas is 20" in over.reason
    within = limit_decision(POLICY, Command("scale", "checkout", "shop", (("replicas", "20"),)))
    assert within is not None and within.allowed
    assert limit_decision(POLICY, Command("rollback", "checkout", "shop")) is None


def test_the_api_permissions_each_action_needs() -> None:
    def described(text: str) -> list[str]:
        command = parse(text)
        kind, name = target_kind(command)
        return [need.describe(name) for need in needs_for(command.verb, kind)]

    assert described("rollback checkout -n shop") == [
        "get deployments.apps checkout",
        "patch deployments.apps checkout",
        "list replicasets.apps",
    ]
    assert described("scale sts/db -n shop --replicas 2") == [
        "get statefulsets.apps/scale db",
        "patch statefulsets.apps/scale db",
    ]
    assert described("restart ds/agent -n shop")[1] == "patch daemonsets.apps agent"
    assert described("logs checkout -n shop") == ["list pods", "get pods/log"]


def test_cached_directory_uses_the_ttl_and_survives_slack_outages() -> None:
    now = [0.0]
    fake = FakeDirectory({"S0SHOPDEV": {"U0BOB"}})
    cached = CachedDirectory(fake, ttl=60, monotonic=lambda: now[0])
    assert cached.usergroups_of("U0BOB", {"S0SHOPDEV", "S0SRE"}) == {"S0SHOPDEV"}
    calls = fake.calls
    assert cached.usergroups_of("U0BOB", {"S0SHOPDEV", "S0SRE"}) == {"S0SHOPDEV"}
    assert fake.calls == calls  # cached
    now[0] = 61
    fake.groups["S0SHOPDEV"] = set()
    assert cached.usergroups_of("U0BOB", {"S0SHOPDEV"}) == frozenset()  # expired: asked again
    fake.groups["S0SHOPDEV"] = {"U0BOB"}
    now[0] = 200
    cached.usergroups_of("U0BOB", {"S0SHOPDEV"})
    fake.failing = True
    now[0] = 300
    assert cached.usergroups_of("U0BOB", {"S0SHOPDEV"}) == {"S0SHOPDEV"}  # stale but known
    assert cached.usergroups_of("U0BOB", {"S0NEVERSEEN"}) == frozenset()  # unknown: fail closed


# -- the engine as the dispatch's gate, without a cluster ------------------------------------------


@pytest.fixture
def services(tmp_path: Path) -> CommandServices:
    (tmp_path / "permissions.yaml").write_text(
        "roles: {viewer: [why, status, can-i], operator: [why, status, can-i, rollback, scale, restart]}\n"
        "teams:\n"
        "  shop: {namespaces: [shop], members: {users: [U0ALICE], usergroups: [S0SHOPDEV]}, role: operator}\n"
        "  look: {namespaces: [shop], members: {users: [U0VIEW]}, role: viewer}\n"
        "limits: {max_replicas: 5}\n"
    )
    kube = UnconfiguredKubeClient("no cluster in pure tests")
    directory = FakeDirectory({"S0SHOPDEV": {"U0BOB"}})
    directory.deleted.add("U0GONE")
    engine = PermissionEngine(
        PolicyFile(tmp_path / "permissions.yaml", verbs=VERB_NAMES), kube=kube, directory=directory
    )
    return command_services(kube, Database(tmp_path / "bot.db"), permissions=engine)


def _attempt(services: CommandServices, user: str, text: str, *, confirmed: bool = False) -> None:
    engine = _engine(services)
    ctx = VerbContext(services=services, subject=engine.subject_for(user), confirmed=confirmed)
    run_audited(ctx, parse(text), decide=lambda c, cmd: engine.authorize(c.subject, cmd, c.namespace_or_none(cmd)))


def _engine(services: CommandServices) -> PermissionEngine:
    assert services.permissions is not None
    return services.permissions


def test_usergroup_membership_comes_from_the_directory(services: CommandServices) -> None:
    bob = _engine(services).subject_for("U0BOB")
    assert bob.usergroups == {"S0SHOPDEV"}


@pytest.mark.parametrize(
    ("user", "text", "reason"),
    [
        ("U0VIEW", "rollback checkout -n shop", "does not include rollback"),
        ("U0ALICE", "rollback checkout -n payments", "namespace payments is outside"),
        ("U0ALICE", "scale checkout -n shop --replicas 6", "limits.max_replicas is 5"),
        ("U0STRANGER", "status -n shop", "in no team or binding"),
        ("U0GONE", "status -n shop", "in no team or binding"),
    ],
)
def test_refusals_change_nothing_and_leave_exactly_one_audit_row(
    services: CommandServices, user: str, text: str, reason: str
) -> None:
    with pytest.raises(PermissionDenied, match=reason):
        _attempt(services, user, text, confirmed=True)
    rows = services.audit.since(None)
    assert len(rows) == 1
    assert rows[0].decision == "denied" and rows[0].outcome == "denied" and reason in rows[0].reason
    assert rows[0].slack_user == user and rows[0].action_id is None
    assert services.kube.calls == 0  # nothing was sent to any cluster


def test_a_deactivated_slack_account_is_refused(services: CommandServices, tmp_path: Path) -> None:
    (tmp_path / "permissions.yaml").write_text(
        "roles: {viewer: [status]}\nteams: {t: {namespaces: [shop], members: {users: [U0GONE]}, role: viewer}}\n"
    )
    _engine(services).policy_file.check_every = 0
    with pytest.raises(PermissionDenied, match="deactivated"):
        _attempt(services, "U0GONE", "status -n shop")


@pytest.mark.parametrize(
    "text",
    [
        "rollback 'checkout; rm -rf /' -n shop",
        "rollback $(whoami) -n shop",
        "rollback ../etc/passwd -n shop",
        "rollback checkout -n ../kube-system",
        "rollback checkout -n 'shop`id`'",
        "scale checkout -n shop --replicas 99999999999999999999",
        "scale checkout -n shop --replicas -1",
        "scale checkout -n shop --replicas 1e3",
        "rollback checkout -n shop --to-revision 99999999999",
        "restart deploy/checkout/../x -n shop",
    ],
)
def test_hostile_input_is_refused_by_the_parser(text: str) -> None:
    with pytest.raises(UsageError):
        parse(text)


def test_a_forged_action_id_is_refused_and_recorded_once(services: CommandServices) -> None:
    with pytest.raises(UsageError, match="not one the bot issued"):
        _attempt(services, "U0ALICE", "rollback checkout -n shop --action-id 'x;reboot'", confirmed=True)
    rows = services.audit.since(None)
    assert [(r.outcome, r.decision) for r in rows] == [("failed", "allowed")]
    assert services.kube.calls == 0


def test_can_i_parses_the_verb_as_its_first_word_and_round_trips() -> None:
    command = parse("can-i rollback checkout -n shop")
    assert (command.flag("verb"), command.target, command.namespace) == ("rollback", "checkout", "shop")
    assert parse(command.as_text()) == Command(command.verb, "checkout", "shop", command.flags, command.as_text())


def test_gate_decision_type_is_the_shared_one(services: CommandServices) -> None:
    engine = _engine(services)
    assert engine.authorize(engine.subject_for("U0VIEW"), parse("rollback checkout -n shop"), "shop") == Decision(
        False, "permissions.yaml: your role viewer (team look) does not include rollback"
    )


# -- where a command acts, and the Slack account's state --------------------------------------------


@pytest.mark.parametrize(
    ("text", "acted"),
    [
        ("silence node/kwok-node-0 -n shop --for 1h", None),
        ("silence ns/payments -n shop --for 1h", None),
        ("silence checkout -n shop --for 1h", "shop"),
        ("silence payments/checkout --for 1h", "payments"),
        ("describe node/x -n shop", None),
        ("changes no/x -n shop", None),
        ("logs pod/shop-eu/api-0", "shop-eu"),
        ("rollback checkout -n shop", "shop"),
    ],
)
def test_a_command_is_decided_where_it_acts(text: str, acted: str | None) -> None:
    command = parse(text)
    assert acted_namespace(command, command.namespace) == acted


def test_a_cluster_scoped_kind_is_never_reviewed_in_a_namespace() -> None:
    kind, name = target_kind(parse("silence node/n1 -n shop --for 1h"))
    (need,) = needs_for("silence", kind)
    assert need.attributes("shop", name) == {"verb": "get", "group": "", "resource": "nodes", "name": "n1"}
    assert needs_for("silence", target_kind(parse("silence checkout -n shop --for 1h"))[0])[0].describe("x") == (
        "get deployments.apps x"
    )


def test_a_node_target_needs_a_grant_on_every_namespace(services: CommandServices) -> None:
    engine = _engine(services)
    alice = engine.subject_for("U0ALICE")
    command = parse("why node/n1 -n shop")
    decision = engine.authorize(alice, command, acted_namespace(command, "shop"), action=False)
    assert not decision.allowed
    assert "all namespaces is outside" in decision.reason and "Node n1 is cluster-scoped" in decision.reason
    assert services.kube.calls == 0  # refused by the file: the cluster was never asked


def test_the_account_state_is_known_stale_for_a_bounded_time_then_unknown() -> None:
    now = [0.0]
    fake = FakeDirectory({})
    fake.deleted.add("U0GONE")
    cached = CachedDirectory(fake, ttl=60, max_stale=600, monotonic=lambda: now[0])
    assert cached.account("U0BOB").state == "active"
    assert cached.account("U0GONE").state == "deactivated"
    fake.failing = True
    now[0] = 599
    assert cached.account("U0BOB").state == "active"  # stale but known
    assert cached.account("U0NEW").state == "unknown"  # never seen
    now[0] = 601
    unknown = cached.account("U0BOB")
    assert unknown.state == "unknown" and "slack is down" in unknown.reason
    assert cached.account("U0GONE").state == "deactivated"  # never forgotten
    fake.failing = False
    assert cached.account("U0BOB").state == "active"


def test_an_unknown_account_may_read_but_not_act(services: CommandServices) -> None:
    engine = _engine(services)
    assert engine.directory is not None
    directory = engine.directory.directory
    assert isinstance(directory, FakeDirectory)
    directory.failing = True
    alice = engine.subject_for("U0ALICE")
    read = engine.authorize(alice, parse("status -n shop"), "shop", action=False)
    assert read.allowed
    act = engine.authorize(alice, parse("rollback checkout -n shop"), "shop", action=True)
    assert not act.allowed and "cannot confirm that U0ALICE's Slack account is active" in act.reason
    assert not engine.authorize(alice, parse("status -n shop"), "shop").allowed  # undeclared: fail closed
