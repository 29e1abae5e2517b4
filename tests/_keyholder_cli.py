"""Running ``secagg keyholder`` in-process against a small CKKS federation, and reading
its one-line refusal: shared by the tests of how the key holder names its key and policy
files (three copies before; ``duplicates --change``)."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result

from secagg.apps.cli import main

#: a CKKS federation of three branches whose key holder is ``holder``
CKKS_FEDERATION = (
    '[federation]\nname = "kh"\nclients = ["b1", "b2", "b3"]\ndimension = 4\n'
    '[backend]\nname = "ckks"\nkey_holder = "holder"\nvalue_bound = 1.0\n'
    '[dp]\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 1.0\n'
)


def run_keyholder(folder: Path, key: str, *more: str) -> Result:
    """``secagg keyholder --name holder --key key [more]`` with ``folder`` as its working
    directory (a relative ``key`` is read from there), against :data:`CKKS_FEDERATION`
    written to ``folder/ckks.toml``. The server address is never dialled: every test
    of these files is refused before."""
    (folder / "certs").mkdir(exist_ok=True)
    config = folder / "ckks.toml"
    config.write_text(CKKS_FEDERATION)
    here = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(
            main,
            [
                "keyholder", "--server", "127.0.0.1:9", "--name", "holder",
                "--certs", "certs", "--config", str(config), "--key", key,
                "--quiet", *more,
            ],
        )  # fmt: skip
    finally:
        os.chdir(here)


def refusal_line(result: Result) -> str:
    """The refusal's one printable line: exit 2, no traceback."""
    assert "Traceback" not in result.output
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), result.output
    return lines[0]
