"""Alert latency and memory: pod status change in the API server → chat.postMessage at the emulator.

    .venv/bin/python bench/alert_latency.py [--pods 5000] [--changes 40] [--interval 0.5]

Fills a namespace of the local kwok cluster with `--pods` running pods (Deployments of 100, on extra
fake nodes added for the run), starts the alert engine against the Slack emulator (settle 0), then
makes `--changes` bare pods fail one at a time (a status patch to ImagePullBackOff, as a kubelet
would write it) and measures, for each, the time from the patch being accepted to the alert's
chat.postMessage reaching the emulator. Prints p50/p99/max and the process RSS. Cleans up after.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.alerting.engine import ALERT_KINDS, AlertEngine, AlertSettings  # noqa: E402
from bot.alerting.grouping import Timing  # noqa: E402
from bot.changes.recording import DEFAULT_KINDS, ChangeRecorder, NamespaceFilter  # noqa: E402
from bot.diagnosis.analyzers import AnalyzerRegistry  # noqa: E402
from bot.errors import K8sBotError  # noqa: E402
from bot.kube.client import KubeClient  # noqa: E402
from bot.kube.watching import Watchers  # noqa: E402
from bot.slack.alerts import BlockKitAlerts, SlackAlertPoster  # noqa: E402
from bot.slack.buttons import StoredButtonValues  # noqa: E402
from bot.slack.client import ChannelRateLimiter, Poster, make_web_client  # noqa: E402
from bot.store.alerts import AlertStore  # noqa: E402
from bot.store.buttons import ButtonCommands  # noqa: E402
from bot.store.changes import ChangeStore  # noqa: E402
from bot.store.database import Database  # noqa: E402
from bot.store.events import EventStore  # noqa: E402
from bot.store.outbox import Outbox  # noqa: E402
from slack_emulator import SlackEmulator  # noqa: E402

CHANNEL = "C0BENCH"
PER_DEPLOYMENT = 100
PODS_PER_NODE = 1000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def node(name: str) -> dict[str, Any]:
    capacity = {"cpu": "1000", "memory": "4000Gi", "pods": str(PODS_PER_NODE)}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {"type": "kwok", "k8sbot.dev/bench": "true"},
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


def deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]},
            },
        },
    }


def bare_pod(ns: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/victim:1"}]},
    }


def failing_status(pod: dict[str, Any]) -> dict[str, Any]:
    waiting = {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}
    return {
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": False,
                    "restartCount": 0,
                    "image": "registry.example.com/victim:1",
                    "imageID": "",
                    "state": {"waiting": waiting},
                }
            ],
        }
    }


def wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def running(kube: KubeClient, ns: str) -> int:
    items = kube.list(f"/api/v1/namespaces/{ns}/pods", fieldSelector="status.phase=Running")
    return len(items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    kubeconfig = (
        subprocess.run([str(REPO / "scripts/local-cluster"), "up"], capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    kube = KubeClient.from_kubeconfig(kubeconfig)
    ns = f"bench-alerts-{uuid.uuid4().hex[:5]}"
    nodes = [f"bench-node-{i}" for i in range(args.pods // PODS_PER_NODE + 1)]
    rss_before = rss_mb()
    try:
        for name in nodes:
            kube.request("POST", "/api/v1/nodes", body=node(name))
        kube.request(
            "POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        )
        wait(lambda: _has_sa(kube, ns), 30, "the default ServiceAccount")
        left, index = args.pods, 0
        while left > 0:
            size = min(PER_DEPLOYMENT, left)
            body = deployment(ns, f"app-{index}", size)
            kube.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body=body)
            left, index = left - size, index + 1
        started = time.monotonic()
        wait(lambda: running(kube, ns) >= args.pods, 900, f"{args.pods} running pods")
        print(f"{args.pods} pods running after {time.monotonic() - started:.0f}s", flush=True)
        victims = [f"victim-{i}" for i in range(args.changes)]
        for name in victims:
            kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body=bare_pod(ns, name))
        wait(lambda: running(kube, ns) >= args.pods + args.changes, 300, "the victim pods running")
        measure(kube, ns, victims, args, rss_before)
    finally:
        _delete(kube, f"/api/v1/namespaces/{ns}")
        for name in nodes:
            _delete(kube, f"/api/v1/nodes/{name}")


def measure(kube: KubeClient, ns: str, victims: list[str], args: argparse.Namespace, rss_before: float) -> None:
    with SlackEmulator() as emu:
        emu.add_channel(CHANNEL, "bench", members=[emu.workspace.bot_user_id])
        db = Database(Path(f"/tmp/{ns}.db"))
        recorder = ChangeRecorder(ChangeStore(db), EventStore(db), namespaces=NamespaceFilter(include=(ns,)))
        watchers = Watchers(kube, recorder, kinds=(*DEFAULT_KINDS, *ALERT_KINDS), watch_seconds=120)
        poster = SlackAlertPoster(
            Poster(
                make_web_client(token=emu.bot_token, base_url=emu.api_url),
                limiter=ChannelRateLimiter(rate=1000, burst=1000),
            )
        )  # measure the engine, not the limiter
        engine = AlertEngine(
            alerts=AlertStore(db),
            outbox=Outbox(db),
            kube=kube,
            recorder=recorder,
            poster=poster,
            messages=BlockKitAlerts(values=StoredButtonValues(ButtonCommands(db))),
            analyzers=AnalyzerRegistry.discover(),
            settings=AlertSettings(
                cluster_name="bench", default_channel=CHANNEL, timing=Timing(settle=0, resolve_after=30)
            ),
        )
        stop = threading.Event()
        sync_started = time.monotonic()
        watchers.start()
        engine.start(stop, synced=watchers.wait_synced)
        watchers.wait_synced(300)
        time.sleep(2)
        print(
            f"engine synced in {time.monotonic() - sync_started:.1f}s; index holds {len(engine.index)} objects; "
            f"RSS {rss_mb():.0f} MB (before the engine: {rss_before:.0f} MB)",
            flush=True,
        )
        changed: dict[str, float] = {}
        for name in victims:
            path = f"/api/v1/namespaces/{ns}/pods/{name}/status"
            pod = kube.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            kube.request("PATCH", path, body=failing_status(pod), content_type="application/strategic-merge-patch+json")
            changed[name] = time.time()
            time.sleep(args.interval)
        wait(lambda: len(_posted(emu, victims)) >= len(victims), 120, "an alert per failing pod")
        posted = _posted(emu, victims)
        latencies = sorted(posted[n] - changed[n] for n in victims)
        q = statistics.quantiles(latencies, n=100)
        p50 = statistics.median(latencies) * 1000
        print(
            f"alert latency over {len(latencies)} pod status changes: p50 {p50:.0f} ms,"
            f" p99 {q[98] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
        print(f"RSS after: {rss_mb():.0f} MB; evaluations {engine.evaluations}; outbox {engine.outbox.counts()}")
        stop.set()
        engine.join()
        watchers.stop()


def _posted(emu: SlackEmulator, victims: list[str]) -> dict[str, float]:
    found: dict[str, float] = {}
    for call in emu.calls("chat.postMessage"):
        text = str(call.args.get("text"))
        for name in victims:
            if f"/{name}:" in text and name not in found:
                found[name] = call.time
    return found


def _has_sa(kube: KubeClient, ns: str) -> bool:
    try:
        kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")
    except K8sBotError:
        return False
    return True


def _delete(kube: KubeClient, path: str) -> None:
    try:
        kube.request("DELETE", path)
    except K8sBotError as e:
        print(f"cleanup: {path}: {e}", file=sys.stderr)


if __name__ == "__main__":
    main()
