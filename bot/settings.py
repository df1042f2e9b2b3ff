"""One frozen Settings object from the environment (12-factor) and an optional YAML config file.

Environment variables win over the file. Validation happens before anything talks to Slack or the
cluster, and a problem stops the start with one sentence naming the setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError

SLACK_API_DEFAULT = "https://slack.com/api/"

ENV = {
    "slack_bot_token": "SLACK_BOT_TOKEN",
    "slack_app_token": "SLACK_APP_TOKEN",
    "slack_signing_secret": "SLACK_SIGNING_SECRET",
    "slack_api_url": "K8SBOT_SLACK_API_URL",
    "db": "K8SBOT_DB",
    "permissions": "K8SBOT_PERMISSIONS",
    "cluster_name": "K8SBOT_CLUSTER_NAME",
    "kubeconfig": "KUBECONFIG",
    "kube_context": "K8SBOT_KUBE_CONTEXT",
    "http_host": "K8SBOT_HTTP_HOST",
    "http_port": "K8SBOT_HTTP_PORT",
    "default_namespace": "K8SBOT_DEFAULT_NAMESPACE",
    "default_channel": "K8SBOT_DEFAULT_CHANNEL",
    "audit_channel": "K8SBOT_AUDIT_CHANNEL",
    "timezone": "K8SBOT_TIMEZONE",
    "digest_cron": "K8SBOT_DIGEST_CRON",
    "retention_days": "K8SBOT_RETENTION_DAYS",
    "log_level": "K8SBOT_LOG_LEVEL",
    "alert_settle_seconds": "K8SBOT_ALERT_SETTLE_SECONDS",
    "alert_resolve_seconds": "K8SBOT_ALERT_RESOLVE_SECONDS",
}


class Settings(BaseModel):
    """Everything the bot is configured with. Field names are the config-file keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = SLACK_API_DEFAULT
    db: str = "k8sbot.db"
    permissions: str = "permissions.yaml"
    cluster_name: str = "k8sbot-dev"
    kubeconfig: str | None = None
    kube_context: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=3000, ge=0, le=65535)
    default_namespace: str | None = None
    channel_namespaces: dict[str, str] = Field(default_factory=dict)
    """Slack channel id → the namespace commands in that channel use when `-n` is not given."""
    default_channel: str | None = None
    """Where alerts go when no team's namespaces match."""
    audit_channel: str | None = None
    timezone: str = "UTC"
    digest_cron: str = "0 9 * * mon-fri"
    retention_days: int = Field(default=30, ge=1, le=3650)
    watch_namespaces: list[str] = Field(default_factory=lambda: ["*"])
    ignore_namespaces: list[str] = Field(default_factory=lambda: ["kube-system", "kube-public", "kube-node-lease"])
    log_level: str = "INFO"
    alert_settle_seconds: float = Field(default=30.0, ge=0, le=3600)
    """How long a problem must last before it pages (a flapping pod does not)."""
    alert_resolve_seconds: float = Field(default=60.0, ge=0, le=86400)
    """How long a workload must stay healthy before its alert is marked resolved."""
    redact_keys: list[str] = Field(default_factory=list)
    """Key-name fragments that mark a value as secret, beyond the built-in ones (bot/redaction.py)."""
    redact_token_prefixes: list[str] = Field(default_factory=list)
    """Literal prefixes of your own tokens (`acme_live_`): hidden wherever they appear."""

    @field_validator("slack_api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("redact_keys")
    @classmethod
    def _fragments(cls, value: list[str]) -> list[str]:
        for fragment in value:
            if not (2 <= len(fragment) <= 40 and fragment.isascii() and fragment.isalnum()):
                raise ValueError(f"{fragment!r} is not a key fragment (2 to 40 letters or digits, e.g. pin)")
        return [fragment.lower() for fragment in value]

    @field_validator("redact_token_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        for prefix in value:
            if not (3 <= len(prefix) <= 40 and all(c.isascii() and (c.isalnum() or c in "_.~-") for c in prefix)):
                raise ValueError(f"{prefix!r} is not a token prefix (3 to 40 of A-Z a-z 0-9 _ . ~ -, e.g. acme_live_)")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from e
        return value

    # -- checks that depend on how the bot is started ---------------------------------------------

    def require_slack(self, *, http: bool) -> None:
        """Stop with one clear sentence if the Slack settings cannot work for this mode."""
        if not self.slack_bot_token:
            raise ConfigError("SLACK_BOT_TOKEN is not set: give the bot token (xoxb-…) of your Slack app.")
        if not self.slack_bot_token.startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
        if http:
            if not self.slack_signing_secret:
                raise ConfigError("SLACK_SIGNING_SECRET is not set: HTTP mode must verify Slack's signatures.")
            return
        if not self.slack_app_token:
            raise ConfigError(
                "SLACK_APP_TOKEN is not set: give the app-level token (xapp-…) for Socket Mode, or start with --http."
            )
        if not self.slack_app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp- (not the bot token).")


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from K8SBOT_CONFIG (YAML, optional), then the environment, then `overrides`."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_path = env.get("K8SBOT_CONFIG")
    if config_path:
        values.update(_read_config_file(config_path))
    for field_name, variable in ENV.items():
        raw = env.get(variable)
        if raw is not None and raw != "":
            values[field_name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as e:
        first = e.errors()[0]
        field_name = str(first["loc"][0]) if first["loc"] else "?"
        where = ENV.get(field_name, field_name)
        source = f"{where} / {field_name} in {config_path}" if config_path else where
        raise ConfigError(f"setting {source}: {first['msg']}") from e


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"K8SBOT_CONFIG: cannot read {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"K8SBOT_CONFIG: {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"K8SBOT_CONFIG: {path} must be a mapping of setting names to values.")
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"K8SBOT_CONFIG: {path} has unknown setting {unknown[0]!r}.")
    return data
