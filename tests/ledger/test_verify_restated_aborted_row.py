"""An aborted row at another delta than the rounds before it, claiming those rounds at
its own delta (what a server restarted under a new ``dp.delta`` writes since
2026-12-05), verifies as stating the epsilon at that delta.

Before, such a row carried the last charged claim beside its new delta; verify printed
the charged rows' delta with a note. The server now writes its restarted accountant's
figure: verify replays the row at its own delta and reads the epsilon as holding there.
The older form (the carried figure) still verifies with its note
(tests/ledger/test_verify_claim_delta.py); a figure that is neither fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import central_client_dp, central_client_rows, ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import PerClientAccountant
from secagg.ledger import export_public_key

COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]
DELTA, NEW_DELTA = 1e-5, 1e-7


def _restated() -> float:
    """The three rounds at :data:`NEW_DELTA`, as a restarted server's accountant gives them."""
    accountant = PerClientAccountant(NEW_DELTA, "pld")
    for cohort in COHORTS:
        accountant.step(1.5, cohort)
    return accountant.epsilon()


def _ledger(tmp_path: Path, claim: float) -> tuple[Path, str]:
    rows, _ = central_client_rows(COHORTS, 1.5, DELTA)
    aborted = ledger_row(
        4, central_client_dp(1.5, NEW_DELTA), claim, delta=NEW_DELTA,
        status="aborted", reason="too few", participants=("a", "b"), contributed=0,
        publish_participants=True,
    )  # fmt: skip
    path, key = write_ledger(tmp_path / "l.ledger", [*rows, aborted])
    return path, str(export_public_key(key.public_key, tmp_path / "l.pub"))


def _verify(path: Path, pub: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", pub, *extra])
    return result.exit_code, result.output


def test_an_aborted_row_stating_the_rounds_at_its_own_delta_verifies_at_it(
    tmp_path: Path,
) -> None:
    _, carried = central_client_rows(COHORTS, 1.5, DELTA)
    assert _restated() > carried  # a smaller delta: the same rounds spend more
    path, pub = _ledger(tmp_path, _restated())
    status, out = _verify(path, pub)
    assert status == 0, out
    assert "at delta 1e-07" in out.splitlines()[0], out
    assert "charged nothing" not in out, out
    payload = json.loads(_verify(path, pub, "--json")[1])
    assert payload["delta"] == NEW_DELTA


@pytest.mark.parametrize("factor", [0.99, 1.01])
def test_a_figure_that_is_neither_the_carried_nor_the_restated_one_fails(
    tmp_path: Path, factor: float
) -> None:
    path, pub = _ledger(tmp_path, _restated() * factor)
    status, out = _verify(path, pub)
    assert status == 1, out
    assert "row 4 (round 4): claims epsilon" in out, out
