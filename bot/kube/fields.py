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
        return FieldChange(render_path(self.path), self.before, self.after)


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
    for difference in _walk(old, new, ()):
        path = render_path(difference.path)
        found.append(
            FieldChange(f"{prefix}.{path}" if prefix and path else prefix or path, difference.before, difference.after)
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
