"""Deployment analyzer: scaled to zero, rollouts that don't progress, missing config references."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.analyzers.replicaset import _why
from bot.diagnosis.analyzers.workload import missing_config_findings, scaled_to_zero
from bot.diagnosis.references import missing_references
from bot.kube.revisions import revisions
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


@analyzes("Deployment")
def analyze_deployment(deployment: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    ref = ObjectRef.of(deployment, kind="Deployment")
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    if desired == 0:
        yield scaled_to_zero(ref)
        return
    template_spec = (spec.get("template") or {}).get("spec") or {}
    yield from missing_config_findings(ref, missing_references(template_spec, snapshot))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    failure = conditions.get("ReplicaFailure") or {}
    if failure.get("status") == "True":
        yield Finding(
            ref,
            Category.QUOTA_EXCEEDED,
            "ReplicaFailure",
            "the Deployment can't create pods: " + _why(str(failure.get("message"))),
            severity=Severity.CRITICAL,
            evidence=(f"Deployment {ref.name}: {failure.get('message')}",),
        )
    progressing = conditions.get("Progressing") or {}
    ready = int(status.get("readyReplicas") or 0)
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        yield Finding(
            ref,
            Category.ROLLOUT_STUCK,
            "ProgressDeadlineExceeded",
            "the rollout stopped making progress (progress deadline exceeded)",
            severity=Severity.CRITICAL,
            evidence=(f"Deployment {ref.name}: {progressing.get('message')}", f"{ready} of {desired} pods ready"),
        )
        return
    yield from _rollout_in_progress(deployment, snapshot, ref, desired)


def _rollout_in_progress(deployment: KubeObject, snapshot: Snapshot, ref: ObjectRef, desired: int) -> Iterator[Finding]:
    """A new revision that isn't becoming ready, while old revisions still serve, or too few ready."""
    status = deployment.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    history = revisions(deployment, snapshot)
    if len(history) >= 2 and history[-1].ready < history[-1].desired:
        new = history[-1]
        serving = [r for r in history[:-1] if r.ready > 0]
        if serving:
            old = ", ".join(f"revision {r.number} ({r.ready} ready)" for r in serving)
            yield Finding(
                ref,
                Category.ROLLOUT_STUCK,
                "NewRevisionNotReady",
                f"the rollout of revision {new.number} is not becoming ready; older pods still serve",
                evidence=(
                    f"revision {new.number} (new): {new.ready} of {new.desired} pods ready",
                    f"still serving: {old}",
                ),
            )
            return
    if ready < desired:
        yield Finding(
            ref,
            Category.ROLLOUT_STUCK,
            "NotReady",
            f"only {ready} of {desired} pods are ready",
            evidence=(
                f"Deployment {ref.name}: {ready} of {desired} pods ready, "
                f"{int(status.get('updatedReplicas') or 0)} up to date",
            ),
        )
