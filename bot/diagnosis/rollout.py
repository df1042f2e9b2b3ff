"""Where a Deployment's rollout stands, so `why` never points backwards into a failure being fixed.

A rollback or a fix rolls out as a new revision while the failed revision's pods are scaled away and
shut down. Those pods still show the failure (ImagePullBackOff, CrashLoopBackOff) for a while, but it is
going away: the answer is "the rollback is under way (or done), watch these pods go", not "the image
can't be pulled, roll back to the revision that failed".

Pure: the Deployment, its ReplicaSets and pods from one snapshot, and the analyzers' findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.kube.revisions import Revision, current_revision, earlier_numbers, revisions
from bot.kube.snapshot import Snapshot, name_of
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity

ROLLOUT_SYMPTOMS = frozenset({Category.ROLLOUT_STUCK, Category.NO_ENDPOINTS, Category.HPA_LIMITED})
"""Findings of these categories on the workload or Service are what a rollout in progress looks like."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An older revision that still has pods while the current one takes over."""

    revision: Revision
    pods: tuple[str, ...]
    terminating: tuple[str, ...]
    failing: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class Rollout:
    """A Deployment whose current revision is taking over from older ones, failing pods left behind."""

    deployment: ObjectRef
    current: Revision
    desired: int
    outgoing: tuple[Outgoing, ...]
    rollback_of: tuple[int, ...]
    """The earlier revision numbers whose template the current revision is (a rollback), else ()."""

    @property
    def done(self) -> bool:
        """The current revision serves every desired replica; only the old pods' shutdown is left."""
        return self.current.ready >= self.desired

    @property
    def failed(self) -> tuple[Outgoing, ...]:
        return tuple(o for o in self.outgoing if o.failing)


def revision_by_pod(deployment: KubeObject, snapshot: Snapshot) -> dict[str, Revision]:
    """Each pod of the Deployment (by name) and the revision it belongs to."""
    found: dict[str, Revision] = {}
    for revision in revisions(deployment, snapshot):
        for pod in snapshot.owned_by(revision.replicaset, "Pod"):
            found[name_of(pod)] = revision
    return found


def rollout_of(deployment: KubeObject, snapshot: Snapshot, findings: Sequence[Finding]) -> Rollout | None:
    """The rollout under way, when older revisions still have pods; None when nothing rolls."""
    if deployment.get("kind") != "Deployment":
        return None
    history = revisions(deployment, snapshot)
    current = current_revision(deployment, history)
    if current is None:
        return None
    by_pod = {name: r.number for name, r in revision_by_pod(deployment, snapshot).items()}
    outgoing: list[Outgoing] = []
    for revision in history:
        if revision.number == current.number:
            continue
        pods = snapshot.owned_by(revision.replicaset, "Pod")
        if not pods:
            continue
        names = tuple(sorted(name_of(p) for p in pods))
        failing = tuple(f for f in findings if _outgoing_subject(f, revision, by_pod) and f.severity != Severity.INFO)
        terminating = tuple(sorted(name_of(p) for p in pods if (p.get("metadata") or {}).get("deletionTimestamp")))
        outgoing.append(Outgoing(revision, names, terminating, failing))
    if not outgoing:
        return None
    desired = int((deployment.get("spec") or {}).get("replicas", 1))
    return Rollout(
        ObjectRef.of(deployment, kind="Deployment"), current, desired, tuple(outgoing), earlier_numbers(current)
    )


def _outgoing_subject(finding: Finding, revision: Revision, by_pod: dict[str, int]) -> bool:
    if finding.subject.kind == "Pod":
        return by_pod.get(finding.subject.name) == revision.number
    if finding.subject.kind == "ReplicaSet":
        return finding.subject.name == name_of(revision.replicaset)
    return False


def leaving(rollout: Rollout | None, findings: Sequence[Finding]) -> list[Finding]:
    """The findings about pods and ReplicaSets of revisions on their way out."""
    if rollout is None:
        return []
    gone = {id(f) for o in rollout.outgoing for f in o.failing}
    return [f for f in findings if id(f) in gone]


def takes_over(rollout: Rollout | None, remaining: Sequence[Finding]) -> bool:
    """True when the current revision shows no failure of its own: what is left is old pods going away
    and the symptoms of a rollout (fewer ready than desired, endpoints still moving)."""
    if rollout is None:
        return False
    for finding in remaining:
        if finding.severity == Severity.INFO:
            continue
        symptom = finding.category in ROLLOUT_SYMPTOMS and finding.subject.kind in ("Deployment", "Service")
        if symptom and finding.reason != "ProgressDeadlineExceeded":
            continue
        return False
    return True
