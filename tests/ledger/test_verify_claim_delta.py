"""``audit verify`` and ``audit report`` state the cumulative epsilon at one delta, by
one rule: the delta the ledger's last DP block accounts at.

Why: both printed ``privacy.delta`` of the last row. A row without a DP block (an
aborted round, a restart without ``[dp]``) is checked against no accountant, so its
printed delta is nobody's: a key holder re-signed a ledger of rounds accounted at 1e-5
whose last, aborted row printed 1e-12, and it VERIFIED as "epsilon 4.090 at delta
1e-12" (exit 0), a guarantee a million times stronger than the one accounted; a last
row printing none read "delta not recorded" beside an epsilon the replay had just
derived at 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import central_client_dp, central_client_rows, ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key
from secagg.ledger.report import build_report

COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]
DELTA = 1e-5


def _rows(last_delta: float | None) -> list[dict]:
    """Three per-client rows at :data:`DELTA`, then an aborted round without a DP block
    that carries the epsilon on and prints ``last_delta``."""
    rows, epsilon = central_client_rows(COHORTS, 1.5, DELTA)
    aborted = ledger_row(
        4, None, epsilon, delta=last_delta, status="aborted", reason="too few",
        participants=("a", "b"), contributed=0,
    )  # fmt: skip
    return [*rows, aborted]


def _verify(path: Path, pub: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", pub, *extra])
    return result.exit_code, result.stdout


def _spent_line(path: Path, **options: object) -> str:
    text, _ = build_report(path, None, **options)  # type: ignore[arg-type]
    return next(x for x in text.splitlines() if x.startswith("- budget spent"))


@pytest.mark.parametrize("last_delta", [1e-12, 0.5, None])
def test_verify_and_report_give_the_accounted_delta(
    tmp_path: Path, last_delta: float | None
) -> None:
    path, key = write_ledger(tmp_path / "l.ledger", _rows(last_delta))
    pub = str(export_public_key(key.public_key, tmp_path / "l.pub"))
    status, out = _verify(path, pub)
    assert status == 0, out
    assert out.splitlines()[0].endswith("cumulative epsilon 4.090 at delta 1e-05"), out
    status, out = _verify(path, pub, "--json")
    payload = json.loads(out)
    assert payload["delta"] == DELTA and payload["delta_missing_reason"] is None
    assert "epsilon = 4.090 at delta = 1e-05 " in _spent_line(path)


def test_an_aborted_dp_row_at_another_delta_does_not_move_the_epsilons(tmp_path: Path) -> None:
    """The aborted round carries a DP block at 1e-12 (its printed delta is then its
    block's): it charges nothing, so no accountant composes the rounds at 1e-12, and
    the epsilon still holds at 1e-5 only. It VERIFIED as "4.090 at delta 1e-12", and
    the delta note said the epsilon "holds at delta 1e-12 only"."""
    rows = _rows(None)
    rows[-1] = ledger_row(
        4, central_client_dp(1.5, 1e-12), rows[-2]["privacy"]["epsilon"], delta=1e-12,
        status="aborted", reason="too few", participants=("a", "b"), contributed=0,
        publish_participants=True,
    )  # fmt: skip
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    pub = str(export_public_key(key.public_key, tmp_path / "l.pub"))
    status, out = _verify(path, pub)
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].endswith("cumulative epsilon 4.090 at delta 1e-05"), out
    assert not any("holds at delta 1e-12" in line for line in lines), out
    assert (
        "note: round 4 charged nothing (aborted, the sum unseen) but records another delta "
        "than the epsilon carried on (round 4 records delta 1e-12; the epsilon holds at "
        "delta 1e-05, the last charged round's)"
    ) in out
    assert json.loads(_verify(path, pub, "--json")[1])["delta"] == DELTA
    assert "epsilon = 4.090 at delta = 1e-05 " in _spent_line(path)


def test_a_ledger_begun_afresh_gives_its_prior_ledgers_accounted_delta(tmp_path: Path) -> None:
    """No row here yet: the prior ledger's last DP block gives the delta, not its last
    row (an aborted one that prints another)."""
    prior, key = write_ledger(tmp_path / "prior.ledger", _rows(1e-12))
    empty, _ = write_ledger(tmp_path / "new.ledger", [], key)
    pub = str(export_public_key(key.public_key, tmp_path / "l.pub"))
    status, out = _verify(empty, pub, "--prior-ledger", str(prior))
    assert status == 0, out
    assert out.splitlines()[0].endswith("cumulative epsilon 4.090 at delta 1e-05"), out
    payload = json.loads(_verify(empty, pub, "--prior-ledger", str(prior), "--json")[1])
    assert payload["delta"] == DELTA
    assert "at delta = 1e-05 " in _spent_line(empty, prior_ledger=prior)


def test_the_reports_plot_states_the_delta_of_its_epsilons(tmp_path: Path) -> None:
    """The budget plot's axis read "epsilon", no delta, beside the budget line's."""
    from secagg.ledger.report import _figure
    from secagg.ledger.verify import verify_ledger

    path, key = write_ledger(tmp_path / "l.ledger", _rows(1e-12))
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    figure = _figure(result)
    assert figure.axes[0].get_ylabel() == "epsilon at delta 1e-05"
