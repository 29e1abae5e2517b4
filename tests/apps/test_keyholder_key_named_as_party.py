"""``secagg keyholder --name holder --key holder``: a key file named as the key holder is
still named with its flag when the key holder cannot use it.

Second review of ba5534f5 (helper brief 326, 2026-12-07): the typed key was put back in
the line before the key holder's own ``holder: `` was taken off its front, so a key file
``holder`` (no extension, named after the party) that is no TenSEAL context lost its
name and flag: ``secagg keyholder: holder: not a TenSEAL context: ...``, which file not
said.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _keyholder_cli import refusal_line, run_keyholder

from secagg.he.keys import _KEY_FILE_MAGIC

#: what a key file holds -> how the key holder refuses it (the line's end)
KEY_FILES: dict[str, tuple[bytes, str]] = {
    "not a key file": (b"not a key\n", " is not a secagg key holder's key file"),
    "not a TenSEAL context": (_KEY_FILE_MAGIC + b"garbage", ": not a TenSEAL context: "),
}


def _line(folder: Path, key: str) -> str:
    """The one printable line of ``secagg keyholder --name holder --key key`` run in
    ``folder``, exit 2."""
    return refusal_line(run_keyholder(folder, key))


@pytest.mark.parametrize("kind", sorted(KEY_FILES))
@pytest.mark.parametrize("typed", ["holder", "./holder"])
def test_a_key_named_as_the_party_keeps_its_flag(tmp_path: Path, typed: str, kind: str) -> None:
    """Before: ``holder: not a TenSEAL context: failed to parse stream`` for ``holder``."""
    (tmp_path / "holder").write_bytes(KEY_FILES[kind][0])
    line = _line(tmp_path, typed)
    assert line.startswith(f"secagg keyholder: holder: --key {typed}{KEY_FILES[kind][1]}"), line
