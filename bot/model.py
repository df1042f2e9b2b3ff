"""Value types shared by every layer. Frozen, built without I/O, serialisable to JSON.

Kubernetes objects themselves travel as plain dicts in the API's JSON shape (what
`kubectl get -o json` prints): analyzers and diffing are pure functions over those dicts, and
tests build them by hand or fetch them from a real API server.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

DEFAULT_CLUSTER = "k8sbot-dev"
"""The name of the cluster when the configuration names none (`Settings.cluster_name`'s default)."""

KubeObject = dict[str, Any]
"""A Kubernetes object as the API serves it in JSON (apiVersion, kind, metadata, spec, status)."""

DEFAULT_CLUSTER = "k8sbot-dev"
"""The cluster's name when none is configured (`Settings.cluster_name`), and the cluster of the rows a
store scoped by default reads and writes (bot/store)."""


def parse_time(value: Any) -> datetime | None:
    """A Kubernetes timestamp ("2026-11-22T02:10:00Z", RFC 3339) as an aware datetime; None if absent or bad."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, order=True)
class ObjectRef:
    """Names one Kubernetes object. `namespace` is None for cluster-scoped kinds (Node, Namespace)."""

    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}

    @classmethod
    def of(cls, obj: KubeObject, *, kind: str | None = None) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(kind or obj.get("kind", ""), meta.get("namespace"), meta.get("name", ""))


class Category(StrEnum):
    """The closed vocabulary of causes, used in JSON answers, alerts and silences."""

    CRASH_LOOP = "crash_loop"
    OOM_KILLED = "oom_killed"
    IMAGE_PULL = "image_pull"
    CONFIG_ERROR = "config_error"
    UNSCHEDULABLE = "unschedulable"
    QUOTA_EXCEEDED = "quota_exceeded"
    PROBE_FAILURE = "probe_failure"
    ROLLOUT_STUCK = "rollout_stuck"
    ROLLOUT_IN_PROGRESS = "rollout_in_progress"
    SCALED_TO_ZERO = "scaled_to_zero"
    NO_ENDPOINTS = "no_endpoints"
    NODE_NOT_READY = "node_not_ready"
    EVICTED = "evicted"
    JOB_FAILED = "job_failed"
    VOLUME_ERROR = "volume_error"
    INIT_FAILURE = "init_failure"
    HPA_LIMITED = "hpa_limited"
    DISRUPTION_BLOCKED = "disruption_blocked"
    """A PodDisruptionBudget that allows no voluntary disruption of healthy pods (drains hang)."""
    EXTERNAL = "external"
    """An alert from outside (Alertmanager) whose cause the cluster does not show."""
    DEPENDENCY = "dependency"
    HEALTHY = "healthy"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed field: a dotted path with list indices (`spec.template.spec.containers[0].image`)."""

    path: str
    before: Any
    after: Any
    label: str | None = field(default=None, compare=False)
    """The field in a person's words (`env var DB_URL of container app`), when known. Derived from the
    path, so not part of equality."""

    def to_json(self) -> dict[str, Any]:
        data = {"path": self.path, "before": self.before, "after": self.after}
        if self.label:
            data["label"] = self.label
        return data


class ChangeKind(StrEnum):
    """What a change is, recognised so it can be named plainly."""

    IMAGE = "image"
    SCALE = "scale"
    ROLLBACK = "rollback"
    RESTART = "restart"
    CONFIG = "config"
    SECRET = "secret"  # noqa: S105 - a change kind, not a password
    SPEC = "spec"
    METADATA = "metadata"
    NODE_CONDITION = "node_condition"
    CREATED = "created"
    DELETED = "deleted"
    EXTERNAL = "external"
    """An event from outside the cluster (CI/CD, feature flags, ...): POST /integrations/changes."""


CLUSTER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""A cluster's name: a DNS label (RFC 1123), as it appears in `--cluster`, alerts and the store."""
KUBERNETES = "kubernetes"
"""The `source` of a change the bot saw in the cluster (every other source is an external event)."""


@dataclass(frozen=True, slots=True)
class Management:
    """What deploys an object: Argo CD, Flux or Helm, the application or release, and the revision
    (a Git commit, a chart version) when the object carries it (bot/kube/gitops.py)."""

    tool: str
    """"argocd" | "flux" | "helm"."""
    name: str
    """The Argo CD Application, the Flux Kustomization or HelmRelease, the Helm release."""
    revision: str | None = None
    controller: str = ""
    """Who writes the object for that tool (e.g. "argocd-application-controller")."""

    def describe(self) -> str:
        what = {"argocd": "Argo CD application", "flux": "Flux", "helm": "Helm release"}.get(self.tool, self.tool)
        return f"{what} {self.name}" + (f" at revision {self.revision}" if self.revision else "")

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "name": self.name, "revision": self.revision, "controller": self.controller}


@dataclass(frozen=True, slots=True)
class Change:
    """A recorded change of one object: what, when, who (field manager) and before → after.

    `source` is "kubernetes" for a change the bot saw in the cluster, else the name an external
    change event gave (`ci`, `flags`, ...: docs/integrations.md), with its `link`. An external event
    that names no object is about a namespace (`ref` is that Namespace) or the whole cluster (a
    Namespace ref with an empty name). `managed_by` names the GitOps tool or Helm release of a
    cluster change's object. `cluster` is the cluster it happened in: a change read from the store
    carries the cluster of its row (the store stamps its own cluster on every change it writes)."""

    ref: ObjectRef
    at: datetime
    kind: ChangeKind
    summary: str
    fields: tuple[FieldChange, ...] = ()
    actor: str | None = None
    revision: int | None = None
    id: int | None = None
    source: str = KUBERNETES
    link: str | None = None
    managed_by: Management | None = None
    cluster: str = DEFAULT_CLUSTER

    @property
    def external(self) -> bool:
        return self.source != KUBERNETES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cluster": self.cluster,
            "at": self.at.isoformat(),
            "ref": self.ref.to_json(),
            "kind": str(self.kind),
            "source": self.source,
            "actor": self.actor,
            "revision": self.revision,
            "summary": self.summary,
            "link": self.link,
            "managed_by": self.managed_by.to_json() if self.managed_by else None,
            "fields": [f.to_json() for f in self.fields],
        }


@dataclass(frozen=True, slots=True)
class ObjectState:
    """The part of one object's state that changes are made of, plus what identifies it.

    `body` is what gets diffed. `owner` is the controlling owner's name (a ReplicaSet's Deployment),
    `template_hash` a digest of the pod template (equal templates → equal hashes, which is how a
    rollback is recognised), `settled` False while a Deployment's controller has not yet observed
    its latest spec (so its revision annotation is not final yet).
    """

    ref: ObjectRef
    uid: str
    resource_version: str
    body: dict[str, Any]
    revision: int | None = None
    owner: str | None = None
    template_hash: str | None = None
    settled: bool = True
    first_revision: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "resource_version": self.resource_version,
            "body": self.body,
            "revision": self.revision,
            "owner": self.owner,
            "template_hash": self.template_hash,
            "first_revision": self.first_revision,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """What an analyzer saw wrong with one object. `subject` is the object, `parent` its owner."""

    subject: ObjectRef
    category: Category
    reason: str
    message: str
    severity: Severity = Severity.WARNING
    evidence: tuple[str, ...] = ()
    parent: ObjectRef | None = None
    since: datetime | None = None
    related: ObjectRef | None = None
    """Another object the finding points at: the Service a workload depends on, the node it runs on."""


@dataclass(frozen=True, slots=True)
class CulpritChange:
    """The change a cause is blamed on, narrowed to the one field that matters."""

    ref: ObjectRef
    at: datetime | None
    actor: str | None
    revision: int | None
    path: str
    before: Any
    after: Any
    what: str | None = None
    """The changed thing in a person's words: `env var DB_URL of container app`, `key LOG_LEVEL of
    ConfigMap settings`. `path` stays the exact field for tools."""
    source: str = KUBERNETES
    link: str | None = None
    summary: str | None = None
    """An external change's own summary (what the event said happened)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref.to_json(),
            "at": self.at.isoformat() if self.at else None,
            "source": self.source,
            "actor": self.actor,
            "revision": self.revision,
            "path": self.path,
            "what": self.what or self.path,
            "before": self.before,
            "after": self.after,
            "summary": self.summary,
            "link": self.link,
        }


@dataclass(frozen=True, slots=True)
class Suggestion:
    text: str
    command: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command, "text": self.text}


@dataclass(frozen=True, slots=True)
class Cause:
    """One ranked explanation in a diagnosis."""

    category: Category
    confidence: float
    title: str
    evidence: tuple[str, ...] = ()
    change: CulpritChange | None = None
    suggestion: Suggestion | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "category": str(self.category),
            "confidence": round(self.confidence, 2),
            "title": self.title,
            "evidence": list(self.evidence),
            "change": self.change.to_json() if self.change else None,
            "suggestion": self.suggestion.to_json() if self.suggestion else None,
        }


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """`why`'s answer. A failing analyzer adds to `errors`; the others still report."""

    target: ObjectRef
    healthy: bool
    summary: str
    causes: tuple[Cause, ...] = ()
    findings: tuple[Finding, ...] = ()
    errors: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.to_json(),
            "healthy": self.healthy,
            "summary": self.summary,
            "causes": [c.to_json() for c in self.causes],
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking: the Slack user and the Kubernetes identity the bot acts as for them.

    `k8s_user` None means "the bot's own credentials" (terminal use without --as, read-only paths).
    """

    slack_user: str | None
    usergroups: frozenset[str] = frozenset()
    k8s_user: str | None = None
    k8s_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Command:
    """A parsed `/k8s` command: `verb target -n namespace --flag value`."""

    verb: str
    target: str | None = None
    namespace: str | None = None
    flags: tuple[tuple[str, str | bool], ...] = ()
    raw: str = ""
    cluster: str | None = None
    """`--cluster NAME`: which configured cluster the command is for (None: the channel's or the only one)."""

    def flag(self, name: str, default: Any = None) -> Any:
        for key, value in self.flags:
            if key == name:
                return value
        return default

    def as_text(self) -> str:
        """The canonical text of this command; parsing it again gives an equal Command."""
        parts = [self.verb]
        if self.target:
            parts.append(self.target)
        if self.namespace:
            parts += ["-n", self.namespace]
        if self.cluster:
            parts += ["--cluster", self.cluster]
        for key, value in self.flags:
            if value is True:
                parts.append(f"--{key}")
            elif value is not False:
                parts += [f"--{key}", shlex.quote(str(value))]  # a value with spaces or quotes stays one word
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Button:
    """A button under an answer or alert. Its value is the canonical command text a person could type,
    so a click re-enters the same parse → authorize → run → audit path as a typed command."""

    text: str
    command: str
    style: str | None = None  # "primary" | "danger" | None


@dataclass(frozen=True, slots=True)
class Picture:
    """A picture an answer offers beside its text: which drawing (`kind`, e.g. "timeline"), the plain
    data it is drawn from (drawn at the edge that shows it: Slack, `k8sbot ask --png`), and the words
    that say what it shows (its alt text; unescaped, like every text of an Answer)."""

    kind: str
    data: dict[str, Any]
    alt_text: str
    filename: str
    title: str


@dataclass(frozen=True, slots=True)
class Answer:
    """What a verb returns: structured data for --json, and the pieces a renderer turns into text.

    `data` is the verb's JSON contract. `title` and `lines` are a plain rendering (mrkdwn-safe text is
    produced by the renderer, not here). `private` answers go only to the person who asked.
    """

    verb: str
    data: dict[str, Any]
    title: str
    lines: tuple[str, ...] = ()
    private: bool = False
    ok: bool = True
    attachments: tuple[tuple[str, str], ...] = field(default=())
    """(filename, content) pairs too long for a message; Slack gets them as files."""
    buttons: tuple[Button, ...] = ()
    """Follow-up actions (Why, Logs, Rollback...). A confirmation request is `data["confirm"]` instead:
    `{"command": <canonical text to run once confirmed>, "text": <exactly what will change>}`."""
    pictures: tuple[Picture, ...] = ()
    """Pictures to show beside the answer (the timeline); Slack gets them as image files."""
