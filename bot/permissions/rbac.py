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

from bot.permissions.policy import KubernetesIdentity, Policy

ROLE_NAME = "k8sbot-impersonate"


def mapped_identities(policy: Policy, usergroup_members: Mapping[str, Collection[str]]) -> tuple[list[str], list[str]]:
    """(users, groups) the bot may need to impersonate for this policy and these group members."""
    sources: list[tuple[KubernetesIdentity | None, Collection[str], Collection[str]]] = [
        (t.kubernetes, t.members.users, t.members.usergroups) for t in policy.teams.values()
    ]
    sources += [(b.kubernetes, b.users, b.usergroups) for b in policy.bindings]
    users: set[str] = set()
    groups: set[str] = set()
    people = {u for _, named, _ in sources for u in named}
    people |= {u for _, _, ugs in sources for g in ugs for u in usergroup_members.get(g, ())}
    for identity, _, _ in sources:
        if identity is None:
            continue
        groups |= set(identity.groups)
        # A person's user comes from their first mapped grant; listing every template's name for every
        # person is a small superset and needs no guessing of which grant is first.
        users |= {identity.user_for(person) for person in people}
    return sorted(users), sorted(groups)


def impersonation_role(policy: Policy, usergroup_members: Mapping[str, Collection[str]]) -> dict[str, Any]:
    users, groups = mapped_identities(policy, usergroup_members)
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
