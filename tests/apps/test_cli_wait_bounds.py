"""Every duration flag is bounded above by a week, refused past it as a usage error of
one line naming the flag; ``inf``, where a flag documents it ("never"), still passes.

Upper-bounds review (2026-12-05): ``secagg server --wait 1e300`` started a server whose
wait for its branches reached ``threading`` (whose waits refuse more than about 292
years with an OverflowError), and ``--idle``, ``--connect-timeout`` and
``--give-up-after`` took any finite number, while the federation file's own duration
keys are now refused past a week (tests/runtime/test_config_upper_bounds.py).
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import click
import pytest
from click.testing import CliRunner

from secagg.apps.cli import main
from secagg.transport.base import MAX_WAIT_SECONDS

#: (command, flag, whether 'inf' is documented): every duration flag of every command
DURATION_FLAGS = [
    (("server",), "--wait", False),
    (("client",), "--idle", True),
    (("client",), "--connect-timeout", False),
    (("client",), "--give-up-after", True),
    (("keyholder",), "--idle", True),
    (("keyholder",), "--connect-timeout", False),
    (("keyholder",), "--give-up-after", True),
]


def _option(path: tuple[str, ...], flag: str) -> click.Option:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return next(p for p in command.params if isinstance(p, click.Option) and flag in p.opts)


@pytest.mark.parametrize(("path", "flag", "allows_inf"), DURATION_FLAGS)
@pytest.mark.parametrize("value", ["1e300", "1e10", str(MAX_WAIT_SECONDS + 1)])
def test_a_wait_past_a_week_is_refused_naming_the_flag(
    path: tuple[str, ...], flag: str, allows_inf: bool, value: str
) -> None:
    del allows_inf
    option = _option(path, flag)
    with pytest.raises(click.BadParameter) as refused:
        option.type.convert(value, option, None)
    assert "604800" in refused.value.format_message()


@pytest.mark.parametrize(("path", "flag", "allows_inf"), DURATION_FLAGS)
def test_a_week_passes_and_inf_where_documented(
    path: tuple[str, ...], flag: str, allows_inf: bool
) -> None:
    option = _option(path, flag)
    assert option.type.convert(str(MAX_WAIT_SECONDS), option, None) == MAX_WAIT_SECONDS
    if allows_inf:
        assert option.type.convert("inf", option, None) == float("inf")
    else:
        with pytest.raises(click.BadParameter):
            option.type.convert("inf", option, None)
    with pytest.raises(click.BadParameter):  # never minus infinity
        option.type.convert("-inf", option, None)


class _Served(Exception):
    """The server would have started."""


def test_server_wait_of_1e300_is_exit_2_one_line_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "federation.toml"
    config.write_text('[federation]\nname = "f"\nclients = ["a", "b"]\ndimension = 4\n')
    with mock.patch("secagg.runtime.launch.serve", side_effect=_Served):
        result = CliRunner().invoke(
            main, ["server", "--config", str(config), "--wait", "1e300"], catch_exceptions=True
        )
    assert not isinstance(result.exception, _Served), "the server started"
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and "--wait" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
