"""One branch that opens and closes sessions in a tight loop cannot tax the server.

"No single branch can stop the server": before, every new session was admitted, so one
identity churning sessions cost the server a TLS handshake, a certificate check, a
reader thread, two events and two log lines per session, at whatever rate it dialled.
Now the server's transport holds a token bucket of new sessions per identity
(``[server] session_burst`` and ``session_rate``) and refuses the excess before any of
that work, with a typed reason. The round of the other branches completes meanwhile.

Over gRPC with mTLS on loopback; every wait is on an event with a generous bound.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from _threads import BOUND, Party, free_port

from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport import certs
from secagg.transport.grpc_transport import (
    IDENTITY_METADATA_KEY,
    SESSION_METHOD,
    THROTTLE_DETAIL,
)

HONEST = ["branch-a", "branch-b", "branch-c"]
CHURNER = "mallory"
D = 16


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from secagg.apps import devca

    directory = tmp_path_factory.mktemp("churn-ca") / "certs"
    devca.init_ca(directory)
    for name in [*HONEST, CHURNER]:
        devca.issue_client(directory, name)
    return directory


class _Churner:
    """Opens a session, half-closes it and opens the next, as fast as the server answers
    (raw gRPC streams on one channel: no client-side manners, no back-off)."""

    def __init__(self, ca: Path, target: str) -> None:
        credentials = certs.load_client_credentials(ca, CHURNER).to_grpc()
        self._channel = grpc.secure_channel(target, credentials)
        self.accepted = 0
        self.throttled = 0
        self.other = 0
        self.stop = threading.Event()
        #: set at the first refusal: the test waits on it, since on a busy machine the
        #: honest round could otherwise end before the churner has spent its burst
        self.was_throttled = threading.Event()
        self.began = self.ended = 0.0
        self.party = Party(self._loop)

    def _loop(self) -> None:
        stream = self._channel.stream_stream(
            SESSION_METHOD, request_serializer=None, response_deserializer=None
        )
        self.began = time.monotonic()
        while not self.stop.is_set():
            call = stream(iter(()))
            metadata = call.initial_metadata() or ()
            if any(key == IDENTITY_METADATA_KEY for key, _ in metadata):
                self.accepted += 1
            elif call.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and (
                call.details() or ""
            ).startswith(THROTTLE_DETAIL):
                self.throttled += 1
                self.was_throttled.set()
            else:
                self.other += 1
            call.cancel()
        self.ended = time.monotonic()
        self._channel.close()


def test_a_churning_branch_is_throttled_while_the_others_round_completes(
    ca: Path, tmp_path: Path
) -> None:
    from secagg.runtime.launch import demo_hook, run_branch, server_transport

    port = free_port()
    target = f"127.0.0.1:{port}"
    config = FederationConfig.from_dict(
        {
            # the churner is a branch of the federation too: one identity among four
            "federation": {
                "name": "churn",
                "clients": [*HONEST, CHURNER],
                "dimension": D,
                "rounds": 2,
            },
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0, "dropout_fraction": 0.4},
            "deadlines": {"phase_seconds": 30.0},
            "server": {
                "bind": target,
                "certificates": str(ca),
                "quorum_wait_seconds": BOUND,
                "session_burst": 5,
                "session_rate": 2.0,
            },
        }
    )
    transport = server_transport(config, port)
    churner = _Churner(ca, target)
    try:
        server = FederationServer(config, transport, ServerStore(tmp_path / "s.sqlite"))
        branches = [
            Party(
                lambda n=name: run_branch(
                    target,
                    n,
                    demo_hook(n, D),
                    str(ca),
                    idle_timeout=None,
                    connect_timeout=BOUND,
                    give_up_after=BOUND,
                    dimension=D,
                )
            )
            for name in HONEST
        ]
        deadline = time.monotonic() + BOUND
        while not set(HONEST) <= transport.connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert churner.was_throttled.wait(BOUND), (churner.accepted, churner.other)
        # the churner is hardly ever connected: the server waits for the others only
        results = server.run(wait_for_clients=0.0)
        churner.stop.set()
        assert churner.party.done.wait(BOUND)
        throttled_by_server = transport.throttled_sessions
    finally:
        churner.stop.set()
        transport.stop(grace=2.0)
    assert [r.status for r in results] == ["complete", "complete"], [r.reason for r in results]
    assert all(set(HONEST) <= set(r.contributed) for r in results)
    for branch in branches:
        assert branch.done.wait(BOUND)
        assert branch.error is None, branch.error
        assert branch.value.outcome == "finished" and branch.value.sessions == 1
    seconds = churner.ended - churner.began
    assert churner.throttled > 0 and churner.throttled == throttled_by_server
    # the bucket's promise: at most the burst, then the rate (slack for clock edges)
    assert churner.accepted <= 5 + 2.0 * seconds + 2, (churner.accepted, seconds)
    assert churner.other == 0
