"""The terminal's rendering of an answer: what `k8sbot ask` prints without `--json`.

Plain text (no Slack escaping: it is not Slack), kept apart from `bot.slack` so that printing an
answer loads no Slack SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.model import Answer


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
    for picture in answer.pictures:
        out.append(f"[picture] {picture.title}: write it with --png FILE")
    return "\n".join(out)
