"""Decisions: may this person run this command here? Two locks, both must open.

1. The file (permissions.yaml): one of the person's grants must list the verb and cover the
   namespace; `limits` bound what an allowed action may ask for (replicas).
2. The cluster: when the person maps to a Kubernetes identity, the bot asks the API server with a
   SubjectAccessReview (created with the bot's own client) whether that identity may do each API
   call the verb needs, so the cluster's RBAC can still say no — and the person is told which call.
   The verb itself then runs through a client impersonating that identity (`VerbContext.kube`).

Both locks are asked about where the verb acts (`acted_namespace`): a target of a cluster-scoped
kind (`node/x`, `ns/x`) is decided cluster-wide, which needs a grant on "*". What the bot serves from
its own records (the change history) is filtered with `may_read`, the same SubjectAccessReview.
An action (a verb that changes something) is refused when Slack cannot confirm that the person's
account is active; reads go on per the file (`bot/permissions/identity.py`, `CachedDirectory`).

Several clusters: one `PermissionEngine` per cluster (`cluster=`), sharing one `PolicyFile` and one
Slack directory cache. Each decides for its own cluster only: the file's grants in that cluster
(`clusters:` globs, per-cluster namespaces), then that cluster's SubjectAccessReview (its `kube` is
that cluster's client) as the identity the file maps for that cluster. A `Subject` is made by the
engine of the cluster it is used in (`subject_for`).

The composition root builds the engines and hands each to its cluster's command path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bot.errors import K8sBotError
from bot.kube.client import KubeClient
from bot.kube.kinds import KINDS, Kind
from bot.model import DEFAULT_CLUSTER, Command, Decision, Subject
from bot.permissions.identity import (
    ACTIVE,
    DEACTIVATED,
    CachedDirectory,
    Directory,
    Grant,
    grants_elsewhere,
    grants_for,
    subject_from_policy,
)
from bot.permissions.policy import Policy, PolicyFile
from bot.permissions.targets import BARE_NAME_KINDS, target_kind

log = logging.getLogger(__name__)

SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
AUTHENTICATED = "system:authenticated"  # the API server adds it to every impersonated user

# Kinds shown only to people whose own Kubernetes identity may read them: never through the bot's.
OWN_IDENTITY_KINDS = frozenset({"Secret"})


@dataclass(frozen=True, slots=True)
class Need:
    """One Kubernetes API permission a verb needs (what a SubjectAccessReview asks about)."""

    verb: str
    kind: Kind
    subresource: str = ""
    named: bool = True

    def attributes(self, namespace: str | None, name: str | None) -> dict[str, str]:
        group = "" if self.kind.group_version == "v1" else self.kind.group_version.split("/")[0]
        attrs = {"verb": self.verb, "group": group, "resource": self.kind.plural}
        if self.subresource:
            attrs["subresource"] = self.subresource
        if namespace and self.kind.namespaced:  # a cluster-scoped kind is never authorized in a namespace
            attrs["namespace"] = namespace
        if self.named and name:
            attrs["name"] = name
        return attrs

    def describe(self, name: str | None) -> str:
        group = "" if self.kind.group_version == "v1" else "." + self.kind.group_version.split("/")[0]
        resource = self.kind.plural + group + (f"/{self.subresource}" if self.subresource else "")
        return f"{self.verb} {resource}" + (f" {name}" if self.named and name else "")


def _where(namespace: str | None) -> str:
    return f" in namespace {namespace}" if namespace else " in all namespaces"


def needs_for(verb: str, kind: Kind | None) -> tuple[Need, ...]:
    """The API permissions `verb` needs on a target of `kind` (None: a bare name of a read verb)."""
    pods, events = KINDS["Pod"], KINDS["Event"]
    if verb == "rollback":
        deployments = KINDS["Deployment"]
        return (Need("get", deployments), Need("patch", deployments), Need("list", KINDS["ReplicaSet"], named=False))
    if verb == "scale":
        kind = kind or KINDS["Deployment"]
        return (Need("get", kind, "scale"), Need("patch", kind, "scale"))
    if verb == "restart":
        kind = kind or KINDS["Deployment"]
        return (Need("get", kind), Need("patch", kind))
    named = (Need("get", kind),) if kind is not None else ()
    if verb in ("why", "status", "timeline"):
        return (*named, Need("list", pods, named=False), Need("list", events, named=False))
    if verb == "describe":
        return (*named, Need("list", events, named=False)) if named else (Need("list", pods, named=False),)
    if verb == "logs":
        return (Need("list", pods, named=False), Need("get", pods, "log", named=False))
    if verb == "changes":
        return named or (Need("list", pods, named=False),)
    if verb == "silence":  # muting an object's alerts: the person must at least be able to see it
        return (Need("get", kind or KINDS[BARE_NAME_KINDS["silence"]]),)
    return ()  # help, can-i: nothing from the cluster


# -- the file's lock (pure) ---------------------------------------------------------------------


def file_decision(
    policy: Policy, subject: Subject, verb: str, namespace: str | None, *, cluster: str = DEFAULT_CLUSTER
) -> Decision:
    """permissions.yaml's answer for one verb in one namespace of `cluster`, with the rule that decided it."""
    if not subject.slack_user:
        return Decision(False, "permissions.yaml: no Slack user to look up")
    grants = grants_for(policy, subject.slack_user, subject.usergroups, cluster=cluster)
    where = f"namespace {namespace}" if namespace else "all namespaces"
    elsewhere = () if grants else grants_elsewhere(policy, subject.slack_user, subject.usergroups, cluster=cluster)
    if elsewhere:
        return Decision(
            False, f"permissions.yaml: {subject.slack_user} has no grant in cluster {cluster} ({'; '.join(elsewhere)})"
        )
    if not grants:
        return Decision(
            False,
            f"permissions.yaml: {subject.slack_user} is in no team or binding, and defaults.role is not set",
        )
    allowing = [g for g in grants if g.allows(verb, namespace)]
    if allowing:
        return Decision(True, f"permissions.yaml: {allowing[0].describe()} allows {verb} in {where}")
    with_verb = [g for g in grants if verb in g.verbs]
    if not with_verb:
        return Decision(False, f"permissions.yaml: {_roles(grants)} {verb}")
    globs = ", ".join(dict.fromkeys(glob for g in with_verb for glob in g.namespaces))
    return Decision(
        False, f"permissions.yaml: {verb} is granted only in {globs} ({_rules(with_verb)}); {where} is outside"
    )


def _roles(grants: Iterable[Grant]) -> str:
    listed = [f"{g.role} ({g.rule})" for g in grants]
    if len(listed) == 1:
        return f"your role {listed[0]} does not include"
    return f"your roles {', '.join(listed)} do not include"


def _rules(grants: Iterable[Grant]) -> str:
    return ", ".join(g.rule for g in grants)


def limit_decision(policy: Policy, command: Command) -> Decision | None:
    """limits.* on what an allowed action may ask for; None when no limit applies."""
    if command.verb != "scale":
        return None
    replicas = command.flag("replicas")
    if replicas is None:
        return None
    limit = policy.limits.max_replicas
    if int(replicas) > limit:
        return Decision(False, f"permissions.yaml: limits.max_replicas is {limit}; {replicas} replicas is above it")
    return Decision(True, f"permissions.yaml: {replicas} replicas is within limits.max_replicas ({limit})")


# -- the cluster's lock --------------------------------------------------------------------------


def access_review(kube_admin: KubeClient, subject: Subject, attributes: dict[str, str]) -> tuple[bool, str]:
    """Ask the API server (as the bot) whether the subject's identity may do `attributes`."""
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": subject.k8s_user,
            "groups": sorted({*subject.k8s_groups, AUTHENTICATED}),
            "resourceAttributes": attributes,
        },
    }
    status = kube_admin.request("POST", SAR_PATH, body=body).get("status") or {}
    reason = str(status.get("reason") or status.get("evaluationError") or "")
    return bool(status.get("allowed")) and not status.get("denied"), reason


def cluster_decision(kube: KubeClient, subject: Subject, command: Command, namespace: str | None) -> Decision | None:
    """The cluster's RBAC answer for every call the verb needs; None when the bot acts as itself."""
    kind, name = target_kind(command)
    if not subject.k8s_user:
        if kind is not None and kind.kind in OWN_IDENTITY_KINDS:
            return Decision(False, _own_identity_only(kind))
        return None
    needs = needs_for(command.verb, kind)
    who = subject.k8s_user + (f" (groups {', '.join(subject.k8s_groups)})" if subject.k8s_groups else "")
    allowed: list[str] = []
    for need in needs:
        try:
            ok, reason = access_review(kube, subject, need.attributes(namespace, name))
        except K8sBotError as e:
            # Fail closed: without the cluster's answer the bot must not act.
            return Decision(False, f"cluster: could not check RBAC for {who}: {e}")
        if not ok:
            because = f" ({reason})" if reason else ""
            return Decision(
                False,
                f"cluster RBAC: {who} may not {need.describe(name)}{_where(namespace)}{because}; "
                "ask your cluster admin to bind that group to a role that allows it",
            )
        allowed.append(need.describe(name))
    if not allowed:
        return Decision(True, f"cluster RBAC: {command.verb} needs no API permission of its own")
    return Decision(True, f"cluster RBAC: {who} may {', '.join(allowed)}{_where(namespace)}")


def _own_identity_only(kind: Kind) -> str:
    return (
        f"cluster RBAC: you map to no Kubernetes identity, and {kind.plural} are shown only to people whose "
        f"own identity may get them; ask for your team to be mapped (docs/permissions.md)"
    )


def read_decision(
    kube: KubeClient, subject: Subject, kind: Kind, namespace: str | None, name: str | None = None
) -> Decision:
    """May the subject read (`get`) objects of `kind` in `namespace` (None, or a cluster-scoped kind:
    in all namespaces), or the one named `name`? What the bot serves from its own records (recorded
    with its own identity) is filtered with this."""
    where = _where(namespace if kind.namespaced else None)
    if not subject.k8s_user:
        if kind.kind in OWN_IDENTITY_KINDS:
            return Decision(False, _own_identity_only(kind))
        return Decision(True, "the bot reads with its own Kubernetes identity")
    need = Need("get", kind)
    what = need.describe(name)
    try:
        ok, reason = access_review(kube, subject, need.attributes(namespace, name))
    except K8sBotError as e:
        # Fail closed: without the cluster's answer nothing of that kind is shown.
        return Decision(False, f"cluster: could not check whether {subject.k8s_user} may {what}{where}: {e}")
    if not ok:
        because = f" ({reason})" if reason else ""
        return Decision(False, f"cluster RBAC: {subject.k8s_user} may not {what}{where}{because}")
    return Decision(True, f"cluster RBAC: {subject.k8s_user} may {what}{where}")


def _cluster_scoped_hint(
    policy: Policy, subject: Subject, command: Command, namespace: str | None, file: Decision, *, cluster: str
) -> Decision:
    """A refusal of a cluster-scoped target (`node/x`) by someone granted the verb somewhere, with the
    reason the question was "in every namespace" rather than the namespace they gave."""
    kind, name = target_kind(command)
    if file.allowed or namespace is not None or kind is None or kind.namespaced or not subject.slack_user:
        return file
    grants = grants_for(policy, subject.slack_user, subject.usergroups, cluster=cluster)
    if not any(command.verb in g.verbs for g in grants):
        return file
    scope = f"{kind.kind} {name} is cluster-scoped, so {command.verb} on it needs a grant on every namespace"
    return Decision(False, f'{file.reason} ({scope}: "*")')


# -- the engine ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Explanation:
    """Both locks' answers for one command (what `can-i` shows)."""

    subject: Subject
    namespace: str | None
    file: Decision
    limit: Decision | None
    cluster: Decision | None
    """The cluster's RBAC answer (JSON `rbac`); None: not asked (the file said no, or the person maps
    to no Kubernetes identity)."""
    cluster_name: str = DEFAULT_CLUSTER
    """The cluster decided for (JSON `cluster`)."""

    @property
    def decision(self) -> Decision:
        for part in (self.file, self.limit, self.cluster):
            if part is not None and not part.allowed:
                return part
        if self.cluster is None:
            return Decision(True, f"{self.file.reason}; the bot acts with its own Kubernetes identity")
        return Decision(True, f"{self.file.reason}; {self.cluster.reason}")

    def to_json(self) -> dict[str, Any]:
        def part(d: Decision | None) -> dict[str, Any] | None:
            return None if d is None else {"allowed": d.allowed, "reason": d.reason}

        return {
            "allowed": self.decision.allowed,
            "reason": self.decision.reason,
            "cluster": self.cluster_name,
            "namespace": self.namespace,
            "file": part(self.file),
            "limit": part(self.limit),
            "rbac": part(self.cluster),
            "subject": {
                "slack_user": self.subject.slack_user,
                "usergroups": sorted(self.subject.usergroups),
                "k8s_user": self.subject.k8s_user,
                "k8s_groups": list(self.subject.k8s_groups),
            },
        }


class PermissionEngine:
    """The Gate of one cluster: resolves Slack users to Subjects there and authorizes commands there
    against both locks."""

    def __init__(
        self,
        policy_file: PolicyFile,
        *,
        kube: KubeClient,
        directory: Directory | CachedDirectory | None = None,
        ttl: float = 300.0,
        max_stale: float = 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
        cluster: str = DEFAULT_CLUSTER,
    ) -> None:
        self.policy_file = policy_file
        self.kube = kube
        """The bot's own client of this cluster: it asks the SubjectAccessReviews."""
        self.cluster = cluster
        """The cluster's name: what the file's `clusters:` globs and per-cluster keys are matched with."""
        # A CachedDirectory is shared as it is (engines of several clusters share one cache).
        self.directory = (
            directory
            if isinstance(directory, CachedDirectory) or directory is None
            else CachedDirectory(directory, ttl=ttl, max_stale=max_stale, monotonic=monotonic)
        )
        """Slack's answers, cached for `ttl`; the last known one is used through an outage for at most
        `max_stale` seconds. None (a terminal without Slack): the person's account is not checked."""

    @property
    def policy(self) -> Policy:
        return self.policy_file.current()

    def subject_for(self, slack_user: str) -> Subject:
        """The Subject for a Slack user: user groups from the Directory, identity from the policy."""
        policy = self.policy
        groups = (
            self.directory.usergroups_of(slack_user, policy.mentioned_usergroups()) if self.directory else frozenset()
        )
        return subject_from_policy(policy, slack_user, groups, cluster=self.cluster)

    def subject_as(self, slack_user: str, usergroups: Iterable[str]) -> Subject:
        """A Subject with user groups given by the caller (the terminal's --as-group)."""
        return subject_from_policy(self.policy, slack_user, frozenset(usergroups), cluster=self.cluster)

    def for_cluster(self, cluster: str, *, kube: KubeClient) -> PermissionEngine:
        """The engine of another cluster (its own client), sharing this one's file and directory cache."""
        return PermissionEngine(self.policy_file, kube=kube, directory=self.directory, cluster=cluster)

    def explain(self, subject: Subject, command: Command, namespace: str | None, *, action: bool = True) -> Explanation:
        """Both locks for `command` as `subject` in `namespace` (None: no namespace, needs a grant on "*").

        `namespace` must be where the command acts (`acted_namespace`). `action`: the verb changes
        something, so an account Slack cannot vouch for right now is refused (True unless the caller
        knows the verb only reads: failing closed)."""
        policy = self.policy
        file = file_decision(policy, subject, command.verb, namespace, cluster=self.cluster)
        file = _cluster_scoped_hint(policy, subject, command, namespace, file, cluster=self.cluster)
        if file.allowed and self.directory and subject.slack_user:
            file = self._active(subject.slack_user, action=action) or file
        limit = limit_decision(policy, command) if file.allowed else None
        cluster = None
        if file.allowed and (limit is None or limit.allowed):
            cluster = cluster_decision(self.kube, subject, command, namespace)
        return Explanation(subject, namespace, file, limit, cluster, self.cluster)

    def authorize(self, subject: Subject, command: Command, namespace: str | None, *, action: bool = True) -> Decision:
        """The decision of `explain`; its reason names the rule that decided."""
        return self.explain(subject, command, namespace, action=action).decision

    def may_read(self, subject: Subject, kind: Kind, namespace: str | None, name: str | None = None) -> Decision:
        """`read_decision` with the bot's client (the SubjectAccessReview as the subject's identity)."""
        return read_decision(self.kube, subject, kind, namespace, name)

    def _active(self, slack_user: str, *, action: bool) -> Decision | None:
        """A refusal when the account is deactivated, or (for an action) when its state is unknown."""
        assert self.directory is not None
        account = self.directory.account(slack_user)
        if account.state == DEACTIVATED:
            return Decision(False, account.reason)
        if account.state != ACTIVE and action:
            return Decision(False, f"{account.reason}; actions are refused until Slack answers, reading still works")
        return None
