"""The watch cache on plain objects: what it keeps, in which form, what a replay or a re-listing does,
how a selector finds a workload's pods, how events are bounded, and how a reader waits for a version.
(Fed by real watchers and compared with the API server's answers in tests/test_why_cache_cluster.py.)"""

from __future__ import annotations

import threading
import time
from typing import Any

from bot.kube.cache import CACHE_KINDS, EVENTS_PER_OBJECT, WatchCache
from bot.kube.snapshot import compact


def pod(name: str, version: int, *, app: str = "web", namespace: str = "shop", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(version),
            "labels": {"app": app},
            "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}],
        },
        "status": status or {"phase": "Running"},
    }


def ready_cache(**kwargs: Any) -> WatchCache:
    cache = WatchCache(**kwargs)
    for kind in CACHE_KINDS:
        cache.listed(kind, "1")
    return cache


def test_objects_are_kept_in_the_form_every_reader_sees() -> None:
    cache = ready_cache()
    cache.apply("Pod", "ADDED", pod("web-1", 5))
    held = cache.object("Pod", "shop", "web-1")
    assert held == compact("Pod", pod("web-1", 5))
    assert held is not None and "managedFields" not in held["metadata"] and "apiVersion" not in held
    held["status"]["phase"] = "Failed"  # a reader's copy: nobody else sees the change
    assert cache.object("Pod", "shop", "web-1")["status"]["phase"] == "Running"  # type: ignore[index]


def test_secret_values_never_enter_the_cache() -> None:
    cache = ready_cache()
    secret = {
        "metadata": {"name": "db", "namespace": "shop", "resourceVersion": "3"},
        "data": {"password": "aHVudGVyMg=="},
    }
    cache.apply("Secret", "ADDED", secret)
    held = cache.object("Secret", "shop", "db")
    assert held is not None and held["data"] == {"password": None}
    assert b"aHVudGVyMg" not in b"".join(e.data for names in cache._objects["Secret"].values() for e in names.values())


def test_an_older_version_is_ignored_and_a_deletion_removes() -> None:
    cache = ready_cache()
    cache.apply("Pod", "MODIFIED", pod("web-1", 9, phase="Failed"))
    cache.apply("Pod", "LISTED", pod("web-1", 7))  # a listing that started before the event
    assert cache.object("Pod", "shop", "web-1")["status"]["phase"] == "Failed"  # type: ignore[index]
    assert cache.version("Pod", "shop", "web-1") == "9"
    cache.apply("Pod", "DELETED", pod("web-1", 10))
    assert cache.object("Pod", "shop", "web-1") is None


def test_a_relisting_drops_what_was_deleted_while_the_watch_was_away() -> None:
    cache = ready_cache()
    for i, name in enumerate(("web-1", "web-2", "web-3")):
        cache.apply("Pod", "ADDED", pod(name, 10 + i))
    # a 410 and a new listing at resourceVersion 20: web-2 is gone
    cache.apply("Pod", "LISTED", pod("web-1", 10))
    cache.apply("Pod", "LISTED", pod("web-3", 12))
    cache.listed("Pod", "20")
    assert [p["metadata"]["name"] for p in cache.objects("Pod", "shop")] == ["web-1", "web-3"]


def test_a_selector_finds_a_workloads_pods_in_name_order() -> None:
    cache = ready_cache()
    cache.apply("Pod", "ADDED", pod("web-b", 1))
    cache.apply("Pod", "ADDED", pod("api-a", 2, app="api"))
    cache.apply("Pod", "ADDED", pod("web-a", 3))
    cache.apply("Pod", "ADDED", pod("web-c", 4, namespace="other"))
    names = [p["metadata"]["name"] for p in cache.objects("Pod", "shop", {"matchLabels": {"app": "web"}})]
    assert names == ["web-a", "web-b"]
    relabelled = pod("web-b", 5, app="api")
    cache.apply("Pod", "MODIFIED", relabelled)
    assert [p["metadata"]["name"] for p in cache.objects("Pod", "shop", {"matchLabels": {"app": "web"}})] == ["web-a"]
    expression = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}
    assert [p["metadata"]["name"] for p in cache.objects("Pod", "shop", expression)] == ["api-a", "web-b"]


def test_events_are_bounded_per_object_keeping_the_newest() -> None:
    cache = ready_cache()
    for i in range(EVENTS_PER_OBJECT + 10):
        cache.apply(
            "Event",
            "ADDED",
            {
                "metadata": {"name": f"web-1.{i:04d}", "namespace": "shop", "resourceVersion": str(100 + i)},
                "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
                "type": "Warning",
                "reason": "BackOff",
                "lastTimestamp": f"2026-11-30T10:{i // 60:02d}:{i % 60:02d}Z",
            },
        )
    events = cache.events("shop", ["web-1"])
    assert len(events) == EVENTS_PER_OBJECT
    assert min(e["metadata"]["name"] for e in events) == "web-1.0010"
    cache.apply("Event", "DELETED", {"metadata": {"name": "web-1.0041", "namespace": "shop"}, "involvedObject": {}})
    assert len(cache.events("shop")) == EVENTS_PER_OBJECT - 1


def test_a_reader_waits_for_the_version_the_api_server_has() -> None:
    cache = ready_cache()
    cache.apply("Pod", "ADDED", pod("web-1", 5))
    assert cache.wait_for("Pod", "shop", "web-1", "5", 0.0)
    assert not cache.wait_for("Pod", "shop", "web-1", "6", 0.05)
    later = threading.Timer(0.1, lambda: cache.apply("Pod", "MODIFIED", pod("web-1", 6)))
    later.start()
    started = time.monotonic()
    assert cache.wait_for("Pod", "shop", "web-1", "6", 5.0)
    assert time.monotonic() - started < 5.0
    assert not cache.wait_for("Pod", "shop", "web-1", None, 0.05)  # still there
    cache.apply("Pod", "DELETED", pod("web-1", 7))
    assert cache.wait_for("Pod", "shop", "web-1", None, 0.0)


def test_ready_only_once_every_kind_was_listed_and_never_after_close() -> None:
    cache = WatchCache(allows=lambda namespace: namespace != "kube-system")
    assert not cache.ready()
    for kind in CACHE_KINDS[:-1]:
        cache.listed(kind, "1")
    assert not cache.usable("shop")
    cache.listed(CACHE_KINDS[-1], "1")
    assert cache.usable("shop") and not cache.usable("kube-system")
    cache.close()
    assert not cache.usable("shop")
