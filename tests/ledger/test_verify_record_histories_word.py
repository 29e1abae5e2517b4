"""``audit verify`` (and so ``audit report``) says that a record-level DP-SGD ledger's epsilon
rests on the branches' DP-SGD histories as the rows record them, with ``--config`` or
without.

Why: the replay recomputes each branch's epsilon from the (noise multiplier, sample
rate, steps) the row records for it, and the key holder writes the rows. A ledger of a
run at z = 1, re-signed with every branch's history at z = 5 (each report's epsilon
recomputed to match), VERIFIED at epsilon 0.1424 where the run spent 1.4514, against
the federation's config too (no config holds a branch's DP-SGD), and nothing in the
output said what the verdict took on trust, as it does for a central row's noise
multiplier without ``--config`` (tests/ledger/test_verify_noise_multiplier_config.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _ledgers import branch_report, record_dpsgd_row, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accountants import RecordLevelAccountant
from secagg.ledger import export_public_key
from secagg.ledger.verify import ExpectedPrivacy, verify_ledger

DELTA = 1e-5
BRANCHES = ("a" * 64, "b" * 64)
#: the federation's config as ``--config`` gives it: record-level DP-SGD, 2 branches
CONFIG = ExpectedPrivacy(
    delta=DELTA,
    unit="record",
    mechanism="dpsgd",
    sampling_kind="poisson",
    sample_rate=1.0,
    population=2,
    noise_multiplier=1.0,
    clip=1.0,
)


def _rows(z: float) -> list[dict[str, Any]]:
    """Three rounds of both branches at DP-SGD noise multiplier ``z`` (rate 0.01, 100
    steps a round), each report's epsilon the one its history gives: what a key holder
    who rewrote the histories would sign."""
    rows = []
    for number in range(1, 4):
        history = [(z, 0.01, 100 * number)]
        epsilon = RecordLevelAccountant("rdp", DELTA, history).epsilon()
        reports = {b: branch_report(history, epsilon, delta=DELTA) for b in BRANCHES}
        row = record_dpsgd_row(number, list(BRANCHES), reports, delta=DELTA, population=2)
        rows.append(row | {"federation": "test"})
    return rows


@pytest.fixture(scope="module")
def forged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, Path]:
    """The run at z = 1 re-signed as z = 5, and the key that verifies it."""
    tmp = tmp_path_factory.mktemp("histories")
    path, key = write_ledger(tmp / "forged.ledger", _rows(5.0))
    return path, key.public_key, export_public_key(key.public_key, tmp / "forged.pub")


def test_the_forged_histories_verify_with_a_smaller_epsilon(
    forged: tuple[Path, bytes, Path], tmp_path: Path
) -> None:
    """The limit itself (nothing in a ledger shows the noise a branch drew), and the
    figures the docstring and docs/audit.md quote."""
    path, public_key, _ = forged
    honest_path, honest_key = write_ledger(tmp_path / "honest.ledger", _rows(1.0))
    honest = verify_ledger(honest_path, honest_key.public_key, expected=CONFIG)
    result = verify_ledger(path, public_key, expected=CONFIG)
    assert honest.ok and result.ok and result.private
    assert round(honest.epsilons[-1][1], 4) == 1.4514
    assert round(result.epsilons[-1][1], 4) == 0.1424


@pytest.mark.parametrize("expected", [None, CONFIG], ids=["no config", "config"])
def test_the_verdict_says_the_histories_are_the_ledgers_word(
    forged: tuple[Path, bytes, Path], expected: ExpectedPrivacy | None
) -> None:
    path, public_key, _ = forged
    said = verify_ledger(path, public_key, expected=expected).ledgers_word()
    (line,) = [x for x in said if "DP-SGD histories" in x]
    assert "of the 2 branches the rows report, replayed as recorded" in line
    assert "no --config holds them" in line


def test_the_cli_prints_it(forged: tuple[Path, bytes, Path]) -> None:
    """Text and --json (``audit report`` prints every ledgers_word line: the central
    case in tests/ledger/test_verify_noise_multiplier_config.py; a report costs seconds)."""
    path, _, pub = forged
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pub)])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("on the ledger's word:")]
    assert "the DP-SGD histories" in line
    result = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", str(pub), "--json"]
    )
    (said,) = json.loads(result.stdout)["on_the_ledgers_word"]
    assert said.startswith("the DP-SGD histories")


def test_a_central_ledger_under_its_config_still_says_nothing(tmp_path: Path) -> None:
    """The line is the record-level histories' only: a central ledger held to --config
    takes nothing on the ledger's word (as before)."""
    from _ledgers import central_client_rows

    rows, _ = central_client_rows([("a", "b"), ("a", "c")], 1.5, DELTA)
    path, key = write_ledger(tmp_path / "c.ledger", rows)
    config = ExpectedPrivacy(
        delta=DELTA,
        unit="client",
        mechanism="central",
        sampling_kind="poisson",
        sample_rate=0.5,
        population=4,
        noise_multiplier=1.5,
        clip=1.0,
    )
    result = verify_ledger(path, key.public_key, expected=config)
    assert result.ok and result.ledgers_word() == []
