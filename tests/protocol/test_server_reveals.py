"""The server keeps revealed shares as arrays and picks each secret's t smallest points.

Reveals are stored one array per message (``_Reveals``), never one ``Share`` per
share; the close picks, for every owner, the shares at its t smallest share points,
the ones ``shamir.reconstruct_many`` would take. These tests pin that choice: on
the store directly, and in whole rounds where a forged share matters exactly when it
is among the picked ones, whatever order the reveals arrive in.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _harness import SteppedRound
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.errors import InvalidMessage
from secagg.protocol import ServerPhase
from secagg.protocol.messages import RevealedShare, UnmaskingShares
from secagg.protocol.server import _Reveals


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_reveals_pick_each_owners_t_smallest_points(data) -> None:
    limbs = data.draw(st.integers(1, 9))
    parties = data.draw(st.integers(1, 12))
    store = _Reveals(limbs)
    holders = data.draw(st.permutations(range(parties)))
    for holder in holders[: data.draw(st.integers(0, parties))]:
        owners = data.draw(st.lists(st.integers(0, parties - 1), unique=True, max_size=parties))
        values = np.array(
            data.draw(
                st.lists(
                    st.lists(st.integers(0, shamir.PRIME - 1), min_size=limbs, max_size=limbs),
                    min_size=len(owners),
                    max_size=len(owners),
                )
            ),
            dtype=np.uint32,
        ).reshape(len(owners), limbs)
        store.add(holder + 1, owners, values)
    by_owner = store.by_owner()
    counts = store.count_by_owner(parties)
    assert counts == [len(by_owner.get(p, ())) for p in range(parties)]
    t = data.draw(st.integers(1, parties))
    required = [p for p in range(parties) if counts[p] >= t]
    required = data.draw(st.permutations(required))
    points, values = store.pick(required, t)
    assert points.shape == (len(required), t)
    assert values.shape == (len(required), t, limbs)
    for row, owner in enumerate(required):
        chosen = sorted(by_owner[owner], key=lambda s: s.x)[:t]
        assert points[row].tolist() == [s.x for s in chosen]
        assert values[row].tolist() == [list(s.values) for s in chosen]


def _forge(reveal: UnmaskingShares, owner: int, self_mask: bool) -> UnmaskingShares:
    """The same reveal with one in-field limb of ``owner``'s share changed: a middle
    limb, since X25519 clamps away bits 0-2 of a mask key (a change there can leave
    the key, and so the round, intact)."""
    group = reveal.self_mask_shares if self_mask else reveal.mask_key_shares
    forged = []
    for r in group:
        if r.owner == owner:
            values = list(shamir.Share.from_bytes(1, r.share).values)
            middle = len(values) // 2
            values[middle] = (values[middle] + 1) % shamir.PRIME
            r = RevealedShare(r.owner, shamir.Share(1, tuple(values)).to_bytes())
        forged.append(r)
    field = "self_mask_shares" if self_mask else "mask_key_shares"
    return dataclasses.replace(reveal, **{field: tuple(forged)})


@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_a_forged_share_is_outvoted_and_named_or_never_read(data) -> None:
    """Complete graph, n = 7, t = 3, client 6 dropped at the masked input: each
    secret has 6 holders. A forged share anywhere gives the exact sum: among the
    owner's 3 smallest points it is outvoted by the other holders' shares and its
    holder is named (before 2026-12-04 it aborted the round, every round, naming the
    owner); anywhere else it is never read."""
    n, t, gone = 7, 3, 6
    r = SteppedRound(n, 40, threshold=t)
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    r.step(skip={gone})
    assert r.server.phase == ServerPhase.UNMASKING
    replies = [m for m in r.clients_reply() if isinstance(m, UnmaskingShares)]
    self_mask = data.draw(st.booleans())
    owner = gone if not self_mask else data.draw(st.integers(0, n - 2))
    holders = sorted(m.sender for m in replies)  # every survivor holds every secret here
    forger = data.draw(st.sampled_from(holders))
    replies = [_forge(m, owner, self_mask) if m.sender == forger else m for m in replies]
    replies = data.draw(st.permutations(replies))
    for reply in replies:
        r.server.handle(reply)
    if r.server.phase == ServerPhase.UNMASKING:
        r.server.close_phase()
    assert r.server.phase == ServerPhase.COMPLETE, r.server.report.abort_reason
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    named = {forger: {owner}} if forger in holders[:t] else {}
    assert r.server.report.inconsistent_shares == named


def test_a_reveal_with_a_short_share_is_refused_naming_its_owner_and_changes_nothing() -> None:
    r = SteppedRound(5, 12, threshold=3)
    while r.server.phase != ServerPhase.MASKED_INPUT:
        r.step()
    r.step(skip={4})
    replies = [m for m in r.clients_reply() if isinstance(m, UnmaskingShares)]
    genuine = replies[0]
    for field in ("self_mask_shares", "mask_key_shares"):
        group = list(getattr(genuine, field))
        bad = group[-1]
        group[-1] = RevealedShare(bad.owner, bad.share[:-4])
        short = dataclasses.replace(genuine, **{field: tuple(group)})
        with pytest.raises(InvalidMessage, match=f"share of party {bad.owner} has the wrong size"):
            r.server.handle(short)
    assert r.server._seed_shares == {} and r.server._key_shares == {}
    r.server_receives(replies)
    assert r.server.phase == ServerPhase.COMPLETE
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
