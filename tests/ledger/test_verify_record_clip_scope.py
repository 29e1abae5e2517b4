"""``audit verify`` on ``dp.record_clip`` in a row that is not record level.

``record_clip`` is what one protected unit (a customer, a transaction) moves a client's
vector by in record-level distributed DP: the noise is sized to it and the replay's
discrete Gaussian takes it as the sensitivity, with ``dp.clip`` the whole vector's bound.
The noise check and the replay read it on any row, whatever its unit, so a client-level
row (it protects a whole client, whose update moves by up to ``dp.clip``) that recorded a
``record_clip`` was held to noise ``z x record_clip`` and charged for that sensitivity:

* central: clip 1, record_clip 0.01, noise std ``z x 0.01`` verified with the epsilon
  of noise ``z x 1``, a hundredth of the noise its claim was the epsilon of;
* distributed: the discrete Gaussian replayed at sensitivity 0.01 for a client's update
  of norm 1, the claim that of the smaller sensitivity.

The server writes ``record_clip`` on record-level rows only; any other row recording it
now fails, naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from _ledgers import central_client_rows, distributed_rows, verify_rows

from secagg.dp.accountants import DiscreteGaussianAccountant
from secagg.dp.config import DPSettings
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.dp.release import mechanism_for

DELTA, Z, RECORD_CLIP = 1e-5, 2.0, 0.01
NAMES = [f"branch-{i}" for i in range(4)]


def _distributed() -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        mechanism = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=Z, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=4.0,
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=4,
        )
    return distributed_rows(mechanism, [4, 4], NAMES, DELTA)


def _with_record_clip_distributed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client-level rows with a record_clip, and every figure that follows from it
    recomputed (the noise std, the noise share, the claims), as a forger holding the
    key writes them: only the unit contradicts it."""
    ddg = rows[0]["dp"]["ddg"]
    smaller = DistributedDiscreteGaussian(
        dimension=ddg["dimension"],
        clip=RECORD_CLIP,
        vector_bound=rows[0]["dp"]["clip"],
        noise_multiplier=Z,
        expected_clients=ddg["expected_clients"],
        bits=ddg["bits"],
        scale=ddg["scale"],
    )
    accountant = DiscreteGaussianAccountant(smaller, sample_rate=1.0, delta=DELTA)
    for row in rows:
        dp = row["dp"]
        dp["record_clip"] = RECORD_CLIP
        dp["noise_std"] = Z * RECORD_CLIP
        dp["ddg"]["local_sigma"] = smaller.local_sigma
        accountant.step(dp["noise_contributors"])
        row["privacy"]["epsilon"] = accountant.epsilon()
    return rows


def _central() -> list[dict[str, Any]]:
    return central_client_rows([["a", "b"], ["b", "c"], ["a", "c"]], Z, DELTA)[0]


def _with_record_clip_central(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        row["dp"]["record_clip"] = RECORD_CLIP
        row["dp"]["noise_std"] = Z * RECORD_CLIP  # a hundredth of the noise z x clip
    return rows


def test_the_rows_as_the_server_writes_them_verify(tmp_path: Path) -> None:
    assert verify_rows(tmp_path / "d.sqlite", _distributed()).ok
    assert verify_rows(tmp_path / "c.sqlite", _central()).ok


def test_a_central_client_row_with_a_record_clip_fails(tmp_path: Path) -> None:
    result = verify_rows(tmp_path / "c.sqlite", _with_record_clip_central(_central()))
    failure = result.first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): records record_clip")
    assert "unit 'client'" in failure


def test_a_distributed_client_row_with_a_record_clip_fails(tmp_path: Path) -> None:
    rows = _with_record_clip_distributed(_distributed())
    result = verify_rows(tmp_path / "d.sqlite", rows)
    failure = result.first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): records record_clip")
    assert "unit 'client'" in failure
