"""Two key holder processes committing the same round at once over one state file.

The record is read again before each commit (StateChanged), but between that read and
the rename of the new file (a temporary file written and fsynced: milliseconds) a second
process over the same file read the same old record, passed the same check and released
the same round: a hostile server sending both processes the round's decryption request
at once had it decrypted twice (review, 2026-12-05). The read, the check and the write
are now one step under an exclusive lock beside the file (``<state>.lock``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _race import race_two_writes

import secagg.aggregation.keyholder_policy as kp
from secagg.aggregation.keyholder_policy import DecryptionRecord, StateChanged


def test_two_processes_committing_one_round_at_once_release_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    first, second = DecryptionRecord(state), DecryptionRecord(state)  # both read "nothing yet"
    outcomes = race_two_writes(
        monkeypatch, kp, lambda: first.commit(1), lambda: second.commit(1), StateChanged
    )
    assert outcomes["first"] == "done"
    assert isinstance(outcomes["second"], StateChanged), outcomes["second"]
    assert DecryptionRecord(state).rounds == [1]  # one decryption on record, the first's
    assert second.decryptions == 0


def test_the_lock_file_is_the_owners_only_and_a_commit_without_a_folder_still_works(
    tmp_path: Path,
) -> None:
    state = tmp_path / "new" / "state.json"  # its folder is made, as the record's was
    record = DecryptionRecord(state)
    record.commit(3)
    lock = state.with_name(state.name + ".lock")
    assert lock.exists() and (lock.stat().st_mode & 0o777) == 0o600
    assert DecryptionRecord(state).rounds == [3]
