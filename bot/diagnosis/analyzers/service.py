"""Service analyzer: a selector that matches no pods, or matches pods none of which are ready."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot.diagnosis.analyzers import analyzes
from bot.kube.selectors import pod_ready, selected_pods, selected_workloads, template_labels
from bot.kube.snapshot import WORKLOAD_KINDS, Snapshot, name_of
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


def _format(labels: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "(none)"


@analyzes("Service")
def analyze_service(service: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector or spec.get("type") == "ExternalName":
        return  # endpoints managed by hand, or no endpoints at all: nothing to judge
    if not snapshot.holds_pods_of(name_of(service)):
        return  # its pods were not read: unknown, not absent
    ref = ObjectRef.of(service, kind="Service")
    pods = [p for p in selected_pods(service, snapshot) if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if not pods:
        workloads = selected_workloads(service, snapshot)
        if workloads:
            names = ", ".join(f"{w.get('kind')} {name_of(w)}" for w in workloads[:3])
            yield Finding(
                ref,
                Category.NO_ENDPOINTS,
                "NoPods",
                f"Service {ref.name} has no pods behind it",
                evidence=(f"selector {_format(selector)} matches {names}, which has no pods",),
            )
            return
        yield Finding(
            ref,
            Category.NO_ENDPOINTS,
            "SelectorMatchesNothing",
            f"Service {ref.name}'s selector matches no pods",
            severity=Severity.CRITICAL,
            evidence=(f"Service {ref.name} selects {_format(selector)}", *_nearby_labels(ref.name, snapshot)),
        )
        return
    ready = _ready_endpoints(ref.name, snapshot)
    if ready is None:
        ready = sum(1 for p in pods if pod_ready(p))
    if ready == 0:
        yield Finding(
            ref,
            Category.NO_ENDPOINTS,
            "NoReadyEndpoints",
            f"Service {ref.name} has no ready endpoints: none of its {len(pods)} pods is ready",
            evidence=(f"Service {ref.name}: 0 ready endpoints, {len(pods)} pods selected",),
        )


def _nearby_labels(name: str, snapshot: Snapshot) -> list[str]:
    """Labels of the workloads that look like this Service's, to show the mismatch side by side."""
    lines = []
    for kind in WORKLOAD_KINDS:
        for obj in snapshot.of(kind):
            labels = template_labels(obj)
            if name_of(obj) == name or name in labels.values():
                lines.append(f"{kind} {name_of(obj)} labels its pods {_format(labels)}")
    return lines[:3]


def _ready_endpoints(service_name: str, snapshot: Snapshot) -> int | None:
    if not snapshot.knows("EndpointSlice") or "EndpointSlice" not in snapshot.objects:
        return None
    count = 0
    for eps in snapshot.of("EndpointSlice"):
        if ((eps.get("metadata") or {}).get("labels") or {}).get("kubernetes.io/service-name") != service_name:
            continue
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                count += 1
    return count
