"""The `/k8s` command language: the parser (what each verb accepts is its `specs.VerbSpec`).

One parser serves Slack, buttons (whose value is canonical command text) and `k8sbot ask`, so a
typed command, a click and a terminal call share one path. Parsing is pure: text in, `Command` or
`UsageError` out, with "did you mean" suggestions for near-miss verbs and flags.
"""

from __future__ import annotations

import difflib
import re
import shlex

from bot.commands.context import VerbTable
from bot.commands.specs import FlagSpec
from bot.errors import UsageError
from bot.kube.kinds import kind_named
from bot.model import CLUSTER_NAME, Command
from bot.text import clip

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
"""A Kubernetes object name (DNS subdomain). Targets may also be `kind/name` or `ns/name`."""
DURATION_RE = re.compile(r"^(\d{1,6})([smhd])$")
MAX_INT = 1_000_000


def _quote(word: str, limit: int = 60) -> str:
    """User input shown back inside `code`: no backticks (they would end the code span), clipped."""
    return clip(word.replace("`", "'"), limit)


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def parse(text: str, *, registry: VerbTable) -> Command:
    """Parse `verb [target] [-n ns] [--flag value]...` into a Command, or raise UsageError."""
    raw = " ".join(text.split())
    try:
        words = shlex.split(raw)
    except ValueError as e:
        raise UsageError(f"I couldn't read that command ({e}).") from e
    if not words:
        return Command(verb="help", raw=raw)
    name = words[0].lower()
    spec = registry.specs.get(name)
    if spec is None:
        known = sorted(registry.specs)
        raise UsageError(f"`{_quote(words[0], 40)}` is not a command I know.{_suggest(name, known)}")
    target: str | None = None
    namespace: str | None = None
    cluster: str | None = None
    flags: dict[str, str | bool] = {}
    rest = words[1:]
    # Canonical text spells the leading flag out (`can-i checkout --verb rollback`); then no word fills it.
    leading = spec.leading if spec.leading and f"--{spec.leading}" not in [w.partition("=")[0] for w in rest] else None
    i = 0
    while i < len(rest):
        word = rest[i]
        if word.startswith("-") and word != "-":
            key, _, inline = word.lstrip("-").partition("=")
            if key in ("n", "namespace"):
                value = inline or (rest[i + 1] if i + 1 < len(rest) else "")
                if not value or value.startswith("-"):
                    raise UsageError("`-n` needs a namespace name.", usage=spec.usage)
                namespace = _check_name(value, what="namespace", usage=spec.usage)
                i += 1 if inline else 2
                continue
            if key == "cluster" and spec.flag_named(key) is None:  # every verb: which cluster it is for
                value = inline or (rest[i + 1] if i + 1 < len(rest) else "")
                if not value or value.startswith("-"):
                    raise UsageError("`--cluster` needs a cluster name.", usage=spec.usage)
                if not CLUSTER_NAME.fullmatch(value):
                    raise UsageError(f"`{_quote(value)}` is not a valid cluster name.", usage=spec.usage)
                cluster = value
                i += 1 if inline else 2
                continue
            flag = spec.flag_named(key)
            if flag is None:
                names = [f.name for f in spec.flags]
                raise UsageError(
                    f"`{spec.name}` has no option `--{_quote(key, 40)}`.{_suggest(key, names)}", usage=spec.usage
                )
            if flag.kind == "bool":
                flags[flag.name] = True
                i += 1
                continue
            value = inline or (rest[i + 1] if i + 1 < len(rest) else "")
            if not value:
                raise UsageError(f"`--{flag.name}` needs a value.", usage=spec.usage)
            flags[flag.name] = _check_value(flag, value, usage=spec.usage)
            i += 1 if inline else 2
            continue
        leading_flag = spec.flag_named(leading) if leading and leading not in flags else None
        if leading_flag is not None:
            flags[leading_flag.name] = _check_value(leading_flag, word, usage=spec.usage)
            i += 1
            continue
        if target is not None:
            raise UsageError(
                f"I expected one target but got `{_quote(target)}` and `{_quote(word)}`.", usage=spec.usage
            )
        target = word
        i += 1
    if target is not None:
        if spec.target == "none":
            raise UsageError(f"`{spec.name}` takes no target.", usage=spec.usage)
        target, namespace = _split_target(target, namespace, usage=spec.usage)
    elif spec.target == "required":
        raise UsageError(f"`{spec.name}` needs a target.", usage=spec.usage)
    return Command(
        verb=spec.name,
        target=target,
        namespace=namespace,
        flags=tuple(sorted(flags.items())),
        raw=raw,
        cluster=cluster,
    )


def _check_name(value: str, *, what: str, usage: str | None) -> str:
    if not NAME_RE.match(value) or ".." in value:
        raise UsageError(f"`{_quote(value)}` is not a valid {what} name.", usage=usage)
    return value


def _split_target(target: str, namespace: str | None, *, usage: str) -> tuple[str, str | None]:
    """Accept `name`, `kind/name` and `ns/name` (a known kind wins over a namespace)."""
    parts = target.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise UsageError(f"`{_quote(target)}` is not a target I understand.", usage=usage)
    if len(parts) == 3:  # kind/ns/name? only ns/kind/name style is ambiguous; accept kind/ns/name
        kind, ns, name = parts
        if kind_named(kind) is None:
            raise UsageError(f"`{_quote(kind, 40)}` is not a kind I know.", usage=usage)
        _check_name(ns, what="namespace", usage=usage)
        if namespace and namespace != ns:
            raise UsageError(f"`{target}` names namespace `{ns}` but `-n` says `{namespace}`.", usage=usage)
        return f"{kind}/{_check_name(name, what='object', usage=usage)}", ns
    if len(parts) == 2:
        first, name = parts
        _check_name(name, what="object", usage=usage)
        if kind_named(first) is not None:
            return f"{first}/{name}", namespace
        _check_name(first, what="namespace", usage=usage)
        if namespace and namespace != first:
            raise UsageError(f"`{target}` names namespace `{first}` but `-n` says `{namespace}`.", usage=usage)
        return name, first
    return _check_name(target, what="object", usage=usage), namespace


def _check_value(flag: FlagSpec, value: str, *, usage: str) -> str | bool:
    if flag.kind == "int":
        if not re.fullmatch(r"-?\d{1,7}", value):
            raise UsageError(f"`--{flag.name}` needs a whole number, not `{_quote(value, 20)}`.", usage=usage)
        number = int(value)
        low = flag.minimum if flag.minimum is not None else 0
        high = flag.maximum if flag.maximum is not None else MAX_INT
        if not low <= number <= high:
            raise UsageError(f"`--{flag.name}` must be between {low} and {high}.", usage=usage)
        return str(number)
    if flag.kind == "duration":
        if not DURATION_RE.match(value):
            raise UsageError(
                f"`--{flag.name}` needs a duration like 30m, 2h or 7d, not `{_quote(value, 20)}`.", usage=usage
            )
        return value
    if len(value) > 200:
        raise UsageError(f"`--{flag.name}` is too long.", usage=usage)
    return value


def duration_seconds(value: str) -> int:
    match = DURATION_RE.match(value)
    if not match:
        raise UsageError(f"`{value}` is not a duration like 30m, 2h or 7d.")
    number, unit = int(match.group(1)), match.group(2)
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
