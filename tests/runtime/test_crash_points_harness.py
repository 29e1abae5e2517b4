"""The crash-point harness (tests/_crash_points.py) checks what its cases claim.

Why. The enumeration of tests/runtime/test_crash_points.py passes only if every case
crashed the write it names and every party ran to the federation's end; two things
could make a case pass, or fail, while saying something else:

* a party's thread that ended on a lost session (``NotConnected``) was taken for the
  server's process dying, whoever closed the session: a branch gone quietly while the
  server ran (its crash points then reached by no one, its rounds carried by the
  others) passed unseen. Now a lost session counts only once the harness stopped the
  parties (the server died); any other is a failure of the case, as is a party whose run
  returned before the federation's end;
* a crash is numbered per role (the server's k-th durable write), and the case named
  the clean run's k-th write: for a second crash during a restart's recovery the number
  is one of the crashed run's, and 78 of the 84 such writes of the central federation
  were named after another write (a failing line then pointed at the wrong code). Each
  case now carries the write it claims, its line names it, and a crash played at any
  other write (a run that numbered its writes otherwise) fails the case.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _crash_points import (
    CENTRAL,
    NAMES,
    Observed,
    ObservedHub,
    Point,
    Processes,
    Writes,
    describe,
    federation_config,
    recovery_writes,
    run_case,
)
from _threads import BOUND

pytestmark = pytest.mark.filterwarnings("ignore::secagg.dp.config.PrivacyCostWarning")


def _parties(tmp_path: Path) -> tuple[ObservedHub, Processes]:
    seen = Observed()
    hub = ObservedHub(seen)
    config = federation_config(tmp_path, CENTRAL)
    processes = Processes(config, hub, tmp_path, Writes(), seen, None)
    processes.start_all()
    return hub, processes


def test_a_party_that_loses_its_session_while_the_server_runs_fails_the_case(
    tmp_path: Path,
) -> None:
    hub, processes = _parties(tmp_path)
    hub.disconnect(NAMES[1])  # not the server dying: no stop() first
    processes.threads[1].join(BOUND)
    assert not processes.threads[1].is_alive()
    processes.stop(check=False)
    assert [str(failure) for failure in processes.failures] == [
        f"{NAMES[1]} lost its session while the server ran"
    ]
    with pytest.raises(AssertionError, match="a party failed: AssertionError: b2 lost"):
        processes.join()


def test_parties_stopped_with_the_dead_server_are_no_failure(tmp_path: Path) -> None:
    _, processes = _parties(tmp_path)
    processes.stop()  # raises on any failure
    assert processes.failures == []


def test_a_crash_at_another_write_than_the_one_claimed_fails_the_case(tmp_path: Path) -> None:
    claimed = {("server", 0): Point("server", "ledger commit", "state.sqlite.ledger", "open")}
    with pytest.raises(AssertionError, match="the crash hit another write"):
        run_case(tmp_path, CENTRAL, {("server", 0): "after"}, "case", claimed=claimed)


def test_a_crash_during_a_recovery_is_named_by_the_write_it_hits(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    first = {("server", 0): "before"}
    writes = run_case(tmp_path_factory.mktemp("first"), CENTRAL, first, "first")
    later = recovery_writes(writes)[0]
    recovering = writes.seen["server"][later]
    crashes = {**first, ("server", later): "before"}
    claimed = {("server", 0): writes.seen["server"][0], ("server", later): recovering}
    line = describe(crashes, claimed)
    assert line.endswith(f"server crashed before write {later} ({recovering})"), line
    # and the case runs to its end with both crashes at the writes it names
    again = run_case(tmp_path_factory.mktemp("again"), CENTRAL, crashes, line, claimed=claimed)
    assert again.hit == claimed
