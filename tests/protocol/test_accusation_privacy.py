"""A server that corrupts the sealed shares it relays must not learn anyone's input.

The server relays every sealed share (phase 2), so a malicious one can garble any of
them. A garbled share is *accused* by its recipient, not obeyed (security review M3).
Before 2026-12-05 an accuser neither masked with the accused nor kept the pair seed to
itself: it sent the seed ``s_uv`` to the server, which removed ``v``'s half of the pair
mask with it. So the server could garble the shares travelling *to* a victim ``v``
(``v`` accused its honest neighbours, masked with none of them, yet they still held
``v``'s shares) and those travelling *from* ``v`` (its neighbours accused ``v`` and
handed over the seeds of the pair masks ``v`` did add). With every neighbour in one of
the two groups, ``y_v = x_v + PRG(b_v) + (masks of known seeds)``; ``v`` survived, so
its holders revealed ``b_v``, and the server read ``x_v`` exactly, with no colluding
client, in the active variant too, while the round completed with the right sum.

Now an accuser still masks with the accused and reveals no seed: an accusation says
only "I hold none of its shares". These tests play that server: they garble random
sets of shares around a random victim, run the round to its end with the honest
server's own bookkeeping, and then try to read the victim's input from everything the
server saw. They never can; the round still ends in the exact sum of the clients it
includes, or aborts naming the accused.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from _harness import SteppedRound
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from secagg.crypto import kx, shamir
from secagg.crypto.prg import accumulate_masks
from secagg.errors import SecAggError
from secagg.protocol import ServerPhase, common
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    PAIR_SEED_BYTES,
    ClientMessage,
    GraphKind,
    MaskedInput,
    SealedShare,
    ShareDelivery,
    UnmaskingShares,
)

#: what the server does to the sealed shares between the victim and one neighbour
FATES = ("to_victim", "to_victim", "from_victim", "from_victim", "both", "none", "none")


def _garbled(share: SealedShare) -> SealedShare:
    return SealedShare(share.peer, share.ciphertext[:-1] + bytes([share.ciphertext[-1] ^ 1]))


def _tamper(delivery: ShareDelivery, victim: int, fate: dict[int, str]) -> ShareDelivery:
    """Garble, in one recipient's delivery, the shares the fates say to garble."""
    recipient = delivery.recipient
    shares = []
    for share in delivery.shares:
        sender = share.peer
        if recipient == victim and fate.get(sender) in ("to_victim", "both"):
            share = _garbled(share)
        elif sender == victim and fate.get(recipient) in ("from_victim", "both"):
            share = _garbled(share)
        shares.append(share)
    return dataclasses.replace(delivery, shares=tuple(shares))


def _run(
    r: SteppedRound, victim: int, fate: dict[int, str], leave: dict[int, int] | None = None
) -> list[ClientMessage]:
    """The round to its end, the server garbling shares around ``victim`` and each
    client in ``leave`` vanishing before the server message of that phase; every client
    reply the server received (its whole view of the clients)."""
    seen: list[ClientMessage] = []
    leave = leave or {}
    index = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.to_clients = [
            _tamper(m, victim, fate) if isinstance(m, ShareDelivery) else m for m in r.to_clients
        ]
        gone = {p for p, phase in leave.items() if phase <= index}
        replies = r.clients_reply(gone, refusal_is_dropout=True)
        seen.extend(replies)
        r.server_receives(replies, refusal_is_dropout=True)
        index += 1
    return seen


def _secret(seen: list[ClientMessage], owner: int, kind: str, t: int) -> bytes | None:
    """``owner``'s self-mask seed or mask key, if t holders revealed a share of it."""
    size = common.SELF_MASK_SEED_BYTES if kind == "self_mask" else common.MASK_KEY_BYTES
    shares = [
        shamir.Share.from_bytes(common.share_point(m.sender), s.share)
        for m in seen
        if isinstance(m, UnmaskingShares)
        for s in getattr(m, f"{kind}_shares")
        if s.owner == owner
    ]
    return shamir.reconstruct(shares[:t], t, size) if len(shares) >= t else None


def _pair_seeds(r: SteppedRound, victim: int, seen: list[ClientMessage]) -> dict[int, bytes]:
    """Every seed of a pair mask with the victim that the server can know: sent in an
    accusation (before the fix), or derived from a neighbour's mask key rebuilt from
    t revealed shares (it dropped, or was said to)."""
    t = r.config.threshold
    known = {
        m.sender: a.pair_seed
        for m in seen
        if isinstance(m, MaskedInput)
        for a in m.accusations
        if a.party == victim and hasattr(a, "pair_seed")
    }
    for w in r.server.graph.neighbours(victim):
        raw = _secret(seen, w, "mask_key", t)
        if raw is not None and w not in known:
            known[w] = kx.derive_key(
                kx.keypair_from_private_bytes(raw).private,
                r.server._keys[victim].mask_key,
                purpose=common.MASK_PURPOSE,
                round_id=r.server.round_id,
                party_a=w,
                party_b=victim,
                length=PAIR_SEED_BYTES,
            )
    return known


def _read_input(r: SteppedRound, victim: int, seen: list[ClientMessage]) -> np.ndarray | None:
    """The victim's input as the server computes it from what it saw, or None if it
    cannot: ``y_v - PRG(b_v)`` minus the pair masks ``v`` added. It needs ``b_v`` from t
    shares and the seed of every pair ``v`` masked with: the delivered neighbours it did
    not accuse (the rule before the fix) or all of them (the rule now); it tries both."""
    masked = [m for m in seen if isinstance(m, MaskedInput) and m.sender == victim]
    self_mask = _secret(seen, victim, "self_mask", r.config.threshold)
    if not masked or self_mask is None:
        return None
    (mine,) = masked
    known = _pair_seeds(r, victim, seen)
    delivered = r.server.graph.neighbours(victim) & set(r.server.report.responders["share_keys"])
    for partners in (delivered - {a.party for a in mine.accusations}, delivered):
        if partners <= set(known):
            x = np.array(mine.vector, copy=True)
            add = [known[w] for w in partners if w > victim]  # v subtracted PRG(s_vw), w > v
            subtract = [self_mask] + [known[w] for w in partners if w < victim]
            accumulate_masks(x, add, subtract)
            return x
    return None


def _check_outcome(r: SteppedRound) -> str:
    """The round's own outcome: the exact sum of the clients it includes, or an abort."""
    if r.server.phase == ServerPhase.ABORTED:
        assert r.server.report.abort_reason
        return "aborted"
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    return "complete"


def test_garbling_every_share_the_victim_receives_does_not_unmask_it() -> None:
    """The plainest form: no colluder, every share sent to the victim garbled. The
    victim accused all 9 neighbours and masked with none of them; its holders revealed
    ``b_v``, so ``y_v - PRG(b_v)`` was its input, word for word, in both variants."""
    for active in (False, True):
        r = SteppedRound(10, 6, active=active)
        victim = 4
        fate = {w: "to_victim" for w in range(10) if w != victim}
        seen = _run(r, victim, fate)
        got = _read_input(r, victim, seen)
        assert got is None or not np.array_equal(got, r.inputs[victim])
        assert r.server.report.accused.keys() == set(fate)  # the victim accused them all
        assert _check_outcome(r) == "complete"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_server_garbling_relayed_shares_never_reads_an_input(data: st.DataObject) -> None:
    n = data.draw(st.integers(5, 11), label="n")
    active = data.draw(st.booleans(), label="active")
    harary = n >= 8 and data.draw(st.booleans(), label="harary")
    k = data.draw(st.sampled_from(range(4, n - 1, 2)), label="k") if harary else None
    degree = n - 1 if k is None else k
    graph = GraphKind.HARARY if harary else GraphKind.COMPLETE
    lowest = ClientPolicy().minimum_threshold(n, graph, degree, active=active)
    assume(lowest is not None)
    assert lowest is not None
    t = data.draw(st.integers(lowest, degree + 1), label="t")
    try:
        r = SteppedRound(n, 6, active=active, graph=graph.name.lower(), k=k, threshold=t)
    except SecAggError:
        assume(False)
        return
    victim = data.draw(st.integers(0, n - 1), label="victim")
    fate = {
        w: data.draw(st.sampled_from(FATES), label=f"shares between victim and {w}")
        for w in sorted(r.server.graph.neighbours(victim))
    }
    # a few others vanish, each before a random phase's message: 1 the key directory,
    # 2 the share delivery, 3 the consistency check (active) or the unmasking request,
    # 4 the unmasking request (active; never, in the passive variant)
    others = [p for p in range(n) if p != victim]
    leavers = data.draw(st.sets(st.sampled_from(others), max_size=2), label="leavers")
    leave = {p: data.draw(st.integers(1, 4), label=f"{p} leaves before") for p in leavers}
    seen = _run(r, victim, fate, leave)
    got = _read_input(r, victim, seen)
    if got is not None:
        event("the server could compute a reading")
    assert got is None or not np.array_equal(got, r.inputs[victim]), (
        f"the server read the input of party {victim} (fates {fate})"
    )
    event(_check_outcome(r))


def test_a_client_that_garbles_every_share_and_drops_aborts_the_round_naming_it() -> None:
    """The price of the fix, stated: every neighbour accused the garbler and still
    masked with it, so when it drops its masks come off only through its mask key, which
    no t holders can rebuild. Before, nobody had masked with it and the round completed
    without it; now it aborts at the close of the masked-input phase, naming it (one
    client could abort a round before too, by sharing a secret other than its own)."""
    r = SteppedRound(6, 4, threshold=4)
    garbler = 2
    r.step()  # key directories are pending
    r.server_receives(
        [
            dataclasses.replace(m, shares=tuple(map(_garbled, m.shares)))
            if m.sender == garbler
            else m
            for m in r.clients_reply()
        ]
    )
    r.step(skip={garbler})  # it vanishes before its masked input
    assert r.server.phase == ServerPhase.ABORTED
    assert r.server.report.accused == {garbler: {0, 1, 3, 4, 5}}
    assert f"party {garbler}'s shares did not open" in (r.server.report.abort_reason or "")
