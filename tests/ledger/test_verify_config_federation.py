"""``audit verify --config`` holds every row to the config's federation name.

Before: the config tied the ledger to a federation by its DP figures only (delta, unit,
mechanism, sampling, noise, budget). Every row names its federation, but that name was
never compared, so another federation's ledger under the same figures (a rehearsal
run, or a federation begun afresh under another name) verified as the config's:
VERIFIED, exit 0, its epsilon reported as this federation's spend. Now such a row fails,
naming both federations; a ledger of the config's own federation verifies as before.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _ledgers import central_client_rows, write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.audit.cli import _expected
from secagg.apps.cli import main
from secagg.ledger import export_public_key
from secagg.ledger.verify import verify_ledger

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _ledger_and_config(tmp_path: Path, rows_name: str, config_name: str) -> tuple:
    rows, _ = central_client_rows(COHORTS, Z, DELTA)
    path, key = write_ledger(
        tmp_path / "l.ledger", [row | {"federation": rows_name} for row in rows]
    )
    config = write_central_config(
        tmp_path / "f.toml", name=config_name, clients=["a", "b", "c", "d"], rate=0.5, z=Z,
        delta=DELTA,
    )  # fmt: skip
    return path, key, config


@pytest.mark.parametrize(
    ("rows_name", "shown"),
    [
        ("rehearsal", "'rehearsal'"),
        ("Test", "'Test'"),
        # no config holds it: said so, its other characters as ?, so that it puts no
        # markdown into the report (tests/ledger/test_verify_federation_names.py)
        ("test ", "a name no config allows ('test ')"),
        ("**x**", "a name no config allows ('??x??')"),
    ],
)
def test_a_ledger_of_another_federation_fails_against_the_config(
    tmp_path: Path, rows_name: str, shown: str
) -> None:
    path, key, config = _ledger_and_config(tmp_path, rows_name, "test")
    result = verify_ledger(path, key.public_key, expected=_expected(str(config)))
    assert not result.ok
    assert f"names federation {shown} but the config is federation 'test'" in str(result.failure)
    assert "row 1 (round 1)" in str(result.failure)


def test_the_config_s_own_federation_verifies(tmp_path: Path) -> None:
    path, key, config = _ledger_and_config(tmp_path, "test", "test")
    result = verify_ledger(path, key.public_key, expected=_expected(str(config)))
    assert result.ok, result.failure


def test_the_command_line_exits_1_naming_both_federations(tmp_path: Path) -> None:
    path, key, config = _ledger_and_config(tmp_path, "rehearsal", "test")
    pub = str(export_public_key(key.public_key, tmp_path / "ledger.pub"))
    result = CliRunner().invoke(
        main, ["audit", "verify", str(path), "--pubkey", pub, "--config", str(config), "--json"]
    )
    assert result.exit_code == 1, result.output
    failure = json.loads(result.stdout)["first_failure"]
    assert "names federation 'rehearsal' but the config is federation 'test'" in failure
    # without --config nothing names the federation to hold the rows to: it verifies
    plain = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", pub])
    assert plain.exit_code == 0, plain.output
