"""Change tracking benchmark: ingest throughput and RSS on the local cluster, `changes` latency at 1M rows.

    .venv/bin/python bench/changes_bench.py                       # everything, default sizes
    .venv/bin/python bench/changes_bench.py --skip-cluster        # only the 1,000,000-row query part
    .venv/bin/python bench/changes_bench.py --deployments 200 --pods 1000 --rows 100000

Cluster part: a fresh namespace with N Deployments (replicas 0, so the controller makes no pods) and
M bare Pods (unschedulable on purpose, so the scheduler and kwok stay idle), watched by the real
recorder (Deployments/ReplicaSets/... recorded, Pods watched for subscriber callbacks). It times the
creations being recorded, then one image update per Deployment, and prints the process RSS. The
namespace is deleted at the end. Query part: synthetic rows inserted directly, then `changes` queries.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kubernetes import client as k8s_client

from bot.changes.recording import DEFAULT_KINDS, ChangeRecorder, NamespaceFilter
from bot.commands.dispatch import execute
from bot.kube.client import KubeClient
from bot.kube.watching import WatchedKind, Watchers
from bot.model import ChangeKind
from bot.settings import Settings
from bot.store.changes import ChangeStore
from bot.store.database import Database
from bot.store.events import EventStore
from k8sbot.wiring import build_core

REPO = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def kubeconfig() -> str:
    """The local cluster's kubeconfig, starting the cluster if `up` is needed (and not racing another `up`)."""
    script = str(REPO / "scripts/local-cluster")
    up = subprocess.run([script, "up"], capture_output=True, text=True, check=False)
    if up.returncode == 0:
        return up.stdout.strip().splitlines()[-1]
    out = subprocess.run([script, "kubeconfig"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def parallel(fn, items, workers: int = 16) -> None:  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(fn, items))


def wait_count(store: ChangeStore, kind: ChangeKind, namespace: str, want: int, timeout: float) -> tuple[float, int]:
    """(seconds, changes recorded) once `want` are recorded, or at `timeout` with however many there are."""
    start = time.monotonic()
    rows = 0
    while time.monotonic() - start < timeout:
        rows = store.database.db.execute(
            "SELECT COUNT(*) FROM changes WHERE namespace = ? AND change_kind = ? AND kind = 'Deployment'",
            [namespace, str(kind)],
        ).fetchone()[0]
        if rows >= want:
            break
        time.sleep(0.5)
    return time.monotonic(), rows


def cluster_part(deployments: int, pods: int, args_wait: float) -> None:
    kube = KubeClient.from_kubeconfig(kubeconfig())
    ns = f"bench-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    tmp = Path(tempfile.mkdtemp())
    db = Database(tmp / "bench.db")
    store = ChangeStore(db)
    recorder = ChangeRecorder(store, EventStore(db), namespaces=NamespaceFilter((ns,)))
    pod_events = [0]
    recorder.subscribe(
        on_object=lambda kind, _t, _o: pod_events.__setitem__(0, pod_events[0] + 1) if kind == "Pod" else None
    )
    busy = {"seconds": 0.0, "events": 0}
    record_event = recorder.record_event

    def timed(kind: str, event_type: str, obj: dict) -> list:  # type: ignore[type-arg]
        t = time.perf_counter()
        try:
            return record_event(kind, event_type, obj)
        finally:
            busy["seconds"] += time.perf_counter() - t
            busy["events"] += 1

    recorder.record_event = timed  # type: ignore[method-assign]
    watchers = Watchers(kube, recorder, kinds=(*DEFAULT_KINDS, WatchedKind("Pod", mode="objects")))
    print(f"RSS before watching: {rss_mb():.0f} MB")
    watchers.start()
    watchers.wait_synced(60)
    print(f"RSS after first sync: {rss_mb():.0f} MB")
    try:
        while True:  # pods need the namespace's default ServiceAccount
            try:
                kube.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default")
                break
            except Exception:
                time.sleep(0.5)

        def deploy(i: int) -> None:
            labels = {"app": f"d{i}"}
            body = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"d{i}", "namespace": ns},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
                    },
                },
            }
            kube.request("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", body=body)

        def pod(i: int) -> None:
            body = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p{i}", "namespace": ns},
                "spec": {
                    "nodeSelector": {"bench.k8sbot.dev/none": "true"},
                    "containers": [{"name": "app", "image": "app:1"}],
                },
            }
            kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body=body)

        start = time.monotonic()
        parallel(deploy, range(deployments))
        parallel(pod, range(pods))
        created = time.monotonic()
        done, count = wait_count(store, ChangeKind.CREATED, ns, deployments, args_wait)
        print(
            f"created {deployments} Deployments + {pods} Pods in {created - start:.1f}s; "
            f"{count}/{deployments} creations recorded {done - start:.1f}s after the first "
            f"({count / (done - start):.1f} Deployment changes/s end to end: each waits for the Deployment "
            f"controller to observe it); pod events seen: {pod_events[0]}"
        )
        print(f"RSS after creations: {rss_mb():.0f} MB")

        def update(i: int) -> None:
            body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
            kube.request(
                "PATCH",
                f"/apis/apps/v1/namespaces/{ns}/deployments/d{i}",
                body=body,
                content_type="application/strategic-merge-patch+json",
            )

        start = time.monotonic()
        parallel(update, range(deployments))
        patched = time.monotonic()
        done, count = wait_count(store, ChangeKind.IMAGE, ns, deployments, 600)
        print(
            f"{deployments} image updates sent in {patched - start:.1f}s; {count}/{deployments} recorded after "
            f"{done - start:.1f}s ({count / (done - start):.0f} changes/s end to end)"
        )
        print(
            f"RSS at the end: {rss_mb():.0f} MB; database {sum(p.stat().st_size for p in tmp.iterdir()) / 1e6:.1f} MB"
        )
    finally:
        watchers.stop()
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")


def recorder_part(deployments: int) -> None:
    """The recorder alone, fed watch events as the API sends them: a baseline listing, then per
    Deployment three status-only events and one image change (no cluster: the bot's own cost)."""
    tmp = Path(tempfile.mkdtemp())
    db = Database(tmp / "rec.db")
    store = ChangeStore(db)
    recorder = ChangeRecorder(store, EventStore(db))

    def deployment(i: int, image: str, rv: int, ready: int) -> dict:  # type: ignore[type-arg]
        labels = {"app": f"d{i}"}
        return {
            "kind": "Deployment",
            "metadata": {
                "name": f"d{i}",
                "namespace": "bench",
                "uid": f"u{i}",
                "resourceVersion": str(rv),
                "generation": 1,
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "managedFields": [
                    {
                        "manager": "kubectl-set",
                        "operation": "Update",
                        "time": "2026-05-04T09:00:00Z",
                        "fieldsV1": {"f:spec": {}},
                    }
                ],
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [{"name": "app", "image": image, "resources": {"limits": {"memory": "256Mi"}}}]
                    },
                },
            },
            "status": {"observedGeneration": 1, "readyReplicas": ready},
        }

    start = time.perf_counter()
    recorder.record_listing("Deployment", iter([([deployment(i, "app:1", 10, 3) for i in range(deployments)], "10")]))
    listed = time.perf_counter()
    events = 0
    for i in range(deployments):
        for step in range(3):
            recorder.record_event("Deployment", "MODIFIED", deployment(i, "app:1", 20 + step, step))
        recorder.record_event("Deployment", "MODIFIED", deployment(i, "app:2", 30, 3))
        events += 4
    done = time.perf_counter()
    recorded = len(store.query(since=datetime.now(UTC) - timedelta(hours=1), limit=deployments * 2))
    print(
        f"recorder alone: baseline of {deployments} Deployments in {listed - start:.2f}s; "
        f"{events} watch events in {done - listed:.2f}s ({events / (done - listed):.0f} events/s), "
        f"{recorded} changes recorded; RSS {rss_mb():.0f} MB"
    )


def query_part(rows: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    db = Database(tmp / "rows.db")
    store = ChangeStore(db)
    now = datetime.now(UTC)
    namespaces = [f"team-{i}" for i in range(50)]
    kinds = ["image", "scale", "config", "spec", "restart"]
    fields = json.dumps([{"path": "spec.template.spec.containers[0].image", "before": "app:1", "after": "app:2"}])
    start = time.monotonic()
    with db.transaction() as tx:
        batch = []
        for i in range(rows):
            at = (now - timedelta(seconds=random.uniform(0, 30 * 86400))).timestamp()
            ns = namespaces[i % 50]
            batch.append(
                (
                    store.cluster,
                    at,
                    "Deployment",
                    ns,
                    f"app-{i % 400}",
                    kinds[i % 5],
                    "image app: app:1 → app:2",
                    "kubectl-set",
                    i % 30,
                    fields,
                    f"uid-{i}",
                    str(i),
                )
            )
            if len(batch) == 10000:
                tx.conn.executemany(
                    "INSERT INTO changes (cluster, at, kind, namespace, name, change_kind, summary, actor, revision, "
                    "fields, uid, resource_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    batch,
                )
                batch = []
        if batch:
            tx.conn.executemany(
                "INSERT INTO changes (cluster, at, kind, namespace, name, change_kind, summary, actor, revision, "
                "fields, uid, resource_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                batch,
            )
    tx.conn.execute("ANALYZE")
    print(f"inserted {rows} rows in {time.monotonic() - start:.1f}s ({(tmp / 'rows.db').stat().st_size / 1e6:.0f} MB)")
    # the object the timeline asks about must exist in the history for the verb's target check

    # the `changes` verb reads only the database: a client that is never used
    services = build_core(
        Settings(db=str(tmp / "rows.db")), permissions=False, kube=KubeClient(k8s_client.Configuration())
    ).commands
    cases = [
        ("changes app-7 -n team-7 --since 2h", "one object, 2h"),
        ("changes deploy/app-7 -n team-7 --since 30d", "one object, 30d"),
        ("changes -n team-3 --since 2h", "one namespace, 2h"),
        ("changes -n team-3 --since 30d", "one namespace, 30d (newest 50)"),
    ]
    for text, what in cases:
        times = []
        for _ in range(20):
            t = time.perf_counter()
            answer = execute(services, text=text)
            times.append(time.perf_counter() - t)
        times.sort()
        print(
            f"`{text}` ({what}): median {times[10] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms, "
            f"{len(answer.data['changes'])} shown"
        )
    t = time.perf_counter()
    store.query(since=now - timedelta(hours=24), limit=200)
    print(f"all namespaces, 24h, newest 200: {(time.perf_counter() - t) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=2000)
    parser.add_argument("--pods", type=int, default=10000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for each batch to be recorded")
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--skip-rows", action="store_true")
    args = parser.parse_args()
    recorder_part(args.deployments)
    if not args.skip_rows:
        query_part(args.rows)
    if not args.skip_cluster:
        cluster_part(min(args.deployments, 5000), min(args.pods, 20000), args.wait)


if __name__ == "__main__":
    main()
