"""Plain-text rules every layer shares: the one way to clip text, to show a value briefly, and to
say how long something lasted. (Escaping for Slack is the renderer's job: `bot.slack.blocks`.)"""

from __future__ import annotations

from datetime import datetime, timedelta

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, the last one an ellipsis when anything was cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def brief(value: object, limit: int = 80) -> str:
    """A value shown in one line of prose: `(none)` for None, else its text, clipped."""
    return "(none)" if value is None else clip(str(value), limit)


def duration_text(seconds: float) -> str:
    """A duration to the two largest units: `45s`, `3m 20s`, `2h 5m`, `3d 4h`."""
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{hours // 24}d {hours % 24}h"


def age(since: datetime | None, now: datetime) -> str:
    """How old something is, in its largest unit (`5d`, `3h`, `12m`, `40s`), like `kubectl get`."""
    if since is None:
        return "unknown age"
    seconds = max(0, int((now - since) / timedelta(seconds=1)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
