"""One rule for an OSError on a path the user named, across the commands: what the path
NAMES is the user's mistake (a folder on it missing or a file, too long, a loop of
links), exit 2 naming the flag; what the MACHINE refuses (no permission, a read-only
filesystem, a full disk, an I/O error, a held lock), exit 1 with one line naming the
flag, the path and the cause (:func:`secagg.apps.commands.common.os_error_status`).

Why: the commands disagreed (path-failure review, 2026-12-07): ``client --state`` said no
permission with exit 1 while ``certs --dir``, ``keyholder-init --key``, ``bench --out``
and ``audit report --out`` said it with exit 2; ``audit verify --pubkey`` named no flag;
the server's state in a missing folder was exit 1 where the client's is 2; and a key
holder's record upgrade on a full disk was exit 2. Every failure is injected by
monkeypatching the call that meets it, in-process (``client --state`` is
tests/apps/test_client_state_file_status.py's)."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from secagg.aggregation import keyholder_policy
from secagg.apps import devca
from secagg.apps.cli import main
from secagg.apps.commands import bench as bench_commands
from secagg.errors import ConfigurationError, SecAggError

#: the machine's refusals: the same path works once the machine lets it
MACHINE = [errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EIO]
#: what the path names: the user's mistake
MISTAKE = [errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG]


def _one_line(result: Result, status: int) -> str:
    """The one line a command printed on stderr, checked: its status, no traceback."""
    assert result.exit_code == status, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _failing(code: int, path: Path) -> Callable[..., Any]:
    def fail(*args: object, **kwargs: object) -> Any:
        raise OSError(code, os.strerror(code), str(path))

    return fail


@pytest.fixture(scope="module")
def ca_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA with branch ``b1``: ``issue`` and ``revoke`` read it before they write."""
    ca = tmp_path_factory.mktemp("ca") / "ca"
    devca.init_ca(ca)
    devca.issue_client(ca, "b1")
    return ca


def _federation(directory: Path, state: Path, certificates: Path | None = None) -> Path:
    """A federation config whose ``[server] state`` is ``state`` (its certificates in
    ``certificates``, by default a folder never read)."""
    names = [f"branch-{i}" for i in range(3)]
    path = directory / "federation.toml"
    path.write_text(
        f'[federation]\nname = "env"\nclients = {json.dumps(names)}\ndimension = 4\n'
        'rounds = 1\n[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{state}"\nbind = "127.0.0.1:1"\n'
        f'certificates = "{certificates or directory / "certs"}"\n'
    )
    return path


def _bench_out(tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path) -> tuple[list[str], Path]:
    folder = tmp / "papers"
    real = os.mkdir

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.fspath(path) == str(folder):
            _failing(code, folder)()
        real(path, *args, **kwargs)

    mp.setattr(bench_commands.os, "mkdir", mkdir)
    return ["bench", "papers", "--smoke", "--out", str(folder)], folder


def _certs_init(tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path) -> tuple[list[str], Path]:
    where = tmp / "ca" / "ca.key"
    mp.setattr(devca, "init_ca", _failing(code, where))
    return ["certs", "init", "--dir", str(tmp / "ca")], where


def _certs_issue(tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path) -> tuple[list[str], Path]:
    where = ca / "clients" / "b2.key"
    mp.setattr(devca, "issue_client", _failing(code, where))
    return ["certs", "issue", "b2", "--dir", str(ca)], where


def _certs_revoke(tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path) -> tuple[list[str], Path]:
    where = ca / "revoked.json"
    mp.setattr(devca, "revoke", _failing(code, where))
    return ["certs", "revoke", "b1", "--dir", str(ca)], where


def _keyholder_init(
    tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path
) -> tuple[list[str], Path]:
    key = tmp / "kh.key"
    mp.setattr("secagg.runtime.launch.make_key_holder_key", _failing(code, key))
    config = _federation(tmp, tmp / "state.sqlite")
    return ["keyholder-init", "--config", str(config), "--key", str(key)], key


def _report_out(tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path) -> tuple[list[str], Path]:
    ledger = tmp / "ledger.sqlite"
    ledger.write_bytes(b"")
    mp.setattr(tempfile, "NamedTemporaryFile", _failing(code, tmp / ".secagg-probe-x"))
    return ["audit", "report", "--out", str(tmp), str(ledger)], tmp


def _verify_pubkey(
    tmp: Path, code: int, mp: pytest.MonkeyPatch, ca: Path
) -> tuple[list[str], Path]:
    ledger, key = tmp / "ledger.sqlite", tmp / "ledger.pub.pem"
    ledger.write_bytes(b"")
    key.write_bytes(b"")
    mp.setattr("secagg.runtime.config.read_regular_file", _failing(code, key))
    return ["audit", "verify", "--pubkey", str(key), str(ledger)], key


#: (command, its flag, the injection, the machine's line for an OSError's strerror and path)
COMMANDS: dict[str, tuple[str, Callable[..., tuple[list[str], Path]], Callable[..., str]]] = {
    "bench --out": ("--out", _bench_out, lambda why, p, tmp: f"Error: --out: {why}: {p}"),
    "certs init --dir": ("--dir", _certs_init, lambda why, p, tmp: f"Error: --dir: {why}: {p}"),
    "certs issue --dir": ("--dir", _certs_issue, lambda why, p, tmp: f"Error: --dir: {why}: {p}"),
    "certs revoke --dir": (
        "--dir",
        _certs_revoke,
        lambda why, p, tmp: f"Error: --dir: {why}: {p}",
    ),
    "keyholder-init --key": (
        "--key",
        _keyholder_init,
        lambda why, p, tmp: f"secagg keyholder-init: --key {p}: {why}: {p}",
    ),
    "audit report --out": (
        "--out",
        _report_out,
        lambda why, p, tmp: f"Error: --out: cannot write in {tmp}: {why}",
    ),
    "audit verify --pubkey": (
        "--pubkey",
        _verify_pubkey,
        lambda why, p, tmp: f"Error: --pubkey: {why}: {p}",
    ),
}


@pytest.mark.parametrize("code", MACHINE, ids=errno.errorcode.get)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_path_the_machine_refuses_is_exit_1_naming_the_flag_path_and_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_folder: Path, command: str, code: int
) -> None:
    _flag, inject, said = COMMANDS[command]
    args, where = inject(tmp_path, code, monkeypatch, ca_folder)
    line = _one_line(CliRunner().invoke(main, args), 1)
    assert line == said(os.strerror(code), where, tmp_path), line


@pytest.mark.parametrize("code", MISTAKE, ids=errno.errorcode.get)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_path_that_names_no_file_is_exit_2_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_folder: Path, command: str, code: int
) -> None:
    flag, inject, _said = COMMANDS[command]
    args, _where = inject(tmp_path, code, monkeypatch, ca_folder)
    line = _one_line(CliRunner().invoke(main, args), 2)
    assert flag in line and os.strerror(code) in line, line


def test_a_server_state_in_a_missing_folder_is_the_configs_mistake(
    tmp_path: Path, ca_folder: Path
) -> None:
    """The client's ``--state`` in a missing folder is exit 2; the server's ``[server]
    state`` in one was a failure of its state, exit 1. Nothing is made or bound."""
    state = tmp_path / "absent" / "state.sqlite"
    config = _federation(tmp_path, state, ca_folder)
    line = _one_line(CliRunner().invoke(main, ["server", "--config", str(config)]), 2)
    assert line.startswith(f"secagg server: --config {config}: the state directory "), line
    assert "does not exist" in line and not state.parent.exists()


def test_a_server_state_path_that_names_nothing_is_the_configs_mistake(
    tmp_path: Path, ca_folder: Path
) -> None:
    """A mistyped ``[server] state`` (no state, ledger or key there) without ``--init``
    read "no state at S: pass --init", exit 1, naming no key, which invites a second
    federation at the typo; it is exit 2 naming the key, and nothing is made."""
    (tmp_path / "state.sqlite").write_bytes(b"")  # the real one, never reached
    typo = tmp_path / "stat.sqlite"
    config = _federation(tmp_path, typo, ca_folder)
    line = _one_line(CliRunner().invoke(main, ["server", "--config", str(config)]), 2)
    assert line.startswith(f"secagg server: --config {config}: [server] state = "), line
    assert "names no file" in line and "--init" in line and "correct the path" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["federation.toml", "state.sqlite"]


def test_a_lost_state_beside_its_ledgers_file_stays_a_failure(
    tmp_path: Path, ca_folder: Path
) -> None:
    """Something of a federation at the path (here its ledger's file, emptied): the
    state was lost, not mistyped, a failure of the state (exit 1) as before."""
    state = tmp_path / "state.sqlite"
    Path(f"{state}.ledger").write_bytes(b"")
    config = _federation(tmp_path, state, ca_folder)
    line = _one_line(CliRunner().invoke(main, ["server", "--config", str(config)]), 1)
    assert line == (
        f"secagg server: no state at {state}: pass --init to start a new federation there "
        "(a restarted server must find its state)"
    ), line


def _version_1_record(tmp_path: Path) -> Path:
    record = tmp_path / "kh-state.json"
    record.write_text(json.dumps({"version": 1, "decryptions": 1, "rounds": [3]}))
    return record


@pytest.mark.parametrize(
    "failure",
    [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), TimeoutError("the lock is held")],
    ids=["ENOSPC", "held lock"],
)
def test_a_key_holder_record_upgrade_the_machine_refuses_is_no_config_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: OSError
) -> None:
    """A version-1 record upgraded at start on a full disk (or under another process's
    lock) was a ConfigurationError, which ``secagg keyholder`` says as exit 2; the file
    stays as it was."""
    record = _version_1_record(tmp_path)
    before = record.read_bytes()

    def write(*args: object, **kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(keyholder_policy, "write_json_atomically", write)
    with pytest.raises(SecAggError) as raised:
        keyholder_policy.DecryptionRecord(record, "env")
    assert not isinstance(raised.value, ConfigurationError), raised.value
    assert raised.value.__cause__ is failure
    assert record.read_bytes() == before


@pytest.fixture
def keyholder_certs(tmp_path: Path) -> Path:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "kh")
    return ca


def test_keyholder_says_its_record_on_a_full_disk_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyholder_certs: Path
) -> None:
    """The command's status for the record's failure: the real upgrade, its write failing
    on a full disk, under ``secagg keyholder`` (the run itself replaced)."""
    record = _version_1_record(tmp_path)
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(record))
    monkeypatch.setattr(keyholder_policy, "write_json_atomically", _failing_with(full))

    def run_key_holder(*args: object, **kwargs: object) -> Any:
        return keyholder_policy.DecryptionRecord(record, "env")

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", run_key_holder)
    args = ["keyholder", "--server", "127.0.0.1:1", "--name", "kh", "--certs"]
    result = CliRunner().invoke(main, [*args, str(keyholder_certs), "--quiet"])
    line = _one_line(result, 1)
    assert line.startswith(f"secagg keyholder: kh: [key_holder] state: cannot upgrade {record}")
    assert f"({os.strerror(errno.ENOSPC)}: {record})" in line, line


def _failing_with(error: BaseException) -> Callable[..., Any]:
    def fail(*args: object, **kwargs: object) -> Any:
        raise error

    return fail


#: a file a party reads (its config, its policy): (arguments before the file's path, the
#: line's start before the flag, the flag, arguments after it)
READS: dict[str, tuple[list[str], str, str, list[str]]] = {
    "server --config": (["server"], "secagg server: ", "--config", []),
    "keyholder-init --config": (["keyholder-init"], "secagg keyholder-init: ", "--config", []),
    "keyholder --config": (
        ["keyholder", "--server", "127.0.0.1:1", "--name", "kh", "--certs", "{tmp}"],
        "secagg keyholder: ",
        "--config",
        [],
    ),
    "keyholder --policy": (
        ["keyholder", "--server", "127.0.0.1:1", "--name", "kh", "--certs", "{tmp}"],
        "secagg keyholder: kh: ",
        "--policy",
        [],
    ),
    "client --policy": (
        ["client", "--server", "127.0.0.1:1", "--name", "b", "--certs", "{tmp}"],
        "secagg client: b: ",
        "--policy",
        ["--dimension", "4"],
    ),
    "audit verify --config": (["audit", "verify"], "Error: ", "--config", ["{tmp}/ledger"]),
}


@pytest.mark.parametrize("code", [*MACHINE, errno.ENOTDIR], ids=errno.errorcode.get)
@pytest.mark.parametrize("command", list(READS))
def test_a_file_a_party_reads_says_the_flag_the_path_and_the_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, code: int
) -> None:
    """The read of ``--config`` or ``--policy`` meets an OSError after click saw the
    file: it went past the command's handlers (``Error: Permission denied: F``, no flag;
    the client's ``[Errno 13] Permission denied: 'F'``)."""
    from secagg.runtime import config as runtime_config

    before, prefix, flag, after = READS[command]
    given = tmp_path / "given.toml"
    given.write_text("[x]\n")
    (tmp_path / "ledger").write_bytes(b"")
    real = runtime_config.read_regular_file

    def read(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(given):
            raise OSError(code, os.strerror(code), str(given))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(runtime_config, "read_regular_file", read)
    args = [a.format(tmp=tmp_path) for a in [*before, flag, str(given), *after]]
    if command == "keyholder-init --config":
        args += ["--key", str(tmp_path / "kh.key")]
    status = 2 if code == errno.ENOTDIR else 1
    line = _one_line(CliRunner().invoke(main, args), status)
    why = os.strerror(code)
    if command.startswith("audit") and status == 2:  # click's usage line
        assert line == f"Error: Invalid value for '--config': {why}: {given}", line
    elif command.startswith("audit"):
        assert line == f"Error: --config: {why}: {given}", line
    else:
        assert line == f"{prefix}{flag} {given}: {why}: {given}", line


def test_a_bench_out_file_in_a_folder_it_may_not_write_is_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bench masking --out F`` checks F's folder before the run: one it may not write in
    said ``Invalid value for '--out': the folder D is not writable``, exit 2; the
    machine's refusal by the one rule. Nothing runs (the check is the option's)."""
    monkeypatch.setattr(bench_commands.os, "access", lambda *args, **kwargs: False)
    out = tmp_path / "masking.json"
    line = _one_line(CliRunner().invoke(main, ["bench", "masking", "--out", str(out)]), 1)
    assert line == f"Error: --out: {os.strerror(errno.EACCES)}: {tmp_path}", line
    assert not out.exists()


def _refusing_certificate_reads(mp: pytest.MonkeyPatch, code: int, refused: Path) -> None:
    """The certificate store's reads (a key's, a certificate's) of ``refused`` meet an
    OSError ``code``; every other file reads as it is."""
    from secagg.transport import certs as transport_certs

    real_open, real_read = transport_certs.opened_regular_file, transport_certs.read_regular_file

    def opened(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(refused):
            raise OSError(code, os.strerror(code), str(refused))
        return real_open(path, *args, **kwargs)

    def read(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(refused):
            raise OSError(code, os.strerror(code), str(refused))
        return real_read(path, *args, **kwargs)

    mp.setattr(transport_certs, "opened_regular_file", opened)
    mp.setattr(transport_certs, "read_regular_file", read)


#: a party given a CA folder (``{ca}``) with a file it reads (relative to the folder): its
#: arguments, that file, and the start of its line when the machine refuses the file
CERTIFICATE_READS: dict[str, tuple[list[str], str, str]] = {
    "client --certs (its key)": (
        "client --server 127.0.0.1:1 --name kh --certs {ca} --dimension 4 --quiet".split(),
        "clients/kh.key",
        "Error: --certs: private key of client 'kh' at {path} cannot be read: ",
    ),
    "keyholder --certs (the CA)": (
        ["keyholder", "--server", "127.0.0.1:1", "--name", "kh", "--certs", "{ca}", "--quiet"],
        "ca.pem",
        "Error: --certs: CA certificate at {path} cannot be read: ",
    ),
    "server [server] certificates (its key)": (
        ["server", "--config", "{config}", "--quiet"],
        "server.key",
        "secagg server: --config {config}: [server] certificates = '{ca}': "
        "server private key at {path} cannot be read: ",
    ),
    "server [server] certificates (revoked.json)": (
        ["server", "--config", "{config}", "--quiet"],
        "revoked.json",
        "secagg server: --config {config}: [server] certificates = '{ca}': "
        "revocation list at {path} cannot be read: ",
    ),
    "certs issue --dir (ca.key)": (
        ["certs", "issue", "b2", "--dir", "{ca}"],
        "ca.key",
        "Error: --dir: CA private key at {path} cannot be read: ",
    ),
    "certs revoke --dir (ca.pem)": (
        ["certs", "revoke", "kh", "--dir", "{ca}"],
        "ca.pem",
        "Error: --dir: CA certificate at {path} cannot be read: ",
    ),
}


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO, errno.ENOTDIR], ids=errno.errorcode.get)
@pytest.mark.parametrize("command", list(CERTIFICATE_READS))
def test_a_certificate_file_the_machine_will_not_read_is_exit_1_naming_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyholder_certs: Path, command: str, code: int
) -> None:
    """A certificate or key file the party may not read was raised ``from None``, its
    errno lost, and said as ``Invalid value for '--certs': ... cannot be read: permission
    denied`` (the server's and ``certs issue``'s likewise), exit 2: the machine's refusal
    is exit 1, one line naming the flag, the path and the cause; a path that names no
    file stays the usage error (exit 2). No key material in the line."""
    before, relative, said = CERTIFICATE_READS[command]
    refused = keyholder_certs / relative
    config = _federation(tmp_path, tmp_path / "state.sqlite", keyholder_certs)
    fill = {"ca": str(keyholder_certs), "config": str(config), "path": str(refused)}
    _refusing_certificate_reads(monkeypatch, code, refused)
    result = CliRunner().invoke(main, [a.format(**fill) for a in before])
    machine = code != errno.ENOTDIR
    line = _one_line(result, 1 if machine else 2)
    assert "PRIVATE KEY" not in result.output
    if machine:
        why = os.strerror(code)  # the store says "permission denied" in lower case
        assert line.lower() == (said.format(**fill) + why).lower(), line
    else:
        assert str(refused) in line and (
            "--certs" in line or "certificates" in line or "--dir" in line
        )
    assert not (keyholder_certs / "clients" / "b2.pem").exists()


def test_a_key_holder_record_the_machine_will_not_read_is_no_config_mistake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record the key holder may not read at start (EACCES, EIO) was a
    ConfigurationError, exit 2, as if its --state were wrong; now the machine's
    :class:`DecryptionRecordUnwritable`, chained to the OSError, as the upgrade beside it.
    A read that finds no record stays the configuration's mistake."""
    record = _version_1_record(tmp_path)
    for code in (errno.EACCES, errno.EIO):
        failure = OSError(code, os.strerror(code), str(record))
        monkeypatch.setattr(keyholder_policy, "read_regular_file", _failing_with(failure))
        with pytest.raises(keyholder_policy.DecryptionRecordUnwritable) as raised:
            keyholder_policy.DecryptionRecord(record, "env")
        assert raised.value.__cause__ is failure
        assert f"cannot read {record} ({os.strerror(code)}: {record})" in str(raised.value)
    monkeypatch.setattr(keyholder_policy, "read_regular_file", lambda *a, **k: b"[]")
    with pytest.raises(ConfigurationError):
        keyholder_policy.DecryptionRecord(record, "env")


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOTDIR], ids=errno.errorcode.get)
def test_keyholder_says_a_record_it_may_not_read_by_the_one_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyholder_certs: Path, code: int
) -> None:
    """``secagg keyholder`` over a record it may not read: exit 1 (it was 2); a path that
    names no file (a folder on it a file) stays exit 2."""
    record = tmp_path / "kh-state.json"
    failure = OSError(code, os.strerror(code), str(record))
    monkeypatch.setattr(keyholder_policy, "read_regular_file", _failing_with(failure))

    def run_key_holder(*args: object, **kwargs: object) -> Any:
        return keyholder_policy.DecryptionRecord(record, "env")

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", run_key_holder)
    args = ["keyholder", "--server", "127.0.0.1:1", "--name", "kh", "--certs"]
    result = CliRunner().invoke(main, [*args, str(keyholder_certs), "--quiet"])
    line = _one_line(result, 1 if code == errno.EACCES else 2)
    assert line == (
        f"secagg keyholder: kh: [key_holder] state: cannot read {record} "
        f"({os.strerror(code)}: {record}); refusing to start"
    ), line


#: READS, and ``audit verify --pubkey``: a file read through the configuration reader
#: (:func:`secagg.runtime.config.read_regular_file`)
READS_WITH_PUBKEY = {
    **READS,
    "audit verify --pubkey": (["audit", "verify"], "Error: ", "--pubkey", ["{tmp}/ledger"]),
}


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO, errno.ENOTDIR], ids=errno.errorcode.get)
@pytest.mark.parametrize("command", list(READS_WITH_PUBKEY))
def test_the_configuration_reader_leaves_the_machines_refusal_to_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, code: int
) -> None:
    """The OSError met at the bottom (:func:`secagg.durable.read_regular_file`, the one
    open), not at the configuration reader above it: that reader turned every OSError
    into a ConfigurationError, so ``server --config``, ``client --policy``, ``audit
    verify --pubkey`` (...) on a file they may not read said exit 2 (``cannot read F:
    Permission denied``) and the commands' OSError handlers never ran. A path that names
    no file stays exit 2, naming the file."""
    from secagg import durable

    before, prefix, flag, after = READS_WITH_PUBKEY[command]
    given = tmp_path / "given.toml"
    given.write_text("[x]\n")
    (tmp_path / "ledger").write_bytes(b"")
    real = durable.read_regular_file

    def read(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.fspath(path) == str(given):
            raise OSError(code, os.strerror(code), str(given))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(durable, "read_regular_file", read)
    args = [a.format(tmp=tmp_path) for a in [*before, flag, str(given), *after]]
    if command == "keyholder-init --config":
        args += ["--key", str(tmp_path / "kh.key")]
    line = _one_line(CliRunner().invoke(main, args), 2 if code == errno.ENOTDIR else 1)
    why = os.strerror(code)
    if code == errno.ENOTDIR:
        assert str(given) in line and why in line, line
    elif command.startswith("audit"):
        assert line == f"Error: {flag}: {why}: {given}", line
    else:
        assert line == f"{prefix}{flag} {given}: {why}: {given}", line


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO, errno.ENOTDIR], ids=errno.errorcode.get)
def test_keyholder_says_a_key_file_it_may_not_read_by_the_one_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyholder_certs: Path, code: int
) -> None:
    """The key holder's secret key file (``--key``, or ``[key_holder] key``) it may not
    read was a ConfigurationError raised ``from None``, exit 2 as if the file were
    wrong; its cause is kept now, and the machine's refusal is exit 1. Never the key's
    bytes: none was read."""
    from secagg.he import keys

    key = tmp_path / "kh.key"
    monkeypatch.setattr(keys, "read_regular_file", _failing(code, key))

    def run_key_holder(*args: object, **kwargs: object) -> Any:
        return keys.KeyHolder.load(key, None)  # type: ignore[arg-type]  # read first

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", run_key_holder)
    args = ["keyholder", "--server", "127.0.0.1:1", "--name", "kh", "--certs"]
    result = CliRunner().invoke(main, [*args, str(keyholder_certs), "--quiet"])
    line = _one_line(result, 2 if code == errno.ENOTDIR else 1)
    assert line == f"secagg keyholder: kh: cannot read the key file {key}: {os.strerror(code)}"


@pytest.mark.parametrize("code", [errno.EACCES, errno.EIO], ids=errno.errorcode.get)
@pytest.mark.parametrize("command", ["issue", "revoke"])
def test_a_branch_certificate_the_ca_may_not_read_is_exit_1_naming_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyholder_certs: Path, command: str, code: int
) -> None:
    """``certs issue kh --force`` must bar the certificate it replaces, and ``certs
    revoke kh`` the one it revokes; one the machine will not let it read was refused in
    words of its own raised ``from None`` (the errno lost), exit 2 as a usage error.
    Now exit 1 naming ``--dir``; nothing is written (the certificate and the list stay)."""
    certificate = keyholder_certs / "clients" / "kh.pem"
    before = certificate.read_bytes(), (keyholder_certs / "revoked.json").read_bytes()
    _refusing_certificate_reads(monkeypatch, code, certificate)
    force = ["--force"] if command == "issue" else []
    args = ["certs", command, "kh", "--dir", str(keyholder_certs), *force]
    line = _one_line(CliRunner().invoke(main, args), 1)
    assert line.startswith("Error: --dir: ") and str(certificate) in line, line
    assert before == (certificate.read_bytes(), (keyholder_certs / "revoked.json").read_bytes())


#: an option whose path click checks itself (exists, readable, writable): the arguments,
#: ``{path}`` the option's own path, which exists
CLICK_CHECKED: dict[str, list[str]] = {
    "server --config": ["server", "--config", "{path}"],
    "keyholder-init --config": ["keyholder-init", "--config", "{path}", "--key", "{tmp}/kh.key"],
    "audit verify --config": ["audit", "verify", "--config", "{path}", "{tmp}/ledger"],
    "bench masking --out": ["bench", "masking", "--out", "{path}"],
    "client --policy": [
        *"client --server 127.0.0.1:1 --name b --certs {tmp} --dimension 4 --policy".split(),
        "{path}",
    ],
}


@pytest.mark.parametrize("how", ["not readable or writable", "not searchable"])
@pytest.mark.parametrize("command", list(CLICK_CHECKED))
def test_click_path_checks_say_the_machines_refusal_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, how: str
) -> None:
    """click's own checks of an option's path came before every command's handler:
    ``server --config F`` with F unreadable said ``Invalid value for '--config': File 'F'
    is not readable.``, ``bench --out F`` one it may not overwrite ``... is not
    writable``, exit 2, and a folder it may not search made F ``does not exist``. The
    machine's refusal is exit 1 naming the flag, the path and the cause; nothing runs."""
    given = tmp_path / "given.toml"
    given.write_text("[x]\n")
    (tmp_path / "ledger").write_bytes(b"")
    real_access, real_stat = os.access, os.stat
    if how == "not searchable":

        def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
            if os.fspath(path) == str(given):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(given))
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", stat)
    else:
        monkeypatch.setattr(
            os,
            "access",
            lambda p, *a, **k: os.fspath(p) != str(given) and real_access(p, *a, **k),
        )
    args = [a.format(path=given, tmp=tmp_path) for a in CLICK_CHECKED[command]]
    result = CliRunner().invoke(main, args)
    monkeypatch.undo()
    flag = args[args.index(str(given)) - 1]
    line = _one_line(result, 1)
    assert line == f"Error: {flag}: {os.strerror(errno.EACCES)}: {given}", line
    assert given.read_text() == "[x]\n"
