"""The impersonation ClusterRole that matches a permissions.yaml: least privilege, by exact names.

Kubernetes RBAC has no prefix match for `resourceNames`, so "may impersonate slack:*" cannot be
written; instead the bot may impersonate exactly the groups the policy maps to and exactly the users
the templates produce for the people the policy names (its `users:` lists and the members of its
user groups, which the caller supplies, from Slack). Regenerate it when membership changes:
`k8sbot permissions rbac`. Someone the role does not list is refused by the API server (403), never
served with more rights than the policy gives.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from bot.permissions.policy import Binding, KubernetesIdentity, Policy, Team

ROLE_NAME = "k8sbot-impersonate"


def mapped_identities(
    policy: Policy, usergroup_members: Mapping[str, Collection[str]], *, cluster: str | None = None
) -> tuple[list[str], list[str]]:
    """(users, groups) the bot may need to impersonate for this policy and these group members: in
    `cluster` (the identities the file maps there), or with None in any cluster."""
    rules: list[Team | Binding] = [*policy.teams.values(), *policy.bindings]
    sources: list[tuple[tuple[KubernetesIdentity, ...], Collection[str], Collection[str]]] = []
    for rule in rules:
        named, groups_named = (
            (rule.members.users, rule.members.usergroups) if isinstance(rule, Team) else (rule.users, rule.usergroups)
        )
        if cluster is None:
            identities = rule.identities()
        else:
            scope = rule.scope_in(cluster)
            identities = (scope.kubernetes,) if scope is not None and scope.kubernetes is not None else ()
        sources.append((identities, named, groups_named))
    users: set[str] = set()
    groups: set[str] = set()
    people = {u for _, named, _ in sources for u in named}
    people |= {u for _, _, ugs in sources for g in ugs for u in usergroup_members.get(g, ())}
    for identities, _, _ in sources:
        for identity in identities:
            groups |= set(identity.groups)
            # A person's user comes from their first mapped grant; listing every template's name for
            # every person is a small superset and needs no guessing of which grant is first.
            users |= {identity.user_for(person) for person in people}
    return sorted(users), sorted(groups)


def impersonation_role(
    policy: Policy, usergroup_members: Mapping[str, Collection[str]], *, cluster: str | None = None
) -> dict[str, Any]:
    """The ClusterRole to apply in `cluster` (None: one role that serves every cluster's identities)."""
    users, groups = mapped_identities(policy, usergroup_members, cluster=cluster)
    rules: list[dict[str, Any]] = []
    if users:
        rules.append({"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": users})
    if groups:
        rules.append({"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": groups})
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": ROLE_NAME, "labels": {"app.kubernetes.io/name": "k8sbot"}},
        "rules": rules,
    }
