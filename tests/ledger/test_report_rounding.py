"""Every figure ``secagg audit report`` prints is rounded toward the safe side.

The per-round table printed the clip and the noise std with ``:.4g`` (to the nearest):
a clip of 1.23449 read 1.234, a smaller sensitivity than the noise was sized for, and a
noise std of 1.234606 read 1.235, more noise than was added. The sample rate column
printed the design rate where a row was charged at a higher ``charged_rate``. The
branch table printed noise multipliers, sample rates and the per-item clip with ``:g``
(to the nearest, 6 digits), and the budget line the config's budget the same way.
Now clip, sample rate and epsilon are rounded up, noise and the budget down, through
:func:`secagg.dp.display.shown`, and the rate shown is the one the epsilon was charged at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _ledgers import ledger_row, write_ledger

from secagg.dp.accountants import RecordLevelAccountant
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger.report import build_report
from secagg.ledger.verify import ExpectedPrivacy

DELTA = 1e-5
CLIP = 1.23449  # to the nearest at 4 digits: 1.234, below the sensitivity
Z = 1.0000943  # noise std Z * CLIP = 1.2346064...: to the nearest 1.235, above the noise


def _cells(text: str, first: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith(first))
    return [cell.strip() for cell in line.strip("|").split("|")]


def _central_rows(dp: dict[str, Any], rate: float, rounds: int = 2) -> list[dict]:
    accountant = PrivacyAccountant(DELTA, "rdp")
    rows = []
    for number in range(1, rounds + 1):
        accountant.step(dp["noise_multiplier"], rate)
        rows.append(ledger_row(number, dp, accountant.epsilon(), delta=DELTA))
    return rows


def _central_dp(**changes: Any) -> dict[str, Any]:
    return {
        "unit": "client",
        "mechanism": "central",
        "clip": CLIP,
        "noise_multiplier": Z,
        "noise_std": Z * CLIP,
        "sample_rate": 1.0,
        "accountant": "rdp",
        "delta": DELTA,
        "adjacency": "add/remove one client",
    } | changes


def test_the_round_table_rounds_clip_up_and_noise_down(tmp_path: Path) -> None:
    path, key = write_ledger(tmp_path / "l.sqlite", _central_rows(_central_dp(), 1.0))
    text, _ = build_report(path, key.public_key)
    assert "**VERIFIED**" in text
    header = _cells(text, "| round |")
    row = _cells(text, "| 1 | complete")
    clip, std = row[header.index("clip")], row[header.index("noise std")]
    assert float(clip) >= CLIP and clip == "1.235"
    assert float(std) <= Z * CLIP and std == "1.234"
    assert row[header.index("sample rate")] == "1"


def test_the_sample_rate_shown_is_the_rate_charged(tmp_path: Path) -> None:
    """A row accounted at ``charged_rate`` (its published cohort's share, above the
    design rate) shows that rate: its epsilon follows from it, not from q."""
    dp = _central_dp(
        noise_multiplier=2.0,
        noise_std=2.0 * CLIP,
        sample_rate=0.1,
        charged_rate=0.15,
        sampling={"kind": "poisson", "rate": 0.1, "population": 20, "seeded": False},
    )
    path, key = write_ledger(tmp_path / "l.sqlite", _central_rows(dp, 0.15))
    text, _ = build_report(path, key.public_key)
    header = _cells(text, "| round |")
    row = _cells(text, "| 1 | ")
    assert row[header.index("sample rate")] == "0.15"


def test_a_sample_rate_is_rounded_up(tmp_path: Path) -> None:
    q = 0.123456789  # raw it reads as stored; at 4 digits it must not read 0.1234
    dp = _central_dp(
        noise_multiplier=2.0,
        noise_std=2.0 * CLIP,
        sample_rate=q,
        sampling={"kind": "poisson", "rate": q, "population": 30, "seeded": False},
    )
    path, key = write_ledger(tmp_path / "l.sqlite", _central_rows(dp, q))
    text, _ = build_report(path, key.public_key)
    header = _cells(text, "| round |")
    assert _cells(text, "| 1 | ")[header.index("sample rate")] == "0.1235"


def test_the_branch_table_rounds_noise_down_and_rate_and_clip_up(tmp_path: Path) -> None:
    z, q, clip = 1.0123456789, 0.0234567123, 1.7654321  # :g read 1.01235, 0.0234567, 1.76543
    history = [(z, q, 50)]
    report = {
        "accountant": "rdp",
        "delta": DELTA,
        "history": [list(step) for step in history],
        "epsilon": RecordLevelAccountant("rdp", DELTA, history).epsilon(),
        "unit": "customer",
        "max_grad_norm": clip,
    }
    dp = {
        "unit": "record",
        "mechanism": "dpsgd",
        "clip": 5.0,
        "noise_multiplier": None,
        "noise_std": None,
        "sample_rate": 1.0,
        "accountant": "in-clients",
        "delta": DELTA,
        "adjacency": "add/remove one customer (all their rows) of a branch",
        "client_reports": {"a" * 64: report},
    }
    row = ledger_row(1, dp, report["epsilon"], delta=DELTA, participants=("a",), contributed=1)
    path, key = write_ledger(tmp_path / "l.sqlite", [row])
    text, _ = build_report(path, key.public_key)
    cells = _cells(text, f"| `{'a' * 12}…`")
    assert cells[4:8] == ["1.01234", "0.0234568", "50", "1.76544"]
    assert float(cells[4]) <= z and float(cells[5]) >= q and float(cells[7]) >= clip


def test_the_budget_is_rounded_down(tmp_path: Path) -> None:
    """A budget of 10.000051 read 10.0001 (to the nearest): more than the config allows."""
    path, key = write_ledger(tmp_path / "l.sqlite", _central_rows(_central_dp(), 1.0))
    expected = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=1.0,
        population=3,
        epsilon_budget=10.000051,
    )
    text, _ = build_report(path, key.public_key, expected)
    assert "of a budget of 10: within it" in text
