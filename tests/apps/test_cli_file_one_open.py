"""Every file the CLI reads from a user's path: one open, never a hang, one line naming
the flag.

Why: ``read_toml`` checked the path with ``stat`` and then opened it, so a file swapped
for a named pipe in between blocked ``open()`` forever, and a policy file that grew
after its size check was read whole. ``audit verify --pubkey``, the ledger and
``--prior-ledger``, ``client --state``, ``keyholder --key``, the files of ``--certs`` and
of ``certs --dir`` had no check at all: a named pipe given there blocked the command
forever (hostile CLI review, 2026-12-06). Each wait below is bounded (a blocked open
fails the test instead of hanging it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from _fifo import SwapAfterCheck, in_thread
from click.testing import CliRunner, Result

import secagg.durable as durable_module
from secagg.apps.cli import main
from secagg.apps.commands.parties import MAX_POLICY_BYTES, _read_table
from secagg.errors import ConfigurationError
from secagg.runtime.config import read_toml

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def test_a_config_swapped_for_a_named_pipe_after_the_check_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "federation.toml"
    path.write_text('[federation]\nname = "pilot"\n')
    fifo = tmp_path / "pipe"

    def swap() -> None:
        os.mkfifo(fifo)
        os.replace(fifo, path)

    monkeypatch.setattr(durable_module, "os", SwapAfterCheck(swap))
    outcome = in_thread(lambda: read_toml(path), path)
    # the file that was checked is the file read: one open, its descriptor read
    assert outcome == {"federation": {"name": "pilot"}}, outcome


def test_a_policy_grown_past_its_bound_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("[branch]\nmax_clip = 1.0\n")

    def grow() -> None:
        with open(path, "a") as fh:
            fh.write("# a comment line\n" * (MAX_POLICY_BYTES // 17 + 1024))

    monkeypatch.setattr(durable_module, "os", SwapAfterCheck(grow))
    outcome = in_thread(lambda: _read_table(str(path), "branch", ["max_clip"]), path)
    assert isinstance(outcome, ConfigurationError), outcome
    assert f"{path} is larger than 1024 KiB" in str(outcome)


def test_a_file_is_read_at_most_to_its_bound_plus_one(tmp_path: Path) -> None:
    from secagg.runtime.config import read_regular_file

    path = tmp_path / "big"
    path.write_bytes(b"x" * 4096)
    assert read_regular_file(path, 4096, "a test file") == b"x" * 4096
    with pytest.raises(ConfigurationError, match=r"larger than 4095 bytes: too large for a test"):
        read_regular_file(path, 4095, "a test file")


@pytest.fixture(scope="module")
def ca_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A development CA with branch b1's certificate, made once for the module."""
    folder = tmp_path_factory.mktemp("ca") / "certs"
    for args in (
        ["certs", "init", "--dir", str(folder)],
        ["certs", "issue", "b1", "--dir", str(folder)],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    return folder


_DIAL = ["--server", "127.0.0.1:9", "--connect-timeout", "1", "--give-up-after", "1"]


#: a case: the arguments ({fifo}, {ledger}, {certs} and {out} filled in), the file made
#: a named pipe ("given": a new path; else a file of the CA folder's copy) and the line
CASES: dict[str, tuple[list[str], str, str]] = {
    "verify --pubkey": (
        ["audit", "verify", "{ledger}", "--pubkey", "{fifo}"],
        "given",
        "Invalid value for '--pubkey': {fifo} is a named pipe, not a public key file",
    ),
    "report --pubkey": (
        ["audit", "report", "{ledger}", "--out", "{out}", "--pubkey", "{fifo}"],
        "given",
        "Invalid value for '--pubkey': {fifo} is a named pipe, not a public key file",
    ),
    "verify LEDGER": (
        ["audit", "verify", "{fifo}"],
        "given",
        "Invalid value for 'LEDGER': {fifo} is a named pipe, not a ledger",
    ),
    "report LEDGER": (
        ["audit", "report", "{fifo}", "--out", "{out}"],
        "given",
        "Invalid value for 'LEDGER': {fifo} is a named pipe, not a ledger",
    ),
    "verify --prior-ledger": (
        ["audit", "verify", "{ledger}", "--prior-ledger", "{fifo}"],
        "given",
        "Invalid value for '--prior-ledger': {fifo} is a named pipe, not a ledger",
    ),
    "report --prior-ledger": (
        ["audit", "report", "{ledger}", "--out", "{out}", "--prior-ledger", "{fifo}"],
        "given",
        "Invalid value for '--prior-ledger': {fifo} is a named pipe, not a ledger",
    ),
    "verify --config": (
        ["audit", "verify", "{ledger}", "--config", "{fifo}"],
        "given",
        "Invalid value for '--config': {fifo} is a named pipe, not a configuration file",
    ),
    "client --state": (
        ["client", "--name", "b1", "--dimension", "4", "--certs", "{certs}", *_DIAL,
         "--state", "{fifo}"],
        "given",
        "Invalid value for '--state': {fifo} is a named pipe, not a branch state file",
    ),
    "keyholder --key": (
        ["keyholder", "--name", "b1", "--certs", "{certs}", *_DIAL, "--key", "{fifo}"],
        "given",
        "Invalid value for '--key': {fifo} is a named pipe, not a key file",
    ),
    "client --certs ca.pem": (
        ["client", "--name", "b1", "--dimension", "4", "--certs", "{certs}", *_DIAL],
        "ca.pem",
        "Invalid value for '--certs': {fifo} is a named pipe, not a certificate or key file",
    ),
    "client --certs clients/b1.key": (
        ["client", "--name", "b1", "--dimension", "4", "--certs", "{certs}", *_DIAL],
        "clients/b1.key",
        "Invalid value for '--certs': {fifo} is a named pipe, not a certificate or key file",
    ),
    "keyholder --certs ca.pem": (
        ["keyholder", "--name", "b1", "--certs", "{certs}", *_DIAL],
        "ca.pem",
        "Invalid value for '--certs': {fifo} is a named pipe, not a certificate or key file",
    ),
    "certs issue --dir ca.key": (
        ["certs", "issue", "b2", "--dir", "{certs}"],
        "ca.key",
        "Invalid value for '--dir': {fifo} is a named pipe, not a CA folder's file",
    ),
    "certs issue --dir revoked.json": (
        ["certs", "issue", "b2", "--dir", "{certs}"],
        "revoked.json",
        "Invalid value for '--dir': {fifo} is a named pipe, not a CA folder's file",
    ),
    "certs revoke --dir ca.pem": (
        ["certs", "revoke", "b1", "--dir", "{certs}"],
        "ca.pem",
        "Invalid value for '--dir': {fifo} is a named pipe, not a CA folder's file",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_named_pipe_is_one_line_naming_the_flag(
    tmp_path: Path, ca_folder: Path, case: str
) -> None:
    args, where, words = CASES[case]
    certs = tmp_path / "certs"
    shutil.copytree(ca_folder, certs)
    ledger = tmp_path / "ledger.sqlite"
    ledger.write_bytes(b"")  # a regular file: these refusals come before any read of it
    fifo = tmp_path / "given.pipe" if where == "given" else certs / where
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    fill = {"fifo": str(fifo), "ledger": str(ledger), "certs": str(certs)}
    fill["out"] = str(tmp_path / "report")
    argv = [arg.format(**fill) for arg in args]
    result: Result = in_thread(lambda: CliRunner().invoke(main, argv), fifo)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"Error: {words.format(**fill)}"], lines


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "bank_fraud" / "federation.toml"


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("certs/server.pem", "certificates"),
        ("certs/revoked.json", "certificates"),
        ("certs/ca.pem", "certificates"),
        ("state/fraud.sqlite", "state"),
        ("state/fraud.sqlite.ledger", "state"),
    ],
)
def test_a_named_pipe_the_server_config_names_is_one_line(
    tmp_path: Path, ca_folder: Path, where: str, key: str
) -> None:
    """The server's own files, named by its config: a named pipe at ``server.pem`` or
    ``revoked.json`` blocked its start forever; at the state it failed as ``disk I/O
    error``, exit 1."""
    shutil.copytree(ca_folder, tmp_path / "certs")
    (tmp_path / "state").mkdir()
    text = EXAMPLE.read_text()
    text = text.replace('state = "state/fraud.sqlite"', f'state = "{tmp_path}/state/fraud.sqlite"')
    text = text.replace('certificates = "certs"', f'certificates = "{tmp_path}/certs"')
    config = tmp_path / "federation.toml"
    config.write_text(text)
    fifo = tmp_path / where
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    argv = ["server", "--config", str(config), "--init", "--wait", "0"]
    result: Result = in_thread(lambda: CliRunner().invoke(main, argv), fifo)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        f"secagg server: --config {config}: [server] {key} = "
    ), lines
    assert lines[0].endswith(
        f"{fifo} is a named pipe, not a "
        + ("certificate or key file" if key == "certificates" else "state, ledger or key file")
    ), lines


@pytest.mark.parametrize("key", ["state", "key"])
def test_a_named_pipe_the_key_holders_policy_names_is_one_line(
    tmp_path: Path, ca_folder: Path, key: str
) -> None:
    """``keyholder --policy`` naming ``state`` or ``key`` at a named pipe blocked the key
    holder forever at its open; relative paths are the policy folder's, as the runtime
    reads them."""
    config = tmp_path / "ckks.toml"
    config.write_text(
        '[federation]\nname = "kh"\nclients = ["b2", "b3", "b4"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nkey_holder = "b1"\nvalue_bound = 1.0\n'
        '[dp]\nmechanism = "central"\nclip = 1.0\nnoise_multiplier = 1.0\n'
        f'[server]\nstate = "{tmp_path / "s.sqlite"}"\ncertificates = "{ca_folder}"\n'
    )
    fifo = tmp_path / f"{key}.pipe"
    os.mkfifo(fifo)
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[key_holder]\n{key} = "{fifo.name}"\nmax_decryptions = 5\n')
    argv = ["keyholder", "--name", "b1", "--certs", str(ca_folder), *_DIAL]
    argv += ["--config", str(config), "--policy", str(policy)]
    result: Result = in_thread(lambda: CliRunner().invoke(main, argv), fifo)
    assert result.exit_code == 2, (result.output, result.exception)
    what = "a key file" if key == "key" else "a key holder state file"
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        f"secagg keyholder: b1: [key_holder] {key} (--policy {policy}): {fifo} is a named pipe, "
        f"not {what}"
    ], lines
