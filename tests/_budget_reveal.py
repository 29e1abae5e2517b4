"""Shared set-up for the ``dp.epsilon_budget`` tests of distributed DP
(tests/runtime/test_budget_*.py): a masking session stopped at its reveal, a hub that
records which rounds sent an unmasking request, and branches without DP reports.

Why here: test_budget_fixed_count.py and test_budget_short_round.py (second review of
the budget path, 2026-12-07) each carried their own copy of these, alike to the line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from secagg.protocol import decode
from secagg.protocol.messages import UnmaskingRequest
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import Relay, decode_message
from secagg.transport.inprocess import InProcessHub


class SessionAtTheReveal:
    """A masking session whose unmasking requests are ready to leave, with ``inputs``
    masked inputs in the sum (all that ``_hold_at_budget`` asks of it)."""

    def __init__(self, inputs: int) -> None:
        self.inputs, self.done, self.aborted = inputs, False, None

    def contributors_before_reveal(self) -> int:
        return self.inputs

    def noise_at_reveal(self) -> float:
        return 0.0  # masking: the shares are the noise

    def abort(self, reason: str) -> list[object]:
        self.done, self.aborted = True, reason
        return ["abort messages"]


class UnmaskWatchingHub(InProcessHub):
    """Records the rounds the server sent an unmasking request in."""

    def __init__(self) -> None:
        super().__init__()
        self.unmasked_rounds: set[int] = set()

    def send(self, name: str, payload: bytes) -> None:
        message = decode_message(payload)
        if isinstance(message, Relay) and isinstance(decode(message.payload), UnmaskingRequest):
            self.unmasked_rounds.add(message.round)
        super().send(name, payload)


def start_clients(
    hub: InProcessHub,
    names: Sequence[str],
    endpoint_for: Callable[[str, Any], Any] | None = None,
) -> list[threading.Thread]:
    """Each of ``names`` a branch (a constant 0.1 update, every round until the
    federation ends, idle 120 s) in a started daemon thread; ``endpoint_for(name,
    endpoint)``, when given, wraps a branch's endpoint (a branch that misbehaves)."""
    threads = []
    for name in names:
        endpoint: Any = hub.connect(name)
        if endpoint_for is not None:
            endpoint = endpoint_for(name, endpoint)
        client = FederationClient(name, lambda m: np.full_like(m, 0.1), endpoint)
        thread = threading.Thread(
            target=client.run, kwargs={"idle_timeout": 120, "rounds": None}, daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads
