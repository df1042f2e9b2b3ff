"""A Deployment's revision history, read from its ReplicaSets, and the template diff between two.

Each rollout leaves a ReplicaSet carrying the pod template of that revision and the annotation
`deployment.kubernetes.io/revision`. Diffing the failing revision's template against the last good
one names the culprit change (field, before → after) even for changes made before the bot started
watching. When and by whom come from the ReplicaSet's creation time and the Deployment's
managedFields (the field manager that last wrote `spec.template`).

Template values that look secret (env values under secret-looking names, credentials in args or
annotations) are redacted before the diff (`bot.redaction`), so a culprit never shows them.

StatefulSets and DaemonSets keep their revisions as ControllerRevisions instead (`revision` number,
the pod template under `data.spec.template`); `controller_revision_change` diffs them the same way.

Scaling does not create a revision; the deployment controller's ScalingReplicaSet events
("Scaled down replica set x from 3 to 0") tell us before → after for `spec.replicas`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.kube.fields import field_changes, parse_path
from bot.kube.managers import actor_name, find_actor
from bot.kube.snapshot import Snapshot, name_of
from bot.model import FieldChange, KubeObject, ObjectRef, parse_time
from bot.redaction import DEFAULT, Redactor

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HASH_LABEL = "controller-revision-hash"
"""On a StatefulSet's or DaemonSet's pods (and ControllerRevisions): the revision they were made from."""
CONTROLLER_REVISION_KINDS = ("StatefulSet", "DaemonSet")
TEMPLATE_HASH_LABEL = "pod-template-hash"
HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
"""Set by the deployment controller on a ReplicaSet that was reused: the revision numbers it had before."""
_VOLATILE_LABELS = (TEMPLATE_HASH_LABEL,)
_SCALED = re.compile(r"Scaled (?:up|down) replica set (\S+) (?:to (\d+) )?from (\d+) to (\d+)")


@dataclass(frozen=True, slots=True)
class Revision:
    number: int
    replicaset: KubeObject
    created_at: datetime | None
    ready: int
    desired: int

    @property
    def template(self) -> dict[str, Any]:
        if self.replicaset.get("kind") == "ControllerRevision":  # the template as a patch that replaces
            data = ((self.replicaset.get("data") or {}).get("spec") or {}).get("template") or {}
            return {k: v for k, v in data.items() if k != "$patch"}
        return dict((self.replicaset.get("spec") or {}).get("template") or {})

    @property
    def images(self) -> list[str]:
        return [str(c.get("image")) for c in (self.template.get("spec") or {}).get("containers") or []]


@dataclass(frozen=True, slots=True)
class RevisionChange:
    """What changed between the last good revision and the failing (current) one."""

    deployment: ObjectRef
    good: Revision
    failing: Revision
    fields: tuple[FieldChange, ...]
    at: datetime | None
    actor: str | None


def revision_of(replicaset: KubeObject) -> int | None:
    value = ((replicaset.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def revisions(deployment: KubeObject, snapshot: Snapshot) -> list[Revision]:
    """The Deployment's revisions still on record, oldest first."""
    found: list[Revision] = []
    for rs in snapshot.owned_by(deployment, "ReplicaSet"):
        number = revision_of(rs)
        if number is None:
            continue
        status = rs.get("status") or {}
        found.append(
            Revision(
                number,
                rs,
                parse_time((rs.get("metadata") or {}).get("creationTimestamp")),
                int(status.get("readyReplicas") or 0),
                int((rs.get("spec") or {}).get("replicas") or 0),
            )
        )
    return sorted(found, key=lambda r: r.number)


def current_revision(deployment: KubeObject, history: Sequence[Revision]) -> Revision | None:
    """The revision the Deployment's template is at (its revision annotation), else the newest."""
    value = ((deployment.get("metadata") or {}).get("annotations") or {}).get(REVISION_ANNOTATION)
    for revision in history:
        if str(revision.number) == str(value):
            return revision
    return history[-1] if history else None


def earlier_numbers(revision: Revision) -> tuple[int, ...]:
    """The revision numbers a reused ReplicaSet had before (a rollback to its template), oldest first."""
    text = ((revision.replicaset.get("metadata") or {}).get("annotations") or {}).get(HISTORY_ANNOTATION) or ""
    return tuple(sorted(int(part) for part in str(text).split(",") if part.strip().isdigit()))


def abandoned(history: Sequence[Revision]) -> frozenset[int]:
    """Revisions someone rolled back from: between a reused template's old number and its new one.

    Revision 2 failed, the rollback to revision 1's template made revision 3: revision 2 is abandoned
    and must never be offered as the revision to go back to.
    """
    numbers: set[int] = set()
    for revision in history:
        for earlier in earlier_numbers(revision):
            numbers |= {r.number for r in history if earlier < r.number < revision.number}
    return frozenset(numbers)


def last_good(history: list[Revision], failing: Revision, *, avoid: frozenset[int] = frozenset()) -> Revision | None:
    """The newest older revision that still serves ready pods, else simply the previous one.

    Never one in `avoid` (revisions whose pods are failing) nor one someone rolled back from
    (`abandoned`): going back there would bring the failure back.
    """
    bad = avoid | abandoned(history)
    older = [r for r in history if r.number < failing.number and r.number not in bad]
    serving = [r for r in older if r.ready > 0]
    if serving:
        return serving[-1]
    return older[-1] if older else None


def revision_change(
    deployment: KubeObject, snapshot: Snapshot, *, redactor: Redactor = DEFAULT, avoid: frozenset[int] = frozenset()
) -> RevisionChange | None:
    """The template diff of the current revision against the last good one (secrets redacted by
    `redactor`), or None without history. `avoid`: revisions known to fail, never "good"."""
    history = revisions(deployment, snapshot)
    if len(history) < 2:
        return None
    failing = current_revision(deployment, history)
    if failing is None:
        return None
    good = last_good(history, failing, avoid=avoid)
    if good is None:
        return None
    fields = tuple(template_diff(good.template, failing.template, redactor=redactor))
    actor, written_at = template_writer(deployment)
    # Who owns the fields that differ beats who last touched the template at all (a label patch).
    actor = (find_actor(deployment, [parse_path(f.path) for f in fields]) if fields else None) or actor
    # A reused ReplicaSet (a rollback) was created long ago; the template write is the change.
    at = (written_at or failing.created_at) if earlier_numbers(failing) else (failing.created_at or written_at)
    return RevisionChange(ObjectRef.of(deployment, kind="Deployment"), good, failing, fields, at, actor)


def controller_revisions(workload: KubeObject, snapshot: Snapshot) -> list[Revision]:
    """A StatefulSet's or DaemonSet's ControllerRevisions, oldest first, with the ready pods of each
    (its pods carry the revision's name or hash in `controller-revision-hash`)."""
    pods = snapshot.owned_by(workload, "Pod")
    found: list[Revision] = []
    for cr in snapshot.owned_by(workload, "ControllerRevision"):
        number = cr.get("revision")
        if not isinstance(number, int):
            continue
        meta = cr.get("metadata") or {}
        names = {name_of(cr), str((meta.get("labels") or {}).get(REVISION_HASH_LABEL) or name_of(cr))}
        mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get(REVISION_HASH_LABEL) in names]
        ready = sum(1 for p in mine if _ready(p))
        found.append(Revision(number, cr, parse_time(meta.get("creationTimestamp")), ready, len(mine)))
    return sorted(found, key=lambda r: r.number)


def _ready(pod: KubeObject) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def controller_revision_change(
    workload: KubeObject, snapshot: Snapshot, *, redactor: Redactor = DEFAULT, avoid: frozenset[int] = frozenset()
) -> RevisionChange | None:
    """For a StatefulSet or DaemonSet: the template diff of the revision it rolls out (a StatefulSet's
    `status.updateRevision`, else the newest) against the last good one, as `revision_change`."""
    kind = str(workload.get("kind"))
    if kind not in CONTROLLER_REVISION_KINDS:
        return None
    history = controller_revisions(workload, snapshot)
    if len(history) < 2:
        return None
    wanted = (workload.get("status") or {}).get("updateRevision")
    failing = next((r for r in history if name_of(r.replicaset) == wanted), history[-1])
    good = last_good(history, failing, avoid=avoid)
    if good is None:
        return None
    fields = tuple(template_diff(good.template, failing.template, redactor=redactor))
    if not fields:
        return None
    actor, written_at = template_writer(workload)
    actor = find_actor(workload, [parse_path(f.path) for f in fields]) or actor
    return RevisionChange(
        ObjectRef.of(workload, kind=kind), good, failing, fields, failing.created_at or written_at, actor
    )


def template_writer(deployment: KubeObject) -> tuple[str | None, datetime | None]:
    """The field manager that last wrote spec.template, and when (from managedFields)."""
    return spec_writer(deployment, "template")


def replicas_writer(deployment: KubeObject) -> tuple[str | None, datetime | None]:
    return _writer(deployment, lambda spec: "f:replicas" in spec, include_scale=True)


def spec_writer(obj: KubeObject, field: str) -> tuple[str | None, datetime | None]:
    """The field manager that last wrote `spec.<field>` of any object, and when."""
    return _writer(obj, lambda spec: f"f:{field}" in spec)


def _writer(deployment: KubeObject, owns: Any, *, include_scale: bool = False) -> tuple[str | None, datetime | None]:
    best: tuple[str | None, datetime | None] = (None, None)
    for entry in (deployment.get("metadata") or {}).get("managedFields") or []:
        spec = ((entry.get("fieldsV1") or {}).get("f:spec")) or {}
        by_scale = include_scale and entry.get("subresource") == "scale"
        if not (owns(spec) or by_scale) or entry.get("subresource") == "status":
            continue
        at = parse_time(entry.get("time"))
        if best[1] is None or (at is not None and at > best[1]):
            best = (str(entry.get("manager") or "") or None, at)
    manager, at = best
    return (actor_name(manager, deployment) if manager else None), at


def template_diff(
    before: dict[str, Any], after: dict[str, Any], *, redactor: Redactor = DEFAULT
) -> Iterator[FieldChange]:
    """Changed leaves between two pod templates, as `spec.template.…` paths with list indices.
    Secrets are redacted first (with the redactor's fingerprint, a changed secret still differs)."""
    yield from field_changes(redactor.tree(_clean(before)), redactor.tree(_clean(after)), prefix="spec.template")


def _clean(template: dict[str, Any]) -> dict[str, Any]:
    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in _VOLATILE_LABELS}
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    cleaned = dict(template)
    cleaned["metadata"] = meta
    return cleaned


BIRTH = timedelta(seconds=30)


def _born_at(snapshot: Snapshot, replicaset: str, seen: datetime | None) -> bool:
    """True when the ReplicaSet was created right when this scaling was seen: its birth."""
    rs = snapshot.named("ReplicaSet", replicaset)
    created = parse_time(((rs or {}).get("metadata") or {}).get("creationTimestamp"))
    if rs is None or created is None or seen is None:
        return False
    return abs(seen - created) <= BIRTH


@dataclass(frozen=True, slots=True)
class ScaleChange:
    before: int
    after: int
    at: datetime | None
    actor: str | None


def scale_change(deployment: KubeObject, snapshot: Snapshot) -> ScaleChange | None:
    """The last "Scaled … from N to M" of this Deployment with no rollout (one ReplicaSet moved)."""
    name = name_of(deployment)
    latest: tuple[str, int, int] | None = None
    for event in snapshot.events_for([ObjectRef("Deployment", snapshot.namespace, name)]):
        match = _SCALED.search(str(event.get("message") or event.get("note") or ""))
        if not match:
            continue
        seen = str(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
            or ""
        )
        before = int(match.group(3))
        if before == 0 and _born_at(snapshot, match.group(1), parse_time(seen)):
            continue  # a ReplicaSet's first pods (the Deployment's creation or a rollout): not a scale
        if latest is None or seen >= latest[0]:
            latest = (seen, before, int(match.group(4)))
    if latest is None:
        return None
    actor, written_at = replicas_writer(deployment)
    return ScaleChange(latest[1], latest[2], parse_time(latest[0]) or written_at, actor)
