"""One malicious client, one random deviation, at the phase it belongs to.

tests/protocol/test_adversarial.py perturbs fields of genuine messages at random; this
draws the deviations a malicious client would choose on purpose: another party's keys
advertised as its own, equal or low-order keys, a second advertisement, shares swapped
between recipients, addressed to a non-neighbour, doubled or missing, every share
garbled, an accusation of a stranger or one naming a key its target never advertised
(signed by the deviant itself in the active variant), and a reveal of the other share
kind of a neighbour. A deviation the server can see is refused with its typed error
and changes nothing, after which the genuine message still counts; one it cannot see
(swapped or garbled shares, copied keys in the passive variant) costs at most the
deviant's own place: the round ends in the exact sum of the clients it includes, or
aborts with a reason, and every accusation names the deviant.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from _harness import SteppedRound, refused_call, wire
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from secagg.errors import DuplicateMessage, InvalidMessage, SignatureError
from secagg.protocol import ServerPhase, common
from secagg.protocol.config import ClientPolicy
from secagg.protocol.messages import (
    Accusation,
    AdvertiseKeys,
    ClientMessage,
    GraphKind,
    MaskedInput,
    RevealedShare,
    SealedShare,
    ShareKeys,
    UnmaskingShares,
)

#: the all-zero key: a point of small order (tests/protocol/test_adversarial.py has all)
LOW_ORDER = bytes(32)

#: deviation -> the message type it changes
DEVIATIONS = {
    "copied_keys": AdvertiseKeys,
    "equal_keys": AdvertiseKeys,
    "low_order_key": AdvertiseKeys,
    "advertise_twice": AdvertiseKeys,
    "swapped_shares": ShareKeys,
    "share_for_a_stranger": ShareKeys,
    "doubled_share": ShareKeys,
    "missing_share": ShareKeys,
    "garbled_shares": ShareKeys,
    "accuses_a_stranger": MaskedInput,
    "accuses_with_a_wrong_key": MaskedInput,
    "reveals_the_other_kind": UnmaskingShares,
}


def _garble(share: SealedShare) -> SealedShare:
    return SealedShare(share.peer, share.ciphertext[:-1] + bytes([share.ciphertext[-1] ^ 1]))


def _sign_accusations(r: SteppedRound, msg: MaskedInput) -> MaskedInput:
    """The deviant signs its own accusations: it holds its identity key."""
    if not r.config.active:
        return msg
    payload = common.accusation_payload(msg.round_id, msg.sender, msg.accusations)
    return dataclasses.replace(msg, signature=r.identity[msg.sender].sign(payload))


def _deviate(
    data: st.DataObject, r: SteppedRound, kind: str, genuine: ClientMessage, batch: list
) -> tuple[ClientMessage, type[Exception] | None]:
    """The deviant's message, and the error the server must refuse it with (None: the
    server cannot tell it from an honest one)."""
    deviant = genuine.sender
    others = [m for m in batch if m.sender != deviant]
    n = r.config.num_clients
    # non-neighbours in SecAgg+, and a party outside the round in any graph
    strangers = [p for p in range(n) if p not in r.server.graph.holders(deviant)] + [n + 3]
    if kind == "copied_keys":
        assume(others)
        victim = data.draw(st.sampled_from(others), label="keys copied from")
        copied = dataclasses.replace(
            genuine,
            channel_key=victim.channel_key,
            mask_key=victim.mask_key,
            signature=victim.signature,
        )
        return copied, SignatureError if r.config.active else None
    if kind == "equal_keys":
        return dataclasses.replace(genuine, mask_key=genuine.channel_key), InvalidMessage
    if kind == "low_order_key":
        field = data.draw(st.sampled_from(["channel_key", "mask_key"]), label="which key")
        return dataclasses.replace(genuine, **{field: LOW_ORDER}), InvalidMessage
    if kind == "advertise_twice":
        assert isinstance(genuine, AdvertiseKeys)
        r.server.handle(genuine)  # the first one counts
        second = dataclasses.replace(genuine, mask_key=genuine.channel_key[::-1])
        return second, DuplicateMessage
    if kind in ("swapped_shares", "doubled_share", "missing_share", "share_for_a_stranger"):
        shares = list(genuine.shares)
        assume(len(shares) >= 2)
        i, j = data.draw(st.permutations(range(len(shares))), label="shares")[:2]
        if kind == "swapped_shares":
            shares[i], shares[j] = (
                SealedShare(shares[i].peer, shares[j].ciphertext),
                SealedShare(shares[j].peer, shares[i].ciphertext),
            )
            return dataclasses.replace(genuine, shares=tuple(shares)), None
        if kind == "doubled_share":
            shares[j] = SealedShare(shares[i].peer, shares[j].ciphertext)
            return dataclasses.replace(genuine, shares=tuple(shares)), DuplicateMessage
        if kind == "missing_share":
            del shares[i]
            return dataclasses.replace(genuine, shares=tuple(shares)), InvalidMessage
        stranger = data.draw(st.sampled_from(strangers), label="stranger")
        shares[i] = SealedShare(stranger, shares[i].ciphertext)
        return dataclasses.replace(genuine, shares=tuple(shares)), InvalidMessage
    if kind == "garbled_shares":
        return dataclasses.replace(genuine, shares=tuple(map(_garble, genuine.shares))), None
    if kind == "accuses_a_stranger":
        stranger = data.draw(st.sampled_from(strangers), label="stranger")
        key = r.server._keys[stranger].mask_key if stranger < n else LOW_ORDER
        accusation = Accusation(stranger, key)
        changed = dataclasses.replace(genuine, accusations=(accusation,))
        return _sign_accusations(r, changed), InvalidMessage
    if kind == "accuses_with_a_wrong_key":
        neighbours = sorted(r.server.graph.neighbours(deviant) & r.server._expected)
        assume(neighbours)
        target = data.draw(st.sampled_from(neighbours), label="accused")
        wrong = data.draw(
            st.sampled_from([LOW_ORDER, r.server._keys[deviant].mask_key]), label="key"
        )
        changed = dataclasses.replace(genuine, accusations=(Accusation(target, wrong),))
        return _sign_accusations(r, changed), InvalidMessage
    assert kind == "reveals_the_other_kind"
    assume(genuine.self_mask_shares)
    item = data.draw(st.sampled_from(genuine.self_mask_shares), label="owner")
    extra = RevealedShare(item.owner, bytes(common.MASK_KEY_SHARE_BYTES))
    changed = dataclasses.replace(genuine, mask_key_shares=(*genuine.mask_key_shares, extra))
    return changed, InvalidMessage


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_deviating_client_is_refused_unchanged_or_costs_at_most_its_own_place(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(5, 9), label="n")
    active = data.draw(st.booleans(), label="active")
    harary = n >= 8 and data.draw(st.booleans(), label="harary")
    k = data.draw(st.sampled_from(range(4, n - 1, 2)), label="k") if harary else None
    degree = n - 1 if k is None else k
    graph = GraphKind.HARARY if harary else GraphKind.COMPLETE
    lowest = ClientPolicy().minimum_threshold(n, graph, degree, active=active)
    assume(lowest is not None)
    assert lowest is not None
    t = data.draw(st.integers(lowest, degree + 1), label="t")
    r = SteppedRound(n, 4, active=active, graph=graph.name.lower(), k=k, threshold=t)
    deviant = data.draw(st.integers(0, n - 1), label="deviant")
    kind = data.draw(st.sampled_from(sorted(DEVIATIONS)), label="deviation")
    target = DEVIATIONS[kind]
    done = False
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        batch = r.clients_reply(refusal_is_dropout=True)
        mine = [m for m in batch if m.sender == deviant and isinstance(m, target)]
        if mine and not done:
            done = True
            (genuine,) = mine
            changed, error = _deviate(data, r, kind, genuine, batch)
            if error is None:  # the server cannot tell: it goes in instead
                batch = [changed if m is genuine else m for m in batch]
                event(f"{kind}: accepted")
            else:
                refused_call(r.server, error, r.server.handle, wire(changed))
                event(f"{kind}: refused")
                if kind == "advertise_twice":  # its first advertisement already counted
                    batch = [m for m in batch if m is not genuine]
        out = []
        for message in batch:
            out.extend(r.server.handle(message))  # every other message is honest
        if not out and r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
            out = r.server.close_phase()
        r.to_clients = out
    assume(done)  # the deviant left before its turn (too few holders): nothing to see
    for accused, accusers in r.server.report.accused.items():
        assert accused == deviant or accusers == {deviant}, (accused, accusers)
    if r.server.phase == ServerPhase.ABORTED:
        assert r.server.report.abort_reason
        event("aborted")
        return
    event("complete")
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
