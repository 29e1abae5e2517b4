"""Each channel key seals two messages, and no key outlives its round.

AES-GCM with random 96-bit nonces is safe for up to 2^32 messages a key (NIST SP
800-38D; see ``secagg.crypto.aead``). The AEAD keeps no count, so the bound holds only
because the protocol never uses a key much: a key per pair of parties and round, from
X25519 keys drawn afresh each round, sealing one share bundle each way. This pins that
down, including the restart case: two runs of the same round id (a seeded simulation
repeats its round id, as a resumed server might) share no channel key, so nothing a
restarted party seals can reuse a nonce under an old key. It fails if a client kept
its channel key pair across rounds or a key sealed more than one bundle each way.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from secagg.crypto import aead
from secagg.protocol.simulation import run_round


def test_a_channel_key_seals_one_bundle_each_way_and_never_in_two_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[list[tuple[bytes, int, int]]] = []  # per run: key, sender, recipient
    real_seal = aead.seal

    def counting_seal(key: bytes, plaintext: bytes, **binding: object) -> bytes:
        runs[-1].append((bytes(key), binding["sender"], binding["recipient"]))  # type: ignore[arg-type]
        return real_seal(key, plaintext, **binding)  # type: ignore[arg-type]

    monkeypatch.setattr(aead, "seal", counting_seal)
    inputs = np.arange(15, dtype=np.uint32).reshape(5, 3)
    for _ in range(2):  # the same seed: the same round id and graph, twice
        runs.append([])
        outcome = run_round(inputs, seed=7)
        np.testing.assert_array_equal(outcome.total, inputs.sum(axis=0, dtype=np.uint32))
    sealed = [seal for run in runs for seal in run]
    assert [len(run) for run in runs] == [5 * 4, 5 * 4]  # every ordered pair once a run
    uses = Counter(key for key, _, _ in sealed)
    assert max(uses.values()) == 2
    for key in uses:
        directions = {(sender, recipient) for k, sender, recipient in sealed if k == key}
        ((a, b),) = {tuple(sorted(d)) for d in directions}  # one pair per key
        assert directions == {(a, b), (b, a)}
    first, second = ({key for key, _, _ in run} for run in runs)
    assert not first & second
