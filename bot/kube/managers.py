"""Who made a change, said as a person or a named controller rather than the client library's default.

The API server records a field manager for every write (`metadata.managedFields`). A tool that names
itself (`kubectl-edit`, `helm`, `argocd-controller`, the bot's `k8sbot/<slack user>`) is the best
answer. A client that does not falls back to its User-Agent up to the first "/" (`OpenAPI-Generator`,
`Go-http-client`), and `kubectl apply` without `--server-side` is always `kubectl-client-side-apply`,
whoever runs it: those say which program, not who. When the object carries the marks of a deployer
(Argo CD, Flux, Helm), that deployer is the better answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from bot.kube.fields import Item, Path
from bot.kube.gitops import in_words, management
from bot.model import KubeObject

CONTROLLER_MANAGERS = frozenset({"kube-controller-manager", "kube-scheduler", "kubelet", "kwok"})
"""Managers that keep bookkeeping fields; never the best guess for who removed a field."""

GENERIC_MANAGERS = frozenset(
    {
        "OpenAPI-Generator",
        "Go-http-client",
        "python-requests",
        "python-urllib3",
        "okhttp",
        "curl",
        "unknown",
        "Mozilla",
        "node-fetch",
        "axios",
        "Apache-HttpClient",
        "kubectl-client-side-apply",
        "kubectl",
    }
)
"""Field managers that name a client library or a generic apply, not a person or a controller."""
BOT_PREFIX = "k8sbot/"


def is_generic(manager: str | None) -> bool:
    return manager is None or manager in GENERIC_MANAGERS or manager.split("/", 1)[0] in GENERIC_MANAGERS


def deployer(obj: KubeObject) -> str | None:
    """The deployer whose marks the object carries (Argo CD, Flux, Helm: bot/kube/gitops.py), in words."""
    managed = management(obj)
    if managed is not None:
        return in_words(managed, obj)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    managed_by = labels.get("app.kubernetes.io/managed-by") if isinstance(labels, dict) else None
    return str(managed_by) if managed_by else None


def actor_name(manager: str | None, obj: KubeObject) -> str | None:
    """The field manager as who did it: the person behind the bot's own writes, a named deployer for a
    generic client's write, else the manager as recorded."""
    if manager and manager.startswith(BOT_PREFIX) and len(manager) > len(BOT_PREFIX):
        return f"Slack user {manager[len(BOT_PREFIX) :]} (via k8sbot)"
    if is_generic(manager):
        better = deployer(obj)
        if better:
            return f"{better} via {manager}" if manager else better
    return manager


def find_actor(obj: KubeObject, paths: Iterable[Path]) -> str | None:
    """The field manager that last touched any of `paths`, from the object's managedFields.

    Among the managers whose field set owns (a prefix of, or a field under) a changed path, the one
    with the newest `time` wins. Status-subresource managers only count for status paths (Node
    conditions). When no manager owns a changed path (a removed field belongs to nobody any more)
    the newest non-status manager is the best guess.
    """
    entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or [] if e.get("manager")]
    paths = list(paths)
    touches_status = any(p and p[0] == "status" for p in paths)
    candidates = [e for e in entries if e.get("subresource") != "status" or touches_status]
    owning = [e for e in candidates if _owns_any(e.get("fieldsV1") or {}, paths)]
    pool = owning or [
        e for e in candidates if e.get("subresource") != "status" and e.get("manager") not in CONTROLLER_MANAGERS
    ]
    if not pool:
        return actor_name(None, obj)
    newest = max(pool, key=lambda e: str(e.get("time") or ""))
    return actor_name(str(newest["manager"]), obj)


def _owns_any(fields: dict[str, Any], paths: list[Path]) -> bool:
    return any(_owns(fields, _fields_path(path)) for path in paths)


def _fields_path(path: Path) -> list[str | tuple[str, Any] | None]:
    """Our path as fieldsV1 keys: "f:name" for dict keys, ("k", key) for keyed items, None otherwise."""
    result: list[str | tuple[str, Any] | None] = []
    for segment in path:
        if isinstance(segment, Item):
            result.append(("k", segment.key) if segment.key else None)
        else:
            result.append(f"f:{segment}")
    return result


def _owns(fields: dict[str, Any], path: list[str | tuple[str, Any] | None]) -> bool:
    if not path or not fields:
        return True  # reached the end of either: the manager owns this subtree or a field under it
    step, rest = path[0], path[1:]
    if step is None:
        return any(_owns(sub, rest) for key, sub in fields.items() if key.startswith(("k:", "i:")))
    if isinstance(step, tuple):
        name, value = step[1]
        for key, sub in fields.items():
            if key.startswith("k:") and _key_matches(key[2:], name, value):
                return _owns(sub or {}, rest)
        return False
    sub = fields.get(step)
    return sub is not None and _owns(sub or {}, rest)


def _key_matches(raw: str, name: str, value: Any) -> bool:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get(name) == value
