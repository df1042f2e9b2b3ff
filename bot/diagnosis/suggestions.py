"""The next step for a cause: a sentence, and where possible the `/k8s` command that takes it.

A change to the pod template that broke things is best undone by rolling back to the last good
revision (we name its image so the person knows what they roll back to). Otherwise the step fits the
category: scale back up, create the missing key, read the previous logs, look at the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.diagnosis.references import missing_references
from bot.kube.fields import show_value
from bot.kube.revisions import RevisionChange
from bot.kube.snapshot import Snapshot
from bot.model import KUBERNETES, Category, CulpritChange, Finding, KubeObject, ObjectRef, Suggestion
from bot.text import brief

TEMPLATE_PREFIX = "spec.template."
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


@dataclass(frozen=True, slots=True)
class Situation:
    """What a suggestion may use: the target and its workload, the blamed change, the history."""

    target: ObjectRef
    workload: KubeObject | None
    snapshot: Snapshot
    culprit: CulpritChange | None
    revision: RevisionChange | None
    findings: tuple[Finding, ...]


Builder = Callable[[Situation], Suggestion | None]


def suggest(category: Category, situation: Situation) -> Suggestion | None:
    if situation.culprit is not None and situation.culprit.source != KUBERNETES:
        return _undo_external(situation.culprit)
    revert = _revert_key(situation)
    if revert is not None:
        return revert
    rollback = _rollback(situation)
    if rollback is not None and category not in (Category.SCALED_TO_ZERO, Category.NO_ENDPOINTS):
        return rollback
    builder = _BUILDERS.get(category)
    return builder(situation) if builder else None


def _where(situation: Situation) -> str:
    return f"-n {situation.target.namespace}" if situation.target.namespace else ""


def _name(situation: Situation) -> str:
    meta = (situation.workload or {}).get("metadata") or {}
    return str(meta.get("name") or situation.target.name)


def _undo_external(culprit: CulpritChange) -> Suggestion:
    """An external change (a flag, a CI deploy) is undone where it was made, not by the bot."""
    what = brief(culprit.summary or culprit.path)
    where = f" ({culprit.link})" if culprit.link else ""
    return Suggestion(
        text=f'Undo the {culprit.source} change "{what}" where it was made{where}: '
        "nothing in the cluster changed, so a rollback here would not undo it."
    )


def _rollback(situation: Situation) -> Suggestion | None:
    """Roll back when the blamed change is a Deployment template change with a good revision to go to."""
    culprit, revision = situation.culprit, situation.revision
    if culprit is None or revision is None or not culprit.path.startswith(TEMPLATE_PREFIX):
        return None
    if culprit.path.endswith(RESTARTED_AT):
        return None  # a restart only re-reads what changed elsewhere: rolling it back undoes nothing
    good = revision.good
    images = ", ".join(good.images)
    undoes = f"{culprit.what or culprit.path}: {show_value(culprit.after)} → {show_value(culprit.before)}"
    kind = revision.deployment.kind
    if kind != "Deployment":  # the rollback verb rolls Deployments back; kubectl does the others
        where = f" -n {situation.target.namespace}" if situation.target.namespace else ""
        undo = f"kubectl rollout undo {kind.lower()}/{revision.deployment.name}{where} --to-revision={good.number}"
        return Suggestion(
            text=f"Roll {kind} {revision.deployment.name} back to revision {good.number} (image {images}), "
            f"which undoes {undoes}: `{undo}`."
        )
    command = f"/k8s rollback {revision.deployment.name} {_where(situation)} --to-revision {good.number}"
    return Suggestion(
        text=f"Roll back {revision.deployment.name} to revision {good.number} (image {images}), which undoes {undoes}.",
        command=" ".join(command.split()),
    )


def _revert_key(situation: Situation) -> Suggestion | None:
    """A ConfigMap or Secret edit is undone by putting the key back, not by a rollback (the pod template
    never changed), and pods read it only when they start."""
    culprit = situation.culprit
    if culprit is None or culprit.ref.kind not in ("ConfigMap", "Secret"):
        return None
    key = culprit.path.split(".", 1)[1] if culprit.path.startswith(("data.", "binaryData.")) else culprit.path
    where = f"{culprit.ref.kind} `{culprit.ref.name}`"
    when = f" at {culprit.at:%Y-%m-%d %H:%M} UTC" if culprit.at else ""
    who = f" by {culprit.actor}" if culprit.actor else ""
    if culprit.ref.kind == "Secret" or culprit.before is None or culprit.after is None:
        verb = "Restore" if culprit.before is not None else "Remove"
        what = f"{verb} key `{key}` of {where}" + (" to its previous value" if culprit.before is not None else "")
    else:
        what = f"Set key `{key}` of {where} back to {show_value(culprit.before)} (it is {show_value(culprit.after)})"
    name = _name(situation)
    restart = f" /k8s restart {name} {_where(situation)}".rstrip() if situation.workload is not None else ""
    then = f" Then restart {name} so its pods read it ({restart.strip()})." if restart else ""
    return Suggestion(
        text=f"{what}: it changed{when}{who}, and a rollback would not undo it.{then}",
        command=None,
    )


def _scaled(situation: Situation) -> Suggestion:
    before = situation.culprit.before if situation.culprit and situation.culprit.path == "spec.replicas" else None
    replicas = before if isinstance(before, int) and before > 0 else 1
    name = _name(situation)
    if (situation.workload or {}).get("kind") == "CronJob":
        return Suggestion(text=f"CronJob {name} is suspended; resume it (spec.suspend: false).")
    return Suggestion(
        text=f"Scale {name} back up to {replicas} replica(s).",
        command=" ".join(f"/k8s scale {name} {_where(situation)} --replicas {replicas}".split()),
    )


def _config(situation: Situation) -> Suggestion | None:
    template = ((situation.workload or {}).get("spec") or {}).get("template") or {}
    missing = missing_references(template.get("spec") or {}, situation.snapshot)
    if missing:
        first = missing[0]
        ref = first.reference
        what = (
            f"Create {ref.kind} `{ref.name}`"
            if first.missing_object
            else f"Add key `{ref.key}` to {ref.kind} `{ref.name}`"
        )
        return Suggestion(
            text=f"{what} in namespace {situation.target.namespace}, or fix the reference ({ref.used_by}).",
            command=None,
        )
    return Suggestion(text="Fix the ConfigMap or Secret named in the error, then the pods start by themselves.")


def _describe(kind: str) -> Builder:
    def build(situation: Situation) -> Suggestion:
        subject = next((f.subject for f in situation.findings), situation.target)
        alias = {"Pod": "pod", "Service": "svc", "Node": "node", "HorizontalPodAutoscaler": "hpa"}.get(
            subject.kind, subject.kind.lower()
        )
        where = f" -n {subject.namespace}" if subject.namespace else ""
        return Suggestion(text=kind, command=f"/k8s describe {alias}/{subject.name}{where}")

    return build


def _logs(previous: bool, text: str) -> Builder:
    def build(situation: Situation) -> Suggestion:
        target = situation.target
        name = f"{target.kind.lower()}/{target.name}" if target.kind in ("Job", "Pod", "CronJob") else target.name
        flag = " --previous" if previous else ""
        return Suggestion(text=text, command=f"/k8s logs {name} {_where(situation)}{flag}".replace("  ", " "))

    return build


def _capacity(situation: Situation) -> Suggestion:
    name = _name(situation)
    status = (situation.workload or {}).get("status") or {}
    fits = max(int(status.get("readyReplicas") or status.get("availableReplicas") or 0), 1)
    if situation.culprit and situation.culprit.path == "spec.replicas" and isinstance(situation.culprit.before, int):
        fits = situation.culprit.before
    return Suggestion(
        text=f"Lower the replicas of {name} (to {fits}) or the resource requests so the pods fit, "
        "or ask for more quota / capacity.",
        command=" ".join(f"/k8s scale {name} {_where(situation)} --replicas {fits}".split()),
    )


_BUILDERS: dict[Category, Builder] = {
    Category.SCALED_TO_ZERO: _scaled,
    Category.CONFIG_ERROR: _config,
    Category.UNSCHEDULABLE: _capacity,
    Category.QUOTA_EXCEEDED: _capacity,
    Category.CRASH_LOOP: _logs(True, "Read the logs of the crashed container to see why it exits."),
    Category.OOM_KILLED: _logs(True, "Raise resources.limits.memory, or find what uses the memory (previous logs)."),
    Category.PROBE_FAILURE: _logs(
        False, "Check the readiness endpoint and the logs; the probe says the app isn't ready."
    ),
    Category.JOB_FAILED: _logs(False, "Read the failed Job's logs to see why it exits."),
    Category.INIT_FAILURE: _logs(True, "Read the init container's logs."),
    Category.IMAGE_PULL: _describe("Check the image name and tag exist, and the registry credentials."),
    Category.NO_ENDPOINTS: _describe("Make the Service selector match the pods' labels (or make the pods ready)."),
    Category.NODE_NOT_READY: _describe("The node is unhealthy; drain it or look at its kubelet."),
    Category.EVICTED: _describe("Pods were evicted for node pressure; set resource requests that match usage."),
    Category.VOLUME_ERROR: _describe("Check the PersistentVolumeClaim and the volume's events."),
    Category.DISRUPTION_BLOCKED: lambda situation: Suggestion(
        text="Lower the PodDisruptionBudget's minAvailable (or raise its maxUnavailable) below the healthy pods, "
        "or add replicas: until then no node drain can evict one of these pods."
    ),
    Category.HPA_LIMITED: _describe("Raise the autoscaler's maxReplicas, or make its metrics available."),
    Category.ROLLOUT_STUCK: _describe("Look at the new pods' events to see why they don't become ready."),
}
