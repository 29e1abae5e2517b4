"""A branch refuses a CKKS round whose own announcement says it is alone in it.

Hostile policy review (2026-12-07): a CKKS spec of 1 client passed a branch's policy
(with the key holder pinned, the real key holder's context): the branch trained,
encrypted and uploaded, and only an honest key holder's floor of contributions kept the
"sum", which is that branch's update, from being decrypted. Each party enforces its own
policy: the branch now refuses such a round at its start (setting ``round_spec``), before
any update is given, and ``CKKSBackend.plan`` no longer plans one. What no party can check,
a server that adds its own encryptions of zero to one upload and claims a larger count,
stays documented (docs/backends.md) and pinned by
``test_h3b_a_relabelled_single_upload_is_not_detectable_but_is_noised``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce, decode_spec
from secagg.aggregation.ckks import CKKSBackend, CKKSSpec, KeyHolderSession
from secagg.aggregation.policy import BranchPolicy
from secagg.aggregation.spec import encode_spec
from secagg.errors import ConfigurationError, PolicyRefused

D = 8


@pytest.fixture(scope="module")
def announced() -> CKKSSpec:
    """The spec of a round of 2 as the key holder's server announces it (a real context)."""
    backend, helper = CKKSBackend(), KeyHolderSession()
    server = backend.server(backend.plan(2, D))
    (request,) = server.start()
    (announce,) = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    assert isinstance(announce, Announce)
    spec = decode_spec(announce.spec)
    assert isinstance(spec, CKKSSpec)
    return spec


def test_a_round_of_one_is_refused_before_the_update_is_given(announced: CKKSSpec) -> None:
    policy = BranchPolicy(backends=("ckks",), key_holder_fingerprint=announced.fingerprint)
    # the same round, relabelled a round of 1 by a server, as every branch decodes it
    alone = decode_spec(encode_spec(dataclasses.replace(announced, num_clients=1)))
    with pytest.raises(PolicyRefused, match="round of 1 client") as caught:
        CKKSBackend().client(alone, 0, policy=policy)
    assert caught.value.setting == "round_spec"
    assert "\n" not in str(caught.value)
    # the round of 2 it was is taken, and its upload encrypted, under the same policy
    session = CKKSBackend().client(announced, 0, policy=policy)
    assert len(session.set_input(np.zeros(D))) == 1


def test_no_round_of_one_is_planned() -> None:
    with pytest.raises(ConfigurationError, match="at least 2 clients"):
        CKKSBackend().plan(1, D)
    assert CKKSBackend().plan(2, D).num_clients == 2
