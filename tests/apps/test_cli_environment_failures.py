"""A failure of the machine or its files under a ``secagg`` command (a full disk, a
database error, a state that fails to read) is one line naming the cause and the path
when known, exit status 1, never a traceback; a mistake in a path stays exit 2.

Why: each command names the failures it expects, and the others went through click as
Python tracebacks: ``bench papers`` on a full disk, ``server`` when its state failed as
the rounds were reported, ``client`` and ``keyholder`` on a database error, ``audit
empirical`` when the temporary folder of the federation it audits filled (and under
``--json`` no object at all); ``certs init`` and ``keyholder-init`` said a full disk as
a mistake in ``--dir`` or ``--key`` (exit 2) (environment-failure review, 2026-12-07).
Every failure is put in by monkeypatching the call that meets it: in-process, no run.
``secagg simulate``'s run folder is tests/apps/simulation/test_simulate_failed_run.py's."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.errors import SecAggError

FULL = "No space left on device"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line(result: Result, status: int) -> str:
    """The one line a command printed on stderr, checked: its status, no traceback."""
    assert result.exit_code == status, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _raise(error: BaseException) -> Any:
    def failing(*args: object, **kwargs: object) -> Any:
        raise error

    return failing


def _federation(directory: Path) -> Path:
    """A federation config whose state is ``directory/state.sqlite`` (never opened here:
    ``serve`` is replaced)."""
    names = [f"branch-{i}" for i in range(3)]
    path = directory / "federation.toml"
    path.write_text(
        f'[federation]\nname = "env"\nclients = {json.dumps(names)}\ndimension = 4\n'
        "rounds = 1\n"
        '[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{directory / "state.sqlite"}"\nbind = "127.0.0.1:1"\n'
        f'certificates = "{directory / "certs"}"\n'
    )
    return path


def test_bench_papers_on_a_full_disk_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = tmp_path / "papers" / "papers.json"
    failure = OSError(errno.ENOSPC, FULL, str(written))
    monkeypatch.setattr("secagg.apps.bench.papers.run_and_write", _raise(failure))
    line = _one_line(_run("bench", "papers", "--smoke", "--out", str(tmp_path / "papers")), 1)
    assert line == f"Error: {FULL}: {written}"


def test_server_whose_state_fails_as_its_rounds_are_reported_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ended; reading the rounds complete from the state failed (a disk I/O
    error): the same line as such a failure during the run, and the state closed."""
    closed: list[str] = []

    class Store:
        def close(self) -> None:
            closed.append("store")

    class Server:
        ledger = None
        store = Store()

        def completed_rounds(self) -> int:
            raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr("secagg.runtime.launch.serve", lambda *a, **k: (Server(), []))
    config = _federation(tmp_path)
    line = _one_line(_run("server", "--config", str(config), "--quiet"), 1)
    state = tmp_path / "state.sqlite"
    assert line == f"secagg server: the state {state} or its ledger: disk I/O error"
    assert closed == ["store"]


@pytest.fixture
def branch_certs(tmp_path: Path) -> Path:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "branch-a")
    return ca


def test_client_on_a_database_error_is_one_line(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database error under the branch (its hook's own store, say) was a traceback:
    the client's handler took secagg errors and OSErrors only."""
    failure = sqlite3.OperationalError("database is locked")
    monkeypatch.setattr("secagg.runtime.launch.run_branch", _raise(failure))
    result = _run(
        "client", "--server", "127.0.0.1:1", "--name", "branch-a", "--certs",
        str(branch_certs), "--dimension", "4", "--quiet",
    )  # fmt: skip
    # the party's own line, as the server says its own (tests/apps/test_client_state_file_status.py)
    assert _one_line(result, 1) == "secagg client: branch-a: database error: database is locked"


def test_keyholder_on_a_database_error_is_one_line(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = sqlite3.DatabaseError("file is not a database")
    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", _raise(failure))
    result = _run(
        "keyholder", "--server", "127.0.0.1:1", "--name", "branch-a", "--certs",
        str(branch_certs), "--quiet",
    )  # fmt: skip
    assert (
        _one_line(result, 1) == "secagg keyholder: branch-a: database error: file is not a database"
    )


@pytest.mark.parametrize(
    ("error", "status", "said"),
    [
        # the machine's: the same --dir would do once there is room
        (OSError(errno.ENOSPC, FULL, "CA/ca.key"), 1, f"Error: --dir: {FULL}: CA/ca.key"),
        (OSError(errno.EIO, "Input/output error", "CA"), 1, "Input/output error: CA"),
        # no permission is the machine's too (a chmod fixes it): the one rule of
        # tests/apps/test_path_failure_rule.py (it was exit 2)
        (PermissionError(errno.EACCES, "Permission denied", "CA"), 1, "Error: --dir: Permission"),
        # the path's: a mistake in --dir, as before
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "CA"), 2, "Invalid value for --dir"),
    ],
)
def test_certs_init_tells_a_full_disk_from_a_wrong_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: OSError,
    status: int,
    said: str,
) -> None:
    monkeypatch.setattr("secagg.apps.devca.init_ca", _raise(error))
    line = _one_line(_run("certs", "init", "--dir", str(tmp_path / "ca")), status)
    assert said in line, line


def test_certs_issue_on_a_full_disk_is_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca"
    devca.init_ca(ca)
    key = str(ca / "clients" / "b1.key")
    monkeypatch.setattr("secagg.apps.devca.issue_client", _raise(OSError(errno.ENOSPC, FULL, key)))
    line = _one_line(_run("certs", "issue", "b1", "--dir", str(ca)), 1)
    assert line == f"Error: --dir: {FULL}: {key}"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OSError(errno.ENOSPC, FULL, "keys/kh.key"), 1),
        # the machine's too (it was 2): tests/apps/test_path_failure_rule.py's one rule
        (PermissionError(errno.EACCES, "Permission denied", "keys/kh.key"), 1),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "keys/kh.key"), 2),
    ],
)
def test_keyholder_init_tells_a_full_disk_from_a_wrong_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError, status: int
) -> None:
    monkeypatch.setattr("secagg.runtime.launch.make_key_holder_key", _raise(error))
    key = tmp_path / "kh.key"
    config = _federation(tmp_path)
    line = _one_line(_run("keyholder-init", "--config", str(config), "--key", str(key)), status)
    assert line == f"secagg keyholder-init: --key {key}: {error.strerror}: keys/kh.key"


@pytest.mark.parametrize("as_json", [False, True])
def test_audit_empirical_on_a_full_temporary_folder_is_a_failed_run(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    """The audited federation's state is a temporary file: a full temporary folder was
    a traceback, and under --json no object. Now it is the failed run's FAILED line (or
    object), exit 1, as an incomplete audited federation is."""
    failure = sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr("secagg.apps.audit.empirical.run_canary_audit", _raise(failure))
    args = ["audit", "empirical", "--rounds", "2", "--canaries", "4", "--branches", "3"]
    result = _run(*args, *(["--json"] if as_json else []))
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    said = "the audited federation failed: database error: database or disk is full"
    if as_json:
        payload = json.loads(result.stdout)
        assert said in payload["error"] and payload["exit_status"] == 1
    else:
        assert _one_line(result, 1) == f"FAILED: {said}: no release, so no bound"


def test_a_keyboard_interrupt_is_never_taken_for_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The top-level handler takes the machine's failures only: Ctrl-C stays click's
    abort (no ``Error:`` line claiming a failure)."""
    monkeypatch.setattr("secagg.apps.bench.papers.run_and_write", _raise(KeyboardInterrupt()))
    result = _run("bench", "papers", "--smoke", "--out", str(tmp_path / "papers"))
    assert result.exit_code == 1 and "Aborted!" in result.stderr
    assert "Error:" not in result.stderr


def test_a_secagg_error_no_command_said_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any command (here ``round``): a secagg error its own handler did not name."""
    monkeypatch.setattr(
        "secagg.apps.commands.rounds.run_round", _raise(SecAggError("the round broke"))
    )
    result = _run("round", "--clients", "5", "--dim", "10", "--dropout", "0")
    assert _one_line(result, 1) == "Error: the round broke"


def test_bench_papers_that_cannot_write_its_report_leaves_no_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """papers.md cannot be written (here a folder is in its place; a full disk fails
    the same write): this run's papers.json was left, beside no report (or an earlier
    run's), and read as a result. Now neither file is left, and the line names the path.
    The grid and its plots are replaced: the write is what is checked, not the run."""
    from secagg.apps.bench import papers

    out = tmp_path / "papers"
    (out / "papers.md").mkdir(parents=True)  # in the report's place
    result = {"seconds": 0.1, "comparison": {"rows": []}}
    monkeypatch.setattr(papers, "run_papers", lambda *a, **k: dict(result))
    monkeypatch.setattr(papers, "write_plots", lambda *a, **k: [])
    monkeypatch.setattr(papers, "markdown", lambda *a, **k: "# report\n")
    line = _one_line(_run("bench", "papers", "--smoke", "--out", str(out)), 1)
    assert line == f"Error: Is a directory: {out / 'papers.md'}"
    assert not (out / "papers.json").exists()
