"""`timeline <target> [-n ns] [--since 6h]`: what happened to a target, as a picture and in words.

Lanes: changes (who, what; the diagnosis's culprit highlighted), pod restarts and readiness, Warning
events, the bot's alerts, and external changes when change records carry a non-Kubernetes source.
The namespace is fetched once (as `why` does); the changes come from the recorded history, limited
to the kinds the asker may read. The answer carries the timeline as JSON (`data`) and as a
`Picture`, drawn by the edge that shows it (Slack uploads it; `k8sbot ask --png FILE` writes it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.commands.context import VerbContext
from bot.commands.parsing import duration_seconds
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.diagnosis.engine import explain, scope_of
from bot.diagnosis.references import references
from bot.errors import UsageError
from bot.kube.resolving import resolve
from bot.kube.snapshot import fetch_snapshot
from bot.model import Answer, Command, CulpritChange, Diagnosis, KubeObject, ObjectRef, Picture
from bot.timeline.building import (
    AlertMark,
    Timeline,
    build_timeline,
    describe_in_words,
    lines_of,
    redacted,
    title_of,
)

if TYPE_CHECKING:
    from bot.store.alerts import AlertRecord

DEFAULT_SINCE = "6h"
MAX_SINCE = timedelta(days=7)
HISTORY_KINDS_SKIPPED = frozenset({"Pod", "ReplicaSet", "EndpointSlice", "Event"})
"""Objects in the scope whose changes are not recorded (pods) or are controller bookkeeping."""

SPEC = VerbSpec(
    name="timeline",
    summary="a picture of what happened to a target: changes, restarts, warnings, alerts, the culprit",
    usage="timeline <target> [-n namespace] [--since 6h]",
    examples=("timeline checkout -n shop", "timeline deploy/checkout --since 2h"),
    flags=(NAMESPACE_FLAG, FlagSpec("since", "duration", f"how far back (default {DEFAULT_SINCE}, at most 7d)")),
    target="required",
    slow=True,
)


@verb(SPEC)
def timeline_verb(ctx: VerbContext, command: Command) -> Answer:
    namespace = ctx.namespace_for(command)
    window = timedelta(seconds=duration_seconds(str(command.flag("since", DEFAULT_SINCE))))
    if window.total_seconds() <= 0:
        raise UsageError("`--since` must be longer than zero.", usage=SPEC.usage)
    if window > MAX_SINCE:
        raise UsageError("`--since` can go back at most 7d.", usage=SPEC.usage)
    end = ctx.now
    timeline = gather(ctx, namespace, str(command.target), start=end - window, end=end)
    return timeline_answer(timeline)


def timeline_answer(timeline: Timeline) -> Answer:
    """The answer for a timeline: its JSON, its lines, and the picture (drawn by the edge)."""
    data = timeline.to_json()
    target = timeline.target
    picture = Picture(
        kind="timeline",
        data=data,
        alt_text=describe_in_words(timeline),
        filename=f"timeline-{target.namespace or 'cluster'}-{target.name}.png",
        title=title_of(timeline),
    )
    return Answer(
        verb="timeline",
        data=data,
        title=title_of(timeline),
        lines=tuple(lines_of(timeline)[1:]),
        pictures=(picture,),
    )


def gather(ctx: VerbContext, namespace: str, target: str, *, start: datetime, end: datetime) -> Timeline:
    """Fetch the namespace once, resolve and diagnose `target`, and build its timeline (redacted)."""
    snapshot = fetch_snapshot(ctx.kube, namespace)
    resolution = resolve(snapshot, target)
    scope = scope_of(snapshot, resolution)
    diagnosis = explain(
        snapshot,
        resolution,
        analyzers=ctx.services.analyzers,
        history=ctx.history,
        now=end,
        redactor=ctx.services.redactor,
    )
    objects = list(scope.objects)
    refs = list(dict.fromkeys(ObjectRef.of(o) for o in objects if o.get("kind") not in HISTORY_KINDS_SKIPPED))
    refs += _config_refs(scope.workload, namespace)
    workloads = {ObjectRef.of(w) for w in resolution.workloads} | {resolution.ref}
    timeline = build_timeline(
        cluster=ctx.services.cluster_name,
        target=resolution.ref,
        start=start,
        end=end,
        changes=ctx.history.changes_for(refs, start),
        pods=scope.pods,
        events=snapshot.events_for(ObjectRef.of(o) for o in objects),
        alerts=[_mark(a) for a in _alerts(ctx, namespace, start) if a.workload in workloads],
        culprit=culprit_of(diagnosis),
    )
    return redacted(timeline, ctx.services.redactor.text)


def culprit_of(diagnosis: Diagnosis) -> CulpritChange | None:
    """The change the diagnosis blames: the best-ranked cause's that has one (None when healthy)."""
    if diagnosis.healthy:
        return None
    return next((c.change for c in diagnosis.causes if c.change is not None), None)


def _config_refs(workload: KubeObject | None, namespace: str) -> list[ObjectRef]:
    """The ConfigMaps and Secrets the workload's pod template uses (their edits belong on its timeline)."""
    if workload is None:
        return []
    pod_spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return list(dict.fromkeys(ObjectRef(r.kind, namespace, r.name) for r in references(pod_spec)))


def _alerts(ctx: VerbContext, namespace: str, start: datetime) -> list[AlertRecord]:
    store = ctx.services.alerts
    found = {a.id: a for a in store.since(start, namespace=namespace)}
    found.update({a.id: a for a in store.open_alerts() if a.workload.namespace == namespace})
    return list(found.values())


def _mark(record: AlertRecord) -> AlertMark:
    return AlertMark(record.title, record.fired_at, record.resolved_at, str(record.category))
