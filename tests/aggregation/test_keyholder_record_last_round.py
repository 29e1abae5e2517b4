"""The key holder's decryption record keeps the last round it served, not every round.

Why: the refusal rules (:meth:`DecryptionRecord.check`) refuse every round number at or
below the last one decrypted, so no earlier round is ever consulted; kept whole, the
list grew by one a decryption and the whole file was rewritten (and re-read twice) for
each one, without end for a key holder with no ``max_decryptions`` (100 000 decryptions:
a 589 kB file and 70 ms a decryption). The file keeps its version and fields (a list of
one), so a file of an earlier release, which lists every round, is still read (as its
last) and one written now is still read by an earlier release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.aggregation.keyholder_policy import DecryptionRecord, RoundAlreadyServed

FEDERATION = "fed-a"

#: strictly increasing round numbers, as a key holder serves them
_served = st.lists(st.integers(0, 10**9), min_size=1, max_size=30, unique=True).map(sorted)


def _file(state: Path) -> dict[str, object]:
    return json.loads(state.read_text(encoding="utf-8"))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(served=_served, probe=st.integers(0, 10**9 + 1))
def test_the_file_holds_the_last_round_served_and_the_rules_are_those_of_the_whole_list(
    tmp_path_factory: pytest.TempPathFactory, served: list[int], probe: int
) -> None:
    state = tmp_path_factory.mktemp("record") / "state.json"
    record = DecryptionRecord(state, FEDERATION)
    for number in served:
        record.check(number, None)
        record.commit(number)
    assert _file(state) == {
        "version": 2,
        "federation": FEDERATION,
        "decryptions": len(served),
        "rounds": [served[-1]],  # one entry, however many were served
    }
    restarted = DecryptionRecord(state, FEDERATION)
    assert (restarted.rounds, restarted.decryptions) == ([served[-1]], len(served))
    # what the whole list refused is what the last round refuses: a round at or below it
    if probe <= served[-1]:
        with pytest.raises(RoundAlreadyServed):
            restarted.check(probe, None)
    else:
        restarted.check(probe, None)


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_listing_every_round_is_read_as_its_last_and_rewritten_so(
    tmp_path: Path, version: int
) -> None:
    state = tmp_path / "state.json"
    rounds = list(range(1, 1001))  # an earlier release's file: every round served
    document: dict[str, object] = {"version": version, "decryptions": 1000, "rounds": rounds}
    if version == 2:
        document["federation"] = FEDERATION
    state.write_text(json.dumps(document), encoding="utf-8")
    record = DecryptionRecord(state, FEDERATION)
    assert (record.rounds, record.decryptions) == ([1000], 1000)
    for old in (1, 500, 1000):  # still served: refused, as before
        with pytest.raises(RoundAlreadyServed, match="already decrypted round 1000"):
            record.check(old, None)
    record.check(1001, None)  # the file is in step with what was read from it
    record.commit(1001)
    assert _file(state) == {
        "version": 2,
        "federation": FEDERATION,
        "decryptions": 1001,
        "rounds": [1001],
    }
    with pytest.raises(RoundAlreadyServed):
        DecryptionRecord(state, FEDERATION).check(1001, None)


def test_a_file_written_now_is_what_an_earlier_release_reads(tmp_path: Path) -> None:
    """An earlier release checks the rounds are sorted, distinct integers and no more
    than the count: a list of one passes, so a key holder rolled back keeps its record."""
    state = tmp_path / "state.json"
    record = DecryptionRecord(state, FEDERATION)
    for number in (3, 8, 9):
        record.commit(number)
    rounds, count = _file(state)["rounds"], _file(state)["decryptions"]
    assert isinstance(rounds, list) and isinstance(count, int)
    assert rounds == sorted(set(rounds)) == [9] and count == 3 >= len(rounds)


def test_the_file_does_not_grow_with_the_decryptions(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    record = DecryptionRecord(state, FEDERATION)
    record.commit(100)
    first = state.stat().st_size
    for number in range(101, 400):
        record.commit(number)
    # 300 rounds in the size of one: only the count's two more digits
    assert state.stat().st_size == first + len("300") - len("1")
    assert record.rounds == [399] and record.decryptions == 300
