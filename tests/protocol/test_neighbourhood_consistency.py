"""SecAgg+ in the active variant: a server cannot unmask one input by showing each
neighbourhood its own survivor list.

Before, an active client revealed once ``t`` survivors *anywhere* had signed the list
it signed. In a Harary graph ``t`` is a neighbourhood's threshold, so many disjoint
groups of ``t`` can each sign their own list, and a server with the ``c`` colluders the
round is sized for took one honest input out alone (n = 10, k = 6, t = 5, c = 2, every
check passing):

1. it delivers to the victim ``u`` only the shares of ``t - 1`` neighbours ``M`` (its
   colluders and two honest ones), so ``u`` masks with them only;
2. it shows ``u`` and the honest members of ``M`` a list without ``u``'s other
   neighbours (they sign it with the colluders: ``t`` signers), and everyone else a
   list without the honest members of ``M`` (they sign it: many more than ``t``);
3. the first group reveals ``u``'s self-mask seed, the second the mask keys of the
   honest members of ``M``; the colluders know their own pair seeds with ``u``. So
   ``x_u = y_u - PRG(b_u) -/+ PRG(s_uw)`` for ``w`` in ``M``: the sum of one input.

Now a client reveals a share of an owner only if ``t`` of that owner's holders signed
the list (``Client._check_neighbourhood_signatures``): ``2t > k + 1 + c`` leaves room
for one such list per neighbourhood, so all honest holders that reveal a share of one
owner act on the same list, and ``u``'s holders no longer reveal against the others'.

At larger scale (n = 40 .. 80, the default k and t, the most colluders the policy
accepts, all around the victim) two properties hold: no split of survivor lists
isolates an honest input, and honest rounds with the tolerated dropouts complete.
Without the per-owner rule the first fails at each n tried (40, 60, 80: the victim's
input came out), checked by disabling the rule. The argument needs 2t > k + 1 + c for
every (n, c) the policy accepts; ``minimum_threshold`` enforces it for the active
variant (``worst_case_threshold``), and the property asserts it for the rounds it runs.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from unittest import mock

import numpy as np
import pytest
from _harness import SteppedRound, fingerprint, wire
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from secagg.crypto import kx, shamir
from secagg.crypto.prg import accumulate_masks
from secagg.crypto.signing import VerifyKey
from secagg.errors import PrivacyViolation, RoundAborted, SecAggError
from secagg.protocol import common, graph_params
from secagg.protocol.client import Client, ClientPhase
from secagg.protocol.messages import (
    PAIR_SEED_BYTES,
    ConsistencyRequest,
    MaskedInput,
    PartySignature,
    ShareDelivery,
    UnmaskingRequest,
    UnmaskingShares,
)
from secagg.protocol.server import ServerPhase
from secagg.protocol.simulation import run_round

N, K, T = 10, 6, 5
VICTIM = 0


def _answer(
    client: Client, message: object, refusals: list[type[Exception]], *, unchanged: bool = True
) -> list | None:
    """The client's replies, or None if it refused (the error's type is added to
    ``refusals``): with a typed error and, unless it aborted, no change at all (checked
    when ``unchanged``: the fingerprint was half the cost of a round at n = 80)."""
    before = fingerprint(client) if unchanged else None
    try:
        return client.handle(wire(message))  # type: ignore[arg-type]
    except RoundAborted:
        assert client.phase == ClientPhase.ABORTED
        refusals.append(RoundAborted)
    except SecAggError as exc:
        assert not unchanged or fingerprint(client) == before
        refusals.append(type(exc))
    return None


class Attack:
    """One run of the split-neighbourhood attack on ``VICTIM``, the server's haul kept."""

    def __init__(
        self,
        r: SteppedRound,
        colluders: set[int],
        honest_masking: set[int],
        *,
        delivered: Mapping[int, MaskedInput] | None = None,
        unchanged: bool = True,
    ) -> None:
        """Deliver the shares of ``r`` (a round whose deliveries are out) and collect
        the masked inputs, the victim masking only with ``colluders | honest_masking``.

        ``delivered``: the masked inputs of everyone but the victim, whose clients in
        ``r`` already took their deliveries (only the victim's is handed out here);
        ``unchanged``: whether each refusal is checked to change nothing."""
        self.round = r
        self.unchanged = unchanged
        self.colluders = colluders
        self.honest_masking = honest_masking
        self.masking = colluders | honest_masking
        self.everyone = frozenset(range(r.config.num_clients))
        self.threshold = r.config.threshold
        self.unmasked_neighbours = r.server.graph.neighbours(VICTIM) - self.masking
        rid = r.server.round_id
        r.to_clients = [
            m
            if m.recipient != VICTIM
            else ShareDelivery(rid, VICTIM, tuple(s for s in m.shares if s.peer in self.masking))
            for m in r.to_clients
            if delivered is None or m.recipient == VICTIM
        ]
        self.masked = {**(delivered or {}), **{m.sender: m for m in r.clients_reply()}}
        self.reveals: dict[int, UnmaskingShares] = {}
        self.refusals: list[type[Exception]] = []

    @property
    def honest(self) -> frozenset[int]:
        return self.everyone - self.colluders

    def list_for_victims_group(self) -> tuple[int, ...]:
        """Everyone but the victim's neighbours it did not mask with."""
        return tuple(sorted(self.everyone - self.unmasked_neighbours))

    def list_for_the_others(self) -> tuple[int, ...]:
        """Everyone but the honest neighbours the victim masked with: "they dropped"."""
        return tuple(sorted(self.everyone - self.honest_masking))

    def run(self, views: dict[int, tuple[int, ...]], asked: frozenset[int] | None = None) -> None:
        """Each honest party is shown ``views[party]`` to sign, then (those in ``asked``,
        if given) asked to unmask against it with every signature the server holds over
        it (its colluders sign every list)."""
        r, rid = self.round, self.round.server.round_id
        signatures: dict[tuple[int, ...], dict[int, bytes]] = {v: {} for v in views.values()}
        for party, view in views.items():
            request = ConsistencyRequest(rid, party, view)
            replies = _answer(r.clients[party], request, self.refusals, unchanged=self.unchanged)
            if replies:
                signatures[view][party] = replies[0].signature  # type: ignore[attr-defined]
        for view, signed in signatures.items():
            for colluder in self.colluders:
                signed[colluder] = r.identity[colluder].sign(common.consistency_payload(rid, view))
        for party, view in views.items():
            if party not in signatures[view] or (asked is not None and party not in asked):
                continue
            dropped = tuple(sorted(self.everyone - set(view)))
            proofs = tuple(PartySignature(p, s) for p, s in sorted(signatures[view].items()))
            unmasking = UnmaskingRequest(rid, party, view, dropped, proofs)
            replies = _answer(r.clients[party], unmasking, self.refusals, unchanged=self.unchanged)
            if replies:
                self.reveals[party] = replies[0]  # type: ignore[assignment]

    def shares(self, owner: int, kind: str) -> list[shamir.Share]:
        """Every share of ``owner``'s self-mask seed or mask key the server holds: those
        revealed to it and those its colluders keep."""
        out = [
            shamir.Share.from_bytes(common.share_point(holder), item.share)
            for holder, reply in self.reveals.items()
            for item in (reply.self_mask_shares if kind == "self_mask" else reply.mask_key_shares)
            if item.owner == owner
        ]
        for colluder in sorted(self.colluders):
            held = self.round.clients[colluder]._held.get(owner)
            if held is not None:
                out.append(
                    shamir.Share.from_bytes(common.share_point(colluder), getattr(held, kind))
                )
        return out

    def isolates_the_victim(self) -> bool:
        """Whether the server can remove every mask from the victim's input alone: its
        self-mask and, for each neighbour it masked with, the pair mask (known to a
        colluder, or through that neighbour's mask key or the victim's own)."""
        t = self.threshold
        if len(self.shares(VICTIM, "self_mask")) < t:
            return False
        if len(self.shares(VICTIM, "mask_key")) >= t:
            return True  # both secrets of one party: the never-both rule's business too
        return all(len(self.shares(w, "mask_key")) >= t for w in self.honest_masking)

    def recovered_input(self) -> np.ndarray:
        """The victim's input rebuilt from the haul (only when it isolates the victim)."""
        r, rid = self.round, self.round.server.round_id
        t = self.threshold
        seed = shamir.reconstruct(self.shares(VICTIM, "self_mask"), t, common.SELF_MASK_SEED_BYTES)
        victim_key = r.clients[VICTIM]._mask
        assert victim_key is not None
        pair_seeds = {c: r.clients[c]._pair_seeds[VICTIM] for c in self.colluders}
        for w in self.honest_masking:
            raw = shamir.reconstruct(self.shares(w, "mask_key"), t, common.MASK_KEY_BYTES)
            pair_seeds[w] = kx.derive_key(
                kx.keypair_from_private_bytes(raw).private,
                victim_key.public_bytes,
                purpose=common.MASK_PURPOSE,
                round_id=rid,
                party_a=w,
                party_b=VICTIM,
                length=PAIR_SEED_BYTES,
            )
        vector = np.array(self.masked[VICTIM].vector, copy=True)  # type: ignore[attr-defined]
        accumulate_masks(
            vector,
            [s for w, s in pair_seeds.items() if w > VICTIM],
            [seed] + [s for w, s in pair_seeds.items() if w < VICTIM],
        )
        return vector


@functools.cache
def _round_at_deliveries() -> SteppedRound:
    r = SteppedRound(N, 4, active=True, graph="harary", k=K, threshold=T)
    r.step()  # keys advertised, directories out
    r.server_receives(r.clients_reply())  # shares sealed, deliveries out
    return r


def _fresh_round() -> SteppedRound:
    """A round whose share deliveries are out, as new: a copy of one prepared once, so
    that an example costs its unmasking, not a round's key agreements and sharing
    (0.3 s an example before). Every example attacks the same graph; the graph's shape
    is the same for every seed (a ring), only its labels differ."""
    prepared = _round_at_deliveries()
    fresh = copy.copy(prepared)  # the server, graph and keys are only read: shared
    fresh.clients = copy.deepcopy(prepared.clients)
    return fresh


def _attack_parties(r: SteppedRound) -> tuple[set[int], set[int]]:
    """Two honest neighbours of the victim that are not each other's neighbours (their
    other holders can all be told they dropped), and two more as the colluders."""
    graph = r.server.graph
    around = sorted(graph.neighbours(VICTIM))
    a, b = next(
        (a, b) for a, b in itertools.combinations(around, 2) if b not in graph.neighbours(a)
    )
    colluders = [p for p in around if p not in (a, b)][:2]
    return set(colluders), {a, b}


def test_a_server_showing_two_neighbourhood_views_cannot_unmask_one_input() -> None:
    r = _fresh_round()
    # the default policy's smallest threshold here, and tight: 2t = k + c + 2
    assert r.clients[VICTIM].policy.minimum_threshold(N, r.config.graph, K, active=True) == T
    colluders, honest_masking = _attack_parties(r)
    attack = Attack(r, colluders, honest_masking)
    first, second = attack.list_for_victims_group(), attack.list_for_the_others()
    group = {VICTIM} | honest_masking
    attack.run({p: first if p in group else second for p in sorted(attack.honest)})
    if attack.isolates_the_victim():  # what happened before: the input came out alone
        np.testing.assert_array_equal(attack.recovered_input(), attack.round.inputs[VICTIM])
    assert not attack.isolates_the_victim()
    # the refusals are the per-owner check's: the victim's holders do not reveal
    # against the others' list, which too few of them signed
    refusing = attack.honest - set(attack.reveals)
    assert refusing & attack.round.server.graph.holders(VICTIM)
    assert set(attack.refusals) == {PrivacyViolation}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_assignment_of_survivor_lists_isolates_one_input(data: st.DataObject) -> None:
    """Property: with any two of the victim's neighbours colluding and any two honest
    ones among those it masks with, and each honest party shown the attack's list for
    it except a few shown another (the other group's, everyone, or everyone but a
    random few), the victim's input never comes out alone."""
    r = _fresh_round()
    around = sorted(r.server.graph.neighbours(VICTIM))
    colluders = set(data.draw(st.permutations(around), label="order")[:2])
    rest = [p for p in around if p not in colluders]
    honest_masking = set(
        data.draw(st.lists(st.sampled_from(rest), min_size=2, max_size=2, unique=True), label="M")
    )
    attack = Attack(r, colluders, honest_masking)
    everyone = tuple(range(N))
    first, second = attack.list_for_victims_group(), attack.list_for_the_others()
    gone = data.draw(st.sets(st.sampled_from(everyone), max_size=3), label="a few gone")
    candidates = [first, second, everyone, tuple(p for p in everyone if p not in gone)]
    group = {VICTIM} | honest_masking
    views = {p: first if p in group else second for p in sorted(attack.honest)}
    deviants = data.draw(st.sets(st.sampled_from(sorted(attack.honest)), max_size=3), label="dev")
    for party in sorted(deviants):
        views[party] = data.draw(st.sampled_from(candidates), label=f"view {party}")
    attack.run(views)
    for refusal in attack.refusals:
        event(f"refused: {refusal.__name__}")
    assert not attack.isolates_the_victim()


def test_an_honest_server_aborts_before_asking_for_shares_no_holder_would_reveal() -> None:
    """A dropout that leaves an owner fewer than t holders among the signers dooms the
    round (its secret cannot be rebuilt); the server now says so at the consistency
    close, naming the owner, instead of sending requests its holders refuse (the
    in-memory simulation let that refusal escape) or, before the per-owner rule, an
    anonymous shortfall at unmasking. n = 10, k = 2, t = 3: party 0 gone at once
    leaves its ring neighbours two holders each."""
    inputs = np.arange(N, dtype=np.uint32).reshape(N, 1)
    with pytest.raises(RoundAborted, match="share holders signed the survivor set"):
        run_round(inputs, graph="harary", k=2, active=True, dropped={"advertise_keys": [0]}, seed=0)


def _split_for(r: SteppedRound, colluders: int = 2) -> tuple[set[int], set[int]]:
    """Colluders and honest masking neighbours of the victim for which the attack's two
    lists pass every check a client made before (a search over random choices: the
    lists must stay connected, each signer keep t of its holders, and each honest
    masking neighbour keep t holders besides the victim to reveal its mask key)."""
    graph, t = r.server.graph, r.config.threshold
    around = sorted(graph.neighbours(VICTIM))
    everyone = set(range(r.config.num_clients))
    chooser = random.Random(1)  # which choice is tried is no secret: a fixed order
    for _ in range(5000):
        chosen = chooser.sample(around, t - 1)
        corrupt, honest = set(chosen[:colluders]), set(chosen[colluders:])
        first = everyone - (set(around) - set(chosen))
        second = everyone - honest
        if not (graph.connects(first) and graph.connects(second)):
            continue
        if any(len(graph.holders(p) & first) < t for p in honest | {VICTIM}):
            continue
        if all(
            len(
                [
                    y
                    for y in graph.holders(w) - {w, VICTIM} - honest
                    if y in corrupt or len(graph.holders(y) & second) >= t
                ]
            )
            >= t
            for w in honest
        ):
            return corrupt, honest
    raise AssertionError("no split found")


@pytest.mark.parametrize(("n", "k", "t"), [(20, 8, 6), (30, 10, 7)])
def test_the_same_attack_on_larger_rounds_unmasks_nothing(n: int, k: int, t: int) -> None:
    """The attack is not an artefact of n = 10: at the default policy's smallest
    thresholds for these graphs (two colluders), it isolated the victim before too."""
    r = SteppedRound(n, 2, active=True, graph="harary", k=k, threshold=t)
    assert r.clients[VICTIM].policy.minimum_threshold(n, r.config.graph, k, active=True) == t
    r.step()
    r.server_receives(r.clients_reply())
    attack = Attack(r, *_split_for(r))
    first, second = attack.list_for_victims_group(), attack.list_for_the_others()
    group = {VICTIM} | attack.honest_masking
    attack.run({p: first if p in group else second for p in sorted(attack.honest)})
    assert not attack.isolates_the_victim()
    assert set(attack.refusals) == {PrivacyViolation}


# --- at larger scale: n = 40 .. 80, the default k and t, the most colluders accepted ---

#: The default active policy gives, in 40..80, (k, t, c) = (12, 8, 2) from n = 40,
#: (14, 9, 2) from 50, (18, 12, 4) from 60, (20, 13, 4) from 70 and (22, 14, 4) at 80
#: (c: the most colluders it accepts). The bound 2t > k + 1 + c depends on those alone;
#: a round costs 1 to 2 s to prepare here, so three: both ends and the jump to c = 4.
LARGE_ROUNDS = (40, 60, 80)


def _largest_tolerated_colluders(n: int, k: int, t: int) -> int:
    return graph_params.colluders_tolerated_by(n, k, t, semi_malicious=True)


@functools.cache
def _large_round(n: int) -> tuple[SteppedRound, dict[int, Client], dict[int, MaskedInput]]:
    """A round of ``n`` at the default active parameters with its share deliveries out,
    and every client after taking its delivery, with its masked input: an example
    redoes only what it changes (the victim's delivery, or nothing)."""
    r = SteppedRound(n, 2, active=True, graph="harary")
    params = graph_params.sized_harary_parameters(n, semi_malicious=True)
    assert params is not None
    assert (r.config.degree, r.config.threshold) == (params.k, params.threshold)
    r.step()
    r.server_receives(r.clients_reply())
    delivered = copy.copy(r)
    delivered.clients = copy.deepcopy(r.clients)
    masked = {m.sender: m for m in delivered.clients_reply()}  # type: ignore[misc]
    return r, dict(enumerate(delivered.clients)), masked


def _delivered_clients(n: int) -> dict[int, Client]:
    """Copies of the round of ``n``'s clients as they took their deliveries.

    Shallow copies: past its delivery a client's handlers only rebind attributes
    (phase, signed list, reveals), never change a shared object in place, and deep
    copies of 80 clients were most of an example's cost. Checked: every cached client
    is still where the prepared round left it."""
    clients = _large_round(n)[1]
    assert all(c.phase == ClientPhase.AWAIT_CONSISTENCY for c in clients.values())
    return {p: copy.copy(client) for p, client in clients.items()}


def _large_attack(n: int, colluders: set[int], honest_masking: set[int]) -> Attack:
    """The attack on a fresh copy of the round of ``n``: everyone's delivery taken,
    the victim's restricted to ``colluders | honest_masking``."""
    prepared, _, masked = _large_round(n)
    r = copy.copy(prepared)
    clients = _delivered_clients(n)
    clients[VICTIM] = copy.deepcopy(prepared.clients[VICTIM])
    r.clients = [clients[p] for p in range(n)]
    others = {p: m for p, m in masked.items() if p != VICTIM}
    return Attack(r, colluders, honest_masking, delivered=others, unchanged=False)


#: (public key, signature, message) triples that verified: see :func:`_verified_once`
_VALID_SIGNATURES: set[tuple[bytes, bytes, bytes]] = set()


@contextlib.contextmanager
def _verified_once() -> Iterator[None]:
    """Each valid signature checked by Ed25519 once, then remembered.

    Why: at n = 80 every client checks about 2t signatures of the same list, and the
    checks were most of what remained of an example's cost. A cache of a pure function
    that keeps only successes changes no outcome: a signature that does not verify is
    checked, and refused, every time."""
    real = VerifyKey.verify

    def verify(key: VerifyKey, signature: bytes, message: bytes) -> None:
        entry = (key.raw, bytes(signature), bytes(message))
        if entry not in _VALID_SIGNATURES:
            real(key, signature, message)
            _VALID_SIGNATURES.add(entry)

    with mock.patch.object(VerifyKey, "verify", verify):
        yield


@functools.cache
def _large_split(n: int) -> tuple[frozenset[int], frozenset[int]]:
    """The split attack's colluders and honest masking neighbours for the round of
    ``n``, with the most colluders the policy accepts (found once: a search)."""
    r = _large_round(n)[0]
    c = _largest_tolerated_colluders(n, r.config.degree, r.config.threshold)
    corrupt, honest = _split_for(r, colluders=c)
    return frozenset(corrupt), frozenset(honest)


def _isolated_inputs(attack: Attack) -> list[int]:
    """Every honest party whose input the server can unmask alone from its haul: its
    self-mask seed and, for each neighbour it masked with, the pair mask (a colluder's,
    or through either party's mask key) are all within reach."""
    r, t = attack.round, attack.threshold
    held: Counter[tuple[int, str]] = Counter()  # (owner, kind) -> shares in reach
    for reply in attack.reveals.values():
        held.update((item.owner, "self_mask") for item in reply.self_mask_shares)
        held.update((item.owner, "mask_key") for item in reply.mask_key_shares)
    for colluder in attack.colluders:
        for owner in r.clients[colluder]._held:
            held.update([(owner, "self_mask"), (owner, "mask_key")])
    isolated = []
    for u in sorted(attack.honest):
        client = r.clients[u]
        masked_with = (set(client._held) | set(client._accused)) - {u}
        if held[u, "self_mask"] >= t and all(
            w in attack.colluders or held[u, "mask_key"] >= t or held[w, "mask_key"] >= t
            for w in masked_with
        ):
            isolated.append(u)
    return isolated


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_at_larger_scale_no_split_of_survivor_lists_isolates_an_honest_input(
    data: st.DataObject,
) -> None:
    """Property (n = 40 .. 80, default k and t, the most colluders the policy accepts,
    all among the victim's neighbours): the victim masks only with ``t - 1``
    neighbours, the colluders among them; honest parties are shown the split attack's
    two lists (or a random choice of masking neighbours and lists), a few of them
    another (everyone, everyone but a random few, or a random one of the two), and each
    is asked to unmask against its list with every signature the server holds over it.
    No honest input comes out alone."""
    n = data.draw(st.sampled_from(LARGE_ROUNDS), label="n")
    prepared = _large_round(n)[0]
    t, graph = prepared.config.threshold, prepared.server.graph
    c = _largest_tolerated_colluders(n, prepared.config.degree, t)
    assert 2 * t > prepared.config.degree + 1 + c  # what the per-owner rule rests on
    around = sorted(graph.neighbours(VICTIM))
    if data.draw(st.booleans(), label="searched split"):
        colluders, honest_masking = (set(group) for group in _large_split(n))
    else:
        chosen = data.draw(st.permutations(around), label="masking")[: t - 1]
        colluders, honest_masking = set(chosen[:c]), set(chosen[c:])
    attack = _large_attack(n, colluders, honest_masking)
    everyone = tuple(range(n))
    # whose reveals can bear on the victim: its holders and their holders
    near = frozenset(graph.holders(VICTIM)).union(
        *(graph.holders(p) for p in graph.holders(VICTIM))
    )
    first, second = attack.list_for_victims_group(), attack.list_for_the_others()
    gone = data.draw(st.sets(st.sampled_from(everyone), max_size=4), label="a few gone")
    candidates = [first, second, everyone, tuple(p for p in everyone if p not in gone)]
    group = {VICTIM} | honest_masking
    views = {p: first if p in group else second for p in sorted(attack.honest)}
    honest_near = sorted(near & attack.honest)
    deviants = data.draw(st.sets(st.sampled_from(honest_near), max_size=4), label="dev")
    for party in sorted(deviants):
        views[party] = data.draw(st.sampled_from(candidates), label=f"view {party}")
    with _verified_once():
        attack.run(views, asked=near)
    for refusal in attack.refusals:
        event(f"refused: {refusal.__name__}")
    event(f"revealing: {'some' if attack.reveals else 'none'}")
    assert _isolated_inputs(attack) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_at_larger_scale_honest_rounds_with_tolerated_dropouts_complete(
    data: st.DataObject,
) -> None:
    """Property (n = 40 .. 80, default k and t): an honest server and honest clients, up
    to the tolerated ``floor(delta * n)`` of them dropping anywhere (before their masked
    input, before signing, or before revealing), always complete the round with the
    exact sum of the included inputs: the per-owner rule never refuses an honest round
    the parameters were sized for."""
    n = data.draw(st.sampled_from(LARGE_ROUNDS), label="n")
    prepared, _, masked = _large_round(n)
    tolerated = graph_params.tolerated_dropouts(n, prepared.config.dropout_fraction)
    # anywhere, or all among one party's holders: the per-owner rule's hardest case
    centre = data.draw(st.integers(0, n - 1), label="centre")
    clustered = data.draw(st.booleans(), label="clustered")
    pool = sorted(prepared.server.graph.holders(centre)) if clustered else list(range(n))
    dropped = data.draw(st.sets(st.sampled_from(pool), max_size=tolerated), label="dropped")
    when = {
        p: data.draw(st.sampled_from(["input", "signing", "reveal"]), label=f"when {p}")
        for p in sorted(dropped)
    }
    r = copy.copy(prepared)
    r.server = copy.deepcopy(prepared.server)
    clients = _delivered_clients(n)
    r.clients = [clients[p] for p in range(n)]
    gone = {phase: {p for p in dropped if when[p] == phase} for phase in ("input", "signing")}
    with _verified_once():
        r.server_receives([m for p, m in sorted(masked.items()) if p not in gone["input"]])
        r.step(gone["input"] | gone["signing"])
        r.step(dropped)
    event(f"n = {n}, dropped: {len(dropped)} of {tolerated}")
    assert r.server.phase == ServerPhase.COMPLETE
    assert set(r.server.report.included) == set(range(n)) - gone["input"]
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
