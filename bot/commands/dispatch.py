"""The one command path: text → Command → Subject → authorize → verb → Answer.

Slack commands, button clicks and `k8sbot ask` all come through `execute`, so they share parsing,
the permission check and auditing. Without a permission engine (terminal use without permissions.yaml)
every verb runs as the kubeconfig's own identity, and the cluster's RBAC still has the last word.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.commands.auditing import Decide, run_audited
from bot.commands.context import CommandServices, VerbContext
from bot.commands.routing import ClusterRouter
from bot.errors import ClusterUnavailable
from bot.model import Answer, Command, Decision, Subject

if TYPE_CHECKING:
    from bot.permissions.engine import PermissionEngine

log = logging.getLogger(__name__)


def execute(
    route: ClusterRouter | CommandServices,
    *,
    text: str | None = None,
    command: Command | None = None,
    slack_user: str | None = None,
    channel: str | None = None,
    confirmed: bool = False,
) -> Answer:
    """Run one command for one person in the cluster it is for (`routing`). Raises bot.errors for
    anything the person should be told. Given one cluster's services, runs there."""
    router = route if isinstance(route, ClusterRouter) else ClusterRouter.single(route)
    if command is None:
        command = router.parse(text or "")
    command, services = router.route(command, channel)
    engine = services.permissions if slack_user else None
    subject = engine.subject_for(slack_user) if engine is not None and slack_user else Subject(slack_user=slack_user)
    ctx = VerbContext(services=services, subject=subject, channel=channel, confirmed=confirmed)
    decide = _decider(engine) if engine is not None else None
    log.info("running %r for %s in %s", command.as_text(), slack_user or "terminal", channel or "-")
    # run_audited: the decision, the action id claim and exactly one audit row per attempt.
    try:
        answer = run_audited(ctx, command, decide=decide)
    except ClusterUnavailable as e:
        if not router.several:
            raise
        raise ClusterUnavailable(f"{services.cluster_name}: {e}") from e  # which of them did not answer
    return router.finish(answer, services.cluster_name)


def _decider(engine: PermissionEngine) -> Decide:
    def decide(ctx: VerbContext, command: Command) -> Decision:
        # Decided where the verb acts (a `node/x` target: cluster-wide), as an action or a read.
        action = ctx.services.verbs.specs[command.verb].is_action
        return engine.authorize(ctx.subject, command, ctx.acted_namespace(command), action=action)

    return decide


def is_slow(route: ClusterRouter | CommandServices, command: Command) -> bool:
    """Whether the Slack edge should show a placeholder while this command runs."""
    return route.verbs.specs[command.verb].slow
