"""Job and CronJob analyzers: failed Jobs, with the exit codes of their failed pods."""

from __future__ import annotations

from collections.abc import Iterator

from bot.diagnosis.analyzers import analyzes
from bot.diagnosis.exit_codes import explain_exit_code
from bot.kube.owners import workload_of
from bot.kube.snapshot import Snapshot, name_of
from bot.model import Category, Finding, KubeObject, ObjectRef, Severity


@analyzes("Job")
def analyze_job(job: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    ref = ObjectRef.of(job, kind="Job")
    status = job.get("status") or {}
    failed = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Failed" and c.get("status") == "True"), None
    )
    failures = int(status.get("failed") or 0)
    if failed is None and failures == 0:
        return
    evidence = []
    if failed:
        evidence.append(f"Job {ref.name}: {failed.get('reason')}: {failed.get('message') or ''}".rstrip(": "))
    backoff = (job.get("spec") or {}).get("backoffLimit", 6)
    evidence.append(f"{failures} failed pod(s), backoffLimit {backoff}")
    evidence += _pod_exits(job, snapshot)
    parent = workload_of(job, snapshot)
    if failed:
        yield Finding(
            ref,
            Category.JOB_FAILED,
            str(failed.get("reason") or "Failed"),
            f"Job {ref.name} failed ({failed.get('reason')})",
            severity=Severity.CRITICAL,
            evidence=tuple(evidence),
            parent=parent,
        )
    elif not status.get("succeeded"):
        yield Finding(
            ref,
            Category.JOB_FAILED,
            "Retrying",
            f"Job {ref.name} has failed {failures} time(s) and is retrying",
            evidence=tuple(evidence),
            parent=parent,
        )


def _pod_exits(job: KubeObject, snapshot: Snapshot) -> list[str]:
    lines = []
    for pod in snapshot.owned_by(job, "Pod"):
        for cstatus in (pod.get("status") or {}).get("containerStatuses") or []:
            state = cstatus.get("state") or {}
            term = state.get("terminated") or (cstatus.get("lastState") or {}).get("terminated") or {}
            if term and term.get("exitCode") not in (None, 0):
                message = f"; message: {term['message']}" if term.get("message") else ""
                lines.append(
                    f"pod {name_of(pod)} container {cstatus.get('name')}: "
                    f"{explain_exit_code(term.get('exitCode'), term.get('reason'))}{message}"
                )
    return lines[:3]


@analyzes("CronJob")
def analyze_cronjob(cronjob: KubeObject, snapshot: Snapshot) -> Iterator[Finding]:
    if not (cronjob.get("spec") or {}).get("suspend"):
        return
    ref = ObjectRef.of(cronjob, kind="CronJob")
    yield Finding(
        ref,
        Category.SCALED_TO_ZERO,
        "Suspended",
        f"CronJob {ref.name} is suspended, so no Jobs start",
        evidence=(f"CronJob {ref.name}: spec.suspend is true",),
    )
