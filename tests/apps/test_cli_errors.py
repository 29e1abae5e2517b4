"""Every mistake the newcomer review met at the command line gets one line, no traceback.

Exit status 2 for a usage mistake (a flag, a file), 1 for a failure the user cannot fix
by retyping (a server that cannot be reached or refuses the branch). Sections 4-7 and 9
of the newcomer review; the install checks of section 3 are at the end."""

from __future__ import annotations

import inspect
import logging
import pydoc
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from _threads import free_port
from click.testing import CliRunner, Result

import secagg
from secagg.apps import devca
from secagg.apps.cli import _quiet_accountant, main
from secagg.errors import ConfigurationError, SecAggError
from secagg.transport.base import NotConnected
from secagg.transport.certs import load_revocations

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line_error(result: Result, status: int) -> str:
    """The error a command printed, checked to be one line with no traceback."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line: no click "Usage:" / "Try ..." preamble
    return lines[0]


# --- certs --------------------------------------------------------------------------


def test_revoking_a_name_without_a_certificate_is_an_error(tmp_path: Path) -> None:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "branch-a")
    error = _one_line_error(_run("certs", "revoke", "nobody", "--dir", str(ca)), 2)
    assert "'nobody' has no certificate" in error and "issued: branch-a" in error
    assert "--force" in error
    assert load_revocations(ca).names == frozenset()  # nothing was recorded
    forced = _run("certs", "revoke", "nobody", "--dir", str(ca), "--force")
    assert forced.exit_code == 0, forced.output
    assert _run("certs", "revoke", "branch-a", "--dir", str(ca)).exit_code == 0
    assert load_revocations(ca).names == {"nobody", "branch-a"}
    assert _run("certs", "revoke", "branch-a", "--dir", str(ca)).exit_code == 0  # idempotent


def test_certificate_commands_name_the_force_flag(tmp_path: Path) -> None:
    ca = str(tmp_path / "certs")
    assert _run("certs", "init", "--dir", ca).exit_code == 0
    again = _one_line_error(_run("certs", "init", "--dir", ca), 2)
    assert "--force" in again and "force=True" not in again
    assert _run("certs", "issue", "b1", "--dir", ca).exit_code == 0
    twice = _one_line_error(_run("certs", "issue", "b1", "--dir", ca), 2)
    assert "--force" in twice and "force=True" not in twice
    assert _run("certs", "revoke", "b1", "--dir", ca).exit_code == 0
    revoked = _one_line_error(_run("certs", "issue", "b1", "--dir", ca), 2)
    assert "revoked; use --force" in revoked


# --- round, params, privacy -----------------------------------------------------------


def test_round_says_when_k_makes_the_complete_graph() -> None:
    result = _run("round", "--clients", "8", "--dim", "10", "--k", "200", "--dropout", "0")
    assert result.exit_code == 0, result.output
    assert "--k 200 reaches every other client" in result.stderr
    assert "complete graph (SecAgg), k = 7" in result.stderr
    as_json = _run("round", "--clients", "8", "--dim", "10", "--k", "9", "--json")
    assert "complete graph" in as_json.output and "k = 7" in as_json.output


@pytest.mark.parametrize("command", ["params", "round"])
@pytest.mark.parametrize("clients", ["0", "1"])
def test_too_few_clients_get_one_message(command: str, clients: str) -> None:
    error = _one_line_error(_run(command, "--clients", clients), 2)
    assert "'--clients'" in error
    assert f"{clients} is too few: secure aggregation sums the inputs of at least 2" in error


def test_the_accountant_filter_drops_only_convergence_noise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    absl = logging.getLogger("absl")
    with caplog.at_level(logging.WARNING), _quiet_accountant():
        absl.warning("_compute_log_a_frac failed to converge after 100 iterations")
        absl.warning("something else")
    absl.warning("_compute_log_a_frac failed to converge after 100 iterations (after)")
    messages = [r.getMessage() for r in caplog.records]
    assert "something else" in messages
    assert not any("failed to converge" in m and "after)" not in m for m in messages)
    assert any(m.endswith("(after)") for m in messages)  # the filter is removed after


@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_privacy_noise_prints_no_absl_warnings(
    accountant: str, caplog: pytest.LogCaptureFixture
) -> None:
    """`privacy noise -q 0.5 -T 50` printed 127 absl lines before its answer."""
    with caplog.at_level(logging.WARNING):
        result = _run(
            "privacy", "noise", "--epsilon", "3", "--delta", "1e-5", "-q", "0.5", "-T", "50",
            "--accountant", accountant,
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.startswith("noise multiplier z = ")
    assert "absl" not in result.output and "failed to converge" not in result.output
    assert not [r for r in caplog.records if "failed to converge" in r.getMessage()]


@pytest.mark.parametrize("command", [["epsilon", "-z", "1e4"], ["noise", "--epsilon", "1e-6"]])
def test_privacy_at_a_tiny_rate_prints_no_absl_warnings(
    command: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """`privacy epsilon -z 1e4 -q 1e-9 -T 1 --accountant rdp` printed 58 lines of absl's
    "Negative Renyi divergence of -4e-24 ... Returning an epsilon of zero" (rounding
    noise at orders the library then counts as 0, which RDP is at least) above its
    one-line answer."""
    with caplog.at_level(logging.WARNING):
        result = _run(
            "privacy", *command, "--delta", "1e-5", "-q", "1e-9", "-T", "1",
            "--accountant", "rdp",
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 and "epsilon = " in result.stdout
    assert "Renyi" not in result.output
    assert not [r for r in caplog.records if "Renyi" in r.getMessage()]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["epsilon", "-z", "0", "-q", "0.5", "-T", "5", "--delta", "1e-5"], "'--noise-multiplier'"),
        (["epsilon", "-z", "1", "-q", "1.5", "-T", "5", "--delta", "1e-5"], "'--sample-rate'"),
        (["epsilon", "-z", "1", "-q", "0.5", "-T", "0", "--delta", "1e-5"], "'--rounds'"),
        (["noise", "--epsilon", "3", "--delta", "1", "-q", "0.5", "-T", "5"], "'--delta'"),
        (["noise", "--epsilon", "0", "--delta", "1e-5", "-q", "0.5", "-T", "5"], "'--epsilon'"),
    ],
)
def test_privacy_flags_out_of_range_name_the_flag(args: list[str], flag: str) -> None:
    assert flag in _one_line_error(_run("privacy", *args), 2)


def test_help_of_secagg_aggregate_shows_the_real_signature() -> None:
    parameters = inspect.signature(secagg.aggregate).parameters
    assert list(parameters)[:2] == ["updates", "backend"] and "dropped" in parameters
    text = pydoc.render_doc(secagg.aggregate)
    assert "(*args, **kwargs)" not in text and "updates" in text
    from secagg import aggregate  # the lazy attribute serves from-imports too

    assert aggregate is secagg.aggregate


# --- client and key holder -------------------------------------------------------------


@pytest.fixture
def branch_certs(tmp_path: Path) -> Path:
    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, "branch-a")
    return ca


def _client(certs: Path, server: str, *extra: str) -> Result:
    return _run(
        "client", "--server", server, "--name", "branch-a", "--certs", str(certs),
        "--dimension", "4", "--connect-timeout", "1", *extra,
    )  # fmt: skip


def _fail_with(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def run_branch(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr("secagg.runtime.launch.run_branch", run_branch)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("127.0.0.1", "has no port"),
        ("127.0.0.1:99999", "port 99999 is outside 1-65535"),
        ("127.0.0.1:0", "port 0 is outside 1-65535"),
        ("localhost:http", "is not a number"),
    ],
)
def test_client_refuses_a_server_address_without_a_valid_port(
    branch_certs: Path, server: str, message: str
) -> None:
    error = _one_line_error(_client(branch_certs, server), 2)
    assert "'--server'" in error and message in error


def test_client_that_cannot_reach_the_server_says_so_in_one_line(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()  # nothing listens there
    _fail_with(monkeypatch, NotConnected(f"cannot reach 127.0.0.1:{port} within 1 s"))
    error = _one_line_error(_client(branch_certs, f"127.0.0.1:{port}"), 1)
    assert error.startswith("secagg client: branch-a: cannot reach 127.0.0.1:")
    assert "refused" in error.lower()  # the probe names the cause: connection refused


def test_client_refused_by_the_server_says_why_and_that_retrying_will_not_help(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grpc = pytest.importorskip("grpc")
    from secagg.transport.grpc_transport import TransportClosed

    closed = TransportClosed(grpc.StatusCode.UNAUTHENTICATED, "client identity not accepted")
    _fail_with(monkeypatch, closed)
    error = _one_line_error(_client(branch_certs, "127.0.0.1:50999"), 1)
    assert "the server at 127.0.0.1:50999 refused branch-a: client identity not accepted" in error
    assert "retrying will not help" in error


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (SecAggError("gave up after 600 s without the server"), 1, "gave up after 600 s"),
        (OSError(28, "No space left on device"), 1, "No space left on device"),
        (ConfigurationError("branch-a: the federation's model has 1000 parameters"), 2, "1000"),
    ],
)
def test_client_turns_every_typed_error_into_one_line(
    branch_certs: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: BaseException,
    status: int,
    text: str,
) -> None:
    _fail_with(monkeypatch, error)
    assert text in _one_line_error(_client(branch_certs, "127.0.0.1:50999"), status)


@pytest.fixture
def other_ca_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A gRPC/mTLS server of the federation's CA ("fed"), and that CA's directory."""
    pytest.importorskip("grpc")
    from secagg.runtime.config import FederationConfig
    from secagg.runtime.launch import server_transport

    fed = tmp_path / "fed"
    devca.init_ca(fed)
    devca.issue_client(fed, "branch-a")
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "f", "clients": ["branch-a", "branch-b"], "dimension": 4},
            "server": {"bind": "127.0.0.1:0", "certificates": str(fed)},
        }
    )
    transport = server_transport(config)
    try:
        yield f"127.0.0.1:{transport.port}", fed
    finally:
        transport.stop(grace=None)


def _bundle(directory: Path, ca_from: Path, cert_from: Path) -> Path:
    """A branch's own bundle: ca.pem from one CA, branch-a's pair from another."""
    directory.mkdir()
    (directory / "ca.pem").write_bytes((ca_from / "ca.pem").read_bytes())
    for suffix in (".pem", ".key"):
        source = cert_from / "clients" / f"branch-a{suffix}"
        (directory / f"branch-a{suffix}").write_bytes(source.read_bytes())
    (directory / "branch-a.key").chmod(0o600)
    return directory


@pytest.mark.integration  # a gRPC server on 127.0.0.1
def test_a_tls_handshake_failure_is_named_not_called_unreachable(
    tmp_path: Path, other_ca_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branch whose certificates come from another CA was told "cannot reach": the
    server is up, and the TLS handshake is what failed. Both directions are named."""
    target, fed = other_ca_server
    other = tmp_path / "other"
    devca.init_ca(other)
    devca.issue_client(other, "branch-a")
    # what the transport may say for a failed handshake
    _fail_with(monkeypatch, NotConnected(f"cannot reach {target} within 1 s"))
    wrong_ca = _one_line_error(_client(other, target), 1)  # trusts another CA
    # in the transport's words (grpc_dial.certificate_failure_cause), naming the file
    assert (
        f"TLS handshake with {target} failed: the server's certificate is not signed by the "
        "CA in this party's ca.pem" in wrong_ca
    )
    assert str(other / "ca.pem") in wrong_ca
    assert "cannot reach" not in wrong_ca
    ours_refused = _bundle(tmp_path / "mixed", ca_from=fed, cert_from=other)
    refused = _one_line_error(_client(ours_refused, target), 1)
    assert f"TLS handshake with {target} failed: it closed the connection" in refused
    # inferred from one close: said as likely, with what else looks the same
    assert "most likely the server refused this party's certificate" in refused
    assert "a server stopping mid-handshake looks the same" in refused
    # with the federation's own certificates the handshake works: the message stays
    fine = _one_line_error(_client(fed, target), 1)
    assert f"cannot reach {target} within 1 s" in fine


@pytest.mark.integration  # a gRPC server on 127.0.0.1
def test_a_real_client_names_each_failure_and_does_not_retry_a_refusal(
    tmp_path: Path, other_ca_server: tuple[str, Path]
) -> None:
    """The whole path, no stand-ins: nothing listening, another CA, a revoked branch."""
    import time

    target, fed = other_ca_server
    nobody = _one_line_error(_client(fed, f"127.0.0.1:{free_port()}"), 1)
    assert "cannot reach 127.0.0.1:" in nobody and "refused" in nobody.lower()
    other = tmp_path / "other"
    devca.init_ca(other)
    devca.issue_client(other, "branch-a")
    started = time.monotonic()
    handshake = _one_line_error(_client(other, target, "--connect-timeout", "600"), 1)
    assert "TLS handshake" in handshake and "cannot reach" not in handshake
    # said at the first failed handshake: it waited out --connect-timeout before
    assert time.monotonic() - started < 120
    # this branch's certificate, which the server would refuse (TLS 1.3: after the
    # handshake, inferred from two closes): found in its own files before any dial,
    # with certainty, a mistake in its files (operator pass, 2026-12-04)
    ours_refused = _bundle(tmp_path / "mixed", ca_from=fed, cert_from=other)
    started = time.monotonic()
    refused = _one_line_error(_client(ours_refused, target, "--connect-timeout", "600"), 2)
    assert "would be refused by a server that trusts the ca.pem beside it" in refused
    assert "Invalid value for '--certs'" in refused and "cannot reach" not in refused
    assert time.monotonic() - started < 120
    devca.revoke(fed, "branch-a")
    started = time.monotonic()
    revoked = _one_line_error(_client(fed, target, "--connect-timeout", "60"), 1)
    assert f"the server at {target} refused branch-a" in revoked
    assert "retrying will not help" in revoked
    assert time.monotonic() - started < 50  # refused at once, not redialled for 60 s


@pytest.mark.parametrize(
    ("outcome", "status", "text"),
    [
        (
            "finished",
            0,
            "2 rounds completed, 0 aborted, 0 messages refused; the federation finished",
        ),
        ("rounds", 0, "2 rounds completed"),
        ("stopped", 1, "the federation stopped before it finished: quorum not reached in 600 s"),
    ],
)
def test_client_exit_status_follows_the_federations_end(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch, outcome: str, status: int, text: str
) -> None:
    from secagg.runtime.client import ClientStats

    stats = ClientStats(rounds_completed=2)
    stats.outcome, stats.end_reason = outcome, "quorum not reached in 600 s"

    def run_branch(*args: object, **kwargs: object) -> ClientStats:
        assert kwargs["give_up_after"] is None and kwargs["dimension"] == 4
        assert kwargs["idle_timeout"] == 900.0  # above the server's default quorum wait
        return stats

    monkeypatch.setattr("secagg.runtime.launch.run_branch", run_branch)
    result = _client(branch_certs, "127.0.0.1:50999", "--give-up-after", "inf")
    assert result.exit_code == status, result.output
    assert text in result.output and "Traceback" not in result.output


def test_client_summary_counts_rounds_whose_update_was_not_finite(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A branch whose training hook returns NaN under a clip sends the zero vector and the
    round goes on (edc32e9); the operator learnt of it only from a log line, while the
    exit summary said nothing of a trainer that is broken."""
    from secagg.runtime.client import ClientStats

    stats = ClientStats(rounds_completed=3, non_finite_updates=2)
    stats.outcome = "finished"
    monkeypatch.setattr("secagg.runtime.launch.run_branch", lambda *a, **k: stats)
    result = _client(branch_certs, "127.0.0.1:50999")
    assert result.exit_code == 0, result.output
    assert "3 rounds completed, 0 aborted, 2 with a non-finite update sent as zero, " in (
        result.output
    )


def test_a_federation_stopped_early_is_one_line_not_also_a_log_record(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's announcement that the federation stopped reached the branch's log as
    a WARNING ("branch-a: the server stopped the federation: ...") beside the command's
    own line saying the same (review, 2026-12-05). The branch's real loop and
    ``run_branch`` run; only the session is a stand-in that delivers the announcement."""
    from secagg.runtime.client import ClientStats, FederationClient
    from secagg.runtime.wire import FederationEnd, encode_message

    def serve(self: FederationClient, dial: object, **kwargs: object) -> ClientStats:
        self.reconnected(object())  # type: ignore[arg-type]  # run() receives nothing
        self.handle(encode_message(FederationEnd(3, False, "quorum not reached in 600 s")))
        return self.run()

    monkeypatch.setattr(FederationClient, "serve", serve)
    caplog.set_level(logging.INFO)
    error = _one_line_error(_client(branch_certs, "127.0.0.1:50999"), 1)
    assert error.endswith("the federation stopped before it finished: quorum not reached in 600 s")
    shown = [r.getMessage() for r in caplog.records if r.name.startswith("secagg")]
    assert not [m for m in shown if "quorum not reached" in m or "stopped" in m], shown


def test_keyholder_refuses_a_bad_server_address_and_names_a_refusal(
    branch_certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _run("keyholder", "--server", "127.0.0.1", "--name", "kh", "--certs", str(branch_certs))
    assert "'--server'" in _one_line_error(bad, 2)

    def refuse(*args: object, **kwargs: object) -> None:
        raise NotConnected("session closed (UNAUTHENTICATED): client identity not accepted")

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", refuse)
    result = _run("keyholder", "--server", "127.0.0.1:50999", "--name", "kh", "--certs", "x")
    assert "secagg keyholder: kh:" in _one_line_error(result, 1)


class _Session:
    """A key holder's stand-in session: delivers ``messages``, then silence."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = list(messages)

    def receive(self, timeout: float | None = None) -> bytes | None:
        return self.messages.pop(0) if self.messages else None

    def send(self, payload: bytes) -> None:
        raise AssertionError("nothing to answer")


@pytest.mark.parametrize(
    ("end", "status", "said"),
    [
        ((3, True, ""), 0, "branch-a: decrypted 0 sums; the federation finished"),
        (
            (3, False, "no quorum within 600 s"),
            1,
            "secagg keyholder: branch-a: decrypted 0 sums; the federation stopped before it "
            "finished: no quorum within 600 s",
        ),
        (
            None,
            1,
            "secagg keyholder: branch-a: decrypted 0 sums; the server was silent for 600 s: "
            "giving up (the federation's end was not announced)",
        ),
    ],
)
def test_keyholder_exit_status_follows_the_federations_end(
    branch_certs: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    end: tuple[int, bool, str] | None,
    status: int,
    said: str,
) -> None:
    """``secagg keyholder`` printed "decrypted N sums" and exited 0 when the server
    stopped the federation early, or fell silent without announcing an end, where
    ``secagg client`` and ``secagg server`` exit 1 with the reason (review, 2026-12-06).
    The key holder's real loop and ``run_key_holder`` run; only the session is a
    stand-in that delivers the announcement (or nothing)."""
    from secagg.runtime.keyholder import KeyHolderService
    from secagg.runtime.wire import FederationEnd, encode_message

    messages = [] if end is None else [encode_message(FederationEnd(*end))]

    def serve(self: KeyHolderService, dial: object, **kwargs: object) -> int:
        self._transport = _Session(messages)  # type: ignore[assignment]
        return self.run(idle_timeout=kwargs["idle_timeout"])  # type: ignore[arg-type]

    monkeypatch.setattr(KeyHolderService, "serve", serve)
    caplog.set_level(logging.INFO)
    result = _run(
        "keyholder", "--server", "127.0.0.1:50999", "--name", "branch-a",
        "--certs", str(branch_certs), "--backend", "ckks", "--idle", "600",
    )  # fmt: skip
    if status == 0:
        assert result.exit_code == 0, result.output
        assert result.output.strip() == said
    else:
        assert _one_line_error(result, status) == said
    # the verdict is said once, by the command, not also as a log record
    shown = [r.getMessage() for r in caplog.records if r.name.startswith("secagg")]
    assert not [m for m in shown if "quorum" in m or "stopped" in m or "silent" in m], shown


def test_keyholder_idle_takes_inf_for_a_server_that_waits_long_for_its_branches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server started with a --wait above the key holder's idle timer says nothing to
    it before round 1, and the key holder left; --idle inf was refused as not finite."""
    from secagg.runtime.keyholder import KeyHolderRun

    seen: dict[str, object] = {}

    def record(*args: object, **kwargs: object) -> KeyHolderRun:
        seen.update(kwargs)
        return KeyHolderRun(0, "finished")

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", record)
    common = ("keyholder", "--server", "127.0.0.1:50999", "--name", "kh", "--certs", "x")
    result = _run(*common, "--backend", "ckks", "--idle", "inf")
    assert result.exit_code == 0, result.output
    assert seen["idle_timeout"] == float("inf")
    assert "'--idle'" in _one_line_error(_run(*common, "--idle", "0"), 2)  # still positive


# --- simulate: messages name what the user typed -----------------------------------------


def _simulate(*args: str) -> Result:
    return _run("simulate", "--quiet", *args)


def test_a_csv_without_label_names_the_flag(tmp_path: Path) -> None:
    error = _one_line_error(_simulate("--data", "csv", "--path", str(tmp_path / "t.csv")), 2)
    assert "--label is required with --data csv" in error
    wrong = _one_line_error(_simulate("--label", "is_fraud"), 2)
    assert "--label is read only with --data csv" in wrong


def test_a_simulation_file_names_its_keys(tmp_path: Path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text('[privacy]\nepsilon = "three"\n')
    error = _one_line_error(_simulate("--config", str(config)), 2)
    assert "[privacy] epsilon must be a number, not 'three'" in error
    config.write_text('[data]\nsource = "csv"\npath = "t.csv"\n')
    missing = _one_line_error(_simulate("--config", str(config)), 2)
    assert "--label is required with data.source = 'csv'" in missing
    config.write_text('[simulation]\nbranches = 3\n[data]\nalpha = "0.5"\n')
    assert "[data] alpha must be a number" in _one_line_error(_simulate("--config", str(config)), 2)


def test_a_non_empty_out_says_to_pass_out(tmp_path: Path) -> None:
    used = tmp_path / "tty-run"
    used.mkdir()
    (used / "report.md").write_text("a run")
    config = tmp_path / "config.toml"
    config.write_text(f'[simulation]\nout = "{used}"\n')
    from_file = _one_line_error(_simulate("--config", str(config)), 2)
    assert f"out in {config}) is not empty: pass --out NEW-FOLDER" in from_file
    from_flag = _one_line_error(_simulate("--out", str(used)), 2)
    assert f"--out {used} is not empty" in from_flag


# --- install and docs (newcomer review 3 and 9) -----------------------------------------


def _extra(name: str, extras: dict[str, list[str]]) -> set[str]:
    """Every requirement name an extra pulls in, its nested ``secagg[...]`` included."""
    names: set[str] = set()
    for requirement in extras[name]:
        nested = re.fullmatch(r"secagg\[([a-z,]+)\]", requirement)
        if nested:
            for inner in nested.group(1).split(","):
                names |= _extra(inner, extras)
        else:
            names.add(re.split(r"[<>=\[ ]", requirement)[0])
    return names


def test_the_main_jobs_extra_pulls_no_test_tools() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    run = _extra("run", extras)
    assert {"torch", "opacus", "tenseal", "matplotlib", "rich"} <= run
    assert not run & {"pytest", "hypothesis", "ruff", "pytest-benchmark", "import-linter"}
    assert {"pytest", "hypothesis", "ruff", "import-linter", "torch"} <= _extra("all", extras)


def test_readme_set_up_installs_cpu_torch_and_ci_runs_its_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up")[1].split("## ")[0]
    cpu = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in setup and setup.index(cpu) < setup.index('pip install -e ".[run]"')
    assert 'pip install -e ".[run]" && secagg simulate' in setup
    test_command = 'pip install -e ".[all,peers]" && python -m pytest'
    assert test_command in setup and test_command in (ROOT / ".ci" / "run").read_text()
    # both commands' measured times (newcomer review 9)
    assert re.search(r"`secagg simulate` takes about \d+ minutes?\b", setup), setup
    assert re.search(r"the test suite about \d+ minutes?\b", setup), setup
    assert "secagg-runs/" in (ROOT / ".gitignore").read_text().splitlines()


def test_readme_lists_every_command() -> None:
    table = (ROOT / "README.md").read_text().split("## Commands")[1].split("\n## ")[0]
    for name in main.commands:
        assert f"`secagg {name}" in table, name
    assert "`secagg keyholder " in table and "`secagg keyholder-init " in table


@pytest.mark.parametrize("command", ["client", "keyholder"])
def test_readme_names_every_party_option(command: str) -> None:
    """The README's rows for the long-running parties (`secagg client`, `secagg
    keyholder`) named their policy flags but none of their connection flags
    (--certs, --server-name, --idle, --connect-timeout, ...): an operator reading
    the table could not learn how to point a branch at its certificates or bound
    its waits without ``--help``."""
    table = (ROOT / "README.md").read_text().split("## Commands")[1].split("\n## ")[0]
    row = next(line for line in table.splitlines() if line.startswith(f"| `secagg {command} "))
    flags = {opt for param in main.commands[command].params for opt in param.opts}
    named = set(re.findall(r"--[a-z][a-z-]*", row))
    missing = sorted(flag for flag in flags if flag.startswith("--") and flag not in named)
    assert not missing, missing
