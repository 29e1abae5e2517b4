"""``secagg simulate`` when the machine or its files fail under the run: a full disk in
the run folder, a database or ledger error, a read-only ``--out``, the run folder removed
mid-run. Each is one line naming the folder and the cause (exit 1; a read-only ``--out``
is a mistake in the flag, exit 2), never a traceback, and the folder left cannot pass for
a finished run: a ``FAILED`` file naming the cause, no summary.json nor report.md.

Why: the command caught only ConfigurationError and TransportError around the job, so
any other failure ended in a Python traceback and left the folder with a ledger and a
server state and no word that the run never finished (environment-failure review,
2026-12-07). The federation is replaced by a stand-in that writes what a run writes
first and then fails: the failure points are after or beside the training, which is not
what these tests are about (and costs seconds)."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.errors import ConfigurationError
from secagg.ledger.chain import LedgerError
from secagg.runtime.store import StateError

#: the smallest federation the CLI tests run (never trained here: the job is replaced)
SHORT = ["--branches", "3", "--rounds", "1", "--local-epochs", "1", "--train-rows", "3000"]
SHORT += ["--test-rows", "400", "--batch-size", "64", "--dropout", "0", "--quiet"]


def _simulate(run_dir: Path) -> Result:
    return CliRunner().invoke(main, ["simulate", *SHORT, "--out", str(run_dir)])


def _one_error_line(result: Result, status: int) -> str:
    """The one line a failed run printed, checked: its status, no traceback."""
    assert result.exit_code == status, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _job_that_fails(error: BaseException, calls: list[Path]) -> Callable[..., Any]:
    """A stand-in for ``run_simulation``: it opens the run's files, as the federation
    does (server state, ledger), then fails with ``error``."""

    def job(config: Any, out: Path, *args: Any, **kwargs: Any) -> Any:
        del config, args, kwargs
        calls.append(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "server.sqlite").write_bytes(b"state")
        (out / "ledger.sqlite").write_bytes(b"ledger")
        raise error

    return job


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (
            OSError(errno.EIO, "Input/output error", "/runs/x/ledger.sqlite"),
            "Input/output error: /runs/x/ledger.sqlite",
        ),
        (sqlite3.OperationalError("database or disk is full"), "database or disk is full"),
        (StateError("the state cannot be written: disk I/O error"), "cannot be written"),
        (LedgerError("the ledger's last entry does not verify"), "does not verify"),
    ],
)
def test_a_run_that_fails_on_its_files_is_one_line_and_marked_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, cause: str
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(
        "secagg.apps.simulation.runner.run_simulation", _job_that_fails(error, calls)
    )
    run_dir = tmp_path / "run"
    line = _one_error_line(_simulate(run_dir), 1)
    assert calls == [run_dir]
    assert line.startswith("Error: the simulation failed: ") and cause in line, line
    assert f"{run_dir} is incomplete, marked failed" in line
    marker = (run_dir / "FAILED").read_text()
    assert "failed" in marker and cause in marker and "no result" in marker
    # the ledger and the state stay for an auditor; nothing presents a result
    assert sorted(p.name for p in run_dir.iterdir()) == ["FAILED", "ledger.sqlite", "server.sqlite"]


def test_a_full_disk_as_the_results_are_written_leaves_no_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The federation finished; the disk filled as its folder was written (summary.json
    written, report.md not): the folder is marked failed and the summary is gone."""
    run_dir = tmp_path / "run"
    result_object = object()

    def job(config: Any, out: Path, *args: Any, **kwargs: Any) -> Any:
        out.mkdir(parents=True)
        (out / "ledger.sqlite").write_bytes(b"ledger")
        return result_object

    def write(result: Any, out: Path) -> list[Path]:
        assert result is result_object
        (out / "summary.json").write_text("{}")
        (out / "rounds.json").write_text("[]")
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "report.md"))

    monkeypatch.setattr("secagg.apps.simulation.runner.run_simulation", job)
    monkeypatch.setattr("secagg.apps.simulation.report.write_run_folder", write)
    line = _one_error_line(_simulate(run_dir), 1)
    assert f"No space left on device: {run_dir / 'report.md'}" in line
    assert "marked failed" in line
    assert not (run_dir / "summary.json").exists()
    assert (run_dir / "FAILED").is_file() and (run_dir / "ledger.sqlite").is_file()


def test_a_usage_error_found_mid_run_still_marks_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data error found once the run had written its state (exit 2, its own line, as
    before) left that state with no word that the run never finished."""
    calls: list[Path] = []
    failing = _job_that_fails(ConfigurationError("data.path has no rows"), calls)
    monkeypatch.setattr("secagg.apps.simulation.runner.run_simulation", failing)
    run_dir = tmp_path / "run"
    line = _one_error_line(_simulate(run_dir), 2)
    assert "has no rows" in line
    assert "data.path has no rows" in (run_dir / "FAILED").read_text()


def test_a_read_only_out_folder_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An existing, empty ``--out`` this process cannot write in: one line naming
    ``--out`` before anything runs. Before, it passed, the run trained, and its first file
    failed with a traceback. (As root chmod changes nothing: the folder's refusal is
    what the kernel says for a read-only one, EACCES, on the probe's mkdir.) Exit 1: no
    permission is the machine's refusal, by the project's one rule (``os_error_status``),
    not a mistake in the flag (review, 2026-12-07)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    real_mkdir = Path.mkdir

    def read_only(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.parent == run_dir:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_mkdir(self, *args, **kwargs)

    calls: list[Path] = []
    denied = PermissionError(errno.EACCES, "Permission denied", str(run_dir / "server.sqlite"))
    monkeypatch.setattr(
        "secagg.apps.simulation.runner.run_simulation", _job_that_fails(denied, calls)
    )
    monkeypatch.setattr(Path, "mkdir", read_only)
    line = _one_error_line(_simulate(run_dir), 1)
    assert f"--out: {run_dir}: cannot write in it: Permission denied" in line, line
    assert calls == []
    assert list(run_dir.iterdir()) == []


def test_a_run_folder_removed_mid_run_writes_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run keeps its ledger and state open, so it finished; writing its results made
    the folder again, a summary and a report naming a ledger no longer there."""
    run_dir = tmp_path / "run"
    written: list[Path] = []

    def job(config: Any, out: Path, *args: Any, **kwargs: Any) -> Any:
        out.mkdir(parents=True)
        (out / "ledger.sqlite").write_bytes(b"ledger")
        shutil.rmtree(out)  # an operator's clean-up, mid-run
        return object()

    def write(result: Any, out: Path) -> list[Path]:
        written.append(out)
        return []

    monkeypatch.setattr("secagg.apps.simulation.runner.run_simulation", job)
    monkeypatch.setattr("secagg.apps.simulation.report.write_run_folder", write)
    line = _one_error_line(_simulate(run_dir), 1)
    assert "the run folder was removed while the simulation ran" in line
    assert str(run_dir) in line and "no run folder was left" in line
    assert written == [] and not run_dir.exists()


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OSError(errno.EMFILE, "Too many open files"), 1),
        (ConfigurationError("data.path has no rows"), 2),
    ],
)
def test_an_empty_out_folder_stays_empty_when_the_run_wrote_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, status: int
) -> None:
    """A typed, empty ``--out`` that a run failed in before writing anything: no marker
    in it, so the same command, fixed, may use it again (a marker would make it "not
    empty: choose a new folder")."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setattr("secagg.apps.simulation.runner.run_simulation", _raise_at_once(error))
    line = _one_error_line(_simulate(run_dir), status)
    assert list(run_dir.iterdir()) == []
    if status == 1:
        assert line == (
            f"Error: the simulation failed: Too many open files; nothing was written into {run_dir}"
        )


def _raise_at_once(error: BaseException) -> Callable[..., Any]:
    def job(*args: Any, **kwargs: Any) -> Any:
        raise error

    return job


@pytest.mark.parametrize("under", ["", "sub"])
def test_out_naming_a_file_or_a_folder_under_one_is_a_usage_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, under: str
) -> None:
    """``--out`` at an existing file, or at a folder under one: one line naming
    ``--out`` (exit 2) before anything runs (already so before; kept so)."""
    blocker = tmp_path / "taken"
    blocker.write_text("someone's file")
    calls: list[Path] = []
    failing = _job_that_fails(OSError(errno.ENOTDIR, "Not a directory"), calls)
    monkeypatch.setattr("secagg.apps.simulation.runner.run_simulation", failing)
    line = _one_error_line(_simulate(blocker / under if under else blocker), 2)
    assert "--out" in line and calls == []
    assert blocker.read_text() == "someone's file"
