"""A branch's state file (``secagg client --state``) is read through one open: a named
pipe there, at start or swapped in while the branch runs, is a BranchStateError, never
a hang.

Why: the command line checks ``--state``, and :class:`RoundMark` read it again by path
(``read_text``), at start and before each round's write, so a file swapped for a named
pipe blocked the branch forever."""

from __future__ import annotations

import os
from pathlib import Path

from _fifo import in_thread, needs_fifos, swap_for_fifo

from secagg.runtime.branch_state import BranchStateError, RoundMark

pytestmark = needs_fifos


def test_a_named_pipe_at_start_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "b1.state"
    os.mkfifo(fifo)
    outcome = in_thread(lambda: RoundMark(fifo, "b1", "fed"), fifo)
    assert isinstance(outcome, BranchStateError), outcome
    assert "is a named pipe" in str(outcome)


def test_a_file_swapped_for_a_named_pipe_while_running_stops_the_branch(tmp_path: Path) -> None:
    path = tmp_path / "b1.state"
    mark = RoundMark(path, "b1", "fed")
    mark.advance(1, "fed")
    swap_for_fifo(path)
    outcome = in_thread(lambda: mark.advance(2, "fed"), path)
    assert isinstance(outcome, BranchStateError), outcome
    assert mark.last == 1  # nothing recorded


def test_a_state_file_past_its_bound_is_refused(tmp_path: Path) -> None:
    from secagg.runtime.branch_state import MAX_STATE_BYTES

    path = tmp_path / "b1.state"
    path.write_bytes(b" " * (MAX_STATE_BYTES + 1))
    outcome = in_thread(lambda: RoundMark(path, "b1", "fed"), path)
    assert isinstance(outcome, BranchStateError), outcome
    assert "is larger than 1024 KiB" in str(outcome)
