"""Detection: run the diagnosis analyzers over one workload's watched objects, keep what should page.

No rule engine of its own: `evaluate` builds a `bot.kube.snapshot.Snapshot` from the in-memory
index (the workload, its ReplicaSets or Jobs, their pods and recent Warning events) and calls
`bot.diagnosis.engine.run_analyzers`. What it adds is the alerting policy on top of the findings:

* only failure categories page (not "scaled to zero", which someone chose, nor HPA limits);
* informational findings (a cordoned node) do not page;
* a rollout in progress does not page: "rollout stuck" counts only once the deployment controller
  says the progress deadline passed; failing pods (image pulls, crashes...) page on their own;
* a stuck rollout whose pods fail for a named cause is that cause (one alert, not two);
* pods already being deleted are ignored (old revisions going away).

It also gathers what the message needs: the culprit change (recorded history first, then the
ReplicaSet revision diff, its values redacted), the last good revision to roll back to, and counts of
affected pods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.alerting.index import ClusterIndex, Key
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.culprits import Evidence, culprit
from bot.diagnosis.engine import run_analyzers
from bot.kube.revisions import RevisionChange, revision_change, revision_of
from bot.kube.snapshot import Snapshot
from bot.model import Category, Change, CulpritChange, Finding, KubeObject, ObjectRef, Severity
from bot.redaction import DEFAULT, Redactor

log = logging.getLogger(__name__)

ALERTING = frozenset(
    {
        Category.CRASH_LOOP,
        Category.OOM_KILLED,
        Category.IMAGE_PULL,
        Category.CONFIG_ERROR,
        Category.UNSCHEDULABLE,
        Category.QUOTA_EXCEEDED,
        Category.PROBE_FAILURE,
        Category.ROLLOUT_STUCK,
        Category.NODE_NOT_READY,
        Category.EVICTED,
        Category.JOB_FAILED,
        Category.VOLUME_ERROR,
        Category.INIT_FAILURE,
    }
)
STUCK_REASONS = frozenset({"ProgressDeadlineExceeded"})
UNLISTED = frozenset(
    {
        "ConfigMap",
        "Secret",
        "PersistentVolumeClaim",
        "ResourceQuota",
        "Service",
        "EndpointSlice",
        "HorizontalPodAutoscaler",
    }
)
"""Kinds alerting does not hold: analyzers must not conclude "missing" for them (see Snapshot.knows)."""

History = Callable[[ObjectRef, datetime], Sequence[Change]]


@dataclass(frozen=True)
class Evaluation:
    """What is wrong with one workload now, by category, plus what the message needs."""

    workload: ObjectRef
    found: dict[Category, tuple[Finding, ...]]
    pods_total: int = 0
    ready: bool = True
    """False while the workload's own objects are not all known yet (try again shortly)."""
    objects: dict[str, tuple[KubeObject, ...]] = field(default_factory=dict)


def _alive(obj: KubeObject) -> bool:
    return not (obj.get("metadata") or {}).get("deletionTimestamp")


def scope(index: ClusterIndex, workload: ObjectRef) -> tuple[list[KubeObject], bool]:
    """The objects of a workload (itself first), and False when its owner chain is not known yet."""
    top = index.get(workload.kind, workload.namespace, workload.name)
    if top is None:  # not indexed yet (its watch lags the pods') or deleted: the engine retries a while
        return [], workload.kind not in ("Deployment", "CronJob", "ReplicaSet", "Job")
    objects = [top]
    if workload.kind == "ReplicaSet" and any(
        r.get("kind") == "Deployment" for r in (top.get("metadata") or {}).get("ownerReferences") or []
    ):
        return [], False  # its Deployment is not indexed yet: evaluate once it is
    for child in index.owned(top):
        objects.append(child)
        if child.get("kind") in ("ReplicaSet", "Job"):
            objects += index.owned(child)
    return objects, True


def evaluate(index: ClusterIndex, workload: ObjectRef, *, analyzers: AnalyzerRegistry) -> Evaluation:
    """Run the analyzers over `workload`'s objects and keep the findings that should page."""
    objects, ready = scope(index, workload)
    if not objects:
        return Evaluation(workload, {}, ready=ready)
    live = [o for o in objects if _alive(o)]
    keys: list[Key] = [(str(o.get("kind")), workload.namespace or "", _name(o)) for o in live]
    by_kind: dict[str, list[KubeObject]] = {}
    for obj in live:
        by_kind.setdefault(str(obj.get("kind")), []).append(obj)
    by_kind["Event"] = index.events_of(keys)
    frozen = {k: tuple(v) for k, v in by_kind.items()}
    snapshot = Snapshot(workload.namespace or "", frozen, missing=UNLISTED)
    analyzed = [o for o in live if o.get("kind") != "Event"]
    findings, errors = run_analyzers(analyzed, snapshot, analyzers=analyzers)
    for error in errors:
        log.warning("alert detection for %s: %s", workload, error)
    found: dict[Category, list[Finding]] = {}
    for finding in findings:
        if pages(finding):
            found.setdefault(finding.category, []).append(finding)
    if len(found) > 1:
        # A rollout stuck because its pods fail is a symptom of that failure: one alert, not two.
        found.pop(Category.ROLLOUT_STUCK, None)
    pods = len(frozen.get("Pod", ()))
    return Evaluation(workload, {c: tuple(f) for c, f in found.items()}, pods, True, frozen)


def pages(finding: Finding) -> bool:
    if finding.category not in ALERTING or finding.severity == Severity.INFO:
        return False
    if finding.category == Category.ROLLOUT_STUCK:
        return finding.reason in STUCK_REASONS
    return True


def _name(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


# -- context for the message ------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    culprit: CulpritChange | None
    rollback_to: int | None
    """The last good revision, when a new revision preceded the failure (the Rollback button)."""
    current_revision: int | None
    failing_pod: str | None


def context(
    evaluation: Evaluation,
    category: Category,
    *,
    history: History | None,
    now: datetime,
    redactor: Redactor = DEFAULT,
) -> Context:
    deployment = next(iter(evaluation.objects.get("Deployment", ())), None)
    findings = evaluation.found.get(category, ())
    pod = next((f.subject.name for f in findings if f.subject.kind == "Pod"), None)
    if pod is None:
        pod = next((_name(p) for p in evaluation.objects.get("Pod", ())), None)
    changes: Sequence[Change] = ()
    if history is not None:
        try:
            changes = history(evaluation.workload, now - timedelta(hours=24))
        except Exception:  # the change store is an aid; the revision diff still names the change
            log.exception("change history for %s failed", evaluation.workload)
    revision: RevisionChange | None = None
    current: int | None = None
    if deployment is not None:
        snapshot = Snapshot(evaluation.workload.namespace or "", evaluation.objects, missing=UNLISTED)
        revision = revision_change(deployment, snapshot, redactor=redactor)
        current = revision_of(deployment)
    blamed = culprit(category, Evidence(workload=evaluation.workload, revision=revision, history=changes))
    if blamed is not None:
        blamed = redactor.culprit(blamed)
    rollback_to = None
    if revision is not None and current == revision.failing.number and revision.good.number != current:
        rollback_to = revision.good.number
    return Context(blamed, rollback_to, current, pod)
