"""A masking branch runs only the round its approved spec implies (runtime audit 2026-12-04).

The branch's policy passes the *spec*; the protocol then runs on the ``RoundSetup`` the
server sends separately. A setup that differs from the spec in any field the spec fixes
(clients, vector length, ring, graph, degree, variant) is refused, state unchanged, and
the honest setup is still taken afterwards.

And a branch gives its update once: a second ``set_input`` is refused before anything
is encoded, so not even the rounding stream moves.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from fractions import Fraction

import numpy as np
import pytest
from _harness import fingerprint, refused_call
from hypothesis import given, settings
from hypothesis import strategies as st

import secagg
from secagg.aggregation import get_backend, run_local_round
from secagg.aggregation.masking import MaskingBackend, MaskingClient, MaskingSpec, _percent_down
from secagg.aggregation.policy import BranchPolicy
from secagg.crypto.stream import KeyedStream
from secagg.dp.distributed import DistributedDiscreteGaussian, NoiseShareRound
from secagg.errors import PolicyRefused, UnexpectedMessage, UnknownParty
from secagg.protocol import RoundConfig, Server, decode, encode
from secagg.protocol.messages import AdvertiseKeys, GraphKind, RoundSetup

D = 16


def _noise_share_spec(num_clients: int, expected: int, backend: str = "secagg") -> MaskingSpec:
    ddg = DistributedDiscreteGaussian(
        dimension=D, clip=1.0, noise_multiplier=1.0, expected_clients=expected, bits=32
    )
    share = NoiseShareRound(ddg, os.urandom(16))
    return MaskingSpec(num_clients, D, backend, 32, 1.0, 1.0, noise_share=share)


def _client(spec: MaskingSpec, policy: BranchPolicy | None = None) -> MaskingClient:
    client = get_backend(spec.name).client(spec, 0, rounding=None, policy=policy)
    assert isinstance(client, MaskingClient)
    client.set_input(np.full(D, 0.1))
    return client


def _setup_of(config: RoundConfig) -> RoundSetup:
    (setup,) = [m for m in Server(config).start() if m.recipient == 0]
    assert isinstance(setup, RoundSetup)
    return setup


def _refused_setup(client: MaskingClient, setup: RoundSetup) -> PolicyRefused:
    before = fingerprint(client)
    with pytest.raises(PolicyRefused) as caught:
        client.handle(encode(setup))
    assert fingerprint(client) == before
    assert caught.value.setting == "round_setup"
    return caught.value


def test_a_setup_with_fewer_clients_than_the_spec_sized_the_noise_for_is_refused() -> None:
    """The audit's attack: the spec says 1 000 clients (each noise share sized for
    1 000 passes a floor of z = 1), the setup runs 3 (the sum's multiplier would be
    z·√(3/1000) ≈ 0.055)."""
    policy = BranchPolicy(min_noise_multiplier=1.0)
    spec = _noise_share_spec(1000, 1000)
    client = _client(spec, policy)
    small = RoundConfig.create(3, spec.vector_length, bits=32, graph="complete")
    error = _refused_setup(client, _setup_of(small))
    assert "num_clients = 3" in str(error) and "1000" in str(error)
    # the honest setup of the same spec is taken
    replies = client.handle(encode(_setup_of(spec.round_config())))
    assert [type(decode(r)) for r in replies] == [AdvertiseKeys]


def test_a_sparse_graph_under_a_complete_graph_spec_is_refused() -> None:
    spec = get_backend("secagg").plan(12, D)
    client = _client(spec)
    sparse = RoundConfig.create(12, spec.vector_length, bits=32, graph="harary")
    assert sparse.graph == GraphKind.HARARY and spec.round_config().graph == GraphKind.COMPLETE
    assert "graph = harary" in str(_refused_setup(client, _setup_of(sparse)))


_FIELDS = st.sampled_from(MaskingClient.SETUP_FIELDS)


@settings(max_examples=40, deadline=None)
@given(
    field=_FIELDS,
    num_clients=st.integers(3, 40),
    backend=st.sampled_from(["secagg", "secagg+"]),
)
def test_any_field_the_spec_fixes_changed_in_the_setup_is_refused(
    field: str, num_clients: int, backend: str
) -> None:
    spec = get_backend(backend).plan(num_clients, D)
    client = _client(spec)
    honest = _setup_of(spec.round_config())
    value = getattr(honest, field)
    changed = {
        "num_clients": value + 1,
        "vector_length": value + 1,
        "bits": 64 if value == 32 else 32,
        "graph": GraphKind.HARARY if value == GraphKind.COMPLETE else GraphKind.COMPLETE,
        "degree": value - 2 if value > 2 else value + 2,
        "active": not value,
        "population": num_clients + 1,  # a population the spec does not name
    }[field]
    _refused_setup(client, dataclasses.replace(honest, **{field: changed}))
    assert [type(decode(r)) for r in client.handle(encode(honest))] == [AdvertiseKeys]


def test_the_threshold_and_graph_seed_stay_the_servers_to_choose() -> None:
    """Only what the spec fixes is compared: a threshold above the minimum and a fresh
    graph seed are a server's honest choices."""
    spec = get_backend("secagg+").plan(30, D)
    client = _client(spec)
    honest = _setup_of(spec.round_config())
    chosen = dataclasses.replace(
        honest, threshold=min(honest.threshold + 1, honest.degree + 1), graph_seed=os.urandom(32)
    )
    assert [type(decode(r)) for r in client.handle(encode(chosen))] == [AdvertiseKeys]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("bits", 32.0),  # TypeError: unsupported operand for <<
        ("bits", "32"),  # TypeError
        ("bits", 0),  # ValueError: negative shift count
        ("bits", True),  # "6 clients do not fit in True bits"
        ("value_bound", True),  # taken as 1.0
        ("scale", "5"),  # TypeError: must be real number
        ("scale", True),  # taken as 1.0: one unit per 1.0, an error bound of n
        ("dropout_fraction", "0.1"),  # TypeError in a comparison
        ("corrupt_fraction", None),  # TypeError in a comparison
    ],
)
def test_a_masking_option_of_the_wrong_type_is_refused_by_name(option: str, value: object) -> None:
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=option):
        secagg.aggregate(np.zeros((6, 3)), "secagg+", **{option: value})


@pytest.mark.parametrize("bound", [1e-300, 5e-324])
def test_a_tiny_value_bound_sums_instead_of_overflowing(bound: float) -> None:
    # before: OverflowError (cannot convert float infinity to integer) in largest_safe_scale
    updates = np.full((4, 3), bound)
    total, report = secagg.aggregate(updates, "secagg", value_bound=bound)
    assert np.max(np.abs(total - updates.sum(axis=0))) <= report.error_bound


@pytest.mark.parametrize("count", [np.int32(1000), np.int64(1000), np.uint64(1000), 1000])
def test_a_numpy_client_count_sizes_a_64_bit_ring_as_a_python_int_does(count: object) -> None:
    # before: np.int32 raised OverflowError (2^63 - 1 out of bounds for int32) at 64 bits
    from secagg.aggregation.masking import largest_safe_scale

    assert largest_safe_scale(count, 1.0, 64) == largest_safe_scale(1000, 1.0, 64) == 2.0**53
    assert largest_safe_scale(count, 1.0, 32) == 2.0**21


@settings(max_examples=200, deadline=None)
@given(
    clients=st.integers(min_value=1, max_value=100_000),
    bound=st.floats(min_value=1e-6, max_value=1e6),
    bits=st.sampled_from([32, 64]),
)
def test_the_rings_step_is_the_same_fraction_of_any_bound(
    clients: int, bound: float, bits: int
) -> None:
    """docs/backends.md, "The ring's step and the cohort": the step is n·C/2^(b-1) to
    within 2x, a fraction of the bound set by the cohort and the ring alone, so a
    step that reads coarse at a large bound (0.5 at 10^6, 1 000 clients, 32 bits) is
    as fine, relative to it, as at a bound of 1."""
    from secagg.aggregation.masking import largest_safe_scale

    room = (1 << (bits - 1)) - 1 - clients  # n (floor(C s) + 1) <= 2^(b-1) - 1
    step = 1 / largest_safe_scale(clients, bound, bits)
    ratio = step / bound  # the room's quotients in floats: a relative slack of 1e-12
    assert clients / room * (1 - 1e-12) <= ratio <= 2 * clients / room * (1 + 1e-12)
    assert 1 / largest_safe_scale(1000, 1e6, 32) == 0.5


def _with_scale(spec: MaskingSpec, scale: float) -> bytes:
    """``spec``'s wire bytes with another fixed-point scale (what a buggy or hostile
    server could announce; planning would never choose it)."""
    from secagg.aggregation.spec import encode_spec

    data = encode_spec(spec)
    at = data.index(struct.pack("<d", spec.scale), len(data) - len(spec.encode_body()))
    return data[:at] + struct.pack("<d", scale) + data[at + 8 :]


def test_a_spec_whose_scale_lets_the_sum_wrap_is_refused_not_summed_wrong() -> None:
    """Review (2026-12-06): a spec whose scale let the clients' sum wrap (three at 0.9,
    scale 2^31, 32 bits) was taken by both sides, and the round returned 0.7 for 2.7
    with an error bound of 1.4e-9 in its report. Built in code it is a HeadroomError;
    from the wire, a MalformedMessage before any client encodes."""
    from secagg.aggregation import decode_spec
    from secagg.errors import HeadroomError, MalformedMessage

    planned = MaskingBackend(graph="complete").plan(3, 4)
    with pytest.raises(HeadroomError, match="can overflow a signed 32-bit sum"):
        dataclasses.replace(planned, scale=2.0**31)
    with pytest.raises(MalformedMessage, match="can overflow"):
        decode_spec(_with_scale(planned, 2.0**31))
    assert decode_spec(_with_scale(planned, planned.scale)) == planned


@settings(max_examples=40, deadline=None)
@given(
    clients=st.integers(min_value=2, max_value=6),
    bound=st.floats(min_value=1e-3, max_value=1e6),
    bits=st.sampled_from([32, 64]),
    doublings=st.integers(min_value=-2, max_value=3),
)
def test_a_spec_from_the_wire_sums_right_or_is_refused(
    clients: int, bound: float, bits: int, doublings: int
) -> None:
    """Any fixed-point scale a spec can carry (the planned one times 2^-2 .. 2^3): the
    spec is refused, or every client at its bound (signs alternating, all +) sums
    within the reported bound."""
    from secagg.aggregation import decode_spec
    from secagg.errors import MalformedMessage

    backend = MaskingBackend(graph="complete", value_bound=bound, bits=bits)
    planned = backend.plan(clients, 2)
    try:
        spec = decode_spec(_with_scale(planned, planned.scale * 2.0**doublings))
    except MalformedMessage:
        assert doublings > 0  # the planned scale is the largest that fits
        return
    assert isinstance(spec, MaskingSpec)

    class Announced(MaskingBackend):
        def plan(self, num_clients: int, dimension: int, **options: object) -> MaskingSpec:
            return spec

    updates = np.full((clients, 2), bound)
    updates[::2, 1] = -bound
    total, report = run_local_round(
        Announced(graph="complete", value_bound=bound, bits=bits), updates
    )
    assert np.max(np.abs(total - updates.sum(axis=0))) <= report.error_bound


@pytest.mark.parametrize("count", [0, -3, 2.0, "4", None])
def test_a_client_count_that_is_no_positive_integer_is_refused_by_name(count: object) -> None:
    # before: 0 raised ZeroDivisionError, 2.0 and "4" were not refused
    from secagg.aggregation.masking import largest_safe_scale
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="number of clients"):
        largest_safe_scale(count, 1.0, 32)


@pytest.mark.parametrize("noise_share", [False, True])
def test_a_second_update_is_refused_before_it_is_encoded(noise_share: bool) -> None:
    """Before: the protocol client kept the second vector (the first was lost without a
    word), and the second update was encoded, its noise share drawn and the rounding
    stream advanced even when the protocol then refused it (the masked input already
    sent): a refused call that changed the branch's state."""
    spec = _noise_share_spec(3, 3) if noise_share else get_backend("secagg").plan(3, D)
    clients = [
        get_backend(spec.name).client(spec, p, rounding=KeyedStream(bytes(16)), policy=None)
        for p in range(3)
    ]
    for client in clients:
        client.set_input(np.full(D, 0.1))
    first = clients[0]
    refused_call(first, UnexpectedMessage, first.set_input, np.full(D, 0.2))
    # run the round to where the masked input has gone: still refused, still unchanged
    server = Server(spec.round_config())
    outbox = {m.recipient: [encode(m)] for m in server.start()}
    for _ in range(3):  # advertise keys, share keys, masked input
        replies = [decode(r) for p, c in enumerate(clients) for m in outbox[p] for r in c.handle(m)]
        outbox = {p: [] for p in range(3)}
        for reply in replies:
            for m in server.handle(reply):
                outbox[m.recipient].append(encode(m))
    assert first._protocol.phase.value == "await_unmasking"
    refused_call(first, UnexpectedMessage, first.set_input, np.full(D, 0.2))


def test_a_threshold_below_the_branch_floor_is_refused_naming_the_branch_key() -> None:
    """The branch's other refusals name its config key (``branch.max_clip``); the
    threshold floor, checked in the protocol's ``ClientPolicy``, said only
    ``refused by policy min_threshold``. It now names ``branch.min_threshold``, the key
    an operator sets in the ``[branch]`` table."""
    spec = get_backend("secagg").plan(12, D)
    honest = _setup_of(spec.round_config())
    client = _client(spec, BranchPolicy(min_threshold=honest.threshold + 1))
    before = fingerprint(client)
    with pytest.raises(PolicyRefused) as caught:
        client.handle(encode(honest))
    assert fingerprint(client) == before
    assert caught.value.setting == "branch.min_threshold"
    assert str(caught.value).startswith("refused by policy branch.min_threshold: threshold ")


def test_a_threshold_below_the_branchs_own_minimum_names_the_branch_assumption() -> None:
    """The threshold the branch computes itself refused as ``refused by policy
    threshold``, naming the server's parameter; it now names the ``[branch]`` key whose
    assumption decided it (here 5 % of 100 clients colluding: t >= 6)."""
    spec = get_backend("secagg").plan(100, D)
    honest = _setup_of(spec.round_config())
    lowered = dataclasses.replace(honest, threshold=3)
    client = _client(spec, BranchPolicy())
    before = fingerprint(client)
    with pytest.raises(PolicyRefused) as caught:
        client.handle(encode(lowered))
    assert fingerprint(client) == before
    assert caught.value.setting == "branch.corrupt_fraction"
    assert "branch.corrupt_fraction = 0.05" in str(caught.value)
    client.handle(encode(honest))  # the honest setup is still taken


@pytest.mark.parametrize(
    ("bad", "key"),
    [({"min_colluders": True}, "min_colluders"), ({"min_threshold": 2.5}, "min_threshold")],
)
def test_a_branch_policy_value_only_the_protocol_refuses_names_the_branch_key(
    bad: dict[str, object], key: str
) -> None:
    """A BranchPolicy built in code (not from TOML, whose reader checks types) passes
    these to the protocol's ``ClientPolicy``, whose error said the bare key."""
    from secagg.aggregation.masking import client_policy
    from secagg.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        client_policy(BranchPolicy(**bad))  # type: ignore[arg-type]
    assert str(caught.value).startswith(f"branch.{key} must be ")


def test_a_second_setup_is_refused_as_out_of_phase_not_as_a_policy_refusal() -> None:
    """Once set up, a masking client compared any further setup with its spec first: a
    second setup with other fields raised PolicyRefused, which a branch treats as the
    server asking for a weaker round (it leaves the round, and with stop-on-refusal
    exits as refused by its policy). It is an out-of-phase message: UnexpectedMessage,
    state unchanged; a setup for another party is UnknownParty."""
    spec = get_backend("secagg").plan(12, D)
    honest = _setup_of(spec.round_config())
    client = _client(spec)
    client.handle(encode(honest))
    other = dataclasses.replace(honest, vector_length=D + 1)
    refused_call(client, UnexpectedMessage, client.handle, encode(other))
    fresh = _client(spec)
    elsewhere = dataclasses.replace(honest, recipient=1, vector_length=D + 1)
    refused_call(fresh, UnknownParty, fresh.handle, encode(elsewhere))


def test_the_reported_threat_model_never_claims_more_tolerance_than_the_round_has() -> None:
    """The report said ``f"{0.126:.0%}"`` = "13%" dropout and "20%" colluders for a
    round sized for 12.6 % and 19.5 %: a claim above what the round tolerates. It now
    rounds down, to 0.1 %."""
    backend = MaskingBackend(graph="complete", dropout_fraction=0.126, corrupt_fraction=0.195)
    _, report = secagg.aggregate(np.zeros((6, 2)), backend=backend)
    assert "sized for 12.6% dropout and 19.5% clients colluding" in report.threat_model


@given(fraction=st.floats(0, 1, exclude_max=True))
def test_a_stated_percentage_is_the_fraction_rounded_down(fraction: float) -> None:
    stated = Fraction(_percent_down(fraction).removesuffix("%")) / 100
    exact = Fraction(repr(fraction))
    assert stated <= exact < stated + Fraction(1, 1000)


def _neighbourhoods(session: object) -> list[frozenset[int]]:
    graph = session._server.graph  # type: ignore[attr-defined]
    return [graph.neighbours(party) for party in range(graph.num_clients)]


def test_a_public_seed_fixes_the_secagg_plus_graph_and_none_draws_a_fresh_one() -> None:
    """A simulation's replay passes the round's public seed so that the same seed sends
    the same bytes (with two dropouts, how many shares the others send depends on whether
    the two neighbour each other); every other server draws the graph from the OS."""
    backend = MaskingBackend(graph="harary")
    spec = backend.plan(40, 8)
    seeded = [_neighbourhoods(backend.server(spec, public_seed=b"round-3" * 2)) for _ in "ab"]
    assert seeded[0] == seeded[1]
    other = _neighbourhoods(backend.server(spec, public_seed=b"round-4" * 2))
    assert other != seeded[0]
    fresh = [_neighbourhoods(backend.server(spec)) for _ in "ab"]
    assert fresh[0] != fresh[1]  # 40! / 80 orderings: equal by chance with probability ~0
