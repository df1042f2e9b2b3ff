"""Render Answers to Block Kit, always inside Slack's limits, with cluster data escaped.

Everything that comes from the cluster (names, messages, log lines) is untrusted text: `&`, `<` and
`>` are entity-encoded so it cannot form mentions (`<!here>`, `<@U…>`) or links, and the mrkdwn
formatting characters get a zero-width space so a pod name like `*prod*` cannot turn bold.
Long output is trimmed with a "…N more lines" note and, when the answer carries the full text as an
attachment, uploaded as a file by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.model import Answer, Button
from bot.text import clip

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTIONS_ELEMENTS = 25
FALLBACK_TEXT = 3000  # chat.update rejects long text; keep the fallback short
ZWSP = "\u200b"

ACTION_RUN = "k8s_run"
ACTION_CONFIRM = "k8s_confirm"
ACTION_CANCEL = "k8s_cancel"


MARKERS = frozenset("*_~`")


def escape_mrkdwn(text: str) -> str:
    """Make untrusted text inert in mrkdwn: no mentions, links or formatting.

    Slack only formats a marker that stands at a word boundary (`*bold*`, not `image_pull`), so a
    zero-width space is put beside boundary markers only; names like `image_pull` stay copyable.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
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


def escape_plain(text: str) -> str:
    """plain_text objects are not parsed as mrkdwn, but `&<>` must still be entity-encoded."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Message:
    """A rendered message: the text fallback, the blocks, and files to upload beside it."""

    text: str
    blocks: list[dict[str, Any]]
    files: list[tuple[str, str]] = field(default_factory=list)
    private: bool = False


def _sections(lines: list[str], *, budget: int) -> tuple[list[Block], int]:
    """Pack escaped lines into section blocks of ≤3000 chars; at most `budget` blocks.

    Returns the blocks and how many lines did not fit.
    """
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for index, full_line in enumerate(lines):
        line = clip(full_line, SECTION_TEXT)
        if chunk and size + len(line) + 1 > SECTION_TEXT:
            if len(blocks) + 1 >= budget:
                blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
                return blocks, len(lines) - index
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
    return blocks, 0


def button_element(button: Button, *, index: int) -> ButtonElement:
    confirm = None
    if button.style == "danger":
        confirm = ConfirmObject(
            title="Are you sure?", text=clip(escape_plain(button.command), 300), confirm="Yes", deny="Cancel"
        )
    return ButtonElement(
        text=clip(button.text, BUTTON_TEXT),
        action_id=f"{ACTION_RUN}:{index}",
        value=clip(button.command, BUTTON_VALUE),
        style=button.style if button.style in ("primary", "danger") else None,
        confirm=confirm,
    )


def render_answer(answer: Answer, *, cluster_name: str | None = None) -> Message:
    """Answer → Message within Block Kit limits."""
    title = answer.title or answer.verb
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=clip(title, HEADER_TEXT)))]
    reserve = 3  # context + actions + trim note
    lines = [escape_mrkdwn(line) for line in answer.lines]
    sections, left_out = _sections(lines, budget=MAX_BLOCKS - len(blocks) - reserve)
    blocks += sections
    files = list(answer.attachments)
    if left_out:
        where = " (full output attached as a file)" if files else ""
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…{left_out} more lines{where}")]))
    confirm = answer.data.get("confirm") if isinstance(answer.data, dict) else None
    elements: list[ButtonElement] = []
    if isinstance(confirm, dict) and confirm.get("command"):
        elements.append(
            ButtonElement(
                text="Confirm",
                action_id=ACTION_CONFIRM,
                value=clip(str(confirm["command"]), BUTTON_VALUE),
                style="primary",
            )
        )
        elements.append(ButtonElement(text="Cancel", action_id=ACTION_CANCEL, value="cancel"))
    for index, button in enumerate(answer.buttons[: ACTIONS_ELEMENTS - len(elements)]):
        elements.append(button_element(button, index=index))
    if elements:
        blocks.append(ActionsBlock(elements=elements))
    if cluster_name:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"cluster `{escape_mrkdwn(cluster_name)}`")]))
    fallback = title + ("\n" + "\n".join(answer.lines) if answer.lines else "")
    return Message(
        text=clip(escape_plain(fallback), FALLBACK_TEXT),
        blocks=[b.to_dict() for b in blocks[:MAX_BLOCKS]],
        files=files,
        private=answer.private,
    )


def render_text(answer: Answer) -> str:
    """The terminal rendering of an answer (what `k8sbot ask` prints without --json)."""
    out = [answer.title] if answer.title else []
    out += list(answer.lines)
    confirm = answer.data.get("confirm") if isinstance(answer.data, dict) else None
    if isinstance(confirm, dict):
        out.append("")
        out.append(str(confirm.get("text", "")))
    for button in answer.buttons:
        out.append(f"[{button.text}] /k8s {button.command}")
    return "\n".join(out)


def render_error(message: str, *, usage: str | None = None) -> Message:
    """A private error. Our messages quote input in `code`; `&<>` are escaped so nothing can ping."""
    text = escape_plain(message)
    if usage:
        text += "\n*Usage:* `" + escape_plain(usage).replace("`", "'") + "`"
    return Message(
        text=clip(escape_plain(message), FALLBACK_TEXT),
        blocks=[SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_TEXT))).to_dict()],
        private=True,
    )
