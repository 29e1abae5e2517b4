"""A DP block's figures must lie where a server's config puts them.

The row-shape check read only that they were finite numbers. Signed rows (the
operator's forgery, or a stranger's ledger checked without ``--pubkey``) with a clip of
-1 and a noise std of -1.5 (z x clip still "matches"), accounted at sample rate 2, or
recording a population of 10^30 clients verified, and so did a client-level ledger
accounted at delta 0.3 of 4 clients, where the guarantee allows releasing one client's
data outright (the server's config refuses delta >= 1/N) while printing a small epsilon.
Each now fails (exit 1) in one line naming the row and the field.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import LedgerKey, export_public_key
from secagg.ledger.report import build_report
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
GOOD = central_client_rows([("a", "b"), ("a", "c"), ("b", "c")], Z, DELTA)[0]


def _dp2(**changes: Any) -> list[dict[str, Any]]:
    """The good rows with row 2's DP block changed."""
    rows = copy.deepcopy(GOOD)
    rows[1]["dp"] |= changes
    return rows


CASES: dict[str, tuple[list[dict[str, Any]], str]] = {
    "negative clip and std": (
        _dp2(clip=-1.0, noise_std=-1.5),
        "dp.clip must be a number > 0, not -1.0",
    ),
    "zero clip": (_dp2(clip=0.0, noise_std=0.0), "dp.clip must be a number > 0, not 0.0"),
    "negative noise std": (_dp2(noise_std=-1.0), "dp.noise_std must be a number >= 0"),
    "negative multiplier": (
        _dp2(noise_multiplier=-1.5, noise_std=1.5),
        "dp.noise_multiplier must be a number >= 0, not -1.5",
    ),
    "sample rate 2": (_dp2(sample_rate=2.0), "dp.sample_rate must be a rate in (0, 1], not 2.0"),
    "sample rate 0": (_dp2(sample_rate=0.0), "dp.sample_rate must be a rate in (0, 1], not 0.0"),
    "delta 1": (_dp2(delta=1.0), "dp.delta must be a number in (0, 1), not 1.0"),
    "delta 0": (_dp2(delta=0.0), "dp.delta must be a number in (0, 1), not 0.0"),
    "sampling rate 3": (
        _dp2(sampling=GOOD[1]["dp"]["sampling"] | {"rate": 3}),
        "dp.sampling.rate must be a rate in (0, 1], not 3",
    ),
    "population 10^30": (
        _dp2(sampling=GOOD[1]["dp"]["sampling"] | {"population": 10**30}),
        "dp.sampling.population must be a count of clients, not 10000000000",
    ),
    "population 0": (
        _dp2(sampling=GOOD[1]["dp"]["sampling"] | {"population": 0}),
        "dp.sampling.population must be a count of clients, not 0",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_dp_figure_out_of_its_range_fails_naming_the_row(tmp_path: Path, case: str) -> None:
    rows, said = CASES[case]
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    result = verify_ledger(path, key.public_key)
    assert result.chain.ok and not result.ok
    assert str(result.failure).startswith(f"row 2 (round 2): {said}"), result.failure
    pub = export_public_key(key.public_key, tmp_path / "k.pub")
    run = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pub)])
    assert run.exit_code == 1 and run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    text, _ = build_report(path, key.public_key)
    assert f"**FAILED**: row 2 (round 2): {said}" in text


def test_a_client_level_ledger_at_a_delta_of_one_over_its_population_fails(
    tmp_path: Path,
) -> None:
    """Consistent in itself (printed, accounted and replayed at delta 0.3), so only the
    population it records shows that no epsilon at that delta is a guarantee."""
    rows, _ = central_client_rows([("a", "b"), ("a", "c")], Z, 0.3)
    for row in rows:
        row["privacy"]["delta"] = 0.3
    path, key = write_ledger(tmp_path / "wide.ledger", rows)
    result = verify_ledger(path, key.public_key)
    assert not result.ok
    assert result.failure == (
        "row 1 (round 1): accounts at delta 0.3 but its cohort was drawn from 4 clients: a "
        "delta of at least 1/4 allows releasing one client's data outright, so no epsilon "
        "at it is a guarantee"
    )
    below, _ = central_client_rows([("a", "b"), ("a", "c")], Z, 0.2)
    for row in below:
        row["privacy"]["delta"] = 0.2
    path, key = write_ledger(tmp_path / "narrow.ledger", below, LedgerKey.generate())
    assert verify_ledger(path, key.public_key).ok  # below 1/4: a guarantee, if a weak one
