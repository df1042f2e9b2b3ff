"""`status [-n ns]`: one screen of a namespace's health: workloads not ready (with their likely
cause) and recent warnings (redacted). One snapshot (the watch cache's when the bot holds one, else
listed from the API), then pure analysis per unhealthy workload."""

from __future__ import annotations

from typing import Any

from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, VerbSpec
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.engine import explain
from bot.diagnosis.events import summarize
from bot.kube.resolving import Resolution
from bot.kube.snapshot import Snapshot, fetch_snapshot, name_of, owner_refs
from bot.model import Answer, Command, KubeObject, ObjectRef
from bot.redaction import DEFAULT, Redactor

SHOWN_PROBLEMS = 15
SHOWN_WARNINGS = 5
STATUS_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job")


@verb(
    VerbSpec(
        name="status",
        summary="a namespace's health on one screen: workloads not ready, recent failures",
        usage="status [-n namespace]",
        examples=("status -n shop", "status"),
        flags=(NAMESPACE_FLAG,),
        target="none",
        slow=True,
    )
)
def status_verb(ctx: VerbContext, command: Command) -> Answer:
    namespace = ctx.namespace_for(command)
    cache = ctx.cache
    if cache is not None and cache.usable(namespace):
        # The whole namespace, as the watch delivered it (milliseconds behind the API server); a kind
        # is decoded only when read, and most workloads of a big namespace are judged by their counts.
        snapshot = Snapshot(namespace, cache.namespace_view(namespace), missing=cache.missing)
        source = "cache"
    else:
        snapshot = fetch_snapshot(ctx.kube, namespace)
        source = "api"
    data = namespace_status(snapshot, analyzers=ctx.services.analyzers, redactor=ctx.services.redactor)
    data["source"] = {"from": source}
    return Answer(verb="status", data=data, title=_title(data), lines=tuple(status_lines(data)))


def namespace_status(
    snapshot: Snapshot, *, analyzers: AnalyzerRegistry, redactor: Redactor = DEFAULT
) -> dict[str, Any]:
    """Pure: the status contract for one snapshot. Warning messages and causes are redacted."""
    rows = [
        _row(obj, snapshot, analyzers, redactor)
        for kind in STATUS_KINDS
        for obj in snapshot.of(kind)
        if not _owned_job(obj)
    ]
    problems = [r for r in rows if not r["healthy"]]
    warnings = [redactor.text(s.line()) for s in summarize(snapshot.of("Event"))[:SHOWN_WARNINGS]]
    return {
        "namespace": snapshot.namespace,
        "workloads": len(rows),
        "healthy": len(rows) - len(problems),
        "problems": problems,
        "recent_warnings": warnings,
        "errors": list(snapshot.errors),
    }


def _owned_job(obj: KubeObject) -> bool:
    return obj.get("kind") == "Job" and any(r.get("kind") == "CronJob" for r in owner_refs(obj))


def _counts(obj: KubeObject) -> tuple[int, int]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    kind = obj.get("kind")
    if kind == "DaemonSet":
        return int(status.get("numberReady") or 0), int(status.get("desiredNumberScheduled") or 0)
    if kind in ("Job", "CronJob"):
        return 0, 0
    return int(status.get("readyReplicas") or 0), int(spec.get("replicas", 1))


def _settled(obj: KubeObject) -> bool:
    """No rollout under way: every replica runs the current template, so "all ready" means healthy.
    (A new ReplicaSet failing while the old pods still serve has all old replicas ready.)"""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int((obj.get("metadata") or {}).get("generation") or 0):
        return False
    if obj.get("kind") == "DaemonSet":
        return int(status.get("updatedNumberScheduled") or 0) >= int(status.get("desiredNumberScheduled") or 0)
    if obj.get("kind") == "StatefulSet" and status.get("updateRevision") != status.get("currentRevision"):
        return False
    replicas = int(spec.get("replicas", 1))
    total = int(status.get("replicas") or 0)
    return int(status.get("updatedReplicas") or 0) >= replicas and total <= replicas


def _row(obj: KubeObject, snapshot: Snapshot, analyzers: AnalyzerRegistry, redactor: Redactor) -> dict[str, Any]:
    ref = ObjectRef(str(obj.get("kind")), snapshot.namespace, name_of(obj))
    ready, desired = _counts(obj)
    row: dict[str, Any] = {
        "kind": ref.kind,
        "name": ref.name,
        "ready": ready,
        "desired": desired,
        "healthy": True,
        "category": None,
        "title": None,
    }
    if ref.kind in ("Deployment", "StatefulSet", "DaemonSet") and ready >= desired > 0 and _settled(obj):
        return row  # the common case on a big namespace: no analysis needed
    diagnosis = explain(snapshot, Resolution(ref, obj, (obj,), ()), analyzers=analyzers, redactor=redactor)
    if not diagnosis.healthy and diagnosis.causes:
        top = diagnosis.causes[0]
        row.update(healthy=False, category=str(top.category), title=top.title)
    return row


def _title(data: dict[str, Any]) -> str:
    bad = len(data["problems"])
    if not bad:
        return f"{data['namespace']}: all {data['workloads']} workloads healthy"
    return f"{data['namespace']}: {bad} of {data['workloads']} workloads need attention"


def status_lines(data: dict[str, Any]) -> list[str]:
    lines = []
    for row in data["problems"][:SHOWN_PROBLEMS]:
        counts = f" {row['ready']}/{row['desired']} ready" if row["desired"] else ""
        lines.append(f"✗ {row['kind']} {row['name']}{counts}: {row['title']} [{row['category']}]")
    if len(data["problems"]) > SHOWN_PROBLEMS:
        lines.append(f"… and {len(data['problems']) - SHOWN_PROBLEMS} more")
    if data["recent_warnings"]:
        lines.append("Recent warnings:")
        lines += [f"  {w}" for w in data["recent_warnings"]]
    lines += [f"Note: {e}" for e in data["errors"]]
    if data["problems"]:
        lines.append("Ask `/k8s why <name>` for the cause, evidence and next step.")
    return lines
