"""``secagg certs`` as an operator meets it: every mistake is one line, exit 2, and a
name can never write outside the CA folder.

A table of names and folders an operator may type (path separators, ``..``, names past a
certificate's 64-character common name, Unicode, a newline, a revoked name re-issued)
run in process through click's runner, and the long server name that was a traceback:
``certs init --server-name`` takes any host name (up to 253 characters), but the first
name was also the server certificate's common name, which X.509 bounds at 64
characters, so a valid 74-character name ended in ``ValueError: Attribute's length must
be >= 1 and <= 64`` (hostile CLI review, 2026-12-06).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import NameOID

from secagg.apps.cli import main

#: a host name of 74 characters, each label within DNS's 63
LONG_HOST = "a" * 63 + ".bank.test"
#: a host name of 253 characters, DNS's longest
LONGEST_HOST = ".".join(["b" * 63, "c" * 63, "d" * 63, "e" * 61])


def _invoke(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, [line for line in result.output.splitlines() if line.strip()]


def _server_certificate(directory: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())


def _files_under(directory: Path) -> set[Path]:
    return set(directory.rglob("*"))


@pytest.mark.parametrize("host", [LONG_HOST, LONGEST_HOST])
def test_a_long_server_name_is_carried_not_a_traceback(tmp_path: Path, host: str) -> None:
    """The name goes into the certificate's SANs (what TLS checks); its common name,
    display only and at most 64 characters, is another carried name that fits."""
    folder = tmp_path / "ca"
    code, lines = _invoke("certs", "init", "--dir", str(folder), "--server-name", host)
    assert code == 0, lines
    certificate = _server_certificate(folder)
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [host]
    common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert len(common_names) == 1
    assert 1 <= len(str(common_names[0].value)) <= 64


def test_the_common_name_is_the_first_name_that_fits(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    args = ["certs", "init", "--dir", str(folder), "--server-name", LONG_HOST]
    code, lines = _invoke(*args, "--server-name", "fl.bank.test")
    assert code == 0, lines
    common_names = _server_certificate(folder).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert [str(name.value) for name in common_names] == ["fl.bank.test"]


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    folder = tmp_path / "ca"
    code, lines = _invoke("certs", "init", "--dir", str(folder))
    assert code == 0, lines
    return folder


#: names no certificate may be issued to or revoked under: one line naming the rule
BAD_NAMES = [
    "../outside",
    "..",
    "a/b",
    "clients/../../x",
    "/abs",
    "a" * 65,
    "é",
    "branch\n",
    "branch\x1b[2J",
    "a b",
    ".hidden",
    "",
]


@pytest.mark.parametrize("command", ["issue", "revoke"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_name_is_one_line_and_writes_nothing(ca: Path, command: str, name: str) -> None:
    before = {path: path.read_bytes() for path in _files_under(ca.parent) if path.is_file()}
    code, lines = _invoke("certs", command, name, "--dir", str(ca), "--force")
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: invalid client name"), lines
    after = {path: path.read_bytes() for path in _files_under(ca.parent) if path.is_file()}
    assert after == before


def test_a_64_character_name_is_the_longest_issued(ca: Path) -> None:
    name = "b" * 64
    code, lines = _invoke("certs", "issue", name, "--dir", str(ca))
    assert code == 0, lines
    certificate = x509.load_pem_x509_certificate((ca / "clients" / f"{name}.pem").read_bytes())
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name


#: (the steps before, the command, the words of its one line)
MISTAKES = [
    ([], ["init"], "a CA already exists"),
    ([["issue", "b1"]], ["issue", "b1"], "already has a certificate"),
    ([["issue", "b1"], ["revoke", "b1"]], ["issue", "b1"], "is revoked; use --force"),
    ([], ["revoke", "nobody"], "has no certificate"),
]


@pytest.mark.parametrize(("steps", "command", "words"), MISTAKES)
def test_a_refused_step_is_one_line(
    ca: Path, steps: list[list[str]], command: list[str], words: str
) -> None:
    for step in steps:
        code, lines = _invoke("certs", *step, "--dir", str(ca))
        assert code == 0, lines
    code, lines = _invoke("certs", *command, "--dir", str(ca))
    assert code == 2, lines
    assert len(lines) == 1 and words in lines[0], lines


@pytest.mark.parametrize("command", [["init"], ["issue", "b1"], ["revoke", "b1"]])
@pytest.mark.parametrize("where", ["missing parent", "a file", "empty"])
def test_a_folder_that_cannot_be_used_is_one_line_naming_it(
    tmp_path: Path, command: list[str], where: str
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    folder = {
        "missing parent": str(tmp_path / "no" / "such" / "ca"),
        "a file": str(blocker),
        "empty": "",
    }[where]
    code, lines = _invoke("certs", *command, "--dir", folder)
    assert code == 2, lines
    # the flag, or the folder it gave (``revoke``: "no CA in FOLDER")
    assert len(lines) == 1 and ("--dir" in lines[0] or f"no CA in {folder}" in lines[0]), lines
    assert not (tmp_path / "no").exists()


# --- a lost revocation list ------------------------------------------------------------
# ``certs init`` writes revoked.json, and the server refuses to start without it: "a
# missing list is an error, never 'nothing revoked'" (docs/deployment.md). But ``certs
# revoke`` and ``certs issue`` read a missing list as empty: after the list was lost
# (deleted, a restore without it), revoking another branch wrote a new list without the
# old entries, and the server then started and admitted the branch revoked before (its
# leaked key included); ``certs issue`` re-issued a revoked name without --force.


def _lose_the_list_of_a_revoked_branch(ca: Path) -> bytes:
    """b1 issued and revoked, b2 issued; then revoked.json lost. b1's certificate."""
    for step in (["issue", "b1"], ["issue", "b2"], ["revoke", "b1"]):
        code, lines = _invoke("certs", *step, "--dir", str(ca))
        assert code == 0, lines
    (ca / "revoked.json").unlink()
    return (ca / "clients" / "b1.pem").read_bytes()


@pytest.mark.parametrize(
    "step",
    [["revoke", "b2"], ["revoke", "b3", "--force"], ["issue", "b1"], ["issue", "b1", "--force"]],
    ids=" ".join,
)
def test_a_lost_revocation_list_is_not_started_again_empty(ca: Path, step: list[str]) -> None:
    from secagg.transport.certs import MissingRevocationList, PeerVerifier

    b1 = _lose_the_list_of_a_revoked_branch(ca)
    before = {path: path.read_bytes() for path in _files_under(ca) if path.is_file()}
    code, lines = _invoke("certs", *step, "--dir", str(ca))
    assert code == 2, lines
    assert len(lines) == 1 and str(ca / "revoked.json") in lines[0], lines
    assert "restore" in lines[0], lines
    after = {path: path.read_bytes() for path in _files_under(ca) if path.is_file()}
    assert after == before  # nothing written: no list, no certificate
    # the server still refuses to start, rather than admitting b1 again
    with pytest.raises(MissingRevocationList):
        PeerVerifier(ca).identify(b1)


def test_an_empty_list_restored_by_hand_is_read(ca: Path) -> None:
    """The way out the line names for a CA that never had a list: an empty one."""
    _lose_the_list_of_a_revoked_branch(ca)
    (ca / "revoked.json").write_text(
        '{"format": "secagg-revocations/1", "names": [], "fingerprints": []}'
    )
    code, lines = _invoke("certs", "revoke", "b2", "--dir", str(ca))
    assert code == 0, lines


def test_a_revoked_name_is_not_issued_again_without_force_after_the_list_is_lost(
    ca: Path,
) -> None:
    _lose_the_list_of_a_revoked_branch(ca)
    for suffix in (".pem", ".key"):  # its files cleaned up after the revocation
        (ca / "clients" / f"b1{suffix}").unlink()
    code, lines = _invoke("certs", "issue", "b1", "--dir", str(ca))
    assert code == 2, lines
    assert len(lines) == 1 and "revoked.json is missing" in lines[0], lines
    assert not (ca / "clients" / "b1.pem").exists()


# --- a CA folder whose clients/ or revoked.json is the wrong kind -----------------------
# ``certs init --force`` with a file named clients wrote the new CA, the server's
# certificate and an empty revocation list, then failed ("File exists: .../clients",
# exit 2): the operator read an error while the old CA, and every certificate it issued,
# was already gone. Now the folder is checked before anything is written.


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
@pytest.mark.parametrize("blocker", ["clients", "revoked.json"])
def test_init_checks_the_folder_before_writing_anything(
    tmp_path: Path, force: bool, blocker: str
) -> None:
    folder = tmp_path / "ca"
    if force:
        code, lines = _invoke("certs", "init", "--dir", str(folder))
        assert code == 0, lines
        if blocker == "clients":
            (folder / "clients").rmdir()
        else:
            (folder / "revoked.json").unlink()
    else:
        folder.mkdir()
    if blocker == "clients":
        (folder / "clients").write_text("not a folder")
    else:
        (folder / "revoked.json").mkdir()
    before = {path: path.read_bytes() for path in _files_under(folder) if path.is_file()}
    code, lines = _invoke("certs", "init", "--dir", str(folder), *(["--force"] if force else []))
    assert code == 2, lines
    assert len(lines) == 1 and str(folder / blocker) in lines[0], lines
    after = {path: path.read_bytes() for path in _files_under(folder) if path.is_file()}
    assert after == before


@pytest.mark.parametrize("suffix", [".pem", ".key"])
def test_issue_checks_its_two_paths_before_writing_either(ca: Path, suffix: str) -> None:
    """A folder where the certificate goes: the key was replaced, then the certificate's
    write failed naming its temporary file, which nobody typed."""
    code, lines = _invoke("certs", "issue", "b1", "--dir", str(ca))
    assert code == 0, lines
    blocked = ca / "clients" / f"b1{suffix}"
    blocked.unlink()
    blocked.mkdir()
    before = {path: path.read_bytes() for path in _files_under(ca) if path.is_file()}
    code, lines = _invoke("certs", "issue", "b1", "--dir", str(ca), "--force")
    assert code == 2, lines
    assert len(lines) == 1 and f"{blocked} is a folder" in lines[0], lines
    assert ".tmp" not in lines[0]
    after = {path: path.read_bytes() for path in _files_under(ca) if path.is_file()}
    assert after == before
