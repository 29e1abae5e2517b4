"""A CKKS federation of branches and a real key holder over the in-process hub, for the
runtime tests that break the key holder's link or its replies: the config, the key the
branches pin, the branches' training (each toward ``0.1 * (i + 1)``, so the round's mean
is 0.2) and the key holder's redial are the same in each, and only the break differs.

Import after ``pytest.importorskip("tenseal")``: the CKKS backend needs it."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from _threads import BOUND, Party

from secagg.aggregation.base import HelperSession
from secagg.aggregation.ckks import KeyHolderSession
from secagg.aggregation.policy import BranchPolicy
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import KeyHolderService
from secagg.runtime.launch import key_holder_service, make_key_holder_key
from secagg.transport.base import ClientEndpoint, NotConnected
from secagg.transport.inprocess import InProcessHub

Session = TypeVar("Session", bound=HelperSession)


def ckks_config(names: list[str], holder: str, dimension: int) -> FederationConfig:
    """One CKKS round of ``names`` decrypted by ``holder``, every deadline :data:`BOUND`."""
    return FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": names, "dimension": dimension, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": holder},
            "deadlines": {"phase_seconds": BOUND, "training_seconds": BOUND},
        }
    )


def central_dp_ckks_config(
    tmp_path: Path,
    *,
    name: str,
    names: list[str],
    holder: str,
    dimension: int,
    clip: float,
    noise_multiplier: float,
    delta: float,
) -> FederationConfig:
    """One CKKS round with central DP whose noise ``holder`` adds, its state (store and
    signed ledger) under ``tmp_path``."""
    return FederationConfig.from_dict(
        {
            "federation": {"name": name, "clients": names, "dimension": dimension, "rounds": 1},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": holder},
            "deadlines": {"phase_seconds": 30.0, "training_seconds": 30.0},
            "server": {"state": str(tmp_path / "state.sqlite")},
            "dp": {
                "clip": clip,
                "noise_multiplier": noise_multiplier,
                "delta": delta,
                "mechanism": "central",
            },
        }
    )


def branch_clients(
    hub: InProcessHub, names: list[str], dimension: int, policy: BranchPolicy
) -> list[FederationClient]:
    """The branches, branch ``i`` training toward ``0.1 * (i + 1)`` in every coordinate."""
    clients = []
    for i, name in enumerate(names):
        target = np.full(dimension, 0.1 * (i + 1))
        clients.append(
            FederationClient(
                name, lambda model, t=target: t - model, hub.connect(name), policy=policy
            )
        )
    return clients


@dataclass
class RedialingParties:
    """A key holder serving through its redials and the branches, each running in a
    :class:`Party`."""

    holder: KeyHolderService
    holder_party: Party
    branches: dict[str, Party]


def redialing_parties(
    config: FederationConfig,
    hub: InProcessHub,
    redials: queue.Queue[ClientEndpoint],
    key: Path,
    names: list[str],
    holder_name: str,
    dimension: int,
) -> RedialingParties:
    """Start a real key holder (its key written at ``key``), which serves first on the
    session it was made with and then on each session put in ``redials``, and one round
    of the branches, which pin that key."""
    pin = make_key_holder_key(config, key)
    holder = key_holder_service(config, hub.connect(holder_name), {"key": str(key)})
    dial = _redial(holder, redials)
    holder_party = Party(lambda: holder.serve(dial, idle_timeout=BOUND, give_up_after=BOUND))
    policy = BranchPolicy(key_holder_fingerprint=pin)
    branches = {
        client.name: Party(lambda c=client: c.run(idle_timeout=BOUND, rounds=1))
        for client in branch_clients(hub, names, dimension, policy)
    }
    return RedialingParties(holder, holder_party, branches)


def _redial(
    holder: KeyHolderService, redials: queue.Queue[ClientEndpoint]
) -> Callable[[float], ClientEndpoint]:
    """``holder.serve``'s dial: first the session it was made with, then the new ones."""
    pending = [holder._transport]
    holder._transport = None

    def dial(timeout: float) -> ClientEndpoint:
        return pending.pop() if pending else redials.get(timeout=BOUND)

    return dial


class HolderFederation:
    """The key holder and the branches of :func:`wrapped_holder_federation`, each run in
    a :class:`Party` once :meth:`start` is called, and the way the test ends them.

    Why the test never just closes the sessions once the server returns: the hub drops
    what a session's inbox still holds when it closes it, the federation's end included,
    so a party that had not yet read that end (a busy machine) raised
    :class:`~secagg.transport.base.NotConnected` in its thread after the test ended, an
    unhandled thread exception pytest only warned about. :meth:`end_announced` waits for
    every party to return on the end the server announced, and only then closes their
    sessions; :meth:`end_with_the_server_dead` (the server's process died: no end comes)
    closes them and asserts that each party's lost session is what stopped it. Either
    way every party's outcome is recorded and checked, never swallowed."""

    def __init__(
        self,
        hub: InProcessHub,
        processes: dict[str, FederationClient | KeyHolderService],
        run: Callable[[FederationClient | KeyHolderService], object],
    ) -> None:
        self._hub = hub
        self.processes = processes
        self._run = run
        self.parties: dict[str, Party] = {}

    def start(self) -> None:
        """Start every party (the key holder's first) in its own :class:`Party`."""
        assert not self.parties, "the federation's parties were started already"
        self.parties = {
            name: Party(lambda p=process: self._run(p)) for name, process in self.processes.items()
        }

    def end_announced(self, bound: float = BOUND) -> None:
        """Wait up to ``bound`` seconds for every party to return on the federation's end
        the server announced, then close their sessions. Raises AssertionError naming a
        party still running, one that failed, or one that returned without that end."""
        self._wait(bound)
        self._close()
        failed = {n: repr(p.error) for n, p in self.parties.items() if p.error is not None}
        assert not failed, f"a party failed instead of taking the federation's end: {failed}"
        unannounced = {
            name: outcome
            for name, process in self.processes.items()
            if (outcome := _outcome(process)) not in ("finished", "stopped")
        }
        assert not unannounced, f"a party returned before the federation's end: {unannounced}"

    def end_with_the_server_dead(self, bound: float = BOUND) -> None:
        """The server's process died (no end comes): close every session, as its closed
        streams would, and wait up to ``bound`` seconds for each party to stop. Raises
        AssertionError naming a party still running or one stopped by anything but its
        lost session."""
        self._close()
        self._wait(bound)
        other = {
            name: repr(party.error)
            for name, party in self.parties.items()
            if not isinstance(party.error, NotConnected)
        }
        assert not other, f"a party stopped by something other than its lost session: {other}"

    def _wait(self, bound: float) -> None:
        """Wait for every party's thread to end; one deadline for all of them."""
        end = time.monotonic() + bound
        for name, party in self.parties.items():
            assert party.done.wait(max(0.0, end - time.monotonic())), f"{name} did not stop"

    def _close(self) -> None:
        for name in self.processes:
            self._hub.disconnect(name)


def _outcome(process: FederationClient | KeyHolderService) -> str | None:
    """Why ``process``'s last run returned ("finished", "stopped", "idle", ...)."""
    if isinstance(process, FederationClient):
        return process.stats.outcome
    return process.outcome


def wrapped_holder_federation(
    config: FederationConfig,
    hub: InProcessHub,
    key: Path,
    names: list[str],
    holder_name: str,
    dimension: int,
    wrap: Callable[[KeyHolderSession], Session],
    run: Callable[[FederationClient | KeyHolderService], object],
) -> tuple[Session, HolderFederation]:
    """A real key holder (its key written at ``key``) whose session ``wrap`` replaces, and
    the branches, which pin its key: the wrapping session and the parties, not started,
    each to run ``run`` on its process (the key holder's first)."""
    pin = make_key_holder_key(config, key)  # keyholder-init: the key the branches pin
    endpoint = hub.connect(holder_name)
    session = wrap(key_holder_service(config, endpoint, {"key": str(key)}).session)  # type: ignore[arg-type]
    holder = KeyHolderService(holder_name, endpoint, session)
    policy = BranchPolicy(key_holder_fingerprint=pin)
    processes: dict[str, FederationClient | KeyHolderService] = {holder_name: holder}
    for client in branch_clients(hub, names, dimension, policy):
        processes[client.name] = client
    return session, HolderFederation(hub, processes, run)
