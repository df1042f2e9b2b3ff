"""Permissions decided per cluster, without a cluster: `clusters:` globs on teams and bindings, a
team's namespaces and Kubernetes identity per cluster (`{default: ..., <cluster>: ...}`), and the
engine of one cluster deciding for that cluster only. The SubjectAccessReview half is in
tests/test_permissions_clusters_cluster.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.kube.client import UnconfiguredKubeClient
from bot.model import DEFAULT_CLUSTER, Command, Subject
from bot.permissions.engine import PermissionEngine, file_decision
from bot.permissions.identity import grants_for, subject_from_policy
from bot.permissions.policy import Policy, PolicyFile, parse_policy
from bot.permissions.rbac import mapped_identities
from k8sbot.cli import main
from tests.cli_run import clean_cli_env
from tests.wiring_helpers import VERB_NAMES

TEXT = """
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:                           # operators on staging only
    clusters: [staging, staging-*]
    namespaces: [shop]
    members: {users: [U0ALICE]}
    role: operator
  payments:                       # other namespaces and another identity per cluster
    namespaces:
      default: [payments]
      prod-eu: [payments, payments-eu]
    members: {users: [U0PAM]}
    role: operator
    kubernetes:
      default: {user: "slack:{user_id}", groups: [team-payments]}
      prod-eu: {user: "eu:{user_id}", groups: [team-payments-eu]}
  search:                         # a mapping without `default`: nothing where it has no entry
    namespaces: [search]
    members: {users: [U0SID]}
    role: operator
    kubernetes:
      prod-us: {user: "us:{user_id}", groups: [search-us]}
  docs:                           # namespaces only on prod-us; everywhere else nothing
    namespaces:
      prod-us: [docs]
    members: {users: [U0DOT]}
    role: viewer
bindings:
  - name: sre-prod
    usergroups: [S0SRE]
    clusters: ["prod-*"]
    role: operator
    namespaces: ["*"]
    kubernetes: {user: "sre:{user_id}", groups: [sre]}
defaults: {role: viewer, namespaces: [public]}
"""

POLICY = parse_policy(TEXT, verbs=VERB_NAMES)


def subject(user: str, *groups: str, cluster: str) -> Subject:
    return subject_from_policy(POLICY, user, set(groups), cluster=cluster)


def allowed(user: str, verb: str, namespace: str | None, *, cluster: str, groups: tuple[str, ...] = ()) -> bool:
    return file_decision(POLICY, subject(user, *groups, cluster=cluster), verb, namespace, cluster=cluster).allowed


def test_a_user_allowed_on_staging_is_refused_on_prod() -> None:
    assert allowed("U0ALICE", "rollback", "shop", cluster="staging")
    assert allowed("U0ALICE", "rollback", "shop", cluster="staging-2")
    decision = file_decision(POLICY, subject("U0ALICE", cluster="prod-eu"), "rollback", "shop", cluster="prod-eu")
    assert not decision.allowed
    assert decision.reason == (
        "permissions.yaml: U0ALICE has no grant in cluster prod-eu (team shop: only in clusters staging, staging-*)"
    )
    # Being in a team elsewhere is being in a team: the defaults do not fill in on prod.
    assert not allowed("U0ALICE", "status", "public", cluster="prod-eu")


def test_cluster_globs_of_a_binding() -> None:
    assert allowed("U0SAM", "restart", "anything", cluster="prod-us", groups=("S0SRE",))
    assert allowed("U0SAM", "restart", None, cluster="prod-eu", groups=("S0SRE",))
    assert not allowed("U0SAM", "restart", "anything", cluster="staging", groups=("S0SRE",))
    assert not allowed("U0SAM", "restart", "anything", cluster="preprod", groups=("S0SRE",))


def test_namespaces_per_cluster_with_a_default() -> None:
    assert allowed("U0PAM", "rollback", "payments-eu", cluster="prod-eu")
    assert not allowed("U0PAM", "rollback", "payments-eu", cluster="prod-us")  # the default: [payments]
    assert allowed("U0PAM", "rollback", "payments", cluster="prod-us")
    refused = file_decision(
        POLICY, subject("U0PAM", cluster="prod-us"), "rollback", "payments-eu", cluster="prod-us"
    ).reason
    assert "granted only in payments (team payments); namespace payments-eu is outside" in refused


def test_the_identity_is_the_one_mapped_for_the_cluster() -> None:
    eu = subject("U0PAM", cluster="prod-eu")
    assert (eu.k8s_user, eu.k8s_groups) == ("eu:U0PAM", ("team-payments-eu",))
    us = subject("U0PAM", cluster="prod-us")
    assert (us.k8s_user, us.k8s_groups) == ("slack:U0PAM", ("team-payments",))
    sre = subject("U0SAM", "S0SRE", cluster="prod-eu")
    assert (sre.k8s_user, sre.k8s_groups) == ("sre:U0SAM", ("sre",))
    # A binding for prod-* only maps nobody on staging.
    assert subject("U0SAM", "S0SRE", cluster="staging").k8s_user is None


def test_a_mapping_without_default_grants_nothing_where_it_has_no_entry() -> None:
    # kubernetes without `default`: on staging the team would have no identity, so it grants nothing
    # there (never "the bot acts as itself" for people the file meant to map).
    assert allowed("U0SID", "rollback", "search", cluster="prod-us")
    assert subject("U0SID", cluster="prod-us").k8s_user == "us:U0SID"
    refused = file_decision(POLICY, subject("U0SID", cluster="staging"), "why", "search", cluster="staging")
    assert not refused.allowed
    assert "team search: kubernetes maps no identity for staging and has no default" in refused.reason
    assert subject("U0SID", cluster="staging").k8s_user is None
    # namespaces without `default`: the same.
    assert allowed("U0DOT", "why", "docs", cluster="prod-us")
    refused = file_decision(POLICY, subject("U0DOT", cluster="prod-eu"), "why", "docs", cluster="prod-eu")
    assert "team docs: namespaces lists none for prod-eu and has no default" in refused.reason


def test_old_files_and_old_call_sites_mean_every_cluster() -> None:
    old = parse_policy(
        "roles: {viewer: [why]}\nteams:\n  shop: {namespaces: [shop], members: {users: [U0A]}, role: viewer,"
        ' kubernetes: {user: "s:{user_id}"}}\n',
        verbs=VERB_NAMES,
    )
    for cluster in ("prod-eu", "staging", DEFAULT_CLUSTER):
        person = subject_from_policy(old, "U0A", set(), cluster=cluster)
        assert person.k8s_user == "s:U0A"
        assert file_decision(old, person, "why", "shop", cluster=cluster).allowed
    # Without a cluster: DEFAULT_CLUSTER, as before this change.
    assert [g.rule for g in grants_for(POLICY, "U0PAM", set())] == ["team payments"]
    assert POLICY.teams["payments"].namespaces_in(DEFAULT_CLUSTER) == ("payments",)


def test_routing_helpers_take_the_cluster() -> None:
    assert POLICY.teams_for_namespace("payments-eu", cluster="prod-eu") == ("payments",)
    assert POLICY.teams_for_namespace("payments-eu", cluster="prod-us") == ()
    assert POLICY.teams_for_namespace("shop", cluster="staging") == ("shop",)
    assert POLICY.teams_for_namespace("shop", cluster="prod-eu") == ()
    assert POLICY.teams_for_namespace("shop") == ()  # DEFAULT_CLUSTER is not a staging cluster


def test_the_impersonation_role_lists_every_clusters_identities_or_one_clusters() -> None:
    users, groups = mapped_identities(POLICY, {"S0SRE": {"U0SAM"}})
    assert {"eu:U0PAM", "slack:U0PAM", "us:U0SID", "sre:U0SAM"} <= set(users)
    assert {"team-payments", "team-payments-eu", "search-us", "sre"} <= set(groups)
    users, groups = mapped_identities(POLICY, {"S0SRE": {"U0SAM"}}, cluster="staging")
    assert groups == ["team-payments"] and "eu:U0PAM" not in users


# -- engines: one per cluster, sharing one file ----------------------------------------------------


@pytest.fixture
def policy_file(tmp_path: Path) -> PolicyFile:
    path = tmp_path / "permissions.yaml"
    path.write_text(TEXT)
    return PolicyFile(path, verbs=VERB_NAMES)


def test_engines_of_two_clusters_share_one_file_and_decide_each_for_its_own(policy_file: PolicyFile) -> None:
    kube = UnconfiguredKubeClient("no cluster in this test")
    staging = PermissionEngine(policy_file, kube=kube, cluster="staging")
    prod = PermissionEngine(policy_file, kube=kube, cluster="prod-eu")
    command = Command(verb="rollback", target="checkout", namespace="shop")
    assert staging.authorize(staging.subject_for("U0ALICE"), command, "shop").allowed
    refused = prod.explain(prod.subject_for("U0ALICE"), command, "shop")
    assert not refused.decision.allowed and "no grant in cluster prod-eu" in refused.decision.reason
    assert refused.to_json()["cluster"] == "prod-eu" and refused.to_json()["rbac"] is None
    assert prod.subject_for("U0PAM").k8s_user == "eu:U0PAM"
    assert staging.subject_as("U0PAM", ()).k8s_user == "slack:U0PAM"
    assert PermissionEngine(policy_file, kube=kube).cluster == DEFAULT_CLUSTER


# -- the terminal: `k8sbot permissions check --cluster` --------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = clean_cli_env(tmp_path, monkeypatch)
    (root / "permissions.yaml").write_text(TEXT)
    monkeypatch.setenv("K8SBOT_PERMISSIONS", str(root / "permissions.yaml"))
    return root


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["permissions", "check", "--as", "U0ALICE", "--verb", "why", "-n", "shop", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_check_decides_for_the_configured_cluster_by_default(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = check(capsys, "--json")
    assert code == 1 and json.loads(out)["cluster"] == DEFAULT_CLUSTER
    monkeypatch.setenv("K8SBOT_CLUSTER_NAME", "staging")
    code, out, _ = check(capsys, "--json")
    assert code == 0 and json.loads(out)["cluster"] == "staging"
    code, out, _ = check(capsys)
    assert code == 0 and out.startswith("ALLOWED: U0ALICE why in shop (cluster staging)")


def test_check_with_cluster_names_a_configured_cluster(
    cli_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K8SBOT_CLUSTER_NAME", "staging")
    code, out, _ = check(capsys, "--cluster", "staging", "--json")
    assert code == 0 and json.loads(out)["cluster"] == "staging"
    # A cluster this configuration does not serve: its RBAC cannot be asked, so no half answer.
    code, out, err = check(capsys, "--cluster", "prod-eu")
    assert code == 2 and out == ""
    assert "--cluster prod-eu: not a configured cluster (configured: staging)" in err


def test_validate_summarises_per_cluster_shapes(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["permissions", "validate", "--file", str(cli_env / "permissions.yaml")])
    out = capsys.readouterr().out
    assert code == 0
    assert "team shop: role operator in shop, clusters staging, staging-*" in out
    assert "team payments: role operator in default: payments; prod-eu: payments, payments-eu" in out
    assert "acts as default: slack:{user_id} ['team-payments']; prod-eu: eu:{user_id} ['team-payments-eu']" in out


def test_the_example_file_parses_and_its_multi_cluster_comment_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "permissions.yaml"
    text = example.read_text()
    assert isinstance(parse_policy(text, verbs=VERB_NAMES), Policy)
    # The commented multi-cluster example, uncommented, is a valid file too.
    lines = text[text.index("# --- several clusters: an example") :].splitlines()[1:]
    commented = lines[: next((i for i, x in enumerate(lines) if not x.startswith("#")), None)]
    body = "\n".join(line.removeprefix("#").removeprefix(" ") for line in commented)
    parsed = parse_policy("roles: {operator: [why, rollback]}\n" + body, verbs=VERB_NAMES)
    assert any(team.clusters != ("*",) for team in parsed.teams.values())


def test_rbac_for_one_cluster_lists_only_the_identities_mapped_there(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["permissions", "rbac", "--file", str(cli_env / "permissions.yaml"), "--members", "S0SRE=U0SAM"]
    assert main([*argv, "--cluster", "prod-eu"]) == 0
    one = capsys.readouterr().out
    assert "# For cluster prod-eu" in one and "eu:U0PAM" in one and "team-payments-eu" in one
    assert "slack:U0PAM" not in one and "us:U0SID" not in one
    assert main(argv) == 0
    every = capsys.readouterr().out
    assert "slack:U0PAM" in every and "eu:U0PAM" in every and "us:U0SID" in every
