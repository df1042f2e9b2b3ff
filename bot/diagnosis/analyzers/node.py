"""Node analyzer: nodes that are not Ready, or under pressure, where the target's pods run.

The evidence names the pods the node left unready or evicted (of the namespace being diagnosed); the
culprit (the condition's transition, a cordon, a taint) comes from `bot.diagnosis.inferred` or the
recorded node changes.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.kube.selectors import pod_ready
from bot.kube.snapshot import Snapshot, name_of
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
    evidence += _pods_on(ref.name, snapshot)
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
    elif any(t in line for line in evidence for t in PRESSURES):
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


def _pods_on(node: str, snapshot: Snapshot, *, shown: int = 5) -> list[str]:
    """`pod checkout-x on it: not ready` for the namespace's pods on `node`, troubled ones first."""
    lines: list[tuple[int, str]] = []
    for pod in snapshot.of("Pod"):
        if (pod.get("spec") or {}).get("nodeName") != node:
            continue
        status = pod.get("status") or {}
        if status.get("reason") == "Evicted":
            lines.append((0, f"pod {name_of(pod)} on it was evicted: {status.get('message') or ''}".rstrip(": ")))
        elif not pod_ready(pod):
            lines.append((1, f"pod {name_of(pod)} on it is not ready"))
        else:
            lines.append((2, f"pod {name_of(pod)} on it is still ready"))
    lines.sort()
    more = len(lines) - shown
    return [line for _, line in lines[:shown]] + ([f"… and {more} more pods on it"] if more > 0 else [])
