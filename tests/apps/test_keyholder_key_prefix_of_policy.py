"""``secagg keyholder --key K --policy P`` where the key's absolute path is the start of
the policy's (``--key holder`` beside ``--policy /srv/kh/holder.toml``): a refusal of
the policy names it as it was typed, whole.

Second review of ba5534f5 (helper brief 326, 2026-12-07): the key's absolute path was
replaced by its typed form wherever it stood in the line, inside a longer path too, so
``--key holder --policy /srv/kh/holder.toml`` typed in ``/srv/kh`` with a policy that is
not valid TOML said ``--policy holder.toml is not valid TOML``: a path never typed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _keyholder_cli import refusal_line, run_keyholder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _line(folder: Path, key: str, policy: str) -> str:
    """The one printable line of ``secagg keyholder --key key --policy policy`` run in
    ``folder``, exit 2."""
    return refusal_line(run_keyholder(folder, key, "--policy", policy))


@pytest.mark.parametrize("suffix", [".toml", "-policy.toml", "_p.toml"])
def test_a_policy_whose_path_begins_with_the_keys_is_named_whole(
    tmp_path: Path, suffix: str
) -> None:
    """Before: ``--policy holder.toml is not valid TOML`` for ``/.../holder.toml``."""
    (tmp_path / "holder").write_bytes(b"not a key\n")
    policy = tmp_path / f"holder{suffix}"
    policy.write_text("[key_holder\n")
    line = _line(tmp_path, "holder", str(policy))
    assert f"--policy {policy} is not valid TOML" in line, line


def test_the_key_is_still_named_as_typed(tmp_path: Path) -> None:
    """The key's own refusal (a valid policy beside it): as typed, with its flag."""
    (tmp_path / "holder").write_bytes(b"not a key\n")
    policy = tmp_path / "holder.toml"
    policy.write_text("[key_holder]\nmax_decryptions = 10\n")
    line = _line(tmp_path, "holder", str(policy))
    assert "holder: --key holder is not a secagg key holder's key file" in line, line


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stem=st.text(st.characters(whitelist_categories=("Ll", "Nd")), min_size=1, max_size=6),
    suffix=st.sampled_from([".toml", ".key.toml", "-p.toml", "2.toml"]),
)
def test_any_policy_beginning_with_the_key_is_named_whole(
    tmp_path_factory: pytest.TempPathFactory, stem: str, suffix: str
) -> None:
    folder = tmp_path_factory.mktemp("kh")
    if stem in ("certs", "ckks"):
        return
    (folder / stem).write_bytes(b"not a key\n")
    policy = folder / f"{stem}{suffix}"
    policy.write_text("[key_holder\n")
    line = _line(folder, stem, str(policy))
    assert f"--policy {policy} is not valid TOML" in line, line
