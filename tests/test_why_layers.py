"""Causes beyond the pod template, as pure functions over plain dicts: host names in config, the
Services a workload calls, the dependency analyzer, changes read from objects (node conditions,
cordons, ConfigMap/Secret edits), and how the engine tells a dependency's cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.analyzers.dependency import analyze_dependencies
from bot.diagnosis.analyzers.hpa import analyze_hpa
from bot.diagnosis.analyzers.pod import analyze_pod
from bot.diagnosis.dependencies import called_services, links, log_links, trouble
from bot.diagnosis.engine import explain
from bot.diagnosis.inferred import (
    autoscaler_changes,
    blockers,
    config_edits,
    cronjob_change,
    node_changes,
    policy_changes,
    scheduling_blockers,
)
from bot.kube.hosts import hosts_in, names_service
from bot.kube.resolving import resolve
from bot.kube.snapshot import Snapshot, strip_values
from bot.model import Category, ObjectRef

NS = "shop"
ANALYZERS = AnalyzerRegistry.discover()


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("payments", {"payments"}),
        ("payments:8080", {"payments"}),
        ("http://payments:8080/v1", {"payments"}),
        ("payments.shop.svc.cluster.local:8080", {"payments.shop.svc.cluster.local"}),
        ("--upstream=payments", {"payments"}),
        ("postgres://app:pw@payments-db:5432/app", {"payments-db"}),
        ("connect to payments please", set()),  # a word in a sentence is not a host
        ("[REDACTED]", set()),
        ("INFO", set()),
    ],
)
def test_hosts_in(text: str, hosts: set[str]) -> None:
    assert hosts_in(text) == hosts


def test_names_service_accepts_the_forms_cluster_dns_resolves() -> None:
    for host in ("payments", "payments.shop", "payments.shop.svc", "payments.shop.svc.cluster.local"):
        assert names_service(host, "payments", "shop")
    assert not names_service("payments.other", "payments", "shop")
    assert not names_service("payments-db", "payments", "shop")


def test_snapshot_keeps_configmap_host_names_never_values_nor_secret_keys() -> None:
    config = {
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": NS},
        "data": {"DB_URL": "postgres://app:hunter2@payments-db:5432/x", "API_TOKEN": "inventory", "MODE": "fast"},
    }
    stripped = strip_values(config)
    assert stripped["hosts"] == {"DB_URL": ["payments-db"], "MODE": ["fast"]}
    assert "hunter2" not in str(stripped)
    assert "inventory" not in str(stripped)  # under a secret-looking key: masked before it is read
    secret = strip_values({"kind": "Secret", "metadata": {"name": "s"}, "data": {"url": "aHR0cDovL3BheW1lbnRz"}})
    assert "hosts" not in secret


def _deployment(name: str, *, env: list[dict[str, Any]] | None = None, replicas: int = 2, **container: Any) -> dict:
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"{name}:1", "env": env or [], **container}]},
            },
        },
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def _service(name: str) -> dict:
    return {"kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": {"selector": {"app": name}}}


def _pod(app: str, name: str, *, ready: bool = True, node: str = "n1") -> dict:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "app"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "app", "ready": ready, "state": {"running": {}}}],
        },
    }


def test_links_from_env_args_and_configmaps_not_own_services() -> None:
    checkout = _deployment(
        "checkout",
        env=[
            {"name": "PAYMENT_API_URL", "value": "http://payments:8080"},
            {"name": "STOCK", "valueFrom": {"configMapKeyRef": {"name": "upstreams", "key": "STOCK_ADDR"}}},
            {"name": "SELF", "value": "checkout:80"},
        ],
        args=["--ledger=ledger.shop.svc:9000"],
    )
    upstreams = {"kind": "ConfigMap", "metadata": {"name": "upstreams"}, "data": {"STOCK_ADDR": "inventory:9090"}}
    objects = [checkout, upstreams, *(_service(n) for n in ("payments", "inventory", "ledger", "checkout", "other"))]
    snapshot = Snapshot.build(NS, objects)
    found = {link.service: link.where for link in links(checkout, snapshot, own=["checkout"])}
    assert found == {
        "payments": "env PAYMENT_API_URL of container app",
        "inventory": "key `STOCK_ADDR` of ConfigMap `upstreams` (env STOCK of container app)",
        "ledger": "argument `--ledger=ledger.shop.svc:9000` of container app",
    }


def test_log_links_find_a_service_named_in_an_error_line() -> None:
    snapshot = Snapshot.build(NS, [_service("ledger"), _service("checkout")])
    lines = ["ERROR dial tcp: lookup ledger on 10.96.0.10:53: connection refused"]
    assert [link.service for link in log_links(lines, snapshot, own=["checkout"])] == ["ledger"]
    assert log_links(["ERROR ledgers are full"], snapshot) == []


def _shop(*, payments_replicas: int) -> list[dict]:
    checkout = _deployment("checkout", env=[{"name": "PAYMENT_API_URL", "value": "http://payments:8080"}])
    payments = _deployment("payments", replicas=payments_replicas)
    pods = [_pod("checkout", f"checkout-{i}") for i in range(2)]
    pods += [_pod("payments", f"payments-{i}") for i in range(payments_replicas)]
    return [checkout, payments, _service("checkout"), _service("payments"), *pods]


def test_dependency_analyzer_points_at_the_broken_service_only() -> None:
    broken = Snapshot.build(NS, _shop(payments_replicas=0))
    findings = list(analyze_dependencies(broken.named("Deployment", "checkout") or {}, broken))
    assert [(f.category, f.related) for f in findings] == [(Category.DEPENDENCY, ObjectRef("Service", NS, "payments"))]
    assert "PAYMENT_API_URL" in findings[0].evidence[0]
    healthy = Snapshot.build(NS, _shop(payments_replicas=2))
    assert list(analyze_dependencies(healthy.named("Deployment", "checkout") or {}, healthy)) == []
    # Where Services are not known (the alert index holds none), nothing is concluded.
    unknown = Snapshot.build(NS, _shop(payments_replicas=0), missing=frozenset({"Service"}))
    assert list(analyze_dependencies(unknown.named("Deployment", "checkout") or {}, unknown)) == []


def test_a_service_whose_pods_were_not_read_is_never_judged() -> None:
    # A targeted read holds the pods of the Services it names in `pods_for`: payments' are not there.
    objects = [o for o in _shop(payments_replicas=2) if not str(o["metadata"]["name"]).startswith("payments-")]
    unread = Snapshot.build(NS, objects, pods_for=frozenset({"checkout"}))
    assert not unread.holds_pods_of("payments") and unread.holds_pods_of("checkout")
    assert trouble("payments", unread) is None
    assert list(analyze_dependencies(unread.named("Deployment", "checkout") or {}, unread)) == []
    assert explain(unread, resolve(unread, "checkout"), analyzers=ANALYZERS).healthy
    # Read (or the whole namespace read, None), the same Service with no pods is judged.
    read = Snapshot.build(NS, objects, pods_for=frozenset({"checkout", "payments"}))
    found = trouble("payments", read)
    assert found is not None and found.problem == "has no pods behind it"
    assert trouble("payments", Snapshot.build(NS, objects)) == found
    # What the targeted read is told to read: the Services checkout calls, not its own.
    assert called_services(read.named("Deployment", "checkout") or {}, read) == ["payments"]


def test_engine_blames_the_dependency_change() -> None:
    objects = _shop(payments_replicas=0)
    objects.append(
        {
            "kind": "Event",
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "message": "Scaled down replica set payments-5d8f from 2 to 0",
            "involvedObject": {"kind": "Deployment", "name": "payments"},
            "lastTimestamp": "2026-11-30T10:42:00Z",
        }
    )
    snapshot = Snapshot.build(NS, objects)
    diagnosis = explain(snapshot, resolve(snapshot, "checkout"), analyzers=ANALYZERS)
    top = diagnosis.causes[0]
    assert top.category == Category.DEPENDENCY
    assert top.change is not None and top.change.ref == ObjectRef("Deployment", NS, "payments")
    assert (top.change.path, top.change.before, top.change.after) == ("spec.replicas", 2, 0)
    assert top.suggestion is not None and top.suggestion.command == "/k8s scale payments -n shop --replicas 2"
    assert "Deployment payments replicas changed from 2 to 0" in diagnosis.summary


def test_node_changes_from_conditions_and_cordons_from_their_writer() -> None:
    node = {
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "managedFields": [
                {
                    "manager": "kubelet",
                    "subresource": "status",
                    "time": "2026-11-30T10:40:00Z",
                    "fieldsV1": {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {}}}},
                },
                {"manager": "alice", "time": "2026-11-30T10:41:00Z", "fieldsV1": {"f:spec": {"f:unschedulable": {}}}},
                {
                    "manager": "kube-controller-manager",
                    "time": "2026-11-30T10:42:00Z",
                    "fieldsV1": {
                        "f:spec": {"f:taints": {'k:{"effect":"NoSchedule","key":"node.kubernetes.io/not-ready"}': {}}}
                    },
                },
            ],
        },
        "spec": {
            "unschedulable": True,
            "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}],
        },
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2026-11-30T10:40:00Z"},
                {"type": "DiskPressure", "status": "False"},
            ]
        },
    }
    found = {c.path: (c.actor, c.after) for c in node_changes(node)}
    assert found == {"status.conditions.Ready": ("kubelet", "False")}  # the condition, not the cordon
    assert [(c.path, c.actor, c.after) for c in blockers(node)] == [("spec.unschedulable", "alice", True)]
    pending = {
        "kind": "Pod",
        "spec": {},
        "status": {
            "conditions": [{"type": "PodScheduled", "status": "False", "message": "1 node(s) were unschedulable"}]
        },
    }
    blamed = scheduling_blockers([pending], Snapshot.build(NS, [node]))
    assert [(c.ref.name, c.path) for c in blamed] == [("n1", "spec.unschedulable")]


@pytest.mark.parametrize(
    "message",
    [
        "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match selector.",
        # Newer schedulers name no taint: the pods' tolerations tell which taint kept them off.
        "0/3 nodes are available: 1 node(s) had untolerated taint(s), 2 node(s) didn't match Pod's node selector.",
    ],
)
def test_a_persons_taint_the_pods_do_not_tolerate_is_blamed(message: str) -> None:
    node = {
        "kind": "Node",
        "metadata": {
            "name": "n1",
            "labels": {"pool": "a"},
            "managedFields": [
                {
                    "manager": "k8sbot-tests",
                    "time": "2026-11-30T10:00:00Z",
                    "fieldsV1": {"f:spec": {"f:taints": {'k:{"effect":"NoSchedule","key":"team"}': {}}}},
                },
                {
                    "manager": "alice",
                    "time": "2026-11-30T10:41:00Z",
                    "fieldsV1": {"f:spec": {"f:taints": {'k:{"effect":"NoSchedule","key":"dedicated"}': {}}}},
                },
            ],
        },
        "spec": {
            "taints": [
                {"key": "team", "value": "shop", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            ]
        },
    }
    pending = {
        "kind": "Pod",
        "spec": {
            "nodeSelector": {"pool": "a"},
            "tolerations": [{"key": "team", "operator": "Equal", "value": "shop", "effect": "NoSchedule"}],
        },
        "status": {"conditions": [{"type": "PodScheduled", "status": "False", "message": message}]},
    }
    blamed = scheduling_blockers([pending], Snapshot.build(NS, [node]))
    assert [(c.ref.name, c.path, c.after, c.actor) for c in blamed] == [
        ("n1", "spec.taints.dedicated", "dedicated=gpu:NoSchedule", "alice")
    ]
    # Tolerated, it keeps nothing off.
    tolerant = {**pending, "spec": {**pending["spec"], "tolerations": [{"operator": "Exists"}]}}
    if "{" not in message:
        assert scheduling_blockers([tolerant], Snapshot.build(NS, [node])) == []


def test_a_taint_written_with_the_whole_list_is_blamed_on_its_writer() -> None:
    """The API server keeps Node taints as one atomic list: `kubectl taint` (or any patch) makes its
    writer own `f:taints` whole, with no item keys. That writer added the taint; a controller that
    rewrote the list since is not blamed for a person's taint."""

    def node(*writers: tuple[str, str]) -> dict:
        fields = [{"manager": m, "time": t, "fieldsV1": {"f:spec": {"f:taints": {}}}} for m, t in writers]
        return {
            "kind": "Node",
            "metadata": {"name": "n1", "managedFields": fields},
            "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
        }

    [blamed] = blockers(node(("alice", "2026-11-30T10:41:00Z")))
    assert (blamed.path, blamed.actor, blamed.at) == (
        "spec.taints.dedicated",
        "alice",
        datetime(2026, 11, 30, 10, 41, tzinfo=UTC),
    )
    [unknown] = blockers(node(("kube-controller-manager", "2026-11-30T10:45:00Z")))
    assert (unknown.actor, unknown.at) == (None, None)


def test_config_edits_name_the_edit_not_the_creation() -> None:
    created = "2026-11-30T10:00:00Z"

    def config(kind: str, name: str, writers: list[tuple[str, str]]) -> dict:
        fields = [
            {"manager": m, "time": t, "fieldsV1": {"f:data": {"f:FLAGS": {}, "f:password": {}}}} for m, t in writers
        ]
        return strip_values(
            {
                "kind": kind,
                "metadata": {"name": name, "namespace": NS, "creationTimestamp": created, "managedFields": fields},
                "data": {"FLAGS": "a", "password": "c2VjcmV0"},
            }
        )

    template = {
        "containers": [
            {
                "name": "app",
                "envFrom": [{"configMapRef": {"name": "edited"}}, {"configMapRef": {"name": "untouched"}}],
                "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            }
        ]
    }
    snapshot = Snapshot.build(
        NS,
        [
            config("ConfigMap", "edited", [("apply", created), ("alice", "2026-11-30T10:40:00Z")]),
            config("ConfigMap", "untouched", [("apply", created)]),
            config("Secret", "db", [("apply", created), ("bob", "2026-11-30T10:41:00Z")]),
        ],
    )
    now = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    found = {
        (c.ref.kind, c.ref.name): (c.path, c.actor, c.before, c.after)
        for c in config_edits(template, snapshot, now=now, window=timedelta(days=1))
    }
    assert found == {
        ("ConfigMap", "edited"): ("data.FLAGS", "alice", None, None),
        ("Secret", "db"): ("data.password", "bob", None, None),
    }
    assert config_edits(template, snapshot, now=now + timedelta(days=2), window=timedelta(days=1)) == []


def test_policy_changes_name_the_quota_or_limit_range_a_refusal_names() -> None:
    def writer(manager: str, at: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"manager": manager, "time": at, "fieldsV1": {"f:spec": spec}}

    quota = {
        "kind": "ResourceQuota",
        "metadata": {
            "name": "compute",
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "managedFields": [
                writer("setup", "2026-11-30T10:00:00Z", {"f:hard": {"f:requests.cpu": {}, "f:pods": {}}}),
                writer("alice", "2026-11-30T10:30:00Z", {"f:hard": {"f:requests.cpu": {}}}),
            ],
        },
        "spec": {"hard": {"requests.cpu": "600m", "pods": "10"}},
    }
    limits = {
        "kind": "LimitRange",
        "metadata": {
            "name": "container-limits",
            "managedFields": [writer("bob", "2026-11-30T10:20:00Z", {"f:limits": {}})],
        },
        "spec": {"limits": [{"type": "Container", "max": {"memory": "128Mi"}}]},
    }
    snapshot = Snapshot.build(NS, [quota, limits])
    refused = (
        'pods "x" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, '
        "used: requests.cpu=500m, limited: requests.cpu=600m"
    )
    [change] = policy_changes([refused], snapshot, now=None, window=timedelta(days=1))
    assert (change.ref.kind, change.path, change.after, change.actor) == (
        "ResourceQuota",
        "spec.hard.requests.cpu",
        "600m",
        "alice",
    )
    refused = 'pods "x" is forbidden: maximum memory usage per Container is 128Mi, but limit is 256Mi'
    [change] = policy_changes([refused], snapshot, now=None, window=timedelta(days=1))
    assert (change.ref.name, change.path, change.after, change.actor) == (
        "container-limits",
        "spec.limits",
        "Container max memory 128Mi",
        "bob",
    )
    assert policy_changes(["some other refusal"], snapshot, now=None, window=timedelta(days=1)) == []


def test_hpa_capped_by_a_lowered_max_replicas() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": "checkout",
            "namespace": NS,
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "managedFields": [
                {"manager": "alice", "time": "2026-11-30T10:30:00Z", "fieldsV1": {"f:spec": {"f:maxReplicas": {}}}}
            ],
        },
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "checkout"}, "maxReplicas": 1},
        "status": {"currentReplicas": 3, "desiredReplicas": 1},
    }
    event = {
        "kind": "Event",
        "type": "Normal",
        "reason": "SuccessfulRescale",
        "message": "New size: 1; reason: Current number of replicas above Spec.MaxReplicas",
        "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": "checkout"},
    }
    snapshot = Snapshot.build(NS, [hpa, event])
    [finding] = list(analyze_hpa(hpa, snapshot))
    assert finding.reason == "CappedByMaxReplicas" and finding.parent == ObjectRef("Deployment", NS, "checkout")
    [change] = autoscaler_changes([hpa], now=None, window=timedelta(days=1))
    assert (change.path, change.after, change.actor) == ("spec.maxReplicas", 1, "alice")
    raised = {**hpa, "spec": {**hpa["spec"], "maxReplicas": 5}}
    assert list(analyze_hpa(raised, Snapshot.build(NS, [raised, event]))) == []


def test_cronjob_change_diffs_the_good_job_against_the_failing_one() -> None:
    cronjob = {
        "kind": "CronJob",
        "metadata": {
            "name": "nightly",
            "uid": "cj",
            "managedFields": [
                {"manager": "alice", "time": "2026-11-30T10:30:00Z", "fieldsV1": {"f:spec": {"f:jobTemplate": {}}}}
            ],
        },
        "spec": {},
    }

    def job(name: str, created: str, args: list[str], status: dict[str, Any]) -> dict[str, Any]:
        return {
            "kind": "Job",
            "metadata": {"name": name, "creationTimestamp": created, "ownerReferences": [{"uid": "cj"}]},
            "spec": {"template": {"spec": {"containers": [{"name": "r", "args": args, "env": []}]}}},
            "status": status,
        }

    good = job("a", "2026-11-30T10:00:00Z", ["--v1"], {"succeeded": 1})
    bad = job("b", "2026-11-30T10:31:00Z", ["--v2"], {"failed": 1})
    [change] = cronjob_change(cronjob, Snapshot.build(NS, [cronjob, good, bad]))
    assert (change.path, change.before, change.after, change.actor) == (
        "spec.jobTemplate.spec.template.spec.containers[0].args",
        ["--v1"],
        ["--v2"],
        "alice",
    )
    assert cronjob_change(cronjob, Snapshot.build(NS, [cronjob, bad])) == []  # nothing good to compare with


def test_pending_claim_is_a_volume_error_not_a_node_problem() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "db-0", "namespace": NS},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
                }
            ],
        },
    }
    pvc = {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-db-0", "namespace": NS},
        "spec": {"storageClassName": "fast-ssd"},
        "status": {"phase": "Pending"},
    }
    event = {
        "kind": "Event",
        "type": "Warning",
        "reason": "ProvisioningFailed",
        "message": 'storageclass.storage.k8s.io "fast-ssd" not found',
        "involvedObject": {"kind": "PersistentVolumeClaim", "name": "data-db-0"},
    }
    findings = list(analyze_pod(pod, Snapshot.build(NS, [pod, pvc, event])))
    assert [f.category for f in findings] == [Category.VOLUME_ERROR]
    assert any("fast-ssd" in line and "not found" in line for line in findings[0].evidence)
