"""Noise control: one alert per workload and cause, a settle delay, repeats, resolution. Pure.

`Tracker` is a state machine over `AlertKey`s (workload + category) driven by what detection sees
(`observe`) and by time (`tick`); it returns `AlertStep`s and does no I/O, so it is tested with a
controlled clock:

* a cause seen for the first time is *pending*; it fires only if it is present `settle` seconds
  later (a pod that fails once and recovers does not page). A pending cause that stays absent for
  `settle` seconds is forgotten, so the next failure starts a new settle period.
* a firing cause that gains affected objects (more pods failing) gives a `Repeat` — at most one per
  `repeat_interval` — which the engine posts into the alert's thread.
* a firing cause absent for `resolve_after` seconds gives `Resolve` (the alert is edited to resolved).
* a cause that fires again within `reopen_window` of being resolved reopens the same alert (`Fire`
  with `reopen`) instead of paging with a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.model import Category, Finding, ObjectRef


@dataclass(frozen=True, slots=True, order=True)
class AlertKey:
    workload: ObjectRef
    category: Category

    def __str__(self) -> str:
        return f"{self.workload}:{self.category}"


@dataclass(frozen=True, slots=True)
class Fire:
    key: AlertKey
    findings: tuple[Finding, ...]
    since: float
    reopen: int | None = None
    """The alert id to reopen, when the same cause was resolved a short while ago."""


@dataclass(frozen=True, slots=True)
class Repeat:
    key: AlertKey
    alert_id: int
    findings: tuple[Finding, ...]
    new_subjects: tuple[ObjectRef, ...]


@dataclass(frozen=True, slots=True)
class Resolve:
    key: AlertKey
    alert_id: int | None
    since: float
    at: float


AlertStep = Fire | Repeat | Resolve
"""What the tracker tells the engine to do: post an alert, reply to it, or resolve it."""


@dataclass
class _Pending:
    first_seen: float
    last_seen: float
    findings: tuple[Finding, ...]
    present: bool = True


@dataclass
class _Firing:
    alert_id: int | None  # None: silenced (tracked so it does not fire again every tick)
    since: float
    findings: tuple[Finding, ...]
    reported: set[ObjectRef] = field(default_factory=set)
    last_repeat: float = 0.0
    absent_since: float | None = None
    adopted: bool = False  # restored after a restart: what it reported before is not known


@dataclass(frozen=True, slots=True)
class Timing:
    settle: float = 30.0
    resolve_after: float = 60.0
    repeat_interval: float = 600.0
    reopen_window: float = 3600.0


class Tracker:
    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self._pending: dict[AlertKey, _Pending] = {}
        self._firing: dict[AlertKey, _Firing] = {}
        self._resolved: dict[AlertKey, tuple[int, float]] = {}

    # -- inputs -----------------------------------------------------------------------------------

    def observe(
        self, workload: ObjectRef, found: Mapping[Category, tuple[Finding, ...]], now: float
    ) -> list[AlertStep]:
        """What detection sees for `workload` now: every category present (absent ones are healthy)."""
        for category, findings in found.items():
            key = AlertKey(workload, category)
            firing = self._firing.get(key)
            if firing is not None:
                firing.findings = findings
                firing.absent_since = None
                if firing.adopted:  # the thread already told its story before the restart
                    firing.reported, firing.adopted = {f.subject for f in findings}, False
                continue
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = _Pending(now, now, findings)
            else:
                pending.last_seen, pending.findings, pending.present = now, findings, True
        for key in self._keys_of(workload):
            if key.category not in found:
                self._absent(key, now)
        return self.tick(now)

    def forget(self, workload: ObjectRef, now: float) -> list[AlertStep]:
        """The workload is gone (deleted): everything about it is absent."""
        return self.observe(workload, {}, now)

    def tick(self, now: float) -> list[AlertStep]:
        decisions: list[AlertStep] = []
        for key, pending in sorted(self._pending.items()):
            if pending.present and now - pending.first_seen >= self.timing.settle:
                decisions.append(self._fire(key, pending, now))
            elif not pending.present and now - pending.last_seen >= self.timing.settle:
                del self._pending[key]  # it went away and stayed away: a blip, not an alert
        for key, firing in sorted(self._firing.items()):
            if firing.absent_since is not None and now - firing.absent_since >= self.timing.resolve_after:
                del self._firing[key]
                if firing.alert_id is not None:
                    self._resolved[key] = (firing.alert_id, now)
                decisions.append(Resolve(key, firing.alert_id, firing.since, now))
            elif firing.absent_since is None and firing.alert_id is not None:
                repeat = self._repeat(key, firing, now)
                if repeat is not None:
                    decisions.append(repeat)
        self._resolved = {k: v for k, v in self._resolved.items() if now - v[1] < self.timing.reopen_window}
        return decisions

    # -- the engine tells the tracker what it did ------------------------------------------------

    def fired(self, key: AlertKey, alert_id: int | None) -> None:
        """Record the alert a `Fire` became (None: silenced, so nothing was posted)."""
        firing = self._firing.get(key)
        if firing is not None:
            firing.alert_id = alert_id

    def adopt(self, key: AlertKey, alert_id: int, *, since: float, now: float) -> None:
        """After a restart: an alert stored as firing. It resolves unless detection sees it again."""
        self._firing[key] = _Firing(alert_id, since, (), set(), now, absent_since=now, adopted=True)

    # -- views ------------------------------------------------------------------------------------

    def firing(self) -> dict[AlertKey, int | None]:
        return {k: f.alert_id for k, f in self._firing.items()}

    def pending(self) -> list[AlertKey]:
        return sorted(self._pending)

    def alert_of(self, workload: ObjectRef) -> list[tuple[AlertKey, int]]:
        return [(k, f.alert_id) for k, f in self._firing.items() if k.workload == workload and f.alert_id]

    # -- internals --------------------------------------------------------------------------------

    def _keys_of(self, workload: ObjectRef) -> list[AlertKey]:
        return [k for k in (*self._pending, *self._firing) if k.workload == workload]

    def _absent(self, key: AlertKey, now: float) -> None:
        firing = self._firing.get(key)
        if firing is not None:
            if firing.absent_since is None:
                firing.absent_since = now
            return
        pending = self._pending.get(key)
        if pending is not None:
            pending.present = False

    def _fire(self, key: AlertKey, pending: _Pending, now: float) -> Fire:
        del self._pending[key]
        reopen = self._resolved.pop(key, None)
        subjects = {f.subject for f in pending.findings}
        self._firing[key] = _Firing(reopen[0] if reopen else None, pending.first_seen, pending.findings, subjects, now)
        return Fire(key, pending.findings, pending.first_seen, reopen[0] if reopen else None)

    def _repeat(self, key: AlertKey, firing: _Firing, now: float) -> Repeat | None:
        subjects = {f.subject for f in firing.findings}
        new = subjects - firing.reported
        if not new or now - firing.last_repeat < self.timing.repeat_interval:
            return None
        firing.reported |= new
        firing.last_repeat = now
        assert firing.alert_id is not None
        return Repeat(key, firing.alert_id, firing.findings, tuple(sorted(new)))
