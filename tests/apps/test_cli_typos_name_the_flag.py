"""Operator typos that were one line but named no flag: ``keyholder --backend`` and
``certs init --server-name``.

Why: ``secagg keyholder --backend CKKS`` said ``secagg keyholder: kh: unknown backend
'CKKS'; choose one of ('plain', 'secagg', 'secagg+', 'ckks')`` (three of them no key
holder serves) and ``--backend secagg+`` ``the secagg+ backend has no key holder``;
``certs init --server-name ''`` (an unset ``$HOST``) said ``Error: server name '' is
neither an IP address nor a host``: none named the flag (hostile CLI review,
2026-12-06). Each is now click's one usage line naming it, exit 2, before anything is
dialled or written.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps.cli import main


def _dial(*args: object, **kwargs: object) -> None:
    raise AssertionError("the key holder dialled")


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("CKKS", "'CKKS' is no backend; a key holder serves ckks"),
        ("ckks ", "'ckks ' is no backend; a key holder serves ckks"),
        ("", "'' is no backend; a key holder serves ckks"),
        ("secagg+", "the secagg+ backend has no key holder (a key holder serves ckks)"),
        ("plain", "the plain backend has no key holder (a key holder serves ckks)"),
    ],
)
def test_keyholder_backend_names_the_flag(tmp_path: Path, backend: str, words: str) -> None:
    args = ["keyholder", "--server", "127.0.0.1:9", "--name", "kh", "--backend", backend]
    with mock.patch("secagg.runtime.launch.run_key_holder", _dial):
        result = CliRunner().invoke(main, [*args, "--certs", str(tmp_path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.output.splitlines() == [f"Error: Invalid value for '--backend': {words}"]


@pytest.mark.parametrize("name", ["", "a b", "host:443"])
def test_certs_init_server_name_names_the_flag(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "certs"
    result = CliRunner().invoke(
        main, ["certs", "init", "--dir", str(folder), "--server-name", name]
    )
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Error: Invalid value for '--server-name': server name {name!r}"
    ), lines
    assert not folder.exists()  # refused before the CA folder is made
