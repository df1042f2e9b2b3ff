"""`why` latency and API calls on a busy namespace: the watch cache, the targeted snapshot, the old
whole-namespace snapshot, and the manual kubectl commands it replaces, side by side.

    .venv/bin/python bench/why_latency.py                          # 500, 2,000 and 5,000 pods, 20 runs each
    .venv/bin/python bench/why_latency.py --pods 500 --runs 10

For each size a fresh namespace gets the target, `app-target` (a Deployment of 10 replicas and its
Service), and filler Deployments (each with a Service) of up to 100 replicas until the namespace
holds that many pods. The pods carry a nodeSelector no node has, so they stay Pending with
FailedScheduling events: the local cluster's two fake nodes are shared with other tests, whose
scenarios are sized against them, and must not fill up. Creating 5,000 pods takes the controllers a
minute or two; the bench sends about 2 requests per 100 pods and one namespace deletion per size.

Printed per size, each `p50 / p95 / max` wall time, API calls per answer (KubeClient.calls) and the
CPU time of the asking thread for the cache rows (the answer's own work; the rest of its wall time
is waiting for the GIL while the same process's watcher threads take in the namespace's events, and
for the machine):
  why, watch cache      the bot's path while it leads: the cache, checked with one get of the target
    the check alone     that one get by itself: the floor of the cache path on this API server
  why, snapshot         `k8sbot ask` and followers: the target's objects listed by label and field selectors
  why, whole namespace  the code before the cache (every kind of the namespace listed), for comparison
  status, cache / API   the namespace's health from the cache, and listed from the API
  manual kubectl        the 9 commands a person would run (get, describe, events, rollout history...),
                        each a process of the real kubectl binary, when one is in the cluster binary cache
and the cache's size (objects, events, encoded bytes). The cache is fed by the bot's own change
tracker and watchers (`k8sbot run`'s), limited to the bench namespace. Each namespace is deleted at
the end of its size, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.changes.tracking import ChangeTracker
from bot.commands.context import VerbContext
from bot.commands.parsing import parse
from bot.diagnosis.engine import explain, investigate
from bot.kube.cache import WatchCache
from bot.kube.client import KubeClient
from bot.kube.resolving import resolve
from bot.kube.snapshot import fetch_snapshot
from bot.model import Subject
from bot.settings import Settings
from k8sbot.wiring import build_core, watched_kinds

REPO = Path(__file__).resolve().parent.parent
SELECTOR = {"k8sbot.dev/bench": "no-such-node"}
TARGET = "app-target"
TARGET_REPLICAS = 10
FILLER_REPLICAS = 100


def kubeconfig() -> str:
    config = os.environ.get("K8SBOT_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if config:
        return config
    return subprocess.run(
        [str(REPO / "scripts/local-cluster"), "up"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]


def kubectl_path() -> str | None:
    found = sorted(glob.glob(os.path.expanduser("~/.cache/k8sbot/bin/k8s-*/kubectl")))
    return found[-1] if found else None


def sh(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout.strip()


def deployment(namespace: str, name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": SELECTOR,
                    "containers": [{"name": "app", "image": f"registry.example.com/{name}:1"}],
                },
            },
        },
    }


def service(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
    }


def count_pods(kube: KubeClient, namespace: str) -> int:
    page = kube.get(f"/api/v1/namespaces/{namespace}/pods", limit=1)
    meta = page.get("metadata") or {}
    return len(page.get("items") or []) + int(meta.get("remainingItemCount") or 0)


def populate(kube: KubeClient, namespace: str, pods: int, timeout: float) -> int:
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # pods need the default ServiceAccount
        try:
            kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
            break
        except Exception:
            time.sleep(0.3)
    sizes = [TARGET_REPLICAS]
    while sum(sizes) < pods:
        sizes.append(min(FILLER_REPLICAS, pods - sum(sizes)))
    for i, replicas in enumerate(sizes):
        name = TARGET if i == 0 else f"filler-{i:02d}"
        kube.request(
            "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body=deployment(namespace, name, replicas)
        )
        kube.request("POST", f"/api/v1/namespaces/{namespace}/services", body=service(namespace, name))
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = count_pods(kube, namespace)
        if count >= pods:
            break
        time.sleep(2)
    return count


def timed(kube: KubeClient, func: Callable[[], object], runs: int) -> tuple[list[float], list[int], list[float]]:
    """Wall time, API calls and the CPU time of this thread (what the answer itself costs, apart from
    waiting for the API server and for the watcher threads of the same process)."""
    times, calls, cpu = [], [], []
    for _ in range(runs):
        before_calls, start, start_cpu = kube.calls, time.perf_counter(), time.thread_time()
        func()
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        calls.append(kube.calls - before_calls)
    return times, calls, cpu


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, times: list[float], calls: list[int] | None = None, cpu: list[float] | None = None) -> None:
    line = (
        f"  {label:28s} p50 {pct(times, 0.5) * 1000:7.1f} ms   p95 {pct(times, 0.95) * 1000:7.1f} ms   "
        f"max {max(times) * 1000:7.1f} ms"
    )
    if calls is not None:
        line += f"   API calls {statistics.mean(calls):3.0f}"
    if cpu is not None:
        line += f"   CPU p50 {pct(cpu, 0.5) * 1000:6.1f} ms"
    print(line, flush=True)


def manual_kubectl(kubectl: str, config: str, namespace: str, name: str, runs: int) -> list[float]:
    """What a person types for the same answer, machine time only (reading time not counted)."""
    base = [kubectl, "--kubeconfig", config, "-n", namespace]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sh(*base, "get", "deploy", name, "-o", "wide")
        sh(*base, "describe", "deploy", name)
        sh(*base, "get", "rs", "-l", f"app={name}")
        pods = sh(*base, "get", "pods", "-l", f"app={name}", "-o", "name").split()
        if pods:
            sh(*base, "describe", pods[0])
            sh(*base, "get", "events", "--field-selector", f"involvedObject.name={pods[0].split('/')[-1]}")
        sh(*base, "rollout", "history", f"deploy/{name}")
        sh(*base, "get", "svc", name, "-o", "yaml")
        sh(*base, "get", "endpointslices", "-l", f"kubernetes.io/service-name={name}")
        times.append(time.perf_counter() - start)
    return times


def run_size(args: argparse.Namespace, config: str, kube: KubeClient, pods: int) -> None:
    namespace = f"bench-why-{uuid.uuid4().hex[:6]}"
    stop = threading.Event()
    watcher: threading.Thread | None = None
    try:
        start = time.perf_counter()
        count = populate(kube, namespace, pods, args.populate_timeout)
        print(f"\n{count} pods in {namespace} (created in {time.perf_counter() - start:.0f} s)", flush=True)
        # a file: the recorder's watcher threads each open their own connection (":memory:" would be one per thread)
        settings = Settings(
            db=str(Path(tempfile.mkdtemp(prefix="bench-why-")) / "k8sbot.db"), watch_namespaces=[namespace]
        )
        core = build_core(settings, permissions=False, kube=kube)
        cache = core.cache
        assert isinstance(cache, WatchCache)
        tracker = ChangeTracker(kube=kube, recorder=core.recorder, kinds=watched_kinds(cache=True), cache=cache)
        watcher = threading.Thread(target=tracker.run, args=(stop,), name="bench-watchers", daemon=True)
        synced = time.perf_counter()
        watcher.start()
        if not cache.wait_ready(300):
            raise SystemExit("the watch cache did not get ready within 300 s")
        stats = cache.stats()
        print(
            f"  watch cache ready in {time.perf_counter() - synced:.1f} s: {stats['objects']} objects, "
            f"{stats['events']} events, {stats['bytes'] / 2**20:.1f} MiB encoded",
            flush=True,
        )
        services = core.commands
        analyzers = services.analyzers

        def why_cache() -> object:
            return investigate(kube, namespace, TARGET, analyzers=analyzers, cache=cache)

        def why_snapshot() -> object:
            return investigate(kube, namespace, TARGET, analyzers=analyzers)

        def why_whole_namespace() -> object:  # the code before the cache: every kind of the namespace listed
            snapshot = fetch_snapshot(kube, namespace)
            return explain(snapshot, resolve(snapshot, TARGET), analyzers=analyzers)

        found = investigate(kube, namespace, TARGET, analyzers=analyzers, cache=cache)
        top = found.diagnosis.causes[0]
        print(f"  why {TARGET}: {top.category}: {top.title} (from the {found.provenance.source})", flush=True)
        same = found.diagnosis == investigate(kube, namespace, TARGET, analyzers=analyzers).diagnosis
        print(f"  cache answer equals snapshot answer: {same}", flush=True)
        report(f"why, watch cache ({args.runs})", *timed(kube, why_cache, args.runs))
        check = f"/apis/apps/v1/namespaces/{namespace}/deployments/{TARGET}"
        report(f"  the check alone ({args.runs})", *timed(kube, lambda: kube.get(check), args.runs)[:2])
        report(f"why, snapshot ({args.runs})", *timed(kube, why_snapshot, args.runs)[:2])
        whole_runs = max(3, args.runs // 4)
        report(f"why, whole namespace ({whole_runs})", *timed(kube, why_whole_namespace, whole_runs)[:2])
        status = parse(f"status -n {namespace}", registry=services.verbs)
        cached_ctx = VerbContext(services=services, subject=Subject(slack_user=None))
        report(
            f"status, cache ({whole_runs})",
            *timed(kube, lambda: services.verbs.funcs["status"](cached_ctx, status), whole_runs),
        )
        services.cache = None
        api_ctx = VerbContext(services=services, subject=Subject(slack_user=None))
        report(
            f"status, API ({whole_runs})",
            *timed(kube, lambda: services.verbs.funcs["status"](api_ctx, status), whole_runs)[:2],
        )
        kubectl = kubectl_path()
        if kubectl and args.kubectl_runs:
            report(
                f"manual kubectl, 9 cmds ({args.kubectl_runs})",
                manual_kubectl(kubectl, config, namespace, TARGET, args.kubectl_runs),
            )
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(15)
        try:
            kube.request("DELETE", f"/api/v1/namespaces/{namespace}")
        except Exception as e:  # already gone, or never created
            print(f"  (could not delete {namespace}: {e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", default="500,2000,5000", help="namespace sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kubectl-runs", type=int, default=3)
    parser.add_argument("--populate-timeout", type=float, default=600.0)
    args = parser.parse_args()
    config = kubeconfig()
    kube = KubeClient.from_kubeconfig(config)
    for pods in (int(p) for p in args.pods.split(",")):
        run_size(args, config, kube, pods)


if __name__ == "__main__":
    main()
