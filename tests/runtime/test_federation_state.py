"""A branch's state file records the federation its rounds belong to (``--state``).

Left alone by earlier work (docs/deployment.md: "a new federation needs a new state
file"): the file named no federation, so a branch that joined another federation with
the same file either refused its every round (its numbers were lower) or, worse, took
the rounds of a federation it never meant to join once their numbers passed the mark.
Now a start of another federation than the file records is refused (one line naming
the file and both names) before anything is trained or sent; version-1 files are read.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.branch_state import STATE_VERSION, BranchStateError, RoundMark
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import Leave, RoundStart, encode_message

D = 8
NAME = "branch-00"
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))


class _Branch:
    """One branch process over ``state``, counting its trainings."""

    def __init__(self, state: Path, federation: str | None = None) -> None:
        self.trained: list[int] = []
        self.outbox = SentMessages()
        policy = BranchPolicy(federation=federation)
        self.client = FederationClient(NAME, self._train, self.outbox, policy=policy, state=state)

    def _train(self, model: np.ndarray) -> np.ndarray:
        self.trained.append(1)
        return np.full_like(model, 0.1)

    def start(self, number: int, federation: str) -> None:
        start = RoundStart(number, 0, SPEC, np.zeros(D), 1.0, federation=federation)
        self.client.handle(encode_message(start))


def _content(state: Path) -> dict[str, object]:
    return json.loads(state.read_text())


def test_the_state_file_records_the_federation_of_the_rounds_it_started(tmp_path: Path) -> None:
    state = tmp_path / "branch.state"
    branch = _Branch(state)
    assert _content(state) == {
        "version": STATE_VERSION,
        "branch": NAME,
        "federation": None,
        "last_started": None,
    }
    branch.start(1, "bank-a")
    assert branch.trained == [1]
    assert _content(state) == {
        "version": 2,
        "branch": NAME,
        "federation": "bank-a",
        "last_started": 1,
    }
    assert RoundMark(state, NAME).federation == "bank-a"


@pytest.mark.parametrize("number", [1, 2, 9])
def test_a_start_of_another_federation_than_the_state_records_stops_the_branch(
    tmp_path: Path, number: int
) -> None:
    """Round 1 (below the mark), 2 (the next) or 9 (far above) of bank-b, to a restarted
    branch whose file holds bank-a's round 2: before, 1 and 2 were refused as replays of
    bank-a's rounds, and 9 was taken: the branch joined bank-b. Now each stops the
    branch, one line naming the file and both federations; nothing trained, the file
    unchanged, and a leave tells the server at once."""
    state = tmp_path / "branch.state"
    first = _Branch(state)
    first.start(2, "bank-a")
    before = state.read_bytes()
    again = _Branch(state)
    with pytest.raises(BranchStateError) as caught:
        again.start(number, "bank-b")
    message = str(caught.value)
    assert "\n" not in message and str(state) in message
    assert "'bank-a'" in message and "'bank-b'" in message and "new state file" in message
    assert again.trained == [] and state.read_bytes() == before
    assert again.outbox.sent == [Leave(number, "could not take part (BranchStateError)")]


def test_a_pin_other_than_the_state_files_federation_stops_the_branch_at_start(
    tmp_path: Path,
) -> None:
    state = tmp_path / "branch.state"
    _Branch(state).start(3, "bank-a")
    with pytest.raises(BranchStateError) as caught:
        _Branch(state, federation="bank-b")
    message = str(caught.value)
    assert "\n" not in message and str(state) in message
    assert "'bank-a'" in message and "'bank-b'" in message and "branch.federation" in message
    pinned = _Branch(state, federation="bank-a")  # its own federation: taken
    pinned.start(4, "bank-a")
    assert pinned.trained == [1]


def test_a_new_state_file_records_the_branchs_pin_at_once(tmp_path: Path) -> None:
    state = tmp_path / "branch.state"
    _Branch(state, federation="bank-a")
    assert _content(state)["federation"] == "bank-a"
    assert _content(state)["last_started"] is None


@pytest.mark.parametrize("pin", [None, "bank-a"])
def test_a_version_1_state_file_is_read_and_its_mark_kept(tmp_path: Path, pin: str | None) -> None:
    """A file written before the federation was recorded: its mark still refuses a
    replay, and the first round the branch takes names its federation in the file
    (version 2 from then on)."""
    state = tmp_path / "branch.state"
    state.write_text(json.dumps({"version": 1, "branch": NAME, "last_started": 5}))
    branch = _Branch(state, federation=pin)
    assert branch.client._started == 5
    branch.start(5, "bank-a")  # a replay of the mark: refused as before
    assert branch.trained == [] and branch.client.stats.refused_messages == 1
    assert _content(state)["version"] == 1  # nothing written for a refusal
    branch.start(6, "bank-a")
    assert branch.trained == [1]
    assert _content(state) == {
        "version": 2,
        "branch": NAME,
        "federation": "bank-a",
        "last_started": 6,
    }
    with pytest.raises(BranchStateError, match=r"'bank-a'.*'bank-b'"):
        _Branch(state).start(7, "bank-b")


def test_an_unreadable_state_says_in_one_line_what_to_do(tmp_path: Path) -> None:
    state = tmp_path / "branch.state"
    state.write_text(json.dumps({"version": 4, "branch": NAME, "last_started": 5}))
    with pytest.raises(BranchStateError) as caught:
        _Branch(state)
    message = str(caught.value)
    assert "\n" not in message and "version 1, 2 or 3" in message
    assert "restore the file" in message and "new state file" in message
