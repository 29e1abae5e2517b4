"""A ledger embedding a public key of small order fails ``audit verify``, with its reason.

``read_chain`` verifies a ledger with the key embedded in it when the auditor gives none.
With the identity point as that key, the signature ``01 00..00 || 0^32`` verifies for
every message, so anyone could write a ledger (or rewrite one: new rows, new figures)
whose every row and head "verified". ``VerifyKey`` now refuses such a key
(tests/crypto/test_small_order_keys.py); the chain check reports it as the ledger's
failure, and ``secagg audit verify`` says so in one line instead of passing.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from secagg.apps.cli import main
from secagg.dp.accounting import PrivacyAccountant
from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.chain import read_chain
from secagg.ledger.entry import LedgerEntry

IDENTITY = bytes.fromhex("01" + "00" * 31)
ORDER_8 = bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
#: R the identity, S = 0: valid under the identity key for any message
FORGED = IDENTITY + bytes(32)
Z, DELTA = 2.0, 1e-5


def _rows(rounds: int) -> list[dict]:
    """Well-formed rows of central DP with their true cumulative epsilon: what an honest
    ledger holds, so that only the signatures stand between them and ``VERIFIED``."""
    accountant = PrivacyAccountant(DELTA, "rdp", unit="client")
    out = []
    for number in range(1, rounds + 1):
        accountant.step(Z, 1.0)
        entry = LedgerEntry(
            federation="test",
            round=number,
            status="complete",
            reason=None,
            started_at=None,
            finished_at=1.0e9 + number,
            backend={"name": "secagg+"},
            participants=("a", "b"),
            publish_participants=False,
            legacy_layout=True,
            contributed=2,
            dropouts={},
            dp={
                "unit": "client",
                "mechanism": "central",
                "clip": 1.0,
                "noise_multiplier": Z,
                "noise_std": Z,
                "sample_rate": 1.0,
                "accountant": "rdp",
                "delta": DELTA,
            },
            epsilon=accountant.epsilon(),
            delta=DELTA,
            model_sha256=f"{number:064x}",
        )
        out.append(entry.row(lambda name: name))
    return out


def _forged_ledger(path: Path, public_key: bytes, rows: int = 3) -> Path:
    """A ledger written by no key: every row and head "signed" with :data:`FORGED`."""
    forger = SimpleNamespace(
        sign=lambda message: FORGED, verify_key=SimpleNamespace(raw=public_key)
    )
    key = SimpleNamespace(signing=forger, public_key=public_key)
    ledger = Ledger(path, key)  # type: ignore[arg-type]
    for row in _rows(rows):
        ledger.append(row)
    return path


def test_a_ledger_whose_embedded_key_is_the_identity_fails_the_chain_check(
    tmp_path: Path,
) -> None:
    """Before: the forged ledger verified (3 rows, ok); now it fails on its key, no row
    taken as verified."""
    chain = read_chain(_forged_ledger(tmp_path / "forged.sqlite", IDENTITY))
    assert not chain.ok
    assert chain.rows == []
    assert chain.failure is not None
    assert chain.failure.startswith("the ledger's public key is unusable: ")
    assert "small order" in chain.failure


def test_a_ledger_whose_embedded_key_has_order_8_fails_the_chain_check(tmp_path: Path) -> None:
    """The other small-order keys too (its rows' signatures do not even verify: the key
    is refused before any is tried)."""
    chain = read_chain(_forged_ledger(tmp_path / "forged.sqlite", ORDER_8, rows=1))
    assert not chain.ok and chain.failure is not None and "small order" in chain.failure


def test_audit_verify_fails_a_forged_ledger_in_one_line(tmp_path: Path) -> None:
    path = _forged_ledger(tmp_path / "forged.sqlite", IDENTITY)
    result = CliRunner().invoke(main, ["audit", "verify", str(path)])
    assert result.exit_code == 1, result.output  # FAILED (before: 4, UNVERIFIED)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "public key is unusable" in line]
    assert len(lines) == 1, result.output
    assert "small order" in lines[0]


def test_audit_verify_with_a_small_order_pubkey_file_names_the_file(tmp_path: Path) -> None:
    """The auditor's own ``--pubkey`` holding the identity key (an operator handed it
    over): a one-line error naming the file. Before, the forged ledger was ``VERIFIED``."""
    path = _forged_ledger(tmp_path / "forged.sqlite", IDENTITY)
    pem = tmp_path / "identity.pub"
    pem.write_bytes(
        Ed25519PublicKey.from_public_bytes(IDENTITY).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    result = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    assert result.exit_code == 2, result.output  # usage: an unusable key (before: 0, VERIFIED)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert str(pem) in result.output and "small order" in result.output


def test_an_honest_ledger_is_unaffected(tmp_path: Path) -> None:
    """The refusal is of the key, not of a ledger's shape: a real key's ledger verifies."""
    ledger = Ledger(tmp_path / "honest.sqlite", LedgerKey.generate())
    for row in _rows(2):
        ledger.append(row)
    assert read_chain(tmp_path / "honest.sqlite").ok
