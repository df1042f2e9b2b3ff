"""What goes out to Slack: a `Message` built by a renderer of this package, never a free string.

Every way out (`Poster.post/update/ephemeral/upload`, the response_url replies and the slash
command's ack in `handlers/`) takes a `Message` and sends `Message.to_slack()`. That last step is a
guard, not the escaping itself: the renderers already escaped every untrusted text, and the guard
escapes any `<…>` token the renderer did not declare in `mentions` (logging it as the bug it is), so a
message assembled by hand still cannot ping a channel.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from bot.slack.escaping import fit_plain, inert

log = logging.getLogger(__name__)

FILE_TITLE = 250
FILENAME_CHARS = 100
ALT_TEXT = 1000
"""Slack refuses an image's alt text over 1000 characters (`alt_txt_too_large`)."""
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
RENDERED_KEYS = frozenset({"text", "title", "initial_comment", "alt_text", "placeholder"})
"""Keys whose string values Slack shows as text (a button's `value` is not shown)."""


@dataclass(frozen=True, slots=True)
class SlackFile:
    """A file to upload beside a message: a safe file name, an escaped title, the content, and for an
    image the escaped words that say what it shows (its alt text)."""

    filename: str
    title: str
    content: str | bytes
    alt_text: str | None = None

    @classmethod
    def of(cls, filename: str, content: str) -> SlackFile:
        return cls(
            filename=safe_filename(filename, "output.txt"), title=fit_plain(filename, FILE_TITLE), content=content
        )

    @classmethod
    def image(cls, filename: str, content: bytes, *, title: str, alt_text: str) -> SlackFile:
        return cls(
            filename=safe_filename(filename, "picture.png"),
            title=fit_plain(title, FILE_TITLE),
            content=content,
            alt_text=fit_plain(alt_text, ALT_TEXT),
        )


def safe_filename(filename: str, default: str) -> str:
    return _UNSAFE_FILENAME.sub("_", filename).strip("._")[:FILENAME_CHARS] or default


@dataclass(frozen=True)
class Message:
    """A rendered message: the fallback text, the blocks, files to upload beside it, and whether only
    the asker sees it. `mentions` are the `<…>` tokens the renderer composed on purpose."""

    text: str
    blocks: list[dict[str, Any]]
    files: tuple[SlackFile, ...] = ()
    private: bool = False
    mentions: frozenset[str] = field(default=frozenset())

    def to_slack(self) -> dict[str, Any]:
        """`text` and `blocks` as sent, with any token the renderer did not compose escaped."""
        text = inert(self.text, self.mentions)
        blocks = _inert_blocks(self.blocks, self.mentions)
        if text != self.text or blocks != self.blocks:
            log.error("a message for Slack held a <…> token its renderer did not compose; it was escaped")
        return {"text": text, "blocks": blocks}


def _inert_blocks(value: Any, allowed: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            key: inert(item, allowed)
            if key in RENDERED_KEYS and isinstance(item, str)
            else _inert_blocks(item, allowed)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_inert_blocks(item, allowed) for item in value]
    return value
