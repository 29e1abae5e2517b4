"""exit_process: the status sys.exit would give, with everything written flushed.

Each case runs in a child process (os._exit would end pytest itself): the status,
stdout written without a newline (still in the buffer when the process ends), a
logging record, and an atexit handler that must not run.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from secagg.transport.process import exit_status

CHILD = """
import atexit, logging, sys
from secagg.transport.process import exit_process
logging.basicConfig(stream=sys.stderr, format="%(message)s", level=logging.INFO)
atexit.register(lambda: print("ATEXIT RAN", flush=True))
sys.stdout.write("partial line without a newline")
logging.getLogger("child").info("a log record")
code = eval(sys.argv[1])
exit_process(code)
"""


@pytest.mark.parametrize(
    ("code", "status", "stderr_has"),
    [("0", 0, ""), ("None", 0, ""), ("3", 3, ""), ("'one line why'", 1, "one line why")],
)
def test_exit_process_flushes_and_keeps_the_status(code: str, status: int, stderr_has: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == status
    assert done.stdout == "partial line without a newline"  # flushed; no atexit output
    assert "a log record" in done.stderr
    assert stderr_has in done.stderr


def test_exit_status_reads_codes_as_sys_exit_does(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(None) == 0
    assert exit_status(0) == 0
    assert exit_status(2) == 2
    assert exit_status("bad flag") == 1
    assert capsys.readouterr().err == "bad flag\n"


def test_the_command_keeps_its_exit_status_through_run() -> None:
    """`python -m secagg.apps.cli` goes through run(): a usage error is still status 2
    and one line, and --version still prints and exits 0."""
    version = subprocess.run(
        [sys.executable, "-m", "secagg.apps.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.returncode == 0 and "secagg" in version.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "secagg.apps.cli", "client", "--no-such-flag"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode == 2
    assert "--no-such-flag" in wrong.stderr
