"""`help [verb]`: usage and examples for every verb, generated from the registry."""

from __future__ import annotations

from bot.commands.context import VerbContext, VerbTable
from bot.commands.registry import verb
from bot.commands.specs import VerbSpec
from bot.errors import UsageError
from bot.model import Answer, Command


def _verb_lines(spec: VerbSpec, *, detailed: bool) -> list[str]:
    lines = [f"/k8s {spec.usage}  —  {spec.summary}"]
    if detailed:
        for flag in spec.flags:
            short = f"-{flag.short}, " if flag.short else ""
            value = "" if flag.kind == "bool" else f" <{flag.kind}>"
            lines.append(f"    {short}--{flag.name}{value}: {flag.help}")
    for example in spec.examples:
        lines.append(f"    e.g. /k8s {example}")
    return lines


@verb(
    VerbSpec(
        name="help",
        summary="what I can do, with examples",
        usage="help [verb]",
        examples=("help", "help why"),
        target="optional",
    )
)
def help_verb(ctx: VerbContext, command: Command) -> Answer:
    placement = ctx.services.placement
    return help_answer(ctx.services.verbs, command, clusters=placement.clusters or (placement.cluster_name,))


def help_answer(verbs: VerbTable, command: Command, *, clusters: tuple[str, ...] = ()) -> Answer:
    """The answer to `help [verb]`: a pure function of the verb table and the clusters' names (no
    cluster, store or Slack), so `k8sbot ask help` can answer it without building the rest of the bot."""
    if command.target:
        spec = verbs.specs.get(command.target)
        if spec is None:
            raise UsageError(f"There is no verb `{command.target}`. Try `/k8s help`.")
        lines = _verb_lines(spec, detailed=True)
        lines.append("    --cluster <name>: the cluster (default: the channel's, or the only one)")
        return Answer(
            verb="help",
            data={"verbs": [_spec_json(spec)]},
            title=f"/k8s {spec.name}",
            lines=tuple(lines),
            private=True,
        )
    lines = ["Usage: /k8s <verb> [target] [-n namespace] [--cluster name] [flags]", ""]
    for name in sorted(verbs.specs):
        lines += _verb_lines(verbs.specs[name], detailed=False)
    lines += ["", "Targets: name, ns/name or kind/name (deploy/checkout). `/k8s help <verb>` shows every option."]
    if len(clusters) > 1:
        lines.append(
            f"Clusters: {', '.join(clusters)}. Every verb takes `--cluster <name>` (default: the channel's cluster)."
        )
    return Answer(
        verb="help",
        data={"verbs": [_spec_json(verbs.specs[n]) for n in sorted(verbs.specs)]},
        title="k8sbot: troubleshoot Kubernetes from Slack",
        lines=tuple(lines),
        private=True,
    )


def _spec_json(spec: VerbSpec) -> dict[str, object]:
    return {
        "name": spec.name,
        "summary": spec.summary,
        "usage": spec.usage,
        "examples": list(spec.examples),
        "flags": [{"name": f.name, "kind": f.kind, "help": f.help} for f in spec.flags],
        "mutating": spec.mutating,
    }
