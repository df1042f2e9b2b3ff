"""Going back in time with the change history: `describe <kind/name> --at 2h` (the object as it was,
rebuilt from the recorded changes, with what changed since) and `changes --id N` (one change in full).

Both read the bot's own records, which were made with the bot's identity: they are served only for
kinds the asker may read there (`VerbContext.reads`), and what they show is redacted again. `describe
--at` follows `describe`'s rule for values: Secret and ConfigMap data and env var values are never
shown, only that they changed. (This module marks no verb: `describe` and `changes` call it.)
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from bot.changes.rewinding import leaves, rewind
from bot.commands.context import VerbContext
from bot.commands.parsing import DURATION_RE, duration_seconds
from bot.errors import NotFound, UsageError
from bot.model import Answer, Change, ChangeKind, ObjectRef, parse_time
from bot.text import clip

HIDDEN = "(value not shown)"
VALUE_FREE_KINDS = frozenset({"Secret", "ConfigMap"})
_ENV_VALUE = re.compile(r"\.env\[\d+\]\.value$")
CHANGES_SHOWN = 30
FIELDS_SHOWN = 8
VALUE_CHARS = 120
FULL_VALUE_CHARS = 2000
MAX_UNDONE = 1000
"""Changes undone at most for one `describe --at` (more say so: the state would be incomplete)."""


def moment(text: str, *, now: datetime, usage: str) -> datetime:
    """`--at`: a duration ago (`2h`, `30m`, `7d`) or an RFC 3339 time with its offset."""
    if DURATION_RE.match(text):
        return now - timedelta(seconds=duration_seconds(text))
    at = parse_time(text)
    if at is None or at.tzinfo is None:
        raise UsageError(
            f"`--at {text}` is neither a duration like 2h nor an RFC 3339 time like 2026-11-30T10:00:00Z.", usage=usage
        )
    if at > now:
        raise UsageError(f"`--at {text}` is in the future.", usage=usage)
    return at


def hidden(kind: str, path: str) -> bool:
    """Whether `describe` would keep this value to itself (data of Secrets/ConfigMaps, env values)."""
    if kind in VALUE_FREE_KINDS and path.split(".", 1)[0] in ("data", "binaryData", "stringData"):
        return True
    return bool(_ENV_VALUE.search(path))


def _shown(kind: str, path: str, value: Any, *, chars: int = VALUE_CHARS) -> str:
    if hidden(kind, path):
        return HIDDEN
    if isinstance(value, dict | list) and _has_env_value(value):
        return HIDDEN
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return clip(text, chars)


def _has_env_value(value: Any) -> bool:
    """A whole container or env item carries env values: shown only as changed."""
    if isinstance(value, dict):
        return ("value" in value and "name" in value) or any(_has_env_value(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_env_value(v) for v in value)
    return False


def _hide_values(kind: str, body: Any, prefix: str = "") -> Any:
    """The state for JSON: hidden values replaced by HIDDEN, the rest as it is."""
    if isinstance(body, dict):
        return {
            k: HIDDEN if hidden(kind, _join(prefix, k)) else _hide_values(kind, v, _join(prefix, k))
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_hide_values(kind, v, f"{prefix}[{i}]") for i, v in enumerate(body)]
    return body


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _readable(ctx: VerbContext, ref: ObjectRef) -> None:
    """NotFound (never what it holds) when the asker may not read this kind there."""
    decision = ctx.reads.decision(ref.kind, ref.namespace, ref.name)
    if not decision.allowed:
        raise NotFound(f"I have no history of {ref} that you may read ({decision.reason}).")


# -- describe --at --------------------------------------------------------------------------------


def describe_at(ctx: VerbContext, ref: ObjectRef, when: str, *, usage: str) -> Answer:
    """The recorded state of `ref` at `when`, rebuilt by undoing the changes recorded since."""
    now = ctx.now
    at = moment(when, now=now, usage=usage)
    store = ctx.services.changes
    if at < now - store.retention:
        raise UsageError(f"I keep {store.retention.days} days of history: `--at` can go back that far.", usage=usage)
    _readable(ctx, ref)
    state = store.state(ref)
    recorded = store.query(since=at, ref=ref, limit=MAX_UNDONE + 1)
    if state is None and not recorded:
        raise NotFound(f"I have no recorded history of {ref} after {_stamp(at)}.")
    redactor = ctx.services.redactor
    rewound = rewind(state.body if state is not None else None, recorded[:MAX_UNDONE], at)
    since = [redactor.change(c) for c in rewound.since]
    where = f" in {ref.namespace}" if ref.namespace else ""
    title = f"{ref.kind} {ref.name}{where} as it was at {_stamp(at)} (rebuilt from the recorded changes)"
    lines: list[str] = []
    body = redactor.tree(rewound.body) if rewound.body is not None else None
    if body is None:
        lines.append(_absent_line(rewound.since, existed=rewound.existed))
    else:
        lines.append("Recorded state (what changes are made of: spec, data, labels, annotations; no status):")
        changed = rewound.changed_paths
        for path, value in leaves(body):
            mark = "*" if any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in changed) else " "
            lines.append(f"{mark} {path}: {_shown(ref.kind, path, value)}")
        if changed:
            lines.append("(* changed since)")
    lines.append(f"Changed since: {len(since)}{'+' if len(recorded) > MAX_UNDONE else ''} (newest first)")
    lines += _change_lines(ref.kind, since[:CHANGES_SHOWN])
    if len(since) > CHANGES_SHOWN:
        lines.append(f"… {len(since) - CHANGES_SHOWN} more in the JSON answer")
    if len(recorded) > MAX_UNDONE:
        lines.append(f"More than {MAX_UNDONE} changes since then: the state above undoes only the newest {MAX_UNDONE}.")
    lines += [f"Note: {problem}" for problem in rewound.problems]
    lines.append(f"One change in full: `changes --id N`; now: `describe {ref.kind.lower()}/{ref.name}`.")
    data = {
        "ref": ref.to_json(),
        "at": at.isoformat(),
        "existed": rewound.existed,
        "state": _hide_values(ref.kind, body) if body is not None else None,
        "changed_paths": list(rewound.changed_paths),
        "changed_since": [_change_json(ref.kind, c) for c in since],
        "problems": list(rewound.problems),
    }
    return Answer(verb="describe", data=data, title=title, lines=tuple(lines))


def _absent_line(since: tuple[Change, ...], *, existed: bool) -> str:
    created = next((c for c in reversed(since) if c.kind is ChangeKind.CREATED), None)
    deleted = next((c for c in since if c.kind is ChangeKind.DELETED), None)
    if not existed and created is not None:
        return f"It did not exist yet: created {_stamp(created.at)}" + (f" by {created.actor}" if created.actor else "")
    if deleted is not None:
        return f"It existed then, but its recorded state went with its deletion at {_stamp(deleted.at)}."
    return "No recorded state of it at that time."


def _change_lines(
    kind: str, changes: list[Change], *, fields: int = FIELDS_SHOWN, chars: int = VALUE_CHARS
) -> list[str]:
    lines: list[str] = []
    for change in changes:
        who = f" by {change.actor}" if change.actor else ""
        revision = f" (revision {change.revision})" if change.revision else ""
        lines.append(f"{_stamp(change.at)}  change {change.id}{revision}{who}: {change.summary}")
        for field in change.fields[:fields]:
            before = _shown(kind, field.path, field.before, chars=chars)
            after = _shown(kind, field.path, field.after, chars=chars)
            lines.append(f"    {field.path}: " + ("changed" if HIDDEN in (before, after) else f"{before} → {after}"))
        if len(change.fields) > fields:
            lines.append(f"    … {len(change.fields) - fields} more fields (see --json)")
    return lines


def _change_json(kind: str, change: Change) -> dict[str, Any]:
    data = change.to_json()
    data["fields"] = [
        {"path": f.path, "before": HIDDEN, "after": HIDDEN}
        if hidden(kind, f.path) or _has_env_value(f.before) or _has_env_value(f.after)
        else f.to_json()
        for f in change.fields
    ]
    return data


# -- changes --id ---------------------------------------------------------------------------------


def change_in_full(ctx: VerbContext, change_id: int, namespace: str | None) -> Answer:
    """One recorded change with every field, before → after (values clipped only when very long).
    `namespace`: where the command was authorized (None: all namespaces)."""
    change = ctx.services.changes.get(change_id)
    if change is None or (namespace is not None and (change.ref.namespace or None) != namespace):
        where = f" in namespace {namespace}" if namespace else ""
        raise NotFound(f"I have no change {change_id}{where}.")
    _readable(ctx, change.ref)
    shown = ctx.services.redactor.change(change)  # stored redacted; shown so again
    who = f" by {shown.actor}" if shown.actor else ""
    revision = f", revision {shown.revision}" if shown.revision else ""
    title = f"Change {change_id}: {shown.ref}{revision}{who}, {_stamp(shown.at)}"
    lines = [f"{shown.kind}: {shown.summary}"]
    lines += [f"  {f.path}: {_value(f.before)} → {_value(f.after)}" for f in shown.fields] or [
        "  (no field-level detail: the object was created or deleted)"
    ]
    ref = shown.ref
    where = f" -n {ref.namespace}" if ref.namespace else ""
    before = shown.at - timedelta(seconds=1)
    lines.append(f"As it was before: `describe {ref.kind.lower()}/{ref.name}{where} --at {before:%Y-%m-%dT%H:%M:%SZ}`")
    return Answer(verb="changes", data={"change": shown.to_json()}, title=title, lines=tuple(lines))


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return clip(text, FULL_VALUE_CHARS)
