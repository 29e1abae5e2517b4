"""``secagg client --hook M:F`` whose factory fails: one line naming --hook, exit 2.

Why: the factory is the operator's own code and runs before any dial. One that raised
anything but a secagg error ended the branch in a click traceback: the bank-fraud
example's hook with ``SECAGG_ROUNDS=ten`` (``int()``'s ValueError), a module whose
import fails on a bug, a factory that cannot open its data (review, 2026-12-06). Now
each is the branch's own set-up mistake, one line with the exception's type and
message, before anything is dialled; a ConfigurationError from the hook keeps its own
line (what to set).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main

_names = itertools.count()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("client-hook") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "b1")
    return directory


def _hook_module(folder: Path, body: str) -> str:
    """A module on the path with ``body``; its name (fresh: no import cache)."""
    module = f"secagg_test_hook_{next(_names)}"
    (folder / f"{module}.py").write_text(body)
    return module


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (
            "def make(name, dimension):\n    return int('ten')\n",
            "failed: ValueError: invalid literal for int() with base 10: 'ten'",
        ),
        (
            "def make(name, dimension):\n    raise RuntimeError('no GPU\\nfound')\n",
            "failed: RuntimeError: no GPU found",
        ),
        (
            "def make(name, dimension):\n    import secagg_no_such_package\n",
            "failed: ModuleNotFoundError: No module named 'secagg_no_such_package'",
        ),
        (
            "raise RuntimeError('a bug at import')\ndef make(name, dimension):\n    pass\n",
            "failed: RuntimeError: a bug at import",
        ),
    ],
)
def test_a_failing_hook_factory_is_one_line_exit_2(
    tmp_path: Path, certs: Path, monkeypatch: pytest.MonkeyPatch, body: str, said: str
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _hook_module(tmp_path, body)
    # nothing listens on port 9: the hook is built (and fails) before any dial
    args = ["client", "--server", "127.0.0.1:9", "--name", "b1", "--dimension", "3"]
    args += ["--certs", str(certs), "--connect-timeout", "1", "--hook", f"{module}:make"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), "a traceback"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0] == f"secagg client: b1: --hook {module}:make {said}", lines[0]


def test_a_configuration_error_from_the_hook_keeps_its_own_line(
    tmp_path: Path, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _hook_module(
        tmp_path,
        "from secagg.errors import ConfigurationError\n"
        "def make(name, dimension):\n"
        "    raise ConfigurationError(f'{name}: set SECAGG_BRANCH_CSV')\n",
    )
    args = ["client", "--server", "127.0.0.1:9", "--name", "b1", "--dimension", "3"]
    args += ["--certs", str(certs), "--connect-timeout", "1", "--hook", f"{module}:make"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "secagg client: b1: set SECAGG_BRANCH_CSV"
