"""`why` for workload kinds beyond Deployments, as pure functions over plain dicts (issue 15, item 2):
StatefulSet and DaemonSet rollouts blamed on their template change read from ControllerRevisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.alerting.detection import ALERTING
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.engine import explain
from bot.kube.resolving import resolve
from bot.kube.revisions import controller_revision_change
from bot.kube.snapshot import Snapshot
from bot.model import Category, Change, ChangeKind, FieldChange, ObjectRef, Severity

NS = "shop"
ANALYZERS = AnalyzerRegistry.discover()
EDITED = "2026-11-30T10:42:00Z"


def _template(image: str, migrate: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "db", "image": image}]}
    if migrate is not None:
        spec["initContainers"] = [{"name": "migrate", "image": "db-migrate:3", "args": migrate}]
    return {"metadata": {"labels": {"app": "db"}}, "spec": spec}


def _workload(kind: str, image: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "db"}}, "template": _template(image)}
    if kind == "StatefulSet":
        spec["replicas"] = 2
        status = {"replicas": 2, "readyReplicas": 1, "currentRevision": "db-6b7", "updateRevision": "db-9c4"}
    else:
        status = {"desiredNumberScheduled": 2, "numberReady": 1, "numberUnavailable": 1}
    return {
        "kind": kind,
        "metadata": {
            "name": "db",
            "namespace": NS,
            "uid": "uid-db",
            "managedFields": [
                {
                    "manager": "k8sbot-tests",
                    "operation": "Update",
                    "time": "2026-11-30T09:00:00Z",
                    "fieldsV1": {"f:spec": {"f:selector": {}, "f:template": {"f:metadata": {}}}},
                },
                {
                    "manager": "alice",
                    "operation": "Update",
                    "time": EDITED,
                    "fieldsV1": {
                        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"db"}': {"f:image": {}}}}}}
                    },
                },
            ],
        },
        "spec": spec,
        "status": status,
    }


def _revision(kind: str, name: str, number: int, image: str, created: str) -> dict[str, Any]:
    template = {**_template(image), "$patch": "replace"}
    return {
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "labels": {"app": "db", "controller-revision-hash": name.removeprefix("db-")},
            "ownerReferences": [{"kind": kind, "name": "db", "uid": "uid-db", "controller": True}],
        },
        "revision": number,
        "data": {"spec": {"template": template}},
    }


def _pod(name: str, revision: str, *, failing: bool) -> dict[str, Any]:
    state = (
        {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}} if failing else {"running": {}}
    )
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": "db", "controller-revision-hash": revision},
            "ownerReferences": [{"kind": "X", "name": "db", "uid": "uid-db", "controller": True}],
        },
        "spec": {"nodeName": "n1", "containers": [{"name": "db"}]},
        "status": {
            "phase": "Pending" if failing else "Running",
            "conditions": [{"type": "Ready", "status": "False" if failing else "True"}],
            "containerStatuses": [{"name": "db", "ready": not failing, "restartCount": 0, "state": state}],
        },
    }


def _rolled_to_a_bad_image(kind: str) -> Snapshot:
    objects = [
        _workload(kind, "db:17-rc"),
        _revision(kind, "db-6b7", 1, "db:16", "2026-11-30T09:00:00Z"),
        _revision(kind, "db-9c4", 2, "db:17-rc", EDITED),
        _pod("db-0", "6b7" if kind == "DaemonSet" else "db-6b7", failing=False),
        _pod("db-1", "9c4" if kind == "DaemonSet" else "db-9c4", failing=True),
    ]
    for obj in objects:
        for owner in obj["metadata"].get("ownerReferences") or []:
            owner["kind"] = kind
    return Snapshot.build(NS, objects)


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_controller_revision_change_diffs_the_failing_revision_against_the_previous(kind: str) -> None:
    snapshot = _rolled_to_a_bad_image(kind)
    change = controller_revision_change(snapshot.named(kind, "db") or {}, snapshot)
    assert change is not None
    assert change.deployment == ObjectRef(kind, NS, "db")
    assert (change.good.number, change.failing.number) == (1, 2)
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("spec.template.spec.containers[0].image", "db:16", "db:17-rc")
    ]
    assert change.actor == "alice"
    # One revision only (no change to diff), or revisions of another owner: nothing to blame.
    alone = Snapshot.build(NS, [o for o in snapshot.of(kind)] + [snapshot.of("ControllerRevision")[1]])
    assert controller_revision_change(alone.named(kind, "db") or {}, alone) is None


@pytest.mark.parametrize("kind", ["StatefulSet", "DaemonSet"])
def test_rollout_of_a_failing_image_is_blamed_on_the_template_change(kind: str) -> None:
    snapshot = _rolled_to_a_bad_image(kind)
    diagnosis = explain(snapshot, resolve(snapshot, f"{kind.lower()}/db"), analyzers=ANALYZERS)
    top = diagnosis.causes[0]
    assert top.category == Category.IMAGE_PULL, diagnosis
    assert top.change is not None, top
    assert top.change.ref == ObjectRef(kind, NS, "db")
    assert (top.change.path, top.change.before, top.change.after, top.change.actor) == (
        "spec.template.spec.containers[0].image",
        "db:16",
        "db:17-rc",
        "alice",
    )
    assert "alice" in diagnosis.summary and "db:17-rc" in diagnosis.summary, diagnosis.summary
    # The bot's rollback verb rolls back Deployments only: the step names kubectl's, with the good revision.
    assert top.suggestion is not None and top.suggestion.command is None, top.suggestion
    assert f"kubectl rollout undo {kind.lower()}/db -n shop --to-revision=1" in top.suggestion.text, top.suggestion
    assert "db:16" in top.suggestion.text, top.suggestion


def _init_crashing_pod() -> dict[str, Any]:
    pod = _pod("db-1", "db-9c4", failing=False)
    pod["status"] = {
        "phase": "Pending",
        "conditions": [{"type": "Initialized", "status": "False"}, {"type": "Ready", "status": "False"}],
        "initContainerStatuses": [
            {
                "name": "migrate",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
            }
        ],
        "containerStatuses": [
            {"name": "db", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
        ],
    }
    return pod


def test_init_container_crash_is_blamed_on_its_template_change() -> None:
    sts = _workload("StatefulSet", "db:16")
    sts["spec"]["template"] = _template("db:16", ["--to=v43"])
    old = _revision("StatefulSet", "db-6b7", 1, "db:16", "2026-11-30T09:00:00Z")
    old["data"]["spec"]["template"] = {**_template("db:16", ["--to=v42"]), "$patch": "replace"}
    new = _revision("StatefulSet", "db-9c4", 2, "db:16", EDITED)
    new["data"]["spec"]["template"] = {**_template("db:16", ["--to=v43"]), "$patch": "replace"}
    for owned in (old, new):
        owned["metadata"]["ownerReferences"][0]["kind"] = "StatefulSet"
    healthy = _pod("db-0", "db-6b7", failing=False)
    crashing = _init_crashing_pod()
    for pod in (healthy, crashing):
        pod["metadata"]["ownerReferences"][0]["kind"] = "StatefulSet"
    sts["metadata"]["managedFields"][1]["fieldsV1"] = {
        "f:spec": {"f:template": {"f:spec": {"f:initContainers": {'k:{"name":"migrate"}': {"f:args": {}}}}}}
    }
    snapshot = Snapshot.build(NS, [sts, old, new, healthy, crashing])
    diagnosis = explain(snapshot, resolve(snapshot, "sts/db"), analyzers=ANALYZERS)
    top = diagnosis.causes[0]
    assert top.category == Category.INIT_FAILURE, diagnosis
    assert any("init container migrate" in line for line in top.evidence), top.evidence
    assert top.change is not None, top
    assert (top.change.path, top.change.before, top.change.after, top.change.actor) == (
        "spec.template.spec.initContainers[0].args",
        ["--to=v42"],
        ["--to=v43"],
        "alice",
    )
    assert "migrate" in diagnosis.summary and "alice" in diagnosis.summary, diagnosis.summary


# -- PodDisruptionBudgets ----------------------------------------------------------------------------


def _web(replicas: int = 2) -> list[dict[str, Any]]:
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS, "uid": "uid-web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}},
        },
        "status": {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas},
    }
    pods = [
        {
            "kind": "Pod",
            "metadata": {"name": f"web-{i}", "namespace": NS, "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "web"}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "web", "ready": True, "state": {"running": {}}}],
            },
        }
        for i in range(replicas)
    ]
    return [deployment, *pods]


def _budget(min_available: int, *, healthy: int = 2, expected: int = 2) -> dict[str, Any]:
    allowed = max(0, healthy - min_available)
    return {
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "web-pdb",
            "namespace": NS,
            "creationTimestamp": "2026-11-30T09:00:00Z",
            "managedFields": [
                {
                    "manager": "k8sbot-tests",
                    "operation": "Update",
                    "time": "2026-11-30T09:00:00Z",
                    "fieldsV1": {"f:spec": {"f:minAvailable": {}, "f:selector": {}}},
                },
                {
                    "manager": "alice",
                    "operation": "Update",
                    "time": EDITED,
                    "fieldsV1": {"f:spec": {"f:minAvailable": {}}},
                },
                {
                    "manager": "kube-controller-manager",
                    "operation": "Update",
                    "subresource": "status",
                    "time": EDITED,
                    "fieldsV1": {"f:status": {"f:disruptionsAllowed": {}}},
                },
            ],
        },
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": "web"}}},
        "status": {
            "currentHealthy": healthy,
            "desiredHealthy": min_available,
            "disruptionsAllowed": allowed,
            "expectedPods": expected,
        },
    }


def test_budget_that_allows_no_disruption_is_a_warning_of_the_workload_blamed_on_its_edit() -> None:
    snapshot = Snapshot.build(NS, [*_web(), _budget(2)])
    diagnosis = explain(snapshot, resolve(snapshot, "web"), analyzers=ANALYZERS)
    assert not diagnosis.healthy, diagnosis
    top = diagnosis.causes[0]
    assert top.category == Category.DISRUPTION_BLOCKED, diagnosis
    found = [f for f in diagnosis.findings if f.category == Category.DISRUPTION_BLOCKED]
    assert [(f.subject, f.related, f.severity) for f in found] == [
        (ObjectRef("Deployment", NS, "web"), ObjectRef("PodDisruptionBudget", NS, "web-pdb"), Severity.WARNING)
    ]
    evidence = "\n".join(top.evidence)
    assert "minAvailable 2" in evidence and "2 of 2 pods healthy" in evidence and "0 disruptions" in evidence, evidence
    assert top.change is not None, top
    assert top.change.ref == ObjectRef("PodDisruptionBudget", NS, "web-pdb")
    assert (top.change.path, top.change.after, top.change.actor) == ("spec.minAvailable", 2, "alice")
    assert "alice" in diagnosis.summary and "web-pdb" in diagnosis.summary, diagnosis.summary
    # It never pages.
    assert Category.DISRUPTION_BLOCKED not in ALERTING


def test_budget_with_room_or_blocked_only_by_failing_pods_is_not_blamed() -> None:
    roomy = Snapshot.build(NS, [*_web(), _budget(1)])
    assert explain(roomy, resolve(roomy, "web"), analyzers=ANALYZERS).healthy
    # 0 allowed because a pod is down: the budget does its job; the failing pod is the problem.
    failing = Snapshot.build(NS, [*_web(), _budget(2, healthy=1)])
    findings = explain(failing, resolve(failing, "web"), analyzers=ANALYZERS).findings
    assert Category.DISRUPTION_BLOCKED not in {f.category for f in findings}


class _Recorded:
    """The change tracker's history: the budget's recorded edit."""

    def __init__(self, *changes: Change) -> None:
        self.changes = changes

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]:
        return [c for c in self.changes if c.ref in refs and c.at >= since]


def test_recorded_budget_edit_is_blamed_with_its_before_and_after() -> None:
    """With the edit recorded (the tracker watches budgets), the culprit has both values, not "was
    added" as read from managedFields alone."""
    ref = ObjectRef("PodDisruptionBudget", NS, "web-pdb")
    at = datetime(2026, 11, 30, 10, 42, tzinfo=UTC)
    edit = Change(
        ref,
        at,
        ChangeKind.SPEC,
        "minAvailable: 1 → 2",
        (FieldChange("spec.minAvailable", 1, 2, "minAvailable"),),
        actor="alice",
    )
    snapshot = Snapshot.build(NS, [*_web(), _budget(2)])
    diagnosis = explain(
        snapshot, resolve(snapshot, "web"), analyzers=ANALYZERS, history=_Recorded(edit), now=at + timedelta(minutes=5)
    )
    top = diagnosis.causes[0]
    assert top.category == Category.DISRUPTION_BLOCKED, diagnosis
    assert top.change is not None, top
    assert (top.change.ref, top.change.path, top.change.before, top.change.after, top.change.actor) == (
        ref,
        "spec.minAvailable",
        1,
        2,
        "alice",
    )
    assert "minAvailable of PodDisruptionBudget web-pdb changed from 1 to 2" in diagnosis.summary, diagnosis.summary
    assert "alice" in diagnosis.summary, diagnosis.summary
    # Without the record, managedFields tell who and when, and the value it has now.
    alone = explain(snapshot, resolve(snapshot, "web"), analyzers=ANALYZERS, now=at + timedelta(minutes=5))
    assert alone.causes[0].change is not None
    assert (alone.causes[0].change.before, alone.causes[0].change.after) == (None, 2)
