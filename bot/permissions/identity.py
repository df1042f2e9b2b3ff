"""Who a Slack user is for permissions: their user groups, their grants and their Kubernetes identity.

Slack is reached through the small `Directory` protocol (the Slack-backed one lives in `bot/slack/`;
tests use an in-memory one), so nothing here imports Slack. Answers are cached for `ttl` seconds. When
Slack fails, the last known answer is used for at most `max_stale` seconds after Slack last gave it
("stale but known"); after that, and for anything never seen, the state is unknown and fails closed:
a user group counts as "not a member", and an account whose state is unknown may read (per the file)
but not act. A known deactivation is never forgotten because Slack is down.

How several grants combine (documented in docs/permissions.md):

- A person's grants in a cluster are what every team they are a member of and every binding that
  names them or one of their user groups grants in that cluster (`clusters:` globs, per-cluster
  `namespaces`/`kubernetes`), and, only when no team or binding names them at all, `defaults`.
- A command is allowed by the file when ONE grant both lists the verb and covers the namespace; verbs
  of one grant are never combined with namespaces of another.
- The Kubernetes identity in a cluster: the user from the first matching grant there (teams in file
  order, then bindings) that maps an identity there, with `{user_id}` replaced by the Slack user id;
  the groups are the union of the groups of every matching grant with a mapping. If no grant has a
  mapping the bot acts with its own credentials (which deploy/rbac.yaml keeps read-only). A rule whose
  `kubernetes` is a per-cluster mapping with no entry for a cluster (and no `default`) grants nothing
  there: it never falls back to the bot's own identity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import K8sBotError
from bot.model import DEFAULT_CLUSTER, Subject
from bot.permissions.policy import Binding, ClusterScope, KubernetesIdentity, Policy, Team, namespace_matches
from bot.text import duration_text

log = logging.getLogger(__name__)


class Directory(Protocol):
    """The two Slack Web API calls permissions need (users.info, usergroups.users.list)."""

    def users_info(self, user_id: str) -> Mapping[str, Any]:
        """The `user` object of users.info: at least `id`, and `deleted` / `is_bot` when true."""
        ...

    def usergroup_members(self, group_id: str) -> Collection[str]:
        """The user ids in a user group (usergroups.users.list `users`)."""
        ...


ACTIVE, DEACTIVATED, UNKNOWN = "active", "deactivated", "unknown"


@dataclass(frozen=True, slots=True)
class Account:
    """What the bot knows of a Slack account: `active`, `deactivated` (or a bot), or `unknown`."""

    state: str
    reason: str = ""
    """Why the state is what it is, in words (a refusal quotes it)."""


class CachedDirectory:
    """A Directory with a TTL cache, which serves the last known answer through a Slack outage for at
    most `max_stale` seconds (see the module docstring)."""

    def __init__(
        self,
        directory: Directory,
        *,
        ttl: float = 300.0,
        max_stale: float = 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.ttl = ttl
        self.max_stale = max(max_stale, ttl)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._users: dict[str, tuple[float, Mapping[str, Any]]] = {}

    def usergroup_members(self, group_id: str) -> frozenset[str]:
        now = self._monotonic()
        with self._lock:
            cached = self._groups.get(group_id)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        try:
            members = frozenset(self.directory.usergroup_members(group_id))
        except K8sBotError as e:
            if cached and now - cached[0] < self.max_stale:
                log.warning("cannot list members of user group %s (%s); using the last known list", group_id, e)
                return cached[1]
            log.warning("cannot list members of user group %s (%s); counting nobody as a member", group_id, e)
            return frozenset()
        with self._lock:
            self._groups[group_id] = (now, members)
        return members

    def account(self, user_id: str) -> Account:
        """Whether the account is active, deactivated (or a bot), or unknown to the bot right now."""
        info, error = self._user(user_id)
        if info is not None and (info.get("deleted") or info.get("is_bot")):
            return Account(DEACTIVATED, f"Slack: {user_id} is a deactivated account or a bot")
        if info is not None and info.get("id"):
            return Account(ACTIVE)
        if info is not None:
            why = "Slack does not know this user"
        else:
            why = f"{error}; no answer from Slack in the last {duration_text(self.max_stale)}"
        return Account(UNKNOWN, f"Slack: cannot confirm that {user_id}'s Slack account is active ({why})")

    def _user(self, user_id: str) -> tuple[Mapping[str, Any] | None, str]:
        """(info, the error when Slack failed): fresh, else stale within `max_stale`; a known
        deactivation is kept however old it is."""
        now = self._monotonic()
        with self._lock:
            cached = self._users.get(user_id)
        if cached and now - cached[0] < self.ttl:
            return cached[1], ""
        try:
            info = dict(self.directory.users_info(user_id))
        except K8sBotError as e:
            log.warning("cannot look up Slack user %s (%s)", user_id, e)
            if cached and (now - cached[0] < self.max_stale or cached[1].get("deleted") or cached[1].get("is_bot")):
                return cached[1], str(e)
            return None, str(e)
        with self._lock:
            self._users[user_id] = (now, info)
        return info, ""

    def usergroups_of(self, user_id: str, candidates: Iterable[str]) -> frozenset[str]:
        """Which of `candidates` (the groups the policy mentions) the user belongs to."""
        return frozenset(g for g in sorted(candidates) if user_id in self.usergroup_members(g))


@dataclass(frozen=True, slots=True)
class Grant:
    """One reason a person may do something: a role in some namespaces, from a named rule."""

    rule: str  # "team shop", "binding #1 (sre)", "defaults"
    role: str
    verbs: frozenset[str]
    namespaces: tuple[str, ...]
    kubernetes: KubernetesIdentity | None = None

    def allows(self, verb: str, namespace: str | None) -> bool:
        if verb not in self.verbs:
            return False
        # No namespace means "any/all namespaces": only a grant on every namespace covers it.
        return namespace_matches(namespace, self.namespaces) if namespace else "*" in self.namespaces

    def describe(self) -> str:
        return f"{self.rule} (role {self.role} in {', '.join(self.namespaces)})"


def grants_for(
    policy: Policy, slack_user: str, usergroups: Collection[str], *, cluster: str = DEFAULT_CLUSTER
) -> tuple[Grant, ...]:
    """Every grant that applies to this person in `cluster`, in file order (teams, then bindings, else
    defaults). The defaults apply only to people no team or binding names in ANY cluster: a team limited
    to staging does not turn its members into default viewers of prod."""
    grants: list[Grant] = []
    named = _named_rules(policy, slack_user, usergroups, cluster)
    for name, rule, scope in named:
        if scope is not None:
            verbs = _verbs(policy, rule.role)
            grants.append(Grant(name, rule.role, verbs, scope.namespaces, scope.kubernetes))
    if not named and policy.defaults.role:
        role = policy.defaults.role
        grants.append(Grant("defaults", role, _verbs(policy, role), policy.defaults.namespaces))
    return tuple(grants)


def grants_elsewhere(policy: Policy, slack_user: str, usergroups: Collection[str], *, cluster: str) -> tuple[str, ...]:
    """The rules naming this person that grant nothing in `cluster`, each with why (`team shop: only in
    clusters staging`): what a refusal says when the person has grants only in other clusters."""
    return tuple(
        f"{name}: {rule.outside(cluster)}"
        for name, rule, scope in _named_rules(policy, slack_user, usergroups, cluster)
        if scope is None
    )


def _named_rules(
    policy: Policy, slack_user: str, usergroups: Collection[str], cluster: str
) -> list[tuple[str, Team | Binding, ClusterScope | None]]:
    """The teams and bindings naming this person (directly or by user group), each as (its name in a
    reason, the rule, what it grants in `cluster`: None for nothing there)."""
    groups = set(usergroups)
    named: list[tuple[str, Team | Binding, ClusterScope | None]] = []
    for name, team in policy.teams.items():
        if slack_user in team.members.users or set(team.members.usergroups) & groups:
            named.append((f"team {name}", team, team.scope_in(cluster)))
    for index, binding in enumerate(policy.bindings, start=1):
        if slack_user in binding.users or set(binding.usergroups) & groups:
            rule = f"binding #{index}" + (f" ({binding.name})" if binding.name else "")
            named.append((rule, binding, binding.scope_in(cluster)))
    return named


def _verbs(policy: Policy, role: str) -> frozenset[str]:
    return frozenset(policy.roles.get(role, ()))


def kubernetes_identity(grants: Iterable[Grant], slack_user: str) -> tuple[str | None, tuple[str, ...]]:
    """(user, groups) the bot impersonates for this person, by the rule in the module docstring."""
    user: str | None = None
    groups: list[str] = []
    for grant in grants:
        if grant.kubernetes is None:
            continue
        if user is None:
            user = grant.kubernetes.user_for(slack_user)
        groups += [g for g in grant.kubernetes.groups if g not in groups]
    return user, tuple(groups)


def subject_from_policy(
    policy: Policy, slack_user: str, usergroups: Collection[str], *, cluster: str = DEFAULT_CLUSTER
) -> Subject:
    """The Subject for a Slack user whose (policy-relevant) user groups are already known, in `cluster`:
    its Kubernetes identity is the one mapped for that cluster. A Subject belongs to one cluster."""
    relevant = frozenset(usergroups) & policy.mentioned_usergroups()
    user, groups = kubernetes_identity(grants_for(policy, slack_user, relevant, cluster=cluster), slack_user)
    return Subject(slack_user=slack_user, usergroups=relevant, k8s_user=user, k8s_groups=groups)
