"""No secret key material in a repr, an error message or an exception's chained cause.

The secret key lives in TenSEAL contexts held by :class:`KeyHolder` and
:class:`SharedKeyClient`, in the every-client export, and in the key holder's key file.
Every refusal that handles those bytes (a garbled or truncated export, a key file that
is no key, a key of other parameters, a secret context offered as a public one) and
every object that holds them must say what went wrong in one short line that carries
none of them: not raw, not as hex, not as a bytes repr. Secret windows are all 12-byte
runs of the export that do not occur in the public context (so they come from the key).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from pathlib import Path

import pytest

from secagg.errors import SecAggError
from secagg.he import choose_parameters
from secagg.he.context import OpaquePublicContext, PublicAggregationContext, context_fingerprint
from secagg.he.keys import _KEY_FILE_MAGIC, KeyHolder, KeyMode, SharedKeyClient

PARAMS = choose_parameters(2, 1.0, 1e-3)
OTHER = choose_parameters(2, 1.0, 1e-6)
_WINDOW = 12


@pytest.fixture(scope="module")
def holder() -> KeyHolder:
    return KeyHolder(PARAMS, mode=KeyMode.EVERY_CLIENT)


def _windows(data: bytes) -> set[bytes]:
    return {data[i : i + _WINDOW] for i in range(len(data) - _WINDOW + 1)}


@pytest.fixture(scope="module")
def secret_windows(holder: KeyHolder) -> set[bytes]:
    """Every 12-byte run of the export that is not in the public context (nor framing)."""
    secret = holder.export_client_secret_context()
    windows = {
        w for w in _windows(secret) - _windows(holder.public_context_bytes) if len(set(w)) > 4
    }
    assert len(windows) > 1000
    return windows


def _decoded(text: str) -> list[bytes]:
    """The bytes a message could carry: as written, with bytes-literal escapes undone,
    and every run of hex digits read as bytes."""
    raw = text.encode("latin-1", "replace")
    out = [raw, codecs.escape_decode(raw)[0]]
    out += [bytes.fromhex(run[: len(run) // 2 * 2]) for run in re.findall(r"[0-9a-fA-F]{8,}", text)]
    return out


def _assert_clean(text: str, windows: set[bytes]) -> None:
    assert "\n" not in text and len(text) <= 300, text
    assert not re.search(r"[0-9a-fA-F]{33,}", text), text  # a fingerprint prefix is 16
    for data in _decoded(text):
        # a flag, not the sets: a failure must not print the secret windows into the log
        leaked = not _windows(data).isdisjoint(windows)
        assert not leaked, f"secret key bytes in: {text[:80]}..."


def _garbled(secret: bytes) -> list[bytes]:
    """Truncations, flipped bytes and appended garbage of the every-client export."""
    out = [secret[:cut] for cut in (1, 16, 64, len(secret) // 2, len(secret) - 1)]
    for step, position in enumerate(range(40, len(secret), len(secret) // 25)):
        flipped = bytearray(secret)
        flipped[position] ^= 0x5A + step
        out.append(bytes(flipped))
    out.append(secret + hashlib.sha256(secret).digest())
    return out


def _refusals(holder: KeyHolder, tmp_path: Path) -> list[BaseException]:
    secret = holder.export_client_secret_context()
    caught: list[BaseException] = []

    def refused(call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except SecAggError as exc:
            caught.append(exc)

    for data in _garbled(secret):
        refused(
            lambda d=data: SharedKeyClient.from_bytes(
                d, PARAMS, expected_fingerprint=holder.fingerprint
            )
        )
    refused(lambda: SharedKeyClient.from_bytes(secret, OTHER, expected_fingerprint=bytes(32)))
    refused(lambda: SharedKeyClient.from_bytes(secret, PARAMS, expected_fingerprint=bytes(32)))
    refused(
        lambda: PublicAggregationContext.from_bytes(
            secret, PARAMS, expected_fingerprint=context_fingerprint(secret)
        )
    )
    refused(lambda: OpaquePublicContext(secret, PARAMS, fingerprint=holder.fingerprint))
    refused(lambda: KeyHolder(PARAMS).export_client_secret_context())
    refused(lambda: holder.public_context().decrypt())
    for index, data in enumerate([secret, secret[: len(secret) // 2], secret[::-1]]):
        key_file = tmp_path / f"key-{index}"
        key_file.write_bytes(_KEY_FILE_MAGIC + data)
        refused(lambda f=key_file: KeyHolder.load(f, OTHER))
        refused(lambda f=key_file: KeyHolder.load(f, PARAMS) and KeyHolder.load(f, OTHER))
    return caught


def test_refusals_near_the_secret_key_carry_none_of_it(
    holder: KeyHolder, secret_windows: set[bytes], tmp_path: Path
) -> None:
    refusals = _refusals(holder, tmp_path)
    assert len(refusals) >= 30

    def text(value: object) -> str:
        # the key file's path is the test's, and its length the runner's (xdist workers
        # nest it deeper): the bound is on what the message says, not where pytest ran
        return str(value).replace(str(tmp_path), "<tmp>")

    for exc in refusals:
        _assert_clean(text(exc), secret_windows)
        _assert_clean(text(repr(exc))[:300], secret_windows)
        assert exc.__suppress_context__ or exc.__context__ is None
        for chained in (exc.__cause__, exc.__context__):  # what a traceback could print
            if chained is not None:
                _assert_clean(text(chained), secret_windows)


def test_key_holding_objects_show_only_their_fingerprint(
    holder: KeyHolder, secret_windows: set[bytes]
) -> None:
    shared = SharedKeyClient.from_bytes(
        holder.export_client_secret_context(), PARAMS, expected_fingerprint=holder.fingerprint
    )
    opaque = OpaquePublicContext(
        holder.public_context_bytes, PARAMS, fingerprint=holder.fingerprint
    )
    for obj in (holder, shared, holder.public_context(), opaque):
        for text in (repr(obj), str(obj), format(obj)):
            _assert_clean(text, secret_windows)
            assert holder.fingerprint.hex()[:16] in text
