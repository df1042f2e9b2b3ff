"""The audit channel: `render_audit_entry` turns an audit row into a message (the command, the reason
and the outcome are untrusted text: escaped, the command shown as code); `AuditChannel` is the
announcer the audit log is given in the bot. A bot serving several clusters names each row's cluster
(`[prod-eu]` after the time); with one cluster the line is as it always was."""

from __future__ import annotations

from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock

from bot.slack.blocks import FALLBACK_TEXT, SECTION_TEXT
from bot.slack.client import Poster
from bot.slack.escaping import clip_escaped, code, escape_mrkdwn, fit_mrkdwn, fit_plain
from bot.slack.message import Message
from bot.store.audit import DENIED, AuditEntry

COMMAND_CHARS = 1500
DETAIL_CHARS = 1000
WHO_CHARS = 300


def render_audit_entry(entry: AuditEntry, *, cluster: bool = False) -> Message:
    """`cluster`: name the entry's cluster (a bot serving several)."""
    who = entry.slack_user or "terminal"
    if entry.k8s_user:
        who += f" as {entry.k8s_user}"
    repeats = f" (+{entry.repeats} repeated click{'s' if entry.repeats > 1 else ''})" if entry.repeats else ""
    detail = (entry.message if entry.outcome != DENIED else entry.reason) or ""
    where = f"[{escape_mrkdwn(entry.cluster)}] " if cluster else ""
    text = (
        f"{entry.at:%Y-%m-%d %H:%M:%S} {where}*{escape_mrkdwn(entry.outcome.upper())}* {fit_mrkdwn(who, WHO_CHARS)}: "
        f"{code(entry.command, COMMAND_CHARS)}{repeats}" + (f" — {fit_mrkdwn(detail, DETAIL_CHARS)}" if detail else "")
    )
    return Message(
        text=fit_plain(entry.line(cluster=cluster), FALLBACK_TEXT),
        blocks=[SectionBlock(text=MarkdownTextObject(text=clip_escaped(text, SECTION_TEXT))).to_dict()],
    )


class AuditChannel:
    """Posts audit entries to one channel, rendered (naming each entry's cluster with `name_cluster`)."""

    def __init__(self, poster: Poster, channel: str, *, name_cluster: bool = False) -> None:
        self.poster = poster
        self.channel = channel
        self.name_cluster = name_cluster

    def __call__(self, entry: AuditEntry) -> None:
        self.poster.post(self.channel, render_audit_entry(entry, cluster=self.name_cluster))
