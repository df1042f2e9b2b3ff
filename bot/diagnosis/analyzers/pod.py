"""Pod analyzer: container states, restarts, scheduling, eviction, init containers, volumes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.events import summarize
from bot.diagnosis.exit_codes import explain_exit_code
from bot.kube.owners import controller_ref, workload_of
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity

IMAGE_PULL_REASONS = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "ErrImageNeverPull",
        "RegistryUnavailable",
        "SignatureValidationFailed",
    }
)
CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError"})
VOLUME_EVENT_REASONS = frozenset({"FailedMount", "FailedAttachVolume", "FailedMapVolume"})


@analyzes("Pod")
def analyze_pod(pod: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    status = pod.get("status") or {}
    ref = ObjectRef.of(pod, kind="Pod")
    parent = workload_of(pod, snapshot)
    if status.get("phase") == "Failed" and status.get("reason") == "Evicted":
        yield Finding(
            ref,
            Category.EVICTED,
            "Evicted",
            f"pod {ref.name} was evicted",
            evidence=(f"pod {ref.name}: {status.get('message') or 'evicted'}",),
            parent=parent,
        )
        return
    if (controller_ref(pod) or {}).get("kind") == "Job" and status.get("phase") in ("Failed", "Succeeded"):
        return  # finished Job pods are judged by the Job analyzer, which knows the backoff limit
    yield from _scheduling(pod, ref, parent)
    yield from _volumes(pod, ref, parent, snapshot)
    specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    for cstatus in status.get("initContainerStatuses") or []:
        yield from _init_container(cstatus, ref, parent)
    unhealthy = [e.line() for e in summarize(snapshot.events_for([ref]), reasons=frozenset({"Unhealthy"}))]
    for cstatus in status.get("containerStatuses") or []:
        yield from _container(cstatus, specs.get(cstatus.get("name")) or {}, ref, parent, unhealthy=unhealthy)


def _scheduling(pod: KubeObject, ref: ObjectRef, parent: ObjectRef | None) -> Iterator[Finding]:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            message = condition.get("message") or condition.get("reason") or "no node fits"
            if "unbound immediate PersistentVolumeClaims" in message:
                continue  # not a node problem: the claim can't bind (the volume finding says why)
            yield Finding(
                ref,
                Category.UNSCHEDULABLE,
                str(condition.get("reason") or "Unschedulable"),
                "pods can't be scheduled on any node",
                evidence=(f"pod {ref.name} pending: {message}",),
                parent=parent,
            )


def _volumes(pod: KubeObject, ref: ObjectRef, parent: ObjectRef | None, snapshot: Snapshot) -> Iterator[Finding]:
    evidence = [s.line() for s in summarize(snapshot.events_for([ref]), reasons=VOLUME_EVENT_REASONS)[:2]]
    if (pod.get("status") or {}).get("phase") == "Pending" and snapshot.knows("PersistentVolumeClaim"):
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if not claim:
                continue
            pvc = snapshot.named("PersistentVolumeClaim", claim)
            if pvc is None:
                evidence.append(f"PersistentVolumeClaim `{claim}` does not exist (volume {volume.get('name')})")
            elif (pvc.get("status") or {}).get("phase") != "Bound":
                evidence.append(f"PersistentVolumeClaim `{claim}` is {(pvc.get('status') or {}).get('phase')}")
                evidence += _claim_events(pvc, snapshot)
    if evidence:
        yield Finding(
            ref,
            Category.VOLUME_ERROR,
            "VolumeNotReady",
            "a volume of the pods can't be mounted",
            evidence=tuple(evidence),
            parent=parent,
        )


def _claim_events(pvc: KubeObject, snapshot: Snapshot) -> list[str]:
    """Why a claim does not bind, in the volume controller's words (its events are Normal or Warning)."""
    name = str((pvc.get("metadata") or {}).get("name"))
    reasons = frozenset({"ProvisioningFailed", "FailedBinding", "ExternalProvisioning", "WaitForFirstConsumer"})
    events = summarize(
        snapshot.events_for([ObjectRef("PersistentVolumeClaim", snapshot.namespace, name)]),
        reasons=reasons,
        warnings_only=False,
    )
    storage_class = (pvc.get("spec") or {}).get("storageClassName")
    where = f" (storageClassName {storage_class})" if storage_class else " (no storageClassName)"
    return [f"PersistentVolumeClaim `{name}`{where}: {e.line()}" for e in events[:2]]


def _init_container(cstatus: dict[str, Any], ref: ObjectRef, parent: ObjectRef | None) -> Iterator[Finding]:
    name = cstatus.get("name")
    waiting = (cstatus.get("state") or {}).get("waiting") or {}
    terminated = (cstatus.get("state") or {}).get("terminated") or {}
    last = (cstatus.get("lastState") or {}).get("terminated") or {}
    if waiting.get("reason") in IMAGE_PULL_REASONS:
        yield _image_pull(cstatus, waiting, ref, parent)
        return
    failed = terminated if terminated.get("exitCode") not in (None, 0) else last
    if waiting.get("reason") in ("CrashLoopBackOff", *CONFIG_REASONS) or (failed and failed.get("exitCode")):
        words = explain_exit_code(failed.get("exitCode"), failed.get("reason")) if failed else waiting.get("reason")
        yield Finding(
            ref,
            Category.INIT_FAILURE,
            str(waiting.get("reason") or "InitContainerFailed"),
            f"init container {name} fails, so the main containers never start",
            evidence=(f"pod {ref.name} init container {name}: {words}; restarts {cstatus.get('restartCount', 0)}",),
            parent=parent,
        )


def _container(
    cstatus: dict[str, Any], spec: dict[str, Any], ref: ObjectRef, parent: ObjectRef | None, *, unhealthy: list[str]
) -> Iterator[Finding]:
    name = cstatus.get("name")
    state = cstatus.get("state") or {}
    waiting = state.get("waiting") or {}
    last = (cstatus.get("lastState") or {}).get("terminated") or {}
    terminated = state.get("terminated") or {}
    restarts = int(cstatus.get("restartCount") or 0)
    reason = waiting.get("reason")
    if reason in IMAGE_PULL_REASONS:
        yield _image_pull(cstatus, waiting, ref, parent)
        return
    if reason in CONFIG_REASONS:
        yield Finding(
            ref,
            Category.CONFIG_ERROR,
            str(reason),
            f"container {name} can't be created: its configuration is invalid",
            severity=Severity.CRITICAL,
            evidence=(f"pod {ref.name} container {name}: {reason}: {waiting.get('message') or ''}".rstrip(": "),),
            parent=parent,
        )
        return
    oom = next((t for t in (terminated, last) if t.get("reason") == "OOMKilled"), None)
    if oom is not None:
        limit = ((spec.get("resources") or {}).get("limits") or {}).get("memory")
        now = "running again now" if "running" in state else f"now {reason or 'not running'}"
        yield Finding(
            ref,
            Category.OOM_KILLED,
            "OOMKilled",
            f"container {name} is killed for using more memory than its limit" + (f" ({limit})" if limit else ""),
            severity=Severity.CRITICAL if reason == "CrashLoopBackOff" else Severity.WARNING,
            evidence=(
                f"pod {ref.name} container {name}: {explain_exit_code(oom.get('exitCode'), 'OOMKilled')}"
                f" at {oom.get('finishedAt') or '?'}; restarts {restarts}; {now}",
            ),
            parent=parent,
        )
        return
    if reason == "CrashLoopBackOff" or (terminated and terminated.get("exitCode") not in (None, 0)):
        failed = last or terminated
        words = explain_exit_code(failed.get("exitCode"), failed.get("reason")) if failed else "keeps exiting"
        detail = f"; message: {failed.get('message')}" if failed.get("message") else ""
        yield Finding(
            ref,
            Category.CRASH_LOOP,
            str(reason or "Error"),
            f"container {name} keeps crashing after it starts",
            severity=Severity.CRITICAL,
            evidence=(f"pod {ref.name} container {name}: {words}; restarts {restarts}{detail}",),
            parent=parent,
        )
        return
    if "running" in state and not cstatus.get("ready") and (spec.get("readinessProbe") or unhealthy):
        probe = spec.get("readinessProbe")
        yield Finding(
            ref,
            Category.PROBE_FAILURE,
            "ReadinessProbeFailing",
            f"container {name} is running but its readiness probe fails, so it gets no traffic",
            evidence=(
                f"pod {ref.name} container {name}: running, not ready"
                + (f"; readiness probe {describe_probe(probe)}" if probe else ""),
                *unhealthy[:1],
            ),
            parent=parent,
        )


def _image_pull(cstatus: dict[str, Any], waiting: dict[str, Any], ref: ObjectRef, parent: ObjectRef | None) -> Finding:
    image = cstatus.get("image") or "?"
    message = waiting.get("message") or ""
    return Finding(
        ref,
        Category.IMAGE_PULL,
        str(waiting.get("reason")),
        f"image {image} can't be pulled ({waiting.get('reason')})",
        severity=Severity.CRITICAL,
        evidence=(
            f"pod {ref.name} container {cstatus.get('name')}: {waiting.get('reason')}"
            + (f": {message}" if message else ""),
        ),
        parent=parent,
    )


def describe_probe(probe: dict[str, Any]) -> str:
    """`httpGet :8080/healthz every 10s` style summary of a probe."""
    if probe.get("httpGet"):
        get = probe["httpGet"]
        what = f"httpGet :{get.get('port')}{get.get('path') or '/'}"
    elif probe.get("tcpSocket"):
        what = f"tcpSocket :{probe['tcpSocket'].get('port')}"
    elif probe.get("exec"):
        what = "exec " + " ".join(str(a) for a in probe["exec"].get("command") or [])
    elif probe.get("grpc"):
        what = f"grpc :{probe['grpc'].get('port')}"
    else:
        what = "?"
    return f"{what} every {probe.get('periodSeconds', 10)}s, fails after {probe.get('failureThreshold', 3)}"
