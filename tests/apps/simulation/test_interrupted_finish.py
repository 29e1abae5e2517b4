"""Ctrl-C (SIGINT) while ``secagg simulate`` finishes: writing the run folder (summary,
plots, report) or printing its table. The run folder is either complete or marked
aborted, and the command leaves with one line and exit 130, never a traceback.

Each stop is taken at an exact point by a hook that raises the signal there (in the main
thread, as a Ctrl-C is delivered): no sleeps, no race with the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

#: a small federation (seconds), the one the refusal tests run
SHORT = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]

#: the run the stops at the finish take: SHORT without DP, a public prior's fit or a
#: hidden layer. Why: a stop there is about the finish (the folder written, the table
#: printed), not about what trained; DP-SGD's calibration and the prior's fit were about
#: half of each run's time, the interpreter's imports most of the rest
FINISH = [*SHORT, "--mechanism", "off", "--prior", "none", "--model", "logistic"]

#: ``secagg simulate`` with the signal raised at ``sys.argv[1]``'s point: ``write`` (as
#: the report is written), ``finaliser`` (in a ``__del__`` run as the report is written:
#: Python runs a signal's handler wherever the main thread is), ``table`` (as the
#: console's table is printed, after the folder is complete)
_HOOKED_SIMULATE = """
import signal, sys
from secagg.apps.simulation import cli, report

where, out, rest = sys.argv[1], sys.argv[2], sys.argv[3:]

class Finaliser:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)

def hook(original, stop):
    def hooked(*args):
        stop()
        return original(*args)
    return hooked

def interrupt() -> None:
    signal.raise_signal(signal.SIGINT)

if where == "write":
    report._write_markdown = hook(report._write_markdown, interrupt)
elif where == "finaliser":
    report._write_markdown = hook(report._write_markdown, Finaliser)  # collected at once
elif where.startswith("table-"):  # table-SIGINT, table-SIGTERM
    stop = signal.Signals[where.removeprefix("table-")]
    cli._print_table = hook(cli._print_table, lambda: signal.raise_signal(stop))
from secagg.apps.cli import run
sys.argv = ["secagg", "simulate", *rest, "--out", out]
run()
"""


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=600,  # generous: a short run takes seconds; only a hang meets it
        cwd=ROOT,  # "-c" puts the working directory first on sys.path
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    assert "Exception ignored" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("where", ["write", "finaliser"])
def test_ctrl_c_while_the_run_folder_is_written_marks_it_aborted(
    tmp_path: Path, where: str
) -> None:
    """``finaliser``: the handler's KeyboardInterrupt, raised in a ``__del__``, was
    printed as "Exception ignored in ..." with a traceback, and the run went on to exit
    0 with a summary.json and a report.md, as if never stopped (SIGTERM was handled so,
    Ctrl-C was not)."""
    out = tmp_path / "run"
    done = _run(_HOOKED_SIMULATE, where, str(out), *FINISH)
    assert done.returncode == 128 + signal.SIGINT, (done.stdout, done.stderr)
    assert _one_line(done) == (
        f"Error: stopped by SIGINT before the simulation finished: {out} is incomplete, "
        f"marked aborted ({out / 'ABORTED'})"
    )
    assert "stopped by SIGINT" in (out / "ABORTED").read_text()
    assert not (out / "summary.json").exists() and not (out / "report.md").exists()
    assert (out / "ledger.sqlite").is_file()  # kept for an auditor


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_after_the_run_folder_is_written_says_it_is_complete(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """The table is printed after the folder is complete: a Ctrl-C there was click's
    bare "Aborted!" and exit 1, the status of a run whose every round failed; a SIGTERM
    killed the process without a word (its handler had gone with the run)."""
    out = tmp_path / "run"
    done = _run(_HOOKED_SIMULATE, f"table-{stop.name}", str(out), *FINISH)
    assert done.returncode == 128 + stop, (done.stdout, done.stderr)
    line = _one_line(done)
    assert line == (
        f"Error: stopped by {stop.name} after the simulation finished: {out} is complete "
        f"({out / 'report.md'}); only this summary was cut short"
    ), line
    assert (out / "summary.json").is_file() and (out / "report.md").is_file()
    assert not (out / "ABORTED").exists()


#: a stop taken inside a finaliser in the guarded block, or a second Ctrl-C while the
#: first one's cleanup runs (an impatient user presses it twice)
_GUARDED = """
import signal, sys
from pathlib import Path
from secagg.apps.simulation import cli

class Finaliser:
    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)

where, run = sys.argv[1], Path(sys.argv[2])
run.mkdir()
if where == "twice":
    original = cli._mark_aborted
    def twice(*args):
        signal.raise_signal(signal.SIGINT)
        return original(*args)
    cli._mark_aborted = twice
with cli._marked_aborted_if_stopped(run):
    (run / "summary.json").write_text("{}")
    if where == "finaliser":
        Finaliser()  # collected at once: its __del__ takes the signal
    else:
        signal.raise_signal(signal.SIGINT)
print("finished")
"""


@pytest.mark.parametrize("where", ["finaliser", "twice"])
def test_a_ctrl_c_in_a_finaliser_or_twice_still_marks_the_run_aborted(
    tmp_path: Path, where: str
) -> None:
    """``finaliser``: exit 0, "finished", a traceback, summary.json kept. ``twice``: the
    second KeyboardInterrupt broke the cleanup, a traceback and no ABORTED file."""
    run = tmp_path / "run"
    done = _run(_GUARDED, where, str(run))
    assert done.returncode == 128 + signal.SIGINT, (done.stdout, done.stderr)
    assert "finished" not in done.stdout
    assert _one_line(done).startswith("Error: stopped by SIGINT before the simulation finished")
    assert (run / "ABORTED").is_file() and not (run / "summary.json").exists()


_IGNORED = """
import signal, sys
from pathlib import Path
from secagg.apps.simulation import cli

signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a shell leaves a background job
run = Path(sys.argv[1])
run.mkdir()
with cli._marked_aborted_if_stopped(run):
    signal.raise_signal(signal.SIGINT)
    (run / "summary.json").write_text("{}")
assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
print("finished")
"""


def test_a_run_that_ignores_ctrl_c_still_ignores_it(tmp_path: Path) -> None:
    """The handler is installed only over Python's own: a job started with SIGINT
    ignored (``cmd &`` in a script) is not made interruptible by it."""
    run = tmp_path / "run"
    done = _run(_IGNORED, str(run))
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "finished" in done.stdout and (run / "summary.json").is_file()


def test_a_huge_target_runs_and_says_each_privacy_caveat_once(tmp_path: Path) -> None:
    """``--epsilon 1e308`` ran (the least noise PRV can evaluate, epsilon 587 spent and
    reported as such), but printed the same multi-line NoiseFloorWarning once per
    trainer (16 times at 8 branches), and an overflow warning from the epsilon plot.
    Since 2026-12-05 the target's cap is 1e6 (MAX_EPSILON; 1e308 is refused at load,
    tests/apps/simulation/test_epsilon_target_cap.py): the cap, far above the floor,
    still runs at the floor and says so once."""
    out = tmp_path / "run"
    huge = ["--epsilon", "1e6"]
    done = subprocess.run(
        [sys.executable, "-m", "secagg.apps.cli", "simulate", *SHORT, *huge, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    said = [line.partition("Warning: ")[2] for line in done.stderr.splitlines()]
    said = [text for text in said if text]
    assert said and all("is met only from above" in text for text in said), said
    assert len(said) == len(set(said)), said  # each caveat once
    assert "overflow" not in done.stderr and "Traceback" not in done.stderr
    assert "within the target ε = 1e+06" in done.stdout and (out / "report.md").is_file()


#: ``secagg simulate --seeds 2`` with the signal ``sys.argv[1]`` raised as the console
#: prints the experiment's lines: the second call of ``experiment_lines`` (the first
#: writes experiment.md, inside the run)
_HOOKED_EXPERIMENT = """
import signal, sys
from secagg.apps.simulation import experiment

stop, out, rest = signal.Signals[sys.argv[1]], sys.argv[2], sys.argv[3:]
original = experiment.experiment_lines
calls = []

def hooked(result):
    calls.append(1)
    if len(calls) == 2:
        signal.raise_signal(stop)
    return original(result)

experiment.experiment_lines = hooked
from secagg.apps.cli import run
sys.argv = ["secagg", "simulate", *rest, "--seeds", "2", "--out", out]
run()
"""


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_while_an_experiment_prints_leaves_it_complete(
    tmp_path: Path, stop: signal.Signals
) -> None:
    """``--seeds N`` printed its lines inside the run's guard: a Ctrl-C there marked the
    complete experiment folder ABORTED and removed its result files."""
    out = tmp_path / "experiment"
    done = _run(_HOOKED_EXPERIMENT, stop.name, str(out), *FINISH)
    assert done.returncode == 128 + stop, (done.stdout, done.stderr)
    assert _one_line(done) == (
        f"Error: stopped by {stop.name} after the simulation finished: {out} is complete "
        f"({out / 'experiment.md'}); only this summary was cut short"
    )
    assert not (out / "ABORTED").exists()
    assert (out / "experiment.json").is_file() and (out / "experiment.md").is_file()
    assert all((out / f"seed-{s}" / "report.md").is_file() for s in (0, 1))
