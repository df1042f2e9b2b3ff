"""The alert message: Block Kit (slack_sdk models) within Slack's limits, from an alert's details.

The details dict is stored with the alert, so the message can be rendered again for an update or
the resolution after a restart. Everything from the cluster is escaped before it is clipped
(`bot.slack.escaping`). Buttons carry canonical command text (`bot.slack.blocks.button_element`, or
the id of a stored command when the text is too long), so a click re-enters the command path for the
person who clicked: their permissions, confirmation and audit. `SlackAlertPoster` is the alert
outbox's way out: it posts what `BlockKitAlerts` rendered, as a `Message`, through the `Poster`.
"""

from __future__ import annotations

import logging
import threading
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

from bot.kube.fields import show_value
from bot.model import KUBERNETES, Button, Picture
from bot.slack.blocks import FALLBACK_TEXT, HEADER_TEXT, SECTION_TEXT, button_elements
from bot.slack.buttons import ButtonValues
from bot.slack.client import Poster
from bot.slack.escaping import clip_escaped, code, escape_mrkdwn, fit_mrkdwn, fit_plain
from bot.slack.message import Message
from bot.slack.pictures import picture_file
from bot.timeline.pictures import preload

log = logging.getLogger(__name__)

MAX_EVIDENCE = 6
VALUE_CHARS = 120
MAX_EXTERNAL_SHOWN = 8
EXTERNAL_MORE = "more"
"""The key under which the alert engine counts Alertmanager alerts it did not list (bot.alerting.external.MORE)."""
MARKS = {"firing": "🔴", "resolved": "✅"}


def _when(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return escape_mrkdwn(str(iso)[:40])


def _external(change: dict[str, Any]) -> str:
    """An external change event as the likely cause: its source, summary, who, when, field and link,
    every part escaped (the link is shown as text, which Slack makes clickable, never as a `<…>` token)."""
    ref = change.get("ref") or {}
    about = "the namespace" if ref.get("kind") == "Namespace" else f"{ref.get('kind', '')}/{ref.get('name', '')}"
    who = f" by {escape_mrkdwn(str(change['actor']))}" if change.get("actor") else ""
    text = (
        f"*Likely cause (changed outside the cluster):* {code(str(change.get('source')), 60)} "
        f"{fit_mrkdwn(str(change.get('summary') or ''), 300)} on {escape_mrkdwn(about.lower())}{who} "
        f"at {_when(change.get('at'))}"
    )
    if change.get("path"):
        text += f"; {code(str(change['path']), 200)} {_value(change.get('before'))} → {_value(change.get('after'))}"
    if change.get("link"):
        text += f"\n{fit_mrkdwn(str(change['link']), 600)}"
    return text


def _value(value: Any) -> str:
    return code(show_value(value, VALUE_CHARS), VALUE_CHARS)  # an env source in words, never a dict repr


def buttons(details: dict[str, Any], *, name_cluster: bool = False) -> list[Button]:
    """Rollback (when a new revision preceded the failure), Logs, Why, Silence 1h. With
    `name_cluster` (a bot of several clusters) each names the alert's cluster, so a click acts there
    whatever the channel's default cluster is."""
    ref = details["workload"]
    ns, kind, name = ref["namespace"], str(ref["kind"]).lower(), ref["name"]
    where = f" -n {ns}" if ns else ""
    if name_cluster:
        where += f" --cluster {details['cluster']}"
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
    mark = MARKS.get(state, "🟠")
    prefix = "Resolved: " if state == "resolved" else ""
    return f"{mark} {prefix}{ref['kind']} {where}{ref['name']}: {details['what']}"


def render_alert(
    details: dict[str, Any], *, values: ButtonValues, name_cluster: bool = False
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for an alert in its current state."""
    state = details.get("state", "firing")
    title = headline(details)
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fit_plain(title, HEADER_TEXT)))]
    facts = [
        f"*What:* {escape_mrkdwn(str(details['what']))}",
        f"*Since:* {_when(details.get('since'))}",
        f"*Cluster:* {escape_mrkdwn(str(details['cluster']))}"
        + (
            f" · namespace {escape_mrkdwn(str(details['workload']['namespace']))}"
            if details["workload"].get("namespace")
            else ""
        ),
    ]
    if details.get("pods_total"):
        affected, total = escape_mrkdwn(str(details.get("affected", 0))), escape_mrkdwn(str(details["pods_total"]))
        facts.append(f"*Affected:* {affected} of {total} pods")
    if state == "resolved":
        duration = escape_mrkdwn(str(details.get("duration", "?")))
        facts.insert(0, f"*Resolved* at {_when(details.get('resolved_at'))} after {duration}")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped("\n".join(facts), SECTION_TEXT))))
    change = details.get("culprit")
    if change and change.get("source", KUBERNETES) != KUBERNETES:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped(_external(change), SECTION_TEXT))))
    elif change:
        who = f" by {escape_mrkdwn(str(change['actor']))}" if change.get("actor") else ""
        revision = f" (revision {escape_mrkdwn(str(change['revision']))})" if change.get("revision") else ""
        text = (
            f"*Likely cause:* {fit_mrkdwn(str(change.get('what') or change['path']), 200)} changed "
            f"{_value(change.get('before'))} → "
            f"{_value(change.get('after'))}{who} at {_when(change.get('at'))}{revision}"
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped(text, SECTION_TEXT))))
    if details.get("why"):
        why = f"*Why:* {escape_mrkdwn(str(details['why']))}"
        if details.get("suggestion"):
            why += f"\n*Next:* {escape_mrkdwn(str(details['suggestion']))}"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped(why, SECTION_TEXT))))
    if details.get("external"):
        blocks.append(_external_section(details["external"]))
    evidence = [f"• {fit_mrkdwn(str(line), 400)}" for line in details.get("evidence", [])[:MAX_EVIDENCE]]
    if evidence:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=clip_escaped("*Evidence:*\n" + "\n".join(evidence), SECTION_TEXT))
            )
        )
    for note in details.get("notes", [])[-3:]:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fit_mrkdwn(str(note), SECTION_TEXT) or "-")]))
    if state != "resolved":
        elements = button_elements(buttons(details, name_cluster=name_cluster), values=values, room=25)
        if elements:
            blocks.append(ActionsBlock(block_id=f"alert-{details.get('id', 0)}"[:255], elements=elements))
    alert_id = escape_mrkdwn(str(details.get("id", "?")))
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(text=f"alert {alert_id} · {fit_mrkdwn(str(details['category']), 200)} · k8sbot")
            ]
        )
    )
    if change and change.get("source", KUBERNETES) != KUBERNETES:
        fallback = title + f" — likely cause: {change['source']} change: {change.get('summary')}"
    else:
        fallback = title + (
            f" — likely cause: {change.get('what') or change['path']} → {show_value(change.get('after'))}"
            if change
            else ""
        )
    return fit_plain(fallback, FALLBACK_TEXT), [b.to_dict() for b in blocks]


def _external_lines(known: dict[str, Any]) -> list[str]:
    """Alertmanager's alerts on a message, firing first, each escaped."""
    listed = [e for key, e in known.items() if key != EXTERNAL_MORE]
    ordered = sorted(listed, key=lambda e: (e.get("status") != "firing", str(e.get("name"))))
    lines = []
    for entry in ordered[:MAX_EXTERNAL_SHOWN]:
        mark = MARKS.get(str(entry.get("status")), "🟠")
        severity = f" ({escape_mrkdwn(str(entry['severity']))})" if entry.get("severity") else ""
        summary = f": {escape_mrkdwn(str(entry['summary']))}" if entry.get("summary") else ""
        labels = f" {code(str(entry['labels']), 160)}" if entry.get("labels") else ""
        line = f"{mark} {code(str(entry.get('name')), 120)}{labels}{severity}{summary}"
        if entry.get("url"):
            line += f" · source {code(str(entry['url']), 200)}"
        lines.append(line)
    more = len(ordered) - MAX_EXTERNAL_SHOWN + _unlisted(known)
    if more > 0:
        lines.append(f"… and {more} more")
    return lines


def _unlisted(known: dict[str, Any]) -> int:
    return int((known.get(EXTERNAL_MORE) or {}).get("count", 0))


def _external_section(known: dict[str, Any]) -> SectionBlock:
    listed = [e for key, e in known.items() if key != EXTERNAL_MORE]
    firing = sum(1 for e in listed if e.get("status") == "firing") + _unlisted(known)
    head = f"*Alertmanager:* {firing} firing of {len(listed) + _unlisted(known)}"
    text = "\n".join([head, *(f"• {line}" for line in _external_lines(known))])
    return SectionBlock(text=MarkdownTextObject(text=clip_escaped(text, SECTION_TEXT)))


def render_plain(details: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """An Alertmanager alert that names no workload: its alerts and the namespace's recent changes."""
    state = details.get("state", "firing")
    ref = details["workload"]
    where = f" in {ref['namespace']}" if ref.get("namespace") else ""
    prefix = "Resolved: " if state == "resolved" else ""
    title = f"{MARKS.get(state, '🟠')} {prefix}Alertmanager{where}: {details['what']}"
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fit_plain(title, HEADER_TEXT)))]
    cluster = details.get("cluster_unknown") or details["cluster"]  # unknown: why (bot/alerting/external.py)
    facts = [f"*Since:* {_when(details.get('since'))}", f"*Cluster:* {escape_mrkdwn(str(cluster))}"]
    if state == "resolved":
        duration = escape_mrkdwn(str(details.get("duration", "?")))
        facts.insert(0, f"*Resolved* at {_when(details.get('resolved_at'))} after {duration}")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped("\n".join(facts), SECTION_TEXT))))
    blocks.append(_external_section(details.get("external") or {}))
    changes = [f"• {fit_mrkdwn(str(line), 300)}" for line in details.get("changes") or []]
    if changes:
        text = f"*Recent changes in {escape_mrkdwn(str(ref.get('namespace')))}:*\n" + "\n".join(changes)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped(text, SECTION_TEXT))))
    elif ref.get("namespace") and not details.get("cluster_unknown"):
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text="No recorded change in this namespace in the last 24 h.")])
        )
    for note in details.get("notes", [])[-3:]:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fit_mrkdwn(str(note), SECTION_TEXT) or "-")]))
    alert_id = escape_mrkdwn(str(details.get("id", "?")))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"alert {alert_id} · alertmanager · k8sbot")]))
    return fit_plain(title, FALLBACK_TEXT), [b.to_dict() for b in blocks]


def render_repeat(
    details: dict[str, Any], *, new_subjects: list[str], evidence: list[str]
) -> tuple[str, list[dict[str, Any]]]:
    text = f"Still failing: {len(new_subjects)} more affected ({', '.join(new_subjects[:5])})"
    lines = [escape_mrkdwn(text)] + [f"• {fit_mrkdwn(e, 400)}" for e in evidence[:3]]
    block = SectionBlock(text=MarkdownTextObject(text=clip_escaped("\n".join(lines), SECTION_TEXT)))
    return fit_plain(text, FALLBACK_TEXT), [block.to_dict()]


def render_note(text: str) -> tuple[str, list[dict[str, Any]]]:
    block = SectionBlock(text=MarkdownTextObject(text=fit_mrkdwn(text, SECTION_TEXT) or "-"))
    return fit_plain(text, FALLBACK_TEXT), [block.to_dict()]


class BlockKitAlerts:
    """The alert engine's `AlertMessages`: alerts, repeats and notes as Block Kit. `values` says how
    buttons carry their commands (`bot.slack.buttons`); `name_cluster` (a bot of several clusters):
    the buttons name the alert's cluster."""

    def __init__(self, *, values: ButtonValues, name_cluster: bool = False) -> None:
        self.values = values
        self.name_cluster = name_cluster

    def alert(self, details: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        if details.get("plain"):
            return render_plain(details)
        return render_alert(details, values=self.values, name_cluster=self.name_cluster)

    def repeat(
        self, details: dict[str, Any], *, new_subjects: list[str], evidence: list[str]
    ) -> tuple[str, list[dict[str, Any]]]:
        return render_repeat(details, new_subjects=new_subjects, evidence=evidence)

    def note(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        return render_note(text)


class SlackAlertPoster:
    """The alert sender's `AlertPoster` on the bot's `Poster`.

    The outbox keeps what `BlockKitAlerts` rendered (text and blocks, stored so a restart can send it);
    this hands it back to the `Poster` as a `Message`, whose way out still escapes any token a renderer
    did not compose.
    """

    def __init__(self, poster: Poster) -> None:
        self.poster = poster

    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        return self.poster.post(
            channel, Message(text=text, blocks=blocks or []), thread_ts=thread_ts, metadata=metadata
        )

    def update(self, channel: str, ts: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        self.poster.update(channel, ts, Message(text=text, blocks=blocks or []))

    def find_posted(
        self, channel: str, *, event_type: str, dedupe_key: str, thread_ts: str | None, oldest: float | None
    ) -> str | None:
        return self.poster.find_posted(
            channel, event_type=event_type, dedupe_key=dedupe_key, thread_ts=thread_ts, oldest=oldest
        )

    def warm_up(self) -> None:
        """Load the drawing code in the background: the first alert's picture need not wait for it."""
        threading.Thread(target=preload, name="picture-preload", daemon=True).start()

    def upload_picture(self, channel: str, *, thread_ts: str, picture: Picture) -> bool:
        """Draw the picture (title and alt text escaped) and upload it into the alert's thread."""
        try:
            file = picture_file(picture)
        except Exception:  # a picture is an extra: the alert and its thread stand without it
            log.exception("drawing the %s picture for %s failed", picture.kind, channel)
            return False
        self.poster.upload(channel, file, thread_ts=thread_ts)
        return True

    def has_file(self, channel: str, *, thread_ts: str, filename: str) -> bool:
        return self.poster.find_file(channel, thread_ts=thread_ts, filename=filename)
