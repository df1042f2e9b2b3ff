"""Building the long-lived services from Settings. Nothing here talks to Slack."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bot.context import Services
from bot.errors import ClusterUnavailable, ConfigError
from bot.kube.client import KubeClient, UnconfiguredKubeClient
from bot.settings import Settings
from bot.store.database import Database

log = logging.getLogger(__name__)


def check_permissions_file(settings: Settings) -> Path:
    path = Path(settings.permissions)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"K8SBOT_PERMISSIONS: cannot read {path} (set K8SBOT_PERMISSIONS to your permissions.yaml).")
    return path


def build_services(settings: Settings) -> Services:
    kube: KubeClient
    try:
        kube = KubeClient.from_kubeconfig(settings.kubeconfig, context=settings.kube_context)
    except ClusterUnavailable as e:
        log.info("%s", e)
        kube = UnconfiguredKubeClient(str(e))
    return Services(
        kube=kube,
        db=Database(settings.db),
        cluster_name=settings.cluster_name,
        channel_namespaces=dict(settings.channel_namespaces),
        default_namespace=settings.default_namespace,
    )


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
