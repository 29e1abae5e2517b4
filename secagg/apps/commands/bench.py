"""``secagg bench``: masking, papers, dp, ckks, scale and grpc, with the ``--json`` and
``--out`` options they share and the checks made before a benchmark runs (the grid's
plan, the memory, the output folder), so that a mistake is one line, not a traceback
after minutes of work.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click

from secagg.apps.bench import MAX_ROUNDS, MAX_RUNS, MAX_WORKERS
from secagg.apps.cli_types import (
    FiniteFloat,
    NonEmptyPath,
    check_available_memory,
    check_memory,
)
from secagg.apps.commands.common import (
    _CLIENTS,
    _LENGTH,
    _config_error,
    _fail,
    _one_line,
    _os_error,
    _path_failure,
    shown_path,
)
from secagg.errors import ConfigurationError
from secagg.protocol import RoundConfig
from secagg.protocol.config import DEFAULT_CORRUPT_FRACTION

#: the most timed runs, rounds and Ray workers a benchmark takes, each far past any use
#: and short of a run that never ends: ``bench dp --runs 2**70`` ran until killed,
#: ``bench grpc --rounds 2**70`` was an OverflowError traceback from its deadline, and
#: ``bench scale --d 2**70`` a ConfigurationError traceback in its cell (upper-bounds
#: review, 2026-12-05); rounds and workers are ``secagg simulate``'s caps
_RUNS = click.IntRange(1, MAX_RUNS)
_ROUNDS = click.IntRange(1, MAX_ROUNDS)
_WORKERS = click.IntRange(1, MAX_WORKERS)


def _output_path(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An output path whose folder exists, checked before the work: a benchmark that runs
    for minutes and then cannot write its result was a traceback (CLI audit).

    A folder ``--out`` names is made here; one the machine cannot make (no permission, a
    read-only filesystem, a full disk, a quota, an I/O error) is a failure of the
    environment, exit 1, and one the path keeps from being made (its parent missing, a
    file in its place) a usage error naming the flag
    (:func:`~secagg.apps.commands.common._path_failure`, as ``certs init --dir`` says
    them). Why: every OSError read as a mistake in ``--out``
    (exit 2), a full disk included, which sent the operator to change a path that was
    right (tests/apps/test_bench_out_folder_failures.py, tests/apps/test_path_failure_rule.py)."""
    if value is None:  # an empty one (an unset $OUT) never gets here: NonEmptyPath refuses it
        return None
    if isinstance(param.type, click.Path) and not param.type.file_okay:  # a folder: make it
        try:
            if not os.path.isdir(value):
                os.mkdir(value)  # its parent must exist: no folders made along the way
        except OSError as exc:
            failure = _path_failure(exc, "--out")
            if isinstance(failure, click.BadParameter):  # the path's mistake: click names it
                raise click.BadParameter(_os_error(exc), ctx, param) from None
            raise failure from None
        return value
    # the folder as typed (``runs`` of ``runs/x.json``), which the refusals name: its
    # absolute form named a path never typed (helper brief 325); a bare name's is here
    parent = os.path.dirname(value) or os.curdir
    if not os.path.isdir(parent):
        # a file in its place is there: "does not exist" sent the user looking for a
        # folder they could see (tests/apps/test_bench_out_folder_is_a_file.py); worded
        # as keyholder-init --key says it
        what = "is a file, not a folder" if os.path.exists(parent) else "does not exist"
        raise click.BadParameter(f"the folder {shown_path(parent)} {what}", ctx, param)
    if not os.access(parent, os.W_OK):  # the machine's refusal (a chmod fixes it): exit 1
        raise _path_failure(
            PermissionError(errno.EACCES, os.strerror(errno.EACCES), parent), "--out"
        ) from None
    return value


@contextlib.contextmanager
def _failure_as_line(party: str, *errors: type[Exception]) -> Iterator[None]:
    """A benchmark that fails its own checks (a round that did not complete, a sum that
    is not the plaintext one, an error past its bound) is one line, exit 1.

    Why: bench grpc and bench scale said so in one line; bench masking, papers and ckks
    ended in a BenchmarkError traceback (review, 2026-12-06)."""
    try:
        yield
    except errors as exc:
        _fail(party, _one_line(exc))


@click.group()
def bench() -> None:
    """Benchmarks (JSON on stdout, or in the --out file)."""


def _emit_bench(party: str, result: dict[str, Any], out: str | None) -> None:
    """A ``secagg bench`` run's JSON on stdout, or in ``out`` (whole or not at all) with
    one line on stdout; a write that fails is one line naming the file.

    Why: ``--out``'s folder is checked before the run, yet a folder removed or a disk
    filled while a grid ran ended in a traceback after the whole run (review,
    2026-12-05)."""
    from secagg.apps.bench import emit

    def said(line: str) -> None:
        # "wrote FILE (...)" shows FILE as the errors show a path: printed raw, a line
        # break in --out split the line in two and an escape reached the terminal
        # (tests/apps/test_bench_wrote_line.py). FILE is the one after "wrote ", not the
        # first one found: --out 'e ' is inside "wrote " itself, and was shown there,
        # "wrot'e 'e  (dp: ...)" (tests/apps/test_bench_wrote_line_word_names.py)
        wrote = f"wrote {out} "
        if out and line.startswith(wrote):
            line = f"wrote {shown_path(out)} {line[len(wrote) :]}"
        click.echo(line)

    try:
        emit(result, out, said, file_only=True)
    except OSError as exc:
        _fail(party, f"cannot write the results to {shown_path(str(out))}: {_os_error(exc)}")


def _bench_json_output(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` and ``--out FILE``, the same on every ``secagg bench`` command that
    prints one JSON document (each had its own copy of both).

    ``--json`` is the default and changes nothing; it stays so that scripts passing it
    keep working. ``--out``'s folder is checked before the benchmark runs
    (:func:`_output_path`) and the file is written by :func:`_emit_bench`."""
    command = click.option(
        "--out",
        type=NonEmptyPath(dir_okay=False, writable=True),
        default=None,
        callback=_output_path,
        help="Write the JSON to FILE instead of stdout (one line there says where).",
    )(command)
    return click.option(
        "--json", "as_json", is_flag=True, default=True, help="JSON output (the default)."
    )(command)


def _grid_sizes(default_ns: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--n`` (client counts) and ``--d`` (vector lengths), repeatable and bounded alike
    on the grid benchmarks (``bench masking`` and ``bench ckks`` each had its own copy
    of both, their help differing only in the default client counts ``default_ns``)."""

    def add(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--d",
            "ds",
            type=_LENGTH,
            multiple=True,
            help="Vector lengths (repeatable; default 100 000, 1 000 000).",
        )(command)
        return click.option(
            "--n",
            "ns",
            type=_CLIENTS,
            multiple=True,
            help=f"Client counts (repeatable; default {default_ns}).",
        )(command)

    return add


@bench.command("masking")
@click.option("--quick", is_flag=True, help="n = 20 and 50, d = 10 000: a small grid, seconds.")
@_grid_sizes(default_ns="100, 1000")
@click.option(
    "--dropout",
    "dropouts",
    type=FiniteFloat(0.0, 1.0, max_open=True),
    multiple=True,
    help="Dropout fractions, in [0, 1) (repeatable; default 0, 0.1, 0.3).",
)
@click.option(
    "--graph",
    "graphs",
    type=click.Choice(["complete", "harary"]),
    multiple=True,
    help="Graphs (repeatable; default both).",
)
@_bench_json_output
def bench_masking(
    quick: bool,
    ns: tuple[int, ...],
    ds: tuple[int, ...],
    dropouts: tuple[float, ...],
    graphs: tuple[str, ...],
    as_json: bool,
    out: str | None,
) -> None:
    """Client masking, server unmasking and memory vs plaintext sum and raw AES-CTR."""
    from secagg.apps.bench import masking

    grid: dict[str, Any] = dict(masking.QUICK_GRID) if quick else {}
    for name, values in (("ns", ns), ("ds", ds), ("dropouts", dropouts), ("graphs", graphs)):
        if values:
            grid[name] = tuple(values)
    planned = {**masking.GRID, **grid}
    try:
        masking.plan_grid(planned["ns"], planned["dropouts"], planned["graphs"])
    except ConfigurationError as exc:
        names = {
            "num_clients": "--n",
            "dropout_fraction": "--dropout",
            "corrupt_fraction": f"the assumed corrupt fraction ({DEFAULT_CORRUPT_FRACTION})",
        }
        raise _config_error(exc, names) from exc
    n, d = max(planned["ns"]), max(planned["ds"])
    check_memory(
        masking.memory_bytes(n, d),
        f"--n {n} x --d {d} float32 inputs and their masked copies",
        "'--n' / '--d'",
    )
    with _failure_as_line("secagg bench masking", masking.BenchmarkError):
        result = masking.run_benchmark(**grid)
    _emit_bench("secagg bench masking", result, out)


@bench.command("papers", short_help="The SecAgg/SecAgg+ papers' cost figures beside ours.")
@click.option(
    "--quick",
    is_flag=True,
    help="Small grids: 13-17 s of CPU (the full grids: about 6 min); the wall time grows "
    "with the machine's load.",
)
@click.option(
    "--out",
    type=NonEmptyPath(file_okay=False, writable=True),
    callback=_output_path,
    default="papers-results",
    show_default=True,
    help="Directory for papers.json, papers.md and the PNG plots.",
)
# the test suite's grid: the output's shape and the verdicts' logic, in seconds
@click.option("--smoke", is_flag=True, hidden=True)
def bench_papers(quick: bool, out: str, smoke: bool) -> None:
    """Bonawitz et al. 2017 and Bell et al. 2020 cost figures, ours beside the papers'."""
    from secagg.apps.bench import papers
    from secagg.apps.bench.masking import BenchmarkError

    with _failure_as_line("secagg bench papers", BenchmarkError):
        papers.run_and_write(out, quick=quick, smoke=smoke, echo=click.echo)


@bench.command("dp")
@click.option("--quick", is_flag=True, help="d = 10 000 only: seconds.")
@click.option(
    "--d",
    "dimensions",
    type=_LENGTH,
    multiple=True,
    help="Vector lengths (repeatable; default 100 000, 1 000 000).",
)
@click.option("--runs", type=_RUNS, default=5, show_default=True, help="Timed runs per step.")
@_bench_json_output
def bench_dp(
    quick: bool, dimensions: tuple[int, ...], runs: int, as_json: bool, out: str | None
) -> None:
    """Per-client cost of clipping, encoding, rotation and noise vs one plaintext pass."""
    from secagg.apps.bench import dp

    dims = dimensions or (dp.QUICK_DIMENSIONS if quick else dp.DIMENSIONS)
    result = dp.run_benchmark(dimensions=dims, runs=runs)
    _emit_bench("secagg bench dp", result, out)


@bench.command("ckks")
@click.option("--quick", is_flag=True, help="n = 4, d = 10 000: seconds.")
@_grid_sizes(default_ns="10, 100")
@click.option(
    "--backend",
    "backends",
    type=click.Choice(["plain", "secagg+", "ckks"]),
    multiple=True,
    help="Backends to compare (repeatable; default all three).",
)
@click.option(
    "--repeats",
    type=_RUNS,
    default=1,
    show_default=True,
    help="Rounds per cell; each timing is the best of them (a shared machine only adds time).",
)
@_bench_json_output
def bench_ckks(
    quick: bool,
    ns: tuple[int, ...],
    ds: tuple[int, ...],
    backends: tuple[str, ...],
    repeats: int,
    as_json: bool,
    out: str | None,
) -> None:
    """CKKS encryption, server addition, decryption and wire size vs masking and plaintext."""
    from secagg.apps.bench import backends as bench_backends

    grid: dict[str, Any] = dict(bench_backends.QUICK) if quick else {}
    for name, values in (("ns", ns), ("ds", ds), ("backends", backends)):
        if values:
            grid[name] = tuple(values)
    planned = {
        "ns": bench_backends.NS,
        "ds": bench_backends.DS,
        "backends": bench_backends.BACKEND_NAMES,
        **grid,
    }
    try:
        bench_backends.plan_grid(planned["ns"], planned["ds"], planned["backends"])
    except ConfigurationError as exc:
        flags = {"num_clients": "--n", "dimension": "--d"}
        raise click.BadParameter(
            f"{', '.join(map(str, planned['ns']))} clients: {_config_error(exc, flags).message}",
            param_hint="'--n'",
        ) from exc
    n, d = max(planned["ns"]), max(planned["ds"])
    check_memory(
        bench_backends.memory_bytes(n, d), f"--n {n} x --d {d} float64 updates", "'--n' / '--d'"
    )
    with _failure_as_line("secagg bench ckks", bench_backends.BenchmarkError):
        result = bench_backends.run_benchmark(**grid, repeats=repeats)
    _emit_bench("secagg bench ckks", result, out)


def _plan_bench_round(num_clients: int, vector_length: int, clients_flag: str, d_flag: str) -> None:
    """Plan a benchmark's SecAgg+ round (k and t) before any work; a round no
    configuration can run is one usage line naming the flag.

    Why: ``bench grpc --clients 1000000000`` issued certificates one by one for an hour
    and more, and ``bench scale --n 1000000000`` started its cells, before the round's
    planning refused them (at most 10^6 clients)."""
    try:
        RoundConfig.create(num_clients, vector_length)
    except ConfigurationError as exc:
        flags = {"num_clients": clients_flag, "vector_length": d_flag}
        raise _config_error(exc, flags) from exc


@bench.command("scale", short_help="Thousands of clients: the in-process and Ray engines.")
@click.option("--quick", is_flag=True, help="60 clients, d = 1000: well under a minute.")
@click.option(
    "--n",
    "ns",
    type=click.IntRange(min=3),
    multiple=True,
    help="Clients (repeatable; default 1000, 5000).",
)
@click.option("--d", "dimension", type=_LENGTH, default=None, help="Model size (default 10 000).")
@click.option("--dropout", type=FiniteFloat(0.0, 0.5), default=None, help="Vanishing share (0.05).")
@click.option("--workers", type=_WORKERS, default=None, help="Ray workers (CPUs).")
@_bench_json_output
def bench_scale(
    quick: bool,
    ns: tuple[int, ...],
    dimension: int | None,
    dropout: float | None,
    workers: int | None,
    as_json: bool,
    out: str | None,
) -> None:
    """One SecAgg+ round of n clients on both engines (wall time, memory per worker,
    identical models), then slice-parallel unmasking on 1..workers Ray workers."""
    from secagg.apps.bench import round_memory_bytes as bench_round_memory
    from secagg.apps.bench import scale as bench_scale_module
    from secagg.runtime.ray_engine import RayUnavailable, require_ray

    grid: dict[str, Any] = dict(bench_scale_module.QUICK) if quick else {}
    if ns:
        grid["ns"] = ns
    if dimension is not None:
        grid["d"] = dimension
    if dropout is not None:
        grid["dropout"] = dropout
    for n in grid.get("ns", bench_scale_module.NS):
        _plan_bench_round(n, grid.get("d", bench_scale_module.D), "--n", "--d")
    n, d = max(grid.get("ns", bench_scale_module.NS)), grid.get("d", bench_scale_module.D)
    # its Ray cell spreads the clients over the workers, its in-process cell holds them
    # all in one process: either way every client's vectors at once, and the Ray cell a
    # process per worker beside the driver. Why: as bench grpc, --n 100000 --d 1000000
    # (3 TB at the least) was weighed by nothing before its cells started (2026-12-06)
    spread = workers or max(1, len(os.sched_getaffinity(0)))
    check_available_memory(
        bench_round_memory(n, spread + 1, d),
        f"--n {n} x --d {d} and {spread} Ray workers",
        "'--n' / '--d' / '--workers'",
    )
    try:
        require_ray()
    except RayUnavailable:
        _fail("secagg bench scale", "needs the ray extra: pip install 'secagg[ray]'", 2)
    try:
        result = bench_scale_module.run_benchmark(**grid, workers=workers)
    except bench_scale_module.ScaleBenchmarkError as exc:
        _fail("secagg bench scale", str(exc))
    _emit_bench("secagg bench scale", result, out)


@bench.command("grpc")
@click.option("--quick", is_flag=True, help="12 clients in 3 processes, d = 10 000: seconds.")
@click.option("--clients", type=_CLIENTS, default=None, help="Client count (default 100).")
@click.option(
    "--processes",
    # bench scale's --workers bound: --clients 20000 --processes 20000 passed every check
    # and set out to start 20 000 Python processes (upper-bounds review, 2026-12-06)
    type=_WORKERS,
    default=None,
    help="Worker processes (default 10, at most 10000 and --clients).",
)
@click.option("--d", "dimension", type=_LENGTH, default=None, help="Model size (default 1e5).")
@click.option("--rounds", type=_ROUNDS, default=None, help="Rounds (default 3).")
@_bench_json_output
def bench_grpc(
    quick: bool,
    clients: int | None,
    processes: int | None,
    dimension: int | None,
    rounds: int | None,
    as_json: bool,
    out: str | None,
) -> None:
    """A SecAgg+ federation round over gRPC/mTLS vs the same round in-process."""
    from secagg.apps.bench import grpc as bench_grpc_module

    grid: dict[str, Any] = dict(bench_grpc_module.QUICK) if quick else {}
    for name, value in (
        ("clients", clients),
        ("processes", processes),
        ("dimension", dimension),
        ("rounds", rounds),
    ):
        if value is not None:
            grid[name] = value
    _plan_bench_round(
        grid.get("clients", bench_grpc_module.CLIENTS),
        grid.get("dimension", bench_grpc_module.DIMENSION),
        "--clients",
        "--d",
    )
    spread = grid.get("processes", bench_grpc_module.PROCESSES)
    if spread > grid.get("clients", bench_grpc_module.CLIENTS):
        raise click.BadParameter("more worker processes than clients", param_hint="--processes")
    n = grid.get("clients", bench_grpc_module.CLIENTS)
    d = grid.get("dimension", bench_grpc_module.DIMENSION)
    check_available_memory(
        bench_grpc_module.memory_bytes(n, spread, d),
        f"--clients {n} x --d {d} and --processes {spread} Python processes",
        "'--clients' / '--processes' / '--d'",
    )
    with (
        _failure_as_line("secagg bench grpc", bench_grpc_module.BenchmarkError),
        _warnings_as_lines("secagg bench grpc"),
    ):
        result = bench_grpc_module.run_benchmark(**grid)
    _emit_bench("secagg bench grpc", result, out)


@contextlib.contextmanager
def _warnings_as_lines(party: str) -> Iterator[None]:
    """Meanwhile, each Python warning is one line on stderr, ``party: warning: Category:
    message``. Why: ``secagg bench grpc --quick`` printed its federation's
    PrivacyCostWarning in Python's own form, the source path and the line of code under
    it (``return DPConfig(``) among its progress lines (front-door audit, 2026-12-05)."""

    def one_line(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: object = None,
        line: str | None = None,
    ) -> None:
        del filename, lineno, file, line
        text = " ".join(str(message).split())
        click.echo(f"{party}: warning: {category.__name__}: {text}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        yield
