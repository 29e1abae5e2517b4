"""The ``secagg`` command owns its root log handler, not Opacus.

Why: ``opacus.utils.module_utils`` calls ``logging.basicConfig`` when it is imported
(``secagg simulate`` imports it through the DP-SGD trainer). The first import installed
Opacus's format on the root logger, so every later warning of any other library read
``12/06/2026 10:36:10:WARNING:a library warning``: no logger name, Opacus's date
format (newcomer walk, 2026-12-06). And had Opacus been imported before a party set up
its log (a ``--hook`` module that imports it first), the party's own ``basicConfig``
would have been a no-op: its INFO lines (connections, rounds) gone.

The entry point (:func:`secagg.apps.cli.run`) now installs the command's own root
handler first, when the process has none: warnings and errors as one line, ``warning:
<logger>: <message>``; a long-running party replaces it with its timestamped log.
Each case runs ``run()`` in a fresh interpreter, as the console script does, with a
probe command added to the group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import logging
import sys

import click

from secagg.apps import cli


@cli.main.command("probe")
@click.option("--party", is_flag=True)
def probe(party: bool) -> None:
    import secagg.dp.dpsgd  # noqa: F401  (imports Opacus: its basicConfig runs)

    if party:
        cli._setup_logging(verbose=False, quiet=False)
        logging.getLogger("secagg.server").info("round 1 complete")
    logging.getLogger("some.library").warning("a library warning")


sys.argv = ["secagg", "probe", *sys.argv[1:]]
cli.run()
"""


def _probe(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PROBE), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # imports torch and Opacus: seconds, generous on a loaded machine
        check=False,
    )


def test_a_library_warning_after_opacus_is_one_line_naming_its_logger() -> None:
    done = _probe()
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines == ["warning: some.library: a library warning"], done.stderr


def test_a_party_keeps_its_timestamped_info_log_when_opacus_came_first() -> None:
    done = _probe("--party")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, done.stderr
    assert lines[0].endswith(" INFO secagg.server: round 1 complete"), done.stderr
    assert lines[1].endswith(" WARNING some.library: a library warning"), done.stderr
    assert "warning: some.library" not in done.stderr  # the command's handler was replaced
