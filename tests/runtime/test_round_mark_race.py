"""Two processes of one branch recording the same round at once over one state file.

:meth:`RoundMark.advance` reads the file again before it writes, but between that read
and the rename of the new file (a temporary file written and fsynced: milliseconds) a
second process of the branch read the same old mark, passed the same check and wrote:
a hostile server sending both the same round start at once had the branch train, and
spend record-level budget, twice for one round number (review, 2026-12-05). The read,
the check and the write are now one step under an exclusive lock beside the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _race import race_two_writes

import secagg.runtime.branch_state as bs
from secagg.runtime.branch_state import BranchStateError, RoundMark

NAME = "branch-00"


def test_two_processes_of_a_branch_taking_one_round_at_once_take_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "branch.state"
    first, second = RoundMark(state, NAME), RoundMark(state, NAME)  # both read "none yet"
    outcomes = race_two_writes(
        monkeypatch,
        bs,
        lambda: first.advance(5, "fed"),
        lambda: second.advance(5, "fed"),
        BranchStateError,
    )
    assert outcomes["first"] == "done"
    assert isinstance(outcomes["second"], BranchStateError), outcomes["second"]
    assert "another process of 'branch-00'" in str(outcomes["second"])
    assert second.last is None and RoundMark(state, NAME).last == 5
