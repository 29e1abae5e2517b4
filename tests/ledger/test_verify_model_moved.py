"""``audit verify`` fails an aborted round whose released model changed (DP audit t6).

An aborted round released nothing and is charged nothing, so the server records the
model the previous round left (``model_sha256`` of the unchanged model; a row rebuilt
on restart, the store's latest checkpoint). A row marked aborted whose digest differs
from the one before it released a model no epsilon covers: the audit's forged ledger
turned a completed round into an aborted one, dropped its charge, and verified. A
round whose sum the server saw before aborting (``dp.sum_revealed``) is charged like a
completed one and is not held to this.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _ledgers import central_client_dp, ledger_row, write_ledger
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.accountants import PerClientAccountant
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c", "d")]


def _dp() -> dict[str, Any]:
    return central_client_dp(Z, DELTA)


def _central_rows(statuses: list[str]) -> list[dict]:
    """Per-client central rows as the server writes them; an aborted round is charged
    nothing and repeats the previous claim. Every row gets its own model digest
    (:func:`ledger_row`): :func:`write_ledger` holds the aborted ones unless told not to."""
    accountant = PerClientAccountant(DELTA, "pld")
    rows, epsilon = [], None
    for number, (status, cohort) in enumerate(zip(statuses, COHORTS, strict=True), start=1):
        if status == "complete":
            accountant.step(Z, cohort)
            epsilon = accountant.epsilon()
        rows.append(
            ledger_row(
                number,
                _dp(),
                epsilon,
                participants=cohort,
                publish_participants=True,
                status=status,
                reason=None if status == "complete" else "round deadline passed",
            )
        )
    return rows


def test_an_aborted_row_whose_model_moved_fails_naming_it(tmp_path: Path) -> None:
    """t6: round 2 marked aborted (not charged) while its model differs from round 1's."""
    rows = _central_rows(["complete", "aborted", "complete"])
    assert rows[1]["model_sha256"] != rows[0]["model_sha256"]  # the forgery under test
    path, key = write_ledger(tmp_path / "t6.sqlite", rows, models_as_written=True)
    result = verify_ledger(path, key.public_key)
    assert not result.ok
    assert result.first_failure is not None
    assert result.first_failure.startswith("row 2 (round 2): is aborted (charged nothing)")
    assert "the model changed in a round that released nothing" in result.first_failure


def test_the_same_ledger_with_the_model_held_verifies(tmp_path: Path) -> None:
    """The genuine ledger: the aborted row repeats round 1's digest (as the server writes
    it), and round 3, completed, moves the model again."""
    path, key = write_ledger(
        tmp_path / "held.sqlite", _central_rows(["complete", "aborted", "complete"])
    )
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    models = [row.entry["model_sha256"] for row in result.chain.rows]
    assert models[1] == models[0] != models[2]


def _distributed_rows(path: Path, *, moved: bool) -> tuple[Path, bytes]:
    """A distributed ledger as the server writes one that died after its second round's
    sum was revealed to it: that row is aborted but charged (``dp.sum_revealed``).
    ``moved``: its model digest differs from round 1's."""
    from secagg.dp.config import DPSettings
    from secagg.dp.release import mechanism_for

    n = 20
    mechanism = mechanism_for(
        DPSettings(mechanism="distributed", noise_multiplier=1.0, delta=DELTA),
        dimension=16,
        bits=32,
        sample_rate=1.0,
        expected_clients=float(n),
        corrupt_fraction=0.1,
        seed=b"s" * 16,
    )
    names = tuple(f"branch-{i:02d}" for i in range(n))
    rows = []
    for number in (1, 2):
        mechanism.round_options(n)
        out = mechanism.release(np.zeros(16), contributors=n, participants=n, noise_added=0.0)
        dp = mechanism.ledger_block(out.store) | {
            "sampling": {"kind": "poisson", "rate": 1.0, "population": n, "seeded": False}
        }
        changes: dict[str, Any] = {}
        if number == 2:
            dp["sum_revealed"] = True
            changes = {"status": "aborted", "reason": "server restarted mid-round, after its "
                       "sum was revealed to it", "model_sha256": f"{1 + moved:064x}"}  # fmt: skip
        rows.append(ledger_row(number, dp, out.epsilon, participants=names, **changes))
    written, key = write_ledger(path, rows, models_as_written=True)
    return written, key.public_key


def test_a_sum_revealed_aborted_row_is_charged_and_not_held_to_the_model(
    tmp_path: Path,
) -> None:
    """Its sum was released to the server and the row is charged like a completed one:
    whatever its digest, nothing went uncharged (the server records the model it kept)."""
    for moved in (False, True):
        path, public = _distributed_rows(tmp_path / f"revealed-{moved}.sqlite", moved=moved)
        result = verify_ledger(path, public)
        assert result.ok, (moved, result.first_failure)
        assert result.epsilons[1][1] is not None
        assert result.epsilons[1][1] > result.epsilons[0][1]  # type: ignore[operator]


_statuses = st.lists(st.sampled_from(["complete", "aborted"]), min_size=2, max_size=8)


@settings(max_examples=40, deadline=None)
@given(statuses=_statuses, data=st.data())
def test_only_an_aborted_row_that_moves_the_model_fails(
    statuses: list[str], data: st.DataObject
) -> None:
    """Any run of completed and aborted rounds verifies while aborted rows hold the model;
    moving the model in one aborted row that has a row before it fails at that row, and
    nowhere earlier. Rows without DP: the check does not depend on the mechanism, and
    these replay nothing (fast)."""
    rows = [
        ledger_row(number, None, None, delta=None, status=status, contributed=0)
        for number, status in enumerate(statuses, start=1)
    ]
    with tempfile.TemporaryDirectory(prefix="model-moved-") as folder:
        held, key = write_ledger(Path(folder) / "held.sqlite", rows)
        audit = verify_ledger(held, key.public_key)
        assert audit.ok, audit.first_failure
        movable = [i for i, status in enumerate(statuses) if status == "aborted" and i > 0]
        if not movable:
            return
        target = data.draw(st.sampled_from(movable), label="aborted row whose model moves")
        forged = [dict(row.entry) for row in audit.chain.rows]  # as the server wrote them
        forged[target]["model_sha256"] = "f" * 64
        path, key = write_ledger(Path(folder) / "moved.sqlite", forged, models_as_written=True)
        result = verify_ledger(path, key.public_key)
    assert result.first_failure is not None
    assert result.first_failure.startswith(f"row {target + 1} (round {target + 1}): is aborted")
