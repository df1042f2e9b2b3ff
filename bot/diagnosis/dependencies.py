"""Which Services a workload calls, and whether one of them is broken.

The link comes from what is in the cluster: env values, container args and commands that name a
Service (`payments`, `payments.shop.svc`, `payments:8080`, `http://payments:8080/v1`), values of
the ConfigMaps the pod template reads (the snapshot keeps their host names, never their values), and
error lines of the workload's logs. A Service is broken when nothing behind it can answer: its
selector matches no pod, its pods are gone, or none of them is ready.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bot.kube.hosts import services_named
from bot.kube.selectors import pod_ready, selected_pods, selected_workloads, selector_matches, template_labels
from bot.kube.snapshot import Snapshot, name_of
from bot.model import KubeObject
from bot.redaction import DEFAULT


@dataclass(frozen=True, slots=True)
class Link:
    """`service` is named by `where` (e.g. "env PAYMENT_API_URL of container app")."""

    service: str
    where: str

    def line(self) -> str:
        return f"{self.where} names Service {self.service}"


def pod_template(workload: KubeObject) -> dict[str, Any]:
    spec = workload.get("spec") or {}
    if workload.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return dict((spec.get("template") or {}).get("spec") or {})


def own_services(workload: KubeObject, snapshot: Snapshot) -> list[str]:
    """The Services in front of `workload` (their selector matches its pod template's labels)."""
    labels = template_labels(workload)
    return [
        name_of(s)
        for s in snapshot.of("Service")
        if selector_matches((s.get("spec") or {}).get("selector") or {}, labels)
    ]


def called_services(workload: KubeObject, snapshot: Snapshot) -> list[str]:
    """The names of the Services `workload` calls (its pod template's links, not its own Services):
    what a targeted read (`bot.kube.targeted.Calls`) reads the pods of, to judge them."""
    return [link.service for link in links(workload, snapshot, own=own_services(workload, snapshot))]


def links(workload: KubeObject, snapshot: Snapshot, *, own: Iterable[str] = ()) -> list[Link]:
    """The Services of the namespace that `workload`'s pod template names (not its own Services)."""
    services = {name_of(s) for s in snapshot.of("Service")} - set(own)
    if not services:
        return []
    found: dict[str, Link] = {}
    for link in _template_links(pod_template(workload), services, snapshot):
        found.setdefault(link.service, link)
    return list(found.values())


def _template_links(template: dict[str, Any], services: set[str], snapshot: Snapshot) -> Iterator[Link]:
    namespace = snapshot.namespace
    containers = list(template.get("initContainers") or []) + list(template.get("containers") or [])
    config_maps: dict[str, str] = {}
    for container in containers:
        cname = container.get("name", "?")
        for env in container.get("env") or []:
            value = env.get("value")
            if isinstance(value, str):
                # What looks secret is masked before it is read (a password that happens to be a word).
                for service in services_named(DEFAULT.value(str(env.get("name")), value), services, namespace):
                    yield Link(service, f"env {env.get('name')} of container {cname}")
            ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
            if ref.get("name"):
                yield from _config_map_links(
                    str(ref["name"]), ref.get("key"), f"env {env.get('name')} of container {cname}", services, snapshot
                )
        for env_from in container.get("envFrom") or []:
            ref = env_from.get("configMapRef") or {}
            if ref.get("name"):
                config_maps.setdefault(str(ref["name"]), f"envFrom of container {cname}")
        for field in ("command", "args"):
            for arg in container.get(field) or []:
                for service in services_named(DEFAULT.text(str(arg)), services, namespace):
                    yield Link(service, f"{'argument' if field == 'args' else 'command'} `{arg}` of container {cname}")
    for volume in template.get("volumes") or []:
        source = volume.get("configMap") or {}
        if source.get("name"):
            config_maps.setdefault(str(source["name"]), f"volume {volume.get('name')}")
    for name, used_by in config_maps.items():
        yield from _config_map_links(name, None, used_by, services, snapshot)


def _config_map_links(
    name: str, key: str | None, used_by: str, services: set[str], snapshot: Snapshot
) -> Iterator[Link]:
    config_map = snapshot.named("ConfigMap", name)
    if config_map is None:
        return
    for data_key, hosts in sorted((config_map.get("hosts") or {}).items()):
        if key is not None and data_key != key:
            continue
        for host in hosts:
            for service in services_named(host, services, snapshot.namespace):
                yield Link(service, f"key `{data_key}` of ConfigMap `{name}` ({used_by})")


def log_links(lines: Iterable[str], snapshot: Snapshot, *, own: Iterable[str] = ()) -> list[Link]:
    """Services the error lines of a log name: as host names, or as a whole word in the line."""
    services = {name_of(s) for s in snapshot.of("Service")} - set(own)
    found: dict[str, Link] = {}
    for line in lines:
        named = services_named(line, services, snapshot.namespace, bare=False)
        named |= {s for s in services if re.search(rf"(?<![\w.-]){re.escape(s)}(?![\w-])", line)}
        for service in sorted(named):
            found.setdefault(service, Link(service, f"the log line `{line.strip()[:160]}`"))
    return list(found.values())


@dataclass(frozen=True, slots=True)
class Trouble:
    """What is wrong with a Service, seen from the workload that calls it."""

    service: str
    problem: str  # "has no ready endpoints"
    evidence: str


def trouble(service_name: str, snapshot: Snapshot) -> Trouble | None:
    """Why `service_name` can't answer, or None when it has ready endpoints (or can't be judged: the
    snapshot did not read the pods it selects, e.g. a Service named only in a log line)."""
    service = snapshot.named("Service", service_name)
    if service is None or not snapshot.holds_pods_of(service_name):
        return None
    spec = service.get("spec") or {}
    if not spec.get("selector") or spec.get("type") == "ExternalName":
        return None  # endpoints managed by hand, or a DNS alias: nothing to judge here
    pods = [p for p in selected_pods(service, snapshot) if not (p.get("metadata") or {}).get("deletionTimestamp")]
    if not pods:
        workloads = selected_workloads(service, snapshot)
        if workloads:
            names = ", ".join(f"{w.get('kind')} {name_of(w)}" for w in workloads[:3])
            return Trouble(service_name, "has no pods behind it", f"Service {service_name}: {names} has no pods")
        return Trouble(service_name, "selects no pods", f"Service {service_name}'s selector matches no pods")
    ready = sum(1 for p in pods if pod_ready(p))
    if ready == 0:
        return Trouble(
            service_name,
            "has no ready endpoints",
            f"Service {service_name}: 0 ready endpoints, none of its {len(pods)} pods is ready",
        )
    return None
