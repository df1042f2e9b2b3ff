"""Diffing is pure: two objects in the API's JSON shape in, a named Change (or nothing) out."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from typing import Any

from bot.changes.diffing import build_change, find_actor, snapshot, template_hash
from bot.kube.fields import differences_between, render_path
from bot.model import ChangeKind

AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def fingerprint(value: str) -> str:
    return "fp:" + hashlib.sha256(value.encode()).hexdigest()[:8]


def deployment(*, image: str = "nginx:1.25", replicas: int = 2, revision: str = "1", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "u1",
            "resourceVersion": "100",
            "generation": 3,
            "creationTimestamp": "2026-05-01T00:00:00Z",
            "labels": {"app": "web"},
            "annotations": {
                "deployment.kubernetes.io/revision": revision,
                "kubectl.kubernetes.io/last-applied-configuration": '{"big": "copy"}',
            },
            "managedFields": [],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": image,
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "sidecar", "image": "envoy:1"},
                    ]
                },
            },
        },
        "status": {"observedGeneration": 3, "readyReplicas": 2, "conditions": []},
    }
    obj.update(extra)
    return obj


def change_of(kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None, **kw: Any):  # type: ignore[no-untyped-def]
    before = snapshot(kind, old, fingerprint=fingerprint) if old else None
    after = snapshot(kind, new, fingerprint=fingerprint) if new else None
    return build_change(before, after, obj=new, at=AT, **kw)


def test_status_and_metadata_noise_is_not_a_change() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["metadata"]["resourceVersion"] = "200"
    new["metadata"]["generation"] = 4
    new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
    new["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    new["metadata"]["managedFields"] = [{"manager": "x", "time": "2026-05-04T09:00:00Z"}]
    new["status"] = {"readyReplicas": 1, "observedGeneration": 4}
    assert change_of("Deployment", old, new) is None


def test_image_change_is_named_with_before_after_and_revision() -> None:
    old = deployment()
    new = deployment(image="nginx:1.26", revision="2")
    change = change_of("Deployment", old, new)
    assert change is not None
    assert change.kind is ChangeKind.IMAGE
    assert change.summary == "image web: nginx:1.25 → nginx:1.26"
    assert change.revision == 2
    assert [f.to_json() for f in change.fields] == [
        {
            "path": "spec.template.spec.containers[0].image",
            "before": "nginx:1.25",
            "after": "nginx:1.26",
            "label": "image of container web",
        }
    ]


def test_reordering_named_list_items_is_not_a_change() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    containers = new["spec"]["template"]["spec"]["containers"]
    containers.reverse()
    containers[1]["env"].reverse()
    assert (
        differences_between(
            snapshot("Deployment", old, fingerprint=fingerprint).body,
            snapshot("Deployment", new, fingerprint=fingerprint).body,
        )
        == []
    )


def test_env_change_is_matched_by_name_and_rendered_with_index() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"].reverse()  # web is now [1]
    new["spec"]["template"]["spec"]["containers"][1]["env"][1]["value"] = "3"
    diffs = differences_between(
        snapshot("Deployment", old, fingerprint=fingerprint).body,
        snapshot("Deployment", new, fingerprint=fingerprint).body,
    )
    assert [(render_path(d.path), d.before, d.after) for d in diffs] == [
        ("spec.template.spec.containers[1].env[1].value", "2", "3")
    ]


def test_scale_is_named() -> None:
    change = change_of("Deployment", deployment(replicas=2), deployment(replicas=5))
    assert change is not None and change.kind is ChangeKind.SCALE
    assert change.summary == "scaled 2 → 5 replicas"


def test_restart_is_named_from_restarted_at() -> None:
    new = deployment()
    new["spec"]["template"]["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-05-04T09:00:00Z"}
    change = change_of("Deployment", deployment(), new)
    assert change is not None and change.kind is ChangeKind.RESTART
    assert change.fields[0].path == "spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt"


def test_rollback_is_named_when_the_recorder_finds_the_older_template() -> None:
    change = change_of(
        "Deployment", deployment(image="nginx:1.26", revision="2"), deployment(revision="3"), rollback_to=1
    )
    assert change is not None and change.kind is ChangeKind.ROLLBACK
    assert change.summary == "rolled back to revision 1 (now revision 3): image web: nginx:1.26 → nginx:1.25"


def test_template_hash_ignores_the_replicaset_pod_template_hash_label() -> None:
    template = deployment()["spec"]["template"]
    rs_template = copy.deepcopy(template)
    rs_template["metadata"]["labels"]["pod-template-hash"] = "abc123"
    assert template_hash(template) == template_hash(rs_template)
    rs_template["spec"]["containers"][0]["image"] = "other"
    assert template_hash(template) != template_hash(rs_template)


def test_configmap_changes_name_their_keys() -> None:
    old = {
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "shop", "uid": "c"},
        "data": {"a": "1", "b": "2"},
    }
    new = copy.deepcopy(old)
    new["data"] = {"a": "9", "c": "3"}
    change = change_of("ConfigMap", old, new)
    assert change is not None and change.kind is ChangeKind.CONFIG
    assert change.summary == "ConfigMap keys changed: a; keys added: c; keys removed: b"
    assert {f.path: (f.before, f.after) for f in change.fields} == {
        "data.a": ("1", "9"),
        "data.c": (None, "3"),
        "data.b": ("2", None),
    }


def test_secret_values_never_reach_the_snapshot_or_the_change() -> None:
    old = {
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "namespace": "shop",
            "uid": "s1",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"c2VjcmV0LW9uZQ=="}}'
            },
        },
        "type": "Opaque",
        "data": {"password": "c2VjcmV0LW9uZQ=="},
    }
    new = copy.deepcopy(old)
    new["data"] = {"password": "c2VjcmV0LXR3b28x", "token": "dG9r"}
    before = snapshot("Secret", old, fingerprint=fingerprint)
    after = snapshot("Secret", new, fingerprint=fingerprint)
    assert "c2VjcmV0" not in repr(before) + repr(after)
    change = build_change(before, after, obj=new, at=AT)
    assert change is not None and change.kind is ChangeKind.SECRET
    assert change.summary == "Secret keys changed: password; keys added: token"
    assert "c2VjcmV0" not in repr(change.to_json())
    assert {f.path for f in change.fields} == {"data.password", "data.token"}


def test_node_condition_transition_is_recorded_and_heartbeats_are_not() -> None:
    def node(ready: str, heartbeat: str) -> dict[str, Any]:
        return {
            "kind": "Node",
            "metadata": {"name": "n1", "uid": "n"},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": ready, "lastHeartbeatTime": heartbeat, "reason": "KubeletReady"}
                ],
                "allocatable": {"cpu": "8"},
            },
        }

    assert change_of("Node", node("True", "t1"), node("True", "t2")) is None
    change = change_of("Node", node("True", "t1"), node("False", "t3"))
    assert change is not None and change.kind is ChangeKind.NODE_CONDITION
    assert change.summary == "node condition Ready True → False"


def test_actor_is_the_newest_manager_owning_a_changed_field() -> None:
    new = deployment(image="nginx:1.26", revision="2")
    new["metadata"]["managedFields"] = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "time": "2026-05-01T00:00:00Z",
            "fieldsV1": {
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}, "f:name": {}}}}},
                }
            },
        },
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "subresource": "status",
            "time": "2026-05-04T09:00:05Z",
            "fieldsV1": {"f:status": {"f:replicas": {}}},
        },
        {
            "manager": "kubectl-set",
            "operation": "Update",
            "time": "2026-05-04T09:00:00Z",
            "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}}},
        },
        {
            "manager": "helm",
            "operation": "Update",
            "time": "2026-05-04T09:30:00Z",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}},
        },
    ]
    change = change_of("Deployment", deployment(), new)
    assert change is not None and change.actor == "kubectl-set"


def test_actor_for_a_scale_through_the_subresource() -> None:
    obj = {
        "metadata": {
            "managedFields": [
                {
                    "manager": "argocd-controller",
                    "operation": "Apply",
                    "time": "2026-05-01T00:00:00Z",
                    "fieldsV1": {"f:spec": {"f:template": {}}},
                },
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "subresource": "scale",
                    "time": "2026-05-04T09:00:00Z",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}},
                },
            ]
        }
    }
    assert find_actor(obj, [("spec", "replicas")]) == "kubectl"
    assert find_actor(obj, [("spec", "template", "spec")]) == "argocd-controller"


def test_created_and_deleted() -> None:
    created = change_of("Deployment", None, deployment())
    deleted = change_of("Deployment", deployment(), None)
    assert created is not None and created.kind is ChangeKind.CREATED
    assert deleted is not None and deleted.kind is ChangeKind.DELETED


def test_deployment_not_yet_observed_by_its_controller_is_not_settled() -> None:
    unsettled = deployment()
    unsettled["metadata"]["generation"] = 4
    assert not snapshot("Deployment", unsettled, fingerprint=fingerprint).settled
    assert snapshot("Deployment", deployment(), fingerprint=fingerprint).settled


def test_node_conditions_appearing_are_a_condition_change_and_a_new_container_stays_whole() -> None:
    bare = {"kind": "Node", "metadata": {"name": "n1", "uid": "n"}}
    ready = {**bare, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    change = change_of("Node", bare, ready)
    assert change is not None and change.kind is ChangeKind.NODE_CONDITION
    assert change.summary == "node condition Ready None → True"
    new = deployment()
    new["spec"]["template"]["spec"]["containers"].append({"name": "debug", "image": "busybox"})
    added = change_of("Deployment", deployment(), new)
    assert added is not None
    assert [(f.path, f.before, f.after) for f in added.fields] == [
        ("spec.template.spec.containers[2]", None, {"name": "debug", "image": "busybox"})
    ]


def test_disruption_budget_edit_is_named_with_before_and_after() -> None:
    def budget(**rule: int) -> dict[str, Any]:
        return {
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "web-pdb", "namespace": "shop", "uid": "b", "resourceVersion": "1"},
            "spec": {**rule, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 1, "currentHealthy": 2},
        }

    quiet = budget(maxUnavailable=1)
    quiet["status"] = {"disruptionsAllowed": 0, "currentHealthy": 1}  # the controller's bookkeeping
    assert change_of("PodDisruptionBudget", budget(maxUnavailable=1), quiet) is None
    change = change_of("PodDisruptionBudget", budget(maxUnavailable=1), budget(maxUnavailable=0))
    assert change is not None and change.kind is ChangeKind.SPEC
    assert change.summary == "maxUnavailable: 1 → 0"
    assert [(f.path, f.before, f.after, f.label) for f in change.fields] == [
        ("spec.maxUnavailable", 1, 0, "maxUnavailable")
    ]
