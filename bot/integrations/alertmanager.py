"""`POST /integrations/alertmanager`: Alertmanager's webhook payload (version 4), validated and stored.

The receiver does the least work that keeps every alert: it validates the whole payload (pydantic;
one wrong field refuses all of it with a 400 naming the field, and nothing is stored) and writes the
alerts to the durable inbox (bot/store/inbox.py) in one transaction, then answers 200. Mapping each
alert to a workload, diagnosing it and posting is the alert engine's work on the leader replica
(bot/alerting/external.py), so any replica accepts, and a stop after the 200 loses nothing.

Several clusters: each alert goes to the inbox of the cluster its cluster label names
(`ClusterLabel`, bot/alerting/external.py); an alert naming no configured cluster goes to the home
(first) cluster's inbox, whose engine posts it plainly as one of an unknown cluster. One transaction
per cluster the notification touches: a retry after a failure in between stores nothing twice.

Bounds: the HTTP edge limits the body to 1 MB; each label and annotation is bounded here. Work is one
INSERT per alert. Repeats and retries of the same alert state are stored once (its fingerprint,
status and `startsAt`). Keys Alertmanager may add in later versions are ignored; the ones it sends
today are checked for type and size.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, field_validator

from bot.alerting.external import ClusterLabel
from bot.clock import Clock, utcnow
from bot.integrations.receiving import Outcome
from bot.store.inbox import AlertInbox, ReceivedAlert

log = logging.getLogger(__name__)

MAX_LABELS = 128
LABEL_NAME_CHARS = 256
LABEL_VALUE_CHARS = 4096
ANNOTATION_CHARS = 16384
URL_CHARS = 4096

LabelName = Annotated[StrictStr, Field(min_length=1, max_length=LABEL_NAME_CHARS)]
Labels = Annotated[
    dict[LabelName, Annotated[StrictStr, Field(max_length=LABEL_VALUE_CHARS)]], Field(max_length=MAX_LABELS)
]
Annotations = Annotated[
    dict[LabelName, Annotated[StrictStr, Field(max_length=ANNOTATION_CHARS)]], Field(max_length=MAX_LABELS)
]
Url = Annotated[StrictStr, Field(max_length=URL_CHARS)]
Status = Literal["firing", "resolved"]
_FINGERPRINT = re.compile(r"[0-9a-f]{1,64}")
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _time(value: str) -> datetime:
    """RFC 3339 as Alertmanager writes it (nanoseconds allowed); Go's zero time means "not set"."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError("must be an RFC 3339 time such as 2026-11-30T10:00:00Z") from e
    if parsed.tzinfo is None:
        raise ValueError("must carry a time zone (Z or +hh:mm)")
    return parsed.astimezone(UTC)


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Status
    labels: Labels
    annotations: Annotations
    startsAt: StrictStr
    endsAt: StrictStr
    generatorURL: Url
    fingerprint: StrictStr

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        _time(value[:64])
        return value

    @field_validator("fingerprint")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _FINGERPRINT.fullmatch(value):
            raise ValueError("must be Alertmanager's hexadecimal fingerprint")
        return value


class Webhook(BaseModel):
    """Alertmanager's webhook payload, version 4 (its docs: configuration, `<webhook_config>`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: Literal["4"]
    groupKey: Annotated[StrictStr, Field(max_length=LABEL_VALUE_CHARS)]
    truncatedAlerts: Annotated[int, Field(ge=0, strict=True)] = 0
    status: Status
    receiver: Annotated[StrictStr, Field(max_length=LABEL_VALUE_CHARS)]
    groupLabels: Labels
    commonLabels: Labels
    commonAnnotations: Annotations
    externalURL: Url
    alerts: list[WebhookAlert]


def problem(error: ValidationError) -> str:
    """The first problem, naming the field (`alerts.3.status`) but never echoing the value sent."""
    first = error.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    where = _UNPRINTABLE.sub("?", where)[:200]
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def received(hook: Webhook) -> list[ReceivedAlert]:
    alerts = []
    for alert in hook.alerts:
        ends = _time(alert.endsAt)
        alerts.append(
            ReceivedAlert(
                fingerprint=alert.fingerprint,
                status=alert.status,
                starts_at=_time(alert.startsAt),
                ends_at=ends if ends.year > 1970 else None,
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                generator_url=alert.generatorURL,
                group_key=hook.groupKey,
                external_url=hook.externalURL,
            )
        )
    return alerts


class AlertmanagerReceiver:
    """The `Receiver` of `/integrations/alertmanager`: validate, store durably in each alert's
    cluster's inbox, answer.

    `inboxes`: one per configured cluster, the home (first) cluster's first, each scoped to its
    cluster. `clusters`: how an alert names its cluster (default: no label, the one cluster)."""

    def __init__(
        self, inboxes: Sequence[AlertInbox], *, clusters: ClusterLabel | None = None, clock: Clock = utcnow
    ) -> None:
        if not inboxes or any(inbox.cluster is None for inbox in inboxes):
            raise ValueError("the receiver needs one inbox scoped to each cluster")
        self.inboxes = {str(inbox.cluster): inbox for inbox in inboxes}
        self.home = inboxes[0]
        self.clusters = clusters or ClusterLabel(None, tuple(self.inboxes))
        self.clock = clock

    def receive(self, payload: Any) -> Outcome:
        try:
            hook = Webhook.model_validate(payload)
        except ValidationError as e:
            return Outcome.refused(f"not an Alertmanager webhook payload (version 4): {problem(e)}")
        alerts = received(hook)
        by_inbox: dict[str, list[ReceivedAlert]] = {}
        unknown = 0
        for alert in alerts:
            cluster = self.clusters.cluster_of(alert.labels)
            if cluster not in self.inboxes:
                unknown += 1
                cluster = str(self.home.cluster)
            by_inbox.setdefault(cluster, []).append(alert)
        new = sum(self.inboxes[cluster].add(batch) for cluster, batch in by_inbox.items())
        if hook.truncatedAlerts:
            log.warning(
                "alertmanager: receiver %r dropped %d alert(s) of a notification (max_alerts); raise or remove it",
                hook.receiver[:100],
                hook.truncatedAlerts,
            )
        if unknown:
            log.warning(
                "alertmanager: %d alert(s) name no configured cluster (label %r): posted plainly from %s",
                unknown,
                self.clusters.label,
                self.home.cluster,
            )
        log.info("alertmanager: %d alert(s) received, %d new", len(alerts), new)
        return Outcome.accepted(received=len(alerts), new=new)
