"""A small federation with a signed ledger, over the in-process transport: five
branches, SecAgg+, started as ``secagg server`` starts one
(:func:`~secagg.runtime.launch.open_server_state`, then
:func:`~secagg.runtime.launch.build_server`). Shared by the tests of the server's
ledger error paths."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _threads import Party

from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import ServerState, build_server
from secagg.runtime.server import FederationServer, RoundResult
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import FederationEnd, RoundStart, decode_message
from secagg.transport.inprocess import InProcessHub

DIMENSION = 8
NAMES = [f"branch-{i}" for i in range(5)]
#: generous: the clients only wait this long when a test stops the server on purpose
IDLE = 60.0


def ledgered_config(
    tmp_path: Path, rounds: int, *, dropout_fraction: float | None = None
) -> FederationConfig:
    """A federation of :data:`NAMES`, every branch sampled, its state in ``tmp_path``;
    ``dropout_fraction``: the backend's (None: its default, a whole-cohort threshold)."""
    backend: dict[str, Any] = {"name": "secagg+", "value_bound": 1.0}
    if dropout_fraction is not None:
        backend["dropout_fraction"] = dropout_fraction
    return FederationConfig.from_dict(
        {
            "federation": {
                "name": "ledgered",
                "clients": NAMES,
                "dimension": DIMENSION,
                "rounds": rounds,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": backend,
            "deadlines": {"phase_seconds": 60.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
        }
    )


def ledgered_server(
    config: FederationConfig,
    state: ServerState,
    observer: Callable[[RoundResult, np.ndarray], None] | None = None,
) -> FederationServer:
    """The server on ``state``, its branches already running in threads."""
    hub = InProcessHub()
    start_branches(hub, config)
    return build_server(config, hub, state.store, ledger=state.ledger, observer=observer)


def start_branches(
    hub: InProcessHub, config: FederationConfig, *, until_end: bool = False
) -> dict[str, Party]:
    """Connect the federation's branches to ``hub`` (or a subclass a test made), each
    running toward its own constant target in a :class:`Party` (a daemon thread that
    records how its run ended): for ``config.rounds`` rounds, or, ``until_end``, until
    the server announces the federation's end (a test whose rounds abort on purpose: an
    aborted round counts among a branch's rounds)."""
    parties = {}
    for i, name in enumerate(NAMES):
        target = np.full(DIMENSION, 0.01 * (i + 1))
        client = FederationClient(
            name, lambda m, t=target: t - m, hub.connect(name), policy=BranchPolicy()
        )
        rounds = None if until_end else config.rounds
        parties[name] = Party(lambda c=client, r=rounds: c.run(idle_timeout=IDLE, rounds=r))
    return parties


class RecordingHub(InProcessHub):
    """The in-process hub, recording every message the server sends (decoded), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, object]] = []

    def send(self, name: str, payload: bytes) -> None:
        self.sent.append((name, decode_message(payload)))
        super().send(name, payload)

    def send_to_session(self, name: str, session: int, parts: Sequence[bytes]) -> None:
        self.sent.append((name, decode_message(b"".join(parts))))
        super().send_to_session(name, session, parts)

    def round_started(self, number: int) -> bool:
        """Whether a start of round ``number`` went out."""
        return any(isinstance(m, RoundStart) and m.round == number for _, m in self.sent)

    def ends(self) -> list[FederationEnd]:
        """The federation ends sent, to whichever party."""
        return [m for _, m in self.sent if isinstance(m, FederationEnd)]


def ledger_path(config: FederationConfig) -> Path:
    """Where the server keeps the ledger of ``config``'s state."""
    return Path(config.server.state + ".ledger")


def stored_reports(config: FederationConfig) -> list[dict[str, Any]]:
    """Each round's report as the state holds it, read after the server closed it."""
    store = ServerStore(config.server.state, create=False)
    try:
        return [row["report"] for row in store.rounds()]
    finally:
        store.close()
