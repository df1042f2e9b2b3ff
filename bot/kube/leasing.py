"""One leader among replicas: a `coordination.k8s.io/v1` Lease, acquired and renewed as client-go does.

`LeaseLock.try_acquire_or_renew` is one step of client-go's leader election: read the Lease; create it
when it does not exist; take it when it is ours or its holder has not renewed it within
`leaseDurationSeconds`; otherwise leave it. Every write carries the `resourceVersion` that was read, so
two candidates racing for an expired Lease cannot both win: the API server answers the slower one 409
(optimistic concurrency), and that one stays a follower. Times are the Lease's own `renewTime`
(MicroTime, UTC) compared with this process's clock, as client-go compares them with the time it
observed the record; clocks of replicas in one cluster are assumed to agree within the lease duration.

Nothing here releases the Lease on a crash: a killed leader's Lease expires after `leaseDurationSeconds`
and another replica takes it then. `release` (on a clean stop) hands it over at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import Conflict, NotFound
from bot.kube.client import KubeClient
from bot.model import KubeObject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults: a Lease lasts 15 s, the leader gives up after failing to renew for 10 s,
    and every candidate retries every 2 s."""

    duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _micro_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class LeaseLock:
    """The Lease `name` in `namespace`, held by `identity` when this replica leads."""

    def __init__(self, kube: KubeClient, *, namespace: str, name: str, identity: str, timing: LeaseTiming) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing

    @property
    def _collection(self) -> str:
        return f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"

    @property
    def _path(self) -> str:
        return f"{self._collection}/{self.name}"

    def _spec(self, now: datetime, *, acquired: datetime, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.timing.duration)),
            "acquireTime": _micro_time(acquired),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }

    def read(self) -> KubeObject | None:
        try:
            return self.kube.request("GET", self._path, timeout=self.timing.retry_period + 3)
        except NotFound:
            return None

    def holder(self) -> str | None:
        lease = self.read()
        spec = (lease or {}).get("spec") or {}
        holder = spec.get("holderIdentity")
        return holder if isinstance(holder, str) and holder else None

    def try_acquire_or_renew(self, now: datetime | None = None) -> bool:
        """One attempt; True when this replica holds the Lease afterwards. API errors other than a lost
        race (409) or a Lease created meanwhile propagate: the caller decides how long to keep trying."""
        now = now or datetime.now(UTC)
        lease = self.read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, acquired=now, transitions=0),
            }
            try:
                self.kube.request("POST", self._collection, body=body, timeout=self.timing.retry_period + 3)
            except Conflict:  # 409 AlreadyExists: another replica created it first
                return False
            log.info("leader election: created Lease %s/%s as %s", self.namespace, self.name, self.identity)
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        ours = holder == self.identity
        renewed = _parse_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        seconds = float(duration) if isinstance(duration, int | float) else self.timing.duration
        expired = not holder or renewed is None or renewed + timedelta(seconds=seconds) < now
        if not ours and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        acquired = _parse_time(spec.get("acquireTime")) if ours else None
        metadata = lease.get("metadata") or {}
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "spec": self._spec(now, acquired=acquired or now, transitions=transitions if ours else transitions + 1),
        }
        try:
            self.kube.request("PUT", self._path, body=body, timeout=self.timing.retry_period + 3)
        except Conflict:  # someone else wrote it since we read it
            return False
        if not ours:
            log.info(
                "leader election: took Lease %s/%s from %r as %s", self.namespace, self.name, holder, self.identity
            )
        return True

    def release(self) -> None:
        """On a clean stop: clear the holder so a follower takes over at once, not after the duration."""
        lease = self.read()
        spec = (lease or {}).get("spec") or {}
        if lease is None or spec.get("holderIdentity") != self.identity:
            return
        metadata = lease.get("metadata") or {}
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "spec": {**spec, "holderIdentity": None, "leaseDurationSeconds": 1},
        }
        try:
            self.kube.request("PUT", self._path, body=body, timeout=self.timing.retry_period + 3)
        except Conflict:
            return
