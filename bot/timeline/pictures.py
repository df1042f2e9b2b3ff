"""Drawing a picture from its plain data, loading matplotlib on first use.

Importing matplotlib takes about a second; the verbs, the command path and `k8sbot ask` start without
it, and only the code that draws (the Slack edge, `k8sbot ask --png`) calls `draw`.
"""

from __future__ import annotations

from typing import Any

from bot.timeline.building import Timeline


def preload() -> None:
    """Load the drawing code (matplotlib) now, so that the first picture does not wait for it (the
    running bot calls this in a thread of its own at start)."""
    from bot.timeline import drawing  # noqa: PLC0415 - lazy: matplotlib start-up

    del drawing


def draw(kind: str, data: dict[str, Any]) -> bytes:
    """PNG bytes of a picture of `kind` ("timeline") drawn from its plain data (`Timeline.to_json()`)."""
    if kind != "timeline":
        raise ValueError(f"no drawing for pictures of kind {kind!r}")
    from bot.timeline.drawing import render_png  # noqa: PLC0415 - lazy: matplotlib start-up

    return render_png(Timeline.from_json(data))
