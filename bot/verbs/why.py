"""`why <target> [-n ns]`: is it broken, the most likely cause, the evidence, the culprit change, the next step."""

from __future__ import annotations

import logging

from bot.commands.context import VerbContext
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, VerbSpec
from bot.diagnosis.culprits import change_phrase
from bot.diagnosis.engine import investigate
from bot.model import KUBERNETES, Answer, Button, Cause, Command, CulpritChange, Diagnosis, ObjectRef

log = logging.getLogger(__name__)
SHOWN_CAUSES = 3


@verb(
    VerbSpec(
        name="why",
        summary="why a service or workload is unhealthy: cause, evidence, culprit change, next step",
        usage="why <target> [-n namespace]",
        examples=("why checkout -n shop", "why deploy/checkout", "why shop/checkout"),
        flags=(NAMESPACE_FLAG,),
        target="required",
        slow=True,
    )
)
def why_verb(ctx: VerbContext, command: Command) -> Answer:
    namespace = ctx.namespace_for(command)
    found = investigate(
        ctx.kube,
        namespace,
        str(command.target),
        analyzers=ctx.services.analyzers,
        history=ctx.history,  # only kinds the asker may read: no Secret change shown to a viewer
        now=ctx.now,
        redactor=ctx.services.redactor,
        cache=ctx.cache,
    )
    diagnosis, provenance = found.diagnosis, found.provenance
    lines = render_lines(diagnosis)
    if provenance.note and (provenance.behind or provenance.source == "cache"):
        lines.append(f"Note: {provenance.note}")  # behind, or unchecked: the reader should know
    return Answer(
        verb="why",
        data={**diagnosis.to_json(), "source": provenance.to_json()},
        title=diagnosis.summary,
        lines=tuple(lines),
        ok=diagnosis.healthy or bool(diagnosis.causes),
        buttons=buttons_for(diagnosis),
    )


def buttons_for(diagnosis: Diagnosis) -> tuple[Button, ...]:
    """Follow-ups as buttons: the top cause's suggested command (e.g. the rollback), then Logs.
    Each button's value is command text, so a click is checked, confirmed and audited like typing it."""
    if diagnosis.healthy:
        return ()
    target = diagnosis.target
    where = f"-n {target.namespace}" if target.namespace else ""
    buttons: list[Button] = []
    top = diagnosis.causes[0] if diagnosis.causes else None
    if top is not None and top.suggestion is not None and top.suggestion.command:
        command = top.suggestion.command.removeprefix("/k8s ").strip()
        verb = command.split(" ", 1)[0]
        label = {"rollback": "Roll back", "scale": "Scale", "restart": "Restart"}.get(verb)
        if label:
            buttons.append(Button(label, command, style="danger" if verb == "rollback" else None))
    if target.kind in ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod"):
        buttons.append(Button("Logs", f"logs {target.kind.lower()}/{target.name} {where}".strip()))
    # the same story as a picture: changes, restarts, warnings and alerts, the culprit highlighted
    buttons.append(Button("Timeline", f"timeline {target.kind.lower()}/{target.name} {where}".strip()))
    return tuple(buttons)


def render_lines(diagnosis: Diagnosis) -> list[str]:
    """Plain text, most likely cause first (the Slack renderer escapes and lays it out)."""
    if diagnosis.healthy:
        lines = [f"✓ {diagnosis.causes[0].title}" if diagnosis.causes else "✓ healthy"]
        lines += [f"  • {e}" for e in diagnosis.causes[0].evidence[:3]] if diagnosis.causes else []
    else:
        lines = []
        for number, cause in enumerate(diagnosis.causes[:SHOWN_CAUSES], start=1):
            lines += _cause_lines(number, cause, diagnosis.target)
        if len(diagnosis.causes) > SHOWN_CAUSES:
            lines.append(f"(+{len(diagnosis.causes) - SHOWN_CAUSES} less likely causes in the JSON answer)")
    lines += [f"Note: {error}" for error in diagnosis.errors]
    return lines


def external_line(change: CulpritChange) -> str:
    """An external change as the culprit: where it came from, what it said, and its link."""
    about = "the namespace" if change.ref.kind == "Namespace" else f"{change.ref.kind.lower()}/{change.ref.name}"
    when = f" at {change.at:%Y-%m-%d %H:%M} UTC" if change.at else ""
    who = f" by {change.actor}" if change.actor else ""
    value = f"; {change.path}: {change.before!r} → {change.after!r}" if change.path else ""
    link = f" — {change.link}" if change.link else ""
    where = f"from {change.source}, about {about}"
    return f"Changed outside the cluster ({where}){when}{who}: {change.summary}{value}{link}"


def _cause_lines(number: int, cause: Cause, target: ObjectRef) -> list[str]:
    lines = [f"{number}. {cause.title}  [{cause.category}, {cause.confidence:.0%}]"]
    lines += [f"   • {e}" for e in cause.evidence]
    change = cause.change
    if change is not None and change.source != KUBERNETES:
        lines.append("   " + external_line(change))
    elif change is not None:
        detail = ", ".join(
            part
            for part in (
                f"revision {change.revision}" if change.revision else "",
                f"{change.at:%Y-%m-%d %H:%M} UTC" if change.at else "",
                f"by {change.actor}" if change.actor else "",
            )
            if part
        )
        lines.append(f"   Changed: {change_phrase(change, 120, target=target)}" + (f" ({detail})" if detail else ""))
    if cause.suggestion is not None:
        lines.append(f"   Next: {cause.suggestion.text}")
        if cause.suggestion.command:
            lines.append(f"   Run: {cause.suggestion.command}")
    return lines
