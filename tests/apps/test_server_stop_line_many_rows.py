"""``secagg server`` stopped after its start wrote many ledger rows says which rows in a
few words (``rounds 1 to 300``), not one number a row.

Second review of helper-313's stop-line head (2026-12-07): the stop's line named every
round whose row the start wrote, one by one ("wrote the ledger's row of rounds 1, 2, 3,
..., 299 and 300"). A federation runs up to 10^9 rounds (``federation.rounds``), and a
start that ran for days and was stopped by its service manager printed its one stop line
as tens or hundreds of kilobytes of round numbers, with the head an auditor must copy
at its far end. Consecutive rounds are now said as a range; a list of many scattered
rounds as their count and their first and last.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from _finished_federation import federation_toml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import secagg.runtime.launch
from secagg.apps.cli import main
from secagg.apps.commands.parties import _Terminated
from secagg.apps.commands.server import _rounds_named
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import open_server_state
from secagg.transport.waiting import ask_stop

#: rows the stopped start wrote: enough that one number a row is no line to read
ROWS = 300
#: the longest the stop's line may be: its fixed words, the head, and a few rounds
LONGEST_LINE = 600


def test_a_stop_after_many_rows_names_them_as_a_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the line named rounds 1 to 300 one by one (about 1.6 KB of numbers, and
    grows with the run). Now: "rounds 1 to 300", and the line stays short."""
    toml = federation_toml(tmp_path, 1, record_level=False)
    heads: list[str] = []

    def interrupted(config: FederationConfig, **_kwargs: object) -> None:
        state = open_server_state(config, init=True)
        try:
            for number in range(1, ROWS + 1):
                state.ledger.append({"round": number, "status": "complete"})
            heads.append(state.ledger.anchor())
        finally:
            state.close()
        ask_stop(signal.SIGTERM)  # as the command's SIGTERM handler does before it raises
        raise _Terminated(signal.SIGTERM)

    monkeypatch.setattr(secagg.runtime.launch, "serve", interrupted)
    result = CliRunner().invoke(main, ["server", "--config", str(toml), "--init", "--quiet"])
    assert result.exit_code == 143, result.output
    said = [line for line in result.stderr.splitlines() if line.startswith("secagg server:")]
    assert len(said) == 1, result.stderr
    assert (
        f"this start wrote the ledger's row of rounds 1 to {ROWS}: ledger head {heads[0]} "
        in (said[0])
    ), said[0]
    assert len(said[0]) <= LONGEST_LINE, f"{len(said[0])} characters: {said[0][:300]}..."


def test_few_rounds_are_named_as_before() -> None:
    """The short lists keep their wording (the finished federation's line uses it too)."""
    assert _rounds_named([3]) == "round 3"
    assert _rounds_named([2, 3]) == "rounds 2 and 3"
    assert _rounds_named([2, 3, 5]) == "rounds 2, 3 and 5"
    assert _rounds_named([1, 2, 3, 4, 9]) == "rounds 1 to 4 and 9"


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=400, unique=True))
def test_any_rounds_are_named_in_a_few_words_naming_the_first_and_last(
    numbers: list[int],
) -> None:
    """Whatever rounds (sorted, as the ledger holds them): a bounded phrase that names
    the first and the last."""
    numbers.sort()
    said = _rounds_named(numbers)
    assert len(said) <= 160, said
    assert str(numbers[0]) in said and str(numbers[-1]) in said, said
    if len(numbers) <= 3:
        assert all(str(n) in said for n in numbers), said
