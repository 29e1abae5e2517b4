"""The auditor's copy of the ledger key's public half is written again when a crash left
it missing, torn or wrong (LedgerKey.restore_public_key_file, called at every start).

Found by tests/runtime/test_crash_points.py: a server killed between writing its ledger
key and writing ``<key>.pub`` (or half-way through the latter, while it was a plain
write) left no readable public key for ``secagg audit verify --pubkey``, and no start
wrote it again.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from secagg.ledger.chain import LedgerKey, load_public_key, public_key_path


@pytest.mark.parametrize("left", ["missing", "torn", "another key"])
def test_a_public_key_file_a_crash_left_wrong_is_written_again(tmp_path: Path, left: str) -> None:
    key_path = tmp_path / "state.sqlite.ledger-key"
    key = LedgerKey.generate()
    key.save(key_path)
    pub = public_key_path(key_path)
    whole = pub.read_bytes()
    if left == "missing":
        pub.unlink()
    elif left == "torn":
        pub.write_bytes(whole[: len(whole) // 2])
    else:
        LedgerKey.generate().save(tmp_path / "other")
        pub.write_bytes(public_key_path(tmp_path / "other").read_bytes())
    assert LedgerKey.load(key_path).restore_public_key_file(key_path) is True
    assert load_public_key(pub) == key.public_key
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert key.restore_public_key_file(key_path) is False  # right now: left alone
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
