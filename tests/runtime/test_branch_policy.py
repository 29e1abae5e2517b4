"""A federation's branches enforce their own policy (security review H2, C1 in the runtime).

A server configured for ``plain``, for a CKKS key it made, for a lower noise or a
larger clip than a branch's policy is refused by every branch, and the server
never receives anything of an update. The active variant runs in the runtime
with identities bound to the branches' certificates.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from secagg.aggregation.policy import BranchPolicy
from secagg.apps import devca
from secagg.runtime.client import BranchRefused, FederationClient
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import branch_identity
from secagg.runtime.server import FederationServer
from secagg.runtime.store import ServerStore
from secagg.transport.inprocess import InProcessHub

D = 12
NAMES = [f"branch-{i:02d}" for i in range(5)]


class RecordingHub(InProcessHub):
    """The in-process transport, keeping every payload the server received."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[tuple[str, bytes]] = []

    def receive(self, timeout: float | None) -> tuple[str, bytes] | None:
        item = super().receive(timeout)
        if item is not None:
            self.received.append(item)
        return item


def _store() -> ServerStore:
    import tempfile

    return ServerStore(Path(tempfile.mkdtemp(prefix="secagg-policy-")) / "state.sqlite")


def _config(backend: dict[str, object], dp: dict[str, object] | None = None) -> FederationConfig:
    data: dict[str, object] = {
        "federation": {"name": "policy", "clients": NAMES, "dimension": D, "rounds": 1},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"value_bound": 4.0, **backend},
        "deadlines": {"phase_seconds": 5.0},
    }
    if dp is not None:
        data["dp"] = dp
    return FederationConfig.from_dict(data)


def _branches(
    hub: InProcessHub, policy: BranchPolicy, identities: dict[str, object] | None = None
) -> tuple[list[threading.Thread], dict[str, BaseException | None], list[FederationClient]]:
    outcome: dict[str, BaseException | None] = {}
    threads, clients = [], []
    for i, name in enumerate(NAMES):
        client = FederationClient(
            name,
            lambda m, i=i: np.full_like(m, 0.1 * (i + 1)),
            hub.connect(name),
            policy=policy,
            identity=None if identities is None else identities[name],  # type: ignore[arg-type]
        )

        def run(client: FederationClient = client, name: str = name) -> None:
            try:
                client.run(idle_timeout=30, rounds=1)
                outcome[name] = None
            except BaseException as exc:  # the test inspects what stopped the branch
                outcome[name] = exc

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        clients.append(client)
    return threads, outcome, clients


def _run_refused(config: FederationConfig, policy: BranchPolicy, setting: str) -> None:
    hub = RecordingHub()
    threads, outcome, clients = _branches(hub, policy)
    server = FederationServer(config, hub, _store())
    (result,) = server.run(wait_for_clients=120, max_attempts=1)
    for thread in threads:
        thread.join(timeout=60)
    assert result.status == "aborted" and result.contributed == ()
    assert set(outcome) == set(NAMES)
    for name, exc in outcome.items():
        assert isinstance(exc, BranchRefused), (name, exc)
        assert exc.setting == f"branch.{setting}"
    assert all(c.stats.rounds_refused == 1 for c in clients)
    _only_leaves(hub, setting)


def _only_leaves(hub: RecordingHub, setting: str) -> None:
    """A refusing branch sends nothing of its update: at most a Leave naming the policy
    setting, so the server need not wait out the round's deadline for it."""
    from secagg.runtime.wire import Leave, decode_message

    for name, payload in hub.received:
        message = decode_message(payload)
        assert isinstance(message, Leave), (name, message)
        assert message.reason == f"refused by its policy: branch.{setting}"


def test_h2_server_configured_plain_is_refused_by_every_branch() -> None:
    _run_refused(_config({"name": "plain"}), BranchPolicy(), "allow_plain")


def test_h2_server_lowering_the_distributed_noise_is_refused() -> None:
    dp = {"mechanism": "distributed", "clip": 1.0, "noise_multiplier": 0.3, "delta": 1e-3}
    policy = BranchPolicy(min_noise_multiplier=1.0, max_clip=1.0)
    _run_refused(_config({"name": "secagg+"}, dp), policy, "min_noise_multiplier")


def test_h2_server_raising_the_clip_is_refused() -> None:
    dp = {"clip": 4.0, "noise_multiplier": 1.0, "delta": 1e-3}
    _run_refused(_config({"name": "secagg"}, dp), BranchPolicy(max_clip=1.0), "max_clip")


def test_h2_server_without_clipping_is_refused_by_a_branch_that_requires_one() -> None:
    _run_refused(_config({"name": "secagg"}), BranchPolicy(max_clip=1.0), "max_clip")


def test_branch_that_skips_instead_of_stopping_keeps_serving() -> None:
    hub = RecordingHub()
    client = FederationClient(NAMES[0], lambda m: m, hub.connect(NAMES[0]), stop_on_refusal=False)
    from secagg.aggregation import get_backend
    from secagg.aggregation.spec import encode_spec
    from secagg.runtime.wire import RoundStart, encode_message

    spec = encode_spec(get_backend("plain").plan(2, D))
    client.handle(encode_message(RoundStart(1, 0, spec, np.zeros(D, np.float32))))
    assert client.stats.rounds_refused == 1 and client.stats.rounds_started == 0
    assert hub.receive(timeout=60) is not None  # no server runs here: read what it sent
    assert len(hub.received) == 1 and hub.receive(timeout=0.01) is None
    _only_leaves(hub, "allow_plain")


# --- the active variant in the runtime: identities are the branches' certificates -------


def _certificates(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    ders = {}
    for name in NAMES:
        devca.issue_client(ca, name)
        pem = (ca / "clients" / f"{name}.pem").read_bytes()
        ders[name] = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return ca, ders


@pytest.fixture(scope="module")
def federation_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    return _certificates(tmp_path_factory.mktemp("active"))


def test_active_variant_runs_in_the_runtime_with_certificate_identities(
    federation_certs: tuple[Path, dict[str, bytes]],
) -> None:
    ca, ders = federation_certs
    identities = {name: branch_identity(ca, name) for name in NAMES}
    hub = RecordingHub()
    threads, outcome, _ = _branches(hub, BranchPolicy(require_active=True), identities)
    config = _config({"name": "secagg+", "active": True})
    server = FederationServer(config, hub, _store(), identity_of=ders.get)
    (result,) = server.run(wait_for_clients=120)
    for thread in threads:
        thread.join(timeout=60)
    assert result.status == "complete", result.reason
    assert result.contributed == tuple(NAMES)
    expected = sum(0.1 * (i + 1) for i in range(len(NAMES))) / len(NAMES)
    assert np.allclose(server.model, expected, atol=1e-6)
    assert all(exc is None for exc in outcome.values())


def test_c1_active_round_with_a_substituted_identity_is_refused(
    federation_certs: tuple[Path, dict[str, bytes]], tmp_path: Path
) -> None:
    """A server listing a certificate the branches' CA did not issue (its own key for a
    branch), or one branch's certificate for two parties, is refused by every branch."""
    ca, ders = federation_certs
    other = tmp_path / "other-ca"
    devca.init_ca(other)
    devca.issue_client(other, NAMES[1])
    forged = x509.load_pem_x509_certificate(
        (other / "clients" / f"{NAMES[1]}.pem").read_bytes()
    ).public_bytes(serialization.Encoding.DER)
    for substitute in (forged, ders[NAMES[2]]):
        identities = {name: branch_identity(ca, name) for name in NAMES}
        hub = RecordingHub()
        threads, outcome, _ = _branches(hub, BranchPolicy(), identities)
        listed = dict(ders) | {NAMES[1]: substitute}
        config = _config({"name": "secagg+", "active": True})
        server = FederationServer(config, hub, _store(), identity_of=listed.get)
        (result,) = server.run(wait_for_clients=120, max_attempts=1)
        for thread in threads:
            thread.join(timeout=60)
        assert result.status == "aborted"
        refused = [n for n, e in outcome.items() if isinstance(e, BranchRefused)]
        # the others refuse the list; the branch whose certificate was replaced does not
        # find its own at its index
        assert sorted(refused) == sorted(NAMES)
        assert all(e.setting == "branch.identity" for e in outcome.values() if e is not None)
