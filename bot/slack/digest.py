"""The daily digest in Slack: `render_digest` lays out a `bot.digest.content.Digest`, every part escaped
before it is clipped; `SlackDigests` is the `DigestPoster` the digest sender is given in the bot.

A digest covering several clusters shows each cluster under its own header, its sections below it.
Slack takes at most 50 blocks a message: when one block per section would not fit, each cluster's
sections share one block (clipped), and past that the last clusters are counted, not shown."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, PlainTextObject, SectionBlock

from bot.digest.content import ClusterPart, Digest, Section
from bot.slack.blocks import FALLBACK_TEXT, HEADER_TEXT, MAX_BLOCKS, SECTION_TEXT
from bot.slack.client import Poster
from bot.slack.escaping import clip_escaped, code, escape_mrkdwn, fit_mrkdwn, fit_plain
from bot.slack.message import Message

TITLE_CHARS = 300
LINE_CHARS = 500
FOOTER_CHARS = 1000


def render_digest(digest: Digest) -> Message:
    blocks: list[Block] = [_mrkdwn(f"*{fit_mrkdwn(digest.title, TITLE_CHARS)}*")]
    blocks += [_mrkdwn(_section_text(section)) for section in digest.sections]
    blocks += _clusters(digest.clusters, budget=MAX_BLOCKS - 2)  # the title above, the footer below
    footer = f"More: {code('/k8s ' + digest.more, 200)} ({fit_mrkdwn(digest.scope, FOOTER_CHARS)})"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip_escaped(footer, SECTION_TEXT))]))
    return Message(text=fit_plain(digest.text(), FALLBACK_TEXT), blocks=[b.to_dict() for b in blocks])


def _mrkdwn(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip_escaped(text, SECTION_TEXT)))


def _section_text(section: Section) -> str:
    lines = [f"*{fit_mrkdwn(section.title, TITLE_CHARS)}*"]
    lines += [f"• {fit_mrkdwn(line, LINE_CHARS)}" for line in section.lines]
    return "\n".join(lines)


def _heading(part: ClusterPart) -> str:
    return f"*{escape_mrkdwn(part.heading)}*"


def _clusters(parts: Sequence[ClusterPart], *, budget: int) -> list[Block]:
    """Each cluster's heading and sections: a block each when they fit in `budget`, else one block per
    cluster, and of more clusters than blocks, the first ones and a count of the rest."""
    if sum(1 + len(part.sections) for part in parts) <= budget:
        blocks: list[Block] = []
        for part in parts:
            blocks.append(HeaderBlock(text=PlainTextObject(text=fit_plain(part.heading, HEADER_TEXT))))
            blocks += [_mrkdwn(_section_text(section)) for section in part.sections]
        return blocks
    shown = parts if len(parts) <= budget else parts[: budget - 1]
    blocks = [_mrkdwn("\n".join([_heading(part), *map(_section_text, part.sections)])) for part in shown]
    if len(shown) < len(parts):
        blocks.append(_mrkdwn(f"_… and {len(parts) - len(shown)} more clusters_"))
    return blocks


class SlackDigests:
    """Posts each digest to its channel, rendered."""

    def __init__(self, poster: Poster) -> None:
        self.poster = poster

    def __call__(self, digest: Digest) -> None:
        self.poster.post(digest.channel, render_digest(digest))
