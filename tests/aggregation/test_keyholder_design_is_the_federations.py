"""A key holder with the federation's config and no key file makes its key for the
federation's design point at most, not for whatever the server's key request carries.

Before, ``secagg keyholder --config fed.toml`` without ``--key`` (and the library's
``CKKSBackend(max_clients=...).helper()``) made its key for the design point of the
server's first key request: a server asking for 1 000 clients and a value bound of 10⁶ in
a federation of 3 branches bounded by 1 had a key made whose plausible range (``c·B``, the
one bound on what a crafted query learns of the key under the key holder's own noise) was
3·10⁸ times the federation's, and its precision set the noise floor. Refused now, before
any key work, with nothing made, opened or written; the federation's own design point,
and one summing fewer, smaller values to a coarser precision, are answered as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("tenseal")

from secagg.aggregation import HELPER, Announce
from secagg.aggregation.ckks import CKKSBackend, KeyHolderSession
from secagg.aggregation.keyholder_policy import KeyHolderRefusal
from secagg.runtime.config import FederationConfig
from secagg.runtime.keyholder import bound_to_federation

NAMES = ["branch-a", "branch-b", "branch-c"]
D = 8


def _config() -> FederationConfig:
    return FederationConfig.from_dict(
        {
            "federation": {"name": "he", "clients": NAMES, "dimension": D, "rounds": 2},
            "backend": {"name": "ckks", "value_bound": 1.0, "key_holder": "compliance"},
        }
    )


def _key_holder() -> KeyHolderSession:
    """The key holder ``run_key_holder`` builds from the federation's config, no key file."""
    config = _config()
    helper = config.aggregation_backend().helper(bound_to_federation(config, None))
    assert isinstance(helper, KeyHolderSession)
    return helper


@dataclass(frozen=True)
class Asked:
    clients: int
    value_bound: float
    precision: float


def _key_request(asked: Asked) -> bytes:
    backend = CKKSBackend(
        value_bound=asked.value_bound, precision=asked.precision, max_clients=asked.clients
    )
    server = backend.server(backend.plan(2, D))
    server.bind_federation("he")
    (request,) = server.start()
    return request.payload


def _state(helper: KeyHolderSession) -> tuple[object, ...]:
    return (helper.fingerprint, helper.decryptions, tuple(helper.record.rounds), helper.opened)


@pytest.mark.parametrize(
    "asked",
    [
        Asked(4, 1.0, 1e-6),  # one client more than the federation has
        Asked(3, 1.5, 1e-6),  # a larger value bound
        Asked(3, 1.0, 1e-7),  # a finer precision
        Asked(1000, 1e6, 1e-3),  # the review's: a range 3·10⁸ times the federation's
    ],
)
def test_a_key_request_weaker_than_the_federations_design_is_refused(asked: Asked) -> None:
    helper = _key_holder()
    before = _state(helper)
    with pytest.raises(KeyHolderRefusal, match="at most the federation's 3 clients") as caught:
        helper.handle(_key_request(asked), round_number=1)
    assert "\n" not in str(caught.value)
    assert _state(helper) == before == (None, 0, (), None)  # no key made, nothing opened


@pytest.mark.parametrize(
    "asked",
    [
        Asked(3, 1.0, 1e-6),  # the federation's own: what its server asks
        Asked(2, 1.0, 1e-6),  # fewer clients
        Asked(3, 0.5, 1e-6),  # a smaller bound
        Asked(3, 1.0, 1e-5),  # a coarser precision: more noise, never less
    ],
)
def test_the_federations_design_or_a_stronger_one_is_answered(asked: Asked) -> None:
    helper = _key_holder()
    backend = CKKSBackend(
        value_bound=asked.value_bound, precision=asked.precision, max_clients=asked.clients
    )
    server = backend.server(backend.plan(2, D))
    server.bind_federation("he")
    (request,) = server.start()
    events = server.handle(HELPER, helper.handle(request.payload, round_number=1))
    assert any(isinstance(e, Announce) for e in events)
    assert helper.opened == (1, D) and helper._holder.params.num_clients == asked.clients


def test_a_key_holder_without_the_federations_design_still_takes_the_servers() -> None:
    """Without a config and without caps in its policy (an in-memory key holder, whose
    server is the caller's own code) there is no design of its own to hold: the server's
    is taken, as documented (docs/backends.md). The config-less ``secagg keyholder``
    holds its own caps: tests/aggregation/test_keyholder_configless_caps.py."""
    helper = CKKSBackend().helper()
    helper.handle(_key_request(Asked(1000, 1e6, 1e-3)), round_number=1)
    assert helper._holder.params.num_clients == 1000
