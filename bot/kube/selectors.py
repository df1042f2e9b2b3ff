"""Which objects select which: Service selectors, pod-template labels, and whether a pod is ready.

Pure functions over objects of a fetched `Snapshot`; resolving a target, the analyzers and the
diagnosis engine all use these, so there is one meaning of "selects" and one of "ready".
"""

from __future__ import annotations

from typing import Any

from bot.kube.snapshot import WORKLOAD_KINDS, Snapshot
from bot.model import KubeObject


def selector_matches(selector: dict[str, str], labels: dict[str, Any] | None) -> bool:
    """An equality selector matches labels that carry every one of its pairs (an empty one matches nothing)."""
    labels = labels or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def template_labels(obj: KubeObject) -> dict[str, Any]:
    """The labels a workload gives its pods (a CronJob's through its job template)."""
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})


def selected_pods(service: KubeObject, snapshot: Snapshot) -> list[KubeObject]:
    selector = (service.get("spec") or {}).get("selector") or {}
    return [p for p in snapshot.of("Pod") if selector_matches(selector, (p.get("metadata") or {}).get("labels"))]


def selected_workloads(service: KubeObject, snapshot: Snapshot) -> list[KubeObject]:
    """Workloads whose pod template carries the labels the Service selects."""
    selector = (service.get("spec") or {}).get("selector") or {}
    return [
        obj for kind in WORKLOAD_KINDS for obj in snapshot.of(kind) if selector_matches(selector, template_labels(obj))
    ]


def pod_ready(pod: KubeObject) -> bool:
    """The pod's Ready condition is True (what Services and `kubectl get` count as ready)."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def label_selector_matches(selector: dict[str, Any] | None, labels: dict[str, Any] | None) -> bool:
    """A LabelSelector (`matchLabels` and `matchExpressions`, as in a Deployment's `spec.selector`)
    matches `labels`. An empty or absent selector matches nothing here: no caller wants "everything"."""
    selector = selector or {}
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    labels = labels or {}
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key, operator = expression.get("key"), expression.get("operator")
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def selector_query(selector: dict[str, Any]) -> str:
    """A LabelSelector as the API's `labelSelector` query text (`app=web,tier in (a,b),!canary`)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(sorted(str(v) for v in expression.get("values") or []))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
