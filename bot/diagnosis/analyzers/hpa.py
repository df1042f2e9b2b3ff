"""HorizontalPodAutoscaler analyzer: pinned at maxReplicas, scaled down to a lowered maxReplicas,
or unable to read its metrics."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.events import summarize
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


@analyzes("HorizontalPodAutoscaler")
def analyze_hpa(hpa: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    ref = ObjectRef.of(hpa, kind="HorizontalPodAutoscaler")
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    target = spec.get("scaleTargetRef") or {}
    parent = ObjectRef(str(target.get("kind")), ref.namespace, str(target.get("name")))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    limited = conditions.get("ScalingLimited") or {}
    current, maximum = int(status.get("currentReplicas") or 0), int(spec.get("maxReplicas") or 0)
    desired = int(status.get("desiredReplicas") or 0)
    if (limited.get("status") == "True" and limited.get("reason") == "TooManyReplicas") or (
        maximum and desired > maximum
    ):
        yield Finding(
            ref,
            Category.HPA_LIMITED,
            "AtMaxReplicas",
            f"the autoscaler wants more pods but is capped at maxReplicas {maximum}",
            evidence=(
                f"HPA {ref.name}: {current} replicas, max {maximum}: {limited.get('message') or ''}".rstrip(": "),
            ),
            parent=parent,
        )
    capped = [
        s
        for s in summarize(snapshot.events_for([ref]), reasons=frozenset({"SuccessfulRescale"}), warnings_only=False)
        if "above Spec.MaxReplicas" in s.message
    ]
    # The newest rescale was down to maxReplicas, and maxReplicas is still that: it caps the workload.
    if capped and maximum and f"New size: {maximum};" in capped[0].message:
        yield Finding(
            ref,
            Category.HPA_LIMITED,
            "CappedByMaxReplicas",
            f"the autoscaler scaled {parent.kind} {parent.name} down to its maxReplicas {maximum}",
            severity=Severity.WARNING,
            evidence=(f"HPA {ref.name}: {capped[0].message} (at {capped[0].last_seen})",),
            parent=parent,
        )
    active = conditions.get("ScalingActive") or {}
    if active.get("status") == "False":
        yield Finding(
            ref,
            Category.HPA_LIMITED,
            str(active.get("reason") or "ScalingInactive"),
            "the autoscaler can't scale: it can't read its metrics",
            evidence=(f"HPA {ref.name}: {active.get('message') or active.get('reason')}",),
            parent=parent,
        )
