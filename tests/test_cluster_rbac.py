"""RBAC as the bot meets it: the admin credentials impersonate a person (KubeClient.as_subject), the
real RBAC authorizer allows or refuses as the bindings say, and a SubjectAccessReview agrees."""

from __future__ import annotations

import pytest
from kube_helpers import bind_role, resource_path, wait_for

from bot.errors import PermissionDenied
from bot.kube.client import KubeClient


def _review(kube: KubeClient, user: str, groups: list[str], namespace: str, verb: str, resource: str) -> bool:
    """The API server's own answer to "may `user` in `groups` do `verb` on `resource`?"."""
    answer = kube.request(
        "POST",
        resource_path("authorization.k8s.io/v1", "SubjectAccessReview"),
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": groups,
                "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource},
            },
        },
    )
    return bool(answer["status"].get("allowed"))


def _configmap(namespace: str, name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": "v"},
    }


@pytest.fixture
def bindings(kube: KubeClient, namespace: str) -> str:
    """alice may view; group `shop-oncall` may edit. RBAC is enforced as soon as the bindings exist,
    but wait until the authorizer's cache has them so no test races it."""
    bind_role(kube, namespace, "view", user="alice", name="alice-view")
    bind_role(kube, namespace, "edit", group="shop-oncall", name="oncall-edit")
    wait_for(lambda: _review(kube, "alice", [], namespace, "list", "pods"), 10, "alice's view binding to apply")
    wait_for(
        lambda: _review(kube, "x", ["shop-oncall"], namespace, "create", "configmaps"),
        10,
        "the oncall edit binding to apply",
    )
    return namespace


def test_viewer_can_read_but_not_write(kube: KubeClient, bindings: str) -> None:
    alice = kube.as_subject("alice")
    assert alice.list(resource_path("v1", "Pod", bindings)) == []
    with pytest.raises(PermissionDenied, match="forbidden"):
        alice.request("POST", resource_path("v1", "ConfigMap", bindings), body=_configmap(bindings, "nope"))
    assert _review(kube, "alice", [], bindings, "list", "pods") is True
    assert _review(kube, "alice", [], bindings, "create", "configmaps") is False


def test_unbound_user_is_refused_everything(kube: KubeClient, bindings: str) -> None:
    mallory = kube.as_subject("mallory")
    with pytest.raises(PermissionDenied, match='"mallory" cannot list resource "pods"'):
        mallory.list(resource_path("v1", "Pod", bindings))
    assert _review(kube, "mallory", [], bindings, "list", "pods") is False


def test_group_binding_applies_through_multi_group_impersonation(kube: KubeClient, bindings: str) -> None:
    # The binding is on the SECOND group: this passes only if every Impersonate-Group header is sent.
    bob = kube.as_subject("bob", ("shop-readers", "shop-oncall"))
    created = bob.request("POST", resource_path("v1", "ConfigMap", bindings), body=_configmap(bindings, "by-bob"))
    assert created["metadata"]["name"] == "by-bob"
    # The API server saw bob with both groups (and system:authenticated), as the audit trail would.
    who = bob.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    user_info = who["status"]["userInfo"]
    assert user_info["username"] == "bob"
    assert {"shop-readers", "shop-oncall"} <= set(user_info["groups"])
    assert _review(kube, "bob", ["shop-readers", "shop-oncall"], bindings, "create", "configmaps") is True

    # Without the group, bob is nobody here.
    with pytest.raises(PermissionDenied):
        kube.as_subject("bob", ("shop-readers",)).request(
            "POST", resource_path("v1", "ConfigMap", bindings), body=_configmap(bindings, "not-by-bob")
        )
    assert _review(kube, "bob", ["shop-readers"], bindings, "create", "configmaps") is False
