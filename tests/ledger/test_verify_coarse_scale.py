"""``audit verify`` on distributed-DP rows written before a coarse scale was refused.

Since 2026-12-06 (e5b358f) a discrete Gaussian whose scale makes a clipped update span
at most one ring unit is refused (:class:`~secagg.dp.distributed.ScaleTooCoarse` for a
given scale; a plain refusal for a planned one): rounding to integers swamps the
updates. Before it, such rounds ran: 1000 expected clients on 8 bits at clip 1e-3 were
planned a scale at which a clipped update spans 0.92 ring units at dimension 1000 (0.12
at dimension 16), and a given scale of 0.5 at clip 1 was taken. Their rows were
written honestly, charged the epsilon those parameters give. The replay built the
mechanism with today's constructor, which refuses them, so such a ledger failed verify
("its privacy claims do not replay") and an auditor could not re-check its history.

The floor is about what the rounds were worth, not about privacy: the accountant's
sensitivity is the rounded vector's inflated bound at that granularity and the noise
share's std is the one drawn (rounded up to a whole unit), so the epsilon those
parameters give is an honest bound. The replay now computes it and says, as a note,
that such a mechanism would be refused today; the claim is still held to it, so a row
with the same scale and a smaller epsilon fails.

What a server writes is the *planned* scale (it never takes one given): a recorded
scale below the one its own parameters plan is no server's, and fails. Why it must: a
coarser scale rounds each share's std up to more units than the noise multiplier asks,
so a row recording one flatters (scale 0.5 at clip 1, 1000 expected clients, d = 16:
epsilon 0.36 where the planned scale's noise spends 5.59). Before the floor such a row
verified silently; with the floor alone it failed only because it was coarse.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from _ledgers import distributed_rows, write_ledger

from secagg.dp.accountants import DiscreteGaussianAccountant
from secagg.dp.config import DPSettings
from secagg.dp.distributed import DistributedDiscreteGaussian
from secagg.dp.release import DistributedRelease, mechanism_for
from secagg.ledger import LedgerKey
from secagg.ledger.verify import verify_ledger

DELTA, N, Z = 1e-5, 4, 2.0
NAMES = [f"branch-{i}" for i in range(N)]


def _as_built_before_the_floor(
    *, clip: float, expected_clients: int, bits: int, scale: float
) -> DistributedDiscreteGaussian:
    """The discrete Gaussian the code before e5b358f built for these parameters: today's
    derivation without the floor on ``clip * scale`` (a ``scale`` of 0: the heuristic's,
    the ring's scale). Built from a mechanism today's code takes (32 bits, a scale of
    10 ring units a clip) with the fields that differ set as the old ``__post_init__``
    set them; the noise share's std is ``max(1, ceil(z C s / sqrt(n)))`` as it was."""
    taken = DistributedDiscreteGaussian(
        dimension=16,
        clip=clip,
        noise_multiplier=Z,
        expected_clients=expected_clients,
        bits=32,
        scale=10.0 / clip,
    )
    object.__setattr__(taken, "bits", bits)
    if not scale:
        scale = taken._ring_scale(taken.padded)
    object.__setattr__(taken, "scale", scale)
    sigma = math.ceil(Z * clip * scale / math.sqrt(expected_clients))
    object.__setattr__(taken, "local_sigma", max(1, sigma))
    assert scale * clip <= 1  # the case: today's code refuses it
    return taken


def _old_rows(clip: float, expected_clients: int, bits: int, scale: float) -> list[dict[str, Any]]:
    """Three completed rounds (4, 3, 4 of 4 contributing) as the server wrote them with
    that mechanism, each claiming the epsilon its accountant gave."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan's cost warning for few clients
        release = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=Z, delta=DELTA, clip=clip),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(N),
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=N,
        )
    assert isinstance(release, DistributedRelease)
    release.ddg = _as_built_before_the_floor(
        clip=clip, expected_clients=expected_clients, bits=bits, scale=scale
    )
    release.accountant = DiscreteGaussianAccountant(release.ddg, sample_rate=1.0, delta=DELTA)
    return distributed_rows(release, [4, 3, 4], NAMES, DELTA)


_OLD = {
    # the plan of 1000 expected clients on 8 bits at clip 1e-3: 0.12 ring units at d = 16
    "planned-client": dict(clip=1e-3, expected_clients=1000, bits=8, scale=0.0),
    # the same at clip 1: the plan's units do not depend on the clip
    "planned-unit-clip": dict(clip=1.0, expected_clients=1000, bits=8, scale=0.0),
}
#: a scale of 0.5 given at clip 1 (a masking spec's, never a server's ledger row)
_GIVEN = dict(clip=1.0, expected_clients=N, bits=32, scale=0.5)


def _verify(path: Path, rows: list[dict[str, Any]]) -> Any:
    key = LedgerKey.generate()
    written = write_ledger(path, rows, key)[0]
    result = verify_ledger(written, key.public_key)
    assert result.chain.ok  # the signatures hold: only the replay may object
    return result


@pytest.mark.parametrize("case", sorted(_OLD))
def test_an_honest_ledger_with_a_now_refused_scale_verifies_with_a_note(
    tmp_path: Path, case: str
) -> None:
    rows = _old_rows(**_OLD[case])  # type: ignore[arg-type]
    result = _verify(tmp_path / "old.sqlite", rows)
    assert result.ok, result.first_failure
    claims = [row["privacy"]["epsilon"] for row in rows]
    assert [replayed for _, replayed in result.epsilons] == pytest.approx(claims, rel=1e-12)
    notes = [note for note in result.notes if "ring unit" in note]
    assert len(notes) == 1, result.notes
    note = notes[0]
    scale = rows[0]["dp"]["ddg"]["scale"]
    clip = rows[0]["dp"]["clip"]
    assert f"{scale * clip:.3g} <= 1 ring unit" in note
    assert "3 charged rows" in note and "refuse" in note
    assert "epsilon those parameters give" in note and "\n" not in note


@pytest.mark.parametrize("case", sorted(_OLD))
def test_the_same_scale_with_a_smaller_epsilon_still_fails(tmp_path: Path, case: str) -> None:
    rows = _old_rows(**_OLD[case])  # type: ignore[arg-type]
    honest = rows[1]["privacy"]["epsilon"]
    rows[1]["privacy"]["epsilon"] = honest * 0.9
    result = _verify(tmp_path / "tampered.sqlite", rows)
    failure = result.first_failure
    assert failure is not None and failure.startswith("row 2 (round 2): claims epsilon")
    assert "below the mechanism's" in failure


def test_a_forged_local_sigma_at_a_coarse_scale_still_fails(tmp_path: Path) -> None:
    """The recorded noise share is still checked against the parameters: a row that
    says its shares were drawn at sigma 5 where the coarse scale gives 1 fails."""
    rows = _old_rows(**_OLD["planned-unit-clip"])  # type: ignore[arg-type]
    for row in rows:
        row["dp"]["ddg"]["local_sigma"] = 5
    failure = _verify(tmp_path / "sigma.sqlite", rows).first_failure
    assert failure is not None and "local noise share of sigma 5" in failure


def test_a_coarse_scale_no_server_planned_fails(tmp_path: Path) -> None:
    """A given scale of 0.5 at clip 1 for 4 clients on 32 bits (planned: 3.06e8),
    its claims the ones its accountant gives: no server wrote it, and it flatters."""
    rows = _old_rows(**_GIVEN)  # type: ignore[arg-type]
    failure = _verify(tmp_path / "given.sqlite", rows).first_failure
    assert failure is not None and failure.startswith("row 1 (round 1): its privacy claims")
    assert "records a discrete Gaussian scale of 0.5, below the" in failure
    assert "its parameters plan" in failure


def test_a_scale_below_the_plan_flatters_and_fails(tmp_path: Path) -> None:
    """Not coarse at all, still no server's: 1000 expected clients at clip 1 on 32
    bits, the scale recorded at 1e-6 of the plan (a clipped update of 2.2 ring units),
    each share's std rounded up from 0.14 to 1 unit: the claim falls below the planned
    scale's."""
    planned = DistributedDiscreteGaussian(
        dimension=16, clip=1.0, noise_multiplier=Z, expected_clients=1000, bits=32
    )
    rows = _scaled_rows(planned, planned.scale * 1e-6)
    honest = _scaled_rows(planned, planned.scale)
    assert rows[-1]["privacy"]["epsilon"] < honest[-1]["privacy"]["epsilon"]
    assert _verify(tmp_path / "honest.sqlite", honest).ok
    failure = _verify(tmp_path / "below.sqlite", rows).first_failure
    assert failure is not None and "below the" in failure and "its parameters plan" in failure


def _scaled_rows(planned: DistributedDiscreteGaussian, scale: float) -> list[dict[str, Any]]:
    """Rows of ``planned``'s parameters at ``scale``, each claiming its accountant's
    epsilon (what a forger holding the key writes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        release = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=Z, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(N),
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=N,
        )
    assert isinstance(release, DistributedRelease)
    release.ddg = DistributedDiscreteGaussian(
        dimension=16, clip=1.0, noise_multiplier=Z, expected_clients=1000, bits=32, scale=scale
    )
    release.accountant = DiscreteGaussianAccountant(release.ddg, sample_rate=1.0, delta=DELTA)
    return distributed_rows(release, [4, 3, 4], NAMES, DELTA)


def test_a_ledger_at_a_scale_today_plans_has_no_such_note(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        release = mechanism_for(
            DPSettings(mechanism="distributed", noise_multiplier=Z, delta=DELTA),
            dimension=16,
            bits=32,
            sample_rate=1.0,
            expected_clients=float(N),
            corrupt_fraction=0.25,
            seed=b"s" * 16,
            population=N,
        )
    result = _verify(tmp_path / "today.sqlite", distributed_rows(release, [4, 4], NAMES, DELTA))
    assert result.ok, result.first_failure
    assert not [note for note in result.notes if "ring unit" in note]
