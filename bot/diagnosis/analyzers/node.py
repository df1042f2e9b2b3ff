"""Node analyzer: nodes that are not Ready, or under pressure, where the target's pods run."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity

PRESSURES = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@analyzes("Node")
def analyze_node(node: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    ref = ObjectRef("Node", None, str((node.get("metadata") or {}).get("name", "")))
    conditions = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    evidence = [
        f"node {ref.name}: {t} ({conditions[t].get('message') or conditions[t].get('reason')})"
        for t in PRESSURES
        if (conditions.get(t) or {}).get("status") == "True"
    ]
    if ready.get("status") != "True":
        yield Finding(
            ref,
            Category.NODE_NOT_READY,
            str(ready.get("reason") or "NotReady"),
            f"node {ref.name} is not Ready, and pods run on it",
            severity=Severity.CRITICAL,
            evidence=(
                f"node {ref.name}: Ready={ready.get('status', 'Unknown')} "
                f"since {ready.get('lastTransitionTime', '?')}: {ready.get('message') or ''}".rstrip(": "),
                *evidence,
            ),
        )
    elif evidence:
        yield Finding(
            ref, Category.NODE_NOT_READY, "Pressure", f"node {ref.name} is under pressure", evidence=tuple(evidence)
        )
    if (node.get("spec") or {}).get("unschedulable"):
        yield Finding(
            ref,
            Category.NODE_NOT_READY,
            "Cordoned",
            f"node {ref.name} is cordoned",
            severity=Severity.INFO,
            evidence=(f"node {ref.name} is cordoned (unschedulable)",),
        )
