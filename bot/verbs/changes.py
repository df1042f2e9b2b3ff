"""`changes [target] [-n ns] [--since 2h]`: the recorded change timeline, newest first.

Reads the change history: what changed, when, who, before → after. Secret fields show
fingerprints, never values, and so does whatever else looks secret (they are stored that way:
bot/changes/diffing.py; the summary and values are redacted again when shown). The history was
recorded with the bot's own identity, so it is served only for kinds the asker may read there
(`VerbContext.reads`: a SubjectAccessReview `get <kind>` as their Kubernetes identity; people mapped
to none see what the bot reads, except Secrets). The answer says which kinds were left out, never
what they held.
"""

from __future__ import annotations

import difflib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.commands.context import VerbContext
from bot.commands.parsing import duration_seconds
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.errors import NotFound, UsageError
from bot.kube.kinds import KINDS, kind_named
from bot.model import Answer, Change, Command, Decision, ObjectRef
from bot.permissions.reading import ReadAccess
from bot.text import clip
from bot.verbs.history import change_in_full

if TYPE_CHECKING:  # annotations only
    from bot.store.changes import ChangeStore

DEFAULT_SINCE = "24h"
MAX_SINCE = timedelta(days=90)
SHOWN = 50
FIELDS_SHOWN = 6
VALUE_CHARS = 80

SPEC = VerbSpec(
    name="changes",
    summary="what changed recently (newest first), who changed it, before → after",
    usage="changes [target] [-n namespace] [--since 2h] [--id N]",
    examples=(
        "changes -n shop",
        "changes checkout -n shop --since 2h",
        "changes deploy/checkout --since 7d",
        "changes --id 42 -n shop",
    ),
    flags=(
        NAMESPACE_FLAG,
        FlagSpec("since", "duration", f"how far back (default {DEFAULT_SINCE})"),
        FlagSpec("id", "int", "show one change in full: every field, before → after", minimum=1),
    ),
    target="optional",
)


@verb(SPEC)
def changes_verb(ctx: VerbContext, command: Command) -> Answer:
    store = ctx.services.changes
    if command.flag("id") is not None:
        if command.target:
            raise UsageError("`--id` names one change: leave out the target.", usage=SPEC.usage)
        return change_in_full(ctx, int(command.flag("id")), ctx.acted_namespace(command))
    since_text = str(command.flag("since", DEFAULT_SINCE))
    window = timedelta(seconds=duration_seconds(since_text))
    if window.total_seconds() <= 0:
        raise UsageError("`--since` must be longer than zero.", usage=SPEC.usage)
    if window > MAX_SINCE:
        raise UsageError("`--since` can go back at most 90d.", usage=SPEC.usage)
    since = ctx.now - window
    # Where it was authorized: -n / the channel's / the configured default; None for all namespaces
    # or for a cluster-scoped target (node/x), which were decided cluster-wide.
    namespace = ctx.acted_namespace(command)
    reads = ctx.reads
    ref: ObjectRef | None = None
    if command.target:
        ref, name = _resolve_target(store, reads, command.target, namespace)
        query: dict[str, Any] = {"ref": ref, "namespace": namespace or "", "name": name}
        where = str(ref) if ref else f"{name} in {namespace}"
    else:
        query = {"namespace": namespace}
        where = f"namespace {namespace}" if namespace else "all namespaces"
    found, hidden = _readable(store, reads, since=since, scope=namespace, one=ref, **query)
    shown = [ctx.services.redactor.change(c) for c in found[:SHOWN]]  # stored redacted; shown so again
    title = f"Changes of {where} in the last {since_text}: {len(shown)}{'+' if len(found) > SHOWN else ''}"
    left_out = [{"kind": kind, "reason": hidden[kind].reason} for kind in sorted(hidden)]
    return Answer(
        verb="changes",
        data={"changes": [change_json(c) for c in shown], "hidden": left_out},
        title=title,
        lines=(*_timeline(shown, more=len(found) > SHOWN), *_hidden_lines(hidden)),
    )


def _readable(
    store: ChangeStore, reads: ReadAccess, *, since: datetime, scope: str | None, one: ObjectRef | None, **query: Any
) -> tuple[list[Change], dict[str, Decision]]:
    """The newest changes of kinds the asker may read (in `scope`; None: all namespaces; `one`: that
    object only), and the kinds left out with the decision that left them out. Each kind met is decided
    before anything of it is shown; a refused kind is excluded in the query, so the page is filled
    with readable ones."""
    hidden: dict[str, Decision] = {}
    while True:
        found = store.query(since=since, skip_kinds=tuple(sorted(hidden)), limit=SHOWN + 1, **query)
        refused = {
            kind: decision
            for kind in dict.fromkeys(c.ref.kind for c in found)
            if not (decision := reads.decision(kind, scope, one.name if one else None)).allowed
        }
        if not refused:
            return found, hidden
        hidden.update(refused)


def _hidden_lines(hidden: dict[str, Decision]) -> list[str]:
    return [f"History of {_plural(kind)} hidden: {hidden[kind].reason}" for kind in sorted(hidden)]


def _plural(kind: str) -> str:
    known = KINDS.get(kind)
    return known.plural if known is not None else kind


def change_json(change: Change) -> dict[str, Any]:
    """The `--json` shape of one change (Change.to_json, which also carries the change's "kind")."""
    return change.to_json()


def _resolve_target(
    store: ChangeStore, reads: ReadAccess, target: str, namespace: str | None
) -> tuple[ObjectRef | None, str | None]:
    """`kind/name` → that object; `name` → every kind with that name. NotFound when history knows neither
    (among the kinds the asker may read: neither the answer nor its suggestions name the others)."""
    kind_word, _, name = target.rpartition("/")
    kind = kind_named(kind_word) if kind_word else None
    if kind_word and kind is None:
        raise UsageError(f"`{kind_word}` is not a kind I know.", usage=SPEC.usage)
    cluster_scoped = kind is not None and not KINDS[kind.kind].namespaced
    if namespace is None and not cluster_scoped:
        raise UsageError("Which namespace? Add `-n <namespace>`.", usage=SPEC.usage)
    scope = None if cluster_scoped else namespace
    known = store.known_names(namespace=scope)
    if kind is not None:
        ref = ObjectRef(kind.kind, scope, name)
        if ref not in known:
            readable = [r for r in known if reads.allowed(r.kind, scope)]
            raise NotFound(f"I have no history of {ref}.", candidates=_candidates(readable, name))
        return ref, None
    readable = [r for r in known if reads.allowed(r.kind, scope)]
    if not any(r.name == name for r in readable):
        where = f"namespace {namespace}"
        raise NotFound(f"I have no history of `{name}` in {where}.", candidates=_candidates(readable, name))
    return None, name


def _candidates(known: list[ObjectRef], name: str) -> tuple[str, ...]:
    names = sorted({f"{r.kind.lower()}/{r.name}" for r in known})
    return tuple(difflib.get_close_matches(name, [n.split("/", 1)[1] for n in names], n=3, cutoff=0.6))


def _timeline(changes: list[Change], *, more: bool) -> list[str]:
    if not changes:
        return ["Nothing changed in that time."]
    lines: list[str] = []
    for change in changes:
        who = f" by {change.actor}" if change.actor else ""
        revision = f" (revision {change.revision})" if change.revision else ""
        stamp = change.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if change.external:
            lines.append(f"{stamp}  [{change.source}] {about(change.ref)}{who}: {change.summary}")
            if change.link:
                lines.append(f"    {change.link}")
        else:
            via = f" (via {change.managed_by.describe()})" if change.managed_by else ""
            lines.append(f"{stamp}  {change.ref}{revision}{who}{via}: {change.summary}")
        for field in change.fields[:FIELDS_SHOWN]:
            lines.append(f"    {field.path}: {_value(field.before)} → {_value(field.after)}")
        if len(change.fields) > FIELDS_SHOWN:
            lines.append(f"    … {len(change.fields) - FIELDS_SHOWN} more fields (see --json)")
    if more:
        lines.append(f"Showing the newest {SHOWN}. Narrow with a target or a shorter --since.")
    return lines


def about(ref: ObjectRef) -> str:
    """What an external change is about: an object, a namespace as a whole, or the whole cluster."""
    if ref.kind == "Namespace":
        return f"namespace {ref.name}" if ref.name else "the cluster"
    return str(ref)


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return clip(text, VALUE_CHARS)
