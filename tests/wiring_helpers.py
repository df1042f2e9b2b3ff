"""Building the command path's services for tests: real stores over a real SQLite file, the
production verb and analyzer registries (each test may pass its own), no global state."""

from __future__ import annotations

import socket
from pathlib import Path

from bot.clock import Clock, utcnow
from bot.commands.context import CommandServices, Placement
from bot.commands.registry import VerbRegistry
from bot.diagnosis.analyzers import AnalyzerRegistry
from bot.kube.client import KubeClient
from bot.permissions.engine import PermissionEngine
from bot.store.alerts import AlertStore
from bot.store.audit import AuditLog
from bot.store.changes import ChangeStore
from bot.store.database import Database

VERBS = VerbRegistry.discover()
"""The production verbs (discovered once per test session; a registry is never mutated)."""
ANALYZERS = AnalyzerRegistry.discover()
VERB_NAMES = VERBS.names()


def command_services(
    kube: KubeClient,
    database: Database,
    *,
    permissions: PermissionEngine | None = None,
    changes: ChangeStore | None = None,
    audit: AuditLog | None = None,
    verbs: VerbRegistry = VERBS,
    analyzers: AnalyzerRegistry = ANALYZERS,
    placement: Placement | None = None,
    clock: Clock = utcnow,
) -> CommandServices:
    return CommandServices(
        kube=kube,
        audit=audit or AuditLog(database, clock=clock),
        changes=changes or ChangeStore(database, clock=clock),
        alerts=AlertStore(database, clock=clock),
        verbs=verbs,
        analyzers=analyzers,
        permissions=permissions,
        placement=placement or Placement(),
        clock=clock,
    )


def unanswered_kubeconfig(path: Path, name: str = "c") -> str:
    """A kubeconfig of a cluster nobody answers for (a closed port on 127.0.0.1), written to `path`:
    what a several-cluster bot is built with when a test needs its wiring, not a cluster."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: {name}, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: {name}, context: {{cluster: {name}, user: u}}}}]
current-context: {name}
"""
    )
    return str(path)
