"""``secagg keyholder --key K``: a key file it cannot use is named as ``--key`` and as it
was typed, relative or absolute, in one printable line.

Helper brief 325 (2026-12-07, item 4): the command resolved the typed ``--key`` to an
absolute path before the key holder read it, and the reader's refusal named that path:
``--key d/holder.key`` typed in ``/srv/kh`` said ``/srv/kh/d/holder.key is not a secagg
key holder's key file``, a path never typed and no flag named, while every other refusal
of a path flag names it as typed (``keyholder-init --key``, ``bench --out``, ``audit``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _keyholder_cli import refusal_line, run_keyholder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secagg.apps.commands.common import shown_path
from secagg.he.keys import _KEY_FILE_MAGIC

#: what a key file holds -> how the key holder refuses it (the line's end)
KEY_FILES: dict[str, tuple[bytes, str]] = {
    "not a key file": (b"not a key\n", " is not a secagg key holder's key file"),
    "not a TenSEAL context": (_KEY_FILE_MAGIC + b"garbage", ": not a TenSEAL context: "),
}


def _key(folder: Path, typed: str, kind: str) -> None:
    path = folder / typed
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(KEY_FILES[kind][0])


@pytest.mark.parametrize("kind", sorted(KEY_FILES))
@pytest.mark.parametrize("typed", ["holder.key", "d/holder.key", "./d/holder.key"])
def test_a_relative_key_is_named_as_typed(tmp_path: Path, typed: str, kind: str) -> None:
    _key(tmp_path, typed, kind)
    line = refusal_line(run_keyholder(tmp_path, typed))
    assert line.startswith(f"secagg keyholder: holder: --key {typed}{KEY_FILES[kind][1]}"), line
    assert str(tmp_path) not in line, line


@pytest.mark.parametrize("kind", sorted(KEY_FILES))
def test_a_relative_key_beside_a_policy_elsewhere_is_named_as_typed(
    tmp_path: Path, kind: str
) -> None:
    """A ``--policy`` in another folder (whose own paths are read against its folder):
    the typed key is still the working directory's, and named so."""
    _key(tmp_path, "d/holder.key", kind)
    policy = tmp_path / "policies" / "holder.toml"
    policy.parent.mkdir()
    policy.write_text("[key_holder]\nmax_decryptions = 10\n")
    line = refusal_line(run_keyholder(tmp_path, "d/holder.key", "--policy", str(policy)))
    assert line.startswith(f"secagg keyholder: holder: --key d/holder.key{KEY_FILES[kind][1]}")
    assert str(tmp_path / "d") not in line, line


def test_an_absolute_key_is_named_absolute(tmp_path: Path) -> None:
    _key(tmp_path, "holder.key", "not a key file")
    typed = str(tmp_path / "holder.key")
    line = refusal_line(run_keyholder(tmp_path, typed))
    assert line == f"secagg keyholder: holder: --key {typed} is not a secagg key holder's key file"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["a\nb.key", "a  b.key", "a\x1b[31mb.key", "a\tb.key", "plain.key"]),
    kind=st.sampled_from(sorted(KEY_FILES)),
)
def test_any_typed_key_is_named_once_as_shown(
    tmp_path_factory: pytest.TempPathFactory, name: str, kind: str
) -> None:
    folder = tmp_path_factory.mktemp("kh")
    typed = f"d/{name}"
    _key(folder, typed, kind)
    line = refusal_line(run_keyholder(folder, typed))
    assert line.count(shown_path(typed)) == 1, line
    assert f"--key {shown_path(typed)}" in line and str(folder) not in line, line
