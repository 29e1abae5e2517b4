"""Refusal code 4 ("implausible sum"): read from older key holders, sent by none of this one.

Since 2026-12-06 the key holder clamps a sum beyond the plausible range and releases it
(tests/aggregation/test_ckks_implausible_refusal_bit.py); a key holder of an earlier
release still refuses it after decrypting, with code 4. Pinned here (second review of
that change, checks that held before and after it):

* the server reads such a refusal as before: the round aborts at once, its reason naming
  the refusal, and the reveal counts as refused (the runtime drops the charge it noted:
  nothing of the sum reached the server). Dropping code 4 from the table would make the
  refusal a malformed reply, read as a reveal and charged, for a sum never released;
* no error this key holder can raise is sent as code 4, so neither a malicious branch nor
  a server can make a key holder of this release send it (the refusal that was a bit of
  the exact sum is gone, not renamed).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

pytest.importorskip("tenseal")

import secagg.aggregation.ckks as ckks_module
import secagg.aggregation.keyholder_policy as policy_module
import secagg.errors as errors_module
import secagg.he.chunks as chunks_module
import secagg.he.errors as he_errors_module
from secagg.aggregation import HELPER
from secagg.aggregation.ckks import REFUSAL_REASONS, CKKSBackend, CKKSServer, refusal_reply
from secagg.aggregation.spec import Writer

D = 4
PLANNED = 0.5
#: the header of a key-holder message: magic, version, kind; a refusal's code follows it
HEAD = 6
LEGACY_IMPLAUSIBLE = 4


def _at_decryption() -> CKKSServer:
    """A server of three honest contributions whose decryption request is out."""
    backend = CKKSBackend()
    holder = backend.helper()
    server = backend.server(backend.plan(3, D), noise_stddev=PLANNED)
    (request,) = server.start()
    server.handle(HELPER, holder.handle(request.payload, round_number=1))
    for party in range(3):
        server.handle(party, backend.client(server.spec, party).set_input(np.full(D, 0.25))[0])
    assert server.contributors_before_reveal() == 3  # the request is out
    return server


def _legacy_refusal() -> bytes:
    """What a key holder of a release before 2026-12-06 sent for an implausible sum: any
    refusal's header, code 4 and its text."""
    header = refusal_reply(RuntimeError("any"))[:HEAD]
    text = b"round 1 refused: the sum is beyond what 3 contributions can add up to"
    return header + Writer().u8(LEGACY_IMPLAUSIBLE).blob(text).bytes()


def test_an_older_key_holders_implausible_sum_refusal_aborts_the_round_uncharged() -> None:
    server = _at_decryption()
    server.handle(HELPER, _legacy_refusal())
    assert server.done and server.reveal_refused()
    assert "(implausible sum)" in str(server._abort_reason)
    assert server.noise_at_reveal() == PLANNED  # no reply reported less: nothing re-noted


def _errors_this_key_holder_can_raise() -> list[type[BaseException]]:
    """Every exception class the key holder's modules define or import (its policy's
    refusals, the protocol's errors, the ciphertext checks'), instantiable with a text."""
    found: set[type[BaseException]] = set()
    for module in (ckks_module, policy_module, errors_module, chunks_module, he_errors_module):
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Exception):
                found.add(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def test_no_error_of_this_key_holder_is_sent_as_the_implausible_sum_code() -> None:
    assert REFUSAL_REASONS[LEGACY_IMPLAUSIBLE] == "implausible sum"  # still read
    classes = _errors_this_key_holder_can_raise()
    assert len(classes) > 20  # the policy's refusals and the protocol's errors are all here
    sent_as_4 = []
    for error_class in classes:
        try:
            error = error_class("text")
        except TypeError:  # one that takes other arguments: made without its __init__
            error = error_class.__new__(error_class)
            Exception.__init__(error, "text")
        if refusal_reply(error)[HEAD] == LEGACY_IMPLAUSIBLE:
            sent_as_4.append(error_class.__qualname__)
    assert not sent_as_4
