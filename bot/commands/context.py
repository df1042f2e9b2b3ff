"""What a verb gets to work with: the command services (built once, by the composition root), who is
asking, and from where."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from bot.clock import Clock, utcnow
from bot.commands.specs import VerbSpec
from bot.errors import UsageError
from bot.model import Answer, Change, Command, ObjectRef, Subject
from bot.permissions.reading import ReadAccess
from bot.permissions.targets import acted_namespace
from bot.redaction import DEFAULT, Redactor

if TYPE_CHECKING:  # types of the fields only: importing the stores, the client and the engine is not needed
    from bot.diagnosis.analyzers import AnalyzerRegistry
    from bot.kube.cache import CacheView
    from bot.kube.client import KubeClient
    from bot.permissions.engine import PermissionEngine
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
    clusters: tuple[str, ...] = ()
    """Every cluster this bot serves (for `help`); empty: only `cluster_name`."""


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
    cache: CacheView | None = None
    """The watch cache (`bot.kube.cache`), read-only: fed by the watchers while this replica leads.
    None in the terminal (`ask`) and when turned off (`watch_cache: false`)."""
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
    def cache(self) -> CacheView | None:
        """The watch cache for people who read as the bot (no Kubernetes identity of their own). A person
        mapped to an identity reads from the API as that identity: their RBAC decides what they see."""
        return None if self.subject.k8s_user else self.services.cache

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

    def acted_namespace(self, command: Command) -> str | None:
        """Where `command` acts, which is where it is authorized: None (cluster-wide) when its target
        is of a cluster-scoped kind (`node/x`, `ns/x`), else `namespace_or_none`. The permission
        decision and the verb both use this, so they cannot disagree."""
        namespace = self.namespace_or_none(command)
        spec = self.services.verbs.specs.get(command.verb)
        if spec is not None and not spec.target_is_object:
            return namespace
        return acted_namespace(command, namespace)

    @cached_property
    def reads(self) -> ReadAccess:
        """What this person may read of the bot's own records (asked once per kind and namespace)."""
        return ReadAccess(self.services.permissions if self.subject.slack_user else None, self.subject)

    @property
    def history(self) -> ReadableHistory:
        """The change history, limited to the kinds this person may read where they changed."""
        return ReadableHistory(self.services.changes, self.reads)


@dataclass(frozen=True)
class ReadableHistory:
    """`ChangeStore.changes_for` for one person: objects of kinds they may not read are left out."""

    store: ChangeStore
    reads: ReadAccess

    def changes_for(self, refs: Sequence[ObjectRef], since: datetime) -> list[Change]:
        return self.store.changes_for([r for r in refs if self.reads.allowed(r.kind, r.namespace)], since)
