"""What a verb gets to work with: the command services (built once, by the composition root), who is
asking, and from where."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.clock import Clock, utcnow
from bot.commands.specs import VerbSpec
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.errors import UsageError
from bot.kube.client import KubeClient
from bot.model import Answer, Command, Subject
from bot.permissions.engine import PermissionEngine
from bot.redaction import DEFAULT, Redactor
from bot.store.alerts import AlertStore
from bot.store.audit import AuditLog
from bot.store.changes import ChangeStore


@dataclass(frozen=True, slots=True)
class Placement:
    """Where commands run when they do not say: the cluster's name and the default namespaces."""

    cluster_name: str = "k8sbot-dev"
    channel_namespaces: dict[str, str] = field(default_factory=dict)
    """Slack channel id → the namespace commands in that channel use when `-n` is not given."""
    default_namespace: str | None = None


VerbFunc = Callable[["VerbContext", Command], Answer]
"""A verb's implementation: the context it runs in and the parsed command in, an Answer out."""


class VerbTable(Protocol):
    """The verbs the command path may run (`bot.commands.registry.VerbRegistry` in the bot)."""

    @property
    def specs(self) -> Mapping[str, VerbSpec]: ...

    @property
    def funcs(self) -> Mapping[str, VerbFunc]: ...

    def names(self) -> frozenset[str]: ...


@dataclass
class CommandServices:
    """Everything the command path and the verbs use, each built once at start.

    `kube` acts with the bot's own identity; a verb that acts for a person uses `VerbContext.kube`,
    which impersonates that person when permissions.yaml maps them to a Kubernetes identity.
    `permissions` None means terminal use without permissions.yaml: the kubeconfig's own identity.
    """

    kube: KubeClient
    audit: AuditLog
    changes: ChangeStore
    alerts: AlertStore
    verbs: VerbTable
    analyzers: AnalyzerRegistry
    permissions: PermissionEngine | None = None
    placement: Placement = field(default_factory=Placement)
    redactor: Redactor = DEFAULT
    """The one redaction (configured rules, the change store's fingerprint) every verb shows text through."""
    clock: Clock = utcnow
    _subject_clients: dict[tuple[str, tuple[str, ...]], KubeClient] = field(default_factory=dict, repr=False)

    @property
    def cluster_name(self) -> str:
        return self.placement.cluster_name

    def kube_for(self, subject: Subject) -> KubeClient:
        """The client that acts as `subject`: impersonating when mapped, else the bot's own."""
        if not subject.k8s_user:
            return self.kube
        key = (subject.k8s_user, tuple(subject.k8s_groups))
        client = self._subject_clients.get(key)
        if client is None:
            client = self.kube.as_subject(subject.k8s_user, tuple(subject.k8s_groups))
            self._subject_clients[key] = client
        return client


@dataclass
class VerbContext:
    services: CommandServices
    subject: Subject
    channel: str | None = None
    confirmed: bool = False
    """True when the person already confirmed a mutating action (a confirmed click, or `--yes`)."""

    @property
    def kube(self) -> KubeClient:
        return self.services.kube_for(self.subject)

    @property
    def now(self) -> datetime:
        return self.services.clock()

    def namespace_for(self, command: Command) -> str:
        """`-n`, else the channel's default namespace, else the configured default, else a clear error."""
        namespace = command.namespace
        placement = self.services.placement
        if namespace is None and self.channel:
            namespace = placement.channel_namespaces.get(self.channel)
        namespace = namespace or placement.default_namespace
        if not namespace:
            raise UsageError("Which namespace? Add `-n <namespace>` (this channel has no default namespace).")
        return namespace

    def namespace_or_none(self, command: Command) -> str | None:
        """`namespace_for`, or None when nothing names one (the verb decides whether that is an error)."""
        try:
            return self.namespace_for(command)
        except UsageError:
            return None
