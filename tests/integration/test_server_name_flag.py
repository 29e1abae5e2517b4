"""``secagg client --server-name`` and ``secagg keyholder --server-name``: a party
dials the server by IP address and checks the DNS name its certificate carries.

Review (2026-12-05): ``run_branch`` took ``name_override`` but ``secagg client`` had
no option for it, so a CLI branch could not dial ``127.0.0.1`` against a certificate
for ``fl.bank.internal`` only (the handshake fails with a ``ServerNameMismatch``);
``run_key_holder`` did not take it at all. Real gRPC with mTLS throughout; every wait
has a generous bound (:data:`_threads.BOUND`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from _threads import BOUND, Party, free_port
from click.testing import CliRunner, Result

from secagg.apps import devca
from secagg.apps.cli import main
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import demo_hook, run_branch, serve
from secagg.transport import certs
from secagg.transport.grpc_transport import GrpcServerTransport

NAMES = ["branch-a", "branch-b", "branch-c"]
D = 8
#: the only name the server's certificate carries: not the address dialled
DNS = "fl.bank.internal"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("server-name-flag") / "certs"
    devca.init_ca(directory, server_names=[DNS])
    for name in [*NAMES, "holder"]:
        devca.issue_client(directory, name)
    return directory


def _config(ca: Path, port: int) -> FederationConfig:
    data: dict[str, Any] = {
        "federation": {"name": "server-name", "clients": NAMES, "dimension": D, "rounds": 1},
        "sampling": {"kind": "poisson", "rate": 1.0},
        "backend": {"name": "secagg+", "value_bound": 4.0},
        "deadlines": {"phase_seconds": 60.0},
        "server": {
            "state": str(ca.parent / f"server-{port}.sqlite"),
            "bind": f"127.0.0.1:{port}",
            "certificates": str(ca),
        },
    }
    return FederationConfig.from_dict(data)


def _one_line(result: Result, party: str) -> str:
    """The one error line of ``party``; no traceback."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith(party)]
    assert len(lines) == 1, result.output
    return lines[0]


def test_a_cli_branch_dials_the_address_and_checks_the_certificates_name(ca: Path) -> None:
    """Before: ``no such option: --server-name`` (exit 2), and without it the branch's
    first handshake fails on the name (tests/transport/test_server_name_mismatch.py).
    After: the branch dials 127.0.0.1, checks fl.bank.internal, and the federation
    finishes with it."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    common = ["client", "--server", target, "--certs", str(ca), "--dimension", str(D)]
    server = Party(lambda: serve(_config(ca, port), wait_for_clients=BOUND))
    others = [
        Party(
            lambda name=name: run_branch(
                target,
                name,
                demo_hook(name, D),
                str(ca),
                name_override=DNS,
                connect_timeout=BOUND,
            )
        )
        for name in NAMES[:2]
    ]
    result = CliRunner().invoke(
        main,
        [*common, "--name", "branch-c", "--server-name", DNS, "--connect-timeout", str(BOUND)],
    )
    assert server.done.wait(BOUND), "the server did not finish"
    for party in [server, *others]:
        assert party.done.wait(BOUND)
        assert party.error is None, party.error
    assert result.exit_code == 0, result.output
    assert "branch-c: 1 rounds completed, 0 aborted" in result.output
    assert "the federation finished" in result.output
    _, results = server.value
    assert len(results) == 1


def _key_holder_dialling(
    ca: Path,
) -> tuple[GrpcServerTransport, threading.Event, list[str]]:
    """A started gRPC server that identifies the key holder ``holder`` by its
    certificate (``seen`` is set once a handshake passed), and the ``secagg keyholder``
    arguments that dial it with ``ca``'s bundle; the caller stops the server."""
    seen = threading.Event()
    verifier = certs.PeerVerifier(ca, allowed=["holder"])

    def identify(context: Any) -> str:
        name = verifier.identify(context.auth_context()).name
        seen.set()
        return name

    server = GrpcServerTransport(
        "127.0.0.1:0",
        server_credentials=certs.load_server_credentials(ca).to_grpc(),
        max_message_bytes=1 << 20,
        identify=identify,
    )
    server.start()
    common = ["keyholder", "--server", f"127.0.0.1:{server.port}", "--name", "holder"]
    common += ["--certs", str(ca), "--give-up-after", "1"]
    return server, seen, common


def test_a_cli_key_holder_checks_the_certificates_name(ca: Path) -> None:
    """``secagg keyholder --server-name``: the name is the one its handshake checks.
    A wrong name is refused at once, naming it; the right one opens a session (the
    server identifies the key holder), after which this silent server is waited out."""
    server, seen, common = _key_holder_dialling(ca)
    try:
        wrong = CliRunner().invoke(main, [*common, "--server-name", "fl.bank.example"])
        assert wrong.exit_code == 1, wrong.output
        assert "not fl.bank.example, the name_override checked" in _one_line(
            wrong, "secagg keyholder"
        )
        assert not seen.is_set()
        right = CliRunner().invoke(main, [*common, "--server-name", DNS, "--idle", "3"])
    finally:
        server.stop(grace=0)
    assert seen.is_set(), right.output  # the session opened: the handshake passed
    said = _one_line(right, "secagg keyholder")  # then silence past --idle: exit 1
    assert right.exit_code == 1, right.output
    assert "the federation's end was not announced" in said
    assert "certificate" not in said


def _server_name_refusal(command: str, value: str, ca: Path) -> str:
    """``secagg COMMAND --server-name VALUE``'s one error line: exit 2, no traceback,
    exactly one ``Error:`` line, naming the flag."""
    args = [command, "--server", "127.0.0.1:50051", "--name", "branch-a", "--certs", str(ca)]
    if command == "client":
        args += ["--dimension", str(D)]
    result = CliRunner().invoke(main, [*args, "--server-name", value])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "'--server-name'" in errors[0]
    return errors[0]


@pytest.mark.parametrize(
    "value", ["fl.bank.internal:50051", "https://fl.bank.internal", "-bad.example", "a b", ""]
)
@pytest.mark.parametrize("command", ["client", "keyholder"])
def test_a_value_that_is_no_host_name_is_one_line_naming_the_flag(
    command: str, value: str, ca: Path
) -> None:
    error = _server_name_refusal(command, value, ca)
    assert "is not a host name" in error


@pytest.mark.parametrize(
    ("value", "checked"),
    [
        ("fd00::5", "fd00::5"),
        ("[fd00::5]", "fd00::5"),
        ("FD00:0:0:0:0:0:0:5", "fd00::5"),
        ("::1", "::1"),
        ("10.0.0.5", "10.0.0.5"),
        ("fl.bank.internal.", "fl.bank.internal"),
        # gRPC spells these IP SANs as inet_ntop does, not as Python 3.11's ipaddress
        ("::ffff:10.0.0.5", "::ffff:10.0.0.5"),
        ("::FFFF:a00:5", "::ffff:10.0.0.5"),
        ("[::a00:6]", "::10.0.0.6"),
    ],
)
def test_an_ipv6_server_name_is_taken_in_its_one_spelling(
    value: str, checked: str, monkeypatch: pytest.MonkeyPatch, ca: Path
) -> None:
    """Review (2026-12-05): ``--server-name ::1`` was "not a host name" (exit 2),
    although a certificate carries an IPv6 address as an IP SAN (``secagg certs init
    --server-name ::1``). The key holder is handed the compressed form, the one gRPC
    matches with the certificate's IP SANs."""
    from secagg.runtime import launch

    given: dict[str, object] = {}

    def record(*args: object, **kwargs: object) -> object:
        given.update(kwargs)
        raise KeyboardInterrupt  # stop there, as Ctrl-C would: nothing is dialled

    monkeypatch.setattr(launch, "run_key_holder", record)
    args = ["keyholder", "--server", "127.0.0.1:9", "--name", "holder", "--certs", str(ca)]
    CliRunner().invoke(main, [*args, "--server-name", value])
    assert given.get("name_override") == checked, given


@pytest.mark.parametrize(
    "value", ["[::1]:50051", "::g", "1::2::3", "[fl.bank.internal]", "[::1", "fe80::1%eth0"]
)
@pytest.mark.parametrize("command", ["client", "keyholder"])
def test_garbage_beside_ipv6_is_still_one_line_naming_the_flag(
    command: str, value: str, ca: Path
) -> None:
    error = _server_name_refusal(command, value, ca)
    said = "a zone (%eth0)" if "%" in value else "is not a host name"
    assert said in error, error


def test_a_cli_key_holder_checks_an_ipv6_name_on_the_certificate(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Real gRPC: a certificate carrying only the IPv6 address fd00::5; the key holder
    dials 127.0.0.1 and checks ``[FD00::5]``: its session opens (before: exit 2,
    "not a host name"). ``fd00::6`` is refused at the first handshake, named."""
    directory = tmp_path_factory.mktemp("server-name-v6-cli") / "certs"
    devca.init_ca(directory, server_names=["fd00::5"])
    devca.issue_client(directory, "holder")
    server, seen, common = _key_holder_dialling(directory)
    try:
        wrong = CliRunner().invoke(main, [*common, "--server-name", "fd00::6"])
        assert wrong.exit_code == 1, wrong.output
        assert "names fd00::5, not fd00::6, the name_override checked" in _one_line(
            wrong, "secagg keyholder"
        )
        assert not seen.is_set()
        right = CliRunner().invoke(main, [*common, "--server-name", "[FD00::5]", "--idle", "3"])
    finally:
        server.stop(grace=0)
    assert seen.is_set(), right.output  # the session opened: the handshake passed
    said = _one_line(right, "secagg keyholder")  # then silence past --idle: exit 1
    assert right.exit_code == 1, right.output
    assert "the federation's end was not announced" in said


@pytest.mark.parametrize("value", ["256.1.1.1", "010.0.0.5", "10.0.0", "1.2.3.4.5"])
@pytest.mark.parametrize("command", ["client", "keyholder"])
def test_a_numeric_name_that_is_no_ipv4_address_is_one_line_naming_the_flag(
    command: str, value: str, ca: Path
) -> None:
    """Review (2026-12-05): ``256.1.1.1`` or ``010.0.0.5`` passed as a host name (its
    labels are letters-digits-hyphens), though no certificate can carry it: gRPC takes a
    dotted-digits name for an IP address and compares it with the IP SANs as text, and a
    top-level label is never all digits (RFC 1123, 3696). It failed only at the handshake."""
    error = _server_name_refusal(command, value, ca)
    assert "is not an IPv4 address" in error, error
