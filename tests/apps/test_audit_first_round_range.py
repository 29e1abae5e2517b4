"""``audit verify`` / ``audit report --first-round`` past any round a federation runs: exit 2.

Why: ``secagg audit verify LEDGER --first-round 100000000000000000000000`` was taken and
the ledger then judged against it: ``FAILED: ... row 1 is round 1`` and exit 1, the
status of a ledger that does not verify, for what is a mistake in the flag (CLI review,
2026-12-06). No federation runs more than ``MAX_FEDERATION_ROUNDS`` (10^9) rounds (the
federation file and ``client --rounds`` stop there), so no ledger can begin past it: the
flag is now ranged 1 to 10^9, refused by click in one line naming it and its range.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.apps.commands.common import MAX_FEDERATION_ROUNDS
from secagg.ledger import export_public_key


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("first-round")
    rows, _ = central_client_rows([("a", "b"), ("a", "c")], 1.5, 1e-5)
    path, key = write_ledger(folder / "fed.ledger", rows)
    return path, export_public_key(key.public_key, folder / "ledger.pub")


@pytest.mark.parametrize("command", ["verify", "report"])
@pytest.mark.parametrize("value", [str(MAX_FEDERATION_ROUNDS + 1), "100000000000000000000000"])
def test_a_first_round_past_any_federation_is_a_usage_error(
    ledger: tuple[Path, Path], tmp_path: Path, command: str, value: str
) -> None:
    path, pub = ledger
    extra = ["--out", str(tmp_path / "out")] if command == "report" else []
    args = ["audit", command, str(path), "--pubkey", str(pub), "--first-round", value, *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "FAILED" not in result.output
    error = result.output.strip().splitlines()[-1]
    assert "--first-round" in error and f"1<=x<={MAX_FEDERATION_ROUNDS}" in error, error
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_the_largest_first_round_is_still_taken(ledger: tuple[Path, Path]) -> None:
    """At the bound the flag is read and the ledger judged by it (this one begins at 1)."""
    path, pub = ledger
    args = ["audit", "verify", str(path), "--pubkey", str(pub)]
    result = CliRunner().invoke(main, [*args, "--first-round", str(MAX_FEDERATION_ROUNDS)])
    assert result.exit_code == 1 and "FAILED" in result.output, result.output
