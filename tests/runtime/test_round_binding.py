"""A federation's protocol round id is bound to the runtime's round (security finding,
open since the runtime audit of 2026-12-04).

Before: the masking protocol's round id was drawn by the server (``os.urandom``) and a
branch took whatever id the round's setup carried. A hostile server could run a later
round under an earlier round's id; in the active variant a branch's AdvertiseKeys,
signed over that id, then verified again, so the server could hand a branch's old keys
(whose mask key it may have rebuilt when the branch dropped) to its neighbours.

Now both roles derive the id from the round number (which every branch holds to only
growing) and the spec the branch approved; a branch refuses a setup of any other id,
sending nothing, and nothing signed in one round verifies in another. An honest
federation still runs every round, across a crashed round, a server restart and a
branch restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _branch_certs import branch_certificates

from secagg.aggregation import AggregationBackend, Outgoing, ServerSession, ToParty
from secagg.aggregation.policy import BranchPolicy
from secagg.errors import ConfigurationError
from secagg.protocol import decode, encode
from secagg.protocol.messages import AdvertiseKeys, KeyDirectory, KeyEntry
from secagg.runtime.client import FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import branch_identity
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.runtime.wire import round_context
from secagg.transport.inprocess import InProcessHub

D = 8
NAMES = [f"branch-{i:02d}" for i in range(4)]
#: a phase's deadline: generous for an honest phase (it closes once everyone answered);
#: a hostile round whose setup every branch refuses waits it out once
PHASE_SECONDS = 5.0


class Crash(BaseException):
    """The server process dies mid-round (not an error any layer catches)."""


class _Session(ServerSession):
    """A server session that a test's hostile (or crashing) server tampers with."""

    def __init__(self, inner: ServerSession, number: int, server: _Server) -> None:
        self._inner, self._number, self._server = inner, number, server

    def bind_round(self, context: bytes) -> None:
        getattr(self._inner, "bind_round", lambda _: None)(context)

    def start(self) -> list[Outgoing]:
        protocol = self._inner._server  # type: ignore[attr-defined]
        if self._server.reuse_from is not None and self._number > self._server.reuse_from:
            # the hostile server runs this round under the first round's protocol id
            protocol.round_id = protocol.report.round_id = self._server.ids[1]
        self._server.ids[self._number] = protocol.round_id
        return self._tamper(self._inner.start())

    def handle(self, party: int, payload: bytes) -> list[Outgoing]:
        self._server.received.append((self._number, party, type(decode(payload)).__name__))
        if self._number == self._server.crash_in:
            raise Crash(f"the server dies in round {self._number}")
        message = decode(payload)
        if isinstance(message, AdvertiseKeys) and party == 0:
            self._server.advertised.setdefault(self._number, message)
        return self._tamper(self._inner.handle(party, payload))

    def close_phase(self) -> list[Outgoing]:
        return self._tamper(self._inner.close_phase())

    def _tamper(self, events: list[Outgoing]) -> list[Outgoing]:
        """Replay branch 0's keys of round 1 to its neighbours in every later round."""
        old = self._server.advertised.get(1)
        if not self._server.replay or old is None or self._number == 1:
            return events
        out: list[Outgoing] = []
        for event in events:
            message = decode(event.payload) if isinstance(event, ToParty) else None
            if isinstance(message, KeyDirectory):
                replayed = KeyEntry(0, old.channel_key, old.mask_key, old.signature)
                entries = tuple(replayed if e.party == 0 else e for e in message.entries)
                if all(e.party != 0 for e in entries):
                    entries = (replayed, *entries)
                forged = KeyDirectory(message.round_id, message.recipient, entries)
                event = ToParty(event.party, encode(forged))
            out.append(event)
        return out

    def abort(self, reason: str) -> list[Outgoing]:
        return self._inner.abort(reason)

    @property
    def phase(self) -> str:
        return self._inner.phase

    @property
    def waiting_for(self) -> frozenset[int]:
        return self._inner.waiting_for

    @property
    def done(self) -> bool:
        return self._inner.done

    def finish(self) -> Any:
        return self._inner.finish()

    def dropouts(self) -> dict[str, int]:
        return self._inner.dropouts()

    def contributors_before_reveal(self) -> int | None:
        return self._inner.contributors_before_reveal()


class _Server:
    """What the tampering sessions share across a federation's rounds."""

    def __init__(
        self, *, reuse_from: int | None = None, replay: bool = False, crash_in: int | None = None
    ) -> None:
        self.reuse_from, self.replay, self.crash_in = reuse_from, replay, crash_in
        self.ids: dict[int, bytes] = {}
        self.advertised: dict[int, AdvertiseKeys] = {}
        self.received: list[tuple[int, int, str]] = []

    def wrap(self, server: FederationServer) -> None:
        """Make ``server`` build its rounds' sessions through this test's tampering."""
        backend: AggregationBackend = server.backend
        shared = self

        class Tampering(type(backend)):  # type: ignore[misc]
            def __init__(self) -> None:
                self.__dict__.update(backend.__dict__)

            def server(self, spec: Any, **options: Any) -> ServerSession:
                inner = backend.server(spec, **options)
                return _Session(inner, server.next_round - 1, shared)

        server.backend = Tampering()


def _config(active: bool, rounds: int) -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "binding", "clients": NAMES, "dimension": D, "rounds": rounds},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 4.0, "active": active},
            "deadlines": {"phase_seconds": PHASE_SECONDS, "training_seconds": PHASE_SECONDS},
        }
    )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    return branch_certificates(tmp_path_factory.mktemp("binding"), NAMES)


def _branch(hub: InProcessHub, name: str, ca: Path | None) -> FederationClient:
    i = NAMES.index(name)
    return FederationClient(
        name,
        lambda m, i=i: np.full_like(m, 0.1 * (i + 1)),
        hub.connect(name),
        policy=BranchPolicy(require_active=ca is not None),
        identity=None if ca is None else branch_identity(ca, name),
    )


def _serve(clients: list[FederationClient], rounds: int) -> Callable[[], None]:
    """Run each branch for ``rounds`` ended rounds in a thread; the returned call joins
    them and re-raises the first failure."""
    failures: list[BaseException] = []

    def run(client: FederationClient) -> None:
        try:
            client.run(idle_timeout=60, rounds=rounds)
        except BaseException as exc:  # the test re-raises it
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(c,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            thread.join(timeout=120)
            assert not thread.is_alive(), "a branch did not end its rounds"
        if failures:
            raise failures[0]

    return join


def _federation(
    tmp_path: Path, tampering: _Server, *, active: bool, ca: Path | None, ders: dict[str, bytes]
) -> tuple[FederationServer, list[FederationClient], Callable[[], None]]:
    hub = InProcessHub()
    clients = [_branch(hub, name, ca) for name in NAMES]
    join = _serve(clients, rounds=2)
    server = FederationServer(
        _config(active, 2),
        hub,
        ServerStore(tmp_path / "state.sqlite"),
        identity_of=ders.get if active else None,
    )
    tampering.wrap(server)
    return server, clients, join


def test_a_server_reusing_a_round_id_in_the_next_round_is_refused_and_gets_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Round 2 runs under round 1's protocol id: every branch refuses its setup with a
    typed error (WrongRound), sends nothing of the round's protocol and leaves it at once
    (a leave naming the refusal: the server waited out the phase deadline for every
    branch before). Before the fix every branch took the setup and ran the round (4
    AdvertiseKeys, 4 ShareKeys, 4 MaskedInputs, 4 UnmaskingShares reached the server)."""
    hostile = _Server(reuse_from=1)
    server, clients, join = _federation(tmp_path, hostile, active=False, ca=None, ders={})
    with caplog.at_level(logging.WARNING, logger="secagg.client"):
        first, second = server.run(wait_for_clients=120, max_attempts=2)
    join()
    assert first.status == "complete", first.reason
    assert hostile.ids[2] == hostile.ids[1]  # the hostile server did reuse the id
    assert second.status == "aborted" and second.contributed == ()
    assert [m for m in hostile.received if m[0] == 2] == []  # not one payload of round 2
    for client in clients:
        # the setup, and nothing else: the branch left the round at once (the round's
        # abort, sent after the leaves, is taken quietly)
        assert client.stats.refused_messages == 1
        assert (client.stats.rounds_completed, client.stats.rounds_left) == (1, 1)
    lines = [r.getMessage() for r in caplog.records if "left round 2" in r.getMessage()]
    setups = [text for text in lines if "a setup of another round" in text]
    assert sorted(text.split()[0] for text in setups) == NAMES, lines


def test_a_replayed_signed_advertisement_of_an_earlier_round_reaches_no_neighbour(
    tmp_path: Path, certificates: tuple[Path, dict[str, bytes]]
) -> None:
    """Active variant: the hostile server reuses round 1's id in round 2 and hands branch
    0's round-1 keys (signed over that id) to its neighbours. No branch takes the round,
    so no neighbour ever seals shares to (or masks with) the replayed keys. Before the
    fix the signature verified: the neighbours answered with ShareKeys built on them."""
    ca, ders = certificates
    hostile = _Server(reuse_from=1, replay=True)
    server, clients, join = _federation(tmp_path, hostile, active=True, ca=ca, ders=ders)
    first, second = server.run(wait_for_clients=120, max_attempts=2)
    join()
    assert first.status == "complete", first.reason
    assert 1 in hostile.advertised  # what the hostile server would replay
    assert second.status == "aborted"
    round_two = [kind for number, _, kind in hostile.received if number == 2]
    assert "ShareKeys" not in round_two and round_two == [], round_two
    assert all(c.stats.refused_messages >= 1 for c in clients)


def test_an_honest_federation_runs_across_a_crash_a_server_restart_and_a_branch_restart(
    tmp_path: Path, certificates: tuple[Path, dict[str, bytes]]
) -> None:
    """Active variant. Round 1 completes; the server dies in round 2 after its branches
    advertised keys under round 2's id; the restarted server aborts round 2 and retries
    as round 3, which completes under a fresh id; one branch then restarts (a new
    process remembers no round) and round 4 completes with it."""
    ca, ders = certificates
    path = tmp_path / "state.sqlite"
    hub = InProcessHub()
    clients = [_branch(hub, name, ca) for name in NAMES]
    join = _serve(clients[1:], rounds=3)
    first_branch = _serve(clients[:1], rounds=2)
    crashing = _Server(crash_in=2)
    server = FederationServer(_config(True, 4), hub, ServerStore(path), identity_of=ders.get)
    crashing.wrap(server)
    assert server.run_round().status == "complete"
    with pytest.raises(Crash):
        server.run_round()
    assert {kind for number, _, kind in crashing.received if number == 2} == {"AdvertiseKeys"}
    server.store.close()

    watching = _Server()
    restarted = FederationServer(_config(True, 4), hub, ServerStore(path), identity_of=ders.get)
    watching.wrap(restarted)
    assert restarted.next_round == 3
    retried = restarted.run_round()
    assert retried.status == "complete", retried.reason
    assert retried.contributed == tuple(NAMES)
    first_branch()  # branch 0's process ends (rounds 1 and 3 ended; 2 was lost)

    hub.disconnect(NAMES[0])
    again = _branch(hub, NAMES[0], ca)  # branch 0 restarted: no memory of any round
    rejoined = _serve([again], rounds=1)
    fourth = restarted.run_round()
    assert fourth.status == "complete", fourth.reason
    assert fourth.contributed == tuple(NAMES)
    rejoined()
    join()
    ids = [crashing.ids[1], crashing.ids[2], watching.ids[3], watching.ids[4]]
    assert len(set(ids)) == 4  # every attempt ran under its own id
    # three complete rounds (1, 3, 4), each adding the mean update 0.25; round 2 added nothing
    assert np.allclose(restarted.model, 3 * 0.25, atol=1e-5)


def test_a_round_context_names_one_round_number() -> None:
    contexts = {round_context(n, "binding") for n in (0, 1, 2, 2**32, 2**64 - 1)}
    assert len(contexts) == 5
    for bad in (-1, 2**64, True, 1.0, "1"):
        with pytest.raises(ConfigurationError):
            round_context(bad, "binding")  # type: ignore[arg-type]
