"""Alertmanager's alerts in the alert engine: which workload an alert names, and what its message says.

Pure helpers; the engine (bot/alerting/engine.py, `AlertEngine._intake`) does the reading and writing.

Which workload: the alert's `namespace` label plus the first of `deployment`, `statefulset`,
`daemonset`, `job_name`, `pod`, then the configured `alertmanager_label_map` labels, then `service`
(kube-state-metrics and the common rules emit these). Values that are not valid Kubernetes names
name nothing (they never reach an API path). A pod, a Job or a Service is then resolved to the
workload that owns or backs it by the engine, from what it watches.

One message per workload and cause: an Alertmanager alert about a workload becomes the alert of that
workload's cause (the category detection or `why` finds, `external` when the cluster shows none), so
it shares the message and the thread of the bot's own alert about the same workload and cause.
Alerts naming no workload are grouped by namespace and `alertname` and posted plainly.

Which cluster (`ClusterLabel`): the value of one label (`alertmanager_cluster_label`, by default
`cluster`, the label Prometheus `external_labels` and kube-prometheus conventionally carry) naming a
configured cluster; without the label, the only cluster of a single-cluster bot. Anything else (no
label with several clusters, or a value naming no configured cluster) is never guessed: the receiver
stores the alert with the first (home) cluster's, and that cluster's engine posts it plainly, saying
the cluster is unknown, without matching it to any workload.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.redaction import Redactor
from bot.store.inbox import ReceivedAlert

WORKLOAD_LABELS: tuple[tuple[str, str], ...] = (
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("job_name", "Job"),
    ("pod", "Pod"),
)
SERVICE_LABEL = "service"
NAMESPACE_LABEL = "namespace"
PLAIN_KIND = "AlertmanagerAlert"
"""The `kind` of a stored alert that names no workload (its name is the `alertname`)."""
SUMMARY_CHARS = 300
LABELS_CHARS = 200
PLAIN_KEYS = frozenset({"alertname", "severity", "namespace"})
"""Labels a message already shows; the others tell its alerts apart (`pod=checkout-1`)."""
MAX_EXTERNAL = 200
"""Alertmanager alerts kept on one message (the rest are counted under `MORE`)."""
MORE = "more"
"""The key of the count of alerts beyond `MAX_EXTERNAL` (not a fingerprint: those are hexadecimal)."""

UNKNOWN_CLUSTER_KIND = "AlertmanagerAlertOfUnknownCluster"
"""The `kind` of a stored alert whose cluster the labels do not name (its name is the `alertname`)."""

_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Named:
    """What an alert's labels name: a kind, a namespace and a name (not yet resolved to its workload)."""

    kind: str
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class ClusterLabel:
    """Which configured cluster an Alertmanager alert is about, from one of its labels.

    `label` None: no label is read, every alert is about the one cluster (settings allow it with one
    cluster only). The receiver stores an alert with `cluster_of` (or the home cluster's when None);
    each cluster's engine takes in as its own only what `cluster_of` names it, the rest it posts plainly
    with `unknown` (the same pure rule on both sides: no mark needs to be stored)."""

    label: str | None
    clusters: tuple[str, ...]
    """The configured clusters, home first."""

    @property
    def home(self) -> str:
        return self.clusters[0]

    def cluster_of(self, labels: Mapping[str, str]) -> str | None:
        """The configured cluster the labels name, the only cluster when they name none, else None."""
        value = labels.get(self.label, "") if self.label is not None else ""
        if value:
            return value if value in self.clusters else None
        return self.clusters[0] if len(self.clusters) == 1 else None

    def unknown(self) -> str:
        """What a message about an alert of no known cluster says (no value quoted: its labels show it)."""
        names = ", ".join(self.clusters[:10]) + (", ..." if len(self.clusters) > 10 else "")
        missing = "is missing or " if len(self.clusters) > 1 else ""
        which = f"`{self.label}` label {missing}names" if self.label else "labels name"
        return f"unknown: the alert's {which} no configured cluster ({names}), so it is matched to no workload"


def namespace_of(labels: Mapping[str, str]) -> str | None:
    value = labels.get(NAMESPACE_LABEL, "")
    return value if _NAMESPACE.fullmatch(value) else None


def named_by(labels: Mapping[str, str], label_map: Mapping[str, str]) -> Named | None:
    """The object an alert's labels name, or None (no namespace, no workload label, or a bad name)."""
    namespace = namespace_of(labels)
    if namespace is None:
        return None
    for label, kind in (*WORKLOAD_LABELS, *label_map.items(), (SERVICE_LABEL, "Service")):
        value = labels.get(label)
        if value:
            return Named(kind, namespace, value) if _NAME.fullmatch(value) else None
    return None


def alertname(alert: ReceivedAlert) -> str:
    return alert.labels.get("alertname") or "alert"


def entry(alert: ReceivedAlert, redactor: Redactor) -> dict[str, Any]:
    """What a message shows of one Alertmanager alert (redacted; escaped when rendered)."""
    summary = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    return {
        "name": redactor.text(alertname(alert))[:200],
        "status": alert.status,
        "severity": redactor.text(alert.labels.get("severity", ""))[:50] or None,
        "summary": redactor.text(summary)[:SUMMARY_CHARS] or None,
        "starts_at": alert.starts_at.isoformat(),
        "url": redactor.text(alert.generator_url)[:500] or None,
        "labels": redactor.text(", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()) if k not in PLAIN_KEYS))[
            :LABELS_CHARS
        ]
        or None,
    }


def title_of(alerts: Sequence[ReceivedAlert], redactor: Redactor) -> str:
    """`KubePodCrashLooping: Pod shop/checkout-1 is crash looping` for the first alert."""
    first = entry(alerts[0], redactor)
    return f"{first['name']}: {first['summary']}" if first["summary"] else str(first["name"])


def merge(
    known: Mapping[str, Any], alerts: Sequence[ReceivedAlert], redactor: Redactor
) -> tuple[dict[str, Any], list[str]]:
    """Add firing alerts to a message's `external` map; returns it and the names of those new or
    firing again (a repeat of an alert already firing there changes nothing)."""
    merged = dict(known)
    news: list[str] = []
    for alert in alerts:
        before = merged.get(alert.fingerprint)
        if before is not None and before.get("status") == "firing":
            continue
        if before is None and len(merged) >= MAX_EXTERNAL:
            more = merged.get(MORE) or {"name": "…", "status": "firing", "count": 0}
            merged[MORE] = {**more, "count": int(more["count"]) + 1}
            news.append(alertname(alert))
            continue
        merged[alert.fingerprint] = entry(alert, redactor)
        news.append(merged[alert.fingerprint]["name"])
    return merged, news


def firing(external: Mapping[str, Any]) -> list[str]:
    return [fp for fp, e in external.items() if e.get("status") == "firing" and fp != MORE]


def names(items: Sequence[str], limit: int = 5) -> str:
    counted: dict[str, int] = {}
    for item in items:
        counted[item] = counted.get(item, 0) + 1
    shown = [f"{n} ×{c}" if c > 1 else n for n, c in list(counted.items())[:limit]]
    more = len(counted) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
