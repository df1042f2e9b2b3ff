"""The bot's own ClusterRole (the chart's files/read-rules.yaml, which deploy/rbac.yaml is generated
from) lets it list and watch every kind `k8sbot run` watches: a kind added to the change tracker or
the watch cache without its rule would be forbidden in a real install (the local cluster's admin
kubeconfig would not show it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.kube.kinds import KINDS
from k8sbot.wiring import watched_kinds

READ_RULES = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "k8sbot" / "files" / "read-rules.yaml"


def _granted() -> set[tuple[str, str, str]]:
    """(API group, resource, verb) the read rules grant."""
    rules = yaml.safe_load(READ_RULES.read_text())
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize("cache", [True, False])
def test_every_watched_kind_may_be_listed_and_watched(cache: bool) -> None:
    granted = _granted()
    kinds = {w.kind for w in watched_kinds(cache=cache)}
    assert "PodDisruptionBudget" in kinds
    missing = []
    for kind in sorted(kinds):
        known = KINDS[kind]
        group = "" if "/" not in known.group_version else known.group_version.split("/")[0]
        missing += [f"{kind} {verb}" for verb in ("list", "watch") if (group, known.plural, verb) not in granted]
    assert missing == [], missing
