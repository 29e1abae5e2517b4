"""Two real values per CKKS slot: encryption and decryption on SEAL's own API.

Theory of operation
-------------------
CKKS encodes a vector of N/2 *complex* numbers into a polynomial of degree N.
TenSEAL's ``CKKSVector`` fills only the real parts, so half of every ciphertext
carries nothing but noise. This module puts values ``2j`` and ``2j + 1`` of a
chunk into the real and imaginary part of slot ``j`` (a float64 array viewed as
complex128, no copy), so one ciphertext carries N real values and a vector
costs half the ciphertexts, half the bytes and half the encryption time.

Nothing else changes: the ciphertext is an ordinary CKKS ciphertext at the
context's data level, encrypted under the public key by SEAL's ``Encryptor``
(SEAL seeds a fresh PRNG from the OS for every encryption, so a forked child
never repeats its parent's randomness: tests/he/test_paired_hardening.py), and
the server adds such ciphertexts residue by residue modulo their primes
(:func:`secagg.he.packing.add_residues_into`, SEAL's own addition): addition adds
real and imaginary parts independently. Only the two ends differ:

* :func:`encrypt_pairs` encodes with SEAL's ``CKKSEncoder`` (the complex
  overload TenSEAL does not expose), encrypts, and returns the residues. SEAL's
  Python binding can only ``save`` a ciphertext to a path, so it saves to an
  anonymous in-memory file (``memfd``; a private temporary file where the OS
  has none or refuses one). The ciphertext is what goes on the wire anyway: nothing secret
  touches that file.
* :func:`decrypt_pairs` decrypts with SEAL's ``Decryptor`` and reads both parts
  of every slot back into consecutive values.

The per-value error is the same as TenSEAL's real-only packing (the imaginary
part of a slot's error has the spread of its real part; measured in
tests/he/test_paired.py against :meth:`CKKSParameters.error_bound`), and the
overflow bound of :mod:`secagg.he.params` counts a slot's magnitude as up to
sqrt(2) times the largest value.
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

import numpy as np

try:
    import tenseal.sealapi as sealapi
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("secagg.he needs TenSEAL: pip install 'secagg[he]'") from exc

from secagg.he.errors import HEParameterError, SecretKeyUnavailable
from secagg.he.packing import coefficients_from_seal

if TYPE_CHECKING:
    from secagg.he.context import BoundContext
    from secagg.he.packing import CiphertextLayout

#: Values per complex slot.
VALUES_PER_SLOT = 2


def slots_used(values: int) -> int:
    """Complex slots that ``values`` real values fill (the last one half, if odd)."""
    return (values + 1) // VALUES_PER_SLOT


class SealTools:
    """SEAL's encoder, encryptor and decryptor for one context, built once and reused."""

    __slots__ = ("_context", "_decryptor", "_encoder", "_encryptor")

    def __init__(self, context: BoundContext) -> None:
        self._context = context
        self._encoder = sealapi.CKKSEncoder(context._ts.seal_context().data)
        self._encryptor: sealapi.Encryptor | None = None
        self._decryptor: sealapi.Decryptor | None = None

    @classmethod
    def of(cls, context: BoundContext) -> SealTools:
        """The context's tools (cached on the context)."""
        tools = context._seal
        if not isinstance(tools, SealTools):
            tools = context._seal = cls(context)
        return tools

    def encryptor(self) -> sealapi.Encryptor:
        if self._encryptor is None:
            ts_context = self._context._ts
            self._encryptor = sealapi.Encryptor(
                ts_context.seal_context().data, ts_context.public_key().data
            )
        return self._encryptor

    def decryptor(self) -> sealapi.Decryptor:
        if self._decryptor is None:
            ts_context = self._context._ts
            if not ts_context.is_private():
                raise SecretKeyUnavailable("this context holds no secret key")
            self._decryptor = sealapi.Decryptor(
                ts_context.seal_context().data, ts_context.secret_key().data
            )
        return self._decryptor


def _as_slots(values: np.ndarray) -> list[complex]:
    """Values 2j and 2j + 1 as slot j's real and imaginary part."""
    if values.size % VALUES_PER_SLOT:
        values = np.concatenate([values, np.zeros(1)])
    return np.ascontiguousarray(values, dtype=np.float64).view(np.complex128).tolist()


def _saved(ciphertext: sealapi.Ciphertext) -> bytes:
    """SEAL's serialization of ``ciphertext`` (its binding writes only to a path).

    An anonymous memfd where the OS gives one; ``os.memfd_create`` can exist and still
    fail (ENOSYS on old kernels, EPERM under a seccomp filter, no ``/proc``), so any
    OSError falls back to a private temporary directory. Both descriptors are closed
    on every path. A failure of both raises :class:`HEParameterError` (a local fault),
    not SEAL's bare RuntimeError.
    """
    saved = _saved_to_memfd(ciphertext)
    if saved is not None:
        return saved
    try:
        with tempfile.TemporaryDirectory(prefix="secagg-ckks-") as folder:
            path = os.path.join(folder, "ciphertext")
            ciphertext.save(path)
            with open(path, "rb") as handle:
                return handle.read()
    except (OSError, RuntimeError) as exc:
        raise HEParameterError(f"could not serialize the ciphertext: {exc}") from None


def _saved_to_memfd(ciphertext: sealapi.Ciphertext) -> bytes | None:
    """The ciphertext saved through an anonymous memfd, or None where this process
    cannot (no ``memfd_create``, a refused call, no procfs, or SEAL's I/O error)."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd = create("secagg-ckks", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        path = f"/proc/self/fd/{fd}"
        if not os.path.exists(path):  # no procfs: SEAL cannot open the memfd by name
            return None
        try:
            ciphertext.save(path)
        except RuntimeError:  # SEAL's I/O error: the temporary file may still work
            return None
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def encrypt_pairs(
    context: BoundContext, values: np.ndarray, layout: CiphertextLayout
) -> np.ndarray:
    """Encrypt at most N values, two per slot, under the public key; its residues (2, k, N)."""
    params = context.params
    if not 1 <= values.size <= params.values_per_ciphertext:
        raise ValueError(
            f"a ciphertext carries 1 to {params.values_per_ciphertext} values, got {values.size}"
        )
    return coefficients_from_seal(_saved(_encrypted(context, values)), layout)


def _encrypted(context: BoundContext, values: np.ndarray) -> sealapi.Ciphertext:
    """SEAL's ciphertext of ``values`` (two a slot) under the context's public key."""
    params = context.params
    tools = SealTools.of(context)
    plain = sealapi.Plaintext()
    tools._encoder.encode(_as_slots(values), params.scale, plain)
    ciphertext = sealapi.Ciphertext(context._ts.seal_context().data)
    tools.encryptor().encrypt(plain, ciphertext)
    if ciphertext.size() != 2 or ciphertext.coeff_modulus_size() != params.data_primes:
        raise HEParameterError("SEAL did not encrypt at the context's data level")
    return ciphertext


def round_trip_error(context: BoundContext) -> float:
    """The largest error of a full ciphertext of values across [-value_bound, value_bound]
    encrypted under the context's public key and decrypted with its secret key
    (:class:`SecretKeyUnavailable` without one): within the parameters' ``error_bound(1)``
    when the secret key is the public key's, about the data modulus over the scale (the
    decryption is noise) when it is not. Why: see :func:`secagg.he.keys.check_key_pair`."""
    params = context.params
    probe = np.linspace(-params.value_bound, params.value_bound, params.values_per_ciphertext)
    decrypted = decrypt_pairs(context, _encrypted(context, probe), probe.size)
    return float(np.max(np.abs(decrypted - probe)))


def decrypt_pairs(context: BoundContext, ciphertext: object, values: int) -> np.ndarray:
    """The first ``values`` values of a ciphertext encrypted by :func:`encrypt_pairs` (or a sum)."""
    tools = SealTools.of(context)
    plain = sealapi.Plaintext()
    tools.decryptor().decrypt(ciphertext, plain)
    slots = np.asarray(tools._encoder.decode_complex(plain), dtype=np.complex128)
    return slots.view(np.float64)[:values].copy()


__all__ = [
    "VALUES_PER_SLOT",
    "SealTools",
    "decrypt_pairs",
    "encrypt_pairs",
    "round_trip_error",
    "slots_used",
]
