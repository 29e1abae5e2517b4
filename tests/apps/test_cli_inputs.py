"""Inputs that slipped past the command line's checks (CLI audit of 2026-12-03): files
that are not UTF-8, NaN and infinity through range checks, a policy value where a table
belongs. Each is one line naming the flag or file, exit status 2, and no traceback."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.apps.cli import main
from secagg.errors import SecAggError

LATIN1 = b'[federation]\nname = "caf\xe9"\n'


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _usage_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, SecAggError | OSError | UnicodeError), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output  # one line: no click "Usage:" / "Try ..." preamble
    return lines[0]


def _client(*extra: str) -> tuple[str, ...]:
    base = ("client", "--server", "127.0.0.1:9", "--name", "b", "--certs", ".")
    return (*base, "--dimension", "3", *extra)


@pytest.mark.parametrize(
    "command",
    [
        ("simulate", "--config", "{f}"),
        ("audit", "verify", "{f}", "--config", "{f}"),
        ("keyholder-init", "--config", "{f}", "--key", "{d}/k.key"),
        _client("--policy", "{f}"),
    ],
)
def test_a_config_that_is_not_utf8_is_named_not_a_traceback(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Before: UnicodeDecodeError with a traceback from every TOML reader."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(LATIN1)
    args = [part.format(f=path, d=tmp_path) for part in command]
    result = _run(*args)
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, UnicodeError), result.exception
    assert f"{path} is not UTF-8 text (byte 24)" in result.output


def test_the_server_names_a_config_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(LATIN1)
    result = _run("server", "--config", str(path))
    assert result.exit_code == 2, result.output
    assert "is not UTF-8 text" in result.output and "Traceback" not in result.output


def test_a_utf8_byte_order_mark_is_read_as_utf8(tmp_path: Path) -> None:
    from secagg.apps.simulation.config import SimulationConfig

    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[simulation]\nrounds = 2\n")
    assert SimulationConfig.load(path).rounds == 2


def test_a_policy_value_where_the_table_belongs_is_named(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text("branch = [1, 2]\n")
    result = _run(*_client("--policy", str(path)))
    assert "branch must be a table ([branch]), not a value" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (_client("--connect-timeout", "nan"), "--connect-timeout"),
        (_client("--give-up-after", "nan"), "--give-up-after"),
        (_client("--idle", "nan"), "--idle"),
        (("keyholder", "--idle", "-1"), "--idle"),
        (("keyholder", "--idle", "nan"), "--idle"),
        (("audit", "empirical", "-z", "nan"), "--noise-multiplier"),
        (("audit", "empirical", "-z", "-1"), "--noise-multiplier"),
        (("audit", "empirical", "--claimed-epsilon", "nan"), "--claimed-epsilon"),
        (("audit", "empirical", "--claimed-epsilon", "-1"), "--claimed-epsilon"),
        (("audit", "empirical", "--canaries", "1"), "--canaries"),
        (("audit", "empirical", "--delta", "0"), "--delta"),
        (("simulate", "--learning-rate", "inf"), "--learning-rate"),
        (("simulate", "--epsilon", "nan"), "--epsilon"),
        (("params", "--clients", "10", "--corrupt", "nan"), "--corrupt"),
        (("round", "--dim", "10", "--dropout", "nan"), "--dropout"),
        (("privacy", "epsilon", "-z", "nan", "-q", "1", "-T", "3"), "--noise-multiplier"),
    ],
)
def test_nan_and_infinity_are_refused_naming_the_flag(args: tuple[str, ...], flag: str) -> None:
    """Every comparison with NaN is false, so click's ranges let it through: a branch hung
    on --connect-timeout nan, and the audit printed CONSISTENT for -z nan (exit 0)."""
    error = _usage_error(_run(*args))
    assert flag in error, error


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf", "x"])
@pytest.mark.parametrize("command", ["client", "keyholder"])
def test_a_bad_connect_timeout_is_one_line_naming_the_flag(command: str, value: str) -> None:
    """``secagg keyholder --connect-timeout`` (review, 2026-12-05: only ``secagg
    client`` had it) takes what the client's takes: seconds > 0, finite, a number."""
    flag = ("--connect-timeout", value)
    keyholder = ("keyholder", "--server", "127.0.0.1:9", "--name", "h", *flag)
    error = _usage_error(_run(*(_client(*flag) if command == "client" else keyholder)))
    assert "Invalid value for '--connect-timeout'" in error, error


def test_infinity_stays_allowed_where_the_help_offers_it() -> None:
    from secagg.apps.cli import client

    options = {option.name: option for option in client.params}
    for name in ("give_up_after", "idle"):
        assert options[name].type.convert("inf", None, None) == float("inf")


def test_a_refused_server_init_leaves_no_state_ledger_or_key(tmp_path: Path) -> None:
    """Before: CA certificate not found (exit 2), yet the state, its ledger and a new
    ledger signing key had been created."""
    config = tmp_path / "federation.toml"
    config.write_text(
        '[federation]\nname = "fed"\nclients = ["b1", "b2", "b3"]\ndimension = 10\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{tmp_path / "st.sqlite"}"\ncertificates = "{tmp_path / "none"}"\n'
    )
    result = _run("server", "--config", str(config), "--init", "--wait", "1")
    assert result.exit_code == 2, result.output
    assert "CA certificate not found" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["federation.toml"]


def test_a_model_too_large_for_a_round_is_a_config_error() -> None:
    from secagg.errors import ConfigurationError
    from secagg.runtime.config import FederationConfig

    with pytest.raises(ConfigurationError, match=r"federation\.dimension 100000000000 is above"):
        FederationConfig.from_dict(
            {"federation": {"name": "f", "clients": ["a", "b"], "dimension": 10**11}}
        )


def test_a_simulation_that_fails_on_its_data_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    data = tmp_path / "empty.csv"
    data.write_text("")
    out = tmp_path / "run"
    result = _run(
        "simulate", "--data", "csv", "--path", str(data), "--label", "y", "--out", str(out)
    )
    assert _usage_error(result).endswith(f"{data} is empty")
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    result = _run(
        "simulate", "--data", "csv", "--path", str(data), "--label", "y", "--out", str(kept)
    )
    assert result.exit_code == 2 and kept.is_dir()  # a folder the user made stays


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (("bench", "masking", "--n", "0", "--d", "10"), "--n"),
        (("bench", "masking", "--d", "0"), "--d"),
        (("bench", "masking", "--dropout", "1.5"), "--dropout"),
        (("bench", "dp", "--d", "0"), "--d"),
        (("bench", "dp", "--runs", "0"), "--runs"),
        (("bench", "ckks", "--n", "0"), "--n"),
        (("bench", "ckks", "--d", "100000000000"), "--d"),
        # CKKS has no parameters for 10^8 clients at its precision: HEParameterError
        # traceback before; so does SecAgg+ past 10^6 clients, and 10^7 x 10^8 float64
        # updates were a MemoryError
        (("bench", "ckks", "--n", "100000000", "--d", "1", "--backend", "ckks"), "--n"),
        (("bench", "ckks", "--n", "2000000", "--d", "1", "--backend", "secagg+"), "--n"),
        (("bench", "ckks", "--n", "10000000", "--d", "100000000", "--backend", "plain"), "--n"),
        (("bench", "grpc", "--clients", "0"), "--clients"),
        (("bench", "grpc", "--processes", "0"), "--processes"),
        (("bench", "grpc", "--rounds", "0"), "--rounds"),
        (("bench", "grpc", "--clients", "3", "--processes", "50"), "--processes"),
        # no plan before the work: 10^9 certificates were issued one by one, and the
        # scale benchmark started a 10^9-client cell (each ran for hours)
        (("bench", "grpc", "--clients", "1000000000", "--processes", "1"), "--clients"),
        (("bench", "scale", "--n", "1000000000"), "--n"),
        (("round", "--clients", "5", "--dim", "100000000000"), "--dim"),
        (("bench", "masking", "--quick", "--out", "/nonexistent/dir/x.json"), "--out"),
        (("bench", "papers", "--quick", "--out", "/nonexistent/nope"), "--out"),
    ],
)
def test_benchmark_and_round_sizes_out_of_range_name_the_flag(
    args: tuple[str, ...], flag: str
) -> None:
    """Each was a traceback (ZeroDivisionError, MemoryError, ValueError), some only after
    the whole benchmark had run."""
    assert flag in _usage_error(_run(*args))


def test_values_the_accountant_cannot_compute_with_are_one_line() -> None:
    args = ("privacy", "epsilon", "-z", "1e-10", "-q", "0.01")
    error = _usage_error(_run(*args, "-T", "10", "--delta", "1e-5"))
    assert "the pld accountant cannot compute with these values" in error


def test_a_noise_multiplier_whose_square_underflows_is_an_infinite_epsilon() -> None:
    """z = 1e-300 at q = 1 was a usage error (the accountant's solver failed); it is no
    noise at all, and the honest figure is an infinite epsilon (DP review, 2026-12-06),
    as the RDP accountant already said."""
    result = _run("privacy", "epsilon", "-z", "1e-300", "-q", "1", "-T", "10", "--delta", "1e-5")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("epsilon = inf at delta = 1e-05"), result.output


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (("epsilon", "-z", "0.01", "-q", "0.1"), "'--noise-multiplier' / '-z'"),
        (("epsilon", "-z", "0.003", "-q", "0.5"), "'--noise-multiplier' / '-z'"),
        # 1e300 drove it there; now refused past 10^6 (MAX_EPSILON), the largest target
        (("noise", "--epsilon", "1e6", "-q", "0.1"), "'--epsilon'"),
        (("noise", "--epsilon", "1", "-q", "1e-300"), "'--epsilon'"),
        # RDP is loose at a tiny q (27 at z = 0.1, one round): the subsampling bound tells
        (("noise", "--epsilon", "8", "-q", "1e-9"), "'--epsilon'"),
        (("noise", "--epsilon", "1e-6", "-q", "1e-9"), "'--epsilon'"),
    ],
)
def test_pld_below_its_smallest_noise_at_q_below_1_is_refused_at_once(
    command: tuple[str, ...], flag: str
) -> None:
    """These ran for minutes to hours and took gigabytes (-z 0.003: 20 GB before it was
    killed; --epsilon 1e300 drove the calibration there): one PLD evaluation of a sampled
    Gaussian grows as 1/z^2. Now one line naming the flag, before any PLD work."""
    started = time.monotonic()
    error = _usage_error(_run("privacy", *command, "-T", "10", "--delta", "1e-5"))
    assert time.monotonic() - started < 10
    assert flag in error and "--accountant rdp" in error


@pytest.mark.parametrize(
    "command", [("noise", "--epsilon", "10"), ("noise", "--epsilon", "1e6"), ("epsilon", "-z", "1")]
)
def test_more_rounds_than_pld_can_compose_is_one_line_naming_the_rounds(
    command: tuple[str, ...],
) -> None:
    """`privacy noise --epsilon 10 -q 0.5 -T 1000000000` said "epsilon 10 is unreachable:
    even noise_multiplier 10000 spends inf" (RDP: z = 8494), and `privacy
    epsilon` answered in the library's words (accountant='rdp'), naming no flag. Now
    one line naming -T and the way out, before any PLD of that size is built."""
    plan = ("-q", "0.5", "-T", "1000000000", "--delta", "1e-5")
    started = time.monotonic()
    error = _usage_error(_run("privacy", *command, *plan))
    assert time.monotonic() - started < 10
    assert "'--rounds' / '-T'" in error and "--accountant rdp" in error
    assert "unreachable" not in error and "accountant='rdp'" not in error
    assert _run("privacy", *command, *plan, "--accountant", "rdp").exit_code == 0


def test_one_round_larger_than_pld_holds_names_the_noise_multiplier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other size refusal, one round's PLD (reached here with a lowered limit; the
    real one starts below the -z floor of 0.1): -z and --accountant rdp, not the
    library's accountant='rdp'."""
    import secagg.dp.pld_composition as pld_composition

    monkeypatch.setattr(pld_composition, "MAX_PLD_POINTS", 1 << 10)
    plan = ("-q", "0.5", "-T", "1", "--delta", "1e-5")
    error = _usage_error(_run("privacy", "epsilon", "-z", "0.5", *plan))
    assert "'--noise-multiplier' / '-z'" in error and "--accountant rdp" in error
    assert "accountant='rdp'" not in error


@pytest.mark.parametrize(
    ("command", "accountant"),
    [
        (("epsilon", "-z", "1e-300", "-q", "0.1"), "rdp"),
        (("epsilon", "-z", "1e-300", "-q", "0.1"), "pld"),
    ],
)
def test_the_accountants_arithmetic_faults_are_one_line(
    command: tuple[str, ...], accountant: str
) -> None:
    """RDP at z = 1e-300 raised ZeroDivisionError (a traceback, exit 1), and PLD at
    q < 1 printed numpy's RuntimeWarning and its source line above the error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _run(
            "privacy", *command, "-T", "10", "--delta", "1e-5", "--accountant", accountant
        )
    error = _usage_error(result)
    assert f"the {accountant} accountant cannot compute with these values" in error
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    assert ("try --accountant rdp" in error) == (accountant == "pld")


@pytest.mark.parametrize("command", ["init", "issue", "revoke"])
def test_a_certificate_folder_that_is_a_file_is_named(tmp_path: Path, command: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    args = ["certs", command] + ([] if command == "init" else ["branch-1"]) + ["--dir", str(afile)]
    error = _usage_error(_run(*args))
    assert str(afile) in error
    assert "--dir" in error or error.startswith(f"Error: no CA in {afile}")


def test_simulate_refuses_dp_flags_on_a_run_without_dp() -> None:
    """It ran without DP and exited 0, its table read as a DP run's."""
    for flag, value in (("--epsilon", "3"), ("--noise-multiplier", "2")):
        error = _usage_error(_run("simulate", "--mechanism", "off", flag, value))
        assert error.startswith(f"Error: {flag} is read only with a DP mechanism")


def test_audit_report_prints_its_verdict_on_the_terminal(tmp_path: Path) -> None:
    """A tampered ledger's report printed only the file names (exit 0), the FAILED
    being inside the markdown."""
    import sqlite3

    from _ledgers import ledger_row, write_ledger

    from secagg.ledger import export_public_key

    path, key = write_ledger(tmp_path / "l.sqlite", [ledger_row(n, None, None) for n in (1, 2, 3)])
    pem = export_public_key(key.public_key, tmp_path / "l.pub")
    args = ["audit", "report", str(path), "--pubkey", str(pem)]
    honest = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "honest")])
    assert honest.exit_code == 0, honest.output
    # rows without DP: verified, but released without DP, and that comes first
    assert honest.stderr.startswith("verdict: NOT PRIVATE: released without differential")
    assert "\n  VERIFIED: every row is linked" in honest.stderr
    db = sqlite3.connect(path)
    db.execute("DELETE FROM ledger WHERE seq = 2")
    db.commit()
    db.close()
    tampered = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "tampered")])
    assert tampered.exit_code == 0, tampered.output
    assert tampered.stderr.startswith("verdict: FAILED: ")
    assert "none from the failing row on can be trusted" in tampered.stderr


def test_a_key_holder_key_without_the_config_says_what_is_missing(tmp_path: Path) -> None:
    key = tmp_path / "kh.key"
    key.write_bytes(b"x" * 32)
    args = ("keyholder", "--server", "127.0.0.1:9", "--name", "kh", "--certs", str(tmp_path))
    result = _run(*args, "--key", str(key))
    assert "--key needs --config" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_budget_no_round_fits_is_refused_before_any_state_exists(tmp_path: Path) -> None:
    """Before: the server started, created its state, stopped at once with "run the
    server again to continue", and every later start stopped the same way."""
    config = tmp_path / "federation.toml"
    config.write_text(
        '[federation]\nname = "fed"\nclients = ["b1", "b2", "b3"]\ndimension = 10\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        "[dp]\nclip = 1.0\nnoise_multiplier = 1.0\ndelta = 1e-3\nepsilon_budget = 0.001\n"
        f'[server]\nstate = "{tmp_path / "st.sqlite"}"\n'
    )
    result = _run("server", "--config", str(config), "--init", "--wait", "1")
    assert result.exit_code == 2, result.output
    assert "dp.epsilon_budget = 0.001 is below the epsilon of a single round" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["federation.toml"]


def test_paths_that_cannot_be_created_are_named(tmp_path: Path) -> None:
    """Each was a traceback (FileNotFoundError, NotADirectoryError), the simulation's and
    the papers' only after they had started."""
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder")
    error = _usage_error(_run("simulate", "--out", str(afile / "run")))
    assert error.startswith(f"Error: --out {afile / 'run'}: cannot create it")
    error = _usage_error(_run("bench", "papers", "--quick", "--out", str(afile / "papers")))
    assert "--out" in error
    config = tmp_path / "ckks.toml"
    config.write_text(
        '[federation]\nname = "f"\nclients = ["b1", "b2"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nvalue_bound = 1.0\nkey_holder = "kh"\n'
    )
    key = tmp_path / "missing" / "sub" / "kh.key"
    error = _usage_error(_run("keyholder-init", "--config", str(config), "--key", str(key)))
    assert error.startswith(f"secagg keyholder-init: --key {key}: "), error


def test_keyholder_init_on_an_existing_key_is_one_line_with_the_command_prefix(
    tmp_path: Path,
) -> None:
    """``secagg keyholder-init`` on an existing key printed click's ``Error: --key: ...``
    while the other commands say ``secagg server: ...``: one line with the command's
    prefix naming the flag, exit 2, and the key left as it was."""
    config = tmp_path / "ckks.toml"
    config.write_text(
        '[federation]\nname = "f"\nclients = ["b1", "b2"]\ndimension = 4\n'
        '[backend]\nname = "ckks"\nvalue_bound = 1.0\nkey_holder = "kh"\n'
    )
    key = tmp_path / "kh.key"
    key.write_bytes(b"the key every branch pinned")
    error = _usage_error(_run("keyholder-init", "--config", str(config), "--key", str(key)))
    assert error == (
        f"secagg keyholder-init: --key {key} exists; a new key would orphan every pin"
    ), error
    assert key.read_bytes() == b"the key every branch pinned"
    bad = tmp_path / "bad.toml"
    bad.write_text('[federation]\nname = "f"\n')
    error = _usage_error(_run("keyholder-init", "--config", str(bad), "--key", str(key) + "2"))
    assert error.startswith(f"secagg keyholder-init: --config {bad}: "), error
    assert not Path(str(key) + "2").exists()


def test_a_hook_factory_of_the_wrong_shape_is_named() -> None:
    """``--hook json:dumps``: a TypeError traceback from calling it with (name, dimension)."""
    from secagg.errors import ConfigurationError
    from secagg.runtime.launch import load_hook

    with pytest.raises(ConfigurationError, match=r"hook 'json:dumps': the factory is called"):
        load_hook("json:dumps", "b1", 3)
    with pytest.raises(ConfigurationError, match="is not callable"):
        load_hook("math:pi", "b1", 3)
    assert callable(load_hook("demo", "b1", 3))
