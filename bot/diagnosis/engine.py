"""`why`'s engine: explain(target) → Diagnosis, from the target's Snapshot (`bot.kube.targeted`).

The steps: take the target's scope (workloads, their ReplicaSets, pods, Services, HPAs, nodes), run
every analyzer on it (a failing analyzer adds an error; the rest still report), group findings into
causes by category, rank them (root causes above the symptoms they produce: a Deployment scaled to
zero also leaves its Service without endpoints), blame a change for each, and suggest a next step.
Only the top cause gets log lines, fetched through `read_logs` (two requests at most). Everything a
diagnosis quotes from the cluster (titles, evidence, event messages, log lines, the culprit's before
and after) goes through the `Redactor` it is given.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.culprits import STRONG, Evidence, change_phrase, culprit, selector_change, weight
from bot.diagnosis.dependencies import called_services, log_links, pod_template, trouble
from bot.diagnosis.events import summarize
from bot.diagnosis.inferred import (
    autoscaler_changes,
    budget_changes,
    config_edits,
    cronjob_change,
    node_changes,
    policy_changes,
    scheduling_blockers,
)
from bot.diagnosis.references import references
from bot.diagnosis.rollout import Rollout, leaving, rollout_of, takes_over
from bot.diagnosis.suggestions import Situation, suggest
from bot.errors import K8sBotError
from bot.kube.cache import CacheView
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.kube.owners import pods_of
from bot.kube.resolving import Resolution, resolve
from bot.kube.revisions import CONTROLLER_REVISION_KINDS, controller_revision_change, revision_change, scale_change
from bot.kube.selectors import label_selector_matches, pod_ready, selected_pods, template_labels
from bot.kube.snapshot import Snapshot, name_of, read_pod_log
from bot.kube.targeted import MAX_DEPENDENCIES, Provenance, read_target
from bot.model import (
    Category,
    Cause,
    Change,
    ChangeKind,
    CulpritChange,
    Diagnosis,
    Finding,
    KubeObject,
    ObjectRef,
    Severity,
    Suggestion,
)
from bot.redaction import DEFAULT, Redactor

log = logging.getLogger(__name__)


class ChangeHistory(Protocol):
    """Recorded changes (the change tracker's store). Optional: `why` works without it."""

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]: ...


LogReader = Callable[[str, str, bool], str]
"""(pod, container, previous) → log text; raises bot.errors on failure."""

BASE_CONFIDENCE: dict[Category, float] = {
    Category.IMAGE_PULL: 0.9,
    Category.CONFIG_ERROR: 0.9,
    Category.SCALED_TO_ZERO: 0.9,
    Category.OOM_KILLED: 0.85,
    Category.QUOTA_EXCEEDED: 0.85,
    Category.UNSCHEDULABLE: 0.85,
    Category.JOB_FAILED: 0.85,
    Category.CRASH_LOOP: 0.8,
    Category.INIT_FAILURE: 0.8,
    Category.VOLUME_ERROR: 0.75,
    Category.PROBE_FAILURE: 0.75,
    Category.NODE_NOT_READY: 0.85,
    Category.EVICTED: 0.55,
    Category.NO_ENDPOINTS: 0.5,
    Category.HPA_LIMITED: 0.5,
    Category.DISRUPTION_BLOCKED: 0.4,
    Category.ROLLOUT_STUCK: 0.45,
    Category.DEPENDENCY: 0.85,
}
REASON_CONFIDENCE: dict[tuple[Category, str], float] = {
    (Category.NO_ENDPOINTS, "SelectorMatchesNothing"): 0.9,
    (Category.ROLLOUT_STUCK, "ProgressDeadlineExceeded"): 0.6,
    (Category.JOB_FAILED, "Retrying"): 0.6,
    (Category.NODE_NOT_READY, "Pressure"): 0.4,
    (Category.SCALED_TO_ZERO, "Suspended"): 0.6,
}
SYMPTOMS = frozenset({Category.ROLLOUT_STUCK, Category.NO_ENDPOINTS, Category.HPA_LIMITED})
"""Categories that are usually the effect of another cause; demoted when a root cause is present."""
LOGGED = frozenset(
    {
        Category.CRASH_LOOP,
        Category.OOM_KILLED,
        Category.JOB_FAILED,
        Category.PROBE_FAILURE,
        Category.INIT_FAILURE,
        Category.DEPENDENCY,
    }
)
ERROR_LINE = re.compile(r"(?i)\b(error|err|exception|fatal|panic|fail(ed|ure)?|traceback|refused|denied|killed)\b")
MAX_EVIDENCE = 8
POLICY_KINDS = ("ResourceQuota", "LimitRange", "PodDisruptionBudget")


Widen = Callable[[Iterable[str]], Snapshot]
"""The snapshot with the pods of these Services (and what diagnosing them needs) read too."""


@dataclass(frozen=True)
class Scope:
    """The objects one diagnosis looks at."""

    objects: tuple[KubeObject, ...]
    pods: tuple[KubeObject, ...]
    workload: KubeObject | None


def scope_of(snapshot: Snapshot, resolution: Resolution) -> Scope:
    workloads = list(resolution.workloads)
    pods: list[KubeObject] = []
    objects: list[KubeObject] = [*workloads, *resolution.services]
    for workload in workloads:
        if workload.get("kind") == "Deployment":
            objects += snapshot.owned_by(workload, "ReplicaSet")
            pods += pods_of(workload, snapshot)
        elif workload.get("kind") == "CronJob":
            jobs = sorted(snapshot.owned_by(workload, "Job"), key=_created)[-1:]
            objects += jobs
            pods += [p for job in jobs for p in snapshot.owned_by(job, "Pod")]
        else:
            pods += pods_of(workload, snapshot)
    if resolution.obj.get("kind") == "Pod":
        pods = [resolution.obj]
    elif not workloads and resolution.obj.get("kind") == "Service":
        pods = selected_pods(resolution.obj, snapshot)
    names = {(w.get("kind"), name_of(w)) for w in workloads}
    objects += [
        h
        for h in snapshot.of("HorizontalPodAutoscaler")
        if (((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind"), _target_name(h)) in names
    ]
    objects += [
        b
        for b in snapshot.of("PodDisruptionBudget")
        if any(label_selector_matches((b.get("spec") or {}).get("selector"), template_labels(w)) for w in workloads)
    ]
    nodes = {(p.get("spec") or {}).get("nodeName") for p in pods}
    objects += [n for n in snapshot.of("Node") if name_of(n) in nodes]
    objects += pods
    primary = workloads[0] if len(workloads) == 1 else None
    return Scope(tuple(objects), tuple(pods), primary)


def _target_name(hpa: KubeObject) -> str:
    return str(((hpa.get("spec") or {}).get("scaleTargetRef") or {}).get("name"))


def _created(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def run_analyzers(
    objects: Sequence[KubeObject], snapshot: Snapshot, *, analyzers: AnalyzerRegistry
) -> tuple[list[Finding], list[str]]:
    """Every analyzer on every object; an analyzer that raises is reported, never fatal."""
    findings: list[Finding] = []
    errors: list[str] = []
    for obj in objects:
        for analyzer in analyzers.for_kind(str(obj.get("kind"))):
            try:
                findings.extend(analyzer(obj, snapshot))
            except Exception as e:  # a bug in one analyzer must not cost the whole answer
                log.exception("analyzer %s failed on %s/%s", analyzer.__name__, obj.get("kind"), name_of(obj))
                errors.append(f"analyzer {analyzer.__name__} failed on {obj.get('kind')} {name_of(obj)}: {e}")
    return findings, errors


def explain(
    snapshot: Snapshot,
    resolution: Resolution,
    *,
    analyzers: AnalyzerRegistry,
    history: ChangeHistory | None = None,
    read_logs: LogReader | None = None,
    now: datetime | None = None,
    window: timedelta = timedelta(days=1),
    redactor: Redactor = DEFAULT,
    follow: bool = True,
    widen: Widen | None = None,
) -> Diagnosis:
    """Diagnose the resolved target. Never raises for a broken analyzer or a missing log.

    With `follow`, a Service the target calls that is broken is diagnosed too (one level deep), and
    its own cause and culprit change become the target's root cause. A Service whose pods the
    snapshot did not read is judged only after `widen` reads them (a Service named in a log line);
    without `widen`, it is not judged at all.
    """
    scope = scope_of(snapshot, resolution)
    findings, errors = run_analyzers(scope.objects, snapshot, analyzers=analyzers)
    errors = list(snapshot.errors) + errors
    # Failing pods of revisions on their way out are the failure being fixed, not today's cause.
    rollout = rollout_of(scope.workload, snapshot, findings) if scope.workload is not None else None
    going = {id(f) for f in leaving(rollout, findings)}
    current = [f for f in findings if id(f) not in going]
    avoid = frozenset(o.revision.number for o in rollout.failed) if rollout else frozenset()

    def change_evidence(found: Sequence[Finding]) -> Evidence:
        return _change_evidence(
            snapshot,
            resolution,
            scope,
            found,
            history=history,
            now=now,
            window=window,
            errors=errors,
            redactor=redactor,
            avoid=avoid,
        )

    if rollout is not None and going and takes_over(rollout, current):
        return _recovering(
            resolution.ref,
            rollout,
            findings=findings,
            evidence=change_evidence(findings),
            errors=errors,
            redactor=redactor,
        )
    findings = current
    problems = [f for f in findings if f.severity != Severity.INFO]
    if not problems:
        return _healthy(resolution.ref, scope, findings, errors, redactor)
    evidence = change_evidence(findings)
    causes = _rank(
        [
            _cause(
                category,
                group,
                snapshot=snapshot,
                scope=scope,
                evidence=evidence,
                resolution=resolution,
                redactor=redactor,
            )
            for category, group in _by_category(findings).items()
            if any(f.severity != Severity.INFO for f in group)
        ]
    )
    causes = _with_rollout_context(causes, findings, redactor)
    follow_up = _Follow(snapshot, resolution, analyzers, history, now, window, redactor, widen) if follow else None
    if follow_up is not None:
        causes = _rank([follow_up.dependency(c, findings) if c.category == Category.DEPENDENCY else c for c in causes])
    if read_logs is not None and causes and causes[0].category in LOGGED:
        causes[0] = _with_logs(causes[0], scope, read_logs, redactor)
        if follow_up is not None and not any(c.category == Category.DEPENDENCY for c in causes):
            causes = _rank(causes + follow_up.from_logs(causes[0], scope))
    top = causes[0]
    return Diagnosis(
        resolution.ref, False, _summary(resolution.ref, top), tuple(causes), tuple(findings), tuple(errors)
    )


@dataclass(frozen=True)
class _Follow:
    """Diagnosing a Service the target calls, with what the target's own diagnosis was given."""

    snapshot: Snapshot
    resolution: Resolution
    analyzers: AnalyzerRegistry
    history: ChangeHistory | None
    now: datetime | None
    window: timedelta
    redactor: Redactor
    widen: Widen | None

    def dependency(self, cause: Cause, findings: Sequence[Finding]) -> Cause:
        """The dependency cause, told with the dependency's own top cause and culprit change."""
        group = [f for f in findings if f.category == Category.DEPENDENCY and f.related is not None]
        for finding in group:
            assert finding.related is not None
            followed = self._followed(self.snapshot, finding.related.name, finding.message, finding.evidence)
            if followed is not None:
                return followed
        return cause

    def from_logs(self, top: Cause, scope: Scope) -> list[Cause]:
        """A broken Service named in the log lines of the top cause (a crash that says who it calls)."""
        lines = [e.split(": ", 1)[1] for e in top.evidence if e.startswith("log (") and ": " in e]
        own = [name_of(s) for s in self.resolution.services]
        found_links = log_links(lines, self.snapshot, own=own)[:MAX_DEPENDENCIES]
        snapshot = self.snapshot
        unread = [link.service for link in found_links if not snapshot.holds_pods_of(link.service)]
        if unread and self.widen is not None:
            try:
                snapshot = self.widen(unread)
            except K8sBotError as e:  # the log's lead is an aid: without its pods, it is not judged
                log.info("could not read the pods of %s: %s", ", ".join(unread), e)
        for link in found_links:
            found = trouble(link.service, snapshot)
            if found is None:
                continue
            message = f"{self.resolution.ref.name} calls Service {link.service}, which {found.problem}"
            followed = self._followed(snapshot, link.service, message, (link.line(), found.evidence))
            if followed is not None:
                return [followed]
        return []

    def _followed(self, snapshot: Snapshot, service: str, message: str, link: Sequence[str]) -> Cause | None:
        try:
            target = resolve(snapshot, f"svc/{service}")
        except K8sBotError:
            return None
        if target.ref == self.resolution.ref:
            return None
        diagnosis = explain(
            snapshot,
            target,
            analyzers=self.analyzers,
            history=self.history,
            now=self.now,
            window=self.window,
            redactor=self.redactor,
            follow=False,
        )
        if diagnosis.healthy or not diagnosis.causes:
            return None
        top = diagnosis.causes[0]
        first = top.title.split(" ", 1)[0]
        title = f"{message}: {top.title if first in KINDS else top.title[:1].lower() + top.title[1:]}"
        evidence = tuple(dict.fromkeys([*(self.redactor.text(line) for line in link), *top.evidence]))
        confidence = BASE_CONFIDENCE[Category.DEPENDENCY] + (0.05 if top.change is not None else 0.0)
        return Cause(Category.DEPENDENCY, confidence, self.redactor.text(title), evidence, top.change, top.suggestion)


@dataclass(frozen=True)
class Investigation:
    """A diagnosis and where its objects were read from (the watch cache or the API)."""

    diagnosis: Diagnosis
    provenance: Provenance


def investigate(
    kube: KubeClient,
    namespace: str,
    target: str,
    *,
    analyzers: AnalyzerRegistry,
    history: ChangeHistory | None = None,
    now: datetime | None = None,
    redactor: Redactor = DEFAULT,
    cache: CacheView | None = None,
) -> Investigation:
    """Read what `target` needs (from `cache` when it can answer, else the API: `read_target`),
    resolve it, explain it (with the top cause's logs, always from the API)."""
    read = read_target(kube, namespace, target, cache=cache, calls=called_services)

    def read_logs(pod: str, container: str, previous: bool) -> str:
        return read_pod_log(
            kube, namespace, pod, container=container, previous=previous, tail_lines=100, limit_bytes=64 * 1024
        )

    diagnosis = explain(
        read.snapshot,
        read.resolution,
        analyzers=analyzers,
        history=history,
        read_logs=read_logs,
        now=now,
        redactor=redactor,
        widen=read.widened,
    )
    return Investigation(diagnosis, read.provenance)


def diagnose(
    kube: KubeClient,
    namespace: str,
    target: str,
    *,
    analyzers: AnalyzerRegistry,
    history: ChangeHistory | None = None,
    now: datetime | None = None,
    redactor: Redactor = DEFAULT,
    cache: CacheView | None = None,
) -> Diagnosis:
    """`investigate`, the diagnosis only."""
    return investigate(
        kube, namespace, target, analyzers=analyzers, history=history, now=now, redactor=redactor, cache=cache
    ).diagnosis


def _healthy(ref: ObjectRef, scope: Scope, findings: list[Finding], errors: list[str], redactor: Redactor) -> Diagnosis:
    ready = sum(1 for p in scope.pods if pod_ready(p))
    total = len(scope.pods)
    detail = f"{ready} of {total} pods ready" if total else "nothing wrong found"
    title = f"{ref.kind} {ref.name} looks healthy: {detail}"
    evidence = tuple(redactor.text(f.evidence[0]) for f in findings if f.evidence)
    cause = Cause(Category.HEALTHY, 1.0, title, evidence=evidence)
    return Diagnosis(ref, True, title + ".", (cause,), tuple(findings), tuple(errors))


def _recovering(
    ref: ObjectRef,
    rollout: Rollout,
    *,
    findings: list[Finding],
    evidence: Evidence,
    errors: list[str],
    redactor: Redactor,
) -> Diagnosis:
    """A rollback or fix under way: say where it stands, what is left of the failure, what to watch.
    Nothing is blamed and nothing is rolled back: the change under way is the fix."""
    current = rollout.current
    images = ", ".join(current.images)
    if rollout.rollback_of:
        back = rollout.rollback_of[-1]
        what = f"the rollback to revision {back}'s template (now revision {current.number}, image {images})"
    else:
        what = f"revision {current.number} (image {images})"
    state = (
        f"{what} serves {current.ready} of {rollout.desired} pods"
        if rollout.done
        else f"{what} is rolling out: {current.ready} of {rollout.desired} pods ready so far"
    )
    left = []
    lines = [f"revision {current.number} (current): {current.ready} of {rollout.desired} pods ready"]
    for out in rollout.failed:
        reasons = sorted({f.reason for f in out.failing})
        image = ", ".join(out.revision.images)
        pods = len(out.pods)
        how = "still terminating" if len(out.terminating) == pods else "being replaced"
        left.append(
            f"failed revision {out.revision.number} (image {image}, {', '.join(reasons)}) has "
            f"{pods} pod{'s' if pods != 1 else ''} {how}"
        )
        messages = sorted({f.message for f in out.failing})
        lines.append(f"revision {out.revision.number} (going away): {'; '.join(messages)}")
        lines += [line for f in out.failing for line in f.evidence][:3]
    under_way = _change_under_way(evidence, rollout)
    if under_way:
        lines.append(under_way)
    title = state[:1].upper() + state[1:] + "; " + "; ".join(left)
    first = next((o for o in rollout.failed), None)
    watch_pods = ", ".join((first.terminating or first.pods)[:3]) if first else ""
    if rollout.done:
        text = (
            f"Nothing to undo: the failing revision is already replaced. Watch its pod(s) ({watch_pods}) "
            f"finish shutting down and revision {current.number} stay ready; if they linger for minutes, "
            "look at what holds them (finalizers, a long termination grace period)."
        )
        pod = (first.terminating or first.pods)[0] if first else None
        command = f"/k8s describe pod/{pod} -n {ref.namespace}" if pod and ref.namespace else None
    else:
        text = (
            f"Nothing to undo yet: watch revision {current.number}'s pods become ready; "
            f"ask again in a minute, and if they fail, `why` names the cause in the new revision."
        )
        command = f"/k8s why {ref.kind.lower()}/{ref.name} -n {ref.namespace}" if ref.namespace else None
    cause = Cause(
        Category.ROLLOUT_IN_PROGRESS,
        0.9,
        redactor.text(title),
        tuple(redactor.text(line) for line in lines),
        None,
        Suggestion(text=redactor.text(text), command=command),
    )
    verb = "is recovering" if rollout.done else "is rolling out a fix"
    summary = f"{ref.kind} {ref.name} {verb}: {cause.title[:1].lower() + cause.title[1:]}."
    return Diagnosis(ref, False, summary, (cause,), tuple(findings), tuple(errors))


def _change_under_way(evidence: Evidence, rollout: Rollout) -> str | None:
    """The recorded change that started the current revision, said as the fix (never blamed)."""
    changes = [c for c in evidence.history if c.ref == rollout.deployment and c.kind != ChangeKind.SCALE]
    if not changes:
        return None
    change = max(changes, key=lambda c: c.at)
    who = f" by {change.actor}" if change.actor else ""
    return f"change under way: {change.summary} ({change.at:%Y-%m-%d %H:%M} UTC{who})"


def _by_category(findings: list[Finding]) -> dict[Category, list[Finding]]:
    groups: dict[Category, list[Finding]] = {}
    for finding in findings:
        groups.setdefault(finding.category, []).append(finding)
    return groups


def _change_evidence(
    snapshot: Snapshot,
    resolution: Resolution,
    scope: Scope,
    findings: Sequence[Finding],
    *,
    history: ChangeHistory | None,
    now: datetime | None,
    window: timedelta,
    errors: list[str],
    redactor: Redactor,
    avoid: frozenset[int] = frozenset(),
) -> Evidence:
    workload = scope.workload
    changes: list[Change] = []
    derived = _derived_changes(snapshot, scope, findings, now=now, window=window, redactor=redactor)
    if history is not None and now is not None:
        refs = [resolution.ref, *(ObjectRef.of(o) for o in (*resolution.workloads, *resolution.services))]
        refs += _config_refs(workload, snapshot.namespace)
        refs.append(ObjectRef("Namespace", None, snapshot.namespace))  # external events about the namespace
        refs += _context_refs(snapshot, scope, derived)
        try:
            changes = list(history.changes_for(sorted(set(refs)), now - window))
        except Exception as e:  # the change store is an aid; without it we still have revisions
            log.exception("change history failed")
            errors.append(f"change history unavailable: {e}")
    selector = next(
        (
            c
            for s in resolution.services
            if (c := selector_change(s, snapshot)) is not None and _selects_nothing(s, snapshot)
        ),
        None,
    )
    if workload is None:
        return Evidence(history=changes, selector=selector, derived=derived)
    ref = ObjectRef.of(workload)
    if workload.get("kind") in CONTROLLER_REVISION_KINDS:
        return Evidence(
            workload=ref,
            revision=controller_revision_change(workload, snapshot, redactor=redactor, avoid=avoid),
            history=changes,
            selector=selector,
            derived=derived,
            current=workload,
        )
    if workload.get("kind") != "Deployment":
        return Evidence(workload=ref, history=changes, selector=selector, derived=derived, current=workload)
    return Evidence(
        workload=ref,
        revision=revision_change(workload, snapshot, redactor=redactor, avoid=avoid),
        scale=scale_change(workload, snapshot),
        history=changes,
        current_replicas=int((workload.get("spec") or {}).get("replicas", 1)),
        selector=selector,
        derived=derived,
        current=workload,
    )


def _derived_changes(
    snapshot: Snapshot,
    scope: Scope,
    findings: Sequence[Finding],
    *,
    now: datetime | None,
    window: timedelta,
    redactor: Redactor,
) -> list[CulpritChange]:
    """Changes the objects themselves tell of (see `bot.diagnosis.inferred`): the target's nodes,
    what keeps its Pending pods off nodes, the quota or LimitRange that refuses its pods, the
    ConfigMaps and Secrets its template reads."""
    derived = [c for n in scope.objects if n.get("kind") == "Node" for c in node_changes(n)]
    derived += scheduling_blockers(scope.pods, snapshot)
    refusals = [line for f in findings if f.category == Category.QUOTA_EXCEEDED for line in f.evidence]
    derived += policy_changes(refusals, snapshot, now=now, window=window)
    hpas = [o for o in scope.objects if o.get("kind") == "HorizontalPodAutoscaler"]
    derived += autoscaler_changes(hpas, now=now, window=window)
    budgets = [o for o in scope.objects if o.get("kind") == "PodDisruptionBudget"]
    derived += budget_changes(budgets, now=now, window=window)
    if scope.workload is not None and scope.workload.get("kind") == "CronJob":
        derived += cronjob_change(scope.workload, snapshot, redactor=redactor)
    if scope.workload is not None:
        derived += config_edits(pod_template(scope.workload), snapshot, now=now, window=window)
    return derived


def _context_refs(snapshot: Snapshot, scope: Scope, derived: Sequence[CulpritChange]) -> list[ObjectRef]:
    """Objects around the target whose recorded changes can break it: its nodes and autoscalers,
    the namespace's quotas, limit ranges and disruption budgets."""
    refs = [ObjectRef.of(o) for o in scope.objects if o.get("kind") in ("Node", "HorizontalPodAutoscaler")]
    refs += [ObjectRef.of(o) for kind in POLICY_KINDS for o in snapshot.of(kind)]
    return refs + [c.ref for c in derived]


def _selects_nothing(service: KubeObject, snapshot: Snapshot) -> bool:
    return snapshot.holds_pods_of(name_of(service)) and not selected_pods(service, snapshot)


def _config_refs(workload: KubeObject | None, namespace: str) -> list[ObjectRef]:
    """The ConfigMaps and Secrets the workload uses: their changes can break it too."""
    if workload is None:
        return []
    template = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return [ObjectRef(r.kind, namespace, r.name) for r in references(template)]


def _cause(
    category: Category,
    group: list[Finding],
    *,
    snapshot: Snapshot,
    scope: Scope,
    evidence: Evidence,
    resolution: Resolution,
    redactor: Redactor,
) -> Cause:
    confidence = max(REASON_CONFIDENCE.get((category, f.reason), BASE_CONFIDENCE.get(category, 0.5)) for f in group)
    if category == Category.OOM_KILLED and all(f.severity == Severity.WARNING for f in group):
        confidence = 0.7  # killed before but running now: real, but maybe not today's outage
    blamed = culprit(category, evidence)
    if blamed is not None:
        blamed = redactor.culprit(blamed)  # recorded history is redacted already; this is the last word
        confidence = min(0.99, confidence + _bonus(category, blamed))
    situation = Situation(resolution.ref, scope.workload, snapshot, blamed, evidence.revision, tuple(group))
    return Cause(
        category,
        confidence,
        redactor.text(_title(group, scope)),
        tuple(_evidence(group, snapshot, redactor)),
        blamed,
        suggest(category, situation),
    )


def _title(group: list[Finding], scope: Scope) -> str:
    specific = [
        f for f in group if f.reason in ("MissingKey", "MissingObject", "SelectorMatchesNothing", "CappedByMaxReplicas")
    ]
    messages = [f.message for f in (specific or group)]
    title = max(set(messages), key=messages.count)
    pods = {f.subject for f in group if f.subject.kind == "Pod"}
    if pods and scope.pods:
        title += f" ({len(pods)} of {len(scope.pods)} pods)"
    return title[:1].upper() + title[1:]


def _evidence(group: list[Finding], snapshot: Snapshot, redactor: Redactor) -> list[str]:
    lines: list[str] = []
    for finding in group:
        for line in finding.evidence:
            if line not in lines:
                lines.append(line)
    shown = lines[: MAX_EVIDENCE - 2]
    if len(lines) > len(shown):
        shown.append(f"… and {len(lines) - len(shown)} more like these")
    subjects = {f.subject for f in group} | {f.parent for f in group if f.parent}
    events = [s.line() for s in summarize(snapshot.events_for(subjects))]
    events = [e for e in events if e not in shown][:3]
    return [redactor.text(line) for line in shown + events]


def _rank(causes: list[Cause]) -> list[Cause]:
    roots = [c for c in causes if c.category not in SYMPTOMS and c.confidence >= 0.7]
    if roots:
        causes = [
            Cause(c.category, c.confidence * 0.6, c.title, c.evidence, c.change, c.suggestion)
            if c.category in SYMPTOMS and c.confidence < 0.9
            else c
            for c in causes
        ]
    # The strength of the explanation first; a change attached only breaks ties (a crash with a
    # change does not outrank an OOM kill without one), and a plausible change beats a weak one.
    return sorted(
        causes,
        key=lambda c: (
            -round(c.confidence - _bonus(c.category, c.change), 3),
            -weight(c.category, c.change),
            c.category,
        ),
    )


def _bonus(category: Category, change: CulpritChange | None) -> float:
    """Confidence added by a culprit change: less for one that explains the category only weakly."""
    if change is None:
        return 0.0
    return 0.05 if weight(category, change) >= STRONG else 0.02


def _with_rollout_context(causes: list[Cause], findings: list[Finding], redactor: Redactor) -> list[Cause]:
    """A new revision failing while old pods serve: say so on the top cause, where it is read."""
    if not causes or causes[0].category == Category.ROLLOUT_STUCK:
        return causes
    rollout = [f for f in findings if f.reason == "NewRevisionNotReady"]
    if not rollout:
        return causes
    top = causes[0]
    extra = tuple(line for line in map(redactor.text, rollout[0].evidence) if line not in top.evidence)
    causes[0] = Cause(top.category, top.confidence, top.title, extra + top.evidence, top.change, top.suggestion)
    return causes


def _with_logs(cause: Cause, scope: Scope, read_logs: LogReader, redactor: Redactor) -> Cause:
    """Error lines from the failing container's previous and current logs (redacted, at most 5)."""
    picked = _failing_container(scope.pods)
    if picked is None:
        return cause
    pod, container, restarted = picked
    lines: list[str] = []
    for previous in (True, False) if restarted else (False,):
        try:
            text = read_logs(pod, container, previous)
        except Exception as e:  # logs are a bonus: a pod without logs still gets its diagnosis
            log.info("no logs for %s/%s (previous=%s): %s", pod, container, previous, e)
            continue
        label = "previous" if previous else "current"
        lines += [f"log ({label}) {pod}/{container}: {redactor.text(line.strip())[:300]}" for line in error_lines(text)]
    if not lines:
        return cause
    return Cause(
        cause.category, cause.confidence, cause.title, cause.evidence + tuple(lines[:5]), cause.change, cause.suggestion
    )


def error_lines(text: str, *, limit: int = 3) -> list[str]:
    """The last lines that look like errors; else the last lines at all."""
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.search(line)]
    return (errors or lines)[-limit:]


def _failing_container(pods: Sequence[KubeObject]) -> tuple[str, str, bool] | None:
    for pod in pods:
        status = pod.get("status") or {}
        for cstatus in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            state = cstatus.get("state") or {}
            restarted = bool((cstatus.get("lastState") or {}).get("terminated")) or bool(cstatus.get("restartCount"))
            failing = (
                restarted
                or (state.get("terminated") or {}).get("exitCode") not in (None, 0)
                or ("running" in state and not cstatus.get("ready"))
            )
            if failing and not (state.get("waiting") or {}).get("reason", "").startswith(("ErrImage", "ImagePull")):
                return name_of(pod), str(cstatus.get("name")), restarted
    return None


def _summary(ref: ObjectRef, top: Cause) -> str:
    sentence = f"{ref.kind} {ref.name} is not healthy: {top.title[:1].lower() + top.title[1:]}"
    change = top.change
    if change is not None:
        when = f" at {change.at:%Y-%m-%d %H:%M} UTC" if change.at else ""
        who = f" by {change.actor}" if change.actor else ""
        sentence += f", after {change_phrase(change, target=ref)}{when}{who}"
    return sentence + "."
