"""Terminal commands for permissions and the audit log, as argparse subparsers the `k8sbot` CLI adds.

    k8sbot permissions check --as U0ALICE [--as-group S0SRE] --verb rollback --namespace shop [--target checkout]
                             [--cluster prod-eu]
    k8sbot permissions validate [--file permissions.yaml]
    k8sbot permissions rbac [--members S0SHOPDEV=U0BOB,U0CAROL] [--cluster prod-eu]   (the impersonation ClusterRole)
    k8sbot audit [--since 24h] [--cluster prod-eu] [--json]

`add_parsers(subparsers)` registers them; each sets `handler(args, core) -> exit code`. `check`
makes the very decision the bot makes (the same engine, SubjectAccessReview included): exit 0 when
allowed, 1 when denied.

Building the parser imports nothing heavy (`k8sbot --help` stays fast): the handlers import the
policy, YAML and the command parser when they run, after the core is built.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from bot.permissions.engine import PermissionEngine
    from bot.permissions.policy import Binding, Team
    from k8sbot.wiring import Core

EXIT_ALLOWED, EXIT_DENIED, EXIT_INVALID = 0, 1, 2


def add_parsers(subparsers: Any) -> None:
    """Add `permissions check|validate` and `audit` to the k8sbot CLI's subparsers."""
    permissions = subparsers.add_parser("permissions", help="check or validate permissions.yaml")
    sub = permissions.add_subparsers(dest="permissions_cmd", required=True)

    check = sub.add_parser("check", help="may this Slack user run this verb in this namespace? (exit 0 yes, 1 no)")
    check.add_argument("--as", dest="as_user", required=True, help="Slack user id, e.g. U0ALICE")
    check.add_argument("--as-group", dest="as_groups", action="append", default=[], help="Slack user group id")
    check.add_argument("--verb", required=True, help="rollback, scale, logs, ...")
    check.add_argument("--namespace", "-n", required=True)
    check.add_argument("--target", default=None, help="object name (kind/name allowed), for name-scoped RBAC")
    check.add_argument("--replicas", type=int, default=None, help="for scale: the count to check against limits")
    check.add_argument(
        "--cluster", default=None, help="the cluster to decide for (default: the configured one, K8SBOT_CLUSTER_NAME)"
    )
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=check_handler)

    validate = sub.add_parser("validate", help="validate permissions.yaml and summarise it (exit 2 if invalid)")
    validate.add_argument("--file", default=None, help="default: $K8SBOT_PERMISSIONS or ./permissions.yaml")
    validate.set_defaults(handler=validate_handler)

    rbac = sub.add_parser("rbac", help="print the least-privilege impersonation ClusterRole for permissions.yaml")
    rbac.add_argument("--file", default=None, help="default: $K8SBOT_PERMISSIONS or ./permissions.yaml")
    rbac.add_argument(
        "--members", action="append", default=[], help="a Slack user group's members: S0SHOPDEV=U0BOB,U0CAROL"
    )
    rbac.add_argument("--cluster", default=None, help="only the identities mapped in this cluster (default: all)")
    rbac.set_defaults(handler=rbac_handler)

    audit = subparsers.add_parser("audit", help="list audited attempts: who did what, allowed or not, outcome")
    audit.add_argument("--since", default="24h", help="a duration (30m, 2h, 7d) or an ISO date/time; 'all' for all")
    audit.add_argument("--limit", type=int, default=500)
    audit.add_argument("--cluster", default=None, help="only this cluster's rows (default: every cluster's)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=audit_handler)


def check_handler(args: argparse.Namespace, core: Core) -> int:
    from bot.commands.parsing import NAME_RE  # noqa: PLC0415 - lazy: CLI start-up
    from bot.model import Command  # noqa: PLC0415 - lazy: CLI start-up
    from bot.permissions.targets import acted_namespace  # noqa: PLC0415 - lazy: CLI start-up

    for value, what in (
        (args.namespace, "namespace"),
        (args.target.rpartition("/")[2] if args.target else "x", "target"),
    ):
        if not NAME_RE.match(value):
            raise UsageError(f"`{value[:60]}` is not a valid {what} name.")
    if core.permissions is None:  # built without permissions.yaml: load it now
        raise ConfigError("permissions check needs permissions.yaml (set K8SBOT_PERMISSIONS).")
    engine = engine_for_cluster(core, checked_cluster(args.cluster))
    subject = engine.subject_as(args.as_user, args.as_groups)
    flags = (("replicas", str(args.replicas)),) if args.replicas is not None else ()
    command = Command(verb=args.verb, target=args.target, namespace=args.namespace, flags=flags)
    # Decided where the verb would act, as the bot does (`--target node/x` is a cluster-wide question).
    explanation = engine.explain(subject, command, acted_namespace(command, args.namespace))
    decision = explanation.decision
    if args.json:
        print(json.dumps({"verb": args.verb, "target": args.target, **explanation.to_json()}, indent=2))
    else:
        where = explanation.namespace or "all namespaces"
        verdict = "ALLOWED" if decision.allowed else "DENIED"
        print(f"{verdict}: {args.as_user} {args.verb} in {where} (cluster {explanation.cluster_name})")
        for lock, part in (("file", explanation.file), ("limit", explanation.limit), ("cluster", explanation.cluster)):
            if part is not None:
                print(f"  {lock:8} {'yes' if part.allowed else 'no '}  {part.reason}")
        if subject.k8s_user:
            print(f"  acts as  {subject.k8s_user} groups={','.join(subject.k8s_groups) or '-'}")
    return EXIT_ALLOWED if decision.allowed else EXIT_DENIED


def engine_for_cluster(core: Core, cluster: str | None) -> PermissionEngine:
    """The engine deciding for `cluster` (None: the only configured cluster; of several, one must be
    named). Only a cluster this configuration serves can be asked: its RBAC needs its own client, and
    half an answer (the file without the cluster) would read as a yes."""
    names = [c.name for c in core.clusters]
    if cluster is None and len(names) > 1:
        raise ConfigError(f"--cluster: which cluster? Name one of {', '.join(names)}.")
    chosen = next((c for c in core.clusters if cluster is None or c.name == cluster), None)
    if chosen is None:
        raise ConfigError(f"--cluster {cluster}: not a configured cluster (configured: {', '.join(names)})")
    assert chosen.permissions is not None  # built with permissions.yaml (checked by the caller)
    return chosen.permissions


def checked_cluster(value: str | None) -> str | None:
    """`--cluster`'s value, refused unless it is a cluster name (a DNS label)."""
    from bot.permissions.policy import is_cluster_name  # noqa: PLC0415 - lazy: CLI start-up

    if value is not None and not is_cluster_name(value):
        raise UsageError(f"`{value[:60]!r}` is not a cluster name (a DNS label: lowercase letters, digits, '-').")
    return value


def validate_handler(args: argparse.Namespace, core: Core) -> int:
    from bot.permissions.policy import load_policy, policy_path  # noqa: PLC0415 - lazy: CLI start-up

    path = Path(args.file) if args.file else policy_path()
    try:
        policy = load_policy(path, verbs=core.commands.verbs.names())
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_INVALID
    print(f"{path}: valid — {len(policy.roles)} roles, {len(policy.teams)} teams, {len(policy.bindings)} bindings")
    for name, team in policy.teams.items():
        print(f"  team {name}: {describe_rule(team)}")
    return EXIT_ALLOWED


def describe_rule(rule: Team | Binding) -> str:
    """One line of `validate`: the role, where, and who the bot acts as (per cluster when it differs)."""
    namespaces = rule.namespace_globs
    where = (
        "; ".join(f"{key}: {', '.join(globs)}" for key, globs in namespaces.items())
        if isinstance(namespaces, dict)
        else ", ".join(namespaces)
    )
    clusters = f", clusters {', '.join(rule.clusters)}" if rule.clusters != ("*",) else ""
    identity = rule.kubernetes
    if isinstance(identity, dict):
        acts = "; ".join(f"{key}: {i.user} {list(i.groups)}" for key, i in identity.items())
        acts = f", acts as {acts}"
    else:
        acts = f", acts as {identity.user} {list(identity.groups)}" if identity else ""
    return f"role {rule.role} in {where}{clusters}{acts}"


def rbac_handler(args: argparse.Namespace, core: Core) -> int:
    """Print the ClusterRole; user group members come from --members, else from the engine's Directory."""
    import yaml  # noqa: PLC0415 - lazy: CLI start-up

    from bot.permissions.policy import load_policy, policy_path  # noqa: PLC0415 - lazy: CLI start-up
    from bot.permissions.rbac import impersonation_role  # noqa: PLC0415 - lazy: CLI start-up

    path = Path(args.file) if args.file else policy_path()
    policy = load_policy(path, verbs=core.commands.verbs.names())
    members: dict[str, set[str]] = {}
    for item in args.members:
        group, _, users = item.partition("=")
        members.setdefault(group, set()).update(u for u in users.split(",") if u)
    engine = core.permissions
    if engine is not None and engine.directory is not None:
        for group in policy.mentioned_usergroups() - set(members):
            members[group] = set(engine.directory.usergroup_members(group))
    missing = sorted(policy.mentioned_usergroups() - set(members))
    header = f"# Generated by `k8sbot permissions rbac` from {path}. Regenerate when people or mappings change.\n"
    if missing:
        header += f"# Members unknown for user groups {', '.join(missing)}: their people are not listed.\n"
    if checked_cluster(args.cluster) is not None:
        header += f"# For cluster {args.cluster}: the identities permissions.yaml maps there.\n"
    role = impersonation_role(policy, members, cluster=args.cluster)
    print(header + yaml.safe_dump(role, sort_keys=False), end="")
    return 0


def since_time(value: str, now: datetime) -> datetime | None:
    """`24h` → now-24h; an ISO date/time → itself (UTC if naive); `all` → None."""
    from bot.commands.parsing import duration_seconds  # noqa: PLC0415 - lazy: CLI start-up

    if value == "all":
        return None
    try:
        return now - timedelta(seconds=duration_seconds(value))
    except UsageError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--since needs a duration like 2h or 7d, or a date like 2026-05-01, not `{value[:40]}`."
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def audit_handler(args: argparse.Namespace, core: Core) -> int:
    """Every cluster's rows (or `--cluster`'s, also one no longer configured: its rows are still the
    record), each naming its cluster when the bot serves several or the rows come from several."""
    from bot.store.audit import AuditLog  # noqa: PLC0415 - lazy: CLI start-up

    cluster = checked_cluster(args.cluster)
    log = AuditLog(core.database, clock=core.clock, cluster=cluster)
    entries = log.since(since_time(args.since, core.clock()), limit=args.limit)
    if args.json:
        print(json.dumps([e.to_json() for e in entries], indent=2))
    else:
        several = len(core.clusters) > 1 or len({e.cluster for e in entries}) > 1
        for entry in entries:
            print(entry.line(cluster=several))
        if not entries:
            print(f"no audited attempts since {args.since}" + (f" in cluster {cluster}" if cluster else ""))
    return 0
