"""``secagg bench grpc``'s byte-counting wrapper offers what the transport it wraps offers.

Known and left by earlier sessions (secagg/apps/bench/grpc.py, ``CountingEndpoint``):
the runtime looks up a transport's optional offers with ``getattr(transport, ...,
None)`` (``session_id``, ``wait_for_sessions``, ``recheck_sessions``, ``stopped``,
``peer_certificate``) and the wrapper had none of them. So the benchmarked server was
not the deployed one: a branch restarted mid-round under its own name read as still in
the round (review D6: the phase waited out its deadline for it), its quorum wait was
polled, and revocation was never re-checked before sampling.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secagg.apps.bench.grpc import CountingEndpoint
from secagg.runtime.config import FederationConfig
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

NAMES = ["branch-a", "branch-b", "branch-c"]


def _server(tmp_path: Path, transport: object) -> FederationServer:
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "count", "clients": NAMES, "dimension": 4, "rounds": 1},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 1.0},
        }
    )
    return FederationServer(config, transport, ServerStore(tmp_path / "s.sqlite"))  # type: ignore[arg-type]


def test_a_branch_back_on_a_new_session_is_gone_from_the_round_through_the_counter(
    tmp_path: Path,
) -> None:
    hub = InProcessHub()
    server = _server(tmp_path, CountingEndpoint(hub))
    first = hub.connect(NAMES[0])
    server._round_sessions = {NAMES[0]: server._session_of(NAMES[0])}
    server._left = set()
    assert not server._gone(NAMES[0])
    first.close()
    hub.connect(NAMES[0])  # restarted at once, under the same name
    assert server._gone(NAMES[0]), "the restarted branch still counted as in the round"


class _Offers:
    """A server transport with every optional offer the runtime looks for."""

    stopped = True

    def send(self, name: str, payload: bytes) -> None:
        raise AssertionError("not sent here")

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        return None

    def connected(self) -> set[str]:
        return {"a"}

    def session_id(self, name: str) -> int | None:
        return 7

    def wait_for_sessions(self, seen: int | None, timeout: float | None) -> int:
        return 3

    def recheck_sessions(self) -> list[str]:
        return ["revoked"]

    def peer_certificate(self, name: str) -> bytes | None:
        return b"der"


@pytest.mark.parametrize(
    ("offer", "call"),
    [
        ("session_id", lambda f: f("a")),
        ("wait_for_sessions", lambda f: f(None, 0.0)),
        ("recheck_sessions", lambda f: f()),
        ("peer_certificate", lambda f: f("a")),
    ],
)
def test_every_optional_offer_is_the_inner_transports(offer: str, call: object) -> None:
    inner = _Offers()
    counter = CountingEndpoint(inner)  # type: ignore[arg-type]
    found = getattr(counter, offer, None)
    assert found is not None, f"the counter hides the transport's {offer}"
    assert call(found) == call(getattr(inner, offer))  # type: ignore[operator]


def test_an_offer_the_inner_transport_lacks_is_lacking_through_the_counter() -> None:
    counter = CountingEndpoint(InProcessHub())
    assert getattr(counter, "stopped", None) is None
    assert getattr(counter, "recheck_sessions", None) is None
    assert getattr(CountingEndpoint(_Offers()), "stopped", None) is True  # type: ignore[arg-type]
