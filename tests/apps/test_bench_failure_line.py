"""A benchmark that fails its own checks is one line, exit 1, on every ``secagg bench``.

Why: bench grpc and bench scale said it in one line; bench masking, papers and ckks
ended in a BenchmarkError traceback (a round that did not complete, a secure sum that
is not the plaintext one, a CKKS error past its bound: review, 2026-12-06).
"""

from __future__ import annotations

from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps.bench import backends, masking
from secagg.apps.cli import main


@pytest.mark.parametrize(
    ("args", "target", "error"),
    [
        (["masking", "--quick"], "secagg.apps.bench.masking.run_benchmark", masking.BenchmarkError),
        (["papers", "--quick"], "secagg.apps.bench.papers.run_and_write", masking.BenchmarkError),
        (["ckks", "--quick"], "secagg.apps.bench.backends.run_benchmark", backends.BenchmarkError),
    ],
)
def test_a_failed_benchmark_is_one_line_exit_1(
    args: list[str], target: str, error: type[Exception], tmp_path: object
) -> None:
    failure = error("wrong secure sum: figure 1\nn=100 d=1000")
    out = ["--out", f"{tmp_path}/out" + ("" if args[0] == "papers" else ".json")]
    with mock.patch(target, side_effect=failure):
        result = CliRunner().invoke(main, ["bench", *args, *out])
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, error), "a traceback"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"secagg bench {args[0]}: wrong secure sum: figure 1 n=100 d=1000"], lines
