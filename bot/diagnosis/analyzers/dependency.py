"""Dependency analyzer: a workload that calls a Service which can't answer.

The workload's env values, args and ConfigMap values name the Services it calls
(`bot.diagnosis.dependencies`); one of them with no ready endpoints is a finding on the workload,
pointing (`related`) at the Service. The engine then diagnoses that Service's own workload and blames
its change: "checkout depends on payments, which has no ready endpoints: payments was scaled to 0".
Needs the namespace's Services, pods and ConfigMaps; where those are not known (the alert index does
not hold Services) it says nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.dependencies import links, own_services, trouble
from bot.kube.snapshot import Snapshot
from bot.model import Category, Finding, KubeObject, ObjectRef

NEEDS = ("Service", "Pod", "ConfigMap")


@analyzes("Deployment", needs=NEEDS)
@analyzes("StatefulSet", needs=NEEDS)
@analyzes("DaemonSet", needs=NEEDS)
@analyzes("Job", needs=NEEDS)
@analyzes("CronJob", needs=NEEDS)
def analyze_dependencies(workload: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    if not (snapshot.knows("Service") and "Service" in snapshot.objects):
        return
    ref = ObjectRef.of(workload)
    for link in links(workload, snapshot, own=own_services(workload, snapshot)):
        found = trouble(link.service, snapshot)
        if found is None:
            continue
        yield Finding(
            ref,
            Category.DEPENDENCY,
            "DependencyUnavailable",
            f"{ref.name} calls Service {link.service}, which {found.problem}",
            evidence=(link.line(), found.evidence),
            related=ObjectRef("Service", ref.namespace, link.service),
        )
