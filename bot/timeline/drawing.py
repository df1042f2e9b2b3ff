"""A `Timeline` as a PNG: time on the x axis, one lane per kind of event, the culprit highlighted and
the "now" edge marked. matplotlib's object API with the Agg canvas (no pyplot: no global figure
state, safe from several threads at once).

Sized for Slack's preview: `WIDTH`×`HEIGHT` pixels with text of at least 10 pt, so a preview scaled
to about half still reads. Every text is drawn with `parse_math=False`: a `$` in an actor's name or
an event message is a dollar sign, never mathtext (which could fail to parse and lose the picture).
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.text import clip
from bot.timeline.building import LANE_TITLES, LANES, Timeline, TimelineEvent, title_of

DPI = 100
WIDTH, HEIGHT = 1000, 460
"""Pixels of the PNG (tests check them)."""
LABELLED_CHANGES = 4
"""Changes named beside their marker (the newest); the rest are markers, their words in the alt text."""
LABEL_CHARS = 32
COLORS = {
    "changes": "#1f77b4",
    "pods": "#ff7f0e",
    "warnings": "#c49a00",
    "alerts": "#9467bd",
    "external": "#2ca02c",
}
CULPRIT = "#d62728"
NOW = "#444444"
_UNDRAWABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\U00010000-\U0010ffff]")
"""Control characters and characters outside the Basic Multilingual Plane (emoji): the bundled font has
no glyphs for them."""


TICK_STEPS = tuple(timedelta(minutes=m) for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080))
MAX_TICKS = 8


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    """Round times (UTC) between start and end, at most MAX_TICKS of them, at the smallest step that
    fits: computed here rather than by a date locator (cheaper, and the same on every picture)."""
    span = max(end - start, timedelta(seconds=1))
    step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    seconds = step.total_seconds()
    first = datetime.fromtimestamp(-(-start.timestamp() // seconds) * seconds, UTC)
    ticks: list[datetime] = []
    while first <= end and len(ticks) <= MAX_TICKS:
        ticks.append(first)
        first += step
    return ticks


def _tick_label(at: datetime, ticks: list[datetime]) -> str:
    """HH:MM, with the day when the ticks span more than one."""
    one_day = len({t.date() for t in ticks}) <= 1
    return at.strftime("%H:%M") if one_day else at.strftime("%d %b %H:%M")


def _x(at: datetime) -> float:
    """matplotlib's date number (days since its default epoch, 1970-01-01 UTC) without its per-value
    conversion cost (a busy lane has hundreds of events)."""
    return at.timestamp() / 86400.0


def _short(text: str, target: str) -> str:
    """An event's text as a label: without the target's own name, and the pod template's fields named
    from the container down (the alt text and the JSON keep the whole path)."""
    return text.removeprefix(target).replace("spec.template.spec.", "")


def drawable(text: str) -> str:
    return _UNDRAWABLE.sub("?", text)


def _marker(event: TimelineEvent) -> str:
    if event.lane != "pods":
        return {"changes": "D", "warnings": "^", "alerts": "s", "external": "P"}.get(event.lane, "o")
    if "restarted" in event.text:
        return "X"
    return "v" if "not ready" in event.text else "o"


LEFT, RIGHT = 0.21, 0.97
CHAR_PX = 7.6
"""About how wide one character of a 9 pt label is, in pixels (to keep labels from overlapping)."""
LABEL_LEVELS = (-15, -27)
"""Offsets (points) below the changes lane where labels go; the culprit's label goes above."""


def _label_changes(
    axes: Axes, changes: list[TimelineEvent], *, target: str, row: int, start: float, span: float
) -> None:
    """Name the newest changes under their markers (who: what), on two levels, skipping one that would
    overlap a label already placed; the alt text names them all."""
    width = WIDTH * (RIGHT - LEFT)
    taken: dict[int, list[tuple[float, float]]] = {level: [] for level in LABEL_LEVELS}
    placed = 0
    for event in reversed(changes):
        if placed >= LABELLED_CHANGES:
            break
        who = f"{event.actor}: " if event.actor else ""
        text = drawable(clip(who + _short(event.text, target), LABEL_CHARS))
        where = (_x(event.at) - start) / span
        size = len(text) * CHAR_PX / width
        right = where > 0.7
        interval = (where - size, where) if right else (where, where + size)
        level = next((lv for lv in LABEL_LEVELS if all(interval[1] < a or interval[0] > b for a, b in taken[lv])), None)
        if level is None:
            continue
        taken[level].append(interval)
        placed += 1
        axes.annotate(
            text,
            xy=(_x(event.at), row),
            xytext=(0, level),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=9,
            color="#1b3a57",
            parse_math=False,
            annotation_clip=False,
        )


def render_png(timeline: Timeline) -> bytes:
    """The picture of `timeline`, PNG bytes of exactly WIDTH×HEIGHT pixels."""
    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=LEFT, right=RIGHT, top=0.86, bottom=0.12)
    axes = figure.add_subplot()
    rows = {lane: len(LANES) - 1 - index for index, lane in enumerate(LANES)}
    start, end = _x(timeline.start), _x(timeline.end)
    span = max(end - start, 1e-6)
    axes.set_xlim(start - span * 0.01, end + span * 0.02)
    axes.set_ylim(-0.7, len(LANES) - 0.3)
    axes.set_yticks([rows[lane] for lane in LANES], [LANE_TITLES[lane] for lane in LANES], fontsize=11)
    for lane in LANES:
        axes.axhline(rows[lane], color="#e3e3e3", linewidth=1, zorder=0)
    ticks = _ticks(timeline.start, timeline.end)
    axes.set_xticks([_x(t) for t in ticks], [_tick_label(t, ticks) for t in ticks], fontsize=10)
    axes.grid(axis="x", color="#eeeeee")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)

    for lane in LANES:
        events = [e for e in timeline.lane(lane) if not e.culprit]
        by_marker: dict[str, list[float]] = {}
        for event in events:
            by_marker.setdefault(_marker(event), []).append(_x(event.at))
        for marker, xs in by_marker.items():  # markers of a line: Agg stamps one bitmap per point
            axes.plot(
                xs,
                [rows[lane]] * len(xs),
                linestyle="none",
                marker=marker,
                markersize=7,
                color=COLORS[lane],
                alpha=0.85,
                zorder=3,
            )

    changes = [e for e in timeline.lane("changes") if not e.culprit]
    target = f"{timeline.target.kind}/{timeline.target.name}: "
    _label_changes(axes, changes, target=target, row=rows["changes"], start=start, span=span)

    culprit = timeline.culprit
    if culprit is not None:
        x = _x(culprit.at)
        y = rows[culprit.lane] if culprit.lane in rows else rows["changes"]
        axes.plot(
            [x],
            [y],
            linestyle="none",
            marker="*",
            markersize=22,
            color=CULPRIT,
            markeredgecolor="black",
            markeredgewidth=1.0,
            zorder=5,
        )
        axes.axvline(x, color=CULPRIT, linewidth=1.2, alpha=0.5, zorder=1)
        who = f"{culprit.actor}: " if culprit.actor else ""
        axes.annotate(
            drawable(clip(f"culprit: {who}{_short(culprit.text, target)}", 80)),
            xy=(x, y),
            xytext=(0, 24),
            textcoords="offset points",
            ha="right" if (x - start) / span > 0.55 else "left",
            fontsize=11,
            fontweight="bold",
            color="white",
            bbox={"boxstyle": "round,pad=0.3", "facecolor": CULPRIT, "edgecolor": CULPRIT},
            arrowprops={"arrowstyle": "-", "color": CULPRIT},
            parse_math=False,
            annotation_clip=False,
            zorder=6,
        )

    axes.axvline(end, color=NOW, linestyle="--", linewidth=1.5, zorder=2)
    axes.text(end, len(LANES) - 0.35, " now", color=NOW, fontsize=11, va="bottom", ha="center", parse_math=False)
    hours = (timeline.end - timeline.start) / timedelta(hours=1)
    figure.suptitle(drawable(clip(title_of(timeline), 110)), fontsize=13, x=0.02, ha="left", parse_math=False)
    subtitle = f"cluster {timeline.cluster} · last {hours:.3g}h · {len(timeline.events)} events · times in UTC"
    if timeline.left_out:
        subtitle += f" ({timeline.left_out} older ones left out)"
    figure.text(0.02, 0.905, drawable(clip(subtitle, 140)), fontsize=10, color="#555555", parse_math=False)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()
