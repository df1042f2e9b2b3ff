"""Which change a cause is blamed on: the field that matters for the category, before → after.

Four sources, best first: the recorded change history (when the change tracker runs), the
Deployment's ReplicaSet revision history (template diff, works for changes made before the bot
started), the deployment controller's scaling events (for `spec.replicas`), and last, external change
events (CI deploys, feature flags: docs/integrations.md) about the target or its namespace, which
explain a failure only when no change in the cluster does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.kube.fields import name_of_rendered, show_value
from bot.kube.revisions import RevisionChange, ScaleChange, spec_writer
from bot.kube.snapshot import WORKLOAD_KINDS, Snapshot, name_of
from bot.model import Category, Change, ChangeKind, CulpritChange, FieldChange, KubeObject, ObjectRef

_ANY = re.compile(r".")
RELEVANT: dict[Category, re.Pattern[str]] = {
    Category.IMAGE_PULL: re.compile(r"\.image$|imagePullSecrets"),
    # What the container does (its code, env, args, command) changes how much memory it uses, too.
    Category.OOM_KILLED: re.compile(
        r"resources\.limits\.memory|resources\.requests\.memory|resources$|\.env(\[|From|$)|\.command|\.args|\.image$"
    ),
    Category.CRASH_LOOP: re.compile(
        r"\.env(\[|From|$)|\.command|\.args|\.image$|volumes|^data|^binaryData|^stringData|resources\.limits"
    ),
    Category.CONFIG_ERROR: re.compile(r"\.env(\[|From|$)|valueFrom|volumes|^data|^binaryData|^stringData"),
    Category.PROBE_FAILURE: re.compile(r"(readiness|liveness|startup)Probe"),
    Category.UNSCHEDULABLE: re.compile(
        r"resources\.requests|resources\.limits|nodeSelector|affinity|tolerations|^spec\.replicas$"
        r"|^spec\.unschedulable$|^spec\.taints"
    ),
    # The condition, not the taints the node controller adds because of it.
    Category.NODE_NOT_READY: re.compile(r"^status\.conditions\."),
    Category.QUOTA_EXCEEDED: re.compile(r"resources\.|^spec\.replicas$|^spec\.hard\.|^spec\.limits"),
    Category.SCALED_TO_ZERO: re.compile(r"^spec\.replicas$|^spec\.suspend$"),
    Category.NO_ENDPOINTS: re.compile(r"^spec\.selector|template\.metadata\.labels|ports|targetPort"),
    Category.INIT_FAILURE: re.compile(r"initContainers"),
    Category.VOLUME_ERROR: re.compile(r"volumes|volumeMounts"),
    Category.JOB_FAILED: _ANY,
    Category.ROLLOUT_STUCK: _ANY,
    Category.EVICTED: re.compile(r"resources\."),
    Category.HPA_LIMITED: re.compile(r"maxReplicas|minReplicas|metrics"),
    Category.DISRUPTION_BLOCKED: re.compile(r"^spec\.(minAvailable|maxUnavailable)$|^spec\.replicas$"),
}
# Within the matching fields, the first of these wins (the image beats the env var for image_pull).
PREFERRED: dict[Category, re.Pattern[str]] = {
    Category.IMAGE_PULL: re.compile(r"\.image$"),
    Category.OOM_KILLED: re.compile(r"limits\.memory|requests\.memory"),
    Category.CRASH_LOOP: re.compile(r"\.env|^data|\.command|\.args"),
    Category.CONFIG_ERROR: re.compile(r"secretKeyRef|configMapKeyRef|envFrom|secret|configMap"),
    Category.UNSCHEDULABLE: re.compile(r"requests"),
    Category.ROLLOUT_STUCK: re.compile(r"^spec\.template\.spec\."),
    Category.JOB_FAILED: re.compile(r"^spec\.template\.spec\."),
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the diagnosis knows about changes, for one target."""

    workload: ObjectRef | None = None
    revision: RevisionChange | None = None
    scale: ScaleChange | None = None
    history: Sequence[Change] = ()
    current_replicas: int | None = None
    selector: CulpritChange | None = None
    """A Service selector that no longer matches its workload's labels (see `selector_change`)."""
    derived: Sequence[CulpritChange] = ()
    """Changes read from the objects themselves when no history has them: a node condition's
    transition, a cordon or taint (managedFields), a ConfigMap or Secret key edited in place."""
    current: KubeObject | None = None
    """The workload as it is now: names the list items of changes recorded without field names."""


WEAK = re.compile(r"(^|\.)metadata\.(labels|annotations)\.")
"""Labels and annotations rarely make pods fail; blamed only where a category names them (selectors)."""
RESTART = re.compile(r"restartedAt$")


STRONG = 2


def plausibility(category: Category, path: str) -> int:
    """How well a changed field can explain `category`: 3 the usual cause, 2 a possible one, 1 a field
    only an "anything" category matches, 0 not at all (a label for a crash)."""
    pattern = RELEVANT.get(category)
    if pattern is None or not pattern.search(path):
        return 0
    preferred = PREFERRED.get(category)
    if pattern is _ANY:
        if WEAK.search(path) and not RESTART.search(path):
            return 0
        return 3 if preferred is not None and preferred.search(path) else 1
    return 3 if preferred is not None and preferred.search(path) else 2


def pick_field(category: Category, fields: Sequence[FieldChange]) -> FieldChange | None:
    """The field of one edit that best explains `category` (the first of the most plausible)."""
    best: FieldChange | None = None
    score = 0
    for field in fields:
        rank = plausibility(category, field.path)
        if rank > score:
            best, score = field, rank
    return best


def what_changed(
    ref: ObjectRef, field: FieldChange, workload: ObjectRef | None, current: KubeObject | None = None
) -> str:
    """The field in words, with its object when it is not the workload itself (a ConfigMap key)."""
    label = field.label or name_of_rendered(field.path, current if ref == workload else None)
    if workload is not None and ref == workload:
        return label
    return f"{label} of {ref.kind} {ref.name}"


def change_phrase(change: CulpritChange, limit: int = 60, *, target: ObjectRef | None = None) -> str:
    """`env var DB_URL of container app changed from a to b`, `... was added (from Secret db key pw)`.

    A change of another object than `target` (the Service it calls, its node, a ConfigMap) names that
    object, unless its words already do; a change whose values are not known or not shown "was changed".
    """
    what = change.what or change.path
    ref = change.ref
    another = target is not None and (ref.kind, ref.name) != (target.kind, target.name)
    if another and f"of {ref.kind} {ref.name}" not in what:
        what = f"{ref.kind} {ref.name} {what}"
    if change.before is None and change.after is None:
        return f"{what} was changed"
    if change.before is None and change.after is not None:
        return f"{what} was added ({show_value(change.after, limit)})"
    if change.after is None and change.before is not None:
        return f"{what} was removed (it was {show_value(change.before, limit)})"
    return f"{what} changed from {show_value(change.before, limit)} to {show_value(change.after, limit)}"


def culprit(category: Category, evidence: Evidence) -> CulpritChange | None:
    """The change to blame for `category`, or None when no recorded change fits.

    Recorded history first (newest first), then the selector, then the changes read from the objects
    themselves and the revision diff (the newest of those), then the scaling events, and external
    change events last; a change whose field can only weakly explain the category (anything, for a
    stuck rollout) waits until no source has a field that plausibly does.
    """
    weak: CulpritChange | None = None
    for change in sorted((c for c in evidence.history if not c.external), key=lambda c: c.at, reverse=True):
        if change.kind in (ChangeKind.CREATED, ChangeKind.DELETED):
            continue  # an object's creation is not a change to blame
        field = pick_field(category, change.fields)
        if field is None:
            continue
        blamed = CulpritChange(
            change.ref,
            change.at,
            change.actor,
            change.revision,
            field.path,
            field.before,
            field.after,
            what_changed(change.ref, field, evidence.workload, evidence.current),
        )
        if plausibility(category, field.path) >= STRONG:
            return blamed
        weak = weak or blamed
    if category == Category.NO_ENDPOINTS and evidence.selector is not None:
        return evidence.selector
    candidates = [_worded(c, evidence) for c in evidence.derived if _relevant(category, c.path)]
    if evidence.revision is not None:
        field = pick_field(category, evidence.revision.fields)
        if field is not None and (weak is None or plausibility(category, field.path) >= STRONG):
            rc = evidence.revision
            candidates.insert(  # first: of two changes in the same second, the workload's own edit
                0,
                CulpritChange(
                    rc.deployment,
                    rc.at,
                    rc.actor,
                    rc.failing.number,
                    field.path,
                    field.before,
                    field.after,
                    field.label or name_of_rendered(field.path, evidence.current),
                ),
            )
    if candidates:
        # The newest: a ConfigMap edited after the last rollout, not the rollout it did not come with.
        return max(candidates, key=lambda c: c.at.timestamp() if c.at else 0.0)
    if weak is not None:
        return weak
    scale = evidence.scale
    if (
        scale is not None
        and evidence.workload is not None
        and scale.after == evidence.current_replicas
        and _replicas_matter(category)
    ):
        return CulpritChange(
            evidence.workload, scale.at, scale.actor, None, "spec.replicas", scale.before, scale.after, "replicas"
        )
    return external_culprit(category, evidence.history)


def _worded(change: CulpritChange, evidence: Evidence) -> CulpritChange:
    """A change read from an object itself, named like a recorded one (`key FLAGS of ConfigMap
    settings`, `condition Ready of Node n1`) when its reader gave it no words."""
    if change.what:
        return change
    field = FieldChange(change.path, change.before, change.after)
    return replace(change, what=what_changed(change.ref, field, evidence.workload, evidence.current))


def external_culprit(category: Category, history: Sequence[Change]) -> CulpritChange | None:
    """The newest external change event in `history` (they are about the target or its namespace),
    narrowed to the field that fits the category, else its first field."""
    external = sorted((c for c in history if c.external), key=lambda c: (c.at, c.id or 0), reverse=True)
    if not external:
        return None
    change = external[0]
    field = pick_field(category, change.fields) or (change.fields[0] if change.fields else None)
    return CulpritChange(
        change.ref,
        change.at,
        change.actor,
        None,
        field.path if field else "",
        field.before if field else None,
        field.after if field else None,
        source=change.source,
        link=change.link,
        summary=change.summary,
    )


def _relevant(category: Category, path: str) -> bool:
    if category == Category.JOB_FAILED and path.startswith("spec.jobTemplate."):
        return True  # what a CronJob's job template changed, between a good Job and the failing one
    pattern = RELEVANT.get(category)
    return bool(pattern and pattern is not _ANY and pattern.search(path))


def weight(category: Category, change: CulpritChange | None) -> int:
    """How well the blamed change explains the category (0 without one): see `plausibility`."""
    return 0 if change is None else max(plausibility(category, change.path), 1)


def _replicas_matter(category: Category) -> bool:
    pattern = RELEVANT.get(category)
    return bool(pattern and pattern.search("spec.replicas") and pattern is not _ANY)


def selector_change(service: KubeObject, snapshot: Snapshot) -> CulpritChange | None:
    """The selector key of a Service that no longer matches the workload it is named after.

    Without a recorded change we can't know the old value for sure; the value the workload's pods
    carry is the one that matched, so it stands as `before`. Who and when come from managedFields.
    """
    selector = (service.get("spec") or {}).get("selector") or {}
    name = name_of(service)
    for kind in WORKLOAD_KINDS:
        workload = snapshot.named(kind, name)
        if workload is None:
            continue
        labels = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        for key, value in sorted(selector.items()):
            if key in labels and labels[key] != value:
                actor, at = spec_writer(service, "selector")
                return CulpritChange(
                    ObjectRef.of(service, kind="Service"),
                    at,
                    actor,
                    None,
                    f"spec.selector.{key}",
                    labels[key],
                    value,
                    f"selector {key} of Service {name}",
                )
    return None
