"""What every action (rollback, scale, restart) shares: a `Plan` previewed, then applied once.

Verbs describe a change as a `Plan` and hand it to `act`: unconfirmed, it answers with a preview and
a confirmation (see `auditing` for how the confirmed run claims its action id); confirmed, it
applies the plan, refusing to run one whose action id was not claimed in the audit log.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.commands.auditing import ACTION_ID, new_action_id, with_flags
from bot.commands.context import VerbContext
from bot.errors import Conflict, K8sBotError, NotFound, UsageError
from bot.kube.kinds import Kind
from bot.model import Answer, Command, FieldChange, KubeObject, ObjectRef
from bot.permissions.targets import ACTION_KINDS, target_kind
from bot.store.audit import RUNNING
from bot.text import brief

log = logging.getLogger(__name__)


def field_manager(ctx: VerbContext) -> str:
    """The field manager our writes are recorded under (managedFields): names the person, so the
    change history's "who" says who acted through the bot, not just "k8sbot"."""
    user = ctx.subject.slack_user
    return f"k8sbot/{user}" if user and user.isalnum() else "k8sbot"


# -- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """What an applied change did, in words and as data."""

    title: str
    lines: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A change described before it is made: what, exactly which fields, and how to make it."""

    ref: ObjectRef
    summary: str
    details: tuple[str, ...]
    changes: tuple[FieldChange, ...]
    apply: Callable[[], Applied]
    pins: dict[str, str] = field(default_factory=dict)
    """Flags the confirm command fixes, so the click does exactly what the preview showed."""
    data: dict[str, Any] = field(default_factory=dict)
    unchanged: str | None = None
    """Set when nothing would change: the reason, answered without asking to confirm."""
    warnings: tuple[str, ...] = ()
    """What to know before confirming (a GitOps controller will revert it): shown first in the preview,
    in the JSON as `warnings`, and again with the result. They never refuse."""


def nothing_to_do(ref: ObjectRef, reason: str, *, details: tuple[str, ...] = (), data: dict[str, Any]) -> Plan:
    """A plan that changes nothing (already in the wanted state): answered without a confirmation."""
    return Plan(ref, reason, details, (), lambda: Applied(reason), data=data, unchanged=reason)


def act(ctx: VerbContext, command: Command, plan: Plan) -> Answer:
    """Preview the plan (unconfirmed) or apply it (confirmed, with a claimed action id)."""
    base = {"action": command.verb, "target": plan.ref.to_json(), **plan.data}
    if plan.warnings:
        base["warnings"] = list(plan.warnings)
    changes = [c.to_json() for c in plan.changes]
    if plan.unchanged:
        return Answer(command.verb, {**base, "outcome": "unchanged", "changes": []}, plan.unchanged, plan.details)
    if not ctx.confirmed:
        confirm = with_flags(command, **plan.pins, action_id=new_action_id())
        data = {
            **base,
            "outcome": "pending",
            "changes": changes,
            "confirm": {"command": confirm.as_text(), "text": plan.summary + "?"},
        }
        lines = (*plan.warnings, *plan.details, "", "Nothing has changed yet: confirm to go ahead.")
        return Answer(command.verb, data, f"Confirm: {plan.summary}", lines, private=True)
    _require_claim(ctx, command)
    applied = plan.apply()
    data = {**base, **applied.data, "outcome": "done", "changes": changes, "action_id": command.flag(ACTION_ID)}
    return Answer(command.verb, data, applied.title, (*applied.lines, *plan.warnings))


def _require_claim(ctx: VerbContext, command: Command) -> None:
    # Confirmed actions run only through run_audited, which claims the id first: that is what makes
    # the same click run once. A direct call without a claim is refused rather than run unaudited.
    action_id = command.flag(ACTION_ID)
    entry = ctx.services.audit.for_action(str(action_id)) if action_id else None
    if entry is None or entry.outcome != RUNNING:
        raise Conflict("This action was not claimed in the audit log; run it through the command path.")


# -- fetching the target --------------------------------------------------------------------------


def fetch_workload(ctx: VerbContext, command: Command) -> tuple[Kind, KubeObject, str]:
    """The workload an action targets, as the person (impersonated client): (kind, object, namespace)."""
    kind, name = target_kind(command)
    allowed = ACTION_KINDS[command.verb]
    if kind is None or name is None:
        raise UsageError(f"`{command.verb}` needs a target.")
    if kind.kind not in allowed:
        kinds = ", ".join(k.lower() + "s" for k in allowed)
        raise UsageError(f"`{command.verb}` works on {kinds}, not {kind.kind.lower()}s.")
    namespace = ctx.namespace_for(command)
    try:
        return kind, ctx.kube.get(kind.path(namespace, name)), namespace
    except NotFound:
        raise NotFound(
            f"There is no {kind.kind.lower()} `{name}` in namespace `{namespace}`.",
            candidates=_close_names(ctx, kind, namespace, name),
        ) from None


def _close_names(ctx: VerbContext, kind: Kind, namespace: str, name: str) -> tuple[str, ...]:
    try:
        names = [str((o.get("metadata") or {}).get("name")) for o in ctx.kube.list(kind.path(namespace))]
    except K8sBotError:
        return ()
    return tuple(difflib.get_close_matches(name, names, n=3, cutoff=0.5))


# -- describing changes --------------------------------------------------------------------------


def images(template: dict[str, Any]) -> list[str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [str(c.get("image")) for c in containers]


def change_lines(changes: list[FieldChange], *, limit: int = 12) -> list[str]:
    lines = [f"• {c.path}: {brief(c.before)} → {brief(c.after)}" for c in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"• …and {len(changes) - limit} more fields")
    return lines
