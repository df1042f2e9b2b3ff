"""`silence <target> --for 1h [--category c]`: mute alerts of one workload (and optionally one cause).

The Silence button under an alert runs this with the alert's workload and category. Silences live
in the alert store (bot/store/alerts.py); the alert engine checks them before posting. An alert
already posted stays; the silence stops new ones (and reopenings) until it ends.

It is authorized where it acts (`VerbContext.acted_namespace`): a silence of a cluster-scoped object
(`node/x`, `ns/x`) is cluster-wide and needs a grant on every namespace ("*"); any other is in its
namespace. It changes the bot's state, so it is an action: refused when Slack cannot vouch for the
person's account.
"""

from __future__ import annotations

from datetime import timedelta

from bot.commands.context import VerbContext
from bot.commands.parsing import duration_seconds
from bot.commands.registry import verb
from bot.commands.specs import NAMESPACE_FLAG, FlagSpec, VerbSpec
from bot.errors import UsageError
from bot.kube.kinds import kind_named
from bot.model import Answer, Category, Command, ObjectRef

MAX_SILENCE = timedelta(days=30)
CATEGORIES = ", ".join(c.value for c in Category if c is not Category.HEALTHY)


def silenced_ref(command: Command, namespace: str | None) -> ObjectRef:
    """`checkout` (a Deployment), `deploy/checkout`, `job/nightly`, `node/kwok-node-0`.

    `namespace` is where the command acts (None for a cluster-scoped kind, which has none)."""
    target = command.target or ""
    word, _, name = target.rpartition("/")
    kind = kind_named(word) if word else kind_named("Deployment")
    if kind is None:
        raise UsageError(f"`{word}` is not a kind I know.", usage=SPEC.usage)
    if not kind.namespaced:
        return ObjectRef(kind.kind, None, name)
    if not namespace:
        raise UsageError("Which namespace? Add `-n <namespace>` (this channel has no default namespace).")
    return ObjectRef(kind.kind, namespace, name)


SPEC = VerbSpec(
    name="silence",
    summary="mute alerts of a workload (or one cause of it) for a while",
    usage="silence <target> [-n namespace] --for 1h [--category crash_loop]",
    examples=("silence checkout -n shop --for 1h", "silence deploy/checkout --for 30m --category image_pull"),
    flags=(
        NAMESPACE_FLAG,
        FlagSpec("for", "duration", "how long, e.g. 30m, 1h, 2d (at most 30d)"),
        FlagSpec("category", "str", f"only this cause ({CATEGORIES})"),
    ),
    target="required",
    changes_bot_state=True,
)


@verb(SPEC)
def silence_verb(ctx: VerbContext, command: Command) -> Answer:
    length = command.flag("for")
    if not length:
        raise UsageError("For how long? Add `--for 1h` (or 30m, 2d...).", usage=SPEC.usage)
    seconds = duration_seconds(str(length))
    if not 0 < seconds <= MAX_SILENCE.total_seconds():
        raise UsageError("A silence lasts between 1 second and 30 days.", usage=SPEC.usage)
    category = _category(command.flag("category"))
    ref = silenced_ref(command, ctx.acted_namespace(command))  # the namespace it was authorized in
    until = ctx.now + timedelta(seconds=seconds)
    store = ctx.services.alerts
    silence_id = store.silence(ref, until=until, category=category, by=ctx.subject.slack_user)
    what = f"{category.value} alerts" if category else "all alerts"
    title = f"Silenced {what} of {ref.kind} {ref.namespace + '/' if ref.namespace else ''}{ref.name} for {length}"
    return Answer(
        verb="silence",
        data={
            "silence": {
                "id": silence_id,
                "target": ref.to_json(),
                "category": category.value if category else None,
                "until": until.isoformat(),
                "by": ctx.subject.slack_user,
            }
        },
        title=title,
        lines=(f"Until {until:%Y-%m-%d %H:%M} UTC. Alerts already posted stay; new ones are held back.",),
    )


def _category(value: object) -> Category | None:
    if value in (None, "", False):
        return None
    try:
        return Category(str(value))
    except ValueError:
        raise UsageError(f"`{value}` is not a cause I know ({CATEGORIES}).", usage=SPEC.usage) from None
