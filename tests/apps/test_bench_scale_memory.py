"""``secagg bench scale`` weighs its memory before its cells start, as bench grpc does.

Why: a cell holds every client's vectors at once (the in-process engine in one
process, the Ray engine spread over ``--workers`` actor processes beside the driver),
and nothing weighed them: ``--n 100000 --d 1000000`` (3 TB at the least) and
``--workers 5000`` (5 001 Python processes) passed every check and set out to start
their cells (review, 2026-12-06). A setting past the memory available now is one
usage line naming the flags, exit 2, before any cell.
"""

from __future__ import annotations

from unittest import mock

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps import bench, cli_types
from secagg.apps.bench import scale as bench_scale
from secagg.apps.cli import main

GIB = 2**30


class _BenchStarted(Exception):
    """The benchmark would have run."""


def _invoke(args: list[str], available: int | None) -> tuple[Result, bool]:
    with (
        mock.patch.object(cli_types, "memory_available", return_value=available),
        mock.patch("secagg.runtime.ray_engine.require_ray"),
        mock.patch.object(bench_scale, "run_benchmark", side_effect=_BenchStarted) as runner,
    ):
        result = CliRunner().invoke(main, ["bench", "scale", *args])
    return result, runner.called


@pytest.mark.parametrize(
    "args",
    [
        ["--n", "100000", "--d", "1000000", "--workers", "2"],
        ["--n", "100", "--d", "1000", "--workers", "5000"],
        ["--n", "1000", "--n", "50000", "--d", "100000", "--workers", "2"],  # the largest n
    ],
)
def test_a_run_past_the_available_memory_is_one_usage_line(args: list[str]) -> None:
    result, started = _invoke(args, available=8 * GIB)
    assert not started, "the benchmark started"
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "'--n' / '--d' / '--workers'" in lines[0] and "8.0 GiB available" in lines[0]


@pytest.mark.parametrize("args", [["--workers", "2"], ["--quick", "--workers", "2"]])
def test_the_documented_settings_fit_in_two_gib(args: list[str]) -> None:
    """The default (1 000 and 5 000 clients, d = 10^4) and --quick start with 2 GiB."""
    _, started = _invoke(args, available=2 * GIB)
    assert started


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 20_000),
    d=st.integers(1, 10**7),
    workers=st.integers(1, 64),
    available=st.integers(2**20, 2**40),
)
def test_the_command_refuses_exactly_what_the_estimate_does_not_fit(
    n: int, d: int, workers: int, available: int
) -> None:
    needed = bench.round_memory_bytes(n, workers + 1, d)
    args = ["--n", str(n), "--d", str(d), "--workers", str(workers)]
    result, started = _invoke(args, available)
    assert started == (needed <= available), result.output
