"""One frozen Settings object from the environment (12-factor) and an optional YAML config file.

Environment variables win over the file. Validation happens before anything talks to Slack or the
cluster, and a problem stops the start with one sentence naming the setting.

The YAML files the bot reads (the K8SBOT_CONFIG file here, permissions.yaml in bot.permissions) are
input someone else may control, so they are read by one bounded reader: a regular file of at most
`MAX_FILE_BYTES`, UTF-8, one document, no anchors or aliases (nothing expands: an alias bomb is
refused, not evaluated), no tags (`!!python/object` and friends), at most `MAX_DEPTH` levels deep
and `MAX_NODES` values. Every refusal names the line and the field.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError
from bot.model import CLUSTER_NAME, DEFAULT_CLUSTER

SLACK_API_DEFAULT = "https://slack.com/api/"
LABEL_MAP_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod", "Service")
"""What a value of `alertmanager_label_map` may name."""
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
MAX_CLUSTERS = 50
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,20}")


def check_cluster_name(value: str) -> str:
    if not CLUSTER_NAME.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a cluster name (a DNS label: a-z, 0-9 and '-', at most 63)")
    return value


class ClusterConfig(BaseModel):
    """One entry of `clusters`: a name, and how to reach it (no kubeconfig: the in-cluster config)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kubeconfig: str | None = Field(default=None, min_length=1, max_length=4096)
    context: str | None = Field(default=None, min_length=1, max_length=253)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_cluster_name(value)


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
    "leader_election": "K8SBOT_LEADER_ELECTION",
    "leader_namespace": "K8SBOT_LEADER_NAMESPACE",
    "leader_lease_name": "K8SBOT_LEADER_LEASE_NAME",
    "leader_lease_seconds": "K8SBOT_LEADER_LEASE_SECONDS",
    "leader_renew_seconds": "K8SBOT_LEADER_RENEW_SECONDS",
    "leader_retry_seconds": "K8SBOT_LEADER_RETRY_SECONDS",
    "shutdown_grace_seconds": "K8SBOT_SHUTDOWN_GRACE_SECONDS",
    "integration_token": "K8SBOT_INTEGRATION_TOKEN",
    "watch_cache": "K8SBOT_WATCH_CACHE",
}


class Settings(BaseModel):
    """Everything the bot is configured with. Field names are the config-file keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str = SLACK_API_DEFAULT
    db: str = "k8sbot.db"
    permissions: str = "permissions.yaml"
    cluster_name: str = DEFAULT_CLUSTER
    """The one cluster's name without `clusters`; with it, the cluster rows recorded before get (if listed)."""
    kubeconfig: str | None = None
    kube_context: str | None = None
    clusters: list[ClusterConfig] = Field(default_factory=list, max_length=MAX_CLUSTERS)
    """Several clusters in one bot (docs/multi-cluster.md); empty: one, `cluster_name` from `kubeconfig`."""
    channel_clusters: dict[str, str] = Field(default_factory=dict)
    """Slack channel id → the cluster commands in that channel use when `--cluster` is not given."""
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
    leader_election: bool = True
    """Run watchers, alerting and the digest only while holding the Lease (one leader among replicas)."""
    leader_namespace: str | None = None
    """Namespace of the Lease; unset: the namespace the bot's pod runs in, else `k8sbot`."""
    leader_lease_name: str = Field(default="k8sbot-leader", min_length=1, max_length=253)
    leader_lease_seconds: float = Field(default=15.0, gt=0, le=3600)
    """How long a Lease lasts without renewal (client-go's default)."""
    leader_renew_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How long the leader keeps trying to renew before it gives up leading."""
    leader_retry_seconds: float = Field(default=2.0, gt=0, le=600)
    """How often candidates try to acquire, and the leader renews."""
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=600)
    """On SIGTERM: how long in-flight commands and the outbox get before the bot exits (keep it below
    the pod's terminationGracePeriodSeconds, 30 s by default)."""
    integration_token: str | None = Field(default=None, min_length=16, max_length=512)
    """The bearer token of `/integrations/alertmanager` and `/integrations/changes`; unset: not served."""
    alertmanager_label_map: dict[str, str] = Field(default_factory=dict, max_length=50)
    """Alertmanager label name → the workload kind its value names (`Deployment`, `StatefulSet`,
    `DaemonSet`, `Job`, `Pod`, `Service`), beside the built-in `deployment`, `statefulset`, ... labels."""
    alertmanager_cluster_label: str | None = "cluster"
    """The Alertmanager label whose value names the cluster an alert is about (one of `clusters`); null:
    no label, every alert is about the one cluster (a single-cluster bot only)."""
    watch_cache: bool = True
    """Hold what the watchers see in memory, so `why`, `status` and `describe` answer from it (the leader only)."""
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

    @field_validator("alertmanager_label_map")
    @classmethod
    def _label_map(cls, value: dict[str, str]) -> dict[str, str]:
        kinds = {k.lower(): k for k in LABEL_MAP_KINDS}
        mapped: dict[str, str] = {}
        for label, kind in value.items():
            if not _LABEL_NAME.fullmatch(label):
                raise ValueError(f"{label[:100]!r} is not a Prometheus label name ([A-Za-z_][A-Za-z0-9_]*)")
            if kind.lower() not in kinds:
                raise ValueError(f"label {label!r} maps to {kind[:40]!r}; use one of {', '.join(LABEL_MAP_KINDS)}")
            mapped[label] = kinds[kind.lower()]
        return mapped

    @field_validator("alertmanager_cluster_label")
    @classmethod
    def _cluster_label(cls, value: str | None) -> str | None:
        if value is not None and not _LABEL_NAME.fullmatch(value):
            raise ValueError(f"{value[:100]!r} is not a Prometheus label name ([A-Za-z_][A-Za-z0-9_]*)")
        return value

    @field_validator("cluster_name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        return check_cluster_name(value)

    @field_validator("clusters")
    @classmethod
    def _clusters(cls, value: list[ClusterConfig]) -> list[ClusterConfig]:
        seen: set[str] = set()
        for entry in value:
            if entry.name in seen:
                raise ValueError(f"cluster {entry.name!r} is listed twice (names must be unique)")
            seen.add(entry.name)
        in_cluster = [entry.name for entry in value if entry.kubeconfig is None]
        if len(in_cluster) > 1:  # both would be the cluster the bot runs in: one cluster under two names
            raise ValueError(
                f"clusters {', '.join(in_cluster)} have no kubeconfig: only one entry can be the cluster the bot "
                "runs in (give the others a kubeconfig)"
            )
        return value

    @model_validator(mode="after")
    def _channel_clusters(self) -> Settings:
        names = [c.name for c in self.cluster_configs()]
        for channel, cluster in self.channel_clusters.items():
            if not _CHANNEL.fullmatch(channel):
                raise ValueError(f"channel_clusters: {channel[:40]!r} is not a Slack channel id (like C0123ABCD)")
            if cluster not in names:
                raise ValueError(
                    f"channel_clusters: channel {channel} names cluster {cluster[:80]!r}, which is not configured "
                    f"(clusters: {', '.join(names)})"
                )
        if self.alertmanager_cluster_label is None and len(names) > 1:
            raise ValueError(
                "alertmanager_cluster_label: null works with one cluster only; with several, Alertmanager's alerts "
                "need a label naming their cluster (default: cluster)"
            )
        return self

    def cluster_configs(self) -> tuple[ClusterConfig, ...]:
        """The clusters this bot serves, in the configured order (always at least one)."""
        if self.clusters:
            return tuple(self.clusters)
        return (ClusterConfig(name=self.cluster_name, kubeconfig=self.kubeconfig, context=self.kube_context),)

    @property
    def legacy_cluster(self) -> str:
        """The cluster the rows of a database written before clusters had names belong to:
        `cluster_name` when it is one of the clusters, else the first one."""
        names = [c.name for c in self.cluster_configs()]
        return self.cluster_name if self.cluster_name in names else names[0]

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
    file_lines: dict[str, int] = {}
    if config_path:
        from_file, file_lines = _read_config_file(config_path)
        values.update(from_file)
    for field_name, variable in ENV.items():
        raw = env.get(variable)
        if raw is not None and raw != "":
            values[field_name] = raw
            file_lines.pop(field_name, None)
    for name, value in overrides.items():
        if value is not None:
            values[name] = value
            file_lines.pop(name, None)
    try:
        return Settings(**values)
    except ValidationError as e:
        first = e.errors()[0]
        field_name = str(first["loc"][0]) if first["loc"] else "?"
        message = str(first["msg"]).removeprefix("Value error, ")
        if field_name == "?" and message.partition(": ")[0] in Settings.model_fields:  # a check across fields
            field_name, _, message = message.partition(": ")
        if len(message) > 200:  # validators quote the value, which may be as long as the file
            message = message[:199] + "…"
        if field_name in file_lines:  # the value came from the file: point at its line
            raise ConfigError(
                f"K8SBOT_CONFIG: {config_path}:{file_lines[field_name]}: {field_name}: {message}"
            ) from None
        raise ConfigError(f"setting {ENV.get(field_name, field_name)}: {message}") from None


def _read_config_file(path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The file's settings and the line each one is on."""
    try:
        root, data = load_yaml_file(path)
    except YamlRefused as e:
        if e.line is None:
            raise ConfigError(f"K8SBOT_CONFIG: cannot read {path}: {e.problem}") from None
        raise ConfigError(f"K8SBOT_CONFIG: {e.located(path)}") from None
    if root is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"K8SBOT_CONFIG: {path}:1: must be a mapping of setting names to values.")
    duplicates = duplicate_keys(root)
    if duplicates:
        line, name = duplicates[0]
        raise ConfigError(f"K8SBOT_CONFIG: {path}:{line}: {name}: duplicate key (the earlier one would be ignored)")
    lines = {str(key.value): key.start_mark.line + 1 for key, _ in root.value}
    for name in data:
        if name not in Settings.model_fields:
            raise ConfigError(f"K8SBOT_CONFIG: {path}:{lines.get(str(name), 1)}: unknown setting {name!r}.")
    return data, lines


# -- reading the YAML files the bot is given ------------------------------------------------------

MAX_FILE_BYTES = 128 * 1024
"""The largest YAML file the bot reads. permissions.yaml for hundreds of teams is a few tens of KiB;
the bound keeps one (re)load well under a second of pure-Python parsing."""
MAX_DEPTH = 20
"""How deeply lists and mappings may nest (permissions.yaml needs 6 levels)."""
MAX_NODES = 20_000
"""How many values (scalars, lists, mappings, keys included) one file may hold: hundreds of teams
need a few thousand. With MAX_FILE_BYTES this bounds one parse to about a second at worst."""
_MAX_INT_DIGITS = 100

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class YamlRefused(Exception):
    """A YAML file the bot will not use. `line` is 1-based (None: the file as a whole, e.g. unreadable);
    `field` is the dotted path of the value concerned, when known."""

    def __init__(self, problem: str, *, line: int | None = None, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.field = field

    def located(self, source: str) -> str:
        """`source:line: field: problem` (the parts that are known)."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.field}: {self.problem}" if self.field else f"{where}: {self.problem}"


def read_yaml_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a regular file of at most MAX_FILE_BYTES, or YamlRefused (line None).

    Opened non-blocking and checked on the open descriptor, so a FIFO, a device (/dev/zero), a
    directory or a file swapped in between never blocks the reader or fills its memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise YamlRefused(e.strerror or str(e)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
            raise YamlRefused(f"not a regular file ({kind})")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as e:
        raise YamlRefused(e.strerror or str(e)) from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise YamlRefused(f"larger than {MAX_FILE_BYTES // 1024} KiB; the bot does not read files this big")
    return b"".join(chunks)


def load_yaml_file(path: str | os.PathLike[str]) -> tuple[yaml.Node | None, Any]:
    """`parse_yaml` of a file read by `read_yaml_bytes`."""
    return parse_yaml(decode_yaml(read_yaml_bytes(path)))


def decode_yaml(data: bytes) -> str:
    """UTF-8 text (a leading BOM is dropped), or YamlRefused naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise YamlRefused(
            f"not UTF-8 text (byte 0x{data[e.start]:02x} at column {column}); save the file as UTF-8", line=line
        ) from None


def parse_yaml(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for lines) and the data of one bounded YAML document; YamlRefused otherwise.

    Nothing is expanded: anchors, aliases and tags are refused where they are written, and nesting
    is bounded, so time and memory follow the size of the text."""
    if len(text) > MAX_FILE_BYTES:
        raise YamlRefused(f"larger than {MAX_FILE_BYTES // 1024} KiB; the bot does not read files this big")
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader checks every character here
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.composer.ComposerError as e:
        if e.context == "expected a single document in the stream":
            mark = e.problem_mark
            line = mark.line + 1 if mark else None
            raise YamlRefused(
                "more than one YAML document (a second `---`); the file must hold one", line=line
            ) from None
        raise _syntax_error(e) from None
    except yaml.MarkedYAMLError as e:
        raise _syntax_error(e) from None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        raise YamlRefused(f"not valid YAML: unacceptable character #x{e.character:04x}", line=line) from None
    except yaml.YAMLError as e:
        raise YamlRefused(f"not valid YAML: {_one_line(str(e))}", line=1) from None
    finally:
        if loader is not None:
            loader.dispose()
    return node, data


def duplicate_keys(node: yaml.Node, path: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """(line, dotted path) of every key written twice in one mapping (YAML keeps the last silently)."""
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                found.append((key.start_mark.line + 1, ".".join((*path, name))))
            seen.add(name)
            found += duplicate_keys(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found += duplicate_keys(item, (*path, str(index)))
    return found


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlRefused:
    mark = error.problem_mark or error.context_mark
    problem = " ".join(part for part in (error.context, error.problem) if part) or "syntax error"
    return YamlRefused(f"not valid YAML: {_one_line(problem)}", line=mark.line + 1 if mark else 1)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a composer that refuses anchors, aliases, tags and deep nesting,
    and keeps the path of the value it is at, for the message."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._path: list[str] = []
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        segment = _segment(parent, index)
        if segment is not None:
            self._path.append(segment)
        try:
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise self._refused(
                    event, "anchors and aliases (&name, *name, <<: *name) are not allowed; write the value out in full"
                )
            self._nodes += 1
            if self._nodes > MAX_NODES:
                raise self._refused(event, f"more than {MAX_NODES} values in one file")
            tag = getattr(event, "tag", None)
            if tag is not None:
                raise self._refused(event, f"tags ({str(tag).replace('tag:yaml.org,2002:', '!!')}) are not allowed")
            if not isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
                return self._compose(parent, index)
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise self._refused(event, f"nested more than {MAX_DEPTH} levels deep")
            try:
                return self._compose(parent, index)
            finally:
                self._depth -= 1
        finally:
            if segment is not None:
                self._path.pop()

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        node = super().compose_node(parent, index)
        assert node is not None  # the event peeked at starts a node
        return node

    def _refused(self, event: yaml.Event, problem: str) -> YamlRefused:
        field = "".join(self._path).lstrip(".") or "(top level)"
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        return YamlRefused(problem, line=line, field=field)

    def construct_bounded_int(self, node: yaml.ScalarNode) -> Any:
        # Python refuses to convert ints of more than 4300 digits with a ValueError: refuse them here.
        if len(str(node.value)) > _MAX_INT_DIGITS:
            raise YamlRefused(f"a number of more than {_MAX_INT_DIGITS} digits", line=node.start_mark.line + 1)
        return self.construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_bounded_int)


def _segment(parent: yaml.Node | None, index: Any) -> str | None:
    """The path segment of the node composed under `parent` at `index` (a key node, a position)."""
    if isinstance(index, int) and not isinstance(index, bool):
        return f"[{index}]"
    if isinstance(index, yaml.ScalarNode):
        return f".{index.value}"
    if isinstance(index, yaml.Node):
        return ".(key)"
    return None
