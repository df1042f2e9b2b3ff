"""The alert message: Block Kit (slack_sdk models) within Slack's limits, from an alert's details.

The details dict is stored with the alert, so the message can be rendered again for an update or
the resolution after a restart. Everything from the cluster goes through `escape_mrkdwn`/`clip`.
Buttons carry canonical command text (`bot.slack.blocks.button_element`), so a click re-enters the
command path for the person who clicked: their permissions, confirmation and audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.model import Button
from bot.slack.blocks import (
    FALLBACK_TEXT,
    HEADER_TEXT,
    SECTION_TEXT,
    button_element,
    escape_mrkdwn,
    escape_plain,
)
from bot.text import clip

MAX_EVIDENCE = 6
VALUE_CHARS = 120


def _when(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return iso


def _value(value: Any) -> str:
    text = "(none)" if value is None else str(value)
    return "`" + escape_mrkdwn(clip(text, VALUE_CHARS)).replace("`", "'") + "`"


def buttons(details: dict[str, Any]) -> list[Button]:
    """Rollback (when a new revision preceded the failure), Logs, Why, Silence 1h."""
    ref = details["workload"]
    ns, kind, name = ref["namespace"], str(ref["kind"]).lower(), ref["name"]
    where = f" -n {ns}" if ns else ""
    found: list[Button] = []
    if details.get("rollback_to") and ref["kind"] == "Deployment":
        found.append(Button("Rollback", f"rollback {name}{where} --to-revision {details['rollback_to']}", "danger"))
    if details.get("pod") and ns:
        found.append(Button("Logs", f"logs pod/{details['pod']}{where}"))
    found.append(Button("Why", f"why {kind}/{name}{where}"))
    found.append(Button("Silence 1h", f"silence {kind}/{name}{where} --for 1h --category {details['category']}"))
    return found


def headline(details: dict[str, Any]) -> str:
    ref = details["workload"]
    where = f"{ref['namespace']}/" if ref.get("namespace") else ""
    state = details.get("state", "firing")
    mark = {"firing": "🔴", "resolved": "✅"}.get(state, "🟠")
    prefix = "Resolved: " if state == "resolved" else ""
    return f"{mark} {prefix}{ref['kind']} {where}{ref['name']}: {details['what']}"


def render_alert(details: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for an alert in its current state."""
    state = details.get("state", "firing")
    title = headline(details)
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=clip(title, HEADER_TEXT)))]
    facts = [
        f"*What:* {escape_mrkdwn(details['what'])}",
        f"*Since:* {_when(details.get('since'))}",
        f"*Cluster:* {escape_mrkdwn(details['cluster'])}"
        + (
            f" · namespace {escape_mrkdwn(details['workload']['namespace'])}"
            if details["workload"].get("namespace")
            else ""
        ),
    ]
    if details.get("pods_total"):
        facts.append(f"*Affected:* {details.get('affected', 0)} of {details['pods_total']} pods")
    if state == "resolved":
        facts.insert(0, f"*Resolved* at {_when(details.get('resolved_at'))} after {details.get('duration', '?')}")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip("\n".join(facts), SECTION_TEXT))))
    change = details.get("culprit")
    if change:
        who = f" by {escape_mrkdwn(change['actor'])}" if change.get("actor") else ""
        revision = f" (revision {change['revision']})" if change.get("revision") else ""
        text = (
            f"*Likely cause:* `{escape_mrkdwn(change['path'])}` changed {_value(change.get('before'))} → "
            f"{_value(change.get('after'))}{who} at {_when(change.get('at'))}{revision}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT))))
    evidence = [f"• {escape_mrkdwn(clip(line, 400))}" for line in details.get("evidence", [])[:MAX_EVIDENCE]]
    if evidence:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=clip("*Evidence:*\n" + "\n".join(evidence), SECTION_TEXT)))
        )
    for note in details.get("notes", [])[-3:]:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(escape_mrkdwn(note), SECTION_TEXT))]))
    if state != "resolved":
        elements = [button_element(b, index=i) for i, b in enumerate(buttons(details))]
        blocks.append(ActionsBlock(block_id=f"alert-{details.get('id', 0)}", elements=elements))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"alert {details.get('id', '?')} · {escape_mrkdwn(details['category'])} · k8sbot"
                )
            ]
        )
    )
    fallback = title + (f" — likely cause: {change['path']} → {change.get('after')}" if change else "")
    return clip(escape_plain(fallback), FALLBACK_TEXT), [b.to_dict() for b in blocks]


def render_repeat(
    details: dict[str, Any], *, new_subjects: list[str], evidence: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    text = f"Still failing: {len(new_subjects)} more affected ({', '.join(new_subjects[:5])})"
    lines = [escape_mrkdwn(text)] + [f"• {escape_mrkdwn(clip(e, 400))}" for e in evidence[:3]]
    block = SectionBlock(text=MarkdownTextObject(text=clip("\n".join(lines), SECTION_TEXT)))
    return clip(escape_plain(text), FALLBACK_TEXT), [block.to_dict()]


def render_note(text: str) -> tuple[str, list[dict[str, Any]]]:
    block = SectionBlock(text=MarkdownTextObject(text=clip(escape_mrkdwn(text), SECTION_TEXT)))
    return clip(escape_plain(text), FALLBACK_TEXT), [block.to_dict()]


class BlockKitAlerts:
    """The alert engine's `AlertMessages`: alerts, repeats and notes as Block Kit."""

    def alert(self, details: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        return render_alert(details)

    def repeat(
        self, details: dict[str, Any], *, new_subjects: list[str], evidence: list[str]
    ) -> tuple[str, list[dict[str, Any]]]:
        return render_repeat(details, new_subjects=new_subjects, evidence=evidence)

    def note(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        return render_note(text)
