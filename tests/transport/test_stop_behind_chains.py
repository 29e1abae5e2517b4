""":func:`~secagg.transport.waiting.stop_behind` over any exception chain: it ends on
chains that loop (``__context__`` cycles, which re-raised exceptions make) and on very
long ones, and finds a stop exactly when one is reachable through ``__cause__`` or
``__context__``, a context hidden by ``raise ... from None`` included (a library that
turned a Ctrl-C into its own error and hid it is still stopped), a ``KeyboardInterrupt``
subclass included; the first stop recorded for the process counts over the chain's.

Second review of helper-313's ``stop_behind`` (2026-12-07): no fault found; pinned here
so that a change of the walk (a recursion, a walk that skips suppressed contexts) shows.
"""

from __future__ import annotations

import signal

from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.transport.waiting import StopAsked, ask_stop, forget_stop, stop_behind


class _LibraryInterrupt(KeyboardInterrupt):
    """A library's own KeyboardInterrupt subclass, with no signal of its own."""


#: an exception of the chain: what it is, and the signal stop_behind gives it (None: none)
_KINDS: dict[str, tuple[type[BaseException], int | None]] = {
    "value": (ValueError, None),
    "os": (OSError, None),
    "ctrl-c": (KeyboardInterrupt, signal.SIGINT),
    "subclass": (_LibraryInterrupt, signal.SIGINT),
}


def _make(kind: str) -> BaseException:
    if kind == "sigterm":
        return StopAsked(signal.SIGTERM)
    return _KINDS[kind][0]()


_LINK = st.tuples(
    st.integers(min_value=0, max_value=11),
    st.integers(min_value=0, max_value=11),
    st.booleans(),  # __cause__ (else __context__)
    st.booleans(),  # __suppress_context__
)


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from([*_KINDS, "sigterm"]), min_size=1, max_size=12),
    links=st.lists(_LINK, max_size=30),
)
def test_a_stop_is_found_exactly_when_the_chain_reaches_one(
    kinds: list[str], links: list[tuple[int, int, bool, bool]]
) -> None:
    """Random graphs of exceptions (cycles, hidden contexts, subclasses): a signal iff
    a KeyboardInterrupt is reachable from the first; SIGINT when only plain ones (or a
    subclass without a signal) are, SIGTERM when only StopAsked(SIGTERM) is."""
    made = [_make(kind) for kind in kinds]
    for source, target, cause, hidden in links:
        first, second = made[source % len(made)], made[target % len(made)]
        if cause:
            first.__cause__ = second
        else:
            first.__context__ = second
        first.__suppress_context__ = hidden
    reached: list[BaseException] = []
    pending = [made[0]]
    while pending:
        link = pending.pop()
        if any(link is seen for seen in reached):
            continue
        reached.append(link)
        pending.extend(x for x in (link.__cause__, link.__context__) if x is not None)
    signals = {
        link.signum if isinstance(link, StopAsked) else signal.SIGINT
        for link in reached
        if isinstance(link, KeyboardInterrupt)
    }
    found = stop_behind(made[0])
    if not signals:
        assert found is None
    else:
        assert found in signals


def test_a_very_long_chain_ends_and_finds_its_stop() -> None:
    """200 000 links (no recursion limit met), the interrupt at the far end."""
    head: BaseException = KeyboardInterrupt()
    for number in range(200_000):
        link = ValueError(number)
        link.__context__ = head
        head = link
    assert stop_behind(head) == signal.SIGINT


def test_the_first_stop_recorded_counts_over_the_chain() -> None:
    """A SIGTERM recorded, a Ctrl-C in the chain: SIGTERM (the command's line too)."""
    error = OSError("interrupted")
    error.__context__ = KeyboardInterrupt()
    try:
        ask_stop(signal.SIGTERM)
        assert stop_behind(error) == signal.SIGTERM
    finally:
        forget_stop()
    assert stop_behind(error) == signal.SIGINT
