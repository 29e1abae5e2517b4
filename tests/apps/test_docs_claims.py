"""The docs' concrete claims, each class of them extracted from the pages and checked
against the code in process (docs audit, 2026-12-06).

Why extracted rather than copied: a test that restates a page's figure keeps passing
when the page is edited; one that reads the page fails on the edit. The classes:

* every whole ``secagg ...`` line in a code block of README.md, docs/*.md and
  examples/*/README.md (and in the example configs' headers) parses against the
  command's click parameters, values included (tests/integration/test_doc_snippets.py
  checks only that each option's name exists), and every ``secagg simulate`` line
  builds its run's config as the command would, so a line the command refuses (exit 2)
  cannot be shown as one to run; every ``python benchmarks/...`` line parses with the
  script's own argparse parser; the ``secagg certs`` lines, cheap and making no file of
  the reader's, are run as written, in each page's order, in a new folder;
* every ``secagg ...`` command an inline span of the prose names exists with each flag
  it passes, and where the span gives values (no placeholder) they parse as the
  fenced lines' do, a ``secagg simulate`` span's into a config the command takes;
  every config key the prose names (``[server] message_receive_timeout``,
  ``branch.min_threshold``) is one its table's loader reads;
* every ```toml block loads with the loader of its tables (``[federation]`` ...: the
  server's config; ``[branch]``: a branch's policy; ``[key_holder]``: the key holder's),
  as shown and with every commented-out ``key = value`` line switched on, since a reader
  switches them on; the deployment guide's branch table joins its federation's round,
  and refuses it with its noise floor on, as its comment says;
* every option a row of README.md's Commands table names is its command's, and every
  stated default (a flag's, a ``server.`` key's) is the code's;
* figures: the active variant's costs against benchmarks/results/active.json, the CKKS
  error bound against what a round reports today.
"""

from __future__ import annotations

import re
import shlex
import tomllib
import warnings
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from secagg.apps.cli import main

ROOT = Path(__file__).resolve().parents[2]
GUIDE_PAGE = ROOT / "docs" / "deployment.md"

PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "examples").glob("*/README.md")),
]

#: click's words (and ``--pubkey``'s) for a file or module the reader makes (a page's
#: ``federation.toml``, ``mybank.fraud``): the line is right, the reader's machine is not
#: this one
_READERS_OWN = re.compile(
    r"does not exist|No such file or directory|no public key file at|no module '"
)


def _code_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, body) of each fenced block of ``page``."""
    return re.findall(r"^```(\w*)\n(.*?)^```", page.read_text(), flags=re.M | re.S)


def _commands_in(lines: list[str], program: str = "secagg") -> list[str]:
    """Each whole ``PROGRAM ...`` command of shell ``lines``: continuations joined,
    comments and leading ``NAME=value`` settings dropped, ``a && b`` split, and a
    ``for b in X Y; do COMMAND $b ...; done`` loop one command per value (the bank-fraud
    pilot issues its branches' certificates so). A synopsis (``[--mechanism
    off|central]``, ``<run>``) and a diagram (two commands on one line) are left to
    test_doc_snippets.py's option-name check."""
    found = []
    pending = ""
    for line in lines:
        command = (pending + " " + line.split("  #")[0].strip()).strip()
        pending = ""
        if command.endswith("\\"):
            pending = command[:-1]
            continue
        loop = re.fullmatch(r"for (\w+) in ([^;]+); do (.+?);? done", command)
        if loop:
            name, values, body = loop.groups()
            command = " && ".join(
                re.sub(rf"\$\{{?{name}\b\}}?", value, body) for value in values.split()
            )
        for part in re.split(r"\s+&&\s+", command):
            part = re.sub(r"^(?:[A-Z_]+=\S*\s+)+", "", part)
            if not part.startswith(f"{program} ") or part.count(f"{program} ") > 1:
                continue
            if not re.search(r"[\[\]|<>]|\.\.\.", part):
                found.append(part)
    return found


#: the example configs, whose header comments give the commands that run them
EXAMPLE_CONFIGS = sorted((ROOT / "examples").rglob("*.toml"))


def _block_commands() -> list[tuple[str, str]]:
    """(source, line) for each command in a shell block of the pages, and in the header
    comment of an example config."""
    found = []
    for page in PAGES:
        for language, body in _code_blocks(page):
            if language not in ("python", "toml"):
                source = str(page.relative_to(ROOT))
                found += [(source, line) for line in _commands_in(body.splitlines())]
    for config in EXAMPLE_CONFIGS:
        comments = [line[1:] for line in config.read_text().splitlines() if line.startswith("#")]
        source = str(config.relative_to(ROOT))
        found += [(source, line) for line in _commands_in(comments)]
    return found


def _inline_benchmark_commands(program: str) -> list[tuple[str, str]]:
    """(page, line) for each inline code span of the pages (outside fenced blocks) that
    is a whole benchmark command: ``python benchmarks/...`` or ``secagg bench ...``.
    Why: the figures' reproducing commands sit in the prose beside them (docs/benchmarks.md:
    "`python benchmarks/peers/run.py --cells issue --pairs 3 --out /tmp/peers_xeon`"), and
    only fenced blocks were parsed; a span may wrap across lines."""
    prefix = {"python": "python benchmarks/", "secagg": "secagg bench "}[program]
    found = []
    for page in PAGES:
        prose = re.sub(r"^```\w*\n.*?^```", "", page.read_text(), flags=re.M | re.S)
        for span in re.findall(r"`([^`]+)`", prose):
            line = " ".join(span.split())
            if line.startswith(prefix):
                found += [(str(page.relative_to(ROOT)), c) for c in _commands_in([line], program)]
    return found


COMMANDS = _block_commands() + _inline_benchmark_commands("secagg")


def test_the_pages_show_commands_to_check() -> None:
    """A parser that found none would pass every check below."""
    assert len(COMMANDS) > 40, len(COMMANDS)
    assert {page for page, _ in COMMANDS} >= {
        "README.md",
        "docs/audit.md",
        "docs/deployment.md",
        "docs/results.md",
        "examples/bank_fraud/README.md",
        "examples/bank_fraud/federation.toml",
        "examples/many_participants.toml",
    }


def _parse(words: list[str]) -> tuple[click.Command, click.Context]:
    """The command ``words`` name and its parsed context (types converted, required
    options and arguments checked), without running it."""
    command: click.Command = main
    parent = main.make_context("secagg", [], resilient_parsing=True)
    name = "secagg"
    while isinstance(command, click.Group):
        assert words and not words[0].startswith("-"), f"{name} needs a subcommand"
        sub = command.get_command(parent, words[0])
        assert sub is not None, f"{name} has no command {words[0]!r}"
        if isinstance(sub, click.Group):
            parent = click.Context(sub, info_name=words[0], parent=parent)
        command, name, words = sub, words[0], words[1:]
    return command, command.make_context(name, list(words), parent=parent)


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_every_command_line_in_a_code_block_parses(
    page: str, line: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each value is of its option's type and choices, each required option is there;
    a ``secagg simulate`` line's flags and ``--config`` make a config the command takes
    (its own build step, in process: no data is made). A path the reader creates may
    be missing here; nothing else may fail. docs/results.md showed ``secagg simulate
    --config examples/many_participants.toml ... --mechanism off``, which the command
    refuses (the file's epsilon, delta and clip beside --mechanism off)."""
    # a page's paths (examples/...) are the repository's; an example config's header
    # runs from its own folder ("from this folder") unless it names itself from the root
    source = ROOT / page
    from_root = source.suffix != ".toml" or str(source.relative_to(ROOT)) in line
    monkeypatch.chdir(ROOT if from_root else source.parent)
    # DIR is the reader's folder: parsed in a temporary one, since an option's callback
    # may make it (``--out DIR`` left an empty DIR/ in the repository on every run)
    words = [
        str(tmp_path / word) if word == "DIR" or word.startswith("DIR/") else word
        for word in shlex.split(line)[1:]
    ]
    try:
        command, context = _parse(words)
    except click.BadParameter as exc:
        if _READERS_OWN.search(exc.format_message()):
            return
        raise AssertionError(f"{page}: {line}: {exc.format_message()}") from exc
    except click.ClickException as exc:
        raise AssertionError(f"{page}: {line}: {exc.format_message()}") from exc
    if command.name == "simulate":
        from secagg.apps.simulation.cli import build_config
        from secagg.errors import ConfigurationError

        flags = dict(context.params)
        config_file = flags.pop("config_file")
        for output_only in ("as_json", "quiet"):
            del flags[output_only]
        if config_file is not None and not Path(config_file).exists():
            if not _made_by_the_block(page, config_file, tmp_path):
                return  # the reader's own file (my-federation.toml)
            monkeypatch.chdir(tmp_path)
        try:
            build_config(config_file, flags)
        except ConfigurationError as exc:
            raise AssertionError(f"{page}: {line}: secagg simulate refuses it: {exc}") from exc


def _certificate_lines() -> dict[str, list[str]]:
    """Each source's fenced ``secagg certs ...`` lines, in the order it gives them."""
    found: dict[str, list[str]] = {}
    for source, line in _block_commands():
        if line.startswith("secagg certs "):
            found.setdefault(source, []).append(line)
    return found


CERTIFICATE_LINES = _certificate_lines()


@pytest.mark.parametrize("source", sorted(CERTIFICATE_LINES))
def test_each_pages_certificate_commands_run_as_written(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``secagg certs`` lines a page shows, typed as written and in its order in a
    new folder, each exit 0: they make no file of the reader's and cost well under a
    second, so they are run, not only parsed. The walk-through of 2026-12-07 typed
    docs/deployment.md's block: ``certs init``, ``certs issue branch-001``, then
    ``certs revoke branch-017``, which refuses a name that has no certificate (exit 2,
    "'branch-017' has no certificate in certs/clients (issued: branch-001)"). The block
    now issues and the prose names the revocation of a branch that leaves; revoking
    branch-001 there would have barred the branch the guide starts next."""
    assert "docs/deployment.md" in CERTIFICATE_LINES, sorted(CERTIFICATE_LINES)
    monkeypatch.chdir(tmp_path)
    for line in CERTIFICATE_LINES[source]:
        result = CliRunner().invoke(main, shlex.split(line)[1:])
        assert result.exit_code == 0, f"{source}: {line}: {result.output}"


def _made_by_the_block(page: str, name: str, folder: Path) -> bool:
    """Write ``folder / name`` as the page's ``grep -vE 'RE' SOURCE > name`` line makes
    it; False when no line of the page makes it."""
    text = (ROOT / page).read_text()
    found = re.search(rf"^grep -vE '([^']+)' (\S+) > {re.escape(name)}$", text, flags=re.M)
    if found is None:
        return False
    pattern, source = found.groups()
    kept = [
        line
        for line in (ROOT / source).read_text().splitlines(keepends=True)
        if not re.search(pattern, line)
    ]
    (folder / name).write_text("".join(kept))
    return True


def _python_commands() -> list[tuple[str, str]]:
    """(page, line) for each ``python SCRIPT ...`` / ``python -m MODULE ...`` line in a
    shell block of the pages (``python -m pytest`` is pytest's, not ours)."""
    found = []
    for page in PAGES:
        for language, body in _code_blocks(page):
            if language not in ("python", "toml"):
                lines = _commands_in(body.splitlines(), program="python")
                found += [
                    (str(page.relative_to(ROOT)), line)
                    for line in lines
                    if not line.startswith("python -m pytest")
                ]
    return found


PYTHON_COMMANDS = _python_commands() + _inline_benchmark_commands("python")


def test_the_figures_reproducing_commands_in_the_prose_are_checked_too() -> None:
    """The inline commands of docs/benchmarks.md (each figure's, in the prose) are among
    the lines parsed below, so a figure whose command no longer parses fails."""
    inline = {line for page, line in PYTHON_COMMANDS if page == "docs/benchmarks.md"}
    assert {
        "python benchmarks/peers/run.py --cells issue --pairs 3 --out /tmp/peers_xeon",
        "python benchmarks/peers/ckks.py --out /tmp/c.json",
        "python benchmarks/bench_masking.py --n 1000 --d 1000000 --graph harary --dropout 0.1",
    } <= inline, inline
    assert any(page == "docs/protocol.md" for page, _ in PYTHON_COMMANDS)  # bench_active's


class _Parsed(Exception):
    """Raised by the patched ``parse_args`` once a script's arguments parsed: the
    script stops there, before any work."""


@pytest.mark.parametrize(
    ("page", "line"), PYTHON_COMMANDS, ids=[f"{p}: {c}" for p, c in PYTHON_COMMANDS]
)
def test_every_python_script_line_in_a_code_block_parses(page: str, line: str) -> None:
    """Each ``python benchmarks/...`` or ``python -m secagg...`` line's arguments parse
    with the script's own argparse parser, values included (a ``--n`` that is no
    integer, a ``--graph`` no choice names): the script runs in this process up to its
    ``parse_args`` and stops there."""
    import argparse
    import contextlib
    import io
    import runpy
    import sys
    from unittest import mock

    parse = argparse.ArgumentParser.parse_args

    def parse_and_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        raise _Parsed(parse(self, *args, **kwargs))

    words = shlex.split(line)[1:]
    module = words[0] == "-m"
    target, argv = (words[1], words[2:]) if module else (str(ROOT / words[0]), words[1:])
    folder = str(ROOT if module else Path(target).parent)
    said = io.StringIO()
    before = set(sys.modules)
    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", parse_and_stop),
        mock.patch.object(sys, "argv", [target, *argv]),
        mock.patch.object(sys, "path", [folder, *sys.path]),
        contextlib.redirect_stdout(said),
        contextlib.redirect_stderr(said),
        pytest.raises(_Parsed),
    ):
        try:
            if module:
                with warnings.catch_warnings():  # runpy's note that the module is
                    # imported already (this process did): a fresh `python -m` runs it too
                    warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
                    runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(target, run_name="__main__")
        except SystemExit as exit:  # argparse's error: its line says which argument
            raise AssertionError(f"{page}: {line}: {said.getvalue().strip()}") from exit
    for added in set(sys.modules) - before:  # a script's sibling modules (common.py)
        origin = getattr(sys.modules[added], "__file__", None) or ""
        if not module and Path(origin).parent == Path(folder):
            del sys.modules[added]


# --- the commands in the prose ---------------------------------------------------------------

#: a word a page writes where the reader puts their own value (``--clients N``,
#: ``--policy FILE``, ``--server H:P``, ``-z Z``)
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_:]*$")


def _inline_commands() -> list[tuple[str, str]]:
    """(page, span) for each inline code span of the pages' prose that is a ``secagg``
    command other than ``secagg bench`` (whose spans are whole commands, parsed above
    as strictly as a fenced line): the prose names a command with the flags it speaks
    of, ``secagg client --server 127.0.0.1:50051 --server-name fl.bank.internal``. A
    line the program prints (``secagg server: stopped by SIGTERM ...``) is no command,
    and an alternation (``secagg certs init/issue``) is each of its commands."""
    found = []
    for page in PAGES:
        prose = re.sub(r"^```\w*\n.*?^```", "", page.read_text(), flags=re.M | re.S)
        for span in re.findall(r"`([^`]+)`", prose):
            line = " ".join(span.split())
            if re.match(r"secagg [\w-]+:", line) or line.startswith("secagg bench "):
                continue
            for command in _commands_in([line]):
                words = command.split()
                at = next((i for i, w in enumerate(words[:3]) if "/" in w), None)
                spelt = (
                    [command]
                    if at is None
                    else [
                        " ".join([*words[:at], w, *words[at + 1 :]]) for w in words[at].split("/")
                    ]
                )
                found += [(str(page.relative_to(ROOT)), c) for c in spelt]
    return found


INLINE_COMMANDS = _inline_commands()


def test_the_prose_names_commands_to_check() -> None:
    """A parser that found none would pass every check below; the spans a newcomer
    copies whole are among them."""
    assert len(INLINE_COMMANDS) > 60, len(INLINE_COMMANDS)
    assert {
        (
            "docs/privacy.md",
            "secagg simulate --unit client --mechanism distributed --branches 4 --rounds 2",
        ),
        (
            "docs/deployment.md",
            "secagg certs init --server-name fl.bank.internal --server-name 127.0.0.1 --force",
        ),
        ("README.md", "secagg certs issue"),
    } <= set(INLINE_COMMANDS)


def _relaxed(command: click.Command, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``command`` parse without its required parameters: a span names a command
    with some of its flags, and the rest of its line is the reader's."""
    for parameter in command.params:
        monkeypatch.setattr(parameter, "required", False)


@pytest.mark.parametrize(
    ("page", "span"), INLINE_COMMANDS, ids=[f"{p}: {c}" for p, c in INLINE_COMMANDS]
)
def test_every_command_in_the_prose_parses(
    page: str, span: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command an inline span names exists, and so does each flag it passes; where
    the span gives values (no placeholder such as ``N`` or ``FILE``), each is of its
    flag's type and choices, and a ``secagg simulate`` span builds the run's config as
    the command would. The required flags a span leaves out are the reader's. Until
    2026-12-07 only fenced lines, and inline ``secagg bench`` ones, had their values
    checked; a prose command was checked for its option names alone
    (tests/integration/test_doc_snippets.py)."""
    monkeypatch.chdir(ROOT)
    words = shlex.split(span)[1:]
    command: click.Command = main
    parent = main.make_context("secagg", [], resilient_parsing=True)
    name = "secagg"
    while isinstance(command, click.Group) and words:
        sub = command.get_command(parent, words[0])
        assert sub is not None, f"{page}: {span}: {name} has no command {words[0]!r}"
        if isinstance(sub, click.Group):
            parent = click.Context(sub, info_name=words[0], parent=parent)
        command, name, words = sub, words[0], words[1:]
    if isinstance(command, click.Group) or not words:
        return  # the span names a command (``secagg certs``, ``secagg client``)
    flags = [w.split("=")[0] for w in words if w.startswith("-")]
    unknown = [f for f in flags if f not in _options_of(command)]
    assert not unknown, f"{page}: {span}: {name} has no option {unknown}"
    if all(w.startswith("-") for w in words) or any(_PLACEHOLDER.match(w) for w in words):
        return  # the span names flags (``--epsilon-budget --delta``), or shapes a line
    _relaxed(command, monkeypatch)
    try:
        context = command.make_context(name, list(words), parent=parent)
    except click.BadParameter as exc:
        if _READERS_OWN.search(exc.format_message()):
            return  # a file the reader makes (``--config federation.toml``)
        raise AssertionError(f"{page}: {span}: {exc.format_message()}") from exc
    except click.ClickException as exc:
        raise AssertionError(f"{page}: {span}: {exc.format_message()}") from exc
    if command.name == "simulate":
        from secagg.apps.simulation.cli import build_config
        from secagg.errors import ConfigurationError

        values = dict(context.params)
        config_file = values.pop("config_file")
        for output_only in ("as_json", "quiet"):
            del values[output_only]
        if config_file is not None and not Path(config_file).exists():
            return  # the reader's own file (a run folder's config.toml)
        try:
            build_config(config_file, values)
        except ConfigurationError as exc:
            raise AssertionError(f"{page}: {span}: secagg simulate refuses it: {exc}") from exc


# --- the TOML blocks -----------------------------------------------------------------------

#: a commented-out ``key = value`` line (not a comment's prose)
_COMMENTED_KEY = re.compile(r"^# ?(\w+ = \S.*)$")

#: the value a page shows where the reader pastes their own (the fingerprint
#: ``keyholder-init`` prints: "3f9a...e1")
_ELIDED_FINGERPRINT = re.compile(r'(key_holder_fingerprint = )"[0-9a-f]+\.\.\.[0-9a-f]+"')


def _toml_blocks() -> list[tuple[str, str]]:
    return [
        (str(page.relative_to(ROOT)), body)
        for page in PAGES
        for language, body in _code_blocks(page)
        if language == "toml"
    ]


TOML_BLOCKS = _toml_blocks()


def _switched_on(block: str) -> str:
    """``block`` with each commented-out ``key = value`` line as a line of its own."""
    lines = []
    for line in block.splitlines():
        found = _COMMENTED_KEY.match(line)
        lines.append(found.group(1) if found else line)
    return "\n".join(lines)


def _load(tables: dict[str, Any], tmp_path: Path) -> list[str]:
    """Load each table with its loader; the names of the loaders that read them."""
    from secagg.aggregation.keyholder_policy import KeyHolderPolicy
    from secagg.aggregation.policy import BranchPolicy
    from secagg.runtime.config import FederationConfig

    read = []
    rest = dict(tables)
    if "branch" in rest:
        BranchPolicy.from_dict(rest.pop("branch"))
        read.append("branch")
    if "key_holder" in rest:
        table = {k: v for k, v in rest.pop("key_holder").items() if k != "key"}  # a key
        # file is made by keyholder-init, not here
        KeyHolderPolicy.from_dict(table, base_dir=tmp_path)
        read.append("key_holder")
    if rest:
        FederationConfig.from_dict(rest)
        read.append("federation")
    return read


def test_the_pages_show_toml_blocks_of_every_loader() -> None:
    kinds = {next(iter(tomllib.loads(body)), None) for _, body in TOML_BLOCKS}
    assert {"federation", "branch", "key_holder"} <= kinds, kinds


@pytest.mark.parametrize("switch_on", [False, True], ids=["as shown", "commented keys on"])
@pytest.mark.parametrize(
    ("page", "block"), TOML_BLOCKS, ids=[f"{p}: {b.split(chr(10))[0]}" for p, b in TOML_BLOCKS]
)
def test_every_toml_block_loads_with_its_loader(
    page: str, block: str, switch_on: bool, tmp_path: Path
) -> None:
    """docs/deployment.md's federation config showed ``# adaptive_clip = true`` with the
    count's noise at its default (expected clients / 20 = 0.15 for 3 branches): switched
    on, the server refused the file (noise_multiplier 5 must be below 0.3). The block now
    shows ``count_noise_stddev`` beside it."""
    text = _switched_on(block) if switch_on else block
    text = _ELIDED_FINGERPRINT.sub(r'\1"' + "ab" * 32 + '"', text)
    try:
        read = _load(tomllib.loads(text), tmp_path)
    except Exception as exc:  # the loader's own words say which key
        raise AssertionError(f"{page}: {type(exc).__name__}: {exc}") from exc
    assert read, page


# --- the config keys the prose names --------------------------------------------------------


def _keys_of_each_table() -> dict[str, set[str]]:
    """The keys each TOML table's loader reads: the server's config (``[federation]``
    ...), a branch's and the key holder's policies, and ``secagg simulate --config``'s."""
    from dataclasses import fields

    from secagg.aggregation.keyholder_policy import POLICY_KEYS
    from secagg.aggregation.policy import BranchPolicy
    from secagg.apps.simulation.config import SECTIONS
    from secagg.runtime import config

    tables = {
        "sampling": config.SamplingConfig,
        "backend": config.BackendConfig,
        "dp": config.DPSettings,
        "deadlines": config.DeadlineConfig,
        "server": config.ServerSettings,
        "branch": BranchPolicy,
    }
    keys = {table: {f.name for f in fields(kind)} for table, kind in tables.items()}
    keys["federation"] = {f.name for f in fields(config.FederationConfig)} - set(tables)
    keys["key_holder"] = {*POLICY_KEYS, "key"}  # key: the command's, beside the policy's
    assert not set(SECTIONS) & set(keys), "a simulate section shares a server table's name"
    return keys | {section: set(names) for section, names in SECTIONS.items()}


#: ``[dp] epsilon_budget`` (or ``[data] standardize = "secure"``) in a span of the prose
_TABLE_KEY = re.compile(r"^\[(\w+)\] (\w+)\b")
#: ``branch.max_clip``: the dotted spelling of the policies' and the configs' refusals.
#: Not ``dp.``: docs/audit.md's ``dp.drawn_from`` ... are a ledger row's fields
_DOTTED_KEY = re.compile(
    r"^(branch|sampling|backend|deadlines|server|federation|data|privacy|training)\.(\w+)\b(?!\()"
)
#: a file's name, which the dotted spelling looks like (``server.pem``, ``federation.toml``)
_FILE_NAME = re.compile(r"^\S+\.(?:key|pem|sqlite|toml|json|csv|md|py)$")


def _prose_keys() -> list[tuple[str, str, str, str]]:
    """(page, span, table, key) for each config key an inline span of the pages names."""
    found = []
    for page in PAGES:
        prose = re.sub(r"^```\w*\n.*?^```", "", page.read_text(), flags=re.M | re.S)
        for span in re.findall(r"`([^`]+)`", prose):
            line = " ".join(span.split())
            hit = _TABLE_KEY.match(line) or _DOTTED_KEY.match(line)
            if hit and not _FILE_NAME.match(line.split(" ")[0]):
                found.append((str(page.relative_to(ROOT)), line, hit.group(1), hit.group(2)))
    return found


def test_every_config_key_the_prose_names_is_its_loaders() -> None:
    """A key the prose names (``[server] message_receive_timeout``, ``[data]
    partition_column``, ``branch.min_threshold``) is one its table's loader reads: a
    reader who copies it into the file gets the setting, not ``unknown keys in ...``.
    The fenced TOML blocks are loaded whole above; until 2026-12-07 the keys of the prose
    (README.md, the bank-fraud walk-through's ``[data]`` keys) were checked nowhere."""
    keys = _keys_of_each_table()
    named = _prose_keys()
    assert len(named) > 60, len(named)
    assert {table for _, _, table, _ in named} >= {"server", "dp", "data", "branch", "backend"}
    wrong = [
        f"{page}: `{span}`: [{table}] has no key {key!r}"
        if table in keys
        else f"{page}: `{span}`: no loader reads a [{table}] table"
        for page, span, table, key in named
        if key not in keys.get(table, set())
    ]
    assert not wrong, "\n".join(wrong)


# --- the README's Commands table -----------------------------------------------------------


def _command_rows() -> list[tuple[list[str], str]]:
    """(command words, row) for each row of README.md's Commands table."""
    table = (ROOT / "README.md").read_text().split("## Commands")[1].split("\n## ")[0]
    rows = []
    for row in table.splitlines():
        found = re.match(r"\| `secagg ([\w-]+(?: [a-z][\w-]*)?)", row)
        if found:
            rows.append((found.group(1).split(), row))
    return rows


def _options_of(command: click.Command) -> set[str]:
    names = {"--help"}
    for parameter in command.params:
        names |= set(getattr(parameter, "opts", ())) | set(getattr(parameter, "secondary_opts", ()))
    return names


#: options a row names as another command's, in so many words
_NAMED_AS_ANOTHERS = {("privacy", "noise"): {"-z"}}  # "`privacy epsilon`'s `-z`"


def test_every_option_a_commands_row_names_is_its_commands() -> None:
    """Each ``--flag`` (and ``-x``) in a row of README.md's Commands table is an option
    of the row's command: the rows describe flags outside the command's own synopsis
    (the client row names 20), which test_doc_snippets.py's check of quoted commands
    does not read."""
    rows = _command_rows()
    assert len(rows) >= 15, len(rows)
    wrong = []
    for words, row in rows:
        command = main.commands[words[0]]
        if isinstance(command, click.Group):
            command = command.commands[words[1]]
            words = words[:2]
        else:
            words = words[:1]
        named = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*|-[a-zA-Z])\b", row))
        missing = named - _options_of(command) - _NAMED_AS_ANOTHERS.get(tuple(words), set())
        if missing:
            wrong.append(f"secagg {' '.join(words)}: {sorted(missing)}")
    assert not wrong, wrong


# --- stated defaults ---------------------------------------------------------------------

#: "`--canaries k`, default 400", "`--give-up-after` seconds (default 600"
_FLAG_DEFAULT = re.compile(r"`(--[\w-]+)[^`]*`[^`()]{0,40}?\(?\bdefault:? ([\d.]+|`\w+`)")
#: "`server.session_burst` (default 10)"
_SERVER_DEFAULT = re.compile(r"`server\.(\w+)` \(default ([\d.]+)\)")


def _leaf_commands(command: click.Command, path: str = "") -> dict[str, click.Command]:
    if not isinstance(command, click.Group):
        return {path.strip(): command}
    found: dict[str, click.Command] = {}
    for name, sub in command.commands.items():
        found |= _leaf_commands(sub, f"{path} {name}")
    return found


def _same(shown: str, value: object) -> bool:
    """Whether the page's ``shown`` figure is the code's ``value``."""
    shown = shown.strip("`")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return shown == str(value)
    return float(shown) == float(value)


def _flag_default_claims() -> list[tuple[str, str, str, list[str], bool]]:
    """(page, flag, value, commands, named) for each stated flag default: the commands
    are those the paragraph (or list item) names that take the flag, else the section's
    heading's command; a claim that names neither ("a branch ... `--idle` (default
    900 s)") is one of the commands that take it (``named`` False)."""
    commands = _leaf_commands(main)
    claims = []
    for page in PAGES:
        heading = ""
        # a paragraph, or one item of a list (its items are not split by blank lines)
        for paragraph in re.split(r"\n\s*\n|\n(?=- )", page.read_text()):
            if paragraph.startswith("#"):
                heading = paragraph.splitlines()[0]
            flat = " ".join(paragraph.split())
            for flag, value in _FLAG_DEFAULT.findall(flat):
                owners = [
                    name
                    for name, command in commands.items()
                    if flag in _options_of(command)
                    and command.name != "simulate"  # its defaults are SimulationConfig's
                ]
                named = [o for o in owners if f"secagg {o}" in flat]
                in_heading = [o for o in owners if f"secagg {o}" in heading]
                meant = named or in_heading
                if owners:
                    source = str(page.relative_to(ROOT))
                    claims.append((source, flag, value, meant or owners, bool(meant)))
    return claims


def test_every_stated_default_is_the_codes() -> None:
    """Each "(default N)" the pages give a command's flag is its click default, each
    "`server.KEY` (default N)" the server config's, and each commented-out key of
    docs/deployment.md's ``[server]`` table (a line that names no other default) is
    shown at its default, the value a reader who leaves it out gets."""
    from secagg.runtime.config import FederationConfig

    commands = _leaf_commands(main)
    wrong = []
    claims = _flag_default_claims()
    assert len(claims) >= 5, claims
    for page, flag, value, meant, named in claims:
        defaults = {
            name: next(p.default for p in commands[name].params if flag in getattr(p, "opts", ()))
            for name in meant
        }
        differ = {name: d for name, d in defaults.items() if not _same(value, d)}
        if differ and (named or len(differ) == len(defaults)):
            wrong.append(f"{page}: {flag} (default {value}): {differ}")
    server = FederationConfig.from_dict(
        {"federation": {"name": "f", "clients": ["a", "b", "c"], "dimension": 4}}
    ).server
    stated = [
        (str(page.relative_to(ROOT)), key, value)
        for page in PAGES
        for key, value in _SERVER_DEFAULT.findall(" ".join(page.read_text().split()))
    ]
    assert len(stated) >= 4, stated
    (guide,) = [body for page, body in TOML_BLOCKS if body.startswith("[federation]")]
    table = guide.split("\n[server]\n", 1)[1]
    for line in table.splitlines():
        found = re.match(r"# (\w+) = (\S+)\s+#(.*)", line)
        if found and "default" not in found.group(3):
            stated.append(("docs/deployment.md [server]", found.group(1), found.group(2)))
    assert len(stated) >= 10, stated
    for page, key, value in stated:
        if not _same(value, getattr(server, key)):
            wrong.append(f"{page}: server.{key}: {value} != {getattr(server, key)!r}")
    assert not wrong, wrong


# --- the deployment guide's branch against its federation -----------------------------------


def _guide_tables(first_line: str) -> str:
    """The deployment guide's TOML block that starts with ``first_line``."""
    (block,) = [
        b for page, b in TOML_BLOCKS if page == "docs/deployment.md" and b.startswith(first_line)
    ]
    return block


def _guide_round(
    policy_block: str, tmp_path: Path, *, with_ledger: bool = False
) -> tuple[list[Any], dict[str, BaseException | None]]:
    """One round of the guide's ``[federation]`` config (its model shrunk to 8
    parameters, one round, state under ``tmp_path``) in process, every branch holding the
    guide's ``[branch]`` policy: the round's results and how each branch ended."""
    import threading

    import numpy as np

    from secagg.aggregation.policy import BranchPolicy
    from secagg.runtime.client import FederationClient
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    tables = tomllib.loads(_guide_tables("[federation]"))
    tables["federation"] |= {"dimension": 8, "rounds": 1}
    config = FederationConfig.from_dict(tables)
    policy_text = _ELIDED_FINGERPRINT.sub(r'\1"' + "ab" * 32 + '"', policy_block)
    policy = BranchPolicy.from_dict(tomllib.loads(policy_text)["branch"])
    hub = InProcessHub()
    outcome: dict[str, BaseException | None] = {}
    threads = []
    for name in config.clients:
        client = FederationClient(
            name, lambda model: np.full_like(model, 0.1), hub.connect(name), policy=policy
        )

        def run(client: FederationClient = client, name: str = name) -> None:
            try:
                client.run(idle_timeout=60, rounds=1)
                outcome[name] = None
            except BaseException as exc:  # what stopped the branch is the test's subject
                outcome[name] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
    ledger = None
    if with_ledger:  # as secagg server keeps one: <state>.ledger, signed
        from secagg.ledger import Ledger, LedgerKey

        ledger = Ledger(tmp_path / "state.sqlite.ledger", LedgerKey.generate())
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"), ledger=ledger)
    results = server.run(wait_for_clients=120, max_attempts=1)
    for thread in threads:
        thread.join(timeout=120)
    return results, outcome


@pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")  # 3 branches
def test_the_guides_branch_policy_joins_the_guides_federation_and_its_noise_floor_refuses_it(
    tmp_path: Path,
) -> None:
    """docs/deployment.md shows a federation config (central DP, z = 5, clip 1) and a
    branch's ``[branch]`` table for it; the table's comment says its
    ``min_noise_multiplier``, switched on, refuses every round of that config (central
    noise is the server's, which no branch can check). As shown the branches take the
    round; with the floor on each refuses it, naming the key, and nothing completes."""
    from secagg.runtime.client import BranchRefused

    branch = _guide_tables("[branch]")
    assert "with the central DP of the config above" in " ".join(branch.split())
    (tmp_path / "as-shown").mkdir()
    results, outcome = _guide_round(branch, tmp_path / "as-shown")
    assert [r.status for r in results] == ["complete"], results
    assert outcome and all(exc is None for exc in outcome.values()), outcome
    on = branch.replace("# min_noise_multiplier = 1.0", "min_noise_multiplier = 1.0")
    assert on != branch
    (tmp_path / "floor").mkdir()
    results, outcome = _guide_round(on, tmp_path / "floor")
    assert [r.status for r in results] == ["aborted"], results
    assert outcome and all(
        isinstance(exc, BranchRefused) and exc.setting == "branch.min_noise_multiplier"
        for exc in outcome.values()
    ), outcome


@pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")  # 3 branches
def test_the_guide_says_the_per_round_ledger_head_is_a_verbose_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/deployment.md said "The server logs the ledger's head after every round": the
    newcomer's pilot server (default verbosity) logged ten round lines and no head; the
    head is a DEBUG record (shown with ``-v``), and the INFO round line does not carry
    it. The guide now says so; the guide's own federation, one round in process, logs
    the head at DEBUG only, with its signed ledger as ``secagg server`` keeps it."""
    import logging

    text = " ".join(GUIDE_PAGE.read_text().split())
    sentences = [s for s in re.split(r"(?<=\.) ", text) if "ledger's head" in s and "round" in s]
    assert sentences, "the guide's ledger-head sentence changed"
    for sentence in sentences:
        assert "`-v`" in sentence, sentence
    caplog.set_level(logging.DEBUG, logger="secagg")
    results, _ = _guide_round(_guide_tables("[branch]"), tmp_path, with_ledger=True)
    assert [r.status for r in results] == ["complete"], results
    heads = [r for r in caplog.records if r.getMessage().startswith("ledger head ")]
    assert heads, [r.getMessage() for r in caplog.records if r.name == "secagg.server"]
    assert {r.levelno for r in heads} == {logging.DEBUG}, heads
    rounds = [r for r in caplog.records if re.match(r"round \d+ complete", r.getMessage())]
    assert rounds and all(r.levelno == logging.INFO for r in rounds), rounds
    assert not any("ledger head" in r.getMessage() for r in rounds), rounds


# --- the active variant's cost, against its stored benchmark --------------------------------


def _active_cells() -> list[dict[str, Any]]:
    import json

    return json.loads((ROOT / "benchmarks" / "results" / "active.json").read_text())["protocol"]


def _ratios(graph: str, n: int | None, what: str, of: str = "") -> list[float]:
    """active / passive of ``what`` (``of`` a per-client figure's ``_median``) in the
    stored cells of ``graph`` (at ``n``, or every n), over their dropouts. A timing the
    cells also hold as the best of their repetitions (``best``, since 2026-12-06) is
    read there: the page quotes the best, measured on a shared machine."""

    def value(variant: dict[str, Any]) -> float:
        return float(variant.get("best", {}).get(what + of, variant[what + of]))

    return [
        value(cell["active"]) / value(cell["passive"])
        for cell in _active_cells()
        if cell["graph"] == graph and n in (None, cell["n"])
    ]


def _covers(shown: tuple[float, float], measured: list[float]) -> bool:
    """Whether the range ``shown`` (a figure to one decimal, or lo-hi) holds every
    measured ratio, each rounded to the figure's decimal."""
    low, high = shown
    return bool(measured) and all(low - 0.05 <= m < high + 0.05 for m in measured)


def test_the_active_variants_cost_figures_are_its_stored_benchmarks_and_its_k_and_t_the_codes() -> (
    None
):
    """docs/protocol.md's "Cost of the active variant" quotes k and t before and after
    the worst-case sizing and the active / passive ratios of
    benchmarks/results/active.json; docs/backends.md's table row sums them up. Each k
    and t is RoundConfig.create's today and the stored cells'; each ratio holds the
    stored cells' (to its decimal). The upload figure read "at most 8 %" and "+1-8 %"
    where the cells measure 8.12 % at n = 300: a cost rounded down."""
    from secagg.protocol.config import RoundConfig

    text = " ".join((ROOT / "docs" / "protocol.md").read_text().split())
    section = text.split("### Cost of the active variant", 1)[1].split("## Threat model", 1)[0]
    pairs = re.findall(r"n = (\d+): (?:k, t = )?(\d+), (\d+) → (\d+), (\d+)", section)
    assert len(pairs) == 2, pairs
    for n, k, t, k_active, t_active in (tuple(map(int, p)) for p in pairs):
        passive, active = RoundConfig.create(n, 16), RoundConfig.create(n, 16, active=True)
        assert (passive.degree, passive.threshold) == (k, t), n
        assert (active.degree, active.threshold) == (k_active, t_active), n
        for cell in _active_cells():
            if cell["graph"] == "harary" and cell["n"] == n:
                assert (cell["passive"]["k"], cell["passive"]["t"]) == (k, t), n
                assert (cell["active"]["k"], cell["active"]["t"]) == (k_active, t_active), n

    def figure(pattern: str, where: str = section) -> tuple[float, float]:
        found = re.search(pattern, where)
        assert found, pattern
        low, high = found.group(1), found.group(2) if found.lastindex == 2 else None
        return float(low), float(high or low)

    complete = figure(r"a round costs ([\d.]+)\u2013([\d.]+)\u00d7 the passive one in compute")
    assert _covers(complete, _ratios("complete", None, "round_seconds"))
    traffic = figure(r"in compute and ([\d.]+)\u00d7 in server traffic")
    assert _covers(traffic, _ratios("complete", None, "server_sent_bytes"))
    times, dash = "\u00d7", "\u2013"
    figure_at = rf"([\d.]+)(?:{dash}([\d.]+))?{times}"
    compute = re.search(
        rf"a round costs {figure_at} at n = 20, {figure_at} at n = 100 and {figure_at} at "
        rf"n = 300 in compute, and the server sends {figure_at}, {figure_at} and {figure_at} "
        "the bytes",
        section,
    )
    assert compute, "the Harary sentence changed"
    shown = [
        (float(low), float(high or low))
        for low, high in zip(compute.groups()[::2], compute.groups()[1::2], strict=True)
    ]
    for (n, what), figures in zip(
        [(n, "round_seconds") for n in (20, 100, 300)]
        + [(n, "server_sent_bytes") for n in (20, 100, 300)],
        shown,
        strict=True,
    ):
        assert _covers(figures, _ratios("harary", n, what)), (n, what, figures)
    (client,) = re.findall(r"Per-client compute stays under ([\d.]+) s at n = 300", section)
    medians = [
        c["active"]["client_seconds_median"]
        for c in _active_cells()
        if c["graph"] == "harary" and c["n"] == 300
    ]
    assert medians and max(medians) < float(client), medians
    (upload,) = re.findall(r"uploads grow by at most ([\d.]+) %", section)
    growth = max(_ratios("harary", None, "client_sent_bytes")) - 1
    assert growth * 100 <= float(upload), (upload, growth)
    row = next(
        line
        for line in (ROOT / "docs" / "backends.md").read_text().splitlines()
        if line.startswith("| cost of the active variant")
    )
    (table_upload,) = re.findall(r"uploads \+[\d.]+\u2013([\d.]+) %", row)
    assert growth * 100 <= float(table_upload), (table_upload, growth)


# --- the CKKS error bound the backends page states ------------------------------------------


def _ckks_bound_now(n: int, d: int) -> float:
    """The error bound a CKKS round of ``n`` clients reports today with every client in
    and the key holder at its floor (no ``noise_stddev`` of its own), as
    ``secagg bench ckks`` runs it: the parameters' CKKS bound plus ``RANGE_TAIL_Z`` times
    the key holder's noise."""
    from secagg.aggregation import get_backend
    from secagg.aggregation.keyholder_policy import RANGE_TAIL_Z, noise_floor

    parameters = get_backend("ckks", value_bound=1.0).plan(n, d).design.parameters()
    return parameters.error_bound(n) + RANGE_TAIL_Z * noise_floor(parameters)


def test_the_backends_pages_ckks_bound_is_the_one_the_server_reports() -> None:
    """Since 2026-12-06 (e2c1e3d) a CKKS round's reported bound counts the key holder's
    noise at ``RANGE_TAIL_Z`` = 9 deviations, the tail the server accepts a reply
    within; docs/backends.md's side-by-side table still said "plus 7x the key holder's
    noise std", its measured table's bound column was the 7-deviation one (7.92e-06 at
    n = 10, today 9.90e-06) and its prose gave 6.3e-6 at n = 100 (today 7.82e-06): an
    auditor re-checking a reported bound against the page got a smaller one."""
    from secagg.aggregation.keyholder_policy import RANGE_TAIL_Z

    text = (ROOT / "docs" / "backends.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| exactness |"))
    (multiple,) = re.findall(r"plus (\d+)\u00d7 the key holder's noise std", row)
    assert float(multiple) == RANGE_TAIL_Z, row
    header = next(
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| n | d | backend |")
    )
    rows = [
        dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
        for line in text.splitlines()
        if re.match(r"\| \d+ \| [\d,]+ \| ckks \|", line)
    ]
    assert len(rows) == 4, rows
    for row in rows:
        n, d = int(row["n"]), int(row["d"].replace(",", ""))
        bound = _ckks_bound_now(n, d)
        # a run of bench ckks since 2026-12-06 reports the 9-sigma bound itself; an older
        # run's table carries it beside its own, as "bound now"
        shown = row.get("bound now", row["documented bound"])
        assert shown == f"{bound:.2e}", (n, d, row, bound)
        assert float(row["max abs error (clip = 1)"]) <= bound, (n, d)
    (stated,) = re.findall(r"against a documented bound of\s+([\d.]+)·10⁻⁶", " ".join(text.split()))
    assert float(stated) * 1e-6 == pytest.approx(_ckks_bound_now(100, 10**6), rel=1e-3)


# --- the privacy commands' shown output -----------------------------------------------------

#: a ``secagg privacy ...`` line of a shell block and the ``#   output`` line below it
_SHOWN_OUTPUT = re.compile(r"^(secagg privacy (?:epsilon|noise) [^\n#]+)\n#   ([^\n]+)$", re.M)


def _privacy_lines_with_output() -> list[tuple[str, str, str]]:
    """(page, command, the output the page shows under it)."""
    return [
        (str(page.relative_to(ROOT)), command.strip(), shown.strip())
        for page in PAGES
        for language, body in _code_blocks(page)
        if language not in ("python", "toml")
        for command, shown in _SHOWN_OUTPUT.findall(body)
    ]


def _option(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words else None


def test_the_privacy_commands_print_what_the_pages_show_under_them() -> None:
    """docs/privacy.md's worked example ended with "the same from the command line":
    ``privacy noise`` for the plan (which prints z = 9.5335) and ``privacy epsilon -z
    9.5339 ... --accountant rdp``, no output shown; the reader who ran it got
    epsilon 3.2499 for the plan the line above had sized to 3, a z the first line never
    printed, and nothing saying why. Each line now shows its output: every ``privacy
    epsilon`` line is run (in process, cheap) and prints exactly what is shown under it;
    every ``privacy noise`` line's z (its search takes seconds, not run here) is checked
    through ``privacy epsilon`` at that z, which must print the epsilon shown, within the
    budget; and every ``-z`` of an epsilon line is a z a noise line of the page shows."""
    found = _privacy_lines_with_output()
    assert len(found) >= 4, found
    shown_z: dict[str, set[str]] = {}
    for page, command, shown in found:
        words = shlex.split(command)[1:]
        if words[1] == "epsilon":
            result = CliRunner().invoke(main, words)
            assert result.exit_code == 0, (page, command, result.output)
            assert result.output.strip() == shown, (page, command, result.output)
            continue
        z, epsilon = re.fullmatch(
            r"noise multiplier z = ([\d.]+) \(epsilon = ([\d.]+) at delta = [\de.-]+\)", shown
        ).groups()  # type: ignore[union-attr]
        shown_z.setdefault(page, set()).add(z)
        budget = float(_option(words, "--epsilon") or "nan")
        assert float(epsilon) <= budget, (page, command)
        check = ["privacy", "epsilon", "-z", z]
        for flag in ("-q", "-T", "--delta", "--clients", "--accountant"):
            value = _option(words, flag)
            check += [flag, value] if value is not None else []
        result = CliRunner().invoke(main, check)
        assert result.exit_code == 0, (page, check, result.output)
        assert result.output.startswith(f"epsilon = {epsilon} "), (page, command, result.output)
    for page, command, _ in found:
        words = shlex.split(command)[1:]
        if words[1] == "epsilon":
            assert _option(words, "-z") in shown_z.get(page, set()), (page, command, shown_z)
