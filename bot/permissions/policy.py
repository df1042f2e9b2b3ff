"""permissions.yaml: its schema, loading with errors that name file, line and field, and reloading.

The file is validated with pydantic (unknown fields, roles and verbs are errors) and every error is
mapped back to the YAML line it came from through the node marks PyYAML keeps while composing, so a
person editing the file reads `permissions.yaml:14: teams.shop.role: unknown role 'admin'` instead of
a pydantic location tuple. `PolicyFile` reloads the file when it changes; an invalid edit keeps the
last good policy and logs why. The file is untrusted input: it is read and parsed by the bounded
reader of bot.settings (a small regular UTF-8 file; no anchors, aliases or tags; bounded depth and
size), outside the lock that guards the policy in force.

Several clusters share one file. A team or a binding may be limited to some clusters (`clusters:`,
globs over cluster names, default every cluster), and its `namespaces` and `kubernetes` may be a
mapping from a cluster name (or `default`) to that cluster's value. `ClusterScope` is what one rule
grants in one cluster; a rule with a mapping that has neither the cluster nor `default` grants
nothing there (docs/permissions.md, "Several clusters").
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.errors import ConfigError
from bot.model import DEFAULT_CLUSTER
from bot.settings import YamlRefused, decode_yaml, duplicate_keys, parse_yaml, read_yaml_bytes

log = logging.getLogger(__name__)

DEFAULT_PATH = "permissions.yaml"
ENV_VAR = "K8SBOT_PERMISSIONS"

_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_SLACK_USERGROUP = re.compile(r"^S[A-Z0-9]{2,20}$")
_SLACK_CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,20}$")
_NAMESPACE_GLOB = re.compile(r"^(\*|[a-z0-9*?]([-a-z0-9*?]{0,61}[a-z0-9*?])?)$")
# A cluster's name is a DNS label (RFC 1123); its globs follow the namespace globs' rules.
_CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DEFAULT_KEY = "default"
"""The key of a per-cluster mapping that holds the value for every cluster it does not name."""
_KEY = re.compile(r"^[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes user/group names travel in Impersonate-* headers: printable, no spaces or separators.
_K8S_NAME = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.:@]{0,127}$")
PLACEHOLDER = "{user_id}"


def _slack_user(value: str) -> str:
    if not _SLACK_USER.match(value):
        raise ValueError(f"{value!r} is not a Slack user id (like U0123ABCD)")
    return value


def _slack_usergroup(value: str) -> str:
    if not _SLACK_USERGROUP.match(value):
        raise ValueError(f"{value!r} is not a Slack user group id (like S0123ABCD)")
    return value


def _slack_channel(value: str) -> str:
    if not _SLACK_CHANNEL.match(value):
        raise ValueError(f"{value!r} is not a Slack channel id (like C0123ABCD)")
    return value


def _namespace_glob(value: str) -> str:
    if not _NAMESPACE_GLOB.match(value):
        raise ValueError(
            f"{value!r} is not a namespace glob: use lowercase letters, digits, '-', and the wildcards '*' and '?'"
        )
    return value


def is_cluster_name(value: str) -> bool:
    """A cluster's name is a DNS label (RFC 1123): lowercase letters, digits and '-', at most 63."""
    return bool(_CLUSTER_NAME.match(value))


def _cluster_glob(value: str) -> str:
    if not _NAMESPACE_GLOB.match(value):
        raise ValueError(
            f"{value!r} is not a cluster name glob: use lowercase letters, digits, '-', and the wildcards '*' and '?'"
        )
    return value


def _cluster_key(value: str) -> str:
    if value != DEFAULT_KEY and not _CLUSTER_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a cluster name (a DNS label: lowercase letters, digits and '-', at most 63) "
            f"nor {DEFAULT_KEY!r}"
        )
    return value


def _k8s_group(value: str) -> str:
    if not _K8S_NAME.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes group name the bot will impersonate")
    if value.startswith("system:"):
        raise ValueError(f"{value!r}: 'system:' groups are reserved; bind your own group instead")
    return value


def _user_template(value: str) -> str:
    # Only the Slack user id may be substituted: ids are validated, display names are not.
    rest = value.replace(PLACEHOLDER, "x")
    if "{" in rest or "}" in rest:
        raise ValueError(f"{value!r}: the only placeholder allowed is {PLACEHOLDER}")
    if not _K8S_NAME.match(rest):
        raise ValueError(f"{value!r} is not a Kubernetes user name the bot will impersonate")
    if rest.startswith("system:"):
        raise ValueError(f"{value!r}: 'system:' users are reserved")
    return value


def _verb(value: str, info: ValidationInfo) -> str:
    """A verb the bot knows: the parser's registry names them (`verbs` in the validation context)."""
    known = frozenset((info.context or {}).get("verbs") or ())
    if value not in known:
        raise ValueError(f"unknown verb {value!r} (verbs: {', '.join(sorted(known))})")
    return value


def _key(what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(f"{value!r} is not a {what} name (lowercase letters, digits, '-', '_')")
        return value

    return check


Verb = Annotated[str, AfterValidator(_verb)]
RoleName = Annotated[str, AfterValidator(_key("role"))]
TeamName = Annotated[str, AfterValidator(_key("team"))]
SlackUser = Annotated[str, AfterValidator(_slack_user)]
SlackUsergroup = Annotated[str, AfterValidator(_slack_usergroup)]
SlackChannel = Annotated[str, AfterValidator(_slack_channel)]
NamespaceGlob = Annotated[str, AfterValidator(_namespace_glob)]
ClusterGlob = Annotated[str, AfterValidator(_cluster_glob)]
ClusterKey = Annotated[str, AfterValidator(_cluster_key)]
K8sGroup = Annotated[str, AfterValidator(_k8s_group)]


class _Strict(BaseModel):
    # Lax mode so YAML lists fill tuples; numbers are StrictInt so `true` or "20" is not a count.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _check_role_reference(value: str | None, info: ValidationInfo) -> str | None:
    roles = (info.context or {}).get("roles")
    if value is not None and roles is not None and value not in roles:
        known = ", ".join(sorted(roles)) or "none defined"
        raise ValueError(f"unknown role {value!r} (roles: {known})")
    return value


class Members(_Strict):
    users: tuple[SlackUser, ...] = ()
    usergroups: tuple[SlackUsergroup, ...] = ()


class KubernetesIdentity(_Strict):
    """Who the bot acts as for a person: `user` may contain `{user_id}` (the Slack user id)."""

    user: Annotated[str, AfterValidator(_user_template)]
    groups: tuple[K8sGroup, ...] = ()

    def user_for(self, slack_user: str) -> str:
        return self.user.replace(PLACEHOLDER, _slack_user(slack_user))


# -- values that may differ per cluster ---------------------------------------------------------

# The union members' tags appear in pydantic's error locations; `_line_of` and `_field_path` skip
# them (the brackets keep them apart from any key the file may validly hold).
ALL_CLUSTERS, PER_CLUSTER = "<all clusters>", "<per cluster>"
_TAGS = frozenset({ALL_CLUSTERS, PER_CLUSTER})

NamespaceList = Annotated[tuple[NamespaceGlob, ...], Field(min_length=1)]
NamespacesPerCluster = Annotated[dict[ClusterKey, NamespaceList], Field(min_length=1)]
IdentitiesPerCluster = Annotated[dict[ClusterKey, KubernetesIdentity], Field(min_length=1)]


def _namespaces_shape(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return ALL_CLUSTERS
    return PER_CLUSTER if isinstance(value, dict) else None


def _identity_shape(value: Any) -> str | None:
    # An identity is a mapping with `user`/`groups`; any other mapping is keyed by cluster. So a
    # mapping that mixes the two (`{user: ..., prod: ...}`) is an identity with an unknown field.
    if isinstance(value, KubernetesIdentity):
        return ALL_CLUSTERS
    if isinstance(value, dict):
        return ALL_CLUSTERS if {"user", "groups"} & set(value) else PER_CLUSTER
    return None


Namespaces = Annotated[
    Union[Annotated[NamespaceList, Tag(ALL_CLUSTERS)], Annotated[NamespacesPerCluster, Tag(PER_CLUSTER)]],  # noqa: UP007 - tagged members
    Discriminator(
        _namespaces_shape,
        custom_error_type="namespaces_shape",
        custom_error_message="expected a list of namespace globs, or a mapping {default: [...], <cluster>: [...]}",
    ),
]
Identity = Annotated[
    Union[Annotated[KubernetesIdentity, Tag(ALL_CLUSTERS)], Annotated[IdentitiesPerCluster, Tag(PER_CLUSTER)]],  # noqa: UP007 - tagged members
    Discriminator(
        _identity_shape,
        custom_error_type="identity_shape",
        custom_error_message="expected {user: ..., groups: [...]}, or a mapping {default: {...}, <cluster>: {...}}",
    ),
]


@dataclass(frozen=True, slots=True)
class ClusterScope:
    """What one rule (a team or a binding) grants in one cluster."""

    namespaces: tuple[str, ...]
    kubernetes: KubernetesIdentity | None
    """None: the rule maps no identity (the bot reads as itself)."""


_T = TypeVar("_T")


def cluster_matches(cluster: str, globs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(cluster, glob) for glob in globs)


class _Rule(_Strict):
    """What teams and bindings share: a role in some namespaces of some clusters, maybe an identity."""

    clusters: Annotated[tuple[ClusterGlob, ...], Field(min_length=1)] = ("*",)
    namespace_globs: Namespaces = Field(alias="namespaces")
    kubernetes: Identity | None = None
    role: str

    _role = field_validator("role")(_check_role_reference)

    def scope_in(self, cluster: str) -> ClusterScope | None:
        """What this rule grants in `cluster`; None when nothing: the cluster is outside `clusters`, or
        `namespaces` or `kubernetes` is a mapping with neither the cluster nor `default`."""
        if not cluster_matches(cluster, self.clusters):
            return None
        namespaces = self._namespaces_for(cluster)
        identity = self.kubernetes
        if isinstance(identity, dict):
            identity = _for_cluster(identity, cluster)
            if identity is None:
                return None
        return ClusterScope(namespaces, identity) if namespaces is not None else None

    def outside(self, cluster: str) -> str | None:
        """Why this rule grants nothing in `cluster`, in words; None when it grants something."""
        if not cluster_matches(cluster, self.clusters):
            return f"only in clusters {', '.join(self.clusters)}"
        if self._namespaces_for(cluster) is None:
            return f"namespaces lists none for {cluster} and has no {DEFAULT_KEY}"
        if isinstance(self.kubernetes, dict) and _for_cluster(self.kubernetes, cluster) is None:
            return f"kubernetes maps no identity for {cluster} and has no {DEFAULT_KEY}"
        return None

    def _namespaces_for(self, cluster: str) -> tuple[str, ...] | None:
        globs = self.namespace_globs
        return _for_cluster(globs, cluster) if isinstance(globs, dict) else globs

    def namespaces_in(self, cluster: str) -> tuple[str, ...]:
        """The namespace globs this rule covers in `cluster` (none when it grants nothing there)."""
        scope = self.scope_in(cluster)
        return scope.namespaces if scope is not None else ()

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespace globs in DEFAULT_CLUSTER: what single-cluster code reads. Code that knows its
        cluster asks `namespaces_in(cluster)`."""
        return self.namespaces_in(DEFAULT_CLUSTER)

    def identities(self) -> tuple[KubernetesIdentity, ...]:
        """Every identity this rule maps, in any cluster."""
        if self.kubernetes is None:
            return ()
        return tuple(self.kubernetes.values()) if isinstance(self.kubernetes, dict) else (self.kubernetes,)


def _for_cluster(mapping: dict[str, _T], cluster: str) -> _T | None:
    """A per-cluster mapping's value for `cluster`, else its `default`, else None."""
    return mapping.get(cluster, mapping.get(DEFAULT_KEY))


class Team(_Rule):
    channel: SlackChannel | None = None
    members: Members = Members()


class Binding(_Rule):
    name: str | None = None
    users: tuple[SlackUser, ...] = ()
    usergroups: tuple[SlackUsergroup, ...] = ()


class Defaults(_Strict):
    role: str | None = None
    namespaces: tuple[NamespaceGlob, ...] = ("*",)

    _role = field_validator("role")(_check_role_reference)


class Limits(_Strict):
    max_replicas: StrictInt = Field(default=20, ge=0, le=10_000)


class Policy(_Strict):
    roles: dict[RoleName, tuple[Verb, ...]]
    teams: dict[TeamName, Team] = {}
    bindings: tuple[Binding, ...] = ()
    defaults: Defaults = Defaults()
    limits: Limits = Limits()

    def mentioned_usergroups(self) -> frozenset[str]:
        """Every Slack user group the policy grants something to: the only ones worth resolving."""
        groups = {g for team in self.teams.values() for g in team.members.usergroups}
        groups |= {g for binding in self.bindings for g in binding.usergroups}
        return frozenset(groups)

    def team_for_channel(self, channel: str) -> str | None:
        for name, team in self.teams.items():
            if team.channel == channel:
                return name
        return None

    def teams_for_namespace(self, namespace: str, *, cluster: str = DEFAULT_CLUSTER) -> tuple[str, ...]:
        """Teams whose globs cover `namespace` in `cluster` (alert routing uses this)."""
        return tuple(
            name for name, team in self.teams.items() if namespace_matches(namespace, team.namespaces_in(cluster))
        )


def namespace_matches(namespace: str, globs: Iterable[str]) -> bool:
    # fnmatchcase: no case folding; the globs were validated so '[' ranges cannot occur.
    return any(fnmatch.fnmatchcase(namespace, glob) for glob in globs)


# -- loading ------------------------------------------------------------------------------------


def _compose(text: str, source: str) -> tuple[yaml.Node, Any]:
    """The node tree (for line numbers and duplicate keys) and the data built from it, in one bounded
    parse (bot.settings.parse_yaml: no anchors, aliases or tags, bounded depth and size)."""
    try:
        node, data = parse_yaml(text)
    except YamlRefused as e:
        raise ConfigError(e.located(source)) from None
    if node is None:
        raise ConfigError(f"{source}:1: the file is empty; it needs at least `roles:`")
    return node, data


def _line_of(root: yaml.Node, loc: tuple[int | str, ...]) -> int:
    """The 1-based line of the node at a pydantic error location (the deepest one that exists)."""
    node = root
    line = root.start_mark.line + 1
    loc = tuple(part for part in loc if part not in _TAGS)
    for index, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            if part == "[key]":
                return line
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                return line
            key, node = match
            # An unwanted key (or a dict key's own error) is reported where the key is written.
            is_last = index == len(loc) - 1
            next_is_key = index + 1 < len(loc) and loc[index + 1] == "[key]"
            line = (key.start_mark.line if is_last or next_is_key else node.start_mark.line) + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _field_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if part == "[key]" or part in _TAGS:
            continue
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".") or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see the example permissions.yaml)"
    if kind == "missing":
        return "required field is missing"
    if kind == "too_short" and isinstance(error.get("input"), dict):
        return f"an empty mapping: give `{DEFAULT_KEY}:` or at least one cluster's entry"
    if kind == "too_short" and error["loc"][-1:] == ("clusters",):
        return "an empty list grants nothing anywhere: list cluster name globs ('*': every cluster)"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def parse_policy(text: str, *, verbs: Collection[str], source: str = DEFAULT_PATH) -> Policy:
    """Validate permissions.yaml text; raise ConfigError listing every problem as `file:line: field: why`.

    `verbs` are the verbs roles may list (the bot's verb registry names them)."""
    root, data = _compose(text, source)
    duplicates = duplicate_keys(root)
    if duplicates:
        raise ConfigError(
            _report(
                [
                    f"{source}:{line}: {where}: duplicate key (the earlier one would be ignored)"
                    for line, where in duplicates
                ]
            )
        )
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping with `roles:`, `teams:`, ...")
    roles = data.get("roles")
    context = {"roles": set(roles) if isinstance(roles, dict) else None, "verbs": frozenset(verbs)}
    try:
        return Policy.model_validate(data, context=context)
    except ValidationError as e:
        errors = _causes(e.errors())
        lines = []
        for error in errors[:MAX_REPORTED]:  # each line costs a walk of the node tree: only what is shown
            loc = tuple(error["loc"])
            field_path = _field_path(loc)
            lines.append(f"{source}:{_line_of(root, loc)}: {field_path}: {_describe(dict(error))}")
        raise ConfigError(_report(lines, total=len(errors))) from None


def _causes(errors: list[Any]) -> list[Any]:
    """The errors minus "too short" ones that only follow from an item refused inside the same list or
    mapping (`clusters: [Prod!]` is one problem, not also "an empty list")."""
    refused_inside = {tuple(error["loc"][:-1]) for error in errors if len(error["loc"]) > 1}
    refused_inside |= {tuple(error["loc"][:-2]) for error in errors if error["loc"][-1:] == ("[key]",)}
    return [error for error in errors if not (error["type"] == "too_short" and tuple(error["loc"]) in refused_inside)]


MAX_REPORTED = 20
"""Problems listed for one file; the rest are counted. A file of thousands of mistakes must not take
seconds to report or fill the log."""
MAX_LINE = 300


def _report(lines: list[str], *, total: int | None = None) -> str:
    """At most MAX_REPORTED lines of at most MAX_LINE characters (values are quoted in the messages),
    then how many more problems there are."""
    total = len(lines) if total is None else total
    shown = [line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in lines[:MAX_REPORTED]]
    if total > len(shown):
        shown.append(f"... and {total - len(shown)} more problems")
    return "\n".join(shown)


def load_policy(path: str | Path, *, verbs: Collection[str]) -> Policy:
    return _parse_file(_read(path), verbs=verbs, source=str(path))


def _read(path: str | Path) -> bytes:
    """The file's bytes: a regular file, at most MAX_FILE_BYTES, read without blocking."""
    try:
        return read_yaml_bytes(path)
    except YamlRefused as e:
        raise ConfigError(f"cannot read permissions file {path}: {e.problem}") from None


def _parse_file(data: bytes, *, verbs: Collection[str], source: str) -> Policy:
    try:
        text = decode_yaml(data)
    except YamlRefused as e:
        raise ConfigError(e.located(source)) from None
    return parse_policy(text, verbs=verbs, source=source)


def policy_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


@dataclass(frozen=True, slots=True)
class _Stamp:
    mtime_ns: int
    size: int


class PolicyFile:
    """The current policy of one permissions.yaml, reloaded when the file changes.

    Check-on-use rather than a thread: `current()` stats the file at most every `check_every` seconds
    and reparses only when its content hash changed. The first load raises ConfigError (a bad file
    stops the bot); later bad edits are logged once each and the last good policy stays in force.

    The lock guards only the swap: reading and parsing happen outside it, by one caller at a time,
    while every other caller gets the policy in force at once. Parsing is bounded anyway (see
    bot.settings.parse_yaml), so no edit, however hostile, can hold up commands.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        verbs: Collection[str],
        check_every: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.verbs = frozenset(verbs)
        self.check_every = check_every
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._reloading = False
        data = _read(self.path)
        self._policy = _parse_file(data, verbs=self.verbs, source=str(self.path))
        self._stamp = self._stat()
        self._digest = hashlib.sha256(data).hexdigest()
        self._checked_at = monotonic()
        self.last_error: str | None = None

    def _stat(self) -> _Stamp | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return _Stamp(st.st_mtime_ns, st.st_size)

    def current(self) -> Policy:
        with self._lock:
            now = self._monotonic()
            if self._reloading or now - self._checked_at < self.check_every:
                return self._policy
            self._checked_at = now
            self._reloading = True  # this caller checks the file; the others keep the policy in force
        try:
            self._reload_if_changed()
        finally:
            with self._lock:
                self._reloading = False
                policy = self._policy
        return policy

    def _reload_if_changed(self) -> None:
        """Runs outside the lock, in one thread at a time (`_reloading`); swaps the result in under it."""
        stamp = self._stat()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            data = _read(self.path)
        except ConfigError as e:
            self._refuse("", str(e))
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return
        try:
            policy = _parse_file(data, verbs=self.verbs, source=str(self.path))
        except ConfigError as e:
            self._refuse(digest, str(e))
            return
        with self._lock:
            self._policy = policy
            self._digest = digest
            self.last_error = None
        log.info("permissions file %s reloaded", self.path)

    def _refuse(self, digest: str, error: str) -> None:
        with self._lock:
            self._digest = digest  # logged once per bad content, not at every check
            self.last_error = error
        log.error("permissions file %s is invalid; keeping the last good policy:\n%s", self.path, error)
