"""One bot, several clusters: RSS and alert latency of `k8sbot run` watching 3 clusters of N pods each,
beside the same bot watching 1 cluster of 3N pods.

    .venv/bin/python bench/multi_cluster.py [--pods 3000] [--clusters 3] [--breaks 48] [--mode both]
    .venv/bin/python bench/multi_cluster.py --pods 300 --breaks 16     # a quick run (a few minutes)

What it does, everything on 127.0.0.1:

1. Starts local kwok clusters `k8sbot-bench-1..C` (scripts/local-cluster, K8SBOT_CLUSTER_NAME) beside
   any running ones, and fills each with N running pods: Deployments of `--per-deployment` replicas in
   namespace `bench`, created by a bounded worker pool (`--workers`), on extra kwok Nodes of 110 pods
   each (the shape of deploy/local-cluster/nodes.yaml), so no pod stays Pending.
2. Runs the bot as a process (`python -m k8sbot run`, Socket Mode, against the Slack emulator) configured
   by a K8SBOT_CONFIG file: with `clusters: [{name, kubeconfig}, ...]` for the multi-cluster run
   (docs/multi-cluster.md), with KUBECONFIG and K8SBOT_CLUSTER_NAME for the one-cluster run. Alerts go to
   one channel per team namespace (`bench-t0..7`), so Slack's per-channel pacing does not queue them.
3. Sync: a canary pod per cluster is broken as the bot starts; the engine evaluates only once its
   watchers have listed everything, so the canaries' alerts mark "synced and evaluated". Then the bot's
   RSS (VmRSS, and the peak VmHWM) and CPU time are read from /proc.
4. Latency: `--breaks` bare running pods, spread over the clusters and team namespaces, are broken one at
   a time every `--interval` seconds by a status patch to CrashLoopBackOff (as a kubelet would write it);
   the time from the patch being sent to the alert's chat.postMessage at the emulator is measured.
   Prints p50/p99/max (settle 0: the time is the bot's own pipeline, watch to Slack).
5. One-cluster run: the other clusters are stopped and the first is filled to 3N pods.

The multi-cluster run needs the bot's `clusters` setting; on a bot without it (`bot.settings.Settings`
has no field `clusters`) that run is reported as unavailable and the one-cluster run still happens.
The bench clusters are stopped at the end (`--keep` leaves them running, for a second look).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.errors import Conflict, K8sBotError, NotFound  # noqa: E402
from bot.kube.client import KubeClient  # noqa: E402
from bot.settings import Settings  # noqa: E402
from slack_emulator import SlackEmulator  # noqa: E402
from slack_emulator.testing import clean_slack_env  # noqa: E402

BULK_NS = "bench"
TEAMS = 8
TEAM_NS = [f"bench-t{i}" for i in range(TEAMS)]
TEAM_CHANNELS = [f"C0BENCHT{i}" for i in range(TEAMS)]
DEFAULT_CHANNEL = "C0BENCH00"
MEMBER = "U0BENCH01"
PODS_PER_NODE = 110  # as deploy/local-cluster/nodes.yaml (and kubelet's default)
ROLE_LABEL = "bench.k8sbot.dev/role"
IMAGE = "registry.example.com/bench/app:1"


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# -- objects ---------------------------------------------------------------------------------------


def node(name: str, index: int) -> dict[str, Any]:
    capacity = {"cpu": "4", "memory": "8Gi", "pods": str(PODS_PER_NODE)}
    cidr = f"10.{100 + index // 256}.{index % 256}.0/24"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "type": "kwok",
                "k8sbot.dev/bench": "true",
            },
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "localhost"}],
            "allocatable": capacity,
            "capacity": capacity,
        },
    }


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": BULK_NS, "labels": {ROLE_LABEL: "bulk"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": IMAGE}]},
            },
        },
    }


def bare_pod(namespace: str, name: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {ROLE_LABEL: role}},
        "spec": {"containers": [{"name": "app", "image": IMAGE}]},
    }


def crashloop_status() -> dict[str, Any]:
    """What a kubelet writes for a container that keeps exiting: phase Running (so kwok's own pod-ready
    stage, which matches Pending pods, leaves it alone), not Ready, waiting in CrashLoopBackOff."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "lastTransitionTime": now},
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "lastTransitionTime": now,
                },
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": IMAGE,
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s restarting"}},
                    "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": now}},
                }
            ],
        }
    }


# -- clusters --------------------------------------------------------------------------------------


def local_cluster(name: str, action: str) -> str:
    env = {**os.environ, "K8SBOT_CLUSTER_NAME": name}
    result = subprocess.run(
        [str(REPO / "scripts" / "local-cluster"), action], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        raise SystemExit(f"K8SBOT_CLUSTER_NAME={name} scripts/local-cluster {action} failed:\n{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def wait(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class BenchCluster:
    name: str
    kubeconfig: str
    kube: KubeClient
    workers: int
    nodes: int = 0
    deployments: int = 0
    pods: int = 0  # bulk pods asked for (Deployments' replicas)
    start_seconds: float = 0.0

    @classmethod
    def up(cls, name: str, workers: int) -> BenchCluster:
        started = time.monotonic()
        kubeconfig = local_cluster(name, "up")
        cluster = cls(name, kubeconfig, KubeClient.from_kubeconfig(kubeconfig), workers)
        cluster.start_seconds = time.monotonic() - started
        for ns in (BULK_NS, *TEAM_NS):
            cluster.ensure_namespace(ns)
        log(f"{name}: up in {cluster.start_seconds:.1f}s ({kubeconfig})")
        return cluster

    def ensure_namespace(self, ns: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        with contextlib.suppress(Conflict):  # a kept cluster (--keep) already has it
            self.kube.request("POST", "/api/v1/namespaces", body=body)
        wait(lambda: self._has_sa(ns), 60, f"{self.name}: ServiceAccount {ns}/default", 0.5)

    def _has_sa(self, ns: str) -> bool:
        try:
            self.kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")
        except K8sBotError:
            return False
        return True

    def pool(self, tasks: Iterable[Callable[[], Any]]) -> None:
        """Run the requests with at most `workers` in flight (a bounded load on the API server)."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"{self.name}-create") as ex:
            for future in [ex.submit(task) for task in tasks]:
                future.result()

    def fill(self, total_pods: int, extra_pods: int, per_deployment: int) -> None:
        """Grow the bulk to `total_pods` running pods, with node room for `extra_pods` bare pods more."""
        started = time.monotonic()
        want_nodes = -(-(total_pods + extra_pods) // PODS_PER_NODE)
        new_nodes = range(self.nodes, want_nodes)
        self.pool(
            lambda i=i: self.kube.request("POST", "/api/v1/nodes", body=node(f"bench-node-{i:03d}", i))
            for i in new_nodes
        )
        self.nodes = max(self.nodes, want_nodes)
        specs: list[tuple[str, int]] = []
        while self.pods < total_pods:
            size = min(per_deployment, total_pods - self.pods)
            specs.append((f"app-{self.deployments:04d}", size))
            self.deployments += 1
            self.pods += size
        path = f"/apis/apps/v1/namespaces/{BULK_NS}/deployments"
        self.pool(lambda s=s: self.kube.request("POST", path, body=deployment(*s)) for s in specs)
        wait(lambda: self.ready_pods() >= total_pods, 1800, f"{self.name}: {total_pods} ready pods", 3.0)
        log(
            f"{self.name}: {total_pods} pods ready ({self.deployments} Deployments, {self.nodes} bench nodes)"
            f" after {time.monotonic() - started:.0f}s"
        )

    def ready_pods(self) -> int:
        items = self.kube.list(f"/apis/apps/v1/namespaces/{BULK_NS}/deployments")
        return sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in items)

    def create_pods(self, pods: list[tuple[str, str, str]]) -> None:
        """Bare pods (namespace, name, role), created and waited for Running."""
        self.pool(
            lambda p=p: self.kube.request("POST", f"/api/v1/namespaces/{p[0]}/pods", body=bare_pod(*p)) for p in pods
        )

        def all_running() -> bool:
            for ns in {p[0] for p in pods}:
                items = self.kube.list(f"/api/v1/namespaces/{ns}/pods", labelSelector=ROLE_LABEL)
                running = {i["metadata"]["name"] for i in items if (i.get("status") or {}).get("phase") == "Running"}
                if not {p[1] for p in pods if p[0] == ns} <= running:
                    return False
            return True

        wait(all_running, 300, f"{self.name}: {len(pods)} probe pods running")

    def break_pod(self, namespace: str, name: str) -> float:
        """Patch the pod's status to CrashLoopBackOff; the wall time just before the patch was sent (the
        bot may see the watch event before the PATCH answer is back here, so the time after it would
        understate the latency)."""
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/status"
        sent = time.time()
        self.kube.request("PATCH", path, body=crashloop_status(), content_type="application/strategic-merge-patch+json")
        return sent

    def delete_probes(self) -> None:
        for ns in TEAM_NS:
            with contextlib.suppress(NotFound):
                self.kube.request("DELETE", f"/api/v1/namespaces/{ns}/pods", query={"labelSelector": ROLE_LABEL})
        for ns in TEAM_NS:
            wait(
                lambda ns=ns: not self.kube.list(f"/api/v1/namespaces/{ns}/pods", labelSelector=ROLE_LABEL),
                120,
                f"{self.name}: probe pods in {ns} gone",
            )


# -- the bot process -------------------------------------------------------------------------------


class BotProcess:
    """`python -m k8sbot run` (Socket Mode) with its stderr kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "k8sbot", "run"], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=self._log
        )

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log_path.read_text()[-3000:]
            raise SystemExit(f"the bot exited {self.process.returncode}:\n{tail}")

    def proc_status(self) -> dict[str, float]:
        """VmRSS and VmHWM (MiB) and user+system CPU seconds, from /proc."""
        out: dict[str, float] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["cpu"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def permissions_yaml() -> str:
    teams = "\n".join(
        f"  t{i}:\n    channel: {TEAM_CHANNELS[i]}\n    namespaces: [{TEAM_NS[i]}]\n"
        f"    members: {{users: [{MEMBER}]}}\n    role: viewer"
        for i in range(TEAMS)
    )
    return f"roles:\n  viewer: [why, status]\nteams:\n{teams}\ndefaults: {{role: null}}\n"


def bot_env(emu: SlackEmulator, workdir: Path, clusters: list[BenchCluster], *, multi: bool) -> dict[str, str]:
    permissions = workdir / "permissions.yaml"
    permissions.write_text(permissions_yaml())
    config: dict[str, Any] = {
        "permissions": str(permissions),
        "default_channel": DEFAULT_CHANNEL,
        "alert_settle_seconds": 0.0,
        "alert_resolve_seconds": 3600.0,
        "leader_namespace": BULK_NS,
    }
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": emu.bot_token,
        "SLACK_APP_TOKEN": emu.app_token,
        "SLACK_SIGNING_SECRET": emu.signing_secret,
        "K8SBOT_SLACK_API_URL": emu.api_url,
        "K8SBOT_DB": str(workdir / "bot.db"),
        "K8SBOT_HTTP_HOST": "127.0.0.1",
        "K8SBOT_HTTP_PORT": "0",
        "K8SBOT_LOG_LEVEL": "INFO",
        "NO_PROXY": "*",
    }
    if multi:
        config["clusters"] = [{"name": c.name, "kubeconfig": c.kubeconfig} for c in clusters]
    else:
        env["KUBECONFIG"] = clusters[0].kubeconfig
        env["K8SBOT_CLUSTER_NAME"] = clusters[0].name
    config_file = workdir / "config.yaml"
    config_file.write_text(json.dumps(config, indent=2))  # JSON is YAML
    env["K8SBOT_CONFIG"] = str(config_file)
    return env


def alerted(emu: SlackEmulator, names: Iterable[str]) -> dict[str, float]:
    """Each name's first chat.postMessage that names it (the alert), by the emulator's clock."""
    wanted = set(names)
    found: dict[str, float] = {}
    for call in emu.calls("chat.postMessage"):
        if not call.ok or call.args.get("thread_ts"):
            continue
        text = json.dumps(call.args)
        for name in wanted - found.keys():
            if name in text:
                found[name] = call.time
    return found


@dataclass
class Result:
    label: str
    clusters: int
    pods: int
    sync_seconds: float = 0.0
    rss: dict[str, float] = field(default_factory=dict)
    rss_after: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    by_cluster: dict[str, list[float]] = field(default_factory=dict)


def pct(values: list[float], p: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def run_bot(
    emu: SlackEmulator, clusters: list[BenchCluster], args: argparse.Namespace, *, multi: bool, label: str
) -> Result:
    run = label[0]
    canaries = {c.name: (TEAM_NS[0], f"canary-{run}{i}") for i, c in enumerate(clusters)}
    victims: list[tuple[BenchCluster, str, str]] = []
    for k in range(args.breaks):
        cluster = clusters[k % len(clusters)]
        victims.append((cluster, TEAM_NS[k % TEAMS], f"victim-{run}{k % len(clusters)}-{k:03d}"))
    for c in clusters:
        mine = [(ns, name, "victim") for cl, ns, name in victims if cl is c]
        c.create_pods([(canaries[c.name][0], canaries[c.name][1], "canary"), *mine])
    pods = sum(c.pods + 1 + sum(1 for v in victims if v[0] is c) for c in clusters)
    result = Result(label, len(clusters), pods)
    with tempfile.TemporaryDirectory(prefix=f"bench-mc-{run}-") as tmp:
        workdir = Path(tmp)
        bot = BotProcess(bot_env(emu, workdir, clusters, multi=multi), workdir / "bot.log")
        try:
            started = time.time()
            log(f"{label}: bot pid {bot.process.pid} started; breaking one canary pod per cluster")
            for c in clusters:
                c.break_pod(*canaries[c.name])
            names = [n for _, n in canaries.values()]

            def canaries_in() -> bool:
                bot.check()
                return len(alerted(emu, names)) == len(names)

            wait(canaries_in, args.sync_timeout, f"{label}: the canary alerts (the bot synced)")
            result.sync_seconds = max(alerted(emu, names).values()) - started
            time.sleep(5)
            result.rss = bot.proc_status()
            log(
                f"{label}: synced and alerting after {result.sync_seconds:.1f}s; RSS {result.rss['VmRSS']:.0f} MiB"
                f" (peak {result.rss['VmHWM']:.0f}), CPU {result.rss['cpu']:.0f}s"
            )
            broken: dict[str, tuple[str, float]] = {}
            for cluster, ns, name in victims:
                broken[name] = (cluster.name, cluster.break_pod(ns, name))
                time.sleep(args.interval)

            def victims_in() -> bool:
                bot.check()
                return len(alerted(emu, broken)) == len(broken)

            wait(victims_in, 300, f"{label}: an alert per broken pod")
            posted = alerted(emu, broken)
            result.rss_after = bot.proc_status()
            for name, (cluster_name, at) in broken.items():
                latency = posted[name] - at
                result.latencies.append(latency)
                result.by_cluster.setdefault(cluster_name, []).append(latency)
        finally:
            bot.stop()
            if bot.process.returncode not in (0, None):
                print((workdir / "bot.log").read_text()[-2000:], file=sys.stderr)
            for c in clusters:
                c.delete_probes()
    return result


def report(results: list[Result], notes: list[str]) -> None:
    print()
    print(
        "| run | clusters | pods | synced+alerting (s) | RSS after sync (MiB) | RSS peak | CPU to sync (s) |"
        " alert p50 (ms) | p99 (ms) | max (ms) | breaks |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        lat = sorted(r.latencies)
        print(
            f"| {r.label} | {r.clusters} | {r.pods} | {r.sync_seconds:.1f} | {r.rss.get('VmRSS', 0):.0f} |"
            f" {r.rss_after.get('VmHWM', 0):.0f} | {r.rss.get('cpu', 0):.0f} |"
            f" {statistics.median(lat) * 1000:.0f} | {pct(lat, 99) * 1000:.0f} | {lat[-1] * 1000:.0f} | {len(lat)} |"
        )
    for r in results:
        if r.clusters > 1:
            per = ", ".join(
                f"{name} p50 {statistics.median(v) * 1000:.0f} ms / max {max(v) * 1000:.0f} ms"
                for name, v in sorted(r.by_cluster.items())
            )
            print(f"{r.label}, per cluster: {per}")
    for note in notes:
        print(f"note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=3000, help="pods per cluster in the multi-cluster run (N)")
    parser.add_argument("--clusters", type=int, default=3, help="clusters in the multi-cluster run")
    parser.add_argument("--breaks", type=int, default=48, help="pods broken one at a time, for the latency")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between two breaks")
    parser.add_argument("--per-deployment", type=int, default=10, help="replicas of each bulk Deployment")
    parser.add_argument("--workers", type=int, default=4, help="create requests in flight per cluster")
    parser.add_argument("--mode", choices=["both", "multi", "single"], default="both")
    parser.add_argument("--sync-timeout", type=float, default=900)
    parser.add_argument("--keep", action="store_true", help="leave the bench clusters running")
    args = parser.parse_args()

    names = [f"k8sbot-bench-{i + 1}" for i in range(args.clusters)]
    multi_ready = "clusters" in Settings.model_fields
    notes: list[str] = []
    results: list[Result] = []
    started: dict[str, BenchCluster] = {}
    extra = args.breaks + args.clusters
    try:
        with clean_slack_env(), SlackEmulator() as emu:
            emu.add_user(MEMBER, name="bench", real_name="Bench")
            for channel, name in [
                (DEFAULT_CHANNEL, "bench"),
                *((c, f"bench-t{i}") for i, c in enumerate(TEAM_CHANNELS)),
            ]:
                emu.add_channel(channel, name, members=[MEMBER], bot_member=True)
            if args.mode in ("both", "multi"):
                if not multi_ready:
                    notes.append(
                        "the multi-cluster run was skipped: this bot has no `clusters` setting yet"
                        " (bot.settings.Settings); the one-cluster run below is the baseline"
                    )
                else:
                    for name in names:
                        started[name] = BenchCluster.up(name, args.workers)
                    for name in names:
                        started[name].fill(args.pods, extra, args.per_deployment)
                    label = f"{args.clusters} clusters x {args.pods} pods"
                    results.append(run_bot(emu, [started[n] for n in names], args, multi=True, label=label))
                    report(results, [])
            if args.mode in ("both", "single"):
                for name in names[1:]:
                    if name in started and not args.keep:
                        local_cluster(name, "down")
                        del started[name]
                first = started.get(names[0]) or BenchCluster.up(names[0], args.workers)
                started[names[0]] = first
                total = args.pods * args.clusters
                first.fill(total, extra, args.per_deployment)
                label = f"1 cluster x {total} pods"
                results.append(run_bot(emu, [first], args, multi=False, label=label))
    finally:
        if not args.keep:
            for name in started:
                log(f"{name}: stopping")
                local_cluster(name, "down")
    notes.append(
        f"pods: Deployments of {args.per_deployment} in namespace {BULK_NS}, plus one canary and the broken pods;"
        f" {PODS_PER_NODE} pods per kwok node; breaks every {args.interval:g}s, alert settle 0"
    )
    report(results, notes)


if __name__ == "__main__":
    main()
