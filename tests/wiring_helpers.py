"""Building the command path's services for tests: real stores over a real SQLite file, the
production verb and analyzer registries (each test may pass its own), no global state."""

from __future__ import annotations

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
