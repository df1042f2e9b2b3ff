"""`POST /integrations/changes`: one change event from outside the cluster (CI/CD, feature flags,
Terraform, ...), stored with the cluster's changes (docs/integrations.md has the contract).

Every field is validated by a pydantic model that forbids unknown keys and bounds every length; the
first problem is answered as a 400 that names the field (`target.kind: ...`) and nothing is stored.
Values that look secret are redacted (bot/redaction.py) before the change is stored, as cluster
changes are. The event's `id` makes it idempotent: the same id again stores nothing and answers
`"duplicate": true` with the change stored the first time.

Several clusters: the event's optional `cluster` names the one it happened in (a configured cluster;
with one cluster it may be left out). With several and none named the bot asks back (400 listing
them) rather than guess. The change is stored with that cluster; ids are unique per cluster.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.clock import Clock, utcnow
from bot.integrations.receiving import Outcome
from bot.kube.kinds import kind_named
from bot.model import CLUSTER_NAME, KUBERNETES, Change, ChangeKind, FieldChange, ObjectRef
from bot.redaction import Redactor
from bot.store.changes import ChangeStore

log = logging.getLogger(__name__)

MAX_FIELDS = 20
MAX_VALUE = 1024
MAX_FUTURE = timedelta(minutes=5)
"""How far ahead of the bot's clock `at` may be (clock skew), not more."""
RESERVED_SOURCES = frozenset({KUBERNETES})

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$")
SOURCE = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
PATH = re.compile(r"^[^\x00-\x1f\x7f\s]+$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
URL_UNSAFE = re.compile(r"[\x00-\x20\x7f<>|\"`\\]")

SCALARS = (str, int, float, bool)


def _one_line(value: str, what: str) -> str:
    if CONTROL.search(value):
        raise ValueError(f"{what} must be one line of text (no control characters or line breaks)")
    if not value.strip():
        raise ValueError(f"{what} must not be blank")
    return value.strip()


class FieldEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    before: Any = None
    after: Any = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not PATH.match(value):
            raise ValueError("a field path has no spaces or control characters (e.g. flags.checkout.new_payment)")
        return value

    @field_validator("before", "after")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, SCALARS):
            raise ValueError("a value is a string, a number, true/false or null")
        if isinstance(value, str) and len(value) > MAX_VALUE:
            raise ValueError(f"a value has at most {MAX_VALUE} characters")
        return value


class TargetEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Annotated[StrictStr, Field(min_length=1, max_length=63)]
    namespace: Annotated[StrictStr | None, Field(max_length=63)] = None
    name: Annotated[StrictStr, Field(min_length=1, max_length=253)]

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        known = kind_named(value)
        if known is None:
            raise ValueError(
                "not a kind the bot knows (Deployment, StatefulSet, DaemonSet, Job, CronJob, Service, ConfigMap, "
                "Ingress, ... or their short names like deploy): the history is read by kind, so an unknown one "
                "could never be shown"
            )
        return known.kind

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and not DNS_LABEL.match(value):
            raise ValueError("a namespace is a DNS label: lowercase letters, digits and '-', at most 63")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DNS_SUBDOMAIN.match(value):
            raise ValueError("an object name is lowercase letters, digits, '-' and '.', at most 253")
        return value


class ChangeEvent(BaseModel):
    """The body of `POST /integrations/changes`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    source: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    at: Annotated[StrictStr | None, Field(max_length=40)] = None
    target: TargetEvent | None = None
    namespace: Annotated[StrictStr | None, Field(max_length=63)] = None
    summary: Annotated[StrictStr, Field(min_length=1, max_length=300)]
    actor: Annotated[StrictStr | None, Field(min_length=1, max_length=128)] = None
    link: Annotated[StrictStr | None, Field(min_length=1, max_length=2048)] = None
    fields: Annotated[list[FieldEvent], Field(max_length=MAX_FIELDS)] = Field(default_factory=list)
    cluster: Annotated[StrictStr | None, Field(min_length=1, max_length=63)] = None

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        if value is not None and not CLUSTER_NAME.fullmatch(value):
            raise ValueError("a cluster name is a DNS label: lowercase letters, digits and '-', at most 63")
        return value

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not ID.match(value):
            raise ValueError("an id is letters, digits and . _ : / @ + = - (no spaces), from a letter or digit")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if not SOURCE.match(value):
            raise ValueError("a source is lowercase letters, digits, '.', '_' and '-' (e.g. ci, flags, terraform)")
        if value in RESERVED_SOURCES:
            raise ValueError(f"{value!r} is the source of changes the bot saw in the cluster; name your tool")
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: str | None) -> str | None:
        if value is not None and not RFC3339.match(value):
            raise ValueError("an RFC 3339 time with a time zone, e.g. 2026-11-30T10:26:04Z or ...+01:00")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and not DNS_LABEL.match(value):
            raise ValueError("a namespace is a DNS label: lowercase letters, digits and '-', at most 63")
        return value

    @field_validator("summary")
    @classmethod
    def _summary(cls, value: str) -> str:
        return _one_line(value, "the summary")

    @field_validator("actor")
    @classmethod
    def _actor(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value, "the actor")

    @field_validator("link")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if URL_UNSAFE.search(value):
            raise ValueError('a link has no spaces, control characters or < > | " ` \\ (percent-encode them)')
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a link is an http:// or https:// URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("a link must not carry credentials (user:password@)")
        return value

    @model_validator(mode="after")
    def _where(self) -> ChangeEvent:
        target = self.target
        if target is None:
            return self
        known = kind_named(target.kind)
        assert known is not None  # validated above
        if not known.namespaced:
            if target.namespace is not None:
                raise ValueError(f"target.namespace: a {known.kind} is not in a namespace")
            return self
        if target.namespace and self.namespace and target.namespace != self.namespace:
            raise ValueError("namespace: differs from target.namespace (give one, or the same in both)")
        if not (target.namespace or self.namespace):
            raise ValueError(f"target.namespace: a {known.kind} is in a namespace: name it (or give `namespace`)")
        return self

    def ref(self) -> ObjectRef:
        """What the change is about: the target, else the namespace, else the cluster (an empty name)."""
        if self.target is not None:
            known = kind_named(self.target.kind)
            namespace = (self.target.namespace or self.namespace) if known and known.namespaced else None
            return ObjectRef(self.target.kind, namespace, self.target.name)
        return ObjectRef("Namespace", None, self.namespace or "")


def problems(error: ValidationError) -> list[dict[str, str]]:
    """Each problem as {"field": "target.kind", "problem": "..."}: the field named as in the body."""
    found: list[dict[str, str]] = []
    for item in error.errors(include_url=False, include_input=False):
        location = ""
        for part in item["loc"]:
            location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else str(part))
        message = str(item["msg"]).removeprefix("Value error, ")
        if ": " in message and location == "" and message.split(": ", 1)[0].replace(".", "").isidentifier():
            location, message = message.split(": ", 1)  # a model-level check names its field itself
        found.append({"field": location or "(body)", "problem": message})
    return found


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")).astimezone(UTC)


class ExternalChanges:
    """The receiver of `POST /integrations/changes` (a `bot.integrations.receiving.Receiver`).

    `changes`: one store per configured cluster, each scoped to its cluster (the home cluster's first)."""

    def __init__(self, *, changes: Sequence[ChangeStore], redactor: Redactor, clock: Clock = utcnow) -> None:
        if not changes or any(store.cluster is None for store in changes):
            raise ValueError("external changes need one change store scoped to each cluster")
        self.stores = {str(store.cluster): store for store in changes}
        self.redactor = redactor
        self.clock = clock

    def receive(self, payload: Any) -> Outcome:
        if not isinstance(payload, dict):
            return Outcome.refused("the body must be one JSON object (a change event), not a list or a value")
        try:
            event = ChangeEvent.model_validate(payload)
        except ValidationError as e:
            return _refused(problems(e))
        store = self._store(event.cluster)
        if isinstance(store, Outcome):
            return store
        now = self.clock()
        at = parse_time(event.at) if event.at else now
        if at > now + MAX_FUTURE:
            return Outcome.refused(f"at: {event.at} is in the future (the bot's clock says {now.isoformat()})")
        if at < now - store.retention:
            days = store.retention.days
            return Outcome.refused(f"at: {event.at} is older than the change history keeps ({days} days)")
        change = self._change(event, at)
        stored, duplicate = store.record_external(change, event_id=event.id)
        if not duplicate:
            log.info(
                "integrations: stored external change %s from %s about %s in %s",
                event.id,
                event.source,
                change.ref,
                store.cluster,
            )
        return Outcome.accepted(id=event.id, duplicate=duplicate, change=stored.to_json())

    def _store(self, cluster: str | None) -> ChangeStore | Outcome:
        """The store of the cluster the event names; the only one when it names none; else a 400."""
        names = ", ".join(self.stores)
        if cluster is None:
            if len(self.stores) == 1:
                return next(iter(self.stores.values()))
            problem = f"which cluster? this bot serves {names}: name one in `cluster`"
            return _refused([{"field": "cluster", "problem": problem}])
        store = self.stores.get(cluster)
        if store is None:
            problem = f"{cluster!r} is not a cluster this bot serves (one of: {names})"
            return _refused([{"field": "cluster", "problem": problem}])
        return store

    def _change(self, event: ChangeEvent, at: datetime) -> Change:
        """The change as stored: every free text redacted like a cluster change's values."""
        hide = self.redactor
        fields = tuple(
            FieldChange(f.path, _hidden(hide, f.path, f.before), _hidden(hide, f.path, f.after)) for f in event.fields
        )
        return Change(
            ref=event.ref(),
            at=at,
            kind=ChangeKind.EXTERNAL,
            summary=hide.text(event.summary),
            fields=fields,
            actor=hide.text(event.actor) if event.actor else None,
            source=event.source,
            link=hide.text(event.link) if event.link else None,
        )


def _refused(found: list[dict[str, str]]) -> Outcome:
    """A 400 naming the first problem's field, with every problem (at most 20) listed."""
    first = found[0]
    more = f" (and {len(found) - 1} more problems)" if len(found) > 1 else ""
    return Outcome(400, {"ok": False, "error": f"{first['field']}: {first['problem']}{more}", "problems": found[:20]})


def _hidden(hide: Redactor, path: str, value: Any) -> Any:
    """A field's value: hidden whole when its path names a secret (`db.password`), else scanned."""
    if not isinstance(value, str):
        return value
    return hide.value(path.rsplit(".", 1)[-1], value)
