"""``audit verify --config``'s note on rows whose z or clip differ from the config's stays one
short line.

Before: every adaptive-clipping row's clip (the clip the round applied, which moves
every round by design) was compared with the config's ``dp.clip`` (the initial clip),
so the note listed every clip the federation ever had: 4 191 characters on one line
after 200 rounds, growing by about 21 a round. Now an adaptive row's clip is compared
only where adaptive rows begin (the round that applies the initial clip), and any such
note lists at most 6 values and says how many distinct ones there were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from _ledgers import central_client_dp, ledger_row, write_ledger

from secagg.dp.accountants import PerClientAccountant
from secagg.dp.config import DPSettings
from secagg.dp.release import mechanism_for
from secagg.ledger.row_checks import ExpectedPrivacy
from secagg.ledger.verify import verify_ledger

DELTA = 1e-5
MEMBERS = ("a", "b", "c", "d")
#: every client every round, as the config below samples
_EVERYONE = {"kind": "poisson", "rate": 1.0, "population": 4, "seeded": False}


def _expected(*, clip: float, noise_multiplier: float = 1.0) -> ExpectedPrivacy:
    return ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=4,
        noise_multiplier=noise_multiplier,
        clip=clip,
    )


def _adaptive_rows(rounds: int, initial_clip: float) -> list[dict[str, Any]]:
    """Rows as a server with adaptive clipping writes them: every client under the clip
    every round, so the clip shrinks each round (to its floor)."""
    mechanism = mechanism_for(
        DPSettings(
            clip=initial_clip,
            noise_multiplier=1.0,
            delta=DELTA,
            adaptive_clip=True,
            count_noise_stddev=1.0,
        ),
        dimension=8,
        bits=32,
        sample_rate=1.0,
        expected_clients=4.0,
        corrupt_fraction=0.25,
        seed=b"s" * 16,
    )
    rows = []
    for number in range(1, rounds + 1):
        mechanism.begin_round(MEMBERS)
        total = np.zeros(9)
        total[-1] = 2.0  # four reports of +1/2: every client unclipped
        out = mechanism.release(total, contributors=4, participants=4, noise_added=0)
        dp = mechanism.ledger_block(out.store)
        dp["sampling"] = _EVERYONE
        rows.append(
            ledger_row(number, dp, out.epsilon, participants=MEMBERS, publish_participants=True)
        )
    return rows


def _verify(tmp_path: Path, rows: list[dict[str, Any]], expected: ExpectedPrivacy) -> list[str]:
    path, key = write_ledger(tmp_path / "l.ledger", rows)
    result = verify_ledger(path, key.public_key, expected=expected)
    assert result.ok, result.failure
    return result.notes


def test_an_adaptive_federation_s_moving_clip_is_no_parameter_note(tmp_path: Path) -> None:
    rows = _adaptive_rows(200, initial_clip=0.1)
    clips = {row["dp"]["clip"] for row in rows}
    assert len(clips) > 100  # the clip moved every round
    notes = _verify(tmp_path, rows, _expected(clip=0.1))
    assert [note for note in notes if "recorded clip" in note] == []


def test_an_adaptive_federation_begun_at_another_clip_is_noted_once(tmp_path: Path) -> None:
    notes = _verify(tmp_path, _adaptive_rows(50, initial_clip=0.1), _expected(clip=0.2))
    (note,) = [note for note in notes if "recorded clip" in note]
    assert note.startswith("1 round (first: round 1) recorded clip 0.1 (config: 0.2)")


def test_many_recorded_noise_multipliers_are_listed_in_one_short_line(tmp_path: Path) -> None:
    """Twenty restarts, each under another z (all below the config's: one above fails,
    tests/ledger/test_verify_noise_multiplier_config.py): each row replayed with its own."""
    accountant = PerClientAccountant(DELTA, "pld")
    rows = []
    for number in range(1, 21):
        z = 1.0 + number / 100
        accountant.step(z, MEMBERS)
        rows.append(
            ledger_row(
                number,
                central_client_dp(z, DELTA) | {"sampling": _EVERYONE},
                accountant.epsilon(),
                participants=MEMBERS,
                publish_participants=True,
            )
        )
    notes = _verify(tmp_path, rows, _expected(clip=1.0, noise_multiplier=2.0))
    (note,) = [note for note in notes if "recorded noise multiplier" in note]
    assert note.startswith(
        "20 rounds (first: round 1) recorded noise multiplier 1.01, 1.02, 1.03, 1.04, 1.05, "
        "1.06, ... (20 distinct values) (config: 2.0)"
    )
    assert len(note) < 250
