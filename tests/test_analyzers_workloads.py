"""Deployment, ReplicaSet, Service, Job, Node and HPA analyzers over hand-built objects.

The builders here (a Deployment with revisions, its pods, a Service) are reused by test_why_explain.py.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.diagnosis.analyzers.deployment import analyze_deployment
from bot.diagnosis.analyzers.hpa import analyze_hpa
from bot.diagnosis.analyzers.job import analyze_job
from bot.diagnosis.analyzers.node import analyze_node
from bot.diagnosis.analyzers.replicaset import analyze_replicaset
from bot.diagnosis.analyzers.service import analyze_service
from bot.diagnosis.references import missing_references
from bot.kube.snapshot import Snapshot
from bot.model import Category, KubeObject

NS = "shop"
IMAGE_V1 = "shop/checkout:1.4.2"


def template(image: str = IMAGE_V1, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "checkout"}},
        "spec": {"containers": [{"name": "app", "image": image, **container}]},
    }


def deployment(
    *,
    replicas: int = 2,
    ready: int = 2,
    tmpl: dict[str, Any] | None = None,
    revision: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> KubeObject:
    return {
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "namespace": NS,
            "uid": "uid-deploy",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "managedFields": [
                {
                    "manager": "kubectl-edit",
                    "operation": "Update",
                    "time": "2026-03-01T10:00:00Z",
                    "fieldsV1": {"f:spec": {"f:template": {}}},
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "subresource": "status",
                    "time": "2026-03-01T10:05:00Z",
                    "fieldsV1": {"f:status": {}},
                },
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": copy.deepcopy(tmpl or template()),
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": ready,
            "conditions": conditions or [],
        },
    }


def replicaset(
    revision: int,
    tmpl: dict[str, Any],
    *,
    replicas: int,
    ready: int,
    created: str = "2026-03-01T09:00:00Z",
    conditions: list[dict[str, Any]] | None = None,
) -> KubeObject:
    labels = {"app": "checkout", "pod-template-hash": f"h{revision}"}
    t = copy.deepcopy(tmpl)
    t["metadata"]["labels"] = labels
    return {
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"checkout-h{revision}",
            "namespace": NS,
            "uid": f"uid-rs{revision}",
            "creationTimestamp": created,
            "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"kind": "Deployment", "name": "checkout", "uid": "uid-deploy", "controller": True}],
        },
        "spec": {"replicas": replicas, "template": t},
        "status": {"replicas": replicas, "readyReplicas": ready, "conditions": conditions or []},
    }


def rs_pod(
    revision: int,
    index: int,
    *,
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    ready: bool = True,
    image: str = IMAGE_V1,
) -> KubeObject:
    name = f"checkout-h{revision}-p{index:04d}"
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "labels": {"app": "checkout", "pod-template-hash": f"h{revision}"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": f"checkout-h{revision}", "uid": f"uid-rs{revision}", "controller": True}
            ],
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": image}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": image,
                    "ready": ready,
                    "restartCount": 3 if last else 0,
                    "state": state or {"running": {"startedAt": "2026-03-01T09:00:00Z"}},
                    "lastState": {"terminated": last} if last else {},
                }
            ],
        },
    }


def service(selector: dict[str, str] | None = None) -> KubeObject:
    return {
        "kind": "Service",
        "metadata": {"name": "checkout", "namespace": NS, "uid": "uid-svc"},
        "spec": {"selector": selector or {"app": "checkout"}, "ports": [{"port": 80}]},
    }


def node(name: str = "node-1", ready: str = "True") -> KubeObject:
    return {
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "KubeletNotReady",
                    "lastTransitionTime": "2026-03-01T10:00:00Z",
                }
            ]
        },
    }


def categories(found: Any) -> list[Category]:
    return [f.category for f in found]


def test_deployment_scaled_to_zero() -> None:
    d = deployment(replicas=0, ready=0)
    assert categories(analyze_deployment(d, Snapshot.build(NS, [d]))) == [Category.SCALED_TO_ZERO]


def test_new_revision_failing_while_old_pods_serve_before_the_deadline() -> None:
    bad = template("shop/checkout:1.5.0")
    d = deployment(tmpl=bad, revision=2, ready=2)
    objects = [d, replicaset(1, template(), replicas=2, ready=2), replicaset(2, bad, replicas=1, ready=0)]
    [f] = analyze_deployment(d, Snapshot.build(NS, objects))
    assert (f.category, f.reason) == (Category.ROLLOUT_STUCK, "NewRevisionNotReady")
    assert "revision 2 (new): 0 of 1 pods ready" in f.evidence
    assert "still serving: revision 1 (2 ready)" in f.evidence


def test_progress_deadline_exceeded() -> None:
    d = deployment(
        ready=0,
        conditions=[
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}
        ],
    )
    [f] = analyze_deployment(d, Snapshot.build(NS, [d]))
    assert (f.category, f.reason) == (Category.ROLLOUT_STUCK, "ProgressDeadlineExceeded")


def test_missing_secret_key_in_template() -> None:
    env = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "x", "optional": True}}},
    ]
    d = deployment(tmpl=template(env=env, envFrom=[{"configMapRef": {"name": "app-config"}}]))
    secret = {"kind": "Secret", "metadata": {"name": "db"}, "data": {"username": "YXBw"}}
    snapshot = Snapshot.build(NS, [d, secret])
    found = [f for f in analyze_deployment(d, snapshot) if f.category == Category.CONFIG_ERROR]
    messages = sorted(f.message for f in found)
    assert messages == [
        "ConfigMap `app-config` does not exist (used by envFrom of container app)",
        "Secret `db` has no key `password` (used by env DB_PASSWORD of container app)",
    ]
    # Secret values never stay in a snapshot: keys only.
    assert snapshot.named("Secret", "db") == {
        "kind": "Secret",
        "metadata": {"name": "db"},
        "type": None,
        "data": {"username": None},
    }


def test_forbidden_secrets_are_not_judged_missing() -> None:
    spec = template(env=[{"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "p"}}}])["spec"]
    assert missing_references(spec, Snapshot.build(NS, [], missing=frozenset({"Secret"}))) == []


def test_replicaset_failed_create_from_quota() -> None:
    message = 'pods "checkout-h2-x" is forbidden: exceeded quota: compute, requested: requests.cpu=1'
    rs = replicaset(
        2,
        template(),
        replicas=2,
        ready=0,
        conditions=[{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}],
    )
    quota = {
        "kind": "ResourceQuota",
        "metadata": {"name": "compute"},
        "status": {"hard": {"requests.cpu": "1200m"}, "used": {"requests.cpu": "1200m"}},
    }
    [f] = analyze_replicaset(rs, Snapshot.build(NS, [rs, quota]))
    assert f.category == Category.QUOTA_EXCEEDED and "ResourceQuota is exhausted" in f.message
    assert "quota compute: requests.cpu 1200m of 1200m used" in f.evidence


def test_old_replicaset_failures_are_history() -> None:
    rs = replicaset(
        1,
        template(),
        replicas=0,
        ready=0,
        conditions=[{"type": "ReplicaFailure", "status": "True", "message": "exceeded quota"}],
    )
    assert list(analyze_replicaset(rs, Snapshot.build(NS, [rs]))) == []


def test_service_selector_matches_nothing_shows_both_sides() -> None:
    svc = service({"app": "checkout-v2"})
    objects = [svc, deployment(), rs_pod(1, 0)]
    [f] = analyze_service(svc, Snapshot.build(NS, objects))
    assert (f.category, f.reason) == (Category.NO_ENDPOINTS, "SelectorMatchesNothing")
    assert f.evidence == (
        "Service checkout selects app=checkout-v2",
        "Deployment checkout labels its pods app=checkout",
    )


def test_service_without_ready_endpoints() -> None:
    svc = service()
    objects = [
        svc,
        rs_pod(1, 0, ready=False),
        {
            "kind": "EndpointSlice",
            "metadata": {"name": "checkout-x", "labels": {"kubernetes.io/service-name": "checkout"}},
            "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": False}}],
        },
    ]
    [f] = analyze_service(svc, Snapshot.build(NS, objects))
    assert f.reason == "NoReadyEndpoints"


def test_service_with_ready_pods_is_fine() -> None:
    svc = service()
    assert list(analyze_service(svc, Snapshot.build(NS, [svc, rs_pod(1, 0)]))) == []


def test_failed_job_with_exit_code() -> None:
    job = {
        "kind": "Job",
        "metadata": {"name": "nightly", "namespace": NS, "uid": "uid-job"},
        "spec": {"backoffLimit": 0},
        "status": {
            "failed": 1,
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                }
            ],
        },
    }
    job_pod = {
        "kind": "Pod",
        "metadata": {"name": "nightly-x", "ownerReferences": [{"kind": "Job", "uid": "uid-job", "name": "nightly"}]},
        "status": {
            "phase": "Failed",
            "containerStatuses": [{"name": "report", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}],
        },
    }
    [f] = analyze_job(job, Snapshot.build(NS, [job, job_pod]))
    assert f.category == Category.JOB_FAILED
    assert any("exited with code 2: a usage error" in e for e in f.evidence)


def test_node_not_ready() -> None:
    [f] = analyze_node(node(ready="Unknown"), Snapshot.build(NS, []))
    assert f.category == Category.NODE_NOT_READY and "Ready=Unknown" in f.evidence[0]


def test_hpa_at_max_replicas() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "checkout", "namespace": NS},
        "spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "checkout"}},
        "status": {
            "currentReplicas": 5,
            "desiredReplicas": 5,
            "conditions": [
                {
                    "type": "ScalingLimited",
                    "status": "True",
                    "reason": "TooManyReplicas",
                    "message": "the desired replica count is more than the maximum replica count",
                }
            ],
        },
    }
    [f] = analyze_hpa(hpa, Snapshot.build(NS, [hpa]))
    assert f.category == Category.HPA_LIMITED and f.parent is not None and f.parent.name == "checkout"
