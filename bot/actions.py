"""What every action (rollback, scale, restart) shares: confirmation, idempotency, auditing.

The audited path, `run_audited`, is where a command meets the permission gate and the audit log:
exactly one audit row per attempt. A mutating verb runs twice: first unconfirmed, when it only
plans and returns a preview whose `data["confirm"]["command"]` is the canonical command with the
plan's pinned parameters and a fresh `--action-id`; then confirmed (the button, or `--yes`), when the
action id is claimed in the audit table BEFORE the change (UNIQUE constraint). A second execution
with the same id finds the claim, changes nothing and answers "already done".

Verbs describe a change as a `Plan` and hand it to `act`, which previews or applies it.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.commands import REGISTRY, FlagSpec
from bot.context import VerbContext
from bot.errors import Conflict, K8sBotError, NotFound, PermissionDenied, UsageError
from bot.kube.kinds import Kind
from bot.model import Answer, Command, Decision, FieldChange, KubeObject, ObjectRef
from bot.permissions.engine import ACTION_KINDS, target_kind
from bot.store.audit import DENIED, DONE, FAILED, RUNNING, AlreadyClaimed, AuditEntry, audit_of

log = logging.getLogger(__name__)

ACTION_ID = "action-id"
ACTION_ID_FLAG = FlagSpec(ACTION_ID, "str", "set by the confirm button: the same id never runs twice")
_ACTION_ID_RE = re.compile(r"^[a-f0-9]{8,32}$")
Decide = Callable[[VerbContext, Command], Decision]


def field_manager(ctx: VerbContext) -> str:
    """The field manager our writes are recorded under (managedFields): names the person, so the
    change history's "who" says who acted through the bot, not just "k8sbot"."""
    user = ctx.subject.slack_user
    return f"k8sbot/{user}" if user and user.isalnum() else "k8sbot"


def new_action_id() -> str:
    return secrets.token_hex(8)


def with_flags(command: Command, **flags: str) -> Command:
    """The command with flags set (names with '-' passed as `to_revision`), canonical order kept."""
    merged = dict(command.flags)
    merged.update({name.replace("_", "-"): value for name, value in flags.items()})
    return Command(command.verb, command.target, command.namespace, tuple(sorted(merged.items())), command.raw)


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


def nothing_to_do(ref: ObjectRef, reason: str, *, details: tuple[str, ...] = (), data: dict[str, Any]) -> Plan:
    """A plan that changes nothing (already in the wanted state): answered without a confirmation."""
    return Plan(ref, reason, details, (), lambda: Applied(reason), data=data, unchanged=reason)


def act(ctx: VerbContext, command: Command, plan: Plan) -> Answer:
    """Preview the plan (unconfirmed) or apply it (confirmed, with a claimed action id)."""
    base = {"action": command.verb, "target": plan.ref.to_json(), **plan.data}
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
        lines = (*plan.details, "", "Nothing has changed yet: confirm to go ahead.")
        return Answer(command.verb, data, f"Confirm: {plan.summary}", lines, private=True)
    _require_claim(ctx, command)
    applied = plan.apply()
    data = {**base, **applied.data, "outcome": "done", "changes": changes, "action_id": command.flag(ACTION_ID)}
    return Answer(command.verb, data, applied.title, applied.lines)


def _require_claim(ctx: VerbContext, command: Command) -> None:
    # Confirmed actions run only through run_audited, which claims the id first: that is what makes
    # the same click run once. A direct call without a claim is refused rather than run unaudited.
    action_id = command.flag(ACTION_ID)
    entry = audit_of(ctx.services).for_action(str(action_id)) if action_id else None
    if entry is None or entry.outcome != RUNNING:
        raise Conflict("This action was not claimed in the audit log; run it through the command path.")


# -- the audited path ----------------------------------------------------------------------------


def run_audited(ctx: VerbContext, command: Command, *, decide: Decide | None) -> Answer:
    """Authorize, run and audit one command: exactly one audit row per attempt.

    `decide` is the gate's authorize (None: terminal use with the kubeconfig's identity). Denials
    raise PermissionDenied after their row is written. Unconfirmed previews of actions that succeed
    write no row (nothing was attempted yet); `help` is never recorded.
    """
    func = REGISTRY.funcs[command.verb]
    if command.verb == "help":
        return func(ctx, command)
    audit = audit_of(ctx.services)

    def record(decision: Decision, outcome: str, message: str | None = None) -> None:
        audit.record(
            subject=ctx.subject,
            channel=ctx.channel,
            command=command,
            decision=decision,
            outcome=outcome,
            message=message,
        )

    try:
        decision = decide(ctx, command) if decide else Decision(True, "terminal: the kubeconfig's own identity")
    except K8sBotError as e:
        decision = Decision(False, f"could not decide: {e}")
    if not decision.allowed:
        record(decision, DENIED)
        raise PermissionDenied(decision.reason)
    if REGISTRY.specs[command.verb].mutating and ctx.confirmed:
        return _run_confirmed(ctx, command, decision)
    try:
        answer = func(ctx, command)
    except Exception as e:
        record(decision, FAILED, _failure(e))
        raise
    if not (REGISTRY.specs[command.verb].mutating and answer.ok):
        record(decision, DONE if answer.ok else FAILED, answer.title)
    return answer


def _run_confirmed(ctx: VerbContext, command: Command, decision: Decision) -> Answer:
    audit = audit_of(ctx.services)
    action_id = str(command.flag(ACTION_ID) or new_action_id())
    if not _ACTION_ID_RE.match(action_id):
        message = "the action id is not one the bot issued"
        audit.record(
            subject=ctx.subject,
            channel=ctx.channel,
            command=command,
            decision=decision,
            outcome=FAILED,
            message=message,
        )
        raise UsageError(f"{message}; run the command again for a fresh confirmation.")
    command = with_flags(command, action_id=action_id)
    try:
        entry = audit.begin(
            subject=ctx.subject, command=command, channel=ctx.channel, decision=decision, action_id=action_id
        )
    except AlreadyClaimed as claimed:
        return already_done(claimed.entry)
    try:
        answer = REGISTRY.funcs[command.verb](ctx, command)
    except Exception as e:
        audit.finish(entry, outcome=FAILED, message=_failure(e))
        raise
    audit.finish(entry, outcome=DONE if answer.ok else FAILED, message=answer.title)
    return answer


def already_done(entry: AuditEntry) -> Answer:
    """The answer to a repeated click: what the first one did; nothing is changed again."""
    who = entry.slack_user or "the terminal"
    states = {RUNNING: "is already running", DONE: "was already done", FAILED: "already ran and failed"}
    title = f"This action {states.get(entry.outcome, entry.outcome)} ({who}, {entry.at:%H:%M:%S} UTC)"
    lines = [entry.message or ""]
    if entry.outcome == FAILED:
        lines.append("Run the command again to get a fresh confirmation.")
    data = {"action": entry.verb, "outcome": "duplicate", "action_id": entry.action_id, "original": entry.to_json()}
    return Answer(entry.verb, data, title, tuple(line for line in lines if line), private=True)


def _failure(error: Exception) -> str:
    # Only our own errors carry text meant for people; anything else is recorded by type only.
    return str(error) if isinstance(error, K8sBotError) else f"internal error ({type(error).__name__})"


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
    import difflib

    try:
        names = [str((o.get("metadata") or {}).get("name")) for o in ctx.kube.list(kind.path(namespace))]
    except K8sBotError:
        return ()
    return tuple(difflib.get_close_matches(name, names, n=3, cutoff=0.5))


# -- describing changes --------------------------------------------------------------------------


def field_changes(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON values, as dotted paths with list indices."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[FieldChange] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            found += field_changes(before.get(key), after.get(key), sub)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += field_changes(old, new, f"{path}[{index}]")
        return found
    return [] if before == after else [FieldChange(path, before, after)]


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return "unknown age"
    seconds = max(0, int((now - since) / timedelta(seconds=1)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def images(template: dict[str, Any]) -> list[str]:
    containers = (template.get("spec") or {}).get("containers") or []
    return [str(c.get("image")) for c in containers]


def change_lines(changes: list[FieldChange], *, limit: int = 12) -> list[str]:
    lines = [f"• {c.path}: {_short(c.before)} → {_short(c.after)}" for c in changes[:limit]]
    if len(changes) > limit:
        lines.append(f"• …and {len(changes) - limit} more fields")
    return lines


def _short(value: Any) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "…"
