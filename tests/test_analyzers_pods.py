"""Pod analyzer over hand-built pods in the API's JSON shape, and exit codes in plain words."""

from __future__ import annotations

from typing import Any

import pytest

from bot.diagnosis.analyzers.pod import analyze_pod
from bot.diagnosis.exit_codes import explain_exit_code
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, Severity

NS = "shop"


def pod(
    name: str = "checkout-abc12-xyz98",
    *,
    container: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    owner: tuple[str, str] | None = ("ReplicaSet", "checkout-abc12"),
) -> KubeObject:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "uid": f"uid-{name}", "labels": {"app": "checkout"}}
    if owner:
        meta["ownerReferences"] = [{"kind": owner[0], "name": owner[1], "uid": f"uid-{owner[1]}", "controller": True}]
    c = {"name": "app", "image": "shop/checkout:1.4", "resources": {"limits": {"memory": "48Mi"}}}
    c.update(container or {})
    return {
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [c], **(spec or {})},
        "status": {"phase": "Running", **(status or {})},
    }


def cstatus(
    *,
    state: dict[str, Any],
    last: dict[str, Any] | None = None,
    ready: bool = False,
    restarts: int = 0,
    name: str = "app",
) -> dict[str, Any]:
    return {
        "name": name,
        "image": "shop/checkout:1.5",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
        "lastState": {"terminated": last} if last else {},
    }


def findings(obj: KubeObject, *extra: KubeObject) -> list[Finding]:
    return list(analyze_pod(obj, Snapshot.build(NS, [obj, *extra])))


def test_crash_loop_explains_the_exit_code() -> None:
    p = pod(
        status={
            "containerStatuses": [
                cstatus(
                    state={"waiting": {"reason": "CrashLoopBackOff"}},
                    last={"exitCode": 1, "reason": "Error"},
                    restarts=5,
                )
            ]
        }
    )
    [f] = findings(p)
    assert f.category == Category.CRASH_LOOP
    assert "exited with code 1" in f.evidence[0] and "restarts 5" in f.evidence[0]


def test_oom_killed_then_running_again_is_still_reported() -> None:
    p = pod(
        status={
            "containerStatuses": [
                cstatus(
                    state={"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                    last={"exitCode": 137, "reason": "OOMKilled"},
                    ready=True,
                    restarts=2,
                )
            ]
        }
    )
    [f] = findings(p)
    assert f.category == Category.OOM_KILLED
    assert f.severity == Severity.WARNING  # running now: real, but not an outage
    assert "48Mi" in f.message and "running again now" in f.evidence[0]


def test_oom_in_crash_loop_is_critical_and_not_a_plain_crash() -> None:
    p = pod(
        status={
            "containerStatuses": [
                cstatus(
                    state={"waiting": {"reason": "CrashLoopBackOff"}},
                    last={"exitCode": 137, "reason": "OOMKilled"},
                    restarts=3,
                )
            ]
        }
    )
    assert [(f.category, f.severity) for f in findings(p)] == [(Category.OOM_KILLED, Severity.CRITICAL)]


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull(reason: str) -> None:
    p = pod(status={"containerStatuses": [cstatus(state={"waiting": {"reason": reason, "message": "not found"}})]})
    [f] = findings(p)
    assert f.category == Category.IMAGE_PULL and "shop/checkout:1.5" in f.message


def test_create_container_config_error() -> None:
    message = "couldn't find key password in Secret shop/db"
    p = pod(
        status={
            "containerStatuses": [
                cstatus(state={"waiting": {"reason": "CreateContainerConfigError", "message": message}})
            ]
        }
    )
    [f] = findings(p)
    assert f.category == Category.CONFIG_ERROR and message in f.evidence[0]


def test_unschedulable() -> None:
    p = pod(
        status={
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/2 nodes are available: 2 Insufficient cpu.",
                }
            ],
        }
    )
    [f] = findings(p)
    assert f.category == Category.UNSCHEDULABLE and "Insufficient cpu" in f.evidence[0]


def test_readiness_probe_failure_with_unhealthy_event() -> None:
    p = pod(
        container={"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}},
        status={"containerStatuses": [cstatus(state={"running": {}})]},
    )
    event = {
        "kind": "Event",
        "type": "Warning",
        "reason": "Unhealthy",
        "count": 4,
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 404",
        "involvedObject": {"kind": "Pod", "name": p["metadata"]["name"]},
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "metadata": {"name": "e1"},
    }
    [f] = findings(p, event)
    assert f.category == Category.PROBE_FAILURE
    assert "httpGet :8080/ready" in f.evidence[0]
    assert "Unhealthy ×4" in f.evidence[1]


def test_ready_running_pod_is_fine() -> None:
    p = pod(
        container={"readinessProbe": {"httpGet": {"path": "/", "port": 80}}},
        status={"containerStatuses": [cstatus(state={"running": {}}, ready=True)]},
    )
    assert findings(p) == []


def test_evicted() -> None:
    p = pod(status={"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."})
    [f] = findings(p)
    assert f.category == Category.EVICTED and "low on resource" in f.evidence[0]


def test_init_container_failure() -> None:
    p = pod(
        status={
            "phase": "Pending",
            "initContainerStatuses": [
                cstatus(
                    name="migrate",
                    state={"waiting": {"reason": "CrashLoopBackOff"}},
                    last={"exitCode": 127, "reason": "Error"},
                    restarts=3,
                )
            ],
        }
    )
    [f] = findings(p)
    assert f.category == Category.INIT_FAILURE and "not found in the image" in f.evidence[0]


def test_missing_pvc_is_a_volume_error() -> None:
    p = pod(
        status={"phase": "Pending"},
        spec={"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-checkout"}}]},
    )
    [f] = findings(p)
    assert f.category == Category.VOLUME_ERROR and "data-checkout" in f.evidence[0]


def test_finished_job_pods_are_left_to_the_job_analyzer() -> None:
    p = pod(
        owner=("Job", "nightly"),
        status={
            "phase": "Failed",
            "containerStatuses": [cstatus(state={"terminated": {"exitCode": 2, "reason": "Error"}})],
        },
    )
    assert findings(p) == []


@pytest.mark.parametrize(
    ("code", "reason", "words"),
    [
        (0, None, "exited normally"),
        (1, "Error", "general application error"),
        (2, None, "usage error"),
        (126, None, "could not be executed"),
        (127, None, "not found in the image"),
        (137, "OOMKilled", "more memory than its limit"),
        (137, "Error", "SIGKILL"),
        (139, None, "SIGSEGV"),
        (143, None, "SIGTERM"),
        (134, None, "SIGABRT"),
        (3, None, "application-specific"),
    ],
)
def test_exit_codes_in_plain_words(code: int, reason: str | None, words: str) -> None:
    assert words in explain_exit_code(code, reason)
