"""The front door as a newcomer meets it (README, docs, examples and the commands they
show): figures the guides print agree with the code, and the mistakes a first user makes
are one line naming the flag (front-door audit, 2026-12-05)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.dp import accounting

ROOT = Path(__file__).resolve().parents[2]

_NUMBERS = {
    "six": 6,
    "eight": 8,
    "ten": 10,
    "twelve": 12,
    "sixteen": 16,
    "twenty": 20,
    "forty-eight": 48,
}


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line(result: Result, status: int) -> str:
    """The single line a mistake prints, after checking the exit status."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def _epsilon(z: float, rounds: int, delta: float = 1e-5) -> float:
    """The accountant's epsilon for ``z`` over ``rounds`` rounds at q = 1 (what
    ``secagg privacy epsilon`` prints, before its rounding up)."""
    return accounting.epsilon(z, 1.0, rounds, delta, "pld")


# --- figures in the guides ------------------------------------------------------------


def test_the_walkthroughs_count_the_public_worlds_the_prior_is_fitted_on() -> None:
    """examples/bank_fraud/README.md said the prior is fitted on six other synthetic
    worlds; the simulator fits it on ``PUBLIC_WORLDS`` (48), as README.md says."""
    from secagg.apps.simulation.runner import PUBLIC_WORLDS

    pages = {
        "README.md": r"fitted without privacy on ([\w-]+) other",
        "examples/bank_fraud/README.md": r"fitted on ([\w-]+) other synthetic worlds",
    }
    for page, pattern in pages.items():
        text = " ".join((ROOT / page).read_text().split())
        found = re.findall(pattern, text)
        assert found, page
        assert {_NUMBERS[word] for word in found} == {PUBLIC_WORLDS}, (page, found)


def test_the_audit_guides_accountant_bounds_never_read_below_the_accountant() -> None:
    """docs/audit.md's empirical table gave the accountant's bound for z = 5 as 2.59, and
    held the run without noise to "2.59": the accountant's epsilon is 2.5944, so the
    figure was rounded toward less privacy spent. Each one shown is at least the
    accountant's (the command prints it rounded up: 2.595)."""
    text = (ROOT / "docs" / "audit.md").read_text()
    section = text.split("## `secagg audit empirical`")[1]
    assert "10 rounds" in section and "delta = 1e-5" in section
    rows = {
        float(cells[0]): float(cells[3])
        for line in section.splitlines()
        if re.match(r"\| \d+ \|", line)
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert set(rows) == {5.0, 10.0}, rows
    for z, shown in rows.items():
        assert shown >= _epsilon(z, 10), (z, shown)
    (claim,) = re.findall(r"--seed 0 --claimed-epsilon ([\d.]+)\s+# FAIL", section)
    (said,) = re.findall(r"the epsilon of z = 5 \(([\d.]+)\)", " ".join(section.split()))
    assert claim == said and float(claim) >= _epsilon(5, 10), (claim, said)


def test_the_deployment_guides_epsilons_never_read_below_the_accountant() -> None:
    """docs/deployment.md's config comment said z = 1.1 "would give 47" over 50 rounds at
    q = 1; the accountant gives 47.31, so the figure flattered the plan."""
    text = " ".join((ROOT / "docs" / "deployment.md").read_text().replace("#", " ").split())
    (at_five,) = re.findall(r"ε ≈ ([\d.]+) after 50 rounds at q = 1", text)
    (at_one_one,) = re.findall(r"z = 1\.1 would give ([\d.]+):", text)
    assert "-z 5 -q 1 -T 50 --delta 1e-5" in text
    assert float(at_five) >= _epsilon(5.0, 50), at_five
    assert float(at_one_one) >= _epsilon(1.1, 50), at_one_one


# --- the commands' mistakes -------------------------------------------------------------


@pytest.mark.parametrize("command", ["epsilon", "noise"])
def test_privacy_commands_refuse_a_delta_of_one_over_the_clients_or_more(command: str) -> None:
    """``privacy epsilon -z 1 -q 1 -T 10 --delta 0.5 --clients 3`` printed epsilon 4.03 as
    what a federation of 3 claims, at a delta the federation's config refuses (below
    1/N is required: at 1/N the guarantee allows releasing one client's data)."""
    plan = ["-q", "1", "-T", "10", "--clients", "3"]
    figure = ["-z", "1"] if command == "epsilon" else ["--epsilon", "3"]
    for delta in ("0.5", "0.34"):
        line = _one_line(_run("privacy", command, *figure, *plan, "--delta", delta), 2)
        assert "'--delta'" in line and "1 / --clients = 1/3" in line, line
    fine = _run("privacy", command, *figure, *plan, "--delta", "0.3")
    assert fine.exit_code == 0, fine.output
    # without --clients no federation is meant: the Poisson figure is printed as before
    alone = _run("privacy", command, *figure, "-q", "1", "-T", "10", "--delta", "0.5")
    assert alone.exit_code == 0, alone.output


def _config(path: Path, backend: str) -> Path:
    holder = '\nkey_holder = "compliance"' if backend == "ckks" else ""
    path.write_text(
        '[federation]\nname = "f"\nclients = ["b1", "b2", "b3"]\ndimension = 4\n'
        f'[backend]\nname = "{backend}"\nvalue_bound = 1.0{holder}\n'
    )
    return path


def test_keyholder_checks_its_name_and_the_backend_against_the_config_before_dialling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``secagg keyholder --config ckks.toml --name branch-001`` (the config names
    ``compliance``) dialled for 30 s and exited 1 after four log lines, though the server
    admits no other name as its key holder; with a masking config it said ``the secagg+
    backend has no helper to configure``. Both are now one line naming the flag, exit 2,
    before anything is dialled."""

    def dial(*args: object, **kwargs: object) -> object:
        raise AssertionError("dialled despite a mistake in the options")

    monkeypatch.setattr("secagg.runtime.launch.run_key_holder", dial)
    ckks = _config(tmp_path / "ckks.toml", "ckks")
    common = ("keyholder", "--server", "127.0.0.1:50999", "--certs", str(tmp_path))
    line = _one_line(_run(*common, "--name", "b1", "--config", str(ckks)), 2)
    assert line == (
        f"secagg keyholder: --name b1 is not this federation's key holder: --config {ckks} "
        "names 'compliance' ([backend] key_holder), the only name its server admits as one"
    ), line
    masking = _config(tmp_path / "masking.toml", "secagg+")
    line = _one_line(_run(*common, "--name", "compliance", "--config", str(masking)), 2)
    assert line == f"secagg keyholder: --config {masking}: the secagg+ backend has no key holder"
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [[[")
    line = _one_line(_run(*common, "--name", "compliance", "--config", str(bad)), 2)
    assert line.startswith(f"secagg keyholder: --config {bad} is not valid TOML"), line


def test_server_config_mistakes_name_the_flag_and_the_file_once(tmp_path: Path) -> None:
    """``secagg server --config x.csv`` said ``secagg server: x.csv: x.csv is not valid
    TOML``: the file twice and the flag not at all."""
    table = tmp_path / "branches.csv"
    table.write_text("a,b\n1,2\n")
    line = _one_line(_run("server", "--config", str(table)), 2)
    assert line.startswith(f"secagg server: --config {table} is not valid TOML:"), line
    assert line.count(str(table)) == 1, line
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    line = _one_line(_run("server", "--config", str(empty)), 2)
    assert line == f"secagg server: --config {empty}: [federation] lacks name, clients, dimension"


def test_keyholder_init_names_a_folder_given_as_the_key(tmp_path: Path) -> None:
    """``keyholder-init --key DIR`` said ``--key DIR exists; a new key would orphan every
    pin``, as if a key were there."""
    ckks = _config(tmp_path / "ckks.toml", "ckks")
    folder = tmp_path / "keys"
    folder.mkdir()
    line = _one_line(_run("keyholder-init", "--config", str(ckks), "--key", str(folder)), 2)
    assert (
        line == f"secagg keyholder-init: --key {folder} is a folder: give the key file's path in it"
    )
    assert list(folder.iterdir()) == []


def test_bench_grpc_shows_a_warning_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """``secagg bench grpc --quick`` printed its federation's PrivacyCostWarning in
    Python's form: the source path, then the line of code under it (``return
    DPConfig(``). It is one line naming the command and the warning's kind."""
    import warnings

    from secagg.dp.config import PrivacyCostWarning

    def run_benchmark(**grid: object) -> dict[str, object]:
        warnings.warn(PrivacyCostWarning("the plan spends\n  epsilon = 4.38"), stacklevel=1)
        return {"benchmark": "grpc"}

    monkeypatch.setattr("secagg.apps.bench.grpc.run_benchmark", run_benchmark)
    result = _run("bench", "grpc", "--quick")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "secagg bench grpc: warning: PrivacyCostWarning: the plan spends epsilon = 4.38"
    ], result.stderr
    assert '"benchmark": "grpc"' in result.stdout


def test_a_hook_module_python_cannot_find_is_named_with_where_it_looks(tmp_path: Path) -> None:
    """The bank-fraud example said ``cd examples/bank_fraud`` and then ``secagg client
    --hook dpsgd_hook:make_hook``, which ended ``cannot load hook ...: No module named
    'dpsgd_hook'``: an installed script does not import from the current folder. The
    line now names ``--hook`` and PYTHONPATH, and the example sets PYTHONPATH."""
    common = ("client", "--server", "127.0.0.1:9", "--name", "b1", "--certs", str(tmp_path))
    line = _one_line(_run(*common, "--dimension", "4", "--hook", "no_such_hook_xyz:make"), 2)
    assert "'--hook'" in line and "no module 'no_such_hook_xyz'" in line, line
    assert "PYTHONPATH" in line, line
    # a module Python finds gets past the flag (to the certificates, absent here)
    found = _run(*common, "--dimension", "4", "--hook", "json:loads")
    assert "'--hook'" not in found.output, found.output
    example = ROOT / "examples" / "bank_fraud"
    docstring = (example / "dpsgd_hook.py").read_text().split('"""')[1]
    (folder,) = re.findall(r"PYTHONPATH=(\S+)", docstring)
    assert (ROOT / folder / "dpsgd_hook.py").is_file(), folder
    assert "cd examples/bank_fraud" not in docstring


def test_audit_names_a_private_key_or_a_certificate_given_as_the_public_key(
    tmp_path: Path,
) -> None:
    """``audit verify LEDGER --pubkey <state>.ledger-key`` (the server's private key, beside
    the ``.pub`` it exports) said ``Valid PEM but no BEGIN PUBLIC KEY/END PUBLIC KEY
    delimiters. Are you sure this is a public key?``; another file added the crypto
    library's FAQ link. Each is now one line saying what the file is and which to ask for."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from secagg.apps import devca

    private = tmp_path / "server.sqlite.ledger-key"
    private.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    devca.init_ca(tmp_path / "certs")
    ledger = tmp_path / "server.sqlite.ledger"
    ledger.write_bytes(b"")  # never read: the key is refused first
    for key, what in (
        (private, "is a private key, which stays with the operator"),
        (tmp_path / "certs" / "ca.pem", "is a TLS certificate, not the ledger's key"),
    ):
        line = _one_line(_run("audit", "verify", str(ledger), "--pubkey", str(key)), 2)
        assert f"'--pubkey': {key} {what}: pass the ledger's public key" in line, line
        assert "ledger.pub.pem" in line and "Are you sure" not in line, line
    garbled = tmp_path / "notes.txt"
    garbled.write_text("not a key\n")
    line = _one_line(_run("audit", "verify", str(ledger), "--pubkey", str(garbled)), 2)
    assert "'--pubkey'" in line and "https://" not in line, line


def test_audit_empirical_refuses_canaries_past_the_memory_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``audit empirical --canaries 100000000`` (within its range: at least 2) ended in a
    47-line MemoryError traceback. Past the machine's memory it is refused before the
    run; a run that still runs out of memory is one line naming the flag."""

    def out_of_memory(**kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr("secagg.apps.audit.empirical.run_canary_audit", out_of_memory)
    monkeypatch.setattr("secagg.apps.cli_types.memory_limit", lambda: 2**30)
    line = _one_line(_run("audit", "empirical", "--canaries", "100000"), 2)
    assert "'--canaries'" in line and "more than the 1.0 GiB this machine has" in line, line
    line = _one_line(_run("audit", "empirical", "--canaries", "400"), 2)
    assert line == "Error: Invalid value for '--canaries': 400 canaries ran out of memory", line


def test_a_round_of_more_clients_than_a_client_joins_is_one_line() -> None:
    """``secagg round --clients 1000000 --dim 1000`` (within --clients' range and the
    memory) ended in a 40-line PolicyRefused traceback: the in-memory clients keep the
    default policy, which joins rounds of at most DEFAULT_MAX_CLIENTS."""
    from secagg.protocol.config import DEFAULT_MAX_CLIENTS

    line = _one_line(_run("round", "--clients", str(DEFAULT_MAX_CLIENTS + 1), "--dim", "1"), 2)
    assert line.startswith("Error: Invalid value for '--clients': 100001 is more than"), line


def test_the_sampled_examples_noise_figures_never_read_above_the_calibration() -> None:
    """examples/many_participants_sampled.toml compared z = 4.17 (q = 0.3) with "4.40 at
    q = 1": the calibration for epsilon 3 over 10 rounds at q = 1 is 4.3976, so 4.40
    showed more noise than runs. A noise figure is rounded down."""
    import json

    text = " ".join(
        line.lstrip("# ")
        for line in (ROOT / "examples" / "many_participants_sampled.toml").read_text().splitlines()
    )
    (sampled, full) = re.findall(r"z = ([\d.]+) instead of ([\d.]+) at q = 1", text)[0]
    plan = ["privacy", "noise", "--epsilon", "3", "--delta", "1e-5", "-T", "10", "--json"]
    for shown, rate in ((sampled, "0.3"), (full, "1")):
        result = _run(*plan, "-q", rate, "--clients", "1000")
        assert result.exit_code == 0, result.output
        calibrated = json.loads(result.stdout)["noise_multiplier"]
        assert float(shown) <= calibrated, (rate, shown, calibrated)


def test_the_walkthroughs_feature_statistics_epsilon_never_reads_below_the_accountant() -> None:
    """examples/bank_fraud/README.md gave the secure feature statistics' epsilon as 0.62;
    the release (z = 10 per block, one Gaussian at z / sqrt(3)) spends 0.6200045 at
    delta = 1e-5, which the run prints rounded up, 0.621."""
    from secagg.apps.simulation.feature_stats import MomentRelease

    text = " ".join((ROOT / "examples" / "bank_fraud" / "README.md").read_text().split())
    (shown,) = re.findall(r"z = 10 per block, .*?ε ≈ ([\d.]+) alone at δ = 1e-5", text)
    spent = MomentRelease(bound=5.0, features=1, noise_multiplier=10.0).epsilon(1e-5, "pld")
    assert float(shown) >= spent, (shown, spent)
