"""The simulator's network: a branch that vanished in a round is back for the next one as
soon as the server ends the round, not when its thread gets round to reading that."""

from __future__ import annotations

from secagg.runtime.simnet import DropoutEvent, DropoutSchedule, SimulatedNetwork
from secagg.runtime.wire import FederationEnd, RoundEnd, encode_message


def test_a_vanished_branch_is_connected_again_when_the_server_ends_the_round() -> None:
    """Review of a run folder (2026-12-03): a branch that dropped in round 1 reappeared
    only when its thread read the RoundEnd; the server could sample round 2 before
    that, so the branch sat round 2 out on one run and not on the next (same seed)."""
    network = SimulatedNetwork(DropoutSchedule(0.5, seed=1))
    endpoints = {name: network.connect(name) for name in ("b1", "b2", "b3")}
    network._vanish(DropoutEvent(1, "b2", "advertise_keys"))
    assert network.connected() == {"b1", "b3"}
    # other server messages to the vanished branch leave it vanished (it is gone for
    # the rest of its round), malformed bytes too
    network.send("b2", encode_message(FederationEnd(1, False, "not yet")))
    network.send("b2", b"\x00not a message")
    assert "b2" not in network.connected()
    network.send("b2", encode_message(RoundEnd(1, False, "too few")))
    # at once, before the branch's endpoint has read anything
    assert network.connected() == {"b1", "b2", "b3"}
    assert [e.branch for e in network.dropouts] == ["b2"]  # the dropout stays recorded
    assert endpoints["b2"].receive(5.0) is not None  # its messages are still delivered


def test_a_round_end_to_a_branch_that_never_vanished_changes_nothing() -> None:
    network = SimulatedNetwork(DropoutSchedule(0.0, seed=1))
    for name in ("b1", "b2"):
        network.connect(name)
    network.send("b1", encode_message(RoundEnd(3, True)))
    assert network.connected() == {"b1", "b2"} and network.dropouts == []


def test_a_vanishing_branch_wakes_the_server_before_a_later_message() -> None:
    """A vanished branch sends nothing more, so the server noticed it only at its next
    receive timeout (the runtime polls every 0.5 s): up to half a second per dropout in
    every simulated federation. Now the vanish wakes the server's receive (None) ahead of
    anything sent after it, once per vanish."""
    network = SimulatedNetwork(DropoutSchedule(0.5, seed=1))
    network.connect("b1")
    other = network.connect("b2")
    network._vanish(DropoutEvent(1, "b1", "advertise_keys"))
    network._vanish(DropoutEvent(1, "b1", "advertise_keys"))  # already gone: no second wake
    other.send(b"later")
    assert network.receive(timeout=5.0) is None
    assert "b1" not in network.connected()
    assert network.receive(timeout=5.0) == ("b2", b"later")


def test_a_vanish_after_its_rounds_end_was_sent_hides_nothing() -> None:
    """Second review of the simulated network (2026-12-07): a branch that answers after
    the server ended its round (its phase closed at the deadline while it trained, or the
    round aborted) reached its scheduled vanish then, and was hidden from connected()
    until its thread read that round end: the server's draw for the next round left it
    out or not by thread timing (the same seed, different runs), where the Ray engine
    records such a vanish and hides nothing (``RayHub._remote_vanish``). Now the
    in-process network does as the Ray engine: recorded once, nothing hidden, no wake."""
    network = SimulatedNetwork(DropoutSchedule(0.5, seed=1))
    for name in ("b1", "b2"):
        network.connect(name)
    network.send("b2", encode_message(RoundEnd(1, False, "phase deadline passed")))
    woken = network.queued()
    network._vanish(DropoutEvent(1, "b2", "masked_input"))  # its late answer of round 1
    network._vanish(DropoutEvent(1, "b2", "masked_input"))  # and the one after it
    assert network.connected() == {"b1", "b2"}, "hidden from the next round's draw"
    assert network.queued() == woken  # nothing changed for the server to look at
    assert network.dropouts == [DropoutEvent(1, "b2", "masked_input")]  # recorded once
    # a vanish of a round whose end has not been sent hides the branch, as before
    network._vanish(DropoutEvent(2, "b2", "advertise_keys"))
    assert network.connected() == {"b1"}
    network.send("b2", encode_message(RoundEnd(2, False, "too few")))
    assert network.connected() == {"b1", "b2"}
