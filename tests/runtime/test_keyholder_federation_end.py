"""The key holder federation helper ends its parties on the server's end, not on the clock.

Finding (test hygiene, 2026-12-06): tests/_keyholder_federation.py handed its tests the
parties' plain threads, and each test closed every session on the hub as soon as the
server returned. The hub drops what a closed session's inbox still holds, the
federation's end included, so a branch that had not yet read that end (a busy machine)
raised ``NotConnected`` in its thread after the test: a
``PytestUnhandledThreadExceptionWarning`` under load (5 of 15 runs of the three CKKS
charge tests warned), a failure the day warnings turn into errors.

Now :meth:`HolderFederation.end_announced` waits for every party to return on the end
the server announced before it closes a session, and records and asserts how each
ended: a failure (or an end the server never announced) fails the test that ended the
federation, where before it was a thread's traceback pytest only warned about. Here a
branch is held back from reading the federation's end until the server has returned,
the race the busy machine lost, made certain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from _keyholder_federation import HolderFederation, ckks_config, wrapped_holder_federation
from _threads import BOUND

from secagg.runtime.client import FederationClient
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import RoundEnd
from secagg.transport.inprocess import InProcessHub

pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

NAMES = ["b1", "b2", "b3"]
KEY_HOLDER = "compliance"
DIMENSION = 4
#: the branch held back after its round's end, until the server has returned
SLOW = "b2"


def _serve(party: FederationClient | KeyHolderService) -> object:
    return party.run(idle_timeout=BOUND)


def _run_with_a_slow_branch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run: Callable[[FederationClient | KeyHolderService], object] = _serve,
) -> tuple[threading.Event, HolderFederation]:
    """One CKKS round whose branch :data:`SLOW` reads the federation's end only once the
    returned event is set: the parties (started) and that event."""
    server_returned = threading.Event()
    take_round_end = FederationClient._end

    def slow_round_end(self: FederationClient, end: RoundEnd) -> None:
        take_round_end(self, end)
        if self.name == SLOW:  # the federation's end is queued behind this one
            assert server_returned.wait(BOUND), "the server never returned"

    monkeypatch.setattr(FederationClient, "_end", slow_round_end)
    config = ckks_config(NAMES, KEY_HOLDER, DIMENSION)
    hub = InProcessHub()
    _, parties = wrapped_holder_federation(
        config,
        hub,
        tmp_path / "keyholder.key",
        NAMES,
        KEY_HOLDER,
        DIMENSION,
        lambda session: session,
        run,
    )
    parties.start()
    store = ServerStore(tmp_path / "he.sqlite")
    try:
        (result,) = FederationServer(config, hub, store).run(wait_for_clients=BOUND, max_attempts=1)
    finally:
        store.close()
    assert result.status == "complete", result.reason
    return server_returned, parties


def test_a_branch_that_reads_the_end_late_still_takes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the test closed the sessions here, and the slow branch's next receive
    raised ``NotConnected`` in its thread; now every party returns on the server's end."""
    server_returned, parties = _run_with_a_slow_branch(tmp_path, monkeypatch)
    server_returned.set()
    parties.end_announced()
    for name, process in parties.processes.items():
        outcome = (
            process.stats.outcome if isinstance(process, FederationClient) else process.outcome
        )
        assert outcome == "finished", (name, outcome)


def test_a_party_that_fails_at_the_end_fails_the_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A party's failure is recorded and named by :meth:`end_announced`, never swallowed
    and never left to a thread's traceback."""

    def broken(party: FederationClient | KeyHolderService) -> object:
        stats = _serve(party)
        if party.name == SLOW:
            raise RuntimeError("this branch broke after the end")
        return stats

    server_returned, parties = _run_with_a_slow_branch(tmp_path, monkeypatch, broken)
    server_returned.set()
    with pytest.raises(AssertionError, match=r"a party failed .*'b2'.*this branch broke after"):
        parties.end_announced()
