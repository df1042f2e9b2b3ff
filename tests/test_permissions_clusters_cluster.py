"""Permissions per cluster against a real API server: the SubjectAccessReview of each cluster's engine
is asked as the identity permissions.yaml maps for THAT cluster.

Both engines talk to the same real cluster (the local one) under two different cluster names,
`staging` and `prod`: what differs between them is only the name, so every difference in the
answers comes from the per-cluster mapping, not from two clusters' RBAC. In the test namespace,
group `mc-staging-edit` is bound to `edit` and group `mc-prod-view` to `view`. People:
  U0ALICE  operator in the namespace on every cluster; acts as stg:U0ALICE (mc-staging-edit) on
           staging and prd:U0ALICE (mc-prod-view) on prod
  U0BOB    operator on staging only (`clusters: [staging]`), acts as bob:U0BOB (mc-staging-edit)
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kube_helpers import bind_role, resource_path, wait_for

from bot.commands.dispatch import execute
from bot.errors import PermissionDenied
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.model import Command
from bot.permissions.engine import PermissionEngine
from bot.permissions.policy import PolicyFile
from bot.settings import Settings
from k8sbot.wiring import Core, build_core
from tests.wiring_helpers import VERB_NAMES

POLICY = """
roles:
  operator: [why, status, logs, describe, changes, can-i, rollback, scale, restart]
teams:
  shop:
    namespaces: [{ns}]
    members: {{users: [U0ALICE]}}
    role: operator
    kubernetes:
      staging: {{user: "stg:{{user_id}}", groups: [mc-staging-edit]}}
      prod: {{user: "prd:{{user_id}}", groups: [mc-prod-view]}}
bindings:
  - name: staging-only
    users: [U0BOB]
    clusters: [staging]
    role: operator
    namespaces: [{ns}]
    kubernetes: {{user: "bob:{{user_id}}", groups: [mc-staging-edit]}}
"""


class FakeDirectory:
    """Our own Directory protocol, in memory (Slack is not under test here)."""

    def users_info(self, user_id: str) -> Mapping[str, Any]:
        return {"id": user_id}

    def usergroup_members(self, group_id: str) -> Collection[str]:
        return ()


def _may(kube: KubeClient, group: str, namespace: str, verb: str) -> bool:
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "probe",
            "groups": [group],
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": "apps", "resource": "deployments"},
        },
    }
    answer = kube.request("POST", resource_path("authorization.k8s.io/v1", "SubjectAccessReview"), body=body)
    return bool(answer["status"].get("allowed"))


@pytest.fixture
def policy_path(kube: KubeClient, namespace: str, tmp_path: Path) -> Path:
    bind_role(kube, namespace, "edit", group="mc-staging-edit")
    bind_role(kube, namespace, "view", group="mc-prod-view")
    wait_for(lambda: _may(kube, "mc-staging-edit", namespace, "patch"), 30, "mc-staging-edit to be bound")
    wait_for(lambda: _may(kube, "mc-prod-view", namespace, "list"), 30, "mc-prod-view to be bound")
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(ns=namespace))
    return path


@pytest.fixture
def prod_core(kube: KubeClient, policy_path: Path, tmp_path: Path) -> Iterator[Core]:
    """The bot as wired for a cluster named `prod` (K8SBOT_CLUSTER_NAME=prod)."""
    settings = Settings(db=str(tmp_path / "bot.db"), permissions=str(policy_path), cluster_name="prod")
    core = build_core(settings, permissions=True, kube=kube, directory=FakeDirectory())
    yield core
    core.database.close()


def test_each_engine_asks_the_review_as_its_clusters_identity(
    kube: KubeClient, namespace: str, policy_path: Path
) -> None:
    shared = PolicyFile(policy_path, verbs=VERB_NAMES)
    staging = PermissionEngine(shared, kube=kube, directory=FakeDirectory(), cluster="staging")
    prod = staging.for_cluster("prod", kube=kube)
    assert prod.policy_file is staging.policy_file and prod.directory is staging.directory
    rollback = Command(verb="rollback", target="checkout", namespace=namespace)

    on_staging = staging.explain(staging.subject_for("U0ALICE"), rollback, namespace)
    assert on_staging.decision.allowed, on_staging.decision.reason
    assert on_staging.cluster is not None
    assert "stg:U0ALICE (groups mc-staging-edit) may get deployments.apps checkout" in on_staging.cluster.reason

    on_prod = prod.explain(prod.subject_for("U0ALICE"), rollback, namespace)
    assert on_prod.file.allowed  # the file says yes on both; prod's RBAC, asked as prd:U0ALICE, says no
    assert not on_prod.decision.allowed
    assert on_prod.decision.reason.startswith(
        "cluster RBAC: prd:U0ALICE (groups mc-prod-view) may not patch deployments.apps checkout"
    )
    assert on_prod.to_json()["cluster"] == "prod" and on_prod.to_json()["rbac"]["allowed"] is False

    # What the bot serves from its records is filtered the same way: edit may get Secrets, view may not.
    secrets = KINDS["Secret"]
    assert staging.may_read(staging.subject_for("U0ALICE"), secrets, namespace).allowed
    refused = prod.may_read(prod.subject_for("U0ALICE"), secrets, namespace)
    assert not refused.allowed and "prd:U0ALICE may not get secrets" in refused.reason


def test_a_user_allowed_on_staging_is_refused_on_prod(prod_core: Core, kube: KubeClient, namespace: str) -> None:
    engine = prod_core.permissions
    assert engine is not None and engine.cluster == "prod"  # the wiring names the engine's cluster
    staging = engine.for_cluster("staging", kube=kube)
    asked = staging.explain(staging.subject_for("U0BOB"), Command(verb="restart", target="checkout"), namespace)
    assert asked.decision.allowed, asked.decision.reason
    assert asked.cluster is not None and asked.cluster.reason.startswith("cluster RBAC: bob:U0BOB")

    with pytest.raises(PermissionDenied, match=r"U0BOB has no grant in cluster prod \(binding #1 \(staging-only\)"):
        execute(prod_core.commands, text=f"restart checkout -n {namespace}", slack_user="U0BOB", confirmed=True)
    (row,) = prod_core.audit.since(None)
    assert (row.slack_user, row.verb, row.decision) == ("U0BOB", "restart", "denied")
    assert row.k8s_user is None  # no identity on prod: nothing was asked of prod's RBAC as anyone


def test_can_i_on_the_prod_bot_names_prod_and_its_identity(prod_core: Core, namespace: str) -> None:
    answer = execute(prod_core.commands, text=f"can-i rollback checkout -n {namespace}", slack_user="U0ALICE")
    assert answer.data["cluster"] == "prod"
    assert answer.data["file"]["allowed"] is True and answer.data["rbac"]["allowed"] is False
    assert "prd:U0ALICE (groups mc-prod-view) may not patch" in answer.data["rbac"]["reason"]
