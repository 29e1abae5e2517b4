"""``audit verify`` says what it took on the ledger's word (the recorded noise
multipliers) when no ``--config`` held them, and with one fails a row that records more
noise than the config runs.

Why: the replay takes each row's z as recorded. A key holder re-signing a run at z = 1.5
as z = 10 (and every claim recomputed at 10) VERIFIED, exit 0: without ``--config`` the
output never said the verdict rested on the recorded z, and with it the row was only a
``note:`` ("replayed with its own recorded value"). A row below the config's is still a
note: a restart under another config may lower it, and its replay spends more.
"""

from __future__ import annotations

import json
from pathlib import Path

from _ledgers import central_client_rows, write_central_config, write_ledger
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.ledger import export_public_key

Z, DELTA = 1.5, 1e-5
COHORTS = [("a", "b"), ("a", "c"), ("b", "c")]


def _ledger(tmp_path: Path, z: float) -> tuple[str, str]:
    rows, _ = central_client_rows(COHORTS, z, DELTA)
    path, key = write_ledger(tmp_path / f"z{z}.ledger", rows)
    return str(path), str(export_public_key(key.public_key, tmp_path / f"z{z}.pub"))


def _config(tmp_path: Path) -> str:
    clients = ["a", "b", "c", "d"]
    path = tmp_path / "f.toml"
    return str(write_central_config(path, name="test", clients=clients, rate=0.5, z=Z, delta=DELTA))


def _verify(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["audit", "verify", *args])
    return result.exit_code, result.stdout, result.stderr


def test_without_a_config_the_output_says_z_is_the_ledgers_word(tmp_path: Path) -> None:
    ledger, pub = _ledger(tmp_path, 10.0)
    status, out, err = _verify(ledger, "--pubkey", pub)
    assert status == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("on the ledger's word:")]
    assert "the noise multiplier 3 DP rows record, replayed as recorded" in line
    assert "--config" in line
    status, out, _ = _verify(ledger, "--pubkey", pub, "--json")
    (said,) = json.loads(out)["on_the_ledgers_word"]
    assert said.startswith("the noise multiplier 3 DP rows record")


def test_with_a_config_a_row_recording_more_noise_fails(tmp_path: Path) -> None:
    ledger, pub = _ledger(tmp_path, 10.0)
    status, out, err = _verify(ledger, "--pubkey", pub, "--config", _config(tmp_path))
    assert status == 1, out
    assert "row 1 (round 1): records noise multiplier 10.0, above the config's 1.5" in err


def test_with_a_config_the_noise_multiplier_is_held_and_said(tmp_path: Path) -> None:
    ledger, pub = _ledger(tmp_path, Z)
    config = _config(tmp_path)
    status, out, err = _verify(ledger, "--pubkey", pub, "--config", config)
    assert status == 0, err
    line = next(x for x in out.splitlines() if x.startswith(f"config {config}:"))
    assert line.endswith("none records a noise multiplier above its 1.5"), line
    assert "on the ledger's word" not in out
    status, out, _ = _verify(ledger, "--pubkey", pub, "--config", config, "--json")
    assert json.loads(out)["on_the_ledgers_word"] == []


def test_a_row_below_the_configs_noise_multiplier_is_a_note(tmp_path: Path) -> None:
    """A restart under a config with less noise than the one given: replayed as
    recorded (its epsilon is larger), noted, not failed."""
    ledger, pub = _ledger(tmp_path, 1.0)
    status, out, err = _verify(ledger, "--pubkey", pub, "--config", _config(tmp_path))
    assert status == 0, err
    assert "recorded noise multiplier 1.0 (config: 1.5)" in out


def test_the_report_says_it_too(tmp_path: Path) -> None:
    """``audit report`` prints the same line (an auditor may read only the report), and
    not when a config held the noise multipliers."""
    from secagg.apps.audit.cli import _expected
    from secagg.ledger import load_public_key
    from secagg.ledger.report import build_report

    ledger, pub = _ledger(tmp_path, Z)
    key = load_public_key(Path(pub))
    text, _ = build_report(Path(ledger), key)
    (line,) = [x for x in text.splitlines() if x.startswith("On the ledger's word:")]
    assert "the noise multiplier 3 DP rows record, replayed as recorded" in line
    text, _ = build_report(Path(ledger), key, _expected(_config(tmp_path)))
    assert "On the ledger's word" not in text
