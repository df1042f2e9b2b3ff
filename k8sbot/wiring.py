"""Building the long-lived services from Settings.

`build_services` makes nothing talk to Slack; `attach_slack` adds what needs the Slack Web API
(the user-group directory for permissions, posting to the audit channel) once the Slack client is
built, after the configuration has been validated.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from slack_sdk import WebClient

from bot.context import Services
from bot.errors import ClusterUnavailable, ConfigError
from bot.kube.client import KubeClient, UnconfiguredKubeClient
from bot.permissions.engine import PermissionEngine, engine_of, install
from bot.permissions.identity import CachedDirectory
from bot.permissions.policy import PolicyFile
from bot.settings import Settings
from bot.slack.client import Poster
from bot.slack.directory import SlackDirectory
from bot.store.audit import AuditLog
from bot.store.database import Database

log = logging.getLogger(__name__)


def check_permissions_file(settings: Settings) -> Path:
    path = Path(settings.permissions)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"K8SBOT_PERMISSIONS: cannot read {path} (set K8SBOT_PERMISSIONS to your permissions.yaml).")
    return path


def build_services(settings: Settings, *, permissions: bool = True) -> Services:
    """Services for `run` and `ask`. With `permissions`, permissions.yaml is loaded (and validated)
    now, so a bad file stops the start with its file:line error."""
    kube: KubeClient
    try:
        kube = KubeClient.from_kubeconfig(settings.kubeconfig, context=settings.kube_context)
    except ClusterUnavailable as e:
        log.info("%s", e)
        kube = UnconfiguredKubeClient(str(e))
    services = Services(
        kube=kube,
        db=Database(settings.db),
        cluster_name=settings.cluster_name,
        channel_namespaces=dict(settings.channel_namespaces),
        default_namespace=settings.default_namespace,
    )
    services.extras["settings"] = settings
    services.extras["audit"] = AuditLog(services.db, channel=settings.audit_channel, clock=services.clock)
    if permissions:
        check_permissions_file(settings)
        install(services, PermissionEngine(PolicyFile(settings.permissions)))
    return services


def attach_slack(services: Services, settings: Settings, client: WebClient) -> None:
    """Give permissions the Slack user-group directory and the audit log a way to post."""
    engine = engine_of(services)
    if engine is not None:
        engine.directory = CachedDirectory(SlackDirectory(client), ttl=300.0)
    poster = Poster(client)
    services.extras["poster"] = poster
    audit = services.extras.get("audit")
    if isinstance(audit, AuditLog) and settings.audit_channel:

        def post_audit(channel: str, text: str) -> None:
            poster.post(channel, text=text)

        audit.post = post_audit


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
