"""The one command path: text → Command → Subject → authorize → verb → Answer.

Slack commands, button clicks and `k8sbot ask` all come through `execute`, so they share parsing,
the permission check and auditing. The permission gate is optional: without permissions.yaml
(terminal use with the kubeconfig's own identity) every verb runs as the kubeconfig user, and the
cluster's RBAC still has the last word.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot.actions import run_audited
from bot.commands import REGISTRY, parse
from bot.context import Services, VerbContext
from bot.model import Answer, Command, Decision, Subject
from bot.verbs import load_all

log = logging.getLogger(__name__)


class Gate(Protocol):
    """Decides who may run what (permissions.yaml + SubjectAccessReview); see bot.permissions."""

    def subject_for(self, slack_user: str) -> Subject: ...

    def authorize(self, ctx: VerbContext, command: Command) -> Decision: ...


def execute(
    services: Services,
    *,
    text: str | None = None,
    command: Command | None = None,
    slack_user: str | None = None,
    channel: str | None = None,
    confirmed: bool = False,
) -> Answer:
    """Run one command for one person. Raises bot.errors for anything the person should be told."""
    load_all()
    if command is None:
        command = parse(text or "")
    gate: Gate | None = services.extras.get("gate")
    subject = gate.subject_for(slack_user) if gate is not None and slack_user else Subject(slack_user=slack_user)
    ctx = VerbContext(services=services, subject=subject, channel=channel, confirmed=confirmed)
    decide = gate.authorize if gate is not None and slack_user else None
    log.info("running %r for %s in %s", command.as_text(), slack_user or "terminal", channel or "-")
    # run_audited: the gate's decision, the action id claim and exactly one audit row per attempt.
    return run_audited(ctx, command, decide=decide)


def is_slow(command: Command) -> bool:
    """Whether the Slack edge should show a placeholder while this command runs."""
    load_all()
    return REGISTRY.specs[command.verb].slow
