"""Random wrong values for every flag of every ``secagg`` command: exit 2, one line naming it.

The commands and their parameters are read from click's own objects (``main`` and its
groups), so a new flag is fuzzed the day it lands. Two properties:

* every command, every parameter whose type or callback refuses something (a number
  out of its range or not a number, nan and infinity where not allowed, a choice not
  offered, a path that does not exist, a folder for a file or a file for a folder, an
  address without a port, an empty output path ...): the command is invoked through
  click's runner with that value and every other required parameter valid, and must
  exit 2 with one line on stderr naming the parameter, no traceback. The command's
  body is replaced by a sentinel first, so no command starts its work (a value the
  parser let through fails the test instead of starting a server or a benchmark);
* ``secagg simulate``, whose flags are checked by its body (build_config): random
  values (numbers of every size, nan, blanks, folders) are refused in one line
  naming the flag, or the run they start holds them in range (tests/_simulation_ranges.py).
  Its run (``run_simulation``, ``_experiment``) is replaced by a sentinel that
  captures the config.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import click
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.cli import main
from secagg.apps.cli_types import FiniteFloat
from tests._simulation_ranges import ranges_violated


class _BodyReached(Exception):
    """The command's body ran: the parser accepted the value."""


class _RunReached(Exception):
    """``secagg simulate`` reached its run with ``config``."""

    def __init__(self, config: Any) -> None:
        super().__init__("the simulation would start")
        self.config = config


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(_commands(main))
SIMULATE = ("simulate",)


def _takes_value(param: click.Parameter) -> bool:
    return not (isinstance(param, click.Option) and (param.is_flag or param.count))


#: every (command, parameter) that takes a value
PARAMETERS = [
    (path, param.name)
    for path in COMMANDS
    for param in _command(path).params
    if _takes_value(param) and param.name is not None
]


def _param(path: tuple[str, ...], name: str) -> click.Parameter:
    return next(p for p in _command(path).params if p.name == name)


def _spelling(param: click.Parameter, value: str) -> list[str]:
    """The arguments that give ``param`` the value ``value``: ``--flag=value`` (never
    read as another option, even when it starts with '-'), or the argument itself."""
    if isinstance(param, click.Option):
        longest = max(param.opts, key=len)
        return [f"{longest}={value}"] if longest.startswith("--") else [longest, value]
    return ["--", value] if value.startswith("-") else [value]


# --- the values each type refuses ----------------------------------------------------

NOT_NUMBERS = st.sampled_from(["", "abc", "1.5.2", "one", "1e", "--", "0x10", "1_0_"])


def _number_text(value: float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def refused_values(
    param: click.Parameter, places: dict[str, str], *, empty_path: bool = True
) -> st.SearchStrategy[str]:
    """Values ``param``'s type or callback must refuse (nothing: it refuses none).
    ``empty_path``: an empty or blank path too (every command but simulate, whose body
    refuses it: its own fuzz below)."""
    kind = param.type
    callback = getattr(param.callback, "__name__", "")
    options: list[st.SearchStrategy[str]] = []
    if isinstance(kind, click.IntRange | click.types.IntParamType) and not isinstance(
        kind, click.FloatRange
    ):
        options.append(NOT_NUMBERS)
        low, high = getattr(kind, "min", None), getattr(kind, "max", None)
        if low is not None:
            edge = low if getattr(kind, "min_open", False) else low - 1
            options.append(st.integers(max_value=edge).map(str))
        if high is not None:
            edge = high if getattr(kind, "max_open", False) else high + 1
            options.append(st.integers(min_value=edge).map(str))
        if callback == "_cohort_size":
            options.append(st.integers(max_value=1).map(str))
    elif isinstance(kind, click.FloatRange):
        options.append(NOT_NUMBERS | st.just("nan"))
        allow_inf = getattr(kind, "allow_inf", True)
        if kind.min is not None:
            options.append(
                st.floats(max_value=kind.min, exclude_max=not kind.min_open).map(_number_text)
            )
        # FiniteFloat's allowed inf ("never") passes its max, which bounds the finite
        # values only (``--idle inf``, beside ``--idle`` at most a week); click's own
        # FloatRange refuses inf past a max
        inf_passes = allow_inf and isinstance(kind, FiniteFloat)
        if kind.max is not None:
            options.append(
                st.floats(
                    min_value=kind.max, exclude_min=not kind.max_open, allow_infinity=not inf_passes
                ).map(_number_text)
            )
        if not allow_inf or (kind.max is not None and not inf_passes):
            options.append(st.just("inf"))
        if not allow_inf or kind.min is not None:
            options.append(st.just("-inf"))
    elif isinstance(kind, click.Choice):
        options.append(
            st.sampled_from(
                [
                    "",
                    "not-a-choice",
                    " ",
                    *(c.upper() + "x" for c in [str(x) for x in kind.choices][:1]),
                ]
            )
        )
    elif isinstance(kind, click.Path):
        if empty_path:  # click reads "" as the current folder
            options.append(st.sampled_from(["", " ", "\t"]))
        if kind.exists:
            options.append(st.sampled_from(["", places["missing"]]))
        if not kind.dir_okay:
            options.append(st.just(places["folder"]))
        if not kind.file_okay:
            options.append(st.just(places["file"]))
        if callback == "_output_path":
            options.append(st.sampled_from(["", places["missing"]]))
        if callback == "_pubkey_option":
            options.append(st.sampled_from([places["missing"], places["folder"], places["file"]]))
        if callback == "_out_option":
            options.append(st.sampled_from([places["file"], places["under_file"]]))
    elif callback == "_server_address":
        options.append(
            st.sampled_from(
                [
                    "",
                    "host",
                    "host:",
                    ":50051",
                    "host:0",
                    "host:65536",
                    "host:port",
                    "[::1",
                    "::1:50051",
                    "[::1]",
                    "h:-1",
                ]
            )
        )
    elif callback == "_server_name":
        options.append(
            st.sampled_from(["", "a b", "host:443", "https://x", "10.0.0.256", "fe80::1%eth0"])
        )
    elif callback == "_party_name":
        options.append(st.sampled_from(["", "../x", "a/b", "b1\n", "a" * 65, ".x", "é"]))
    elif callback == "_hook_module":
        options.append(st.sampled_from(["no_such_module_133:make_hook", "", "dpsgd_hook", "os:"]))
    elif callback == "_head_option":
        options.append(st.sampled_from(["", "zz", "not-a-head", "0" * 7]))
    return st.one_of(options) if options else st.nothing()


def valid_value(param: click.Parameter, places: dict[str, str]) -> str:
    """A value ``param`` takes, for a required parameter that is not being fuzzed."""
    kind = param.type
    callback = getattr(param.callback, "__name__", "")
    if callback == "_server_address":
        return "127.0.0.1:50051"
    if callback == "_cohort_size":
        return "10"
    if isinstance(kind, click.FloatRange):
        low, high = kind.min, kind.max
        if low is not None and high is not None:
            return str((low + high) / 2)
        return str((low or 0) + 0.5) if low is not None else str((high or 1) - 0.5)
    if isinstance(kind, click.IntRange):
        return str(max(kind.min or 1, 1) + (1 if kind.min_open else 0))
    if isinstance(kind, click.types.IntParamType):
        return "5"
    if isinstance(kind, click.Choice):
        return str(kind.choices[0])
    if isinstance(kind, click.Path):
        return places["file"] if kind.file_okay else places["folder"]
    return "branch-01"


@contextmanager
def _places() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        file = os.path.join(folder, "a-file.txt")
        Path(file).write_text("not what any flag wants\n")
        yield {
            "folder": folder,
            "file": file,
            "missing": os.path.join(folder, "no-such-folder", "x"),
            "under_file": os.path.join(file, "sub"),
        }


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=True)


def _one_usage_line(result: Result, param: click.Parameter, args: list[str]) -> str:
    """The check every refusal passes: exit 2, one line on stderr naming ``param``."""
    assert not isinstance(result.exception, _BodyReached | _RunReached), (
        f"secagg {' '.join(args)}: accepted; the command would have started"
    )
    assert result.exit_code == 2, (
        f"secagg {' '.join(args)}: exit {result.exit_code}: {result.output!r} {result.exception!r}"
    )
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"secagg {' '.join(args)}: {result.stderr!r}"
    names = (
        list(param.opts)
        if isinstance(param, click.Option)
        else [param.human_readable_name, param.name or ""]
    )
    assert any(name and name in lines[0] for name in names), (
        f"secagg {' '.join(args)}: the line names no {names}: {lines[0]!r}"
    )
    return lines[0]


# --- every command's parse -------------------------------------------------------------

FUZZED = [
    (path, name)
    for path, name in PARAMETERS
    if not refused_values(
        _param(path, name),
        {"missing": "", "folder": "", "file": "", "under_file": ""},
        empty_path=path != SIMULATE,
    ).is_empty
]


def test_every_command_and_parameter_is_enumerated() -> None:
    """The enumeration sees the commands and the flags the docs name (a guard against
    an empty parametrisation passing for nothing)."""
    assert {"simulate", "server", "client", "keyholder", "round"} <= {p[0] for p in COMMANDS}
    assert ("privacy", "epsilon") in COMMANDS and ("bench", "masking") in COMMANDS
    assert len(FUZZED) >= 60, len(FUZZED)


@pytest.mark.parametrize(("path", "name"), FUZZED, ids=[f"{' '.join(p)}:{n}" for p, n in FUZZED])
def test_a_value_the_parser_refuses_is_one_line_naming_the_flag(
    path: tuple[str, ...], name: str
) -> None:
    command = _command(path)
    param = _param(path, name)

    def body(*args: Any, **kwargs: Any) -> None:
        raise _BodyReached(name)

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    @given(data=st.data())
    def fuzz(places: dict[str, str], data: st.DataObject) -> None:
        with mock.patch.object(command, "callback", body):
            value = data.draw(
                refused_values(param, places, empty_path=path != SIMULATE), label="value"
            )
            args = [*path]
            for other in command.params:
                if other is not param and other.required:
                    args += _spelling(other, valid_value(other, places))
            args += _spelling(param, value)
            _one_usage_line(_invoke(args), param, args)

    # one set of places for every example: the command's body, the only code that could
    # write there, never runs (it is the failure _BodyReached), and a folder and file made
    # per example were a third of each example's time
    with _places() as places:
        fuzz(places)


# --- secagg simulate's body -------------------------------------------------------------

_INTS = st.one_of(
    st.integers(),
    st.sampled_from([-1, 0, 1, 100_000, 2**31, 2**32, 2**63, 2**70, -(2**70)]),
).map(str)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        ["-0.0", "0", "1e-300", "5e-324", "1e308", "-1", "1", "0.5", "1e-12", "1000001", "1e300"]
    ),
)
_STRINGS = st.one_of(
    st.sampled_from(["", " ", "\t", "x"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8),
)


def _simulate_values(param: click.Parameter, places: dict[str, str]) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.sampled_from([str(c) for c in kind.choices])
    if isinstance(kind, click.FloatRange):
        return _FLOATS
    if isinstance(kind, click.types.IntParamType):
        return _INTS
    if isinstance(kind, click.Path):
        return st.sampled_from(["", " ", places["missing"], places["folder"], places["file"]])
    return _STRINGS


#: the runs a flag is fuzzed on top of: the defaults, a CSV (its split keys), client-level
#: DP and the Ray engine (its two flags)
SIMULATE_BASES: list[list[str]] = [
    [],
    ["--data=csv", "--path={file}", "--label=is_fraud", "--customer-column=card"],
    ["--data=csv", "--path={file}", "--label=is_fraud", "--partition=feature"],
    ["--unit=client", "--mechanism=central", "--noise-multiplier=1"],
    ["--engine=ray"],
]

SIMULATE_FLAGS = [
    param.name
    for param in _command(SIMULATE).params
    if _takes_value(param) and param.name not in ("config_file",)
]


@pytest.mark.parametrize("name", SIMULATE_FLAGS)
def test_a_simulate_flag_is_refused_in_one_line_or_runs_in_range(name: str | None) -> None:
    param = next(p for p in _command(SIMULATE).params if p.name == name)

    def reached(config: Any, *args: Any, **kwargs: Any) -> None:
        raise _RunReached(config)

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        with (
            _places() as places,
            mock.patch("secagg.apps.simulation.runner.run_simulation", reached),
            mock.patch("secagg.apps.simulation.cli._experiment", reached),
        ):
            value = data.draw(_simulate_values(param, places), label="value")
            out = os.path.join(places["folder"], "run")
            base = data.draw(st.sampled_from(SIMULATE_BASES), label="base")
            base = [arg.format(file=places["file"]) for arg in base]
            args = [*SIMULATE, *base, *_spelling(param, value)]
            if name != "out":
                args.append(f"--out={out}")
            result = _invoke(args)
            if isinstance(result.exception, _RunReached):
                broken = ranges_violated(result.exception.config)
                assert not broken, f"secagg {' '.join(args)}: runs with {broken} out of range"
                return
            _one_usage_line(result, param, args)

    fuzz()


def test_nan_is_never_a_simulate_value() -> None:
    """``FINITE`` refuses nan and inf for every float flag of simulate."""
    for param in _command(SIMULATE).params:
        if isinstance(param.type, click.FloatRange):
            for text in ("nan", "inf", "-inf"):
                args = ["simulate", *_spelling(param, text)]
                line = _one_usage_line(_invoke(args), param, args)
                assert "number" in line or "finite" in line, line


@pytest.mark.parametrize(
    ("extra", "flag", "words"),
    [
        # "data.standardize = 'public' with a CSV needs data.stats_path": a key no one
        # set, for what --unit client chose
        (["--unit=client"], "--unit", "--unit client with --mechanism central standardizes"),
        (["--mechanism=central"], "--mechanism", "data.standardize = 'auto'"),
        # a blank column passed, and the run read the whole CSV before refusing it
        (["--label= "], "--label", "--label is empty"),
        (["--customer-column=\t"], "--customer-column", "--customer-column is empty"),
    ],
)
def test_what_the_simulate_fuzz_found(extra: list[str], flag: str, words: str) -> None:
    """Each failed before its fix (config fuzz, 2026-12-05)."""
    param = next(p for p in _command(SIMULATE).params if flag in p.opts)

    def reached(config: Any, *args: Any, **kwargs: Any) -> None:
        raise _RunReached(config)

    with (
        _places() as places,
        mock.patch("secagg.apps.simulation.runner.run_simulation", reached),
        mock.patch("secagg.apps.simulation.cli._experiment", reached),
    ):
        args = [
            *SIMULATE,
            "--data=csv",
            f"--path={places['file']}",
            "--label=is_fraud",
            f"--out={os.path.join(places['folder'], 'run')}",
            *extra,
        ]
        line = _one_usage_line(_invoke(args), param, args)
    assert words in line, line


EMPTY_PATHS = [
    (path, param.name)
    for path in COMMANDS
    if path != SIMULATE
    for param in _command(path).params
    if isinstance(param.type, click.Path) and param.name is not None
]


@pytest.mark.parametrize("value", ["", " "])
@pytest.mark.parametrize(
    ("path", "name"), EMPTY_PATHS, ids=[f"{' '.join(p)}:{n}" for p, n in EMPTY_PATHS]
)
def test_an_empty_path_is_a_usage_error(path: tuple[str, ...], name: str, value: str) -> None:
    """click reads "" as the current folder: ``certs init --dir ""`` wrote a CA there,
    ``audit verify ""`` failed as a verification (exit 1), ``keyholder-init --key ""``
    said "--key  is a folder" (CLI flag fuzz, 2026-12-05)."""
    command, param = _command(path), _param(path, name)

    def body(*args: Any, **kwargs: Any) -> None:
        raise _BodyReached(name)

    with _places() as places, mock.patch.object(command, "callback", body):
        args = [*path]
        for other in command.params:
            if other is not param and other.required:
                args += _spelling(other, valid_value(other, places))
        args += _spelling(param, value)
        line = _one_usage_line(_invoke(args), param, args)
    assert "an empty path" in line, line


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
@given(data=st.data())
def test_several_simulate_flags_at_once(data: st.DataObject) -> None:
    """Two to four flags together (their cross-checks: a seed with --seeds, a CSV's
    split keys, client-level delta with --branches ...): refused in one line naming
    one of them, or in range."""
    params = [p for p in _command(SIMULATE).params if p.name in SIMULATE_FLAGS]
    chosen = data.draw(
        st.lists(st.sampled_from(params), min_size=2, max_size=4, unique_by=lambda p: p.name),
        label="flags",
    )

    def reached(config: Any, *args: Any, **kwargs: Any) -> None:
        raise _RunReached(config)

    with (
        _places() as places,
        mock.patch("secagg.apps.simulation.runner.run_simulation", reached),
        mock.patch("secagg.apps.simulation.cli._experiment", reached),
    ):
        base = [a.format(file=places["file"]) for a in data.draw(st.sampled_from(SIMULATE_BASES))]
        args = [*SIMULATE, *base]
        for param in chosen:
            args += _spelling(param, data.draw(_simulate_values(param, places)))
        if all(p.name != "out" for p in chosen):
            args.append(f"--out={os.path.join(places['folder'], 'run')}")
        result = _invoke(args)
        if isinstance(result.exception, _RunReached):
            broken = ranges_violated(result.exception.config)
            assert not broken, f"secagg {' '.join(args)}: runs with {broken} out of range"
            return
        assert result.exit_code == 2, (args, result.output, result.exception)
        assert "Traceback" not in result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, (args, result.stderr)
        named = [opt for p in chosen for opt in p.opts] + [
            opt for a in base for opt in [a.split("=")[0]]
        ]
        assert any(opt in lines[0] for opt in named), (args, lines[0])
