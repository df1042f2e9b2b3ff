"""PodDisruptionBudget analyzer: a budget that allows no voluntary disruption while every pod it
covers is healthy (minAvailable equal to the replicas, maxUnavailable 0). Node drains and cluster
upgrades then hang on these pods. Reported as a warning of each workload it selects (it never pages);
a budget at 0 because pods are failing is doing its job and is not reported."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.kube.selectors import label_selector_matches, template_labels
from bot.kube.snapshot import WORKLOAD_KINDS, Snapshot, name_of
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


@analyzes("PodDisruptionBudget")
def analyze_disruption_budget(budget: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    spec, status = budget.get("spec") or {}, budget.get("status") or {}
    expected = int(status.get("expectedPods") or 0)
    healthy = int(status.get("currentHealthy") or 0)
    desired = int(status.get("desiredHealthy") or 0)
    if "disruptionsAllowed" not in status or int(status.get("disruptionsAllowed") or 0) > 0:
        return
    if expected == 0 or healthy < expected or desired < expected:
        return  # no pods, or pods down: the budget protects what is left, the failure is elsewhere
    ref = ObjectRef("PodDisruptionBudget", snapshot.namespace, name_of(budget))
    rule = " and ".join(f"{k} {spec[k]}" for k in ("minAvailable", "maxUnavailable") if k in spec)
    numbers = (
        f"PodDisruptionBudget {ref.name}: {rule}; {healthy} of {expected} pods healthy, "
        f"{desired} must stay healthy, so it allows 0 disruptions"
    )
    for kind in WORKLOAD_KINDS:
        for workload in snapshot.of(kind):
            if not label_selector_matches(spec.get("selector"), template_labels(workload)):
                continue
            subject = ObjectRef(kind, snapshot.namespace, name_of(workload))
            yield Finding(
                subject,
                Category.DISRUPTION_BLOCKED,
                "NoDisruptionsAllowed",
                f"no node drain can evict the pods of {kind} {subject.name}: "
                f"PodDisruptionBudget {ref.name} allows 0 disruptions",
                severity=Severity.WARNING,
                evidence=(numbers,),
                related=ref,
            )
