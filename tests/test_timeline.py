"""The timeline model (pure, plain objects in) and its picture: lanes, the culprit, the JSON contract,
and a PNG of the expected size drawn from exactly that data."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from bot.kube.kinds import KINDS
from bot.model import Change, ChangeKind, CulpritChange, FieldChange, ObjectRef
from bot.permissions.engine import needs_for
from bot.timeline.building import (
    LANES,
    MAX_PER_LANE,
    AlertMark,
    Timeline,
    build_timeline,
    describe_in_words,
)
from bot.timeline.drawing import CULPRIT, HEIGHT, WIDTH, render_png
from bot.timeline.pictures import draw

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
REF = ObjectRef("Deployment", "shop", "checkout")
IMAGE = "spec.template.spec.containers[0].image"


@dataclass(frozen=True, slots=True)
class SourcedChange(Change):
    """A change record as the integrations' ingestion writes it: with a `source` (the lane reads it)."""

    source: str = "ci"


def _at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def image_change(minutes_ago: float, before: str, after: str, *, revision: int, actor: str = "alice") -> Change:
    return Change(
        REF,
        NOW - timedelta(minutes=minutes_ago),
        ChangeKind.IMAGE,
        f"image app: {before} → {after}",
        (FieldChange(IMAGE, before, after),),
        actor=actor,
        revision=revision,
        id=revision,
    )


def crashing_pod(name: str, minutes_ago: float) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "status": {
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 4,
                    "lastState": {"terminated": {"finishedAt": _at(minutes_ago), "reason": "Error", "exitCode": 1}},
                }
            ],
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": _at(50)}
            ],
        },
    }


def warning(reason: str, message: str, minutes_ago: float, *, count: int = 1) -> dict[str, Any]:
    return {
        "type": "Warning",
        "reason": reason,
        "message": message,
        "count": count,
        "involvedObject": {"kind": "Pod", "name": "checkout-1"},
        "lastTimestamp": _at(minutes_ago),
    }


def sample(**overrides: Any) -> Timeline:
    culprit = CulpritChange(REF, NOW - timedelta(minutes=55), "alice", 3, IMAGE, "shop/checkout:1.4", "shop/checkout:9")
    arguments: dict[str, Any] = {
        "cluster": "dev",
        "target": REF,
        "start": NOW - timedelta(hours=6),
        "end": NOW,
        "changes": [
            image_change(300, "shop/checkout:1.3", "shop/checkout:1.4", revision=2),
            image_change(55, "shop/checkout:1.4", "shop/checkout:9", revision=3),
            SourcedChange(REF, NOW - timedelta(minutes=57), ChangeKind.SPEC, "deploy pipeline #812", actor="ci-bot"),
        ],
        "pods": [crashing_pod("checkout-1", 10)],
        "events": [warning("BackOff", "Back-off restarting failed container", 5, count=7)],
        "alerts": [AlertMark("checkout is crash looping", NOW - timedelta(minutes=40))],
        "culprit": culprit,
    }
    arguments.update(overrides)
    return build_timeline(**arguments)


def test_every_lane_from_plain_objects_and_the_culprit_marked() -> None:
    timeline = sample()
    lanes = {e.lane for e in timeline.events}
    assert lanes == set(LANES)
    [culprit] = [e for e in timeline.events if e.culprit]
    assert culprit.lane == "changes" and culprit.actor == "alice"
    assert culprit.text == f"Deployment/checkout: {IMAGE}: shop/checkout:1.4 → shop/checkout:9"
    assert culprit.at == NOW - timedelta(minutes=55)
    [external] = timeline.lane("external")
    assert external.text.startswith("ci: ") and external.actor == "ci-bot"
    pods = [e.text for e in timeline.lane("pods")]
    assert any("restarted (Error, exit 1; 4 restarts)" in t for t in pods)
    assert any("not ready (ContainersNotReady)" in t for t in pods)
    assert timeline.lane("warnings")[0].text.startswith("BackOff on Pod/checkout-1 (×7)")
    assert [e.text for e in timeline.lane("alerts")] == ["alert fired: checkout is crash looping"]
    assert [e.at for e in timeline.events] == sorted(e.at for e in timeline.events)


def test_culprit_known_only_from_the_revision_history_is_added_to_the_changes_lane() -> None:
    timeline = sample(changes=[])
    [culprit] = timeline.lane("changes")
    assert culprit.culprit
    assert culprit.text == f"Deployment/checkout: {IMAGE}: shop/checkout:1.4 → shop/checkout:9"


def test_events_outside_the_window_are_left_out_and_busy_lanes_keep_their_newest() -> None:
    pods = [crashing_pod(f"checkout-{i}", i * 0.5) for i in range(MAX_PER_LANE + 50)]
    old = image_change(60 * 7, "a", "b", revision=1)  # before the 6 h window
    timeline = sample(pods=pods, changes=[old])
    assert old.at not in [e.at for e in timeline.events]
    restarts = [e for e in timeline.lane("pods") if "restarted" in e.text]
    assert len(timeline.lane("pods")) == MAX_PER_LANE
    assert timeline.left_out == 2 * len(pods) - MAX_PER_LANE  # each pod: a restart and a readiness change
    assert max(e.at for e in restarts) == NOW


def test_json_contract_and_round_trip() -> None:
    timeline = sample()
    data = timeline.to_json()
    assert set(data) == {"cluster", "target", "from", "to", "events"}
    assert data["target"] == {"kind": "Deployment", "namespace": "shop", "name": "checkout"}
    assert data["from"] == (NOW - timedelta(hours=6)).isoformat() and data["to"] == NOW.isoformat()
    assert all(set(e) == {"at", "lane", "text", "actor", "culprit"} for e in data["events"])
    assert sum(e["culprit"] for e in data["events"]) == 1
    again = Timeline.from_json(data)
    assert again.to_json() == data


def test_alt_text_says_what_the_picture_shows() -> None:
    words = describe_in_words(sample())
    assert "Timeline of Deployment checkout in shop" in words
    assert "2 changes" in words and "1 alerts" in words and "1 external" in words
    assert f"Likely culprit, highlighted: Deployment/checkout: {IMAGE}: shop/checkout:1.4 → shop/checkout:9" in words
    assert "by alice at 09:05 UTC" in words
    assert len(describe_in_words(sample(), limit=80)) == 80


def _pixels(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def _has_color(image: Image.Image, hex_color: str) -> bool:
    wanted = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return wanted in {color for _, color in image.getcolors(image.width * image.height) or []}


def test_png_of_the_expected_size_with_the_culprit_drawn_from_the_data() -> None:
    timeline = sample()
    png = render_png(timeline)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = _pixels(png)
    assert image.size == (WIDTH, HEIGHT)
    assert _has_color(image, CULPRIT)  # the highlighted culprit
    # The same data without a culprit draws no culprit colour: the highlight comes from the data.
    plain = Timeline.from_json(
        {**timeline.to_json(), "events": [{**e, "culprit": False} for e in timeline.to_json()["events"]]}
    )
    assert not _has_color(_pixels(render_png(plain)), CULPRIT)
    # What the Slack edge and `ask --png` draw is the picture of the JSON answer.
    assert _pixels(draw("timeline", timeline.to_json())).size == (WIDTH, HEIGHT)


def test_text_that_looks_like_mathtext_or_has_no_glyph_still_draws() -> None:
    hostile = image_change(30, "$\\frac{1", "}{0}$ \x00 🔥 <!here>", revision=5, actor="$\\undefined$ *bob*")
    culprit = CulpritChange(REF, hostile.at, hostile.actor, 5, IMAGE, "$\\frac{1", "}{0}$")
    png = render_png(sample(changes=[hostile], culprit=culprit))
    assert _pixels(png).size == (WIDTH, HEIGHT)


def test_an_empty_timeline_draws_and_says_nothing_happened() -> None:
    timeline = sample(changes=[], pods=[], events=[], alerts=[], culprit=None)
    assert timeline.events == ()
    assert "Nothing happened in that time." in describe_in_words(timeline)
    assert _pixels(render_png(timeline)).size == (WIDTH, HEIGHT)


def test_timeline_is_authorized_as_why_is() -> None:
    deployment = KINDS["Deployment"]
    assert needs_for("timeline", deployment) == needs_for("why", deployment)
    assert needs_for("timeline", None) == needs_for("why", None) != ()
