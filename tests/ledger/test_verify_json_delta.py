"""``secagg audit verify --json`` gives the delta beside the epsilon.

An epsilon means nothing without the delta it holds at: the text line has said
``cumulative epsilon 4.012 at delta 1e-05`` since 2026-12-05, but the JSON object a
script reads carried ``"epsilon"`` alone. It now carries ``"delta"`` too, exact (the
last DP block's, the one the cumulative epsilon holds at), and null where no epsilon is
claimed. ``"delta_missing_reason"`` says why it is null (review 2026-12-05): "no
epsilon claimed" and "an epsilon whose delta is not recorded" both read
``"delta": null``, and a script had to look at ``"epsilon"`` to tell them apart.
"""

from __future__ import annotations

import json
from pathlib import Path

from _ledgers import central_client_rows, ledger_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key

COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _rows(cohorts: list[tuple[str, str]], delta: float) -> tuple[list[dict], float]:
    """Per-client central rows at ``delta``, each printing the delta it accounts at."""
    rows, epsilon = central_client_rows(cohorts, 1.5, delta)
    for row in rows:
        row["privacy"]["delta"] = delta
    return rows, epsilon


def _verify_json(tmp_path: Path, rows: list[dict], prior: list[dict] | None = None) -> dict:
    """``audit verify --json`` of a ledger of ``rows``, after a ``prior`` ledger (same
    key) when one is given."""
    key = None
    extra: list[str] = []
    if prior is not None:
        before, key = write_ledger(tmp_path / "prior.ledger", prior)
        extra = ["--prior-ledger", str(before)]
    path, key = write_ledger(tmp_path / "l.ledger", rows, key)
    pub = export_public_key(key.public_key, tmp_path / "l.pub")
    result = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", str(pub), "--json", *extra]
    )
    return json.loads(result.stdout)


def test_json_gives_the_exact_delta_beside_the_epsilon(tmp_path: Path) -> None:
    delta = 1.2345678e-6  # more digits than the text line shows: JSON keeps them all
    rows, epsilon = _rows(COHORTS, delta)
    payload = _verify_json(tmp_path, rows)
    assert payload["verdict"] == "VERIFIED", payload["first_failure"]
    assert payload["epsilon"] == epsilon
    assert payload["delta"] == delta
    assert payload["delta_missing_reason"] is None


def test_json_delta_is_the_last_rows(tmp_path: Path) -> None:
    """A restart under another delta: the cumulative epsilon holds at the last row's."""
    first, _ = _rows(COHORTS[:2], 1e-5)
    later, epsilon = _rows(COHORTS, 1e-6)
    payload = _verify_json(tmp_path, [*first, later[2]])
    assert payload["ok"], payload["first_failure"]
    assert payload["epsilon"] == epsilon
    assert payload["delta"] == 1e-6


def test_json_delta_is_null_without_dp(tmp_path: Path) -> None:
    payload = _verify_json(tmp_path, [ledger_row(1, None, None, delta=None)])
    assert payload["epsilon"] is None and payload["delta"] is None
    assert payload["delta_missing_reason"] == "no_epsilon_claimed"


def test_json_gives_the_prior_ledgers_accounted_delta(tmp_path: Path) -> None:
    """A ledger begun afresh after a prior whose last row (an aborted round without a
    DP block) records no delta: the epsilon holds at the delta the prior's last DP block
    accounts at, and that is the delta given (it read null, "not_recorded")."""
    rows, epsilon = _rows(COHORTS, 1e-5)
    aborted = ledger_row(
        4, None, epsilon, delta=None, status="aborted", reason="too few",
        participants=("a", "b"), contributed=0,
    )  # fmt: skip
    payload = _verify_json(tmp_path, [], prior=[*rows, aborted])
    assert payload["ok"], payload["first_failure"]
    assert payload["epsilon"] == epsilon and payload["delta"] == 1e-5
    assert payload["delta_missing_reason"] is None
