"""Where an alert goes: a pure function of the namespace, annotations, the policy and settings.

Order: the `k8sbot.dev/team` annotation on the workload, then on its namespace (a team name from
permissions.yaml), then the team whose namespace globs match (the most specific glob wins: fewer
wildcards, then longer), then the default channel. No channel at all is a Route with `channel=None`
and a reason, which the engine stores as undeliverable and logs loudly: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.model import DEFAULT_CLUSTER
from bot.permissions.policy import Policy, namespace_matches

TEAM_ANNOTATION = "k8sbot.dev/team"


@dataclass(frozen=True, slots=True)
class Route:
    channel: str | None
    team: str | None
    reason: str
    """Why this channel: shown in logs and stored with the alert."""


def route(
    namespace: str | None,
    *,
    policy: Policy | None,
    default_channel: str | None,
    workload_annotations: Mapping[str, str] | None = None,
    namespace_annotations: Mapping[str, str] | None = None,
    cluster: str = DEFAULT_CLUSTER,
) -> Route:
    """The channel (and team) for an alert about an object in `namespace` (None: cluster-scoped) of
    `cluster`: a team's namespaces may differ per cluster (permissions.yaml)."""
    notes: list[str] = []
    for where, notes_of in (("workload", workload_annotations), ("namespace", namespace_annotations)):
        wanted = (notes_of or {}).get(TEAM_ANNOTATION)
        if not wanted:
            continue
        team = policy.teams.get(wanted) if policy else None
        if team is not None and team.channel:
            return Route(team.channel, wanted, f"{where} annotation {TEAM_ANNOTATION}={wanted}")
        notes.append(
            f"{where} annotation names team {wanted!r}, which "
            + ("has no channel" if team is not None else "is not in permissions.yaml")
        )
    if namespace and policy is not None:
        best = _best_team(namespace, policy, cluster)
        if best is not None:
            name, glob = best
            channel = policy.teams[name].channel
            return Route(channel, name, f"team {name} owns namespaces {glob}")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    if default_channel:
        return Route(default_channel, None, "no team's namespaces match: default channel" + suffix)
    return Route(None, None, "no team's namespaces match and no default channel is set" + suffix)


def _best_team(namespace: str, policy: Policy, cluster: str) -> tuple[str, str] | None:
    """The team with a channel whose matching glob (in `cluster`) is the most specific."""
    ranked: list[tuple[int, int, int, str, str]] = []
    for order, (name, team) in enumerate(policy.teams.items()):
        if not team.channel:
            continue
        for glob in team.namespaces_in(cluster):
            if namespace_matches(namespace, (glob,)):
                wildcards = glob.count("*") + glob.count("?")
                ranked.append((wildcards, -len(glob), order, name, glob))
    if not ranked:
        return None
    _, _, _, name, glob = min(ranked)
    return name, glob
