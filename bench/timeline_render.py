"""Drawing the timeline picture of a busy workload over 6 hours: the goal is at most 300 ms per picture.

    .venv/bin/python bench/timeline_render.py              # 15 timed runs after one warm-up
    .venv/bin/python bench/timeline_render.py --runs 30 --pods 80

The workload (built in memory, no cluster): 60 recorded changes by 6 people (one the culprit), 12
external changes, P pods (default 60) each with a container restart and a readiness change, 400
Warning events, 8 alerts; spread over the last 6 hours. That is more than the lanes keep
(`MAX_PER_LANE`), so the cap is exercised too.

Printed: the first drawing (it loads matplotlib, once per process), then per timed run the wall and
CPU milliseconds of building the timeline (pure) and of drawing the PNG: min / median / p95 / max,
and the PNG's size. CPU time is less sensitive to other work on a shared machine than wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.model import Change, ChangeKind, CulpritChange, FieldChange, ObjectRef
from bot.timeline.building import AlertMark, Timeline, build_timeline

REF = ObjectRef("Deployment", "shop", "checkout")
IMAGE = "spec.template.spec.containers[0].image"
WINDOW = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class SourcedChange(Change):
    source: str = "ci"


def workload(now: datetime, pods: int) -> dict[str, Any]:
    start = now - WINDOW
    step = WINDOW / 61
    changes: list[Change] = []
    for i in range(60):
        at = start + step * (i + 1)
        changes.append(
            Change(
                REF,
                at,
                ChangeKind.IMAGE,
                f"image app: shop/checkout:1.{i} → shop/checkout:1.{i + 1}",
                (FieldChange(IMAGE, f"shop/checkout:1.{i}", f"shop/checkout:1.{i + 1}"),),
                actor=("alice", "bob", "carol", "dave", "erin", "ci-deployer")[i % 6],
                revision=i + 2,
                id=i + 1,
            )
        )
    changes += [
        SourcedChange(REF, start + WINDOW / 13 * (i + 0.5), ChangeKind.SPEC, f"pipeline #{800 + i}", actor="ci")
        for i in range(12)
    ]
    culprit_change = changes[47]
    culprit = CulpritChange(REF, culprit_change.at, culprit_change.actor, culprit_change.revision, IMAGE, "a", "b")
    pod_objects = []
    for p in range(pods):
        finished = now - WINDOW * (p / pods)
        pod_objects.append(
            {
                "metadata": {"name": f"checkout-7d9f6c-{p:05d}"},
                "status": {
                    "containerStatuses": [
                        {
                            "name": "app",
                            "restartCount": 5,
                            "lastState": {
                                "terminated": {
                                    "finishedAt": finished.isoformat(),
                                    "reason": "OOMKilled",
                                    "exitCode": 137,
                                }
                            },
                        }
                    ],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "ContainersNotReady",
                            "lastTransitionTime": (finished - timedelta(minutes=1)).isoformat(),
                        }
                    ],
                },
            }
        )
    events = [
        {
            "type": "Warning",
            "reason": ("BackOff", "Unhealthy", "FailedScheduling")[i % 3],
            "message": "Back-off restarting failed container app in pod checkout",
            "count": 1 + i % 9,
            "involvedObject": {"kind": "Pod", "name": f"checkout-7d9f6c-{i % max(pods, 1):05d}"},
            "lastTimestamp": (now - WINDOW * (i / 400)).isoformat(),
        }
        for i in range(400)
    ]
    alerts = [
        AlertMark("checkout is crash looping", start + WINDOW / 9 * (i + 1), start + WINDOW / 9 * (i + 1.5))
        for i in range(8)
    ]
    return {"changes": changes, "pods": pod_objects, "events": events, "alerts": alerts, "culprit": culprit}


def build(now: datetime, parts: dict[str, Any]) -> Timeline:
    return build_timeline(cluster="bench", target=REF, start=now - WINDOW, end=now, **parts)


def figures(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{label:<22} min {ordered[0]:7.1f}  median {statistics.median(ordered):7.1f}  "
        f"p95 {p95:7.1f}  max {ordered[-1]:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs (after one warm-up)")
    parser.add_argument("--pods", type=int, default=60, help="pods of the workload (each restarts once)")
    args = parser.parse_args()

    now = datetime.now(UTC)
    parts = workload(now, args.pods)
    start = time.perf_counter()
    from bot.timeline.drawing import render_png  # noqa: PLC0415 - timed: the first use loads matplotlib

    timeline = build(now, parts)
    first = render_png(timeline)
    first_ms = (time.perf_counter() - start) * 1000
    lanes = {lane: len(timeline.lane(lane)) for lane in ("changes", "pods", "warnings", "alerts", "external")}
    print(f"workload: {len(timeline.events)} events drawn ({timeline.left_out} left out by the lane cap): {lanes}")
    print(f"first picture (loads matplotlib): {first_ms:.0f} ms, {len(first) / 1024:.0f} KiB")

    walls: dict[str, list[float]] = {"build (wall)": [], "build (cpu)": [], "draw PNG (wall)": [], "draw PNG (cpu)": []}
    total: list[float] = []
    for _ in range(args.runs):
        wall, cpu = time.perf_counter(), time.process_time()
        timeline = build(now, parts)
        built_wall, built_cpu = time.perf_counter(), time.process_time()
        png = render_png(timeline)
        done_wall, done_cpu = time.perf_counter(), time.process_time()
        walls["build (wall)"].append((built_wall - wall) * 1000)
        walls["build (cpu)"].append((built_cpu - cpu) * 1000)
        walls["draw PNG (wall)"].append((done_wall - built_wall) * 1000)
        walls["draw PNG (cpu)"].append((done_cpu - built_cpu) * 1000)
        total.append((done_wall - wall) * 1000)
    print(f"{args.runs} timed runs, PNG {len(png) / 1024:.0f} KiB:")
    for label, values in walls.items():
        print(figures(label, values))
    print(figures("build + draw (wall)", total))
    median = statistics.median(total)
    print(f"goal: at most 300 ms per picture; median {median:.0f} ms ({'met' if median <= 300 else 'NOT met'})")


if __name__ == "__main__":
    main()
