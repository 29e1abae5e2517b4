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
from _branch_certs import branch_certificates
from _endpoints import RecordingHub, SentMessages
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
    client.handle(encode_message(RoundStart(1, 0, spec, np.zeros(D, np.float32), federation="fed")))
    assert client.stats.rounds_refused == 1 and client.stats.rounds_started == 1  # taken
    assert hub.receive(timeout=60) is not None  # no server runs here: read what it sent
    assert len(hub.received) == 1 and hub.receive(timeout=0.01) is None
    _only_leaves(hub, "allow_plain")


# --- the active variant in the runtime: identities are the branches' certificates -------


@pytest.fixture(scope="module")
def federation_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    return branch_certificates(tmp_path_factory.mktemp("active"), NAMES)


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
        assert all(e.setting == "--certs" for e in outcome.values() if e is not None)


# --- participation never depends on the update (runtime audit 2026-12-04) -------------


def _one_round_start(
    update: np.ndarray, bound: float, clip: float | None, *, stop_on_refusal: bool = False
) -> tuple[tuple[str, ...], tuple[str, ...], int]:
    """What a default-policy branch sends for one round start, the leave reasons it
    gives, and how often its training hook ran."""
    from secagg.aggregation import encode_spec
    from secagg.aggregation.masking import MaskingBackend
    from secagg.runtime.wire import Leave, RoundStart, encode_message

    trained = []

    def train(model: np.ndarray) -> np.ndarray:
        trained.append(1)
        return update.copy()

    outbox = SentMessages()
    branch = FederationClient(NAMES[0], train, outbox, stop_on_refusal=stop_on_refusal)
    spec = MaskingBackend(graph="complete", value_bound=bound).plan(3, D)
    branch.handle(
        encode_message(
            RoundStart(1, 0, encode_spec(spec), np.zeros(D), clip=clip, federation="fed")
        )
    )
    kinds = tuple(type(m).__name__ for m in outbox.sent)
    reasons = tuple(m.reason for m in outbox.sent if isinstance(m, Leave))
    return kinds, reasons, len(trained)


def _with_largest(value: float) -> np.ndarray:
    update = np.zeros(D)
    update[3] = value
    return update


@pytest.mark.parametrize("bound", [0.05, 0.3, 0.62, 0.9, 0.999])
def test_a_bound_below_the_clip_is_refused_before_training_whatever_the_update(
    bound: float,
) -> None:
    """The audit's probe: with value_bound below the clip, a branch whose largest
    coordinate lay above the bound left the round (saying why, in clear) and one below
    joined, so bisecting the bound over rounds read off the update's largest coordinate.
    Now the round is refused on its public parameters, before the hook runs, with the
    same answer for every update."""
    outcomes = {_one_round_start(_with_largest(v), bound, clip=1.0) for v in (0.0, 0.62, 1.0)}
    (kinds, reasons, trained) = outcomes.pop()
    assert not outcomes  # one outcome for all three updates
    assert trained == 0 and kinds == ("Leave",)
    assert reasons == ("refused by its policy: backend.value_bound",)


def test_a_bound_below_the_clip_stops_a_branch_that_stops_on_refusal() -> None:
    with pytest.raises(BranchRefused, match=r"value_bound 0\.5 is below its clip 1"):
        _one_round_start(_with_largest(0.1), 0.5, clip=1.0, stop_on_refusal=True)


@pytest.mark.parametrize("clip", [None, 1.0])
def test_every_update_takes_part_and_what_crosses_the_bound_is_clamped(
    clip: float | None, caplog: pytest.LogCaptureFixture
) -> None:
    """With the bound at least the clip, or with no clip at all, every update takes
    part the same way: a coordinate beyond the bound is cut to it and counted in the
    branch's own log, never sent as a reason."""
    outcomes = {
        _one_round_start(_with_largest(v), 1.0, clip)[:2] for v in (0.0, 0.5, 1.0, 7.0, -40.0)
    }
    assert outcomes == {((), ())}  # joined: nothing is sent before the protocol's setup
    assert any("were cut to it" in r.getMessage() for r in caplog.records) == (clip is None)


def test_a_clamped_update_is_summed_at_the_bound(tmp_path: Path) -> None:
    """End to end, no DP: a branch whose update has a coordinate at 10 in a round
    sized for 1 contributes 1 there (and its others unchanged); the round completes."""
    hub = InProcessHub()
    config = _config({"name": "secagg+", "value_bound": 1.0})
    updates = {name: np.full(D, 0.25) for name in NAMES}
    updates[NAMES[0]][0] = 10.0
    threads = []
    for name in NAMES:
        client = FederationClient(name, lambda m, u=updates[name]: u.copy(), hub.connect(name))
        thread = threading.Thread(target=client.run, kwargs={"idle_timeout": 60.0, "rounds": 1})
        thread.start()
        threads.append(thread)
    server = FederationServer(config, hub, ServerStore(tmp_path / "state.sqlite"))
    result = server.run_round()
    for thread in threads:
        thread.join(timeout=120.0)
    assert result.status == "complete", result.reason
    expected = np.full(D, 0.25)
    expected[0] = (1.0 + 0.25 * (len(NAMES) - 1)) / len(NAMES)
    np.testing.assert_allclose(server.model, expected, atol=1e-6)
