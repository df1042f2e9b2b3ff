"""Which cluster a command is for, and that cluster's command services.

One bot may serve several clusters (docs/multi-cluster.md). Each has its own `CommandServices` (its
kube client, watch cache, cluster-scoped stores and permission engine), built once by the composition
root. A command names its cluster with `--cluster`; else the channel's cluster (`channel_clusters`);
else the only one; else the person is asked — never a silent guess. Of several clusters, one known to
be unreachable is answered at once ("prod-eu is unreachable since 10:42 UTC"), so it never slows the
others down.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from bot.commands.context import CommandServices, VerbTable
from bot.commands.parsing import parse
from bot.errors import ClusterUnavailable, UsageError
from bot.model import Answer, Button, Command

Unreachable = Callable[[str], str | None]
"""A cluster's name → why it cannot be reached right now ("unreachable since 10:42 UTC: ..."), or None."""


def _reachable(name: str) -> str | None:
    return None


@dataclass(frozen=True)
class ClusterRouter:
    """The command services of every configured cluster, and how a command picks one."""

    clusters: Mapping[str, CommandServices]
    """Cluster name → its command services, in the configured order."""
    channel_clusters: Mapping[str, str] = field(default_factory=dict)
    """Slack channel id → the cluster commands there use without `--cluster`."""
    unreachable: Unreachable = _reachable

    def __post_init__(self) -> None:
        if not self.clusters:
            raise ValueError("a router needs at least one cluster")

    @classmethod
    def single(cls, services: CommandServices) -> ClusterRouter:
        """One cluster (the terminal without a config, and tests)."""
        return cls({services.cluster_name: services})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.clusters)

    @property
    def several(self) -> bool:
        return len(self.clusters) > 1

    @property
    def verbs(self) -> VerbTable:
        """The verb table (the same in every cluster)."""
        return next(iter(self.clusters.values())).verbs

    def parse(self, text: str) -> Command:
        return parse(text, registry=self.verbs)

    def cluster_for(self, command: Command, channel: str | None) -> str:
        """`--cluster`, else the channel's cluster, else the only one; a UsageError naming the choices."""
        usage = self.verbs.specs[command.verb].usage if command.verb in self.verbs.specs else None
        if command.cluster is not None:
            if command.cluster not in self.clusters:
                close = difflib.get_close_matches(command.cluster, self.names, n=1, cutoff=0.6)
                hint = f" Did you mean `{close[0]}`?" if close else ""
                raise UsageError(
                    f"I don't know a cluster `{command.cluster}`.{hint} Clusters: {', '.join(self.names)}.",
                    usage=usage,
                )
            return command.cluster
        if channel is not None and channel in self.channel_clusters:
            return self.channel_clusters[channel]
        if not self.several or command.verb == "help":  # help reads no cluster
            return self.names[0]
        raise UsageError(
            f"Which cluster? Add `--cluster <name>`: {', '.join(self.names)}. (This channel has no default cluster.)",
            usage=usage,
        )

    def route(self, command: Command, channel: str | None) -> tuple[Command, CommandServices]:
        """The command (naming its cluster when there are several, so its confirmation and follow-ups
        stay there) and the services of that cluster. Raises UsageError or ClusterUnavailable."""
        name = self.cluster_for(command, channel)
        if self.several and command.verb != "help":  # one cluster: the verb itself says what failed
            reason = self.unreachable(name)
            if reason is not None:
                raise ClusterUnavailable(f"{name} is {reason}. Other clusters answer as usual.")
        if self.several and command.cluster != name:
            command = replace(command, cluster=name)
        return command, self.clusters[name]

    def finish(self, answer: Answer, cluster: str) -> Answer:
        """The answer naming its cluster (`"cluster"` in its JSON), its buttons carrying it when there
        are several clusters: a click acts where the answer came from, whatever the channel's default."""
        data = {**answer.data, "cluster": cluster}
        buttons = answer.buttons
        if self.several:
            buttons = tuple(self._carrying(button, cluster) for button in buttons)
        return replace(answer, data=data, buttons=buttons)

    def _carrying(self, button: Button, cluster: str) -> Button:
        command = self.parse(button.command)
        if command.cluster is not None:
            return button
        return replace(button, command=replace(command, cluster=cluster).as_text())
