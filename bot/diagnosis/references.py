"""ConfigMaps and Secrets a pod template refers to, and which of them (or their keys) are missing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bot.kube.snapshot import Snapshot


@dataclass(frozen=True, slots=True)
class Reference:
    """One use of a ConfigMap or Secret (optionally one key of it) by a container or volume."""

    kind: str  # "ConfigMap" | "Secret"
    name: str
    key: str | None
    used_by: str  # "env DB_PASSWORD of container api", "volume config"
    optional: bool

    def describe(self) -> str:
        what = f"key `{self.key}` of {self.kind} `{self.name}`" if self.key else f"{self.kind} `{self.name}`"
        return f"{what} (used by {self.used_by})"


@dataclass(frozen=True, slots=True)
class MissingReference:
    reference: Reference
    missing_object: bool  # True: the object is absent; False: only the key is

    def sentence(self) -> str:
        ref = self.reference
        if self.missing_object:
            return f"{ref.kind} `{ref.name}` does not exist (used by {ref.used_by})"
        return f"{ref.kind} `{ref.name}` has no key `{ref.key}` (used by {ref.used_by})"


def references(pod_spec: dict[str, Any]) -> Iterator[Reference]:
    """Every ConfigMap/Secret reference of a pod spec: env, envFrom, volumes, image pull secrets."""
    for container in list(pod_spec.get("initContainers") or []) + list(pod_spec.get("containers") or []):
        cname = container.get("name", "?")
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            for field_name, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                ref = source.get(field_name)
                if ref:
                    yield Reference(
                        kind,
                        ref.get("name", ""),
                        ref.get("key"),
                        f"env {env.get('name')} of container {cname}",
                        bool(ref.get("optional")),
                    )
        for env_from in container.get("envFrom") or []:
            for field_name, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                ref = env_from.get(field_name)
                if ref:
                    yield Reference(
                        kind, ref.get("name", ""), None, f"envFrom of container {cname}", bool(ref.get("optional"))
                    )
    for volume in pod_spec.get("volumes") or []:
        yield from _volume_references(volume)


def _volume_references(volume: dict[str, Any]) -> Iterator[Reference]:
    vname = f"volume {volume.get('name')}"
    if volume.get("configMap"):
        source = volume["configMap"]
        yield from _volume_source("ConfigMap", source.get("name", ""), source, vname)
    if volume.get("secret"):
        source = volume["secret"]
        yield from _volume_source("Secret", source.get("secretName", ""), source, vname)
    for projected in (volume.get("projected") or {}).get("sources") or []:
        for field_name, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
            if projected.get(field_name):
                source = projected[field_name]
                yield from _volume_source(kind, source.get("name", ""), source, vname)


def _volume_source(kind: str, name: str, source: dict[str, Any], used_by: str) -> Iterator[Reference]:
    optional = bool(source.get("optional"))
    items = source.get("items") or []
    if not items:
        yield Reference(kind, name, None, used_by, optional)
    for item in items:
        yield Reference(kind, name, item.get("key"), used_by, optional)


def missing_references(pod_spec: dict[str, Any], snapshot: Snapshot) -> list[MissingReference]:
    """Required references whose object or key is absent. Kinds we could not list are not judged."""
    missing: list[MissingReference] = []
    seen: set[tuple[str, str, str | None]] = set()
    for ref in references(pod_spec):
        if ref.optional or not ref.name or not snapshot.knows(ref.kind) or (ref.kind, ref.name, ref.key) in seen:
            continue
        seen.add((ref.kind, ref.name, ref.key))
        obj = snapshot.named(ref.kind, ref.name)
        if obj is None:
            missing.append(MissingReference(ref, missing_object=True))
        elif ref.key is not None and ref.key not in (obj.get("data") or {}):
            missing.append(MissingReference(ref, missing_object=False))
    return missing
