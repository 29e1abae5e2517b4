"""A secret context without its public key is refused, not serialized into a segfault.

Finding (CKKS review, 2026-12-07): :meth:`KeyHolder.load` and
:meth:`SharedKeyClient.from_bytes` take the public half of a secret context by serializing
it with the public key (:func:`~secagg.he.context.serialize_public`), and TenSEAL 0.3.18's
``serialize(save_public_key=True)`` of a context that holds a secret key but no public key
dereferences the missing key: the process dies of SIGSEGV. So a key file written without
its public key (TenSEAL's ``save_public_key=False``) killed ``secagg keyholder`` at start
instead of one line naming the file, and a peer's every-client secret context without one
killed the branch that parsed it (its pin is checked after parsing: a secret context's
fingerprint is its public half's).

Now both refuse such a context before serializing it: a ConfigurationError naming the
key file, an InvalidContext for the peer's bytes. Each call runs in a forked child here, so
the check before the fix fails as a test (the child's signal) instead of killing pytest.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

pytest.importorskip("tenseal")

from secagg.errors import ConfigurationError
from secagg.he.errors import HEParameterError, InvalidContext
from secagg.he.keys import _KEY_FILE_MAGIC, KeyHolder, KeyMode, SharedKeyClient
from secagg.he.params import choose_parameters

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

#: the smallest ring (N = 2048): key generation stays cheap
PARAMS = choose_parameters(2, 1.0, 1e-3)


def _in_child(call: Callable[[], object]) -> tuple[str, str]:
    """(name of the exception ``call`` raised, its message), or ("returned", "") or
    ("signal", its name) when the forked child running it died of one."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        os.close(read)
        try:
            call()
            outcome = ("returned", "")
        except BaseException as exc:
            outcome = (type(exc).__name__, str(exc))
        os.write(write, "\0".join(outcome).encode("utf-8"))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "signal", signal.Signals(os.WTERMSIG(status)).name
    kind, _, message = data.decode("utf-8").partition("\0")
    return kind, message


@pytest.fixture(scope="module")
def secret_only() -> bytes:
    """A context of ``PARAMS`` with its secret key and without its public key."""
    holder = KeyHolder(PARAMS, mode=KeyMode.EVERY_CLIENT)
    return holder._ts.serialize(
        save_public_key=False, save_secret_key=True, save_galois_keys=False, save_relin_keys=False
    )


def test_a_key_file_without_its_public_key_is_one_configuration_error(
    secret_only: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "kh.key"
    path.write_bytes(_KEY_FILE_MAGIC + secret_only)
    path.chmod(0o600)
    kind, message = _in_child(lambda: KeyHolder.load(path, PARAMS))
    assert kind == HEParameterError.__name__, (kind, message)
    assert issubclass(HEParameterError, ConfigurationError)  # the CLI's one line, exit 2
    assert str(path) in message and "public key" in message and "\n" not in message


def test_a_peers_secret_context_without_its_public_key_is_an_invalid_message(
    secret_only: bytes,
) -> None:
    pin = bytes(32)  # any pin: the bytes are parsed before a secret context's pin is compared
    kind, message = _in_child(
        lambda: SharedKeyClient.from_bytes(secret_only, PARAMS, expected_fingerprint=pin)
    )
    assert kind == InvalidContext.__name__ and "public key" in message, (kind, message)
