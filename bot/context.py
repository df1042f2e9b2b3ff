"""What a verb gets to work with: the services, who is asking, and where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.errors import UsageError
from bot.kube.client import KubeClient
from bot.model import Command, Subject
from bot.store.database import Database


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Long-lived things built once at start: the bot's own Kubernetes client, the database, ...

    `kube` acts with the bot's own identity; a verb that acts for a person uses `VerbContext.kube`,
    which impersonates that person when permissions.yaml maps them to a Kubernetes identity.
    `extras` holds optional services that features add (permission engine, change store, ...).
    """

    kube: KubeClient
    db: Database
    cluster_name: str = "k8sbot-dev"
    channel_namespaces: dict[str, str] = field(default_factory=dict)
    default_namespace: str | None = None
    clock: Callable[[], datetime] = utcnow
    extras: dict[str, Any] = field(default_factory=dict)
    _subject_clients: dict[tuple[str, tuple[str, ...]], KubeClient] = field(default_factory=dict)

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
    services: Services
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
        if namespace is None and self.channel:
            namespace = self.services.channel_namespaces.get(self.channel)
        namespace = namespace or self.services.default_namespace
        if not namespace:
            raise UsageError("Which namespace? Add `-n <namespace>` (this channel has no default namespace).")
        return namespace
