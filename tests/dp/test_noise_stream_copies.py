"""A DP mechanism holding its noise stream cannot be duplicated into twin noise.

Why: the server's central mechanism draws every round's Gaussian noise from one
:class:`~secagg.crypto.stream.KeyedStream`; the distributed mechanism draws every
round's rotation seed from one. A deep copy (a trial copy, a snapshot, a second server
built from the first) held a twin stream: its next round drew exactly the noise the
original's next round drew, so two releases carried the same noise, whose sum is not
the sum of independent Gaussians the accountant charged. Now the copy is refused, with
a typed error, and the mechanism is left as it was.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from secagg.crypto.stream import KeyedStream
from secagg.dp.release import CentralRelease, DistributedRelease
from secagg.errors import StreamCopyRefused

KEY = bytes(range(16))
COMMON = {
    "clip": 1.0,
    "noise_multiplier": 1.0,
    "delta": 1e-5,
    "sample_rate": 1.0,
    "expected_clients": 4,
    "accountant": "rdp",
}


def _central() -> CentralRelease:
    return CentralRelease(noise=KeyedStream(KEY), **COMMON)


def _noised(mechanism: CentralRelease) -> np.ndarray:
    """One round's release of a zero sum: the round's noise, over the cohort."""
    zero = np.zeros(16)
    return mechanism.release(zero, contributors=4, participants=4, noise_added=0.0).mean


def test_the_central_mechanism_refuses_a_copy_that_would_repeat_its_noise() -> None:
    """Before: ``deepcopy`` succeeded and both mechanisms released the same noise array
    (the copy's round equal to the original's, element for element)."""
    mechanism = _central()
    with pytest.raises(StreamCopyRefused):
        copy.deepcopy(mechanism)
    # left as it was: its next round is the one a fresh mechanism on the key draws
    assert np.array_equal(_noised(mechanism), _noised(_central()))
    # and two rounds of one mechanism draw two noises
    later, latest = _noised(mechanism), _noised(mechanism)
    assert not np.array_equal(later, latest)


def test_the_distributed_mechanism_refuses_a_copy_that_would_repeat_its_seeds() -> None:
    """Before: the copy's round drew the original's rotation seed (every client's
    rotation and the seed of its noise share's round the same in both)."""
    mechanism = DistributedRelease(
        dimension=8, bits=20, corrupt_fraction=0.0, seeds=KeyedStream(KEY), **COMMON
    )
    with pytest.raises(StreamCopyRefused):
        copy.deepcopy(mechanism)
    first = mechanism.round_options(4)["noise_share"]
    second = mechanism.round_options(4)["noise_share"]
    assert first.rotation_seed != second.rotation_seed
