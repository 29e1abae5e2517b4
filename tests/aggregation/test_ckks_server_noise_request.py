"""The CKKS server's requested noise std is checked when the server session is made.

Before, ``CKKSBackend().server(spec, noise_stddev=...)`` took anything ``float()`` took:
-1, NaN and infinity were sent in the decryption request, which the key holder refused
as "bad decryption request" only after every branch had trained, encrypted and uploaded
(the round aborted, all that work lost); ``True`` and the string ``"0.5"`` passed as 1.0
and 0.5; and 1e300 was honoured: the key holder spent a decryption of its lifetime cap
on a sum drowned in noise of std 1e300, which the server accepted as the round's sum
(its range check widens with the noise) and reported. Now each is a one-line
ConfigurationError naming ``noise_stddev`` before the round starts; 0 to
``MAX_NOISE_STDDEV`` (10¹⁰, the most central noise a federation can plan, the key
holder's own ceiling) are taken as before.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation.ckks import CKKSBackend
from secagg.aggregation.keyholder_policy import MAX_NOISE_STDDEV
from secagg.aggregation.local import run_local_round
from secagg.errors import ConfigurationError

D = 8


@pytest.mark.parametrize(
    "noise",
    [-1.0, -1e-12, math.nan, math.inf, -math.inf, True, "0.5", 1e300, MAX_NOISE_STDDEV * 1.5],
)
def test_a_bad_requested_noise_is_refused_when_the_server_is_made(noise: object) -> None:
    backend = CKKSBackend()
    spec = backend.plan(3, D)
    with pytest.raises(ConfigurationError, match=r"^noise_stddev") as caught:
        backend.server(spec, noise_stddev=noise)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("noise", [-1.0, math.nan, 1e300])
def test_a_local_round_with_a_bad_noise_fails_before_any_upload(noise: float) -> None:
    """Before: -1 and NaN aborted the round at the key holder's refusal, after every
    upload (RoundAborted); 1e300 returned a sum of noise 1e300 wide as the round's."""
    helper = CKKSBackend().helper()
    with pytest.raises(ConfigurationError, match=r"^noise_stddev"):
        run_local_round(CKKSBackend(), np.full((3, D), 0.5), noise_stddev=noise, helper=helper)
    assert helper.decryptions == 0 and helper.fingerprint is None  # nothing asked of it


@pytest.mark.parametrize("noise", [0, 0.0, 1e-9, 1.0, MAX_NOISE_STDDEV])
def test_a_requested_noise_within_the_bounds_is_taken(noise: float) -> None:
    backend = CKKSBackend()
    server = backend.server(backend.plan(3, D), noise_stddev=noise)
    assert server.noise_stddev == float(noise) and isinstance(server.noise_stddev, float)


def test_the_requested_noise_is_added_and_reported() -> None:
    result = run_local_round(CKKSBackend(), np.full((3, D), 0.25), noise_stddev=0.5)
    assert result.report.noise_stddev == 0.5
    assert np.all(np.abs(result.total - 0.75) <= result.report.error_bound * 9 / 7)
