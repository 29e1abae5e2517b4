"""The privacy ledger: every kind of tampering is named, a crash leaves it valid."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.dp.accounting import PrivacyAccountant
from secagg.errors import ConfigurationError
from secagg.ledger import Ledger, LedgerKey, export_public_key, load_public_key, verify_ledger
from secagg.ledger.chain import read_chain

Z, Q, DELTA = 1.1, 0.5, 1e-5


def _entries(rounds: int = 5) -> list[dict]:
    """Rows as the server writes them, with a true cumulative epsilon (central DP)."""
    accountant = PrivacyAccountant(DELTA, "pld", unit="client")
    entries, eps, model = [], None, 0
    for number in range(1, rounds + 1):
        status = "aborted" if number == 3 else "complete"
        if status == "complete":  # an aborted round leaves the model (and epsilon) as it was
            accountant.step(Z, Q)
            eps, model = accountant.epsilon(), number
        entries.append(
            {
                "version": 1,
                "round": number,
                "status": status,
                "reason": None,
                "participants": {"count": 8, "identity_hashes": "withheld"},
                "contributed": 7,
                "dropouts": {"share_keys": 1},
                "backend": {"name": "secagg+"},
                "dp": {
                    "unit": "client",
                    "mechanism": "central",
                    "clip": 1.0,
                    "noise_multiplier": Z,
                    "noise_std": Z,
                    "sample_rate": Q,
                    "accountant": "pld",
                    "delta": DELTA,
                },
                "privacy": {"epsilon": eps, "delta": DELTA},
                "model_sha256": f"{model:064x}",
            }
        )
    return entries


@pytest.fixture
def ledger_file(tmp_path: Path) -> tuple[Path, LedgerKey]:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    for entry in _entries():
        ledger.append(entry)
    ledger.close()
    return path, key


def _edit(path: Path, *statements: str, params: tuple = ()) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement, params if "?" in statement else ())
    db.commit()
    db.close()


def test_an_untouched_ledger_verifies_and_replays_its_epsilon(
    ledger_file: tuple[Path, LedgerKey],
) -> None:
    path, key = ledger_file
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert len(result.chain.rows) == 5
    assert result.epsilons[2][1] == result.epsilons[1][1]  # the aborted round cost nothing
    assert result.epsilons[-1][1] == pytest.approx(_entries()[-1]["privacy"]["epsilon"])


def _entry_of(path: Path, seq: int) -> dict:
    db = sqlite3.connect(path)
    (text,) = db.execute("SELECT entry FROM ledger WHERE seq = ?", (seq,)).fetchone()
    db.close()
    return json.loads(text)


def test_changing_a_value_is_named(ledger_file: tuple[Path, LedgerKey]) -> None:
    path, key = ledger_file
    entry = _entry_of(path, 2)
    entry["contributed"] = 8
    text = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    _edit(path, "UPDATE ledger SET entry = ? WHERE seq = 2", params=(text,))
    result = verify_ledger(path, key.public_key)
    assert not result.ok and "row 2" in result.first_failure and "edited" in result.first_failure


def test_deleting_a_row_is_named(ledger_file: tuple[Path, LedgerKey]) -> None:
    path, key = ledger_file
    _edit(path, "DELETE FROM ledger WHERE seq = 3")
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and "row 3" in failure and "deleted" in failure


def test_inserting_a_row_is_named(ledger_file: tuple[Path, LedgerKey], tmp_path: Path) -> None:
    path, key = ledger_file
    for seq in (5, 4, 3):  # shift rows 3..5 up to make room, keeping contents
        _edit(path, f"UPDATE ledger SET seq = {seq + 1} WHERE seq = {seq}")
    db = sqlite3.connect(path)
    select = "SELECT entry, prev_hash, hash, signature FROM ledger WHERE seq = 2"
    row = db.execute(select).fetchone()
    db.execute("INSERT INTO ledger VALUES (3, ?, ?, ?, ?)", row)  # a copied, validly signed row
    db.commit()
    db.close()
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and "row 3" in failure
    assert "inserted" in failure


def test_swapping_rows_is_named(ledger_file: tuple[Path, LedgerKey]) -> None:
    path, key = ledger_file
    db = sqlite3.connect(path)
    a = db.execute("SELECT entry, prev_hash, hash, signature FROM ledger WHERE seq = 2").fetchone()
    b = db.execute("SELECT entry, prev_hash, hash, signature FROM ledger WHERE seq = 4").fetchone()
    update = "UPDATE ledger SET entry = ?, prev_hash = ?, hash = ?, signature = ? WHERE seq = ?"
    db.execute(update, (*b, 2))
    db.execute(update, (*a, 4))
    db.commit()
    db.close()
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and "row 2" in failure and "reordered" in failure


def test_truncating_is_named(ledger_file: tuple[Path, LedgerKey]) -> None:
    path, key = ledger_file
    _edit(path, "DELETE FROM ledger WHERE seq >= 4")
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and "truncated" in failure
    _edit(path, "DELETE FROM ledger_head")
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and "head" in failure and "truncated" in failure


def test_re_signing_with_another_key_is_named(
    ledger_file: tuple[Path, LedgerKey], tmp_path: Path
) -> None:
    path, key = ledger_file
    forged = tmp_path / "forged.sqlite"  # a whole ledger rebuilt and signed by another key
    other = Ledger(forged, LedgerKey.generate())
    for entry in _entries():
        other.append(entry)
    other.close()
    failure = verify_ledger(forged, key.public_key).first_failure
    assert failure is not None and "another public key" in failure
    # rows re-signed in place (the embedded key kept): the signatures fail
    impostor = LedgerKey.generate()
    db = sqlite3.connect(path)
    (digest,) = db.execute("SELECT hash FROM ledger WHERE seq = 2").fetchone()
    signature = impostor.signing.sign(bytes.fromhex(digest)).hex()
    db.execute("UPDATE ledger SET signature = ? WHERE seq = 2", (signature,))
    db.commit()
    db.close()
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and "row 2" in failure and "signature" in failure


def test_an_epsilon_claim_that_does_not_follow_is_named(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    entries = _entries()
    entries[3]["privacy"]["epsilon"] *= 0.8  # understated, but validly signed by the operator
    for entry in entries:
        ledger.append(entry)
    ledger.close()
    result = verify_ledger(path, key.public_key)
    assert read_chain(path, key.public_key).ok  # the chain is fine ...
    assert not result.ok and "row 4" in result.first_failure  # ... the claim is not
    assert "claims epsilon" in result.first_failure


def test_cli_verify_exits_non_zero_and_names_the_row(
    ledger_file: tuple[Path, LedgerKey], tmp_path: Path
) -> None:
    path, key = ledger_file
    pem = export_public_key(key.public_key, tmp_path / "ledger.pub")
    assert load_public_key(pem) == key.public_key
    ok = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    # intact, but its rows claim amplification by sampling (central rows at q = 0.5 in the
    # format before 2026-12-03), which the engine no longer credits: not private (exit 3)
    assert ok.exit_code == 3 and "VERIFIED: 5 rows" in ok.output, ok.output
    assert "holds only with amplification by sampling" in ok.output
    _edit(path, "DELETE FROM ledger WHERE seq = 2")
    bad = CliRunner().invoke(main, ["audit", "verify", str(path), "--pubkey", str(pem)])
    assert bad.exit_code == 1 and "row 2" in bad.output
    report = CliRunner().invoke(main, ["audit", "report", str(path), "--out", str(tmp_path)])
    assert report.exit_code == 0
    assert "FAILED" in (tmp_path / "ledger-report.md").read_text()
    assert (tmp_path / "ledger-report.html").read_text().startswith("<!doctype html>")


_WRITER = """
import sys
from secagg.ledger import Ledger, LedgerKey
key = LedgerKey.load(sys.argv[2])
ledger = Ledger(sys.argv[1], key)
n = ledger.head()[0]  # a restarted writer goes on from its last round (verify checks order)
while True:
    n += 1
    ledger.append({"version": 1, "round": n, "status": "aborted", "reason": "x" * 5000,
                   "privacy": {}, "participants": {"count": 0}, "contributed": 0,
                   "model_sha256": "0" * 64})
"""


def test_a_writer_killed_mid_append_leaves_a_ledger_that_verifies(tmp_path: Path) -> None:
    key_path = tmp_path / "ledger.key"
    key = LedgerKey.generate()
    key.save(key_path)
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    path = tmp_path / "ledger.sqlite"
    counts: list[int] = []
    for attempt in range(6):
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(key_path)])
        # a wait on the writer's progress, not a fixed sleep: on a busy machine its start
        # (interpreter, imports, key) can take longer than the second it was once given
        deadline = time.monotonic() + 120
        while _appended(path) <= (counts[-1] if counts else 0):
            assert writer.poll() is None, f"the writer exited with {writer.returncode}"
            assert time.monotonic() < deadline, "the writer appended nothing in 120 s"
            time.sleep(0.01)
        time.sleep(0.03 * attempt)  # somewhere inside a later append, at varying points
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        result = verify_ledger(path, key.public_key)
        assert result.ok, result.first_failure
        counts.append(len(result.chain.rows))
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0  # it grew, and stayed valid


def _appended(path: Path) -> int:
    """How many rows the ledger at ``path`` holds now (0 before its table exists)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return int(db.execute("SELECT count(*) FROM ledger").fetchone()[0])
    except sqlite3.Error:  # not created yet, or busy for a moment: ask again
        return 0


def _record_entry(number: int, reports: dict[str, dict]) -> dict:
    return {
        "version": 1,  # no noise_seeded
        "round": number,
        "status": "complete",
        "participants": {"count": 2},
        "contributed": len(reports),  # a branch that sent no report did not contribute
        "dropouts": {},
        "backend": {"name": "secagg+"},
        "dp": {
            "unit": "record",
            "mechanism": "dpsgd",
            "clip": 5.0,
            "sample_rate": 1.0,
            "accountant": "in-clients",
            "delta": 1e-5,
            "client_reports": reports,
        },
        "privacy": {"epsilon": max(r["epsilon"] for r in reports.values()), "delta": 1e-5},
        "model_sha256": "0" * 64,
    }


def _report(steps: int, z: float = 1.0, q: float = 0.02) -> dict:
    from opacus.accountants import create_accountant

    accountant = create_accountant(mechanism="prv")
    accountant.history = [(z, q, steps)]
    eps = float(accountant.get_epsilon(delta=1e-5))
    return {"accountant": "prv", "delta": 1e-5, "history": [[z, q, steps]], "epsilon": eps}


def test_record_level_claims_replay_from_the_branches_dp_sgd_histories(tmp_path: Path) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    ledger.append(_record_entry(1, {"a": _report(100), "b": _report(300)}))
    second = _record_entry(2, {"a": _report(200)})  # b absent: its 300 steps still count
    second["privacy"]["epsilon"] = _report(300)["epsilon"]
    ledger.append(second)
    ledger.close()
    result = verify_ledger(path, key.public_key)
    assert result.ok, result.first_failure
    assert result.epsilons[-1][1] == pytest.approx(_report(300)["epsilon"])
    # a branch understating its epsilon is caught even though the operator signed the row
    bad = tmp_path / "bad.sqlite"
    ledger = Ledger(bad, key)
    lying = _report(400) | {"epsilon": _report(100)["epsilon"]}
    ledger.append(_record_entry(1, {"a": _report(100), "b": lying}))
    ledger.close()
    failure = verify_ledger(bad, key.public_key).first_failure
    assert failure is not None and "row 1" in failure and "DP-SGD history" in failure


# --- key files ------------------------------------------------------------------------------

# A ledger key file and its .pub as LedgerKey.save wrote them before the key I/O moved to
# secagg.crypto.signing (private key bytes 00 01 .. 1f, salt bytes 64 65 .. 83).
OLD_KEY_FILE = (
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n"
    b"-----END PRIVATE KEY-----\n"
    b"salt:6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283\n"
)
OLD_PUB_FILE = (
    b"-----BEGIN PUBLIC KEY-----\n"
    b"MCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n"
    b"-----END PUBLIC KEY-----\n"
)
OLD_PUBLIC = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
OLD_ALICE = "b4b21befa99c410b0c8dff5d76dfd36c7b8702019ab55df0a10ba6d7beed0bef"
OLD_SIGNATURE = (
    "e1a7fca94a835127885b99e2eba733d6ee5bf5dc463ed8385eb6f1dcaa1117c0"
    "f151750a10f46f5b3796a91203578f702c85c67c334b5689a516284d499f710f"
)


def test_key_files_written_by_the_old_code_load_and_are_rewritten_byte_identically(
    tmp_path: Path,
) -> None:
    (tmp_path / "old.key").write_bytes(OLD_KEY_FILE)
    (tmp_path / "old.key.pub").write_bytes(OLD_PUB_FILE)
    key = LedgerKey.load(tmp_path / "old.key")
    assert key.public_key.hex() == OLD_PUBLIC
    assert key.identity_hash("alice") == OLD_ALICE  # the salt came back too
    assert key.signing.sign(b"hello").hex() == OLD_SIGNATURE
    assert load_public_key(tmp_path / "old.key.pub").hex() == OLD_PUBLIC
    key.save(tmp_path / "new.key")
    assert (tmp_path / "new.key").read_bytes() == OLD_KEY_FILE
    assert (tmp_path / "new.key.pub").read_bytes() == OLD_PUB_FILE
    assert stat.S_IMODE((tmp_path / "new.key").stat().st_mode) == 0o600
    assert export_public_key(key.public_key, tmp_path / "x.pub").read_bytes() == OLD_PUB_FILE


def test_keys_written_the_old_way_with_pyca_still_load(tmp_path: Path) -> None:
    """The old writer, inlined: any Ed25519 key it saved loads with the same identity."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    salt = os.urandom(32)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "k").write_bytes(pem + b"salt:" + salt.hex().encode() + b"\n")
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "k.pub").write_bytes(public_pem)
    key = LedgerKey.load(tmp_path / "k")
    assert key.public_key == private.public_key().public_bytes_raw() and key.salt == salt
    assert load_public_key(tmp_path / "k.pub") == key.public_key
    ledger = Ledger(tmp_path / "l.sqlite", key)
    ledger.append(_entries(1)[0])
    ledger.close()
    assert read_chain(tmp_path / "l.sqlite", load_public_key(tmp_path / "k.pub")).ok


def test_unreadable_key_files_are_named(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem, _, _ = OLD_KEY_FILE.partition(b"salt:")
    cases = {
        "not-ed25519": other_pem + b"salt:" + b"00" * 32 + b"\n",
        "no-salt": pem,
        "short-salt": pem + b"salt:abcd\n",
        "garbage": b"garbage",
    }
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(ConfigurationError, match="cannot read the ledger key"):
            LedgerKey.load(tmp_path / name)
    with pytest.raises(ConfigurationError, match="cannot read the ledger key"):
        LedgerKey.load(tmp_path / "missing")
    public = other.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "ec.pub").write_bytes(public)
    for path in (tmp_path / "ec.pub", tmp_path / "garbage", tmp_path / "missing"):
        with pytest.raises(ConfigurationError, match="cannot read the public key"):
            load_public_key(path)


def test_the_ledger_reaches_cryptography_only_through_secagg_crypto() -> None:
    """The crypto fence: no module of secagg.ledger imports pyca/cryptography itself."""
    import secagg.ledger

    offenders = []
    for path in sorted(Path(secagg.ledger.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "cryptography"]
    assert offenders == []


# --- older heads in the files (security review L1) and head anchors ----------------------------


def _wal_size(path: Path) -> int:
    wal = Path(str(path) + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_each_append_empties_the_wal_with_secure_delete_on(tmp_path: Path) -> None:
    """The WAL held one copy of the head page per append: an older signed head each."""
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, LedgerKey.generate())
    assert ledger._db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for entry in _entries(3):
        ledger.append(entry)
        assert _wal_size(path) == 0
    ledger.close()


def test_a_reader_holding_a_snapshot_delays_the_checkpoint_but_not_the_append(
    tmp_path: Path,
) -> None:
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path, key)
    entries = _entries(4)
    ledger.append(entries[0])
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM ledger").fetchone()  # holds its snapshot
    started = time.monotonic()
    ledger.append(entries[1])
    ledger.append(entries[2])
    # not the 5 s busy timeout per append (a bound below one wait of it, not a speed test)
    assert time.monotonic() - started < 5.0
    assert _wal_size(path) > 0  # the reader's snapshot pins the WAL
    reader.execute("COMMIT")
    reader.close()
    ledger.append(entries[3])  # the next append's checkpoint catches up
    assert _wal_size(path) == 0
    ledger.close()
    assert verify_ledger(path, key.public_key).ok


def test_opening_a_ledger_folds_in_a_wal_left_behind(tmp_path: Path) -> None:
    """A WAL an older writer (or a crash) left, full of earlier heads, is emptied on open."""
    key = LedgerKey.generate()
    path = tmp_path / "ledger.sqlite"
    old_writer = sqlite3.connect(path, isolation_level=None)  # the old code's WAL writer
    old_writer.execute("PRAGMA journal_mode=WAL")
    old_writer.execute("PRAGMA wal_autocheckpoint=0")
    old_writer.execute("CREATE TABLE filler (x TEXT)")
    for n in range(5):
        old_writer.execute("INSERT INTO filler VALUES (?)", (str(n) * 100,))
    assert _wal_size(path) > 0
    ledger = Ledger(path, key)  # opened while the old connection still holds the file
    assert _wal_size(path) == 0
    old_writer.close()
    ledger.close()


def test_heads_parse_and_anchor_a_chain(ledger_file: tuple[Path, LedgerKey]) -> None:
    from secagg.ledger.chain import check_expected_head, format_head, parse_head

    path, key = ledger_file
    chain = read_chain(path, key.public_key)
    assert chain.head == format_head(5, chain.head_hash or "")
    assert parse_head(chain.head) == (5, chain.head_hash)
    assert parse_head((chain.head_hash or "").upper()) == (None, chain.head_hash)
    for bad in ("", "5:", "5:abc", "-1:" + "0" * 64, "five:" + "0" * 64):
        with pytest.raises(ConfigurationError):
            parse_head(bad)
    third = format_head(3, chain.rows[2].hash)
    assert check_expected_head(chain, third).grown_by == 2
    assert check_expected_head(chain, chain.head).ok
    assert not check_expected_head(chain, format_head(6, "0" * 64)).ok
    wrong_row = check_expected_head(chain, format_head(4, chain.rows[2].hash)).failure
    assert wrong_row is not None and "inconsistent" in wrong_row


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE ledger SET signature = upper(signature) WHERE seq = 2", "row 2"),
        ("UPDATE ledger SET signature = ' ' || signature WHERE seq = 4", "row 4"),
        ("UPDATE ledger_head SET signature = upper(signature)", "head"),
        ("UPDATE ledger_head SET signature = signature || char(10)", "head"),
    ],
)
def test_a_rewritten_signature_column_is_named_even_when_its_bytes_are_the_same(
    ledger_file: tuple[Path, LedgerKey], statement: str, named: str
) -> None:
    """Found by the tampering properties: ``bytes.fromhex`` reads upper case and spaces,
    so a rewritten signature column verified, and "verified" did not mean "unchanged"
    (hash columns were already compared as written)."""
    path, key = ledger_file
    assert verify_ledger(path, key.public_key).ok
    _edit(path, statement)
    failure = verify_ledger(path, key.public_key).first_failure
    assert failure is not None and named in failure and "edited" in failure
