"""Every count a benchmark takes is bounded above, refused as a usage error naming it.

Upper-bounds review (2026-12-05): ``bench dp --runs 2**70`` ran until killed, ``bench
grpc --rounds 2**70`` was an OverflowError traceback ("timestamp too large to convert
to C _PyTime_t"), ``bench scale --d 2**70`` a ConfigurationError traceback from its
cell naming ``federation.dimension``, and ``bench scale --workers 2**70`` started the
benchmark. Each now stops at the parser: exit 2, one line naming the flag.
"""

from __future__ import annotations

from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main


class _BenchStarted(Exception):
    """The benchmark would have run."""


HUGE = str(2**70)


@pytest.mark.parametrize(
    ("args", "runner", "flag"),
    [
        (["dp", "--runs", HUGE], "secagg.apps.bench.dp.run_benchmark", "'--runs'"),
        (["dp", "--runs", "1001"], "secagg.apps.bench.dp.run_benchmark", "'--runs'"),
        (["grpc", "--rounds", HUGE], "secagg.apps.bench.grpc.run_benchmark", "'--rounds'"),
        (["scale", "--d", HUGE], "secagg.apps.bench.scale.run_benchmark", "'--d'"),
        (["scale", "--workers", HUGE], "secagg.apps.bench.scale.run_benchmark", "'--workers'"),
    ],
)
def test_a_count_past_its_bound_is_a_usage_error_naming_the_flag(
    args: list[str], runner: str, flag: str
) -> None:
    with (
        mock.patch(runner, side_effect=_BenchStarted),
        mock.patch("secagg.runtime.ray_engine.require_ray"),
    ):
        result = CliRunner().invoke(main, ["bench", *args, "--quick"])
    assert not isinstance(result.exception, _BenchStarted), "the benchmark started"
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and flag in lines[0], result.stderr
