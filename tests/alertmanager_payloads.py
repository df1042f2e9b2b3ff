"""Alertmanager webhook payloads (version 4) as Alertmanager v0.35 sends them, for tests."""

from __future__ import annotations

import hashlib
from typing import Any


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]


def alert(
    labels: dict[str, str],
    *,
    status: str = "firing",
    summary: str | None = None,
    starts: str = "2026-11-30T10:00:00.123456789Z",
    ends: str = "0001-01-01T00:00:00Z",
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": summary} if summary else {},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus.example/graph?g0.expr=up",
        "fingerprint": fingerprint(labels),
    }


def webhook(*alerts: dict[str, Any], status: str = "firing", group_key: str = '{}:{alertname="X"}') -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "k8sbot",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
    }
