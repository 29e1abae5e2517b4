"""A stop that lands in a round after the round was recorded whole (its state's row
finished and its ledger row appended: while its end goes out to the branches, or its
log line is written) leaves nothing for the next start to settle, and the server's
``ServerStopped`` says so.

Second review of helper-313's wording (2026-12-07): after any stop in round N the
message read "it settles round N first (recorded aborted, or its missing ledger row
rebuilt)". A Ctrl-C while round 1's end was sent to the branches came after round 1 was
``complete`` in the state and its row in the ledger: the next start aborts nothing and
rebuilds nothing, and the operator was told to expect one or the other (and, reading the
log of the next start, found neither). A stop before the round's records (its state
write, its ledger append) keeps the settling wording
(tests/runtime/test_round_stop_said_as_stop.py).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from _ledgered_federation import NAMES, RecordingHub, ledgered_config, start_branches
from _threads import BOUND

from secagg.ledger import LedgerKey
from secagg.ledger.verify import verify_ledger
from secagg.runtime.launch import build_server, open_server_state
from secagg.runtime.server import FederationServer, ServerStopped
from secagg.transport.waiting import StopAsked, ask_stop, forget_stop

#: where, in round 1 once it is recorded whole, the stop lands
WHERE = ("_broadcast", "_log_round")


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("recorded", [False, True], ids=["ctrl-c", "sigterm-recorded"])
def test_a_stop_after_the_round_was_recorded_says_nothing_is_left_to_settle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, recorded: bool
) -> None:
    """Before: "... it settles round 1 first (recorded aborted, or its missing ledger row
    rebuilt)" with round 1 complete in the state and its row in the ledger. Now the
    message says round 1 was recorded whole and a new start resumes after it; and so it
    does (round 1 untouched, nothing rebuilt)."""
    config = ledgered_config(tmp_path, rounds=2)
    hub = RecordingHub()
    parties = start_branches(hub, config)
    state = open_server_state(config, init=True)

    def stopped(*_args: object, **_kwargs: object) -> None:
        if recorded:
            ask_stop(signal.SIGTERM)  # as the CLI's handler does before it raises
            raise StopAsked(signal.SIGTERM)
        raise KeyboardInterrupt

    named = "SIGTERM" if recorded else "Ctrl-C (SIGINT)"
    try:
        with monkeypatch.context() as patched:
            patched.setattr(FederationServer, where, stopped)
            server = build_server(config, hub, state.store, ledger=state.ledger)
            with pytest.raises(KeyboardInterrupt):
                server.run(wait_for_clients=BOUND)
            forget_stop()  # as the CLI does once the stop is its line
            with pytest.raises(ServerStopped) as stopped_after:
                server.run_round()
        rounds = [(row["number"], row["status"]) for row in state.store.rounds()]
    finally:
        forget_stop()  # the record is the process's: no later test may inherit it
        state.close()
        for name in NAMES:
            hub.disconnect(name)
    for name, party in parties.items():
        assert party.done.wait(BOUND), f"{name} still runs"
    assert rounds == [(1, "complete")], "round 1 was not recorded before the stop: not the case"
    key = LedgerKey.load(Path(config.server.state + ".ledger-key"))
    audit = verify_ledger(Path(config.server.state + ".ledger"), key.public_key)
    assert audit.ok, audit.first_failure
    assert [row.entry["round"] for row in audit.chain.rows] == [1]
    message = str(stopped_after.value)
    assert message.startswith(f"this server was stopped by {named} in round 1"), message
    assert "settles round 1" not in message, message
    assert "after round 1 was recorded in its state and its ledger" in message, message
