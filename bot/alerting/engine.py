"""The alert engine: watched objects in, grouped and routed alerts out through the outbox.

It subscribes to the change tracker's shared watchers (`ChangeRecorder.subscribe`; Pods need
`ALERT_KINDS` added to the watched kinds), keeps a `ClusterIndex`, and in one thread of its own
re-evaluates the workloads that changed (`detection.evaluate`), feeds the `Tracker`, and turns its
decisions into alert rows and outbox rows written in one transaction. A second thread, the
`OutboxSender`, does the posting. Nothing here waits on Slack.

Restart: open alerts are adopted from the store (never posted again); the outbox resumes.

Alertmanager's alerts (bot/alerting/external.py) come in through the durable inbox that any replica
writes (bot/store/inbox.py); the same engine thread takes them in (`_intake`), so an Alertmanager
alert and the bot's own alert about the same workload and cause are one alert row, one message and
one thread, whichever came first.
What an alert quotes from the cluster (what is wrong, evidence, the culprit's values, notes) is
redacted by the `Redactor` it is given before it is stored or rendered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.alerting import detection, external
from bot.alerting.grouping import AlertKey, AlertStep, Fire, Repeat, Resolve, Timing, Tracker
from bot.alerting.index import ClusterIndex
from bot.alerting.routing import route
from bot.alerting.sending import AlertPoster, OutboxSender
from bot.changes.recording import ChangeRecorder
from bot.clock import Clock, utcnow
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.diagnosis.engine import diagnose
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS
from bot.kube.selectors import selector_matches, template_labels
from bot.kube.watching import WatchedKind
from bot.model import Category, Change, ChangeKind, CulpritChange, Diagnosis, KubeObject, ObjectRef, Picture, parse_time
from bot.permissions.policy import Policy
from bot.redaction import DEFAULT, Redactor
from bot.store.alerts import AlertRecord, AlertStore
from bot.store.events import WarningEvent
from bot.store.inbox import AlertInbox, InboxRow, ReceivedAlert
from bot.store.outbox import Outbox
from bot.text import duration_text
from bot.timeline.building import AlertMark, build_timeline, describe_in_words, redacted, title_of

log = logging.getLogger(__name__)

ALERT_KINDS: tuple[WatchedKind, ...] = (WatchedKind("Pod", mode="objects"),)
"""Kinds alerting needs that the change tracker does not record: add them to the shared Watchers."""
SEEDED_KINDS = ("Namespace", "Node", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob")
RETRIES = 50
"""Evaluations of a workload whose owner is not indexed yet, before it counts as gone (~10 s)."""
INTAKE_ROWS = 2000
"""Alertmanager inbox rows taken per pass (a 1,000-alert notification is one pass)."""
INTAKE_WORKLOADS = 10
"""Workloads diagnosed per pass (one namespace fetch each); the rest wait for the next pass."""
INTAKE_PLAIN = 50
"""Groups of alerts naming no workload posted per pass."""
PLAIN_CHANGES = 5
"""Recent changes of the namespace shown on an alert naming no workload."""
NOTABLE_CHANGES = frozenset(
    {ChangeKind.ROLLBACK, ChangeKind.IMAGE, ChangeKind.SCALE, ChangeKind.RESTART, ChangeKind.CONFIG, ChangeKind.SPEC}
)


Rendered = tuple[str, list[dict[str, Any]]]
"""(fallback text, blocks) of one chat message."""


class AlertMessages(Protocol):
    """How alerts look in chat (Block Kit in the bot: `bot.slack.alerts.BlockKitAlerts`)."""

    def alert(self, details: dict[str, Any]) -> Rendered: ...

    def repeat(self, details: dict[str, Any], *, new_subjects: list[str], evidence: list[str]) -> Rendered: ...

    def note(self, text: str) -> Rendered: ...


@dataclass
class AlertSettings:
    cluster_name: str
    default_channel: str | None = None
    timing: Timing = field(default_factory=Timing)
    interval: float = 0.2
    """How often changed workloads are re-evaluated (a small batch window)."""
    full_every: float = 60.0
    """A full pass over every workload now and then, in case an update was missed."""
    label_map: dict[str, str] = field(default_factory=dict)
    """Alertmanager labels naming a workload of a kind, beside the built-in ones (external.named_by)."""
    intake_every: float = 0.5
    """How often the Alertmanager inbox is read."""
    clusters: external.ClusterLabel | None = None
    """Which cluster an Alertmanager alert is about; None: every alert in this inbox is this cluster's."""
    timeline_window: timedelta = timedelta(hours=6)
    """How far back the timeline picture in each alert's thread goes."""


class AlertEngine:
    def __init__(
        self,
        *,
        alerts: AlertStore,
        outbox: Outbox,
        kube: KubeClient,
        recorder: ChangeRecorder,
        poster: AlertPoster,
        messages: AlertMessages,
        analyzers: AnalyzerRegistry,
        settings: AlertSettings,
        policy: Callable[[], Policy | None] = lambda: None,
        redactor: Redactor = DEFAULT,
        clock: Clock = utcnow,
        backoff: tuple[float, float] = (1.0, 10.0),
        inbox: AlertInbox | None = None,
        sender: OutboxSender | None = None,
    ) -> None:
        """`sender` is the outbox's sender when several engines (one per cluster) share one outbox:
        its owner runs it. Without one the engine makes its own, runs it and flushes it."""
        self.clock = clock
        self.inbox = inbox
        self._last_intake = 0.0
        self.redactor = redactor
        self.kube = kube
        self.recorder = recorder
        self.settings = settings
        self.policy = policy
        self.store = alerts
        self.outbox = outbox
        self.messages = messages
        self.analyzers = analyzers
        self.owns_sender = sender is None
        self.sender = sender or OutboxSender(
            self.outbox, poster, default_channel=settings.default_channel, backoff=backoff
        )
        self.index = ClusterIndex()
        self.tracker = Tracker(settings.timing)
        self._dirty: set[ObjectRef] = set()
        self._retries: dict[ObjectRef, int] = {}
        self._dirty_lock = threading.Lock()
        self._changes: queue.SimpleQueue[Change] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unsubscribe: Callable[[], None] | None = None
        self.evaluations = 0

    # -- life cycle -------------------------------------------------------------------------------

    def start(self, stop: threading.Event, *, synced: Callable[[float], bool] | None = None) -> None:
        """Subscribe, seed, adopt open alerts, and start the engine and sender threads."""
        self._unsubscribe = self.recorder.subscribe(
            on_object=self._on_object, on_event=self._on_event, on_change=self._on_change
        )
        self._seed()
        self._adopt()
        name = f"alert-engine-{self.settings.cluster_name}"
        self._threads = [threading.Thread(target=self._run, args=(stop, synced), name=name, daemon=True)]
        if self.owns_sender:
            self._threads.append(
                threading.Thread(target=self.sender.run, args=(stop,), name="alert-sender", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float = 10.0) -> None:
        self._wake.set()
        self.sender.wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def flush(self, timeout: float) -> int:
        """After `join`: send what the outbox can send within `timeout` seconds (shutdown); nothing
        when the sender is shared (its owner flushes it)."""
        return self.sender.flush(timeout) if self.owns_sender else 0

    def prune(self) -> int:
        """Forget Alertmanager's alerts taken in (and their links) past retention: a chore of the
        scheduler's (failures are the caller's to log)."""
        return self.inbox.prune() if self.inbox is not None else 0

    def _seed(self) -> None:
        """List the owner kinds once: the change tracker may resume its watches from a checkpoint
        (no listing), and the engine must still know the workloads that exist."""
        for kind in SEEDED_KINDS:
            try:
                items = self.kube.list(KINDS[kind].path())
            except Exception as e:  # a kind we may not list: detection works with what it has
                log.warning("alerting: could not list %s: %s", kind, e)
                continue
            for item in items:
                obj = {**item, "kind": kind}
                if self.recorder.namespaces.allows_object(kind, obj):
                    self.index.apply(kind, "LISTED", obj)

    def _adopt(self) -> None:
        now = self._now()
        for record in self.store.open_alerts():
            if not record.details.get("detected", True):
                continue  # Alertmanager's alone: its own `resolved` ends it, not detection's silence
            key = AlertKey(record.workload, record.category)
            self.tracker.adopt(key, record.id, since=record.since.timestamp(), now=now)
            self._mark(record.workload)
        log.info("alerting: %d open alert(s) adopted", len(self.tracker.firing()))

    # -- watcher callbacks (watcher threads: quick, no DB) ----------------------------------------

    def _on_object(self, kind: str, event_type: str, obj: KubeObject) -> None:
        for ref in self.index.apply(kind, event_type, obj):
            self._mark(ref)

    def _on_event(self, event: WarningEvent) -> None:
        touched = self.index.add_event(
            involved=event.involved,
            reason=event.reason,
            message=event.message,
            count=event.count,
            last=event.last_at.isoformat(),
        )
        for ref in touched:
            self._mark(ref)

    def _on_change(self, change: Change) -> None:
        if change.kind in NOTABLE_CHANGES:
            self._changes.put(change)
            self._wake.set()

    def _mark(self, ref: ObjectRef) -> None:
        with self._dirty_lock:
            self._dirty.add(ref)
        self._wake.set()

    # -- the engine thread ------------------------------------------------------------------------

    def _run(self, stop: threading.Event, synced: Callable[[float], bool] | None) -> None:
        if synced is not None:
            while not stop.is_set() and not synced(1.0):
                pass
        last_full = time.monotonic()
        while not stop.is_set():
            self._wake.wait(self.settings.interval)
            self._wake.clear()
            if stop.is_set():
                break
            try:
                if time.monotonic() - last_full >= self.settings.full_every:
                    last_full = time.monotonic()
                    for ref in self.index.workloads():
                        self._mark(ref)
                self.step()
            except Exception:  # the engine loop is an edge: log and go on
                log.exception("alerting: evaluation failed")

    def step(self) -> list[AlertStep]:
        """Evaluate what changed, apply time, act on the decisions. Returns them (for tests)."""
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        decisions: list[AlertStep] = []
        retry: set[ObjectRef] = set()
        evaluations: dict[ObjectRef, detection.Evaluation] = {}
        for ref in sorted(dirty):
            evaluation = detection.evaluate(self.index, ref, analyzers=self.analyzers)
            self.evaluations += 1
            if not evaluation.ready:
                tries = self._retries.get(ref, 0) + 1
                if tries < RETRIES:
                    self._retries[ref] = tries
                    retry.add(ref)
                    continue
                # never became known (deleted meanwhile): whatever it had is over
            self._retries.pop(ref, None)
            evaluations[ref] = evaluation
            decisions += self.tracker.observe(ref, evaluation.found, self._now())
        decisions += self.tracker.tick(self._now())
        if retry:
            with self._dirty_lock:
                self._dirty |= retry
        for decision in decisions:
            self._act(decision, evaluations)
        self._notes()
        if self.inbox is not None and time.monotonic() - self._last_intake >= self.settings.intake_every:
            self._last_intake = time.monotonic()
            if self._intake():
                self._last_intake = 0.0  # more waiting: take the next pass at once
        return decisions

    def _now(self) -> float:
        return self.clock().timestamp()

    def _act(self, decision: AlertStep, evaluations: dict[ObjectRef, detection.Evaluation]) -> None:
        workload = decision.key.workload
        evaluation = evaluations.get(workload) or detection.evaluate(self.index, workload, analyzers=self.analyzers)
        if isinstance(decision, Fire):
            self._fire(decision, evaluation)
        elif isinstance(decision, Repeat):
            self._repeat(decision)
        elif isinstance(decision, Resolve):
            self._resolve(decision)
        self.sender.wake.set()

    # -- decisions → alerts and outbox rows -------------------------------------------------------

    def _fire(self, fire: Fire, evaluation: detection.Evaluation) -> None:
        key = fire.key
        silence = self.store.silenced(key.workload, key.category)
        if silence is not None:
            log.info("alerting: %s silenced until %s", key, silence.until.isoformat())
            self.tracker.fired(key, None)
            return
        if fire.reopen is not None:
            self._reopen(fire)
            return
        joined = self.store.open_for(key.workload, key.category)
        if joined is not None:  # Alertmanager told us first: the same message and thread
            self._join(fire, joined, evaluation)
            return
        details = self._details(fire, evaluation)
        where = self._route(key.workload)
        with self.store.database.transaction() as db:
            alert_id = self.store.insert(
                db,
                workload=key.workload,
                category=key.category,
                title=details["what"],
                since=datetime.fromtimestamp(fire.since, UTC),
                channel=where.channel,
                team=where.team,
                route_reason=where.reason,
                details=details,
            )
            details["id"] = alert_id
            self.store.set_details(db, alert_id, details)
            if where.channel:
                text, blocks = self.messages.alert(details)
                self.outbox.enqueue(db, alert_id=alert_id, op="post", channel=where.channel, text=text, blocks=blocks)
                picture = self._timeline_picture(key.workload, evaluation, details)
                if picture is not None:  # the timeline, into the alert's thread once the alert is posted
                    self.outbox.enqueue(
                        db,
                        alert_id=alert_id,
                        op="picture",
                        channel=where.channel,
                        text=picture.alt_text,
                        blocks=[],
                        payload={
                            "kind": picture.kind,
                            "data": picture.data,
                            "filename": picture.filename,
                            "title": picture.title,
                        },
                    )
        if where.channel:
            log.info("alerting: alert %d %s → %s (%s)", alert_id, key, where.channel, where.reason)
        else:
            log.error("alerting: alert %d %s is UNDELIVERABLE: %s (stored, not posted)", alert_id, key, where.reason)
        self.tracker.fired(key, alert_id)

    def _reopen(self, fire: Fire) -> None:
        assert fire.reopen is not None
        record = self.store.get(fire.reopen)
        if record is None:
            return
        details = dict(record.details)
        details.update(state="firing", resolved_at=None)
        again = datetime.fromtimestamp(fire.since, UTC)
        details["notes"] = [*details.get("notes", []), f"Firing again since {again:%H:%M:%S} UTC"]
        self._store_update(
            record.id,
            record.channel,
            details,
            state="firing",
            reply=self.messages.note("Firing again: the same cause came back."),
        )
        self.tracker.fired(fire.key, record.id)

    def _join(self, fire: Fire, record: AlertRecord, evaluation: detection.Evaluation) -> None:
        details = {**self._details(fire, evaluation), **_kept(record.details), "id": record.id, "detected": True}
        note = self.redactor.text(f"k8sbot sees it too: {details['what']}")
        self._store_update(record.id, record.channel, details, state="firing", reply=self.messages.note(note))
        self.tracker.fired(fire.key, record.id)
        log.info("alerting: %s joins alert %d (from Alertmanager)", fire.key, record.id)

    def _repeat(self, repeat: Repeat) -> None:
        record = self.store.get(repeat.alert_id)
        if record is None or not record.channel:
            return
        subjects = [s.name for s in repeat.new_subjects]
        evidence = [self.redactor.text(line) for f in repeat.findings for line in f.evidence]
        details = dict(record.details)
        details["affected"] = len({f.subject for f in repeat.findings})
        self._store_update(
            record.id,
            record.channel,
            details,
            state="firing",
            reply=self.messages.repeat(details, new_subjects=subjects, evidence=evidence),
        )

    def _resolve(self, resolve: Resolve) -> None:
        if resolve.alert_id is None:
            return
        record = self.store.get(resolve.alert_id)
        if record is None:
            return
        at = datetime.fromtimestamp(resolve.at, UTC)
        still = external.firing(record.details.get("external") or {})
        if still and record.state == "firing":
            details = {**record.details, "detected": False}
            note = (
                f"k8sbot no longer sees {resolve.key.category}; "
                f"Alertmanager still reports {len(still)} alert(s) firing."
            )
            self._store_update(record.id, record.channel, details, state="firing", reply=self.messages.note(note))
            return
        duration = duration_text(resolve.at - record.since.timestamp())
        details = dict(record.details)
        details.update(state="resolved", resolved_at=at.isoformat(), duration=duration)
        self._store_update(
            record.id,
            record.channel,
            details,
            state="resolved",
            at=at,
            reply=self.messages.note(f"Resolved: healthy again after {duration}."),
        )
        log.info("alerting: alert %d %s resolved after %s", record.id, resolve.key, duration)

    def _store_update(
        self,
        alert_id: int,
        channel: str | None,
        details: dict[str, Any],
        *,
        state: str,
        reply: Rendered | None = None,
        at: datetime | None = None,
        done: list[int] | None = None,
        links: list[str] | None = None,
    ) -> None:
        """Write the alert's new state and its messages in one transaction (with the Alertmanager
        inbox rows `done` and the fingerprints `links` it took in, when there are)."""
        with self.store.database.transaction() as db:
            if done:
                self.inbox_processed(db, done)
            for fingerprint in links or ():
                self._link(db, fingerprint, alert_id)
            self.store.set_details(db, alert_id, details)
            self.store.set_state(db, alert_id, state=state if channel else "undeliverable", at=at)
            if channel:
                text, blocks = self.messages.alert(details)
                self.outbox.enqueue(db, alert_id=alert_id, op="update", channel=channel, text=text, blocks=blocks)
                if reply is not None:
                    self.outbox.enqueue(
                        db, alert_id=alert_id, op="reply", channel=channel, text=reply[0], blocks=reply[1]
                    )

    def _notes(self) -> None:
        """Changes to a workload with an open alert (a rollback, a new image) go onto the alert."""
        while True:
            try:
                change = self._changes.get_nowait()
            except queue.Empty:
                return
            for _, alert_id in self.tracker.alert_of(change.ref):
                record = self.store.get(alert_id)
                if record is None:
                    continue
                who = f" by {change.actor}" if change.actor else ""
                note = self.redactor.text(f"{change.summary}{who} at {change.at:%H:%M:%S} UTC")
                details = dict(record.details)
                details["notes"] = [*details.get("notes", []), note]
                self._store_update(record.id, record.channel, details, state="firing", reply=self.messages.note(note))

    # -- building the alert ------------------------------------------------------------------------

    def _route(self, workload: ObjectRef) -> Any:
        obj = self.index.get(workload.kind, workload.namespace, workload.name) or {}
        namespace = self.index.get("Namespace", None, workload.namespace or "") if workload.namespace else None
        try:
            policy = self.policy()
        except Exception:  # an unreadable policy must not lose the alert: the default channel still works
            log.exception("alerting: permissions policy unavailable for routing")
            policy = None
        return route(
            workload.namespace,
            policy=policy,
            default_channel=self.settings.default_channel,
            workload_annotations=(obj.get("metadata") or {}).get("annotations"),
            namespace_annotations=((namespace or {}).get("metadata") or {}).get("annotations"),
            cluster=self.settings.cluster_name,
        )

    def _details(self, fire: Fire, evaluation: detection.Evaluation) -> dict[str, Any]:
        key = fire.key
        findings = fire.findings
        history = self._history
        ctx = detection.context(evaluation, key.category, history=history, now=self.clock(), redactor=self.redactor)
        evidence = list(dict.fromkeys(self.redactor.text(line) for f in findings for line in f.evidence))
        affected = len({f.subject for f in findings if f.subject.kind == "Pod"})
        return {
            "workload": key.workload.to_json(),
            "category": str(key.category),
            "what": self.redactor.text(findings[0].message) if findings else str(key.category),
            "cluster": self.settings.cluster_name,
            "since": datetime.fromtimestamp(fire.since, UTC).isoformat(),
            "state": "firing",
            "evidence": evidence[:10],
            "affected": affected,
            "pods_total": evaluation.pods_total,
            "culprit": ctx.culprit.to_json() if ctx.culprit else None,
            "rollback_to": ctx.rollback_to,
            "revision": ctx.current_revision,
            "pod": ctx.failing_pod,
            "notes": [],
            "detected": True,
        }

    def _timeline_picture(
        self, workload: ObjectRef, evaluation: detection.Evaluation, details: dict[str, Any]
    ) -> Picture | None:
        """The workload's timeline over the last `timeline_window` up to now (what the index holds of
        its pods and Warning events, its recorded changes, its alerts), the culprit highlighted."""
        try:
            end = self.clock()
            start = end - self.settings.timeline_window
            refs = [workload, *(ObjectRef.of(o) for o in evaluation.objects.get("Job", ()))]
            alerts = [
                AlertMark(r.title, r.fired_at, r.resolved_at, str(r.category))
                for r in self.store.since(start, namespace=workload.namespace)
                if r.workload == workload
            ]
            timeline = build_timeline(
                cluster=self.settings.cluster_name,
                target=workload,
                start=start,
                end=end,
                changes=self.recorder.changes.changes_for(refs, start),
                pods=evaluation.objects.get("Pod", ()),
                events=evaluation.objects.get("Event", ()),
                alerts=[*alerts, AlertMark(str(details["what"]), end)],
                culprit=_culprit(details.get("culprit")),
            )
        except Exception:  # the picture is an extra: the alert goes out without it
            log.exception("alerting: the timeline of %s could not be built", workload)
            return None
        timeline = redacted(timeline, self.redactor.text)
        return Picture(
            kind="timeline",
            data=timeline.to_json(),
            alt_text=describe_in_words(timeline),
            filename=f"timeline-{workload.namespace or 'cluster'}-{workload.name}",
            title=title_of(timeline),
        )

    def _history(self, ref: ObjectRef, since: datetime) -> Sequence[Change]:
        """The workload's changes, and the external change events about its namespace."""
        refs = [ref, ObjectRef("Namespace", None, ref.namespace)] if ref.namespace else [ref]
        return self.recorder.changes.changes_for(refs, since)

    # -- Alertmanager's alerts (bot/alerting/external.py) -----------------------------------------

    def _intake(self) -> bool:
        """One pass over the inbox: firing alerts to their workload's alert (or a plain one), then
        the resolved ones. Each alert written with its inbox rows marked processed, in one
        transaction. Returns True when rows were left for the next pass (the bounds)."""
        assert self.inbox is not None
        rows = self.inbox.pending(limit=INTAKE_ROWS)
        if not rows:
            return False
        by_workload: dict[ObjectRef, list[InboxRow]] = {}
        plain: dict[tuple[str, str], list[InboxRow]] = {}
        elsewhere: dict[tuple[str, str], list[InboxRow]] = {}
        resolved: list[InboxRow] = []
        resolved_to: dict[tuple[str, str, str], ObjectRef | None] = {}
        taken = 0
        for row in rows:
            alert = row.alert
            if alert.status == "resolved":
                resolved.append(row)
                taken += 1
                continue
            if not self._ours(alert):  # its cluster is not named: posted plainly, never matched to a workload
                group = (external.namespace_of(alert.labels) or "", external.alertname(alert))
                if group not in elsewhere and len(elsewhere) >= INTAKE_PLAIN:
                    break
                elsewhere.setdefault(group, []).append(row)
                taken += 1
                continue
            named = external.named_by(alert.labels, self.settings.label_map)
            key = (named.kind, named.namespace, named.name) if named else ("", "", "")
            if key not in resolved_to:
                resolved_to[key] = self._workload_named(named) if named else None
            workload = resolved_to[key]
            if workload is not None:
                if workload not in by_workload and len(by_workload) >= INTAKE_WORKLOADS:
                    break
                by_workload.setdefault(workload, []).append(row)
            else:
                group = (external.namespace_of(alert.labels) or "", external.alertname(alert))
                if group not in plain and len(plain) >= INTAKE_PLAIN:
                    break
                plain.setdefault(group, []).append(row)
            taken += 1
        for workload, group_rows in by_workload.items():
            self._external_workload(workload, group_rows)
        for (namespace, name), group_rows in plain.items():
            self._external_plain(namespace, name, group_rows)
        for (namespace, name), group_rows in elsewhere.items():
            self._external_plain(namespace, name, group_rows, unknown_cluster=True)
        self._external_resolved(resolved)
        self.sender.wake.set()
        return taken < len(rows) or len(rows) == INTAKE_ROWS

    def _ours(self, alert: ReceivedAlert) -> bool:
        """Whether the alert is about this engine's cluster (its cluster label says so, or there is one)."""
        clusters = self.settings.clusters
        return clusters is None or clusters.cluster_of(alert.labels) == self.settings.cluster_name

    def _workload_named(self, named: external.Named) -> ObjectRef | None:
        """The workload owning (or behind) what the labels name, from the index; None if unknown."""
        ns, name = named.namespace, named.name
        if named.kind == "Service":
            return self._behind_service(ns, name)
        obj = self.index.get(named.kind, ns, name)
        if obj is not None:
            return self.index.workload_of(named.kind, obj)
        if named.kind == "Pod":  # gone already (replaced): its owner from the name, as controllers name pods
            owner = name.rsplit("-", 1)[0]
            for kind in ("ReplicaSet", "StatefulSet", "DaemonSet", "Job"):
                found = self.index.get(kind, ns, owner)
                if found is not None:
                    return self.index.workload_of(kind, found)
        return None

    def _behind_service(self, namespace: str, name: str) -> ObjectRef | None:
        try:
            service = self.kube.get(KINDS["Service"].path(namespace, name))
        except Exception as e:  # not there, or not readable: the alert is posted plainly
            log.info("alerting: Service %s/%s of an Alertmanager alert: %s", namespace, name, e)
            return None
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            return None
        for kind in ("Deployment", "StatefulSet", "DaemonSet"):
            for obj in self.index.in_namespace(kind, namespace):
                if selector_matches(selector, template_labels(obj)):
                    return ObjectRef.of(obj, kind=kind)
        return None

    def _diagnose(self, workload: ObjectRef) -> Diagnosis | None:
        """`why` of the workload, as the bot's own client sees it (None when it cannot answer)."""
        try:
            return diagnose(
                self.kube,
                workload.namespace or "",
                f"{workload.kind.lower()}/{workload.name}",
                analyzers=self.analyzers,
                history=self.recorder.changes,
                now=self.clock(),
                redactor=self.redactor,
            )
        except Exception as e:  # the alert still goes out, with what detection knows
            log.warning("alerting: why %s for an Alertmanager alert failed: %s", workload, e)
            return None

    def _external_workload(self, workload: ObjectRef, rows: list[InboxRow]) -> None:
        alerts = [r.alert for r in rows]
        ids = [r.id for r in rows]
        linked = [self.store.get(a) for a in {self.inbox.linked(x.fingerprint) for x in alerts if self.inbox} if a]
        open_linked = next((r for r in linked if r is not None and r.state == "firing"), None)
        evaluation = detection.evaluate(self.index, workload, analyzers=self.analyzers)
        diagnosis = self._diagnose(workload)
        top = diagnosis.causes[0] if diagnosis and not diagnosis.healthy and diagnosis.causes else None
        if evaluation.found:
            category = top.category if top and top.category in evaluation.found else sorted(evaluation.found)[0]
        elif top is not None and top.category in detection.ALERTING:
            category = top.category
        else:
            category = Category.EXTERNAL
        record = open_linked or self.store.open_for(workload, category)
        if record is None and category is Category.EXTERNAL:
            record = next(iter(self.store.open_all_for(workload)), None)
        if record is not None:
            self._external_into(record, alerts, ids)
            return
        silence = self.store.silenced(workload, category)
        if silence is not None:
            log.info("alerting: Alertmanager alert on %s silenced until %s", workload, silence.until.isoformat())
            with self.store.database.transaction() as db:
                self.inbox_processed(db, ids)
            return
        ctx = detection.context(evaluation, category, history=self._history, now=self.clock(), redactor=self.redactor)
        culprit = top.change if top is not None and top.change is not None else ctx.culprit
        known, _ = external.merge({}, alerts, self.redactor)
        since = min(a.starts_at for a in alerts)
        details: dict[str, Any] = {
            "workload": workload.to_json(),
            "category": str(category),
            "what": external.title_of(alerts, self.redactor),
            "cluster": self.settings.cluster_name,
            "since": since.isoformat(),
            "state": "firing",
            "evidence": list(top.evidence)[:10] if top else [],
            "affected": len({f.subject for f in evaluation.found.get(category, ()) if f.subject.kind == "Pod"}),
            "pods_total": evaluation.pods_total,
            "culprit": culprit.to_json() if culprit else None,
            "rollback_to": ctx.rollback_to,
            "revision": ctx.current_revision,
            "pod": ctx.failing_pod,
            "notes": [],
            "detected": False,
            "source": "alertmanager",
            "why": diagnosis.summary if diagnosis else None,
            "suggestion": top.suggestion.text if top and top.suggestion else None,
            "external": known,
        }
        self._external_insert(workload, category=category, since=since, details=details, alerts=alerts, ids=ids)

    def _external_plain(
        self, namespace: str, name: str, rows: list[InboxRow], *, unknown_cluster: bool = False
    ) -> None:
        """Alerts naming no workload, one message per namespace and `alertname`. `unknown_cluster`: alerts
        whose cluster label names no configured cluster (a message of their own, naming no cluster and
        quoting no cluster's changes)."""
        alerts = [r.alert for r in rows]
        ids = [r.id for r in rows]
        kind = external.UNKNOWN_CLUSTER_KIND if unknown_cluster else external.PLAIN_KIND
        ref = ObjectRef(kind, namespace or None, name[:253])
        record = self.store.open_for(ref, Category.EXTERNAL)
        if record is not None:
            self._external_into(record, alerts, ids)
            return
        changes: list[str] = []
        if namespace and not unknown_cluster:
            since = self.clock() - timedelta(hours=24)
            for change in self.recorder.changes.query(since=since, namespace=namespace, limit=PLAIN_CHANGES):
                who = f" by {change.actor}" if change.actor else ""
                changes.append(self.redactor.text(f"{change.at:%H:%M:%S} {change.ref}: {change.summary}{who}"))
        known, _ = external.merge({}, alerts, self.redactor)
        since_at = min(a.starts_at for a in alerts)
        details: dict[str, Any] = {
            "plain": True,
            "workload": ref.to_json(),
            "category": str(Category.EXTERNAL),
            "what": external.title_of(alerts, self.redactor),
            "cluster": self.settings.cluster_name,
            "since": since_at.isoformat(),
            "state": "firing",
            "notes": [],
            "detected": False,
            "source": "alertmanager",
            "changes": changes,
            "external": known,
        }
        if unknown_cluster:
            clusters = self.settings.clusters
            details.update(cluster=None, cluster_unknown=clusters.unknown() if clusters else "unknown")
        self._external_insert(ref, category=Category.EXTERNAL, since=since_at, details=details, alerts=alerts, ids=ids)

    def _external_insert(
        self,
        ref: ObjectRef,
        *,
        category: Category,
        since: datetime,
        details: dict[str, Any],
        alerts: list[ReceivedAlert],
        ids: list[int],
    ) -> None:
        plain = ref.kind in (external.PLAIN_KIND, external.UNKNOWN_CLUSTER_KIND)
        where = self._route_plain() if plain else self._route(ref)
        with self.store.database.transaction() as db:
            alert_id = self.store.insert(
                db,
                workload=ref,
                category=category,
                title=details["what"],
                since=since,
                channel=where.channel,
                team=where.team,
                route_reason=where.reason,
                details=details,
            )
            details["id"] = alert_id
            self.store.set_details(db, alert_id, details)
            if where.channel:
                text, blocks = self.messages.alert(details)
                self.outbox.enqueue(db, alert_id=alert_id, op="post", channel=where.channel, text=text, blocks=blocks)
            for alert in alerts:
                self._link(db, alert.fingerprint, alert_id)
            self.inbox_processed(db, ids)
        log.info("alerting: Alertmanager alert %d on %s → %s (%s)", alert_id, ref, where.channel, where.reason)

    def _external_into(self, record: AlertRecord, alerts: list[ReceivedAlert], ids: list[int]) -> None:
        """More Alertmanager alerts (or the same ones again) onto an open alert: its thread."""
        known, news = external.merge(record.details.get("external") or {}, alerts, self.redactor)
        fingerprints = [a.fingerprint for a in alerts]
        if not news:  # a repeat of what the message already says
            with self.store.database.transaction() as db:
                for fingerprint in fingerprints:
                    self._link(db, fingerprint, record.id)
                self.inbox_processed(db, ids)
            return
        details = {**record.details, "external": known}
        note = f"Alertmanager: {len(news)} more alert(s) firing: {external.names(news)}"
        self._store_update(
            record.id,
            record.channel,
            details,
            state="firing",
            reply=self.messages.note(note),
            done=ids,
            links=fingerprints,
        )

    def _external_resolved(self, rows: list[InboxRow]) -> None:
        by_alert: dict[int, list[InboxRow]] = {}
        orphans: list[int] = []
        for row in rows:
            alert_id = self.inbox.linked(row.alert.fingerprint) if self.inbox else None
            if alert_id is None:
                orphans.append(row.id)  # never fired here (or long forgotten): nothing to resolve
            else:
                by_alert.setdefault(alert_id, []).append(row)
        if orphans:
            with self.store.database.transaction() as db:
                self.inbox_processed(db, orphans)
        for alert_id, group in by_alert.items():
            self._external_resolve(alert_id, group)

    def _external_resolve(self, alert_id: int, rows: list[InboxRow]) -> None:
        ids = [r.id for r in rows]
        record = self.store.get(alert_id)
        known = dict((record.details.get("external") or {}) if record else {})
        done: list[str] = []
        for row in rows:
            before = known.get(row.alert.fingerprint)
            if before is not None and before.get("status") == "firing":
                known[row.alert.fingerprint] = {**before, "status": "resolved"}
                done.append(str(before.get("name")))
        if record is None or not done or record.state != "firing":
            with self.store.database.transaction() as db:
                self.inbox_processed(db, ids)
            return
        details = {**record.details, "external": known}
        detected = any(a == record.id for a in self.tracker.firing().values())
        at = max((r.alert.ends_at or r.received_at) for r in rows)
        if external.firing(known) or detected:
            state, reply = "firing", f"Alertmanager: {external.names(done)} resolved."
            resolved_at = None
        else:
            duration = duration_text(at.timestamp() - record.since.timestamp())
            details.update(state="resolved", resolved_at=at.isoformat(), duration=duration)
            state, reply, resolved_at = "resolved", f"Resolved: Alertmanager reports it over after {duration}.", at
        self._store_update(
            record.id, record.channel, details, state=state, reply=self.messages.note(reply), at=resolved_at, done=ids
        )

    def _link(self, db: Any, fingerprint: str, alert_id: int) -> None:
        assert self.inbox is not None
        self.inbox.link(db, fingerprint, alert_id)

    def inbox_processed(self, db: Any, ids: list[int]) -> None:
        assert self.inbox is not None
        self.inbox.processed(db, ids)

    def _route_plain(self) -> Any:
        return route(None, policy=None, default_channel=self.settings.default_channel)


def _kept(details: dict[str, Any]) -> dict[str, Any]:
    """What an alert row from Alertmanager keeps when the bot's own detection joins it."""
    keep = ("external", "source", "why", "suggestion", "notes", "since")
    return {k: details[k] for k in keep if k in details}


def _culprit(data: Any) -> CulpritChange | None:
    """The culprit of an alert's details (its JSON form) as the timeline marks it."""
    if not isinstance(data, dict) or not isinstance(data.get("ref"), dict):
        return None
    ref = data["ref"]
    return CulpritChange(
        ref=ObjectRef(str(ref.get("kind")), ref.get("namespace"), str(ref.get("name"))),
        at=parse_time(data.get("at")),
        actor=data.get("actor"),
        revision=data.get("revision"),
        path=str(data.get("path")),
        before=data.get("before"),
        after=data.get("after"),
    )
