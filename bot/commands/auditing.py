"""The audited run: where a command meets the permission decision and the audit log.

Exactly one audit row per attempt. A mutating verb runs twice: first unconfirmed, when it only plans
and returns a preview whose `data["confirm"]["command"]` is the canonical command with the plan's
pinned parameters and a fresh `--action-id`; then confirmed (the button, or `--yes`), when the action
id is claimed in the audit table BEFORE the change (UNIQUE constraint). A second execution with the
same id finds the claim, changes nothing and answers "already done".
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import replace

from bot.commands.context import VerbContext
from bot.commands.specs import FlagSpec
from bot.errors import K8sBotError, PermissionDenied, UsageError
from bot.model import Answer, Command, Decision
from bot.store.audit import DENIED, DONE, FAILED, RUNNING, AlreadyClaimed, AuditEntry

log = logging.getLogger(__name__)

ACTION_ID = "action-id"
ACTION_ID_FLAG = FlagSpec(ACTION_ID, "str", "set by the confirm button: the same id never runs twice")
_ACTION_ID_RE = re.compile(r"^[a-f0-9]{8,32}$")
Decide = Callable[[VerbContext, Command], Decision]


def new_action_id() -> str:
    return secrets.token_hex(8)


def with_flags(command: Command, **flags: str) -> Command:
    """The command with flags set (names with '-' passed as `to_revision`), canonical order kept."""
    merged = dict(command.flags)
    merged.update({name.replace("_", "-"): value for name, value in flags.items()})
    return replace(command, flags=tuple(sorted(merged.items())))


def run_audited(ctx: VerbContext, command: Command, *, decide: Decide | None) -> Answer:
    """Authorize, run and audit one command: exactly one audit row per attempt.

    `decide` is the gate's authorize (None: terminal use with the kubeconfig's identity). Denials
    raise PermissionDenied after their row is written. Unconfirmed previews of actions that succeed
    write no row (nothing was attempted yet); `help` is never recorded.
    """
    registry = ctx.services.verbs
    func = registry.funcs[command.verb]
    if command.verb == "help":
        return func(ctx, command)
    audit = ctx.services.audit

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
    if registry.specs[command.verb].mutating and ctx.confirmed:
        return _run_confirmed(ctx, command, decision)
    try:
        answer = func(ctx, command)
    except Exception as e:
        record(decision, FAILED, _failure(e))
        raise
    if not (registry.specs[command.verb].mutating and answer.ok):
        record(decision, DONE if answer.ok else FAILED, answer.title)
    return answer


def _run_confirmed(ctx: VerbContext, command: Command, decision: Decision) -> Answer:
    audit = ctx.services.audit
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
        answer = ctx.services.verbs.funcs[command.verb](ctx, command)
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
