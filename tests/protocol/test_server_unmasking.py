"""The server's local execution choices: masks removed by several threads, same round."""

from __future__ import annotations

import dataclasses
import secrets

import numpy as np
import pytest
from _harness import SteppedRound
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from secagg.crypto import shamir
from secagg.errors import ConfigurationError, UnexpectedMessage
from secagg.protocol import Server, ServerPhase
from secagg.protocol.messages import GRAPH_SEED_BYTES, RevealedShare, UnmaskingShares


@pytest.mark.parametrize(
    ("graph", "dropped", "bits"),
    [("harary", {2, 5}, 32), ("complete", {4}, 32), ("harary", {1}, 64)],
)
def test_masks_removed_by_several_threads_give_the_same_sum(
    graph: str, dropped: set[int], bits: int
) -> None:
    """Three coordinate slices (d spans 7 PRG chunks of 32-bit words, 13 of 64-bit ones),
    dropouts at the masked input."""
    k = 6 if graph == "harary" else None
    r = SteppedRound(8, 3 * 65_536 + 1, bits=bits, graph=graph, k=k, threshold=3)
    r.server = Server(r.config, mask_workers=3)
    r.to_clients = r.server.start()
    phase = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step(skip=frozenset(dropped) if phase >= 2 else frozenset())
        phase += 1
    assert r.server.phase == ServerPhase.COMPLETE
    assert set(r.server.report.included) == set(range(8)) - dropped
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


@pytest.mark.parametrize("workers", [0, -2, 2.0, True, None])
def test_mask_workers_must_be_a_positive_integer(workers: object) -> None:
    r = SteppedRound(4, 8)
    with pytest.raises(ConfigurationError, match="mask_workers"):
        Server(r.config, mask_workers=workers)  # type: ignore[arg-type]


def test_an_unmask_callable_replaces_the_threads_and_gives_the_same_sum() -> None:
    """``unmask=``: the server hands the seeds to the callable (here slices computed
    apart and added in, as remote workers would) and the round's sum is exact."""
    from secagg.crypto import prg

    calls: list[tuple[int, int]] = []

    def by_slices(acc: np.ndarray, add: object, subtract: object) -> np.ndarray:
        calls.append((len(add), len(subtract)))  # type: ignore[arg-type]
        for a, b in prg.slice_bounds(len(acc), acc.itemsize, 3):
            part = prg.mask_slice(b - a, acc.dtype, add, subtract, offset=a)  # type: ignore[arg-type]
            np.add(acc[a:b], part, out=acc[a:b])
        return acc

    r = SteppedRound(8, 2 * 65_536 + 3, graph="harary", k=6, threshold=3)
    r.server = Server(r.config, unmask=by_slices)
    r.to_clients = r.server.start()
    phase = 0
    while r.server.phase not in (ServerPhase.COMPLETE, ServerPhase.ABORTED):
        r.step(skip=frozenset({3}) if phase >= 2 else frozenset())
        phase += 1
    assert r.server.phase == ServerPhase.COMPLETE
    assert len(calls) == 1 and calls[0][0] + calls[0][1] > 7  # 7 self masks + pair masks
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())


def test_unmask_must_be_callable() -> None:
    r = SteppedRound(4, 8)
    with pytest.raises(ConfigurationError, match="unmask"):
        Server(r.config, unmask=42)  # type: ignore[arg-type]


# --- a wrong share revealed at unmasking (runtime audit 2026-12-04) --------------------


def _corrupt(
    message: UnmaskingShares, owners: set[int], *, independent: bool = False
) -> UnmaskingShares:
    """The reveal with every share of ``owners`` changed, still a field element: a
    well-formed, wrong share. By default bit 8 of the first limb is flipped (the same
    change in every liar's shares: errors that line up); ``independent``: a random
    non-zero amount is added to a random limb of each share. (Not bit 0: with the
    Lagrange weights of small points the secret then moves by a few units only, which
    for a mask key can fall in the bits X25519's clamping clears.)"""

    def change(share: bytes) -> bytes:
        if not independent:
            return share[:1] + bytes([share[1] ^ 1]) + share[2:]
        limbs = list(shamir.Share.from_bytes(1, share).values)
        at = secrets.randbelow(len(limbs))
        limbs[at] = (limbs[at] + 1 + secrets.randbelow(shamir.PRIME - 1)) % shamir.PRIME
        return shamir.Share(1, tuple(limbs)).to_bytes()

    def flip(revealed: tuple[RevealedShare, ...]) -> tuple[RevealedShare, ...]:
        return tuple(
            RevealedShare(r.owner, change(r.share)) if r.owner in owners else r for r in revealed
        )

    return dataclasses.replace(
        message,
        self_mask_shares=flip(message.self_mask_shares),
        mask_key_shares=flip(message.mask_key_shares),
    )


def _to_unmasking(r: SteppedRound, dropped: set[int]) -> None:
    """Advance to the unmasking requests, ``dropped`` silent from the masked input on;
    stops at an abort too (it looped forever on a round aborted before unmasking)."""
    phase = 0
    while r.server.phase not in (ServerPhase.UNMASKING, ServerPhase.ABORTED):
        r.step(skip=frozenset(dropped) if phase >= 2 else frozenset())
        phase += 1


def _unmask_with_liars(
    r: SteppedRound, dropped: set[int], liars: dict[int, set[int]], *, independent: bool = False
) -> None:
    replies = [
        _corrupt(m, liars[m.sender], independent=independent) if m.sender in liars else m
        for m in r.clients_reply(skip=frozenset(dropped), refusal_is_dropout=True)
    ]
    r.server_receives(replies, refusal_is_dropout=True)


def test_one_wrong_share_of_a_survivor_and_of_a_dropped_party_is_caught_not_fatal() -> None:
    """Before: the server rebuilt each secret from its t smallest share points only, so
    holder 0 revealing a wrong share of party 1's self-mask aborted the round (naming
    party 1, the victim), every round. Now t other shares open the commitment, the sum
    is exact, and holder 0 is named, for the survivor's seed and the dropped party's
    mask key alike."""
    r = SteppedRound(8, 16, threshold=4)
    _to_unmasking(r, {7})
    _unmask_with_liars(r, {7}, {0: {1, 7}})
    assert r.server.phase == ServerPhase.COMPLETE, r.server.report.abort_reason
    np.testing.assert_array_equal(r.server.result(), r.expected_sum())
    assert r.server.report.inconsistent_shares == {0: {1, 7}}


def test_a_wrong_share_among_exactly_t_aborts_naming_the_owner() -> None:
    """With only t shares of a secret, nothing tells the wrong one apart: abort, never
    a wrong sum."""
    r = SteppedRound(5, 8, threshold=3)
    _to_unmasking(r, set())
    replies = r.clients_reply()
    replies = [_corrupt(m, {4}) if m.sender == 0 else m for m in replies[:3]]
    r.server_receives(replies)  # the other two never answer: the phase closes on t
    assert r.server.phase == ServerPhase.ABORTED
    assert "party 4" in (r.server.report.abort_reason or "")
    assert "no 3 of the 3 shares" in (r.server.report.abort_reason or "")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_wrong_shares_give_the_exact_sum_or_an_abort_and_only_liars_are_named(
    data: st.DataObject,
) -> None:
    """Random rounds (complete or Harary graph), dropouts at the masked input and
    liars each adding independent random errors to the shares of random owners: the
    round completes with the exact sum of the included inputs and names only liars,
    or aborts; with one liar and more than t shares of every secret it always
    completes."""
    n = data.draw(st.integers(5, 11), label="n")
    graph = data.draw(st.sampled_from(["complete", "harary"]), label="graph")
    r = SteppedRound(n, 8, graph=graph)
    # a drawn graph seed: whether the survivors below stay connected follows from the
    # draws (a fresh random graph made the assume() below hold on one run of the same
    # draws and fail on the next, which hypothesis reports as an error: CI, 2026-12-06)
    seed = data.draw(st.binary(min_size=GRAPH_SEED_BYTES, max_size=GRAPH_SEED_BYTES))
    r.server = Server(r.config, graph_seed=seed)
    r.to_clients = r.server.start()
    t = r.config.threshold
    dropped = data.draw(st.sets(st.integers(0, n - 1), max_size=max(0, n - t - 1)), label="dropped")
    survivors = sorted(set(range(n)) - dropped)
    # dropouts that cut the ring abort the round before unmasking (partial sums): this
    # test is about lies at unmasking, so such draws are not its cases
    assume(r.server.graph.connects(survivors))
    liars = data.draw(st.sets(st.sampled_from(survivors), min_size=1, max_size=3), label="liars")
    lies = {
        liar: data.draw(st.sets(st.integers(0, n - 1), min_size=1), label=f"owners of {liar}")
        for liar in sorted(liars)
    }
    _to_unmasking(r, dropped)
    assert r.server.phase == ServerPhase.UNMASKING, r.server.report.abort_reason
    _unmask_with_liars(r, dropped, lies, independent=True)
    report = r.server.report
    if r.server.phase == ServerPhase.COMPLETE:
        np.testing.assert_array_equal(r.server.result(), r.expected_sum())
        assert set(report.inconsistent_shares) <= liars
        for holder, owners in report.inconsistent_shares.items():
            assert owners <= lies[holder]
    else:
        assert r.server.phase == ServerPhase.ABORTED and report.abort_reason
        assert not (len(liars) == 1 and graph == "complete" and len(survivors) > t)


def test_liars_whose_errors_line_up_never_get_an_honest_holder_named() -> None:
    """Two holders making the same change to their shares of one owner: a t-subset
    holding both can still open the commitment (a polynomial through the secret other
    than the dealt one), and judging the other shares against it named honest holders
    (found by the property test above, 2026-12-04). Names now need a polynomial that
    agrees with at least (m + t) / 2 shares; the sum is exact either way."""
    for _ in range(60):  # a fresh random Harary graph and fresh polynomials each time
        r = SteppedRound(6, 8, graph="harary")
        _to_unmasking(r, set())
        _unmask_with_liars(r, set(), {0: {0}, 2: {0}})
        assert r.server.phase == ServerPhase.COMPLETE, r.server.report.abort_reason
        np.testing.assert_array_equal(r.server.result(), r.expected_sum())
        assert set(r.server.report.inconsistent_shares) <= {0, 2}


def test_an_unmasking_that_fails_part_way_aborts_and_never_releases_a_wrong_sum() -> None:
    """A remote unmasker adds each worker's slice into the accumulator as it arrives, so
    a worker lost after the first slice leaves the sum part unmasked. Before, the error
    escaped from the handle of the last unmasking reply with the round still in
    UNMASKING; the caller's next ``close_phase`` (its phase deadline) removed the masks
    again from that accumulator and released a wrong sum as COMPLETE. Now the round
    aborts (every survivor told), the accumulator is dropped, and nothing is released."""
    from secagg.crypto import prg
    from secagg.errors import RoundAborted

    attempts: list[int] = []

    def lost_after_one_slice(acc: np.ndarray, add: object, subtract: object) -> np.ndarray:
        attempts.append(1)
        (a, b), *_ = prg.slice_bounds(len(acc), acc.itemsize, 3)
        part = prg.mask_slice(b - a, acc.dtype, add, subtract, offset=a)  # type: ignore[arg-type]
        np.add(acc[a:b], part, out=acc[a:b])
        if len(attempts) == 1:
            raise RuntimeError("worker died")
        return acc

    r = SteppedRound(6, 2 * 65_536 + 3)
    r.server = Server(r.config, unmask=lost_after_one_slice)
    r.to_clients = r.server.start()
    while r.server.phase != ServerPhase.UNMASKING:
        r.step()
    notices = []
    for reply in r.clients_reply():
        notices.extend(r.server.handle(reply))  # the last reply closes the phase
    assert r.server.phase == ServerPhase.ABORTED
    assert "removing the masks failed (RuntimeError: worker died)" in str(
        r.server.report.abort_reason
    )
    assert {n.recipient for n in notices} == set(range(6))
    with pytest.raises(RoundAborted):
        r.server.result()
    with pytest.raises(UnexpectedMessage):  # no second unmasking over the same sum
        r.server.close_phase()
