"""Going back in time: an object's recorded state as it was at an earlier moment. Pure: plain dicts.

The change tracker keeps each object's last-seen state (`ObjectState.body`, the stripped snapshot that
changes are diffed from) and every change as fields with before → after. Undoing the changes made
after a moment, newest first, field by field, gives the state at that moment.

A field's path is rendered text (`spec.template.spec.containers[0].env[1].value`,
`metadata.annotations.kubectl.kubernetes.io/restartedAt`): keys may hold dots, so a path is resolved
against the state it applies to (the longest key that is there wins; a key that is not there any more
is the rest of the path when its parent is a map of free-form keys). List indices are those of the
newer list, the older one for a removed item (see `bot.kube.fields`), which is exactly the list being
rewound when changes are undone newest first.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.model import Change, ChangeKind

FREE_KEYS = frozenset({"labels", "annotations", "data", "binaryData", "nodeSelector", "matchLabels", "selector"})
"""Maps whose keys are chosen by people (they may hold dots and slashes)."""
_INDEX = re.compile(r"^\[(\d+)\]")


class Unrewindable(ValueError):
    """A recorded field path that does not fit the state it should be undone on."""


@dataclass(frozen=True, slots=True)
class Rewound:
    """An object's recorded state at `at`: `body` (None when it did not exist then), the changes made
    since (newest first), and the fields that changed since (rendered paths)."""

    at: datetime
    body: dict[str, Any] | None
    since: tuple[Change, ...]
    changed_paths: tuple[str, ...]
    existed: bool
    problems: tuple[str, ...] = ()


def rewind(body: dict[str, Any] | None, changes: Sequence[Change], at: datetime) -> Rewound:
    """`body` (the newest recorded state; None if the object is gone) with every change after `at`
    undone. `changes` are the object's recorded changes, any order; those at or before `at` are kept."""
    since = sorted((c for c in changes if c.at > at), key=lambda c: (c.at, c.id or 0), reverse=True)
    state = copy.deepcopy(body) if body is not None else None
    existed = body is not None
    problems: list[str] = []
    paths: list[str] = []
    for change in since:
        if change.kind is ChangeKind.CREATED:
            state, existed = None, False  # created after `at`: it did not exist then
            continue
        if change.kind is ChangeKind.DELETED:
            existed = True  # deleted after `at`: it existed then; its last state went with it
            continue
        if state is None:
            continue
        for field in reversed(change.fields):
            paths.append(field.path)
            try:
                state = undo(state, field.path, before=field.before, after=field.after)
            except Unrewindable as e:
                problems.append(f"change {change.id}: {e}")
    return Rewound(at, state if existed else None, tuple(since), tuple(dict.fromkeys(paths)), existed, tuple(problems))


def undo(state: dict[str, Any], path: str, *, before: Any, after: Any) -> dict[str, Any]:
    """`state` with the field at `path` set back to `before` (removed when `before` is None)."""
    steps = _resolve(state, path, adding=after is None)
    parent: Any = state
    for step in steps[:-1]:
        parent = parent[step]
    last = steps[-1]
    if isinstance(parent, list):
        assert isinstance(last, int)
        if after is None:  # an item removed since: put it back where it was
            parent.insert(min(last, len(parent)), copy.deepcopy(before))
        elif before is None:  # an item added since: take it out
            if last < len(parent):
                parent.pop(last)
        else:
            if last >= len(parent):
                raise Unrewindable(f"{path}: no item {last}")
            parent[last] = copy.deepcopy(before)
        return state
    if before is None:
        parent.pop(last, None)
    else:
        parent[last] = copy.deepcopy(before)
    return state


def _resolve(state: dict[str, Any], path: str, *, adding: bool) -> list[str | int]:
    """The keys and indices of `path` in `state`; missing maps on the way are created when `adding`
    (a field removed since, under a parent that went with it)."""
    steps: list[str | int] = []
    node: Any = state
    rest = path
    parent_key = ""
    while rest:
        rest = rest.removeprefix(".")
        index = _INDEX.match(rest)
        if index is not None:
            if not isinstance(node, list):
                raise Unrewindable(f"{path}: [{index.group(1)}] is not under a list")
            position = int(index.group(1))
            steps.append(position)
            rest = rest[index.end() :]
            node = node[position] if position < len(node) else None
            continue
        if not isinstance(node, dict):
            if node is None and adding:
                raise Unrewindable(f"{path}: its parent is not there")
            raise Unrewindable(f"{path}: {rest} is not under a map")
        key = _key(node, rest, free=parent_key in FREE_KEYS)
        steps.append(key)
        rest = rest[len(key) :]
        parent_key = key
        if rest and key not in node and adding:
            node[key] = {}
        node = node.get(key)
    if not steps:
        raise Unrewindable("an empty path")
    return steps


def _key(node: dict[str, Any], rest: str, *, free: bool) -> str:
    """The key of `node` that `rest` starts with: a present key holding a map or list to go into (the
    longest), else the whole rest when it is a key (present, or gone from a map of free-form keys),
    else the text up to the next `.` or `[`."""
    present = [k for k in node if rest.startswith((f"{k}.", f"{k}["))]
    nested = [k for k in present if isinstance(node[k], dict | list)]
    if nested:
        return max(nested, key=len)
    if rest in node or (free and "[" not in rest):
        return rest
    if present:
        return max(present, key=len)
    match = re.match(r"^[^.\[]+", rest)
    if match is None:
        raise Unrewindable(f"cannot read a key from {rest!r}")
    return match.group(0)


def leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(rendered path, value) of every leaf, in document order (what `describe --at` lists)."""
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for key, item in value.items():
            out += leaves(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list) and value:
        out = []
        for index, item in enumerate(value):
            out += leaves(item, f"{prefix}[{index}]")
        return out
    return [(prefix, value)]
