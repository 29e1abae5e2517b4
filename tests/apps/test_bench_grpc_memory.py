"""``secagg bench grpc`` weighs its memory before it starts a process.

Why: each worker is a whole Python process and each client holds several model-sized
vectors, and nothing weighed them: ``--clients 1000 --processes 500 --d 10000000``
(320 GB at the least) passed every check and set out to issue the certificates, run
the in-process round and start the workers, to end in the kernel's out-of-memory
killer. Now the estimate (:func:`secagg.apps.bench.grpc.memory_bytes`) is compared
with the memory available now (``MemAvailable``) and a setting past it is one usage
line naming the flags, exit 2, before any work. A run that fails on its own way
(a worker that died) is one line too, exit 1, not a ``BenchmarkError`` traceback.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps import bench, cli_types
from secagg.apps.bench import grpc as bench_grpc
from secagg.apps.cli import main

GIB = 2**30
FLAGS = "'--clients' / '--processes' / '--d'"


class _BenchStarted(Exception):
    """The benchmark would have run."""


def _invoke(args: list[str], available: int | None) -> tuple[object, bool]:
    """``secagg bench grpc ARGS`` with ``available`` bytes free; whether it started."""
    with (
        mock.patch.object(cli_types, "memory_available", return_value=available),
        mock.patch.object(bench_grpc, "run_benchmark", side_effect=_BenchStarted) as runner,
    ):
        result = CliRunner().invoke(main, ["bench", "grpc", *args])
    return result, runner.called


@pytest.mark.parametrize(
    "args",
    [
        # a large model in every client
        ["--clients", "1000", "--processes", "500", "--d", "10000000"],
        # many processes of a small model: 2 001 interpreters
        ["--clients", "2000", "--processes", "2000", "--d", "10"],
        # the default 100 clients, a model of 10^8
        ["--d", "100000000"],
    ],
)
def test_a_run_past_the_available_memory_is_one_usage_line(args: list[str]) -> None:
    result, started = _invoke(args, available=8 * GIB)
    assert not started, "the benchmark started"
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1, lines
    assert FLAGS in lines[0] and "8.0 GiB available" in lines[0], lines[0]


@pytest.mark.parametrize("args", [[], ["--quick"]])
def test_the_documented_settings_fit_in_two_gib(args: list[str]) -> None:
    """The check refuses only what cannot fit: the default (100 clients in 10
    processes, d = 10^5) and ``--quick`` run on a machine with 2 GiB free."""
    _, started = _invoke(args, available=2 * GIB)
    assert started


def test_no_known_memory_refuses_nothing() -> None:
    _, started = _invoke(["--clients", "1000", "--processes", "500"], available=None)
    assert started


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clients=st.integers(3, 5000),
    share=st.floats(0.0, 1.0),
    dimension=st.integers(1, 10**8),
    available=st.integers(2**20, 2**40),
)
def test_the_command_refuses_exactly_what_the_estimate_does_not_fit(
    clients: int, share: float, dimension: int, available: int
) -> None:
    processes = max(1, round(share * clients))
    needed = bench_grpc.memory_bytes(clients, processes, dimension)
    args = ["--clients", str(clients), "--processes", str(processes), "--d", str(dimension)]
    result, started = _invoke(args, available)
    assert started == (needed <= available), result.output  # type: ignore[attr-defined]
    if not started:
        assert result.exit_code == 2  # type: ignore[attr-defined]


@given(
    clients=st.integers(2, 10**6),
    processes=st.integers(1, 10**4),
    dimension=st.integers(1, 10**9),
)
def test_the_estimate_grows_with_every_flag(clients: int, processes: int, dimension: int) -> None:
    base = bench_grpc.memory_bytes(clients, processes, dimension)
    assert base >= (processes + 1) * bench.PROCESS_BYTES
    assert bench_grpc.memory_bytes(clients + 1, processes, dimension) > base
    assert bench_grpc.memory_bytes(clients, processes + 1, dimension) > base
    assert bench_grpc.memory_bytes(clients, processes, dimension + 1) > base


def test_the_script_refuses_it_too(capsys: pytest.CaptureFixture[str]) -> None:
    """``python benchmarks/bench_grpc.py`` (grpc.main, argparse) makes the same check."""
    with (
        mock.patch.object(bench_grpc, "memory_available", return_value=8 * GIB),
        mock.patch.object(bench_grpc, "run_benchmark", side_effect=_BenchStarted),
        pytest.raises(SystemExit) as stopped,
    ):
        bench_grpc.main(["--clients", "1000", "--processes", "500", "--d", "10000000"])
    assert stopped.value.code == 2
    assert "--processes" in capsys.readouterr().err


def test_memory_available_reads_memavailable(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:       24000000 kB\nMemFree:        19000000 kB\n"
        "MemAvailable:   2097152 kB\nBuffers:          1000 kB\n"
    )
    with mock.patch.object(cli_types, "memory_limit", return_value=64 * GIB):
        assert cli_types.memory_available(meminfo) == 2 * GIB
        # no MemAvailable line (an old kernel), or no file: the machine's bound
        meminfo.write_text("MemTotal:       24000000 kB\n")
        assert cli_types.memory_available(meminfo) == 64 * GIB
        assert cli_types.memory_available(tmp_path / "missing") == 64 * GIB


def test_a_failed_run_is_one_line_exit_1() -> None:
    failure = bench_grpc.BenchmarkError(
        "worker 4242 exited with -9 before the rounds:\nTraceback (most recent call last):\n  x"
    )
    with (
        mock.patch.object(cli_types, "memory_available", return_value=None),
        mock.patch.object(bench_grpc, "run_benchmark", side_effect=failure),
    ):
        result = CliRunner().invoke(main, ["bench", "grpc", "--quick"])
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, bench_grpc.BenchmarkError), "a traceback"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("secagg bench grpc: worker 4242"), lines


@pytest.mark.integration
def test_the_estimate_is_below_a_real_run() -> None:
    """The estimate is a lower bound of what a run holds: the workers' measured peak
    is at least the estimate's share of one worker (2 clients of d = 10^6 each)."""
    pytest.importorskip("grpc")
    clients, processes, dimension = 4, 2, 1_000_000
    result = bench_grpc.run_benchmark(
        clients=clients, processes=processes, dimension=dimension, rounds=1, progress=False
    )
    per_worker = (
        bench.PROCESS_BYTES + clients // processes * dimension * bench.CLIENT_BYTES_PER_COORDINATE
    )
    assert result["grpc"]["worker_peak_rss_bytes"] >= per_worker
