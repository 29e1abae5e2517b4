"""``secagg client --dimension`` is bounded by a federation's largest model and by memory.

Upper-bounds review (2026-12-05): ``--dimension 2**70`` was an OverflowError traceback
from numpy (the demo hook's target), and ``--dimension 3000000000`` (or 2**31, the
federation's own bound) allocated until the machine ran out of memory. Each is now a
usage error of one line naming the flag, before any hook is loaded or server dialled.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.runtime.config import MAX_DIMENSION


class _Started(Exception):
    """The branch would have loaded its hook and dialled."""


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("client-dimension") / "certs"
    devca.init_ca(directory)
    devca.issue_client(directory, "b1")
    return directory


@pytest.mark.parametrize(
    ("dimension", "memory", "words"),
    [
        (2**70, None, "is not in the range"),
        (MAX_DIMENSION + 1, None, "is not in the range"),
        (10**8, 2**30, "of memory, more than the 1.0 GiB"),  # 3.0 GiB on a 1 GiB machine
    ],
)
def test_a_model_past_its_bound_is_a_usage_error_naming_the_flag(
    certs: Path, dimension: int, memory: int | None, words: str
) -> None:
    args = ["client", "--server", "127.0.0.1:1", "--name", "b1", "--certs", str(certs)]
    with (
        mock.patch("secagg.apps.cli_types.memory_limit", return_value=memory),
        mock.patch("secagg.runtime.launch.load_hook", side_effect=_Started),
        mock.patch("secagg.runtime.launch.run_branch", side_effect=_Started),
    ):
        result = CliRunner().invoke(main, [*args, "--dimension", str(dimension)])
    assert not isinstance(result.exception, _Started), "the branch started"
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'--dimension'" in lines[0] and words in lines[0], result.stderr
