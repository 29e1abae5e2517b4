"""CLI audit 2026-12-05: each mistake is one line naming the flag typed, exit 2.

Sizes past the machine's memory, plans no round can run, and library keys
(``num_clients``, ``corrupt_fraction``, ``branch.max_clip`` ...) in place of the flags
were tracebacks or named what the user never typed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from secagg.apps import cli_types, devca
from secagg.apps.cli import main
from secagg.errors import SecAggError

GIB = 2**30


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _usage_line(result: Result) -> str:
    """The one error line of a usage error (exit 2), checked to carry no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError | MemoryError)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line: no click "Usage:" / "Try ..." preamble
    return lines[0]


@pytest.fixture
def machine_of_64_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory bound as on a 64 GiB machine, whatever the test host has."""
    monkeypatch.setattr(cli_types, "memory_limit", lambda: 64 * GIB)


# --- 3: sizes past memory, plans no round can run -----------------------------------


@pytest.mark.usefixtures("machine_of_64_gib")
def test_a_round_past_memory_names_clients_and_dim() -> None:
    """``round --clients 1000000`` (in range, default --dim 100000) was a MemoryError."""
    error = _usage_line(_run("round", "--clients", "1000000"))
    assert "'--clients' / '--dim'" in error
    assert "745.1 GiB" in error and "64.0 GiB" in error


@pytest.mark.usefixtures("machine_of_64_gib")
def test_a_masking_bench_past_memory_names_n_and_d() -> None:
    """``bench masking --n 100000 --d 100000000`` was a 36 TiB ArrayMemoryError."""
    error = _usage_line(_run("bench", "masking", "--n", "100000", "--d", "100000000"))
    assert "'--n' / '--d'" in error and "64.0 GiB" in error


def test_a_masking_bench_no_round_can_run_names_dropout() -> None:
    """``bench masking --n 3 --dropout 0.99 --graph harary`` was a ConfigurationError
    traceback from the parameter search, in the middle of the run."""
    error = _usage_line(
        _run("bench", "masking", "--n", "3", "--d", "10", "--dropout", "0.99", "--graph", "harary")
    )
    assert "Invalid value for '--dropout'" in error
    assert "--dropout <= 0.9" in error and "dropout_fraction" not in error


def test_no_memory_bound_checks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_types, "memory_limit", lambda: None)
    cli_types.check_memory(2**80, "anything", "'--x'")  # no bound known: no refusal


def test_the_memory_limit_is_known_here() -> None:
    limit = cli_types.memory_limit()
    assert limit is not None and limit > 0


# --- 4: library keys named as the flags typed ----------------------------------------


@pytest.mark.parametrize(
    ("command", "dropout"), [("round", "--tolerated-dropout"), ("params", "--dropout")]
)
def test_fractions_past_the_bound_name_the_flags(command: str, dropout: str) -> None:
    error = _usage_line(_run(command, "--clients", "100", dropout, "0.9", "--corrupt", "0.5"))
    assert f"Invalid value for '--corrupt' / '{dropout}'" in error
    assert f"--corrupt + {dropout} <= 0.9" in error
    assert "corrupt_fraction" not in error and "dropout_fraction" not in error


@pytest.mark.parametrize("command", ["round", "params"])
def test_too_many_clients_names_clients(command: str) -> None:
    error = _usage_line(_run(command, "--clients", "2000000"))
    assert "Invalid value for '--clients': --clients must be at most 1000000" in error
    assert "num_clients" not in error


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--branches", "1"), "Invalid value for '--branches': 1 is not in the range 2<=x<=1000"),
        (("--rounds", "20000"), "Invalid value for '--rounds'"),
        (("--backend", "nosuch"), "Invalid value for '--backend': 'nosuch' is not one of"),
        (("--backend", "ckks"), "ckks needs a key holder party, which the canary audit does"),
    ],
)
def test_the_empirical_audit_names_its_flags(args: tuple[str, ...], words: str) -> None:
    """``--branches 1`` said ``simulation.branches must lie in [2, 1000]``, ``--backend
    nosuch`` ``backend.name must be one of``, ``--backend ckks`` (which its help
    suggested) ``backend.key_holder names the key holder of a backend that needs one``."""
    error = _usage_line(CliRunner().invoke(main, ["audit", "empirical", *args]))
    assert words in error
    assert "simulation." not in error and "backend." not in error


def test_the_empirical_audit_backends_are_those_without_a_helper() -> None:
    from secagg.aggregation.registry import BACKENDS, needs_helper
    from secagg.apps.audit.cli import _AUDITED_BACKENDS

    assert _AUDITED_BACKENDS == tuple(b for b in BACKENDS if not needs_helper(b))


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("--max-clip", "-1"), "--max-clip"),
        (("--max-clip", "0"), "--max-clip"),
        (("--min-noise-multiplier", "-2"), "--min-noise-multiplier"),
        (("--expected-clients", "0"), "--expected-clients"),
        (("--min-threshold", "0"), "--min-threshold"),
        (("--key-holder-fingerprint", "abc"), "--key-holder-fingerprint"),
    ],
)
def test_a_branch_policy_option_is_named_as_typed(args: tuple[str, ...], flag: str) -> None:
    """``client --max-clip -1`` said ``branch.max_clip must be positive and finite``."""
    error = _usage_line(
        _run("client", "--server", "localhost:1", "--name", "b1", "--dimension", "3", *args)
    )
    assert f"Invalid value for '{flag}'" in error and "branch." not in error


# --- 5: files: --certs, --pubkey, --out ---------------------------------------------


def _client(*args: str) -> Result:
    return _run("client", "--server", "localhost:1", "--name", "b1", "--dimension", "3", *args)


def test_a_file_given_as_certs_names_certs(tmp_path: Path) -> None:
    """``client --certs base.toml`` exited 1 with ``[Errno 20] Not a directory``."""
    base = tmp_path / "base.toml"
    base.write_text("x = 1\n")
    error = _usage_line(_client("--certs", str(base)))
    assert "Invalid value for '--certs'" in error and "is a file" in error
    assert "Errno" not in error


def test_a_certificate_folder_with_a_folder_for_a_file_names_certs(tmp_path: Path) -> None:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "b1")
    (ca / "clients" / "b1.pem").unlink()
    (ca / "clients" / "b1.pem").mkdir()
    error = _usage_line(_client("--certs", str(ca)))
    assert "Invalid value for '--certs'" in error and "b1.pem: that is a folder" in error
    missing = _usage_line(_client("--certs", str(tmp_path / "nowhere")))
    assert "Invalid value for '--certs'" in missing and "nowhere does not exist" in missing


def _ledger(tmp_path: Path) -> tuple[Path, Path]:
    from secagg.ledger import Ledger, LedgerKey, export_public_key

    key = LedgerKey.generate()
    path = tmp_path / "l.sqlite"
    Ledger(path, key).close()
    return path, export_public_key(key.public_key, tmp_path / "l.pub")


@pytest.mark.parametrize("command", ["verify", "report"])
def test_a_missing_or_garbled_pubkey_names_pubkey(tmp_path: Path, command: str) -> None:
    """A missing --pubkey said ``cannot read the public key K: [Errno 2] ...``."""
    ledger, _ = _ledger(tmp_path)
    out = ("--out", str(tmp_path / "r")) if command == "report" else ()
    audit = ["audit", command, str(ledger), *out, "--pubkey"]
    error = _usage_line(_run(*audit, str(tmp_path / "nope.pem")))
    assert "Invalid value for '--pubkey'" in error and "no public key file at" in error
    assert "Errno" not in error
    garbled = tmp_path / "garbled.pem"
    garbled.write_text("not a key\n")
    error = _usage_line(_run(*audit, str(garbled)))
    assert "Invalid value for '--pubkey'" in error and "not a PEM public key" in error


def test_an_out_folder_that_cannot_be_written_names_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``audit report --out`` not writable ended in ``[Errno 1] Operation not permitted``
    after the report was built; now checked first, with a file written (root passes
    the mode bits, so the write is what is refused here)."""
    import tempfile

    ledger, pem = _ledger(tmp_path)
    base = tmp_path / "base.toml"
    base.write_text("x = 1\n")
    report = ["audit", "report", str(ledger), "--pubkey", str(pem), "--out"]
    error = _usage_line(_run(*report, str(base / "sub")))
    assert "Invalid value for '--out'" in error and "is a file, not a folder" in error

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    # the machine's refusal, exit 1 naming --out (it was a usage error, exit 2): the one
    # rule of tests/apps/test_path_failure_rule.py
    result = _run(*report, str(tmp_path / "new" / "deeper"))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    error = result.stderr.strip()
    assert error == f"Error: --out: cannot write in {tmp_path}: Operation not permitted"
    assert not (tmp_path / "new").exists()  # nothing made before the check


# --- 7: help text ---------------------------------------------------------------------


def _helps(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """Every command's --help, by its command line."""
    for name, command in group.commands.items():
        line = (*path, name)
        yield " ".join(line), _run(*line, "--help").output
        if isinstance(command, click.Group):
            yield from _helps(command, line)


def test_no_help_shows_a_missing_bound() -> None:
    """Every FiniteFloat() option without bounds ended its help in ``[x<=None]``."""
    shown = {line: text for line, text in _helps(main) if "None]" in text or "None;" in text}
    assert shown == {}
    assert cli_types.FINITE._describe_range() == "" and cli_types.FINITE.name == "float"
    assert cli_types.FiniteFloat(0.0, min_open=True)._describe_range() == "x>0.0"
