"""What a person means by a name: `checkout`, `svc/checkout`, `deploy/checkout`, `checkout-5d8f-x2x9p`.

Resolution works on a fetched Snapshot, so it costs no extra API calls. A name may be a Service, a
workload (Deployment, StatefulSet, DaemonSet, Job, CronJob), a Pod, or the value of an `app` /
`app.kubernetes.io/name` label. A Service and the one workload its selector matches are one target
(the workload, with the Service attached). Unrelated objects sharing a name are Ambiguous; no match
is NotFound with close matches.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from bot.errors import Ambiguous, NotFound
from bot.kube.kinds import kind_named
from bot.kube.selectors import selected_workloads, selector_matches, template_labels
from bot.kube.snapshot import WORKLOAD_KINDS, Snapshot, name_of
from bot.model import KubeObject, ObjectRef

NAME_LABELS = ("app", "app.kubernetes.io/name")
TARGET_KINDS = ("Service", *WORKLOAD_KINDS, "Pod")


@dataclass(frozen=True)
class Resolution:
    """The target (`obj`), the workloads it stands for, and the Services in front of them."""

    ref: ObjectRef
    obj: KubeObject
    workloads: tuple[KubeObject, ...]
    services: tuple[KubeObject, ...]


def split_kind(target: str) -> tuple[str | None, str]:
    """`deploy/checkout` → ("Deployment", "checkout"); `checkout` → (None, "checkout")."""
    if "/" in target:
        word, name = target.split("/", 1)
        kind = kind_named(word)
        if kind is None:
            raise NotFound(f"`{word}` is not a kind I know.")
        return kind.kind, name
    return None, target


def resolve(snapshot: Snapshot, target: str) -> Resolution:
    """Resolve `target` in the snapshot's namespace, or raise Ambiguous / NotFound."""
    kind, name = split_kind(target)
    if kind is not None:
        obj = snapshot.named(kind, name)
        if obj is None:
            raise _not_found(snapshot, name, kinds=(kind,))
        return _resolution(snapshot, obj)
    services = [s for s in snapshot.of("Service") if name_of(s) == name]
    workloads = [w for k in WORKLOAD_KINDS for w in snapshot.of(k) if name_of(w) == name]
    if not workloads:
        workloads = _by_label(snapshot, name)
    if services:
        service = services[0]
        behind = selected_workloads(service, snapshot)
        unrelated = [w for w in workloads if not any(w is b for b in behind)]
        if behind and unrelated:
            raise _ambiguous(snapshot, name, [service, *unrelated])
        if len(behind) == 1:
            return _resolution(snapshot, behind[0])
        related = behind or unrelated
        # The Service fronts several workloads, or none of the ones named like it: judge the Service
        # with all of them in view (a selector that misses its Deployment is the answer, not a question).
        return Resolution(ObjectRef("Service", snapshot.namespace, name), service, tuple(related), (service,))
    if len(workloads) == 1:
        return _resolution(snapshot, workloads[0])
    if len(workloads) > 1:
        raise _ambiguous(snapshot, name, workloads)
    pod = snapshot.named("Pod", name)
    if pod is not None:
        return _resolution(snapshot, pod)
    raise _not_found(snapshot, name, kinds=TARGET_KINDS)


def _by_label(snapshot: Snapshot, name: str) -> list[KubeObject]:
    found = []
    for kind in WORKLOAD_KINDS:
        for obj in snapshot.of(kind):
            labels = {**((obj.get("metadata") or {}).get("labels") or {}), **template_labels(obj)}
            if any(labels.get(label) == name for label in NAME_LABELS):
                found.append(obj)
    # A CronJob's Jobs carry its labels too; the CronJob stands for them.
    cronjobs = {name_of(o) for o in found if o.get("kind") == "CronJob"}
    return [o for o in found if not (o.get("kind") == "Job" and _owner_name(o) in cronjobs)]


def _owner_name(obj: KubeObject) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        return str(ref.get("name"))
    return None


def _resolution(snapshot: Snapshot, obj: KubeObject) -> Resolution:
    kind = str(obj.get("kind"))
    ref = ObjectRef(kind, snapshot.namespace, name_of(obj))
    if kind == "Service":
        return Resolution(ref, obj, tuple(selected_workloads(obj, snapshot)), (obj,))
    if kind == "Pod":
        labels = (obj.get("metadata") or {}).get("labels") or {}
        services = [
            s for s in snapshot.of("Service") if selector_matches((s.get("spec") or {}).get("selector") or {}, labels)
        ]
        return Resolution(ref, obj, (), tuple(services))
    # The Services that select this workload's pod template (what `selected_workloads` decides, asked
    # of this one workload: once per Service, not once per Service and workload of the namespace).
    labels = template_labels(obj)
    services = [
        s for s in snapshot.of("Service") if selector_matches((s.get("spec") or {}).get("selector") or {}, labels)
    ]
    return Resolution(ref, obj, (obj,), tuple(services))


def _typed(obj: KubeObject) -> str:
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}/{name_of(obj)}"


def _ambiguous(snapshot: Snapshot, name: str, objects: list[KubeObject]) -> Ambiguous:
    candidates = tuple(sorted(_typed(o) for o in objects))
    return Ambiguous(
        f"`{name}` matches several objects in `{snapshot.namespace}`: {', '.join(candidates)}. Which one?",
        candidates=candidates,
    )


def _not_found(snapshot: Snapshot, name: str, *, kinds: tuple[str, ...]) -> NotFound:
    names = sorted({name_of(o) for k in kinds for o in snapshot.of(k)})
    close = tuple(difflib.get_close_matches(name, names, n=5, cutoff=0.6))
    what = " or ".join(k for k in kinds) if len(kinds) == 1 else "workload, Service or Pod"
    hint = f" Did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    return NotFound(f"No {what} named `{name}` in namespace `{snapshot.namespace}`.{hint}", candidates=close)
