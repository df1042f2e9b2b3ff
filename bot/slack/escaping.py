"""The one way untrusted text becomes Slack text: escape first, then clip without splitting an entity.

Slack parses `<…>` in message text (`<!here>`, `<!channel>`, `<@U…>`, `<#C…>`, `<!subteam^…>`,
`<url|label>`), so everything that comes from outside the bot (command text, flag values, object
names, annotations, image names, event messages, log lines, ids echoed back) has `&`, `<` and `>`
entity-encoded (`html.escape` without quotes: exactly the three characters Slack asks for) BEFORE it
is clipped, and `clip_escaped` is the only clip used on the result: it never ends inside an `&…;`
entity (`&lt;!here&` would be the half of one) and never leaves an unclosed `<`. A mention the bot
means (the user who clicked Cancel) is built by `mention` from a validated Slack id, never from text.
"""

from __future__ import annotations

import html
import re

from bot.text import ELLIPSIS

ZWSP = "\u200b"
MARKERS = frozenset("*_~`")
TOKEN_RE = re.compile(r"<[^<>]*>")
"""What Slack reads as a mention, a broadcast, a channel, a user group or a link."""
SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def escape_plain(text: str) -> str:
    """`&`, `<` and `>` as entities: no mention, broadcast or link can form (any text object)."""
    return html.escape(text, quote=False)


def escape_mrkdwn(text: str) -> str:
    """Make untrusted text inert in mrkdwn: no mentions, links or formatting.

    Slack only formats a marker that stands at a word boundary (`*bold*`, not `image_pull`), so a
    zero-width space is put beside boundary markers only; names like `image_pull` stay copyable.
    """
    text = escape_plain(text)
    if not MARKERS.intersection(text):
        return text
    out: list[str] = []
    for index, char in enumerate(text):
        if char in MARKERS:
            before = text[index - 1] if index else " "
            after = text[index + 1] if index + 1 < len(text) else " "
            if char == "`" or not (before.isalnum() and after.isalnum()):
                out.append(ZWSP + char + ZWSP)
                continue
        out.append(char)
    return "".join(out)


def clip_escaped(text: str, limit: int) -> str:
    """Escaped text cut to at most `limit` characters, the last one an ellipsis when anything was cut.

    The cut never falls inside an `&…;` entity, never leaves a `<` without its `>` (a token the
    renderer composed), and never keeps a marker whose closing zero-width space was cut off.
    """
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    angle = head.rfind("<")
    if angle != -1 and ">" not in head[angle:]:
        head = head[:angle]
    if len(head) >= 2 and head[-1] in MARKERS and head[-2] == ZWSP:
        head = head[:-2]
    return head + ELLIPSIS


def fit_mrkdwn(text: str, limit: int) -> str:
    """Untrusted text for mrkdwn, escaped then clipped to `limit`."""
    return clip_escaped(escape_mrkdwn(text), limit)


def fit_plain(text: str, limit: int) -> str:
    """Untrusted text for a plain_text object or a fallback, escaped then clipped to `limit`."""
    return clip_escaped(escape_plain(text), limit)


def code(text: str, limit: int = 300) -> str:
    """Untrusted text shown as inline `code`: escaped, no backtick that would end the span, clipped."""
    inner = clip_escaped(escape_plain(text.replace("`", "'")), max(1, limit - 2))
    return f"`{inner or ' '}`"


def mention(user_id: str | None) -> str | None:
    """`<@U…>` for a well-formed Slack user id, else None: the only way the bot writes a mention."""
    if user_id and SLACK_USER_RE.match(user_id):
        return f"<@{user_id}>"
    return None


def tokens(text: str) -> list[str]:
    """The `<…>` tokens Slack would parse in `text`."""
    return TOKEN_RE.findall(text)


def inert(text: str, allowed: frozenset[str] = frozenset()) -> str:
    """`text` with every `<` and `>` escaped except in the tokens of `allowed` (ones the renderer composed)."""
    if "<" not in text and ">" not in text:
        return text
    out: list[str] = []
    position = 0
    for match in TOKEN_RE.finditer(text):
        if match.group(0) in allowed:
            out.append(_angles(text[position : match.start()]))
            out.append(match.group(0))
            position = match.end()
    out.append(_angles(text[position:]))
    return "".join(out)


def _angles(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")
