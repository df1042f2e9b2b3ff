"""Permissions against the real API server and real RBAC objects.

A shop namespace with `checkout`, permissions.yaml naming that namespace, and RoleBindings: group
`team-edit` bound to `edit`, group `team-view` bound to `view`. People:
  U0ALICE  operator, acts as slack:U0ALICE in team-edit      (both locks open for actions)
  U0WEAK   operator, acts as slack:U0WEAK in team-view       (the file says yes, RBAC says no)
  U0VIEW   viewer (via Slack user group S0VIEWERS), team-edit (the file says no)
Every command goes through `bot.commands.dispatch.execute`, the path Slack and `k8sbot ask` use.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import bind_role, get, resource_path, wait_for
from scenarios import App, deploy_checkout

from bot.commands.dispatch import execute
from bot.errors import PermissionDenied
from bot.kube.client import KubeClient
from bot.model import Answer
from bot.settings import Settings
from bot.store.audit import AuditEntry, AuditLog
from k8sbot.cli_permissions import add_parsers
from k8sbot.wiring import Core, build_core

POLICY = """
roles:
  viewer:   [why, status, logs, describe, changes, can-i]
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:
    namespaces: [{ns}]
    members: {{users: [U0ALICE]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-edit]}}
  weak:
    namespaces: [{ns}]
    members: {{users: [U0WEAK]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-view]}}
  readers:
    namespaces: [{ns}]
    members: {{usergroups: [S0VIEWERS]}}
    role: viewer
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-edit]}}
limits: {{max_replicas: 5}}
"""


class FakeDirectory:
    """Our own Directory protocol, in memory (Slack is not under test here)."""

    def __init__(self, groups: dict[str, set[str]]) -> None:
        self.groups = groups

    def users_info(self, user_id: str) -> Mapping[str, Any]:
        return {"id": user_id}

    def usergroup_members(self, group_id: str) -> Collection[str]:
        return self.groups.get(group_id, set())


@dataclass
class Shop:
    kube: KubeClient
    core: Core
    app: App
    audit: AuditLog

    @property
    def namespace(self) -> str:
        return self.app.namespace

    def run(self, user: str, text: str, *, confirmed: bool = False) -> Answer:
        return execute(self.core.commands, text=text, slack_user=user, confirmed=confirmed)

    def deployment(self) -> dict[str, Any]:
        return get(self.kube, "apps/v1", "Deployment", self.namespace, self.app.name)

    def rows(self) -> list[AuditEntry]:
        return self.audit.since(None)


def _may(kube: KubeClient, group: str, namespace: str, verb: str, resource: str) -> bool:
    answer = kube.request(
        "POST",
        resource_path("authorization.k8s.io/v1", "SubjectAccessReview"),
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "probe",
                "groups": [group],
                "resourceAttributes": {"namespace": namespace, "verb": verb, "group": "apps", "resource": resource},
            },
        },
    )
    return bool(answer["status"].get("allowed"))


@pytest.fixture
def shop(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Shop]:
    yield from open_shop(kube, namespace, tmp_path)


def open_shop(kube: KubeClient, namespace: str, tmp_path: Path) -> Iterator[Shop]:
    """The world in the module docstring (shared with test_actions_cluster)."""
    bind_role(kube, namespace, "edit", group="team-edit")
    bind_role(kube, namespace, "view", group="team-view")
    # The aggregated edit/view roles and the new bindings must be in the authorizer's cache first.
    wait_for(lambda: _may(kube, "team-edit", namespace, "patch", "deployments"), 30, "team-edit to be bound")
    wait_for(lambda: _may(kube, "team-view", namespace, "list", "deployments"), 30, "team-view to be bound")
    app = deploy_checkout(kube, namespace)
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(ns=namespace))
    settings = Settings(db=str(tmp_path / "bot.db"), permissions=str(path))
    core = build_core(settings, permissions=True, kube=kube, directory=FakeDirectory({"S0VIEWERS": {"U0VIEW"}}))
    yield Shop(kube, core, app, core.audit)
    core.database.close()


def test_a_viewer_is_refused_by_the_file_and_nothing_changes(shop: Shop) -> None:
    before = shop.deployment()["metadata"]["generation"]
    with pytest.raises(PermissionDenied, match=r"your role viewer \(team readers\) does not include rollback"):
        shop.run("U0VIEW", "rollback checkout -n " + shop.namespace, confirmed=True)
    assert shop.deployment()["metadata"]["generation"] == before
    (row,) = shop.rows()
    assert (row.slack_user, row.verb, row.decision, row.outcome) == ("U0VIEW", "rollback", "denied", "denied")
    assert row.usergroups == ("S0VIEWERS",) and row.k8s_user == "slack:U0VIEW"


def test_an_operator_bound_only_to_view_is_refused_by_the_cluster_and_told_why(shop: Shop) -> None:
    before = shop.deployment()["metadata"]["generation"]
    with pytest.raises(PermissionDenied) as refused:
        shop.run("U0WEAK", "scale checkout -n " + shop.namespace + " --replicas 3", confirmed=True)
    message = str(refused.value)
    assert message.startswith("cluster RBAC: slack:U0WEAK (groups team-view) may not patch deployments.apps/scale")
    assert "ask your cluster admin" in message
    assert shop.deployment()["metadata"]["generation"] == before
    (row,) = shop.rows()
    assert row.decision == "denied" and row.reason == message and row.k8s_groups == ("team-view",)


def test_reading_is_allowed_for_the_view_bound_operator(shop: Shop) -> None:
    answer = shop.run("U0WEAK", "can-i status checkout -n " + shop.namespace)
    assert answer.data["allowed"] is True
    assert answer.data["rbac"]["allowed"] is True
    assert answer.data["rbac"]["reason"].endswith(f"may list pods, list events in namespace {shop.namespace}")


def test_a_namespace_outside_the_globs_is_refused(shop: Shop) -> None:
    with pytest.raises(PermissionDenied, match=r"granted only in t-.*; namespace kube-system is outside"):
        shop.run("U0ALICE", "restart checkout -n kube-system", confirmed=True)
    (row,) = shop.rows()
    assert row.namespace == "kube-system" and row.outcome == "denied"


def test_can_i_explains_both_locks(shop: Shop) -> None:
    ns = shop.namespace
    weak = shop.run("U0WEAK", f"can-i rollback checkout -n {ns}")
    assert weak.title == f"No: you may not rollback checkout in {ns}"
    assert weak.data["file"]["allowed"] is True and "team weak" in weak.data["file"]["reason"]
    assert weak.data["rbac"]["allowed"] is False
    assert "may not patch deployments.apps checkout" in weak.data["rbac"]["reason"]
    assert any(line.startswith("✗ cluster RBAC") for line in weak.lines)

    alice = shop.run("U0ALICE", f"can-i rollback checkout -n {ns}")
    assert alice.data["allowed"] is True and alice.data["rbac"]["allowed"] is True
    assert "slack:U0ALICE (groups team-edit) may get deployments.apps checkout" in alice.data["rbac"]["reason"]

    viewer = shop.run("U0VIEW", f"can-i rollback checkout -n {ns}")
    assert viewer.data["file"]["allowed"] is False and viewer.data["rbac"] is None
    # can-i itself is a read: recorded once each, never refused to people who hold it.
    assert [r.outcome for r in shop.rows()] == ["done", "done", "done"]


def test_permissions_check_from_a_terminal_gives_the_same_decision(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_parsers(parser.add_subparsers(dest="cmd"))

    def check(*argv: str) -> int:
        args = parser.parse_args(["permissions", "check", *argv, "--namespace", shop.namespace])
        code: int = args.handler(args, shop.core)
        return code

    assert check("--as", "U0ALICE", "--verb", "rollback", "--target", "checkout") == 0
    assert check("--as", "U0WEAK", "--verb", "rollback", "--target", "checkout") == 1
    assert check("--as", "U0NOBODY", "--as-group", "S0VIEWERS", "--verb", "rollback") == 1
    assert check("--as", "U0NOBODY", "--as-group", "S0VIEWERS", "--verb", "logs") == 0
    assert check("--as", "U0ALICE", "--verb", "scale", "--replicas", "6") == 1
    out = capsys.readouterr().out
    assert "DENIED: U0WEAK rollback" in out and "may not patch deployments.apps checkout" in out
    assert "limits.max_replicas is 5" in out
    assert shop.rows() == []  # a terminal check is a question, not an attempt
