"""`why` latency and API calls on a busy namespace, beside the manual kubectl commands it replaces.

    .venv/bin/python bench/why_latency.py                          # 50 Deployments x 10 pods, 20 runs
    .venv/bin/python bench/why_latency.py --deployments 20 --replicas 5 --runs 10

A fresh namespace gets N Deployments (each with a Service) of R replicas: N*R pods. The pods carry a
nodeSelector no node has, so they stay Pending with FailedScheduling events: the local cluster's two
fake nodes are shared with other tests, whose scenarios are sized against them, and must not fill
up. For `why` the namespace is what matters (500 pods and their events to list and analyze).

Printed: `why` p50/p95 and API calls per `why` (KubeClient.calls), `status` the same, and the time of
the kubectl commands a person would run for the same answer (get, describe, events, rollout history),
each a process of the real kubectl binary. The namespace is deleted at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from bot.commands.context import VerbContext
from bot.commands.parsing import parse
from bot.diagnosis.engine import diagnose
from bot.kube.client import KubeClient
from bot.model import Subject
from bot.settings import Settings
from k8sbot.wiring import build_core

REPO = Path(__file__).resolve().parent.parent
SELECTOR = {"k8sbot.dev/bench": "no-such-node"}


def sh(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout.strip()


def kubeconfig() -> str:
    return sh(str(REPO / "scripts/local-cluster"), "up").splitlines()[-1]


def kubectl_path() -> str:
    return sh(str(REPO / "scripts/build-cluster-bins")).splitlines()[-1] + "/kubectl"


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


def populate(kube: KubeClient, namespace: str, *, deployments: int, replicas: int, timeout: float) -> int:
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # pods need the default ServiceAccount
        try:
            kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default")
            break
        except Exception:
            time.sleep(0.3)
    for i in range(deployments):
        name = f"app-{i:02d}"
        kube.request(
            "POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", body=deployment(namespace, name, replicas)
        )
        kube.request("POST", f"/api/v1/namespaces/{namespace}/services", body=service(namespace, name))
    want = deployments * replicas
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = len(kube.list(f"/api/v1/namespaces/{namespace}/pods"))
        if count >= want:
            break
        time.sleep(1)
    return count


def timed(func: Any, runs: int) -> tuple[list[float], list[int]]:
    times, calls = [], []
    for _ in range(runs):
        before_calls, start = func.kube.calls, time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
        calls.append(func.kube.calls - before_calls)
    return times, calls


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, times: list[float], calls: list[int]) -> None:
    print(
        f"{label:34s} p50 {pct(times, 0.5) * 1000:7.0f} ms   p95 {pct(times, 0.95) * 1000:7.0f} ms   "
        f"max {max(times) * 1000:7.0f} ms   API calls {statistics.mean(calls):.0f}"
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--kubectl-runs", type=int, default=5)
    parser.add_argument("--populate-timeout", type=float, default=180.0)
    args = parser.parse_args()
    config = kubeconfig()
    kube = KubeClient.from_kubeconfig(config)
    services = build_core(Settings(db=":memory:"), permissions=False, kube=kube).commands
    namespace = f"bench-why-{uuid.uuid4().hex[:6]}"
    try:
        start = time.perf_counter()
        pods = populate(
            kube, namespace, deployments=args.deployments, replicas=args.replicas, timeout=args.populate_timeout
        )
        print(
            f"namespace {namespace}: {args.deployments} Deployments + Services, {pods} pods "
            f"(created in {time.perf_counter() - start:.0f} s)"
        )
        target = f"app-{args.deployments // 2:02d}"

        def why() -> None:
            diagnose(kube, namespace, target, analyzers=services.analyzers)

        why.kube = kube  # type: ignore[attr-defined]
        diagnosis = diagnose(kube, namespace, target, analyzers=services.analyzers)
        top = diagnosis.causes[0]
        print(f"why {target}: {top.category} — {top.title}")
        report(f"why {target} ({args.runs} runs)", *timed(why, args.runs))

        ctx = VerbContext(services=services, subject=Subject(slack_user=None))

        def status() -> None:
            services.verbs.funcs["status"](ctx, parse(f"status -n {namespace}", registry=services.verbs))

        status.kube = kube  # type: ignore[attr-defined]
        report(f"status ({max(3, args.runs // 4)} runs)", *timed(status, max(3, args.runs // 4)))

        manual = manual_kubectl(kubectl_path(), config, namespace, target, args.kubectl_runs)
        print(
            f"{'manual kubectl (9 commands)':34s} p50 {pct(manual, 0.5) * 1000:7.0f} ms   "
            f"p95 {pct(manual, 0.95) * 1000:7.0f} ms   ({args.kubectl_runs} runs, machine time only)"
        )
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{namespace}")


if __name__ == "__main__":
    main()
