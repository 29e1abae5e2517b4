"""A secret key that is not its public key's is refused when it is loaded, not used.

Finding (CKKS review, 2026-12-07): :meth:`KeyHolder.load` checked that the key file parses,
holds a secret key and has the federation's parameters, and took its fingerprint from the
public key in it, which is what every branch pins. Nothing checked that the secret key in
the file is the one that public key was made from. A key file with another pair's secret
key (a damaged or mixed-up file: below, the public half of one pair and the secret half of
another, spliced field by field) loaded, the branches encrypted under the pinned public key,
and every decryption was garbage (sums of 1.0 decrypted to -45, -51, -70, -182): the key
holder clamped each into the plausible range and released it, noised, so every round
"succeeded" with a wrong sum and nobody was told why.

Now the pair is checked at load (:func:`secagg.he.keys.key_pair_mismatch`): a vector encrypted
under the public key must decrypt with the secret key within the parameters' documented
error bound, or the key is refused (a ConfigurationError naming the file for the key
holder's own file; an InvalidContext for a peer's every-client context).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tenseal")

from secagg.errors import ConfigurationError
from secagg.he.errors import InvalidContext
from secagg.he.keys import _KEY_FILE_MAGIC, KeyHolder, KeyMode, SharedKeyClient
from secagg.he.params import choose_parameters
from secagg.he.vectors import EncryptedSum, encrypt_vector

#: the smallest ring (N = 2048): key generation stays cheap
PARAMS = choose_parameters(2, 1.0, 1e-3)


def _fields(data: bytes) -> dict[int, bytes]:
    """A serialized TenSEAL context's top-level protobuf fields (all length-delimited:
    1 the parameters, 2 the public part, 3 the secret key), each with its own tag."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = data[pos]
            value, shift, pos = value | (byte & 0x7F) << shift, shift + 7, pos + 1
            if not byte & 0x80:
                return value, pos

    fields, pos = {}, 0
    while pos < len(data):
        start = pos
        key, pos = varint(pos)
        assert key & 7 == 2  # length-delimited
        length, pos = varint(pos)
        fields[key >> 3] = data[start : pos + length]
        pos += length
    return fields


def _with_secret(holder: KeyHolder) -> bytes:
    return holder._ts.serialize(
        save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )


@pytest.fixture(scope="module")
def pairs() -> tuple[KeyHolder, bytes]:
    """A key holder and a context of its parameters, public key and fingerprint, with the
    secret key of another key pair."""
    mine, other = KeyHolder(PARAMS), KeyHolder(PARAMS)
    own, foreign = _fields(_with_secret(mine)), _fields(_with_secret(other))
    assert sorted(own) == [1, 2, 3]
    return mine, own[1] + own[2] + foreign[3]


def test_a_key_file_whose_secret_key_is_not_its_public_keys_is_refused(
    pairs: tuple[KeyHolder, bytes], tmp_path: Path
) -> None:
    mine, spliced = pairs
    path = tmp_path / "kh.key"
    mine.save(path)
    good = path.read_bytes()
    assert good.startswith(_KEY_FILE_MAGIC)
    path.write_bytes(_KEY_FILE_MAGIC + spliced)
    with pytest.raises(ConfigurationError, match="does not decrypt what its own public key") as e:
        KeyHolder.load(path, PARAMS)  # before: loaded, and decrypted garbage
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    path.write_bytes(good)  # the file as saved loads, and decrypts sums
    loaded = KeyHolder.load(path, PARAMS)
    public = mine.public_context()
    total = EncryptedSum(public, 8)
    for _ in range(2):
        total.add(encrypt_vector(public, np.full(8, 0.5)))
    out = loaded.decrypt_aggregate(total.to_chunks(), dimension=8)
    assert loaded.fingerprint == mine.fingerprint
    assert np.max(np.abs(out - 1.0)) <= PARAMS.error_bound(2)


def test_an_every_client_context_whose_secret_key_is_not_its_public_keys_is_refused(
    pairs: tuple[KeyHolder, bytes],
) -> None:
    mine, spliced = pairs
    with pytest.raises(InvalidContext, match="does not decrypt what its own public key"):
        SharedKeyClient.from_bytes(spliced, PARAMS, expected_fingerprint=mine.fingerprint)
    shared = KeyHolder(PARAMS, mode=KeyMode.EVERY_CLIENT)
    client = SharedKeyClient.from_bytes(
        shared.export_client_secret_context(), PARAMS, expected_fingerprint=shared.fingerprint
    )
    assert client.fingerprint == shared.fingerprint
