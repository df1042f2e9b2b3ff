"""The /k8s command language: what parses, and the message for what doesn't."""

from __future__ import annotations

import shlex

import pytest

from bot.commands.parsing import duration_seconds, parse
from bot.commands.registry import VerbRegistry
from bot.commands.specs import FlagSpec, VerbSpec
from bot.errors import UsageError
from bot.model import Answer, Command


@pytest.fixture
def registry() -> VerbRegistry:
    reg = VerbRegistry()

    def noop(ctx: object, command: Command) -> Answer:
        return Answer(verb=command.verb, data={}, title="")

    reg.add(VerbSpec(name="why", summary="", usage="why <target> [-n ns]", target="required"), noop)
    reg.add(
        VerbSpec(
            name="scale",
            summary="",
            usage="scale <target> --replicas N",
            target="required",
            flags=(FlagSpec("replicas", "int", "replicas", maximum=1000), FlagSpec("yes", "bool", "confirm")),
        ),
        noop,
    )
    reg.add(
        VerbSpec(
            name="changes",
            summary="",
            usage="changes",
            flags=(FlagSpec("since", "duration", "window"), FlagSpec("grep", "str", "text")),
        ),
        noop,
    )
    reg.add(VerbSpec(name="status", summary="", usage="status", target="none"), noop)
    return reg


def test_verb_target_and_namespace(registry: VerbRegistry) -> None:
    command = parse("why checkout -n shop", registry=registry)
    assert (command.verb, command.target, command.namespace) == ("why", "checkout", "shop")


def test_namespace_from_ns_slash_name_and_kind_slash_name(registry: VerbRegistry) -> None:
    assert parse("why shop/checkout", registry=registry).namespace == "shop"
    command = parse("why deploy/checkout -n shop", registry=registry)
    assert (command.target, command.namespace) == ("deploy/checkout", "shop")


def test_flags_and_canonical_text_round_trip(registry: VerbRegistry) -> None:
    command = parse("scale checkout --replicas=3 -n shop --yes", registry=registry)
    assert command.flag("replicas") == "3" and command.flag("yes") is True
    assert parse(command.as_text(), registry=registry) == Command(
        verb="scale", target="checkout", namespace="shop", flags=command.flags, raw=command.as_text()
    )


@pytest.mark.parametrize("value", ["a b c", "it's", 'say "hi"', "-x", "a;b $(c) `d`"])
def test_a_flag_value_with_spaces_or_quotes_survives_the_canonical_text(registry: VerbRegistry, value: str) -> None:
    # Buttons and confirmations carry the canonical text: it must parse back to the same command.
    command = parse(f"changes --grep {shlex.quote(value)}", registry=registry)
    assert command.flag("grep") == value
    again = parse(command.as_text(), registry=registry)
    assert again.flags == command.flags and again.as_text() == command.as_text()


def test_empty_text_is_help(registry: VerbRegistry) -> None:
    assert parse("   ", registry=registry).verb == "help"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("whyy checkout", "Did you mean `why`"),
        ("why", "needs a target"),
        ("why a b", "one target"),
        ("status checkout", "takes no target"),
        ("scale checkout --replica 3", "Did you mean `replicas`"),
        ("scale checkout --replicas", "needs a value"),
        ("scale checkout --replicas 99999999999", "whole number"),
        ("scale checkout --replicas 5000", "between 0 and 1000"),
        ("scale checkout --replicas -1", "between 0 and 1000"),
        ("changes --since yesterday", "duration like"),
        ("why checkout -n", "needs a namespace"),
        ("why 'unclosed", "couldn't read"),
        ("why ../../etc/passwd", "not a target"),
        ("why 'checkout;rm -rf /'", "not a target I understand"),
        ("why 'checkout;reboot'", "not a valid object name"),
        ("why checkout;rm -rf /", "no option `--rf`"),
        ("why $(reboot)", "not a valid object name"),
        ("why checkout -n Shop_NS", "not a valid namespace"),
        ("why other/checkout -n shop", "-n` says `shop`"),
    ],
)
def test_bad_input_gets_a_clear_usage_error(registry: VerbRegistry, text: str, expected: str) -> None:
    with pytest.raises(UsageError) as error:
        parse(text, registry=registry)
    assert expected in str(error.value)


def test_usage_error_carries_the_verb_usage(registry: VerbRegistry) -> None:
    with pytest.raises(UsageError) as error:
        parse("scale checkout --replicas x", registry=registry)
    assert error.value.usage == "scale <target> --replicas N"


def test_durations() -> None:
    assert duration_seconds("90s") == 90
    assert duration_seconds("2h") == 7200
    assert duration_seconds("7d") == 7 * 86400
    with pytest.raises(UsageError):
        duration_seconds("2 hours")
