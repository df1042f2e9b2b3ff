"""One diff of object fields: what differs between two Kubernetes objects (or parts of them).

Pure and used by everything that compares objects: the change tracker's diffing, revision history
(which template field a new revision changed) and the rollback preview. Lists whose items carry an
identifying key (`name`, then `mountPath`, `devicePath`, `type`) are matched by that key, so
reordering is not a change; other lists are compared position by position. A map that appears or
goes (annotations, ConfigMap data, limits) is shown key by key; a whole list item that appears or goes
(a new container, env entry) stays one field. Paths are rendered with the item's index in the newer
list (the older one for removed items): `spec.template.spec.containers[0].image`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.model import FieldChange

LIST_KEYS = ("name", "mountPath", "devicePath", "type")
"""Keys that identify the items of a list, tried in this order; the first one every item has uniquely."""


@dataclass(frozen=True, slots=True)
class Item:
    """A list item in a path: its index for display, its identifying key (if any) for matching."""

    index: int
    key: tuple[str, Any] | None = None


Segment = str | Item
Path = tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Difference:
    path: Path
    before: Any
    after: Any

    def field_change(self) -> FieldChange:
        return FieldChange(render_path(self.path), self.before, self.after, field_name(self.path))


def render_path(path: Path) -> str:
    text = ""
    for segment in path:
        if isinstance(segment, Item):
            text += f"[{segment.index}]"
        else:
            text += ("." if text else "") + segment
    return text


def differences_between(old: Any, new: Any) -> list[Difference]:
    """Every leaf that differs between two JSON values, in document order, with structured paths."""
    return list(_walk(old, new, ()))


def field_changes(old: Any, new: Any, *, prefix: str = "") -> list[FieldChange]:
    """The same differences as `FieldChange`s with rendered paths, each under `prefix` when given."""
    found = []
    head: Path = tuple(prefix.split(".")) if prefix else ()
    for difference in _walk(old, new, ()):
        path = render_path(difference.path)
        found.append(
            FieldChange(
                f"{prefix}.{path}" if prefix and path else prefix or path,
                difference.before,
                difference.after,
                field_name((*head, *difference.path)),
            )
        )
    return found


def _walk(old: Any, new: Any, path: Path) -> Iterator[Difference]:
    if old == new:
        return
    # a map that appears or goes (annotations, data, limits, node conditions) is shown key by key, so
    # `restartedAt` or a ConfigMap key is named even when it is the first of its map
    # (a whole list item that appears or goes, such as a new container, stays one field)
    item = bool(path) and isinstance(path[-1], Item)
    if old is None and isinstance(new, dict) and new and not item:
        old = {}
    elif new is None and isinstance(old, dict) and old and not item:
        new = {}
    if isinstance(old, dict) and isinstance(new, dict):
        for key in _ordered_keys(old, new):
            yield from _walk(old.get(key), new.get(key), (*path, key))
        return
    if isinstance(old, list) and isinstance(new, list) and _all_dicts(old) and _all_dicts(new):
        yield from _walk_list(old, new, path)
        return
    yield Difference(path, old, new)


def _ordered_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return list(new) + [k for k in old if k not in new]


def _all_dicts(items: list[Any]) -> bool:
    return all(isinstance(i, dict) for i in items)


def _list_key(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str | None:
    for key in LIST_KEYS:
        for items in (old, new):
            values = [i.get(key) for i in items]
            if any(v is None for v in values) or len(set(map(repr, values))) != len(values):
                break
        else:
            return key
    return None


def _walk_list(old: list[dict[str, Any]], new: list[dict[str, Any]], path: Path) -> Iterator[Difference]:
    key = _list_key(old, new)
    if key is None:  # no identity: compare position by position
        for index in range(max(len(old), len(new))):
            before = old[index] if index < len(old) else None
            after = new[index] if index < len(new) else None
            yield from _walk(before, after, (*path, Item(index)))
        return
    old_by_key = {repr(item[key]): (index, item) for index, item in enumerate(old)}
    for index, item in enumerate(new):
        _, before = old_by_key.pop(repr(item[key]), (index, None))
        yield from _walk(before, item, (*path, Item(index, (key, item[key]))))
    for index, item in old_by_key.values():
        yield from _walk(item, None, (*path, Item(index, (key, item[key]))))


# -- naming a field in a person's words --------------------------------------------------------------

_CONTAINER_LISTS = {"containers": "container", "initContainers": "init container", "ephemeralContainers": "container"}
_CONTAINER_FIELDS = {
    ("resources", "limits", "memory"): "memory limit",
    ("resources", "limits", "cpu"): "CPU limit",
    ("resources", "requests", "memory"): "memory request",
    ("resources", "requests", "cpu"): "CPU request",
    ("readinessProbe",): "readiness probe",
    ("livenessProbe",): "liveness probe",
    ("startupProbe",): "startup probe",
    ("image",): "image",
    ("imagePullPolicy",): "image pull policy",
    ("command",): "command",
    ("args",): "args",
    ("envFrom",): "env from",
    ("ports",): "ports",
    ("securityContext",): "security context",
    ("workingDir",): "working directory",
}
_POD_FIELDS = {
    ("nodeSelector",): "node selector",
    ("tolerations",): "tolerations",
    ("affinity",): "affinity",
    ("serviceAccountName",): "service account",
    ("imagePullSecrets",): "image pull secrets",
    ("priorityClassName",): "priority class",
    ("terminationGracePeriodSeconds",): "termination grace period",
}
_TOP_FIELDS = {
    ("spec", "replicas"): "replicas",
    ("spec", "suspend"): "suspend",
    ("spec", "schedule"): "schedule",
    ("spec", "paused"): "paused",
    ("spec", "unschedulable"): "cordon (spec.unschedulable)",
    ("spec", "taints"): "taints",
    ("spec", "maxReplicas"): "maxReplicas",
    ("spec", "minReplicas"): "minReplicas",
    ("spec", "minAvailable"): "minAvailable",  # a PodDisruptionBudget's
    ("spec", "maxUnavailable"): "maxUnavailable",
}


def field_name(path: Path) -> str:
    """A changed field in a person's words, from its structured path: `env var DB_URL of container app`,
    `memory limit of container app`, `image of container app`, `key LOG_LEVEL`, `replicas`,
    `pod label team`. Unknown fields keep their dotted path (`spec.strategy.type`)."""
    segments = list(path)
    starts: tuple[tuple[str, ...], ...] = (
        ("spec", "template", "spec"),
        ("spec", "jobTemplate", "spec", "template", "spec"),
    )
    for start in starts:
        if tuple(segments[: len(start)]) == start:
            return _pod_field(segments[len(start) :]) or render_path(path)
    for meta, what in ((("spec", "template", "metadata"), "pod "), (("metadata",), "")):
        if tuple(segments[: len(meta)]) == meta:
            rest = segments[len(meta) :]
            if len(rest) >= 2 and rest[0] in ("labels", "annotations") and isinstance(rest[1], str):
                return f"{what}{str(rest[0])[:-1]} {rest[1]}"
    if len(segments) >= 2 and segments[0] in ("data", "binaryData", "stringData") and isinstance(segments[1], str):
        return f"key {segments[1]}"
    if len(segments) >= 3 and segments[:2] == ["spec", "selector"] and isinstance(segments[2], str):
        return f"selector {segments[2]}" if segments[2] != "matchLabels" else f"selector {render_path(path[3:])}"
    if len(segments) >= 3 and segments[:2] == ["status", "conditions"]:
        return f"condition {render_path(path[2:])}"
    for prefix, words in _TOP_FIELDS.items():
        if tuple(segments[: len(prefix)]) == prefix:
            return words
    return render_path(path)


def name_of_rendered(path: str, obj: Any = None) -> str:
    """`field_name` for a rendered path (`spec.template.spec.containers[0].image`), for changes recorded
    before fields carried their name. List items are named from `obj` (the object as it is now) when
    it has an item there, else known by index only (`env var #1`)."""
    return field_name(_named_items(parse_path(path), obj))


def _named_items(path: Path, obj: Any) -> Path:
    named: list[Segment] = []
    node = obj
    for segment in path:
        if isinstance(segment, Item):
            item = node[segment.index] if isinstance(node, list) and segment.index < len(node) else None
            key = next((k for k in LIST_KEYS if isinstance(item, dict) and item.get(k) is not None), None)
            named.append(Item(segment.index, (key, item[key])) if key and isinstance(item, dict) else segment)
            node = item
        else:
            named.append(segment)
            node = node.get(segment) if isinstance(node, dict) else None
    return tuple(named)


_INDEX = re.compile(r"^(.*?)((?:\[\d+\])*)$")


def parse_path(path: str) -> Path:
    """A rendered path back to segments; map keys with dots (`data.app.properties`, a label
    `app.kubernetes.io/name`) stay whole after `data`, `labels` and `annotations`."""
    segments: list[Segment] = []
    parts = path.split(".")
    while parts:
        part = parts.pop(0)
        match = _INDEX.match(part)
        name, indices = (match.group(1), match.group(2)) if match else (part, "")
        if name:
            segments.append(name)
        segments += [Item(int(i)) for i in re.findall(r"\[(\d+)\]", indices)]
        if name in ("data", "binaryData", "stringData", "labels", "annotations") and parts and not indices:
            segments.append(".".join(parts))
            break
    return tuple(segments)


def _pod_field(rest: list[Segment]) -> str | None:
    if not rest:
        return "pod template"
    head = rest[0]
    if isinstance(head, str) and head in _CONTAINER_LISTS and len(rest) >= 2 and isinstance(rest[1], Item):
        who = f"{_CONTAINER_LISTS[head]} {_item_name(rest[1])}"
        inner = rest[2:]
        if not inner:
            return who
        return f"{_container_field(inner)} of {who}"
    if head == "volumes" and len(rest) >= 2 and isinstance(rest[1], Item):
        return f"volume {_item_name(rest[1])}"
    for prefix, words in _POD_FIELDS.items():
        if tuple(rest[: len(prefix)]) == prefix:
            tail = [s for s in rest[len(prefix) :] if isinstance(s, str)]
            return f"{words} {'.'.join(tail)}".strip() if head == "nodeSelector" else words
    return None


def _container_field(inner: list[Segment]) -> str:
    head = inner[0]
    if head == "env" and len(inner) >= 2 and isinstance(inner[1], Item):
        return f"env var {_item_name(inner[1])}"
    if head == "volumeMounts" and len(inner) >= 2 and isinstance(inner[1], Item):
        return f"volume mount {_item_name(inner[1])}"
    for prefix, words in sorted(_CONTAINER_FIELDS.items(), key=lambda kv: -len(kv[0])):
        if tuple(inner[: len(prefix)]) == prefix:
            tail = render_path(tuple(inner[len(prefix) :]))
            return f"{words} {tail}" if tail and words.endswith("probe") else words
    return render_path(tuple(inner))


def _item_name(item: Item) -> str:
    return str(item.key[1]) if item.key else f"#{item.index}"


def show_value(value: Any, limit: int = 80) -> str:
    """A field's value in a person's words, never a Python repr: `(none)` for nothing, an env var's
    source (`from Secret db key password`), a command line for args, `key: value` for maps."""
    text = _value_text(value)
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _value_text(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list):
        if all(isinstance(v, str | int | float) for v in value):
            return " ".join(str(v) for v in value) if value else "(empty)"
        return "; ".join(_value_text(v) for v in value)
    if isinstance(value, dict):
        source = _env_source(value)
        if source is not None:
            return source
        if "value" in value and set(value) <= {"name", "value"}:
            return str(value["value"])
        return ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items()) or "(empty)"
    return str(value)


def _env_source(entry: dict[str, Any]) -> str | None:
    source = entry.get("valueFrom") if isinstance(entry.get("valueFrom"), dict) else None
    if source is None:
        return None
    for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        ref = source.get(key)
        if isinstance(ref, dict):
            optional = " (optional)" if ref.get("optional") else ""
            return f"from {kind} {ref.get('name')} key {ref.get('key')}{optional}"
    if isinstance(source.get("fieldRef"), dict):
        return f"from field {source['fieldRef'].get('fieldPath')}"
    if isinstance(source.get("resourceFieldRef"), dict):
        return f"from resource {source['resourceFieldRef'].get('resource')}"
    return None
