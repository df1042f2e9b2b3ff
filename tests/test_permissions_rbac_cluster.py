"""deploy/rbac.yaml on the real API server: the bot's ServiceAccount can read, ask SubjectAccessReviews
and impersonate exactly the mapped names — and nothing else; with it, the whole command path works."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_helpers import REPO, bind_role, create, delete, get, resource_path, wait_for
from scenarios import deploy_checkout
from test_permissions_cluster import FakeDirectory, _may

from bot.commands.dispatch import execute
from bot.errors import PermissionDenied
from bot.kube.client import KubeClient
from bot.kube.leasing import LeaseLock, LeaseTiming
from bot.permissions.engine import PermissionEngine
from bot.permissions.policy import PolicyFile
from bot.store.database import Database
from tests.wiring_helpers import VERB_NAMES, command_services

POLICY = """
roles: {{operator: [status, can-i, scale, rollback, restart]}}
teams:
  shop:
    namespaces: [{ns}]
    members: {{users: [U0ALICE, U0MALLORY]}}
    role: operator
    kubernetes: {{user: "slack:{{user_id}}", groups: [team-edit]}}
"""


def _objects(namespace: str, suffix: str) -> list[dict[str, Any]]:
    """deploy/rbac.yaml, renamed so tests don't collide, with the SA in the test namespace and the
    impersonation names of this test's policy (alice only: mallory is left out on purpose)."""
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()) if d]
    out = []
    for original in docs:
        if original["kind"] == "Namespace":
            continue
        doc = copy.deepcopy(original)
        if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace  # namespaced: the test namespace keeps them apart
        else:
            doc["metadata"]["name"] += suffix
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] += suffix
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            doc["subjects"] = [{**doc["subjects"][0], "namespace": namespace}]
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "k8sbot-impersonate" + suffix:
            doc["rules"][0]["resourceNames"] = ["slack:U0ALICE"]
            doc["rules"][1]["resourceNames"] = ["team-edit"]
        out.append(doc)
    return out


def _token_client(kube: KubeClient, namespace: str) -> KubeClient:
    answer = kube.request(
        "POST",
        resource_path("v1", "ServiceAccount", namespace, "k8sbot", "token"),
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}},
    )
    configuration = copy.copy(kube.configuration)
    configuration.cert_file = configuration.key_file = None
    configuration.api_key = {"authorization": "Bearer " + answer["status"]["token"]}
    return KubeClient(configuration)


@pytest.fixture
def bot(kube: KubeClient, namespace: str) -> Iterator[KubeClient]:
    suffix = "-" + uuid.uuid4().hex[:6]
    objects = _objects(namespace, suffix)
    for obj in objects:
        create(kube, obj)
    client = _token_client(kube, namespace)
    wait_for(lambda: client.list(resource_path("v1", "Pod", namespace)) is not None, 30, "the bot's read role")
    yield client
    for obj in objects:
        if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            delete(kube, obj["apiVersion"], obj["kind"], None, obj["metadata"]["name"])


def test_the_bot_reads_but_cannot_write_as_itself(kube: KubeClient, namespace: str, bot: KubeClient) -> None:
    deploy_checkout(kube, namespace, replicas=1, wait=False)
    assert bot.get(resource_path("apps/v1", "Deployment", namespace, "checkout"))["metadata"]["name"] == "checkout"
    bot.list(resource_path("v1", "Secret"))  # cluster-wide list: the documented trade-off
    with pytest.raises(PermissionDenied):
        bot.request(
            "PATCH",
            resource_path("apps/v1", "Deployment", namespace, "checkout", "scale"),
            body={"spec": {"replicas": 2}},
            content_type="application/merge-patch+json",
        )
    with pytest.raises(PermissionDenied):
        bot.request("DELETE", resource_path("v1", "Namespace", None, namespace))


def test_the_bot_holds_its_lease_and_no_other(kube: KubeClient, namespace: str, bot: KubeClient) -> None:
    """deploy/rbac.yaml's Role: create, read and renew the Lease `k8sbot-leader` in the bot's namespace;
    any other Lease is refused."""
    kinds = {d["kind"] for d in yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()) if d}
    assert {"Role", "RoleBinding"} <= kinds
    timing = LeaseTiming(duration=15, renew_deadline=10, retry_period=2)
    lock = LeaseLock(bot, namespace=namespace, name="k8sbot-leader", identity="bot-a", timing=timing)
    assert wait_for(lock.try_acquire_or_renew, 30, "the Role to be bound") is True
    assert lock.try_acquire_or_renew() is True  # renewed: get + update
    assert lock.holder() == "bot-a"
    lock.release()
    assert lock.holder() is None
    other = LeaseLock(bot, namespace=namespace, name="someone-elses", identity="bot-a", timing=timing)
    kube.request(
        "POST",
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
        body={"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "someone-elses"}},
    )
    with pytest.raises(PermissionDenied):
        other.try_acquire_or_renew()


def test_impersonation_is_limited_to_the_mapped_names(kube: KubeClient, namespace: str, bot: KubeClient) -> None:
    bind_role(kube, namespace, "edit", group="team-edit")
    wait_for(lambda: _may(kube, "team-edit", namespace, "patch", "deployments"), 30, "team-edit to be bound")
    pods = resource_path("v1", "Pod", namespace)
    assert bot.as_subject("slack:U0ALICE", ("team-edit",)).list(pods) == []
    with pytest.raises(PermissionDenied, match="impersonate"):
        bot.as_subject("slack:U0MALLORY", ("team-edit",)).list(pods)
    with pytest.raises(PermissionDenied, match="impersonate"):
        bot.as_subject("slack:U0ALICE", ("system:masters",)).list(pods)
    with pytest.raises(PermissionDenied, match="impersonate"):
        bot.as_subject("admin", ()).list(pods)


def test_the_command_path_works_with_only_the_bots_own_role(
    kube: KubeClient, namespace: str, bot: KubeClient, tmp_path: Path
) -> None:
    bind_role(kube, namespace, "edit", group="team-edit")
    wait_for(lambda: _may(kube, "team-edit", namespace, "patch", "deployments"), 30, "team-edit to be bound")
    deploy_checkout(kube, namespace, replicas=1, wait=False)
    path = tmp_path / "permissions.yaml"
    path.write_text(POLICY.format(ns=namespace))
    engine = PermissionEngine(PolicyFile(path, verbs=VERB_NAMES), kube=bot, directory=FakeDirectory({}))
    services = command_services(bot, Database(tmp_path / "bot.db"), permissions=engine)

    preview = execute(services, text=f"scale checkout -n {namespace} --replicas 2", slack_user="U0ALICE")
    done = execute(services, text=preview.data["confirm"]["command"], slack_user="U0ALICE", confirmed=True)
    assert done.data["outcome"] == "done"
    assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["spec"]["replicas"] == 2

    # Allowed by the file and by RBAC for team-edit, but the bot may not impersonate this user:
    # the API server refuses, nothing changes, and the attempt is recorded as failed.
    with pytest.raises(PermissionDenied, match="impersonate"):
        execute(services, text=f"scale checkout -n {namespace} --replicas 1", slack_user="U0MALLORY", confirmed=True)
    assert get(kube, "apps/v1", "Deployment", namespace, "checkout")["spec"]["replicas"] == 2
    assert [(r.slack_user, r.outcome) for r in services.audit.since(None)] == [
        ("U0ALICE", "done"),
        ("U0MALLORY", "failed"),
    ]
