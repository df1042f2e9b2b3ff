"""`can-i <verb> [target] [-n namespace]`: may I do that here — and if not, which lock says no?

Shows both decisions: permissions.yaml's (which rule allows or refuses) and the cluster's RBAC
(the SubjectAccessReview for each API call the verb needs, as the person's Kubernetes identity),
made where the verb would act (`can-i describe node/x` is a cluster-wide question). It only
explains; nothing is run.
"""

from __future__ import annotations

import difflib

from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.errors import UsageError
from bot.model import Answer, Command, Decision

USAGE = "can-i <verb> [target] [-n namespace] [--replicas N]"


@verb(
    VerbSpec(
        name="can-i",
        summary="explain whether you may run a verb here, by permissions.yaml and by the cluster's RBAC",
        usage=USAGE,
        examples=("can-i rollback checkout -n shop", "can-i scale checkout -n shop --replicas 30"),
        flags=(
            NAMESPACE_FLAG,
            FlagSpec("verb", "str", "the verb to check (the first word after can-i)"),
            FlagSpec("replicas", "int", "for scale: the replica count to check against the limit", minimum=0),
        ),
        target="optional",
        leading="verb",
        target_is_object=False,
    )
)
def can_i_verb(ctx: VerbContext, command: Command) -> Answer:
    inner = checked_command(command, known=ctx.services.verbs.names())
    engine = ctx.services.permissions
    if engine is None:
        reason = "no permissions.yaml is loaded: commands run with the kubeconfig's own identity"
        data = {
            "verb": inner.verb,
            "allowed": True,
            "reason": reason,
            "cluster": ctx.services.placement.cluster_name,
            "file": None,
            "limit": None,
            "rbac": None,
        }
        return Answer("can-i", data, f"Yes: {inner.verb} — {reason}", private=True)
    # The same question the command path would ask: where the verb acts, as an action or a read.
    action = ctx.services.verbs.specs[inner.verb].is_action
    explanation = engine.explain(ctx.subject, inner, ctx.acted_namespace(inner), action=action)
    decision = explanation.decision
    what = " ".join(part for part in (inner.verb, inner.target) if part)
    where = f" in {explanation.namespace}" if explanation.namespace else ""
    title = f"{'Yes' if decision.allowed else 'No'}: you {'may' if decision.allowed else 'may not'} {what}{where}"
    lines = [
        _line("permissions.yaml", explanation.file),
        _line("limits", explanation.limit),
        _line("cluster RBAC", explanation.cluster, missing=_cluster_missing(explanation.file, explanation.limit)),
    ]
    if ctx.subject.k8s_user:
        groups = ", ".join(ctx.subject.k8s_groups) or "no groups"
        lines.append(f"You act in the cluster as {ctx.subject.k8s_user} ({groups}).")
    data = {"verb": inner.verb, "target": inner.target, **explanation.to_json()}
    return Answer("can-i", data, title, tuple(line for line in lines if line), private=True)


def checked_command(command: Command, *, known: frozenset[str]) -> Command:
    """The command being asked about, from can-i's own flags (`known`: the verbs the bot has)."""
    name = command.flag("verb")
    if not name:
        raise UsageError("Which verb? e.g. `/k8s can-i rollback checkout -n shop`.", usage=USAGE)
    verbs = sorted(known - {"help"})
    if name not in verbs:
        close = difflib.get_close_matches(str(name), verbs, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else f" Verbs: {', '.join(verbs)}."
        raise UsageError(f"`{str(name)[:40]}` is not a verb.{hint}", usage=USAGE)
    flags = (("replicas", command.flag("replicas")),) if command.flag("replicas") is not None else ()
    return Command(
        verb=str(name), target=command.target, namespace=command.namespace, flags=flags, cluster=command.cluster
    )


def _line(lock: str, decision: Decision | None, *, missing: str = "") -> str:
    if decision is None:
        return f"– {lock}: {missing}" if missing else ""
    return f"{'✓' if decision.allowed else '✗'} {lock}: {decision.reason}"


def _cluster_missing(file: Decision, limit: Decision | None) -> str:
    if not file.allowed or (limit is not None and not limit.allowed):
        return "not asked (permissions.yaml already says no)"
    return "not asked: you map to no Kubernetes identity, so the bot uses its own (read-only) one"
