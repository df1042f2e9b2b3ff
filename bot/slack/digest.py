"""The daily digest in Slack: `render_digest` lays out a `bot.digest.content.Digest`, every part escaped
before it is clipped; `SlackDigests` is the `DigestPoster` the digest sender is given in the bot."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.digest.content import Digest
from bot.slack.blocks import FALLBACK_TEXT, SECTION_TEXT
from bot.slack.client import Poster
from bot.slack.escaping import clip_escaped, code, fit_mrkdwn, fit_plain
from bot.slack.message import Message

TITLE_CHARS = 300
LINE_CHARS = 500
FOOTER_CHARS = 1000


def render_digest(digest: Digest) -> Message:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{fit_mrkdwn(digest.title, TITLE_CHARS)}*"))]
    for section in digest.sections:
        lines = [f"*{fit_mrkdwn(section.title, TITLE_CHARS)}*"]
        lines += [f"• {fit_mrkdwn(line, LINE_CHARS)}" for line in section.lines]
        blocks.append(SectionBlock(text=MarkdownTextObject(text=clip_escaped("\n".join(lines), SECTION_TEXT))))
    footer = f"More: {code('/k8s ' + digest.more, 200)} ({fit_mrkdwn(digest.scope, FOOTER_CHARS)})"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip_escaped(footer, SECTION_TEXT))]))
    return Message(text=fit_plain(digest.text(), FALLBACK_TEXT), blocks=[b.to_dict() for b in blocks])


class SlackDigests:
    """Posts each digest to its channel, rendered."""

    def __init__(self, poster: Poster) -> None:
        self.poster = poster

    def __call__(self, digest: Digest) -> None:
        self.poster.post(digest.channel, render_digest(digest))
