"""Render Answers to Block Kit, always inside Slack's limits, with cluster data escaped.

Everything that comes from the cluster or a person (names, messages, log lines, command text) is
untrusted: it is escaped by `bot.slack.escaping` before it is clipped, so it cannot form mentions
(`<!here>`, `<@U…>`) or links and a clip never splits an entity; the mrkdwn formatting characters get
a zero-width space so a pod name like `*prod*` cannot turn bold. Long output is trimmed with a
"…N more lines" note and, when the answer carries the full text as an attachment, uploaded as a file
by the caller. The bot's own short replies (the "Looking into…" placeholder, "Cancelled by …", an
expired button) are rendered here too: nothing reaches Slack as a free string.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
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
from bot.slack.buttons import BUTTON_VALUE, INLINE, ButtonValues
from bot.slack.escaping import (
    ZWSP,
    clip_escaped,
    code,
    escape_mrkdwn,
    escape_plain,
    fit_mrkdwn,
    fit_plain,
    mention,
)
from bot.slack.message import Message, SlackFile
from bot.slack.pictures import picture_file

log = logging.getLogger(__name__)

__all__ = [
    "ACTION_CANCEL",
    "ACTION_CONFIRM",
    "ACTION_RUN",
    "BUTTON_VALUE",
    "ZWSP",
    "AnswerRenderer",
    "Message",
    "escape_mrkdwn",
    "escape_plain",
    "payload",
    "render_answer",
    "render_cancelled",
    "render_error",
    "render_expired_button",
    "render_placeholder",
]

MAX_BLOCKS = 50
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
CONFIRM_TEXT = 300
ACTIONS_ELEMENTS = 25
FALLBACK_TEXT = 3000  # chat.update rejects long text; keep the fallback short

ACTION_RUN = "k8s_run"
ACTION_CONFIRM = "k8s_confirm"
ACTION_CANCEL = "k8s_cancel"


def _sections(lines: list[str], *, budget: int) -> tuple[list[Block], int]:
    """Pack escaped lines into section blocks of ≤3000 chars; at most `budget` blocks.

    Returns the blocks and how many lines did not fit.
    """
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for index, full_line in enumerate(lines):
        line = clip_escaped(full_line, SECTION_TEXT)
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


def button_element(button: Button, *, index: int, values: ButtonValues = INLINE) -> ButtonElement | None:
    """The button for `button`, carrying its command (or the id of the stored command); None when the
    command cannot be carried at all (never a cut command)."""
    value = values.value_for(button.command)
    if value is None:
        return None
    confirm = None
    if button.style == "danger":
        confirm = ConfirmObject(
            title="Are you sure?",
            text=MarkdownTextObject(text=fit_mrkdwn(button.command, CONFIRM_TEXT)),
            confirm="Yes",
            deny="Cancel",
        )
    return ButtonElement(
        text=fit_plain(button.text, BUTTON_TEXT) or "?",
        action_id=f"{ACTION_RUN}:{index}",
        value=value,
        style=button.style if button.style in ("primary", "danger") else None,
        confirm=confirm,
    )


def button_elements(
    buttons: tuple[Button, ...] | list[Button], *, values: ButtonValues, room: int
) -> list[ButtonElement]:
    """Up to `room` button elements; a button whose command cannot be carried is left out."""
    elements: list[ButtonElement] = []
    for index, button in enumerate(buttons):
        if len(elements) >= room:
            break
        element = button_element(button, index=index, values=values)
        if element is not None:
            elements.append(element)
    return elements


def render_answer(answer: Answer, *, cluster_name: str | None = None, buttons: ButtonValues = INLINE) -> Message:
    """Answer → Message within Block Kit limits."""
    title = answer.title or answer.verb
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=fit_plain(title, HEADER_TEXT)))]
    reserve = 3  # context + actions + trim note
    lines = [escape_mrkdwn(line) for line in answer.lines]
    sections, left_out = _sections(lines, budget=MAX_BLOCKS - len(blocks) - reserve)
    blocks += sections
    files = tuple(SlackFile.of(name, content) for name, content in answer.attachments)
    files += _picture_files(answer)
    if left_out:
        where = " (full output attached as a file)" if files else ""
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…{left_out} more lines{where}")]))
    confirm = answer.data.get("confirm") if isinstance(answer.data, dict) else None
    elements: list[ButtonElement] = []
    if isinstance(confirm, dict) and confirm.get("command"):
        value = buttons.value_for(str(confirm["command"]))
        if value is not None:
            elements.append(ButtonElement(text="Confirm", action_id=ACTION_CONFIRM, value=value, style="primary"))
            elements.append(ButtonElement(text="Cancel", action_id=ACTION_CANCEL, value="cancel"))
    elements += button_elements(answer.buttons, values=buttons, room=ACTIONS_ELEMENTS - len(elements))
    if elements:
        blocks.append(ActionsBlock(elements=elements))
    if cluster_name:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="cluster " + code(cluster_name, 200))]))
    fallback = title + ("\n" + "\n".join(answer.lines) if answer.lines else "")
    return Message(
        text=fit_plain(fallback, FALLBACK_TEXT),
        blocks=[b.to_dict() for b in blocks[:MAX_BLOCKS]],
        files=files,
        private=answer.private,
    )


def _picture_files(answer: Answer) -> tuple[SlackFile, ...]:
    """The answer's pictures as image files; one that cannot be drawn is logged and left out (the
    answer's lines say the same in words)."""
    files: list[SlackFile] = []
    for picture in answer.pictures:
        try:
            files.append(picture_file(picture))
        except Exception:  # a picture is an extra: the answer still goes out
            log.exception("drawing the %s picture of a %s answer failed", picture.kind, answer.verb)
    return tuple(files)


@dataclass(frozen=True)
class AnswerRenderer:
    """How the Slack edge renders answers: the cluster's name under each, and how buttons carry commands."""

    cluster_name: str | None
    buttons: ButtonValues

    def answer(self, answer: Answer) -> Message:
        cluster = answer.data.get("cluster")  # the cluster the command ran in (bot.commands.routing)
        return render_answer(
            answer, cluster_name=cluster if isinstance(cluster, str) else self.cluster_name, buttons=self.buttons
        )

    def command_for(self, value: str) -> str | None:
        """The command a clicked button runs (None: its stored command expired or never existed)."""
        return self.buttons.command_for(value)


def render_error(message: str, *, usage: str | None = None) -> Message:
    """A private error. Our messages quote input in `code`; `&<>` are escaped so nothing can ping."""
    text = escape_plain(message)
    if usage:
        text += "\n*Usage:* " + code(usage, 1000)
    return Message(
        text=fit_plain(message, FALLBACK_TEXT),
        blocks=[SectionBlock(text=MarkdownTextObject(text=clip_escaped(text, SECTION_TEXT) or "?")).to_dict()],
        private=True,
    )


def render_placeholder(what: str) -> Message:
    """The private "Looking into …" shown while a slow verb works (replaced or removed later)."""
    return Message(text=fit_plain(f"Looking into {what}…", FALLBACK_TEXT), blocks=[], private=True)


def render_cancelled(user_id: str | None) -> Message:
    """What a cancelled confirmation becomes: who cancelled it, mentioned only by a valid Slack id."""
    who = mention(user_id)
    text = f"Cancelled by {who}. Nothing was changed." if who else "Cancelled. Nothing was changed."
    return Message(text=text, blocks=[], mentions=frozenset({who}) if who else frozenset())


def render_expired_button() -> Message:
    return render_error(
        "This button has expired: the command it stood for is no longer kept. Nothing was run; type the command again."
    )


def payload(message: Message) -> dict[str, Any]:
    """A response_url or ack body for `message` (visibility from the message)."""
    return {**message.to_slack(), "response_type": "ephemeral" if message.private else "in_channel"}
