"""The record-level mechanism's reader looks before each report's figure, so a stop
ends the replays it computes itself at the next report.

Review of fd0284ec (2026-12-07): once the background replays were stopped, the reader
(the server's thread) computed every cancelled one itself without looking at anything,
so a stop recorded meanwhile was noticed only after all of them.
:meth:`RecordRelease.look_between_replays` takes the caller's look (the server's
``raise_if_stop_asked``: this package imports no transport), called before each one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from _record_replays import DELTA, dpsgd_report, wrap_replays
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.dp.release import RecordRelease, RecordReport


class _Stopped(Exception):
    """What the test's look raises (the server's raises its stop)."""


@settings(max_examples=15, deadline=None)
@given(reports=st.integers(min_value=1, max_value=5), data=st.data())
def test_the_reader_computes_no_replay_after_the_look_that_raised(
    reports: int, data: st.DataObject
) -> None:
    """``reports`` restored reports, the background stopped (each one the reader's to
    compute); the look raises at its ``stop_at``-th call: exactly the replays before it
    ran, and the look's exception is the one raised."""
    stop_at = data.draw(st.integers(min_value=1, max_value=reports), label="stop_at")
    identities = [f"id{i}" for i in range(reports)]
    computed: list[RecordReport] = []
    looks: list[int] = []

    def look() -> None:
        looks.append(len(computed))
        if len(looks) == stop_at:
            raise _Stopped

    def counted(report: RecordReport, real: Callable[[RecordReport], float]) -> float:
        computed.append(report)
        return real(report)

    with pytest.MonkeyPatch.context() as patched:
        wrap_replays(patched, counted)
        mechanism = RecordRelease(clip=1.0, delta=DELTA, sample_rate=1.0)
        mechanism.stop_replays()  # every replay is the reader's
        mechanism.look_between_replays(look)
        mechanism.restore_reports(
            {
                identity: dpsgd_report([(1.0, 0.01, 100 * (i + 1))])
                for i, identity in enumerate(identities)
            }
        )
        mechanism.start_restored_replays()
        with pytest.raises(_Stopped):
            mechanism.ledger_claim(None)
    assert len(computed) == stop_at - 1
    assert looks == list(range(stop_at))  # one look before each report, none skipped
