"""A crash at every durable write of the CKKS key holder (and of its server), enumerated.

The key holder keeps, beside its key, the record of the rounds it decrypted (what keeps
a round from being decrypted twice, on disk before a sum leaves) and the round its last
key request opened (what lets a restarted process decrypt that round). Each is written
atomically; this file kills the key holder's process at each of those writes of a
two-round CKKS federation under central DP (the key holder adds the noise), before,
after and torn, starts a fresh one over the same files, and runs the federation to its
end; then the same for every write of the server of that federation. The invariants are
tests/runtime/test_crash_points.py's (tests/_crash_points.py), plus: the key holder
answers no round's decryption twice, and a round it decrypted is charged even if the
server then died before storing it (its reveal noted first: the server has seen the
noised sum, the release).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _crash_points import CKKS_CENTRAL, KEY_FILE, enumerate_crashes, federation_config

from secagg.runtime.launch import make_key_holder_key

#: each case's config plans a costly federation on purpose (three branches): its
#: PrivacyCostWarning, hundreds of times, says nothing here
pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")


@pytest.mark.slow
@pytest.mark.parametrize("role", ["keyholder", "server"])
def test_every_key_holder_write_survives_a_crash_before_after_and_torn(
    tmp_path_factory: pytest.TempPathFactory, role: str
) -> None:
    """One run per (write, variant) of ``role``. Key holder: 5 writes (its record made,
    then per round its opened round and its decryption recorded), 15 cases. Server: 13
    writes (each round's reveal is noted before its decryption request leaves), 29
    cases; a second crash during each restart's recovery is
    test_crash_points.py's (the same server code: here it added 186 cases, all passing,
    and doubled the file's time)."""
    began = time.monotonic()
    made = tmp_path_factory.mktemp("key")
    pin = make_key_holder_key(federation_config(made, CKKS_CENTRAL), made / KEY_FILE)

    def prepare(folder: Path) -> bytes:
        shutil.copy2(made / KEY_FILE, folder / KEY_FILE)  # keyholder-init, done once
        return pin

    points, cases, failures = enumerate_crashes(
        tmp_path_factory.mktemp, CKKS_CENTRAL, (role,), prepare, crash_recoveries=False
    )
    print(f"ckks, {role}: {len(points[role])} durable writes")
    for k, point in enumerate(points[role]):
        print(f"  {k:2d} {point}")
    print(f"ckks, {role}: {cases} cases in {time.monotonic() - began:.1f} s")
    assert not failures, f"{len(failures)} of {cases} cases fail:\n" + "\n".join(failures)


class _Killed(BaseException):
    """The key holder's process dies here."""


def test_a_key_holder_killed_at_its_first_decryptions_record_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key holder that keeps no opened round on disk (a state file, no persistent key)
    writes its record first when it records its first decryption: killed there, before
    the record existed, it left its lock alone, and the next start refused for good
    ("a key holder opened or decrypted rounds over it"). Now the record is made before
    the lock, and a process killed while making it starts again with nothing served."""
    import secagg.aggregation.keyholder_policy as kp
    from secagg.aggregation.keyholder_policy import DecryptionRecord, lock_path

    record = tmp_path / "kh.state"

    def killed(*args: object, **kwargs: object) -> None:
        raise _Killed

    monkeypatch.setattr(kp, "write_json_atomically", killed)
    if hasattr(kp, "create_json_atomically"):
        monkeypatch.setattr(kp, "create_json_atomically", killed)
    with pytest.raises(_Killed):
        DecryptionRecord(record, "fed").commit(1)
    monkeypatch.undo()
    assert not record.exists() and not lock_path(record).exists()
    again = DecryptionRecord(record, "fed")  # the restarted process
    assert (again.rounds, again.decryptions) == ([], 0)
    again.commit(1)
    assert DecryptionRecord(record, "fed").rounds == [1]
