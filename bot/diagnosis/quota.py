"""ResourceQuota usage as evidence for a FailedCreate: which resource is at its hard limit."""

from __future__ import annotations

from bot.kube.snapshot import Snapshot, name_of
from bot.model import KubeObject


def limit_ranges(snapshot: Snapshot) -> list[str]:
    """`LimitRange mem-limits: Container max memory 128Mi` for each LimitRange of the namespace."""
    return [f"LimitRange {name_of(lr)}: {describe_limits(lr)}" for lr in snapshot.of("LimitRange")]


def describe_limits(limit_range: KubeObject) -> str:
    parts = []
    for limit in (limit_range.get("spec") or {}).get("limits") or []:
        for bound in ("max", "min", "maxLimitRequestRatio"):
            for resource, value in sorted((limit.get(bound) or {}).items()):
                parts.append(f"{limit.get('type')} {bound} {resource} {value}")
    return ", ".join(parts) or "no limits"


def exhausted_quotas(snapshot: Snapshot) -> list[str]:
    """`quota compute: requests.memory 1Gi of 1Gi used` for each resource at or over its limit."""
    lines: list[str] = []
    for quota in snapshot.of("ResourceQuota"):
        status = quota.get("status") or {}
        hard, used = status.get("hard") or {}, status.get("used") or {}
        for resource, limit in sorted(hard.items()):
            if resource in used and _quantity(used[resource]) >= _quantity(limit):
                lines.append(f"quota {name_of(quota)}: {resource} {used[resource]} of {limit} used")
    return lines


_SUFFIXES = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
}


def _quantity(text: object) -> float:
    """A Kubernetes quantity (`512Mi`, `250m`, `2`) as a number; unparseable → 0."""
    value = str(text).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if value.endswith(suffix):
            try:
                return float(value[: -len(suffix)]) * _SUFFIXES[suffix]
            except ValueError:
                return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0
