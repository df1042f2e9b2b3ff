"""Detection over the in-memory index, with objects in the API's JSON shape: the analyzers decide,
alerting keeps what should page, and names the culprit revision change and the rollback target."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.alerting.detection import context, evaluate
from bot.alerting.index import ClusterIndex
from bot.model import Category, ObjectRef
from tests.wiring_helpers import ANALYZERS

NS = "shop"
GOOD, BAD = "registry.example.com/checkout:1.4.2", "registry.example.com/checkout:1.4.3-rc0"


def template(image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "checkout"}}, "spec": {"containers": [{"name": "app", "image": image}]}}


def deployment(revision: int, image: str, *, progressing: str = "NewReplicaSetAvailable") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "namespace": NS,
            "uid": "d1",
            "resourceVersion": "10",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {"replicas": 2, "template": template(image)},
        "status": {
            "readyReplicas": 2,
            "conditions": [{"type": "Progressing", "status": "True", "reason": progressing}],
        },
    }


def replicaset(name: str, revision: int, image: str, *, replicas: int, ready: int) -> dict[str, Any]:
    return {
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"rs-{name}",
            "resourceVersion": "11",
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"kind": "Deployment", "name": "checkout", "uid": "d1", "controller": True}],
        },
        "spec": {"replicas": replicas, "template": template(image)},
        "status": {"replicas": replicas, "readyReplicas": ready},
    }


def pod(name: str, rs: str, *, waiting: str | None = None, ready: bool = False) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting, "message": "not found"}} if waiting else {"running": {}}
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"p-{name}",
            "resourceVersion": "12",
            "ownerReferences": [{"kind": "ReplicaSet", "name": rs, "uid": f"rs-{rs}", "controller": True}],
            "labels": {"app": "checkout"},
            "managedFields": [{"manager": "big"}] * 5,
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": BAD if waiting else GOOD}]},
        "status": {
            "phase": "Pending" if waiting else "Running",
            "containerStatuses": [
                {"name": "app", "ready": ready, "restartCount": 0, "state": state, "image": BAD if waiting else GOOD}
            ],
        },
    }


def index_with(*objects: dict[str, Any]) -> ClusterIndex:
    index = ClusterIndex()
    for obj in objects:
        index.apply(obj["kind"], "ADDED", obj)
    return index


def test_a_bad_image_rollout_is_one_image_pull_finding_set_with_the_culprit_and_rollback_target() -> None:
    index = index_with(
        deployment(2, BAD, progressing="ReplicaSetUpdated"),
        replicaset("checkout-old", 1, GOOD, replicas=2, ready=2),
        replicaset("checkout-new", 2, BAD, replicas=1, ready=0),
        pod("checkout-old-a", "checkout-old", ready=True),
        pod("checkout-old-b", "checkout-old", ready=True),
        pod("checkout-new-a", "checkout-new", waiting="ImagePullBackOff"),
    )
    workload = ObjectRef("Deployment", NS, "checkout")
    assert index.workload_of("Pod", index.get("Pod", NS, "checkout-new-a") or {}) == workload
    evaluation = evaluate(index, workload, analyzers=ANALYZERS)
    assert set(evaluation.found) == {Category.IMAGE_PULL}  # the rollout itself is not "stuck" yet
    assert evaluation.pods_total == 3
    ctx = context(evaluation, Category.IMAGE_PULL, history=None, now=datetime.now(UTC))
    assert ctx.rollback_to == 1 and ctx.current_revision == 2 and ctx.failing_pod == "checkout-new-a"
    assert ctx.culprit is not None
    assert (ctx.culprit.path, ctx.culprit.before, ctx.culprit.after) == (
        "spec.template.spec.containers[0].image",
        GOOD,
        BAD,
    )


def test_a_rollout_progressing_normally_pages_nothing() -> None:
    starting = pod("checkout-new-a", "checkout-new")
    starting["status"] = {
        "phase": "Pending",
        "containerStatuses": [
            {"name": "app", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
        ],
    }
    index = index_with(
        deployment(2, BAD, progressing="ReplicaSetUpdated"),
        replicaset("checkout-old", 1, GOOD, replicas=2, ready=2),
        replicaset("checkout-new", 2, BAD, replicas=1, ready=0),
        pod("checkout-old-a", "checkout-old", ready=True),
        starting,
    )
    assert evaluate(index, ObjectRef("Deployment", NS, "checkout"), analyzers=ANALYZERS).found == {}


def test_the_index_keeps_only_what_analyzers_read_and_forgets_deleted_pods() -> None:
    index = index_with(
        deployment(1, GOOD),
        replicaset("checkout-old", 1, GOOD, replicas=1, ready=1),
        pod("checkout-old-a", "checkout-old", ready=True),
    )
    stored = index.get("Pod", NS, "checkout-old-a") or {}
    assert "managedFields" not in stored["metadata"] and "labels" not in stored["metadata"]
    index.apply("Pod", "DELETED", pod("checkout-old-a", "checkout-old"))
    assert index.get("Pod", NS, "checkout-old-a") is None and index.children.get("rs-checkout-old") is None


def test_a_pod_whose_owners_are_not_known_yet_is_evaluated_later() -> None:
    index = ClusterIndex()
    (ref,) = index.apply("Pod", "ADDED", pod("checkout-new-a", "checkout-new", waiting="ImagePullBackOff"))
    assert ref == ObjectRef("ReplicaSet", NS, "checkout-new")
    assert evaluate(index, ref, analyzers=ANALYZERS).ready is False
    (ref,) = index.apply("ReplicaSet", "ADDED", replicaset("checkout-new", 2, BAD, replicas=1, ready=0))
    assert ref == ObjectRef("Deployment", NS, "checkout")  # named by the ReplicaSet's owner reference
    assert evaluate(index, ref, analyzers=ANALYZERS).ready is False  # ...which is not indexed yet either
    index.apply("Deployment", "ADDED", deployment(2, BAD, progressing="ReplicaSetUpdated"))
    assert set(evaluate(index, ref, analyzers=ANALYZERS).found) == {Category.IMAGE_PULL}
