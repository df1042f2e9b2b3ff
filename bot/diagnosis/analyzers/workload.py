"""StatefulSet and DaemonSet analyzers, and the checks every workload shares."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.references import MissingReference, missing_references
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


def scaled_to_zero(ref: ObjectRef) -> Finding:
    return Finding(
        ref,
        Category.SCALED_TO_ZERO,
        "ScaledToZero",
        f"{ref.kind} {ref.name} is scaled to 0 replicas, so nothing runs",
        severity=Severity.CRITICAL,
        evidence=(f"{ref.kind} {ref.name}: spec.replicas is 0",),
    )


def missing_config_findings(ref: ObjectRef, missing: list[MissingReference]) -> Iterator[Finding]:
    for item in missing:
        yield Finding(
            ref,
            Category.CONFIG_ERROR,
            "MissingObject" if item.missing_object else "MissingKey",
            item.sentence(),
            severity=Severity.CRITICAL,
            evidence=(item.sentence(),),
        )


@analyzes("StatefulSet")
def analyze_statefulset(sts: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    ref = ObjectRef.of(sts, kind="StatefulSet")
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    desired = int(spec.get("replicas", 1))
    if desired == 0:
        yield scaled_to_zero(ref)
        return
    yield from missing_config_findings(
        ref, missing_references((spec.get("template") or {}).get("spec") or {}, snapshot)
    )
    ready = int(status.get("readyReplicas") or 0)
    if ready < desired:
        yield Finding(
            ref,
            Category.ROLLOUT_STUCK,
            "NotReady",
            f"only {ready} of {desired} pods are ready",
            evidence=(
                f"StatefulSet {ref.name}: {ready} of {desired} ready, "
                f"revision {status.get('updateRevision')} vs {status.get('currentRevision')}",
            ),
        )


@analyzes("DaemonSet")
def analyze_daemonset(ds: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    ref = ObjectRef.of(ds, kind="DaemonSet")
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    yield from missing_config_findings(
        ref, missing_references((spec.get("template") or {}).get("spec") or {}, snapshot)
    )
    desired = int(status.get("desiredNumberScheduled") or 0)
    ready = int(status.get("numberReady") or 0)
    if ready < desired:
        yield Finding(
            ref,
            Category.ROLLOUT_STUCK,
            "NotReady",
            f"only {ready} of {desired} daemon pods are ready",
            evidence=(
                f"DaemonSet {ref.name}: {ready} of {desired} ready, {status.get('numberUnavailable') or 0} unavailable",
            ),
        )
    if status.get("numberMisscheduled"):
        yield Finding(
            ref,
            Category.UNSCHEDULABLE,
            "Misscheduled",
            f"{status['numberMisscheduled']} daemon pods run where they shouldn't",
            evidence=(f"DaemonSet {ref.name}: {status['numberMisscheduled']} misscheduled",),
        )
