"""The server's per-message bookkeeping stays O(1) in the number of clients n.

Why: :meth:`Server.handle` once decided whether a phase was complete with
``not self.waiting_for``, a set difference ``expected - received`` of size O(n) on
every message, O(n^2) a round: 11 % of the server's CPU at n = 3000 (perf review).
It now compares the two sets' sizes. Timing tests would be flaky on a shared machine,
so these tests count work deterministically instead:

* ``waiting_for`` (the O(n) difference) is never computed while handling a message;
* no O(n) operation (difference, iteration, subset test, union ...) touches the
  phase's ``expected`` or ``received`` set while handling a message that does not
  close the phase (closing a phase may iterate them: once a phase, O(n) a round);
* the Python-level work of handling one message, counted in executed lines, is the
  same at n = 16 and n = 64 for a graph of the same degree.
"""

from __future__ import annotations

import functools
import gc
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
from _harness import SteppedRound

from secagg.protocol import Server, ServerPhase

#: set operations whose cost grows with the size of the set they are called on (or
#: with the other operand's, for the reflected ones). Not counted: membership, add,
#: len, ``==`` (which compares sizes first) and intersection (O(the smaller operand):
#: a share message meets its sender's neighbours, O(degree), with ``expected``).
_LINEAR_OPERATIONS = (
    "__sub__",
    "__rsub__",
    "difference",
    "difference_update",
    "__iter__",
    "issubset",
    "issuperset",
    "__le__",
    "__lt__",
    "__ge__",
    "__gt__",
    "__xor__",
    "__rxor__",
    "symmetric_difference",
    "__or__",
    "__ror__",
    "union",
    "copy",
)


class _Counter:
    """How many O(n) set operations ran, and which."""

    def __init__(self) -> None:
        self.calls: list[str] = []


def _counting(base: type, counter: _Counter) -> type:
    """A subclass of ``base`` (set or frozenset) that records its O(n) operations."""

    def wrap(name: str) -> Callable[..., Any]:
        original = getattr(base, name)

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            counter.calls.append(name)
            return original(self, *args, **kwargs)

        method.__name__ = name
        return method

    namespace: dict[str, Any] = {n: wrap(n) for n in _LINEAR_OPERATIONS if hasattr(base, n)}
    if base is frozenset:
        namespace["__hash__"] = frozenset.__hash__
    return type(f"Counting{base.__name__.title()}", (base,), namespace)


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Counter]:
    """Every phase's ``expected`` and ``received`` sets, as counting sets."""
    counter = _Counter()
    counting_frozenset = _counting(frozenset, counter)
    counting_set = _counting(set, counter)
    enter = Server._enter

    def counting_enter(self: Server, phase: ServerPhase, expected: frozenset[int]) -> None:
        enter(self, phase, expected)
        self._expected = counting_frozenset(expected)
        self._received = counting_set(self._received)

    monkeypatch.setattr(Server, "_enter", counting_enter)
    yield counter


Handle = Callable[[], list[Any]]


def _drive(r: SteppedRound, on_message: Callable[[Handle], list[Any]]) -> None:
    """Run the round to its end; ``on_message`` is given each client message as a
    call that hands it to the server, and returns what that call returned."""
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        out: list[Any] = []
        for reply in r.clients_reply():
            out.extend(on_message(functools.partial(r.server.handle, reply)))
        r.to_clients = out
    assert r.server.phase == ServerPhase.COMPLETE


@pytest.mark.parametrize("active", [False, True])
def test_waiting_for_is_not_computed_per_message(
    monkeypatch: pytest.MonkeyPatch, active: bool
) -> None:
    reads: list[ServerPhase] = []
    original = Server.waiting_for.fget
    assert original is not None

    def counted(self: Server) -> frozenset[int]:
        reads.append(self.phase)
        return original(self)

    monkeypatch.setattr(Server, "waiting_for", property(counted))
    r = SteppedRound(24, 8, graph="harary", k=10, threshold=8 if active else 4, active=active)
    handled = 0

    def on_message(handle: Handle) -> list[Any]:
        nonlocal handled
        handled += 1
        return handle()

    _drive(r, on_message)
    assert handled == 24 * (5 if active else 4)
    assert reads == []
    assert r.server.waiting_for == frozenset()  # the property still answers, on request


@pytest.mark.parametrize(("n", "active"), [(16, False), (64, False), (16, True)])
def test_no_linear_set_operation_while_a_phase_stays_open(
    counter: _Counter, n: int, active: bool
) -> None:
    r = SteppedRound(n, 8, graph="harary", k=10, threshold=8 if active else 4, active=active)
    per_message: list[tuple[str, list[str]]] = []
    closing: list[list[str]] = []

    def on_message(handle: Handle) -> list[Any]:
        phase = r.server.phase
        counter.calls.clear()
        out = handle()
        if r.server.phase == phase:
            per_message.append((phase.value, list(counter.calls)))
        else:
            closing.append(list(counter.calls))
        return out

    _drive(r, on_message)
    phases = 5 if active else 4
    assert len(per_message) == phases * (n - 1)
    assert len(closing) == phases
    assert [(phase, calls) for phase, calls in per_message if calls] == []
    # the closes do iterate (sorted responders): the counter sees what it should
    assert all(calls for calls in closing)


def _lines_per_message(n: int) -> dict[str, int]:
    """Python lines executed per handled message (the most in each phase), at n clients
    on a 10-regular graph: the content of a message depends on the degree, not on n."""
    r = SteppedRound(n, 8, graph="harary", k=10, threshold=4)
    most: dict[str, int] = {}

    def on_message(handle: Handle) -> list[Any]:
        phase = r.server.phase
        lines = 0

        def tracer(frame: FrameType, event: str, arg: object) -> Any:
            nonlocal lines
            if event == "line":
                lines += 1
            return tracer

        previous = sys.gettrace()
        sys.settrace(tracer)
        try:
            out = handle()
        finally:
            sys.settrace(previous)
        if r.server.phase == phase:  # a message that closed the phase did the close too
            most[phase.value] = max(most.get(phase.value, 0), lines)
        return out

    # no garbage collection during the count: a finaliser of some earlier test's object
    # (a __del__, a weakref callback) would run its lines inside a message's window
    gc.collect()
    collecting = gc.isenabled()
    gc.disable()
    try:
        _drive(r, on_message)
    finally:
        if collecting:
            gc.enable()
    return most


def test_the_work_per_message_does_not_grow_with_n() -> None:
    small, large = _lines_per_message(16), _lines_per_message(64)
    assert set(small) == {
        ServerPhase.ADVERTISE_KEYS.value,
        ServerPhase.SHARE_KEYS.value,
        ServerPhase.MASKED_INPUT.value,
        ServerPhase.UNMASKING.value,
    }
    assert large == small
