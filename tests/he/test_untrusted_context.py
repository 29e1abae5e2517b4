"""A context parsed from a peer's bytes is refused as a message, a local one as a
configuration.

The key holder's public context reaches each CKKS client through the server: bytes from
the wire, untrusted however well they hash. A bad one used to raise HEParameterError (a
:class:`~secagg.errors.ConfigurationError`, which callers treat as the party's own
mistake at start-up), or a bare ``ValueError`` (a context without a scale), or was
accepted and failed at the first encryption (a context of other data primes). Each is now
an :class:`~secagg.he.errors.InvalidContext` (an
:class:`~secagg.errors.InvalidMessage`) when the context is parsed, while a context this
party made or loaded itself (its key file) that does not match its parameters stays a
ConfigurationError.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pytest

ts = pytest.importorskip("tenseal")

from _ckks import crafted_public_context, other_data_primes, seal_primes  # noqa: E402

from secagg.errors import ConfigurationError, InvalidMessage  # noqa: E402
from secagg.he.context import check_matches  # noqa: E402
from secagg.he.errors import (  # noqa: E402
    HEParameterError,
    InvalidContext,
    SecretKeyPresent,
)
from secagg.he.keys import (  # noqa: E402
    _KEY_FILE_MAGIC,
    KeyHolder,
    KeyMode,
    PublicAggregationContext,
    SharedKeyClient,
)
from secagg.he.params import CKKSParameters, choose_parameters  # noqa: E402
from secagg.he.vectors import encrypt_vector  # noqa: E402


@functools.cache
def params() -> CKKSParameters:
    return choose_parameters(4, 1.0, 1e-6)


def _other_data_prime() -> list[int]:
    """A data prime of the parameters' size other than SEAL's, and SEAL's special prime."""
    return other_data_primes(params())


def _crafted_context(primes: list[int], scale: float) -> bytes:
    return crafted_public_context(params(), primes, scale)


def _from_wire(data: bytes) -> PublicAggregationContext:
    """Parse ``data`` as a client does: the fingerprint checked first (here, of the bytes
    themselves: a pin the hostile key holder's own context matches)."""
    return PublicAggregationContext.from_bytes(
        data, params(), expected_fingerprint=hashlib.sha256(data).digest()
    )


def _refused_as_a_message(data: bytes, error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says) as caught:
        _from_wire(data)
    assert isinstance(caught.value, InvalidMessage), type(caught.value).__mro__
    assert not isinstance(caught.value, ConfigurationError), type(caught.value).__mro__


def test_a_peers_context_that_is_no_tenseal_context_is_an_invalid_message() -> None:
    _refused_as_a_message(bytes(params().min_public_context_bytes() + 10), InvalidContext, "not a")
    _refused_as_a_message(b"\x0a\x05abc", InvalidContext, "not a TenSEAL context")


def test_a_peers_context_with_the_secret_key_is_an_invalid_message() -> None:
    leaked = KeyHolder(params())._ts.serialize(
        save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )
    _refused_as_a_message(leaked, SecretKeyPresent, "secret key")


def test_a_peers_context_of_other_parameters_is_an_invalid_message() -> None:
    smaller = KeyHolder(choose_parameters(4, 1.0, 1e-3)).public_context_bytes
    _refused_as_a_message(smaller, InvalidContext, "does not match the announced parameters")


def test_a_peers_context_without_the_public_key_is_an_invalid_message() -> None:
    context = KeyHolder(params())._ts
    bare = context.serialize(
        save_public_key=False, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )
    _refused_as_a_message(bare, InvalidContext, "lacks the public key")


def test_a_peers_context_without_a_scale_is_an_invalid_message_not_a_value_error() -> None:
    """TenSEAL raises a bare ValueError ("no global scale") when the scale is read: it
    escaped the client's checks untyped."""
    context = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=params().poly_modulus_degree,
        coeff_mod_bit_sizes=list(params().coeff_mod_bit_sizes),
    )
    unscaled = context.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )
    _refused_as_a_message(unscaled, InvalidContext, "scale")


def test_a_peers_context_of_other_data_primes_is_refused_when_parsed() -> None:
    """Ring, number and size of primes and scale as announced, but another data prime: it
    passed every check at parse time and the client raised HEParameterError (a
    ConfigurationError) only when it encrypted its update. Now refused when parsed,
    before anything is encrypted under it; SEAL's own primes, crafted the same way, are
    taken and encrypt (so the refusal is of the prime, not of the crafting)."""
    _refused_as_a_message(
        _crafted_context(_other_data_prime(), params().scale), InvalidContext, "primes"
    )
    honest = _from_wire(_crafted_context(seal_primes(params()), params().scale))
    assert len(encrypt_vector(honest, np.zeros(10))) == 1


def test_an_every_client_secret_context_from_the_wire_is_an_invalid_message() -> None:
    """The every-client mode's secret context also arrives from a peer: garbage, a
    context without the secret key, or of other parameters is refused as a message."""
    shared = KeyHolder(params(), mode=KeyMode.EVERY_CLIENT)
    pin = shared.fingerprint
    public_only = shared.public_context_bytes
    other = KeyHolder(choose_parameters(4, 1.0, 1e-3), mode=KeyMode.EVERY_CLIENT)
    for data, says in [
        (b"\x0a\x05abc", "not a TenSEAL context"),
        (public_only, "must hold the secret key"),
        (other.export_client_secret_context(), "does not match the announced parameters"),
    ]:
        with pytest.raises(InvalidContext, match=says) as caught:
            SharedKeyClient.from_bytes(data, params(), expected_fingerprint=pin)
        assert not isinstance(caught.value, ConfigurationError)
    client = SharedKeyClient.from_bytes(
        shared.export_client_secret_context(), params(), expected_fingerprint=pin
    )
    assert client.fingerprint == pin


def test_a_local_context_that_does_not_match_stays_a_configuration_error(
    tmp_path: Path,
) -> None:
    """What this party made or loaded itself is its own configuration: a key file for
    other parameters, or one without a scale (a bare ValueError before), is a one-line
    ConfigurationError naming the file; ``check_matches`` on a local context raises
    HEParameterError."""
    other = KeyHolder(choose_parameters(4, 1.0, 1e-3))
    with pytest.raises(HEParameterError, match="does not match the announced parameters"):
        check_matches(other._ts, params())
    saved = other.save(tmp_path / "other.key")
    with pytest.raises(ConfigurationError, match="made for other CKKS parameters") as caught:
        KeyHolder.load(saved, params())
    assert not isinstance(caught.value, InvalidMessage)
    unscaled = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=params().poly_modulus_degree,
        coeff_mod_bit_sizes=list(params().coeff_mod_bit_sizes),
    )
    key_file = tmp_path / "unscaled.key"
    key_file.write_bytes(_KEY_FILE_MAGIC + unscaled.serialize(save_secret_key=True))
    with pytest.raises(ConfigurationError, match="scale") as caught:
        KeyHolder.load(key_file, params())
    assert "\n" not in str(caught.value)
