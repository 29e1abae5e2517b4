"""The server's quorum wait is woken by the branch that completes the quorum, not by a
poll (transport review, 2026-12-06).

Before: ``_await_quorum`` slept with a back-off up to 1 s apart and looked again, so a
quorum was noticed up to a second after its last branch connected (measured over gRPC:
a median of 0.5 s and a maximum of 1.0 s once the wait had gone on for two seconds).
Now a transport that offers ``wait_for_sessions`` (gRPC's) wakes it when a session opens.

The start wait for every party (``secagg server --wait``) polled every 10 ms; it is
woken the same way now.

Checked as a mechanism, not a time: the module's ``time.sleep`` is replaced by one that
fails, so a wait that polls fails at its first pause whatever the machine's speed.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from pathlib import Path

import pytest
from _threads import BOUND, Party

import secagg.runtime.server as server_module
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.simnet import DropoutEvent, DropoutSchedule, SimulatedNetwork
from secagg.runtime.store import ServerStore
from secagg.transport.grpc_transport import GrpcClientTransport, GrpcServerTransport
from secagg.transport.inprocess import InProcessHub, ServerEndpoint

NAMES = ["branch-a", "branch-b", "branch-c"]


def _polled(seconds: float) -> None:
    raise AssertionError(f"the quorum wait polled (slept {seconds:g} s)")


def _plaintext_server() -> GrpcServerTransport:
    """A plaintext server naming its sessions in the order they open."""
    names = iter(NAMES)
    lock = threading.Lock()

    def identify(context: object) -> str:
        with lock:
            return next(names)

    return GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
        identify=identify,
        recheck_interval=None,
    )


def _connect(port: int) -> GrpcClientTransport:
    client = GrpcClientTransport(
        f"127.0.0.1:{port}",
        channel_credentials=None,
        allow_insecure=True,
        max_message_bytes=1 << 20,
    )
    client.connect(timeout=BOUND)
    return client


def _server(tmp_path: Path, transport: ServerEndpoint, names: list[str]) -> FederationServer:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "q", "clients": names, "dimension": 4, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
        }
    )
    return FederationServer(config, transport, ServerStore(tmp_path / "s.sqlite"))


#: the two waits for parties: the quorum wait between rounds (three clients, two make a
#: quorum) and ``secagg server --wait``'s wait for every party at the start (two clients;
#: it polled every 10 ms); each ends when the second client connects
WAITS: dict[str, tuple[list[str], Callable[[FederationServer], str | None]]] = {
    "quorum": (NAMES, lambda server: server._await_quorum(3 * BOUND)),
    "start": (NAMES[:2], lambda server: server._wait_for(set(NAMES[:2]), 3 * BOUND)),
}


@pytest.mark.parametrize("kind", sorted(WAITS))
def test_the_second_client_to_connect_wakes_the_wait(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names, wait = WAITS[kind]
    transport = _plaintext_server()
    transport.start()
    clients = [_connect(transport.port)]  # one of the two the wait needs
    try:
        server = _server(tmp_path, transport, names)
        assert server.quorum_missing() is not None
        monkeypatch.setattr(server_module, "time", types.SimpleNamespace(sleep=_polled))
        waiting = Party(lambda: wait(server))
        clients.append(_connect(transport.port))
        assert waiting.done.wait(BOUND), f"the {kind} wait missed the second client"
        assert waiting.error is None, waiting.error
        assert waiting.value is None  # nothing missing
        assert transport.connected() == set(NAMES[:2])
    finally:
        for client in clients:
            client.close()
        transport.stop(grace=0)


@pytest.mark.parametrize("kind", sorted(WAITS))
def test_a_stopping_transport_ends_the_wait(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names, wait = WAITS[kind]
    transport = _plaintext_server()
    transport.start()
    try:
        server = _server(tmp_path, transport, names)
        monkeypatch.setattr(server_module, "time", types.SimpleNamespace(sleep=_polled))
        entered = threading.Event()
        wait_for_sessions = transport.wait_for_sessions

        def watched(seen: int | None, timeout: float | None) -> int:
            if seen is not None:
                entered.set()  # the wait is waiting on the transport now
            return wait_for_sessions(seen, timeout)

        monkeypatch.setattr(transport, "wait_for_sessions", watched, raising=False)
        waiting = Party(lambda: wait(server))
        assert entered.wait(BOUND), (
            f"the {kind} wait did not wait on the transport: {waiting.error}"
        )
        transport.stop(grace=0)
        assert waiting.done.wait(BOUND), f"the stop did not end the {kind} wait"
        assert waiting.error is None, waiting.error
        if kind == "quorum":
            assert "the transport has stopped" in (waiting.value or "")
    finally:
        transport.stop(grace=0)


# --- the in-process transports: the hub and the simulator's network (2026-12-06) -------
#
# They had no wait_for_sessions, so both waits polled them: the quorum wait noticed its
# quorum 0.61 s late in the median (0.97 s at worst, 8 runs), the start wait 5 ms late.
# They offer it now, and count every change of connected(): a session that opens or
# ends, and in the simulator a vanished branch that comes back.


HUBS: dict[str, Callable[[], InProcessHub]] = {
    "in-process": InProcessHub,
    "simulated": lambda: SimulatedNetwork(DropoutSchedule(0.0, seed=1)),
}


def _watched(monkeypatch: pytest.MonkeyPatch, hub: InProcessHub) -> threading.Event:
    """Set once a wait waits on the hub (a wait_for_sessions with a change number)."""
    entered = threading.Event()
    wait_for_sessions = hub.wait_for_sessions

    def watched(seen: int | None, timeout: float | None) -> int:
        if seen is not None:
            entered.set()
        return wait_for_sessions(seen, timeout)

    monkeypatch.setattr(hub, "wait_for_sessions", watched)
    return entered


@pytest.mark.parametrize("hub_kind", sorted(HUBS))
@pytest.mark.parametrize("kind", sorted(WAITS))
def test_a_connect_to_the_in_process_hub_wakes_the_wait(
    kind: str, hub_kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names, wait = WAITS[kind]
    hub = HUBS[hub_kind]()
    hub.connect(names[0])
    server = _server(tmp_path, hub, names)
    monkeypatch.setattr(server_module, "time", types.SimpleNamespace(sleep=_polled))
    entered = _watched(monkeypatch, hub)
    waiting = Party(lambda: wait(server))
    assert entered.wait(BOUND), f"the {kind} wait did not wait on the hub: {waiting.error}"
    hub.connect(names[1])
    assert waiting.done.wait(BOUND), f"the {kind} wait missed the second client"
    assert waiting.error is None, waiting.error
    assert waiting.value is None


def test_a_vanished_branch_coming_back_wakes_the_quorum_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's view of connected() grows when a vanished branch is back (its
    round ended): a change the quorum wait must see without polling."""
    network = SimulatedNetwork(DropoutSchedule(0.0, seed=1))
    network.connect(NAMES[0])
    network.connect(NAMES[1])
    network._vanish(DropoutEvent(1, NAMES[1], "advertise_keys"))
    server = _server(tmp_path, network, NAMES)
    assert server.quorum_missing() is not None  # one of three: the vanished one is gone
    monkeypatch.setattr(server_module, "time", types.SimpleNamespace(sleep=_polled))
    entered = _watched(monkeypatch, network)
    waiting = Party(lambda: server._await_quorum(3 * BOUND))
    assert entered.wait(BOUND), f"the quorum wait did not wait on the hub: {waiting.error}"
    network._reappear(NAMES[1])
    assert waiting.done.wait(BOUND), "the quorum wait missed the branch that came back"
    assert waiting.error is None, waiting.error
    assert waiting.value is None


def test_the_hub_counts_every_change_so_none_between_look_and_wait_is_missed() -> None:
    hub = InProcessHub()
    seen = hub.wait_for_sessions(None, 0.0)
    client = hub.connect("branch-a")  # between the caller's look and its wait
    opened = hub.wait_for_sessions(seen, BOUND)  # returns at once: counted, not missed
    assert opened != seen
    client.close()
    assert hub.wait_for_sessions(opened, BOUND) != opened  # an end is a change too
    assert hub.wait_for_sessions(None, 0.0) == hub.wait_for_sessions(None, 0.0)
