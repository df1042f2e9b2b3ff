"""ReplicaSet analyzer: pods the controller could not create (quota, LimitRange, admission)."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.events import summarize
from bot.diagnosis.quota import exhausted_quotas, limit_ranges
from bot.kube.owners import workload_of
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


@analyzes("ReplicaSet")
def analyze_replicaset(rs: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    if int((rs.get("spec") or {}).get("replicas") or 0) == 0:
        return  # an old revision, scaled away: its failures are history
    ref = ObjectRef.of(rs, kind="ReplicaSet")
    messages = [
        str(c.get("message") or "")
        for c in (rs.get("status") or {}).get("conditions") or []
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"
    ]
    events = summarize(snapshot.events_for([ref]), reasons=frozenset({"FailedCreate"}))
    if not messages and not events:
        return
    evidence = [f"ReplicaSet {ref.name}: {m}" for m in messages[:1]]
    evidence += [e.line() for e in events[:2] if not messages or e.message not in messages[0]]
    evidence += exhausted_quotas(snapshot)
    why = _why(" ".join(messages + [e.message for e in events]))
    if "LimitRange" in why:
        evidence += limit_ranges(snapshot)
    yield Finding(
        ref,
        Category.QUOTA_EXCEEDED,
        "FailedCreate",
        "the ReplicaSet can't create pods: " + why,
        severity=Severity.CRITICAL,
        evidence=tuple(evidence),
        parent=workload_of(rs, snapshot),
    )


def _why(message: str) -> str:
    lowered = message.lower()
    if "exceeded quota" in lowered:
        return "the namespace's ResourceQuota is exhausted"
    if "limitrange" in lowered or "maximum" in lowered or "minimum" in lowered:
        return "the pods violate the namespace's LimitRange"
    if "admission" in lowered or "denied" in lowered or "forbidden" in lowered:
        return "an admission policy rejects the pods"
    return "the API server rejects the pods"
