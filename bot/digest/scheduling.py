"""The bot's scheduled jobs on one APScheduler 3 BackgroundScheduler.

Jobs are rebuilt at every start with stable ids (`replace_existing`), in the memory job store: no
pickled jobs to go stale across versions. Exactly-once delivery is not the scheduler's job: the
digest claims its (channel, period) row in the database, so a job that fires twice, or a start
that catches up, never posts twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.digest.content import DigestSender, trigger_for

log = logging.getLogger(__name__)

DIGEST_JOB = "digest"
PRUNE_JOB = "prune-history"


def build_scheduler(*, timezone: str = "UTC") -> BackgroundScheduler:
    return BackgroundScheduler(
        timezone=ZoneInfo(timezone),
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
    )


def schedule_digest(scheduler: BackgroundScheduler, sender: DigestSender) -> None:
    """The daily digest on the sender's cron and time zone, id "digest"."""
    scheduler.add_job(
        _guarded(sender.send_due, "digest"),
        trigger=trigger_for(sender.cron, sender.timezone),
        id=DIGEST_JOB,
        name="daily change digest",
        replace_existing=True,
    )


def schedule_pruning(scheduler: BackgroundScheduler, prune: Callable[[], object], *, hours: int = 6) -> None:
    scheduler.add_job(
        _guarded(prune, "pruning"),
        trigger=IntervalTrigger(hours=hours),
        id=PRUNE_JOB,
        name="prune change history",
        replace_existing=True,
    )


def start_digests(sender: DigestSender, *, scheduler: BackgroundScheduler | None = None) -> BackgroundScheduler:
    """Schedule the digest, start the scheduler, and send a digest missed while the bot was down."""
    scheduler = scheduler or build_scheduler(timezone=sender.timezone)
    if not scheduler.running:
        scheduler.start()  # started first: only a running scheduler replaces a job by id
    schedule_digest(scheduler, sender)
    _guarded(sender.send_due, "digest catch-up")()
    return scheduler


def start_scheduler(sender: DigestSender, *, prune: Callable[[], object]) -> BackgroundScheduler:
    """What `k8sbot run` starts: the digest on the sender's cron and time zone, history pruning every
    few hours, and a catch-up of a digest missed while the bot was down. Stop with `shutdown()`."""
    scheduler = build_scheduler(timezone=sender.timezone)
    scheduler.start()
    schedule_pruning(scheduler, prune)
    return start_digests(sender, scheduler=scheduler)


def _guarded(job: Callable[[], object], what: str) -> Callable[[], None]:
    """A scheduled job is an edge: log its failure, keep the scheduler running."""

    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("scheduled %s failed", what)

    run.__name__ = f"run_{what.replace(' ', '_')}"
    return run
