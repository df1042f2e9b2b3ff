"""The docs must not drift from the code (in the style of sqlite-utils' tests of its own docs).

Each check is a small function over markdown text that returns what is wrong, so a test can run it
on the real README.md and docs/*.md, and a second test can feed it a deliberately broken text and
see that it notices. No cluster, no network: these run with `-m "not cluster"` in about a second.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

import pytest

from bot.commands.dispatch import execute
from bot.commands.registry import VerbRegistry
from bot.commands.specs import VerbSpec
from bot.kube.client import UnconfiguredKubeClient
from bot.model import Category
from bot.settings import ENV, Settings, load_settings
from bot.store.database import Database
from tests.wiring_helpers import command_services

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DIAGNOSIS = REPO / "docs" / "diagnosis.md"

VERB_SECTION = "## The `/k8s` command"
CONFIG_SECTION = "### Configuration"
CATEGORY_SECTION = "## Categories"

PATH_PREFIXES = ("bot/", "handlers/", "k8sbot/", "tests/", "bench/", "scripts/", "deploy/", "docs/", "slack_emulator/")
NOT_PATHS = frozenset({"k8sbot/k8sbot"})
"""Mentions that look like repo paths but are not: the bot's ServiceAccount (namespace/name) in docs/permissions.md."""
PYTHON_ROOTS = ("bot", "handlers", "k8sbot")
NOT_PYTHON = frozenset({"k8sbot.db"})
"""Mentions that look like dotted Python names but are not: the default SQLite file name."""


def all_docs() -> list[Path]:
    """README.md and every docs/*.md (docs/architecture.md too, once it exists)."""
    return [README, *sorted((REPO / "docs").glob("*.md"))]


# -- markdown helpers ---------------------------------------------------------------------------------


def without_fences(markdown: str) -> str:
    """The text with fenced code blocks blanked out (line numbers kept), so their backticks don't
    pair up with inline code spans."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return "\n".join(out)


def section(markdown: str, heading: str) -> str:
    """The text under `heading` (an exact heading line) up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = without_fences(markdown).splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    except StopIteration:
        return ""
    body = []
    for line in lines[start + 1 :]:
        hashes = len(line) - len(line.lstrip("#"))
        if 0 < hashes <= level and line[hashes : hashes + 1] == " ":
            break
        body.append(line)
    return "\n".join(body)


def split_row(line: str) -> list[str]:
    """The cells of one markdown table row; a `|` inside a code span does not split."""
    cells, cell, in_code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += char
    cells.append(cell.strip())
    return cells


def first_table(text: str) -> list[list[str]]:
    """The body rows (header and separator dropped) of the first markdown table in `text`."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            rows.append(split_row(line))
        elif rows:
            break
    if len(rows) < 2 or not all(re.fullmatch(r":?-+:?", c) for c in rows[1]):
        return []
    return rows[2:]


def code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


def table_column(markdown: str, heading: str, column: int) -> list[list[str]]:
    """For each row of the first table under `heading`, the code spans of cell `column`."""
    return [code_spans(row[column]) if column < len(row) else [] for row in first_table(section(markdown, heading))]


# -- the checks ---------------------------------------------------------------------------------------


def documented_verbs(readme: str) -> set[str]:
    """Verb names in the first column of README's `/k8s` verb table: the first word of each usage."""
    return {span.split()[0] for spans in table_column(readme, VERB_SECTION, 0) for span in spans if span.split()}


def verbs_missing_from_readme(readme: str, verbs: Collection[str]) -> list[str]:
    documented = documented_verbs(readme)
    return sorted(set(verbs) - documented)


def unknown_verbs_in_readme(readme: str, verbs: Collection[str]) -> list[str]:
    documented = documented_verbs(readme)
    if not documented:
        return [f"no verb table found under {VERB_SECTION!r}"]
    return sorted(documented - set(verbs))


def verbs_missing_from_help(help_lines: Iterable[str], specs: Mapping[str, VerbSpec]) -> list[str]:
    """Verbs whose `/k8s <usage>` does not start a line of the help answer."""
    lines = list(help_lines)
    return sorted(
        f"{name} (`/k8s {spec.usage}`)"
        for name, spec in specs.items()
        if not any(line.startswith(f"/k8s {spec.usage}") for line in lines)
    )


def configuration_problems(readme: str, fields: Collection[str], env: Mapping[str, str]) -> list[str]:
    """README's configuration table against Settings: every key and variable listed, none unknown,
    and each row's variables paired with its keys in the same order."""
    variables = table_column(readme, CONFIG_SECTION, 0)
    keys = table_column(readme, CONFIG_SECTION, 1)
    if not keys:
        return [f"no configuration table found under {CONFIG_SECTION!r}"]
    documented_keys = {k for row in keys for k in row}
    documented_variables = {v for row in variables for v in row}
    problems = [f"setting `{k}` is not in the config key column" for k in sorted(set(fields) - documented_keys)]
    problems += [
        f"environment variable `{v}` (setting `{k}`) is not in the variable column"
        for k, v in sorted(env.items())
        if v not in documented_variables
    ]
    problems += [f"config key `{k}` is not a setting" for k in sorted(documented_keys - set(fields))]
    for row_variables, row_keys in zip(variables, keys, strict=True):
        if row_variables and row_keys and len(row_variables) == len(row_keys):
            problems += [
                f"row pairs `{v}` with `{k}`, but `{k}` is read from `{env.get(k)}`"
                for v, k in zip(row_variables, row_keys, strict=True)
                if env.get(k) != v
            ]
    return problems


def documented_categories(doc: str) -> set[str]:
    return {span for spans in table_column(doc, CATEGORY_SECTION, 0) for span in spans}


def category_problems(doc: str, categories: Collection[str]) -> list[str]:
    documented = documented_categories(doc)
    if not documented:
        return [f"no category table found under {CATEGORY_SECTION!r}"]
    problems = [f"category `{c}` is not in the table" for c in sorted(set(categories) - documented)]
    problems += [f"`{c}` in the table is not a category" for c in sorted(documented - set(categories))]
    return problems


def path_mentions(markdown: str) -> list[str]:
    """Repo paths named in code spans (their first word) and in link targets."""
    text = without_fences(markdown)
    candidates = [span.split()[0] for span in code_spans(text) if span.split()]
    candidates += [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text)]
    return [c for c in candidates if c.startswith(PATH_PREFIXES) and c not in NOT_PATHS]


def path_exists(mention: str, root: Path) -> bool:
    """`dir/`, `file`, `file.py:function`, `file.py::test`, globs (`tests/test_*.py`) and placeholders
    (`bot/diagnosis/analyzers/<kind>.py`) count when something in the repo matches."""
    path = mention.split(":", maxsplit=1)[0]
    pattern = re.sub(r"<[^>]*>", "*", path.rstrip("/"))
    candidates = root.glob(pattern) if "*" in pattern else [root / pattern]
    return any(c.exists() and (c.is_dir() or not path.endswith("/")) for c in candidates)


def missing_paths(markdown: str, root: Path = REPO) -> list[str]:
    return sorted({m for m in path_mentions(markdown) if not path_exists(m, root)})


def broken_links(markdown: str, base: Path) -> list[str]:
    """Relative link targets (`[alerts](alerts.md)`) that name nothing, from the doc's own directory."""
    targets = re.findall(r"\]\(([^)\s]+)\)", without_fences(markdown))
    local = [t.split("#")[0] for t in targets if not re.match(r"[a-z]+:|#", t)]
    return sorted({t for t in local if t and not (base / t).exists()})


def python_mentions(markdown: str) -> list[str]:
    """Dotted names of the project's modules in code spans (`bot.commands.dispatch.execute`)."""
    names = []
    for span in code_spans(without_fences(markdown)):
        words = span.split()
        if not words:
            continue
        name = words[0].split("(")[0]
        root = name.split(".")[0]
        if root in PYTHON_ROOTS and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", name) and name not in NOT_PYTHON:
            names.append(name)
    return names


def resolves(name: str) -> bool:
    """Whether `a.b.c` is a module, or an attribute reached from the longest importable module prefix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def unresolved_names(markdown: str) -> list[str]:
    return sorted({n for n in python_mentions(markdown) if not resolves(n)})


# -- the docs as they are -----------------------------------------------------------------------------


VERBS = VerbRegistry.discover()


def doc_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_every_registered_verb_is_in_the_readme_verb_table() -> None:
    missing = verbs_missing_from_readme(README.read_text(), VERBS.specs)
    assert not missing, f"README.md's /k8s verb table has no row for the registered verb(s): {', '.join(missing)}"


def test_every_verb_in_the_readme_table_is_registered() -> None:
    unknown = unknown_verbs_in_readme(README.read_text(), VERBS.specs)
    assert not unknown, f"README.md's /k8s verb table names verb(s) the bot does not register: {', '.join(unknown)}"


def test_help_lists_every_registered_verb(tmp_path: Path) -> None:
    services = command_services(UnconfiguredKubeClient("no cluster"), Database(tmp_path / "x.db"), verbs=VERBS)
    answer = execute(services, text="help")
    missing = verbs_missing_from_help(answer.lines, VERBS.specs)
    assert not missing, f"`/k8s help` does not list the usage of: {', '.join(missing)}"


def test_readme_configuration_table_matches_settings() -> None:
    problems = configuration_problems(README.read_text(), Settings.model_fields, ENV)
    assert not problems, "README.md's configuration table drifted from bot/settings.py:\n" + "\n".join(problems)


def test_every_category_is_explained_in_diagnosis_md() -> None:
    problems = category_problems(DIAGNOSIS.read_text(), [c.value for c in Category])
    assert not problems, "docs/diagnosis.md's category table drifted from bot.model.Category:\n" + "\n".join(problems)


@pytest.mark.parametrize("doc", all_docs(), ids=doc_id)
def test_paths_named_in_the_docs_exist(doc: Path) -> None:
    missing = missing_paths(doc.read_text())
    assert not missing, f"{doc_id(doc)} names path(s) that do not exist: {', '.join(missing)}"


@pytest.mark.parametrize("doc", all_docs(), ids=doc_id)
def test_links_in_the_docs_resolve(doc: Path) -> None:
    broken = broken_links(doc.read_text(), doc.parent)
    assert not broken, f"{doc_id(doc)} links to file(s) that do not exist: {', '.join(broken)}"


@pytest.mark.parametrize("doc", all_docs(), ids=doc_id)
def test_python_names_in_the_docs_resolve(doc: Path) -> None:
    unresolved = unresolved_names(doc.read_text())
    assert not unresolved, f"{doc_id(doc)} names module(s) or object(s) that do not exist: {', '.join(unresolved)}"


# -- the checks catch drift ---------------------------------------------------------------------------


def test_verb_check_catches_a_removed_row() -> None:
    readme = README.read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `why <target>`"))
    broken = readme.replace(row + "\n", "")
    assert "why" not in verbs_missing_from_readme(readme, VERBS.specs)
    assert "why" in verbs_missing_from_readme(broken, VERBS.specs)
    # a verb that shares a cell with others (`scale` in the actions row) counts too
    assert {"rollback", "scale", "restart"} <= documented_verbs(readme)


def test_verb_check_catches_an_unknown_verb() -> None:
    readme = README.read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `status`"))
    broken = readme.replace(row, row + "\n| `frobnicate <target>` | does not exist |")
    assert "frobnicate" in unknown_verbs_in_readme(broken, VERBS.specs)
    assert unknown_verbs_in_readme("# no table here\n", VERBS.specs) == [f"no verb table found under {VERB_SECTION!r}"]


def test_help_check_catches_a_missing_usage() -> None:
    lines = [f"/k8s {spec.usage}  —  {spec.summary}" for spec in VERBS.specs.values()]
    assert verbs_missing_from_help(lines, VERBS.specs) == []
    without_scale = [line for line in lines if not line.startswith("/k8s scale")]
    assert verbs_missing_from_help(without_scale, VERBS.specs) == [f"scale (`/k8s {VERBS.specs['scale'].usage}`)"]


def test_configuration_check_catches_drift() -> None:
    readme = README.read_text()

    def new_problems(text: str) -> set[str]:
        return set(configuration_problems(text, Settings.model_fields, ENV)) - set(
            configuration_problems(readme, Settings.model_fields, ENV)
        )

    db_row = next(line for line in readme.splitlines() if line.startswith("| `K8SBOT_DB`"))
    assert new_problems(readme.replace(db_row + "\n", "")) == {
        "setting `db` is not in the config key column",
        "environment variable `K8SBOT_DB` (setting `db`) is not in the variable column",
    }
    unknown = readme.replace(db_row, db_row + "\n| – | `frobnication` | not a setting | – |")
    assert new_problems(unknown) == {"config key `frobnication` is not a setting"}
    swapped = readme.replace("`K8SBOT_HTTP_HOST` / `K8SBOT_HTTP_PORT`", "`K8SBOT_HTTP_PORT` / `K8SBOT_HTTP_HOST`")
    assert new_problems(swapped) == {
        "row pairs `K8SBOT_HTTP_PORT` with `http_host`, but `http_host` is read from `K8SBOT_HTTP_HOST`",
        "row pairs `K8SBOT_HTTP_HOST` with `http_port`, but `http_port` is read from `K8SBOT_HTTP_PORT`",
    }
    assert configuration_problems("# no table\n", Settings.model_fields, ENV) == [
        f"no configuration table found under {CONFIG_SECTION!r}"
    ]


def test_category_check_catches_drift() -> None:
    doc = DIAGNOSIS.read_text()
    categories = [c.value for c in Category]
    before = set(category_problems(doc, categories))
    row = next(line for line in doc.splitlines() if line.startswith("| `evicted`"))
    assert set(category_problems(doc.replace(row + "\n", ""), categories)) - before == {
        "category `evicted` is not in the table"
    }
    extra = doc.replace(row, row + "\n| `gremlins` | not a category |")
    assert set(category_problems(extra, categories)) - before == {"`gremlins` in the table is not a category"}
    assert category_problems("# no table\n", categories) == [f"no category table found under {CATEGORY_SECTION!r}"]


def test_path_check_catches_drift() -> None:
    text = (
        "See `bot/diagnosis/engine.py`, `bot/diagnosis/analyzers/<kind>.py`, `tests/test_cluster_*.py`,\n"
        "`tests/test_docs.py::test_path_check_catches_drift`, `k8sbot/wiring.py:build_core`, `deploy/`,\n"
        "`scripts/local-cluster up`, [the docs](docs/changes.md#store) and `/k8s why deploy/checkout`.\n"
        "```\n`bot/in_a_code_block.py`\n```\n"
        "Gone: `bot/diagnosis.py`, `bot/analyzers/<kind>.py`, [old](handlers/actions.py), `deploy/nothing/`,\n"
        "`bot/kube/diffing.py:snapshot`.\n"
    )
    assert missing_paths(text) == [
        "bot/analyzers/<kind>.py",
        "bot/diagnosis.py",
        "bot/kube/diffing.py:snapshot",
        "deploy/nothing/",
        "handlers/actions.py",
    ]


def test_link_check_catches_drift() -> None:
    text = "[a](alerts.md), [b](alerts.md#the-message), [c](https://slack.com), [d](#categories), [e](nope.md)"
    assert broken_links(text, REPO / "docs") == ["nope.md"]
    assert broken_links("[moved](docs/alerts.md)", REPO / "docs") == ["docs/alerts.md"]


def test_python_name_check_catches_drift() -> None:
    text = (
        "`bot.commands.dispatch.execute`, `bot.store.audit`, `bot.diagnosis.engine.run_analyzers(objects)`,\n"
        "`k8sbot.db`, `k8sbot.dev/team`, `bot.dispatch.execute`, `bot.diagnosis.run_analyzers`.\n"
    )
    assert unresolved_names(text) == ["bot.diagnosis.run_analyzers", "bot.dispatch.execute"]


def test_the_example_config_loads_and_shows_two_clusters() -> None:
    settings = load_settings({"K8SBOT_CONFIG": str(REPO / "deploy" / "config.example.yaml")})
    assert [c.name for c in settings.cluster_configs()] == ["prod-eu", "prod-us"]
    assert set(settings.channel_clusters.values()) == {"prod-eu", "prod-us"}
    assert settings.legacy_cluster == "prod-eu"
