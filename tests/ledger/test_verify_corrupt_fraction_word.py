"""A distributed ledger verified without ``--config`` says that the corrupt fraction its
rows record is the ledger's word.

Why: each distributed row counts its honest noise shares from the corrupt fraction it
records, and a smaller fraction counts more of them honest. The rows a server would
have written at corrupt fraction 0 for a run at 0.25 verify, at a smaller epsilon, and
``verify`` said nothing of it resting on the rows (docs/audit.md lists it among what the
ledger does not prove; the output named only the noise multiplier). With a config that
gives the corrupt fraction every row is held to it, and the line goes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from _ledgers import distributed_rows, write_ledger

from secagg.dp.config import DPSettings
from secagg.dp.release import mechanism_for
from secagg.ledger.verify import AuditResult, ExpectedPrivacy, verify_ledger

DELTA, N = 1e-5, 20
NAMES = [f"branch-{i}" for i in range(N)]


def _rows(corrupt_fraction: float) -> list[dict[str, Any]]:
    """Two rounds of all N branches, as a server at ``corrupt_fraction`` writes them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=2.0, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(N),
            corrupt_fraction=corrupt_fraction,
            seed=b"s" * 16,
            population=N,
        )
    return distributed_rows(mechanism, [N, N], NAMES, DELTA)


def _verify(path: Path, rows: list[dict[str, Any]], **options: Any) -> AuditResult:
    written, key = write_ledger(path, rows)
    result = verify_ledger(written, key.public_key, **options)
    assert result.ok, result.first_failure
    return result


def _corrupt_fraction_line(result: AuditResult) -> str | None:
    return next((line for line in result.ledgers_word() if "corrupt fraction" in line), None)


def test_a_smaller_recorded_corrupt_fraction_verifies_smaller_and_is_said(tmp_path: Path) -> None:
    ran = _verify(tmp_path / "ran.ledger", _rows(0.25))
    written = _verify(tmp_path / "written.ledger", _rows(0.0))
    assert written.epsilons[-1][1] < ran.epsilons[-1][1]  # the rows' word, read as a fact
    for result in (ran, written):
        line = _corrupt_fraction_line(result)
        assert line is not None, result.ledgers_word()
        assert line.startswith("the corrupt fraction 2 distributed DP rows record")
        assert "no --config held it" in line


def test_a_config_that_gives_the_corrupt_fraction_holds_it_and_the_line_goes(
    tmp_path: Path,
) -> None:
    expected = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="distributed",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=N,
        dimension=16,
        bits=32,
        expected_clients=float(N),
        corrupt_fraction=0.25,
    )
    result = _verify(tmp_path / "l.ledger", _rows(0.25), expected=expected)
    assert _corrupt_fraction_line(result) is None
    assert not _verify(tmp_path / "o.ledger", _rows(0.0)).config_corrupt_fraction
    refused = verify_ledger(*_written(tmp_path / "f.ledger", _rows(0.0)), expected=expected)
    assert "assumes corrupt fraction 0.0 but the config's is 0.25" in str(refused.first_failure)


def _written(path: Path, rows: list[dict[str, Any]]) -> tuple[Path, bytes]:
    written, key = write_ledger(path, rows)
    return written, key.public_key
