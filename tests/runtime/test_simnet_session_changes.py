"""Every change of who the simulator's network reports connected is counted for the
server's waits (``wait_for_sessions``), whatever the sequence of events.

Why a property: the server's quorum wait and start wait sleep on the count until it
moves (they polled before, 2026-12-06). A path that changes ``connected()`` without
counting a change would leave a wait asleep until its timeout (minutes) with its quorum
already there, so every such path must count: a session opened, ended or closed, a
branch vanishing at its scheduled phase, a vanished branch back when its round ends.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.runtime.simnet import DropoutEvent, DropoutSchedule, SimulatedNetwork
from secagg.runtime.wire import RoundEnd, encode_message

NAMES = ("branch-a", "branch-b", "branch-c")

#: one event: what happens, and to which branch
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["connect", "close", "vanish", "round_end", "reappear"]),
        st.sampled_from(NAMES),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(events=EVENTS)
def test_every_change_of_connected_is_counted(events: list[tuple[str, str]]) -> None:
    network = SimulatedNetwork(DropoutSchedule(0.0, seed=1))
    sessions: dict[str, object] = {}
    seen = network.wait_for_sessions(None, 0.0)
    before = network.connected()
    for kind, name in events:
        if kind == "connect" and name not in sessions:  # a name is one session at a time
            sessions[name] = network.connect(name)
        elif kind == "close" and name in sessions:
            sessions.pop(name)
            network.disconnect(name)  # its session ends (a branch that stops)
        elif kind == "vanish":
            network._vanish(DropoutEvent(1, name, "advertise_keys"))
        elif kind == "round_end" and name in sessions:
            network.send(name, encode_message(RoundEnd(1, False, "")))  # back, if vanished
        elif kind == "reappear":
            network._reappear(name)
        now = network.wait_for_sessions(seen, 0.0)  # returns at once either way
        after = network.connected()
        if after != before:
            assert now != seen, f"{kind} {name}: connected() {before} -> {after}, not counted"
        seen, before = now, after
