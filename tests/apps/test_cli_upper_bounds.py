"""The numeric flags left unbounded above by the last review: each refused past its
bound as a usage error (exit 2) of one line naming the flag, before anything runs.

Upper-bounds review (2026-12-06): ``secagg round --k 2**70`` silently ran the complete
graph; ``privacy noise --epsilon 1e300`` printed z = 0.000001 (which spends 4.9e12) and
``privacy epsilon -z 1e300`` an epsilon of 0.0000, for a noise no federation can run;
``secagg client --min-noise-multiplier 1e300`` (or ``min_noise_multiplier = 1e300`` in
its ``[branch]`` table) started a branch that then refused every round, and
``--max-clip 1e300`` was a cap above any clip a round can have. And (2026-12-06, later)
``privacy ... -N 2**70`` printed a figure for a federation no server can run, and a
``round --threshold`` outside [1, k + 1] was refused as ``'--threshold' / '--k'``.
"""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner, Result

from secagg.aggregation.policy import MAX_CLIP, BranchPolicy
from secagg.apps.cli import main
from secagg.apps.simulation.config import MAX_EPSILON
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.errors import ConfigurationError
from secagg.protocol.config import DEFAULT_MAX_CLIENTS
from secagg.protocol.graph_params import MAX_NUM_CLIENTS

#: ``secagg round --k``'s largest: a client of the largest cohort a client joins has that
#: many neighbours (defined here, not imported: the test must run against the old CLI)
MAX_DEGREE = DEFAULT_MAX_CLIENTS - 1


class _Started(Exception):
    """The command got past its checks and would have run."""


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=True)


def _usage_line(result: Result) -> str:
    """The one ``Error:`` line of a usage error (exit 2), no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert not isinstance(result.exception, _Started), "the command started"
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return errors[0]


def _refusal_line(result: Result) -> str:
    """The one stderr line of a mistake in a file (exit 2: ``secagg client: NAME: ...``)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert not isinstance(result.exception, _Started), "the command started"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


# --- secagg round --k / --threshold ----------------------------------------------------


@pytest.mark.parametrize("value", [str(2**70), str(2**63), str(MAX_DEGREE + 1)])
def test_round_k_past_any_cohort_is_a_usage_error_naming_the_flag_and_its_largest(
    value: str,
) -> None:
    line = _usage_line(_run("round", "--clients", "5", "--dim", "4", "--k", value))
    assert "'--k'" in line and str(MAX_DEGREE) in line, line


def test_round_k_at_its_largest_runs_the_complete_graph_and_says_so() -> None:
    result = _run("round", "--clients", "5", "--dim", "4", "--k", str(MAX_DEGREE), "--dropout", "0")
    assert result.exit_code == 0, result.output
    assert f"--k {MAX_DEGREE} reaches every other client" in result.stderr
    assert "complete graph" in result.output


@pytest.mark.parametrize("value", [str(2**70), str(DEFAULT_MAX_CLIENTS + 1)])
def test_round_threshold_past_any_cohort_is_a_usage_error_naming_it(value: str) -> None:
    line = _usage_line(_run("round", "--clients", "5", "--dim", "4", "--threshold", value))
    assert "'--threshold'" in line and str(DEFAULT_MAX_CLIENTS) in line, line


def test_round_names_k_and_threshold_in_the_graph_refusals() -> None:
    """``a Harary graph needs an even degree k in [2, 4]`` named no flag (it now reads
    ``... of 5 clients needs an even degree --k = 2 or --k = 4 = clients - 1 ...``)."""
    odd = _usage_line(_run("round", "--clients", "5", "--dim", "4", "--k", "3"))
    assert "'--k'" in odd and "even degree --k = 2 or --k = 4 = clients - 1" in odd, odd
    high = _usage_line(_run("round", "--clients", "5", "--dim", "4", "--threshold", "9"))
    assert "'--threshold'" in high and "--threshold must be in [1, " in high, high


@pytest.mark.parametrize("value", ["9", "0", "-5"])
@pytest.mark.parametrize("k", [None, "2"])
def test_round_threshold_refusal_names_only_the_threshold(value: str, k: str | None) -> None:
    """A threshold outside [1, k + 1] is --threshold's mistake: the line named '--k' too,
    even when no --k was typed (k was the SecAgg+ search's) and, with one, for a k that
    is valid on its own. ``--k`` appears in the text only when it was typed."""
    typed = ("--k", k) if k is not None else ()
    line = _usage_line(_run("round", "--clients", "5", "--dim", "4", *typed, "--threshold", value))
    assert line.startswith("Error: Invalid value for '--threshold': "), line
    assert "--threshold must be in [1, " in line and f"got {value}" in line, line
    assert ("--k + 1 = 3" in line) if k is not None else ("--k" not in line), line


# --- secagg privacy ----------------------------------------------------------------------

_PLAN = ("--delta", "1e-5", "-q", "1", "-T", "10")


@pytest.mark.parametrize("value", ["1e300", "1e7", repr(MAX_EPSILON * 1.01)])
def test_privacy_noise_epsilon_past_simulates_target_is_refused(value: str) -> None:
    line = _usage_line(_run("privacy", "noise", "--epsilon", value, *_PLAN))
    assert "'--epsilon'" in line and "1000000" in line, line


@pytest.mark.parametrize("value", ["1e300", "1e5", repr(MAX_NOISE_MULTIPLIER * 1.01)])
def test_privacy_epsilon_noise_past_a_federations_is_refused(value: str) -> None:
    line = _usage_line(_run("privacy", "epsilon", "-z", value, *_PLAN))
    assert "'--noise-multiplier' / '-z'" in line and "10000" in line, line


@pytest.mark.parametrize("command", ["epsilon", "noise"])
@pytest.mark.parametrize("value", [str(2**70), str(10**30), str(MAX_NUM_CLIENTS + 1)])
def test_privacy_clients_past_any_federation_is_refused(command: str, value: str) -> None:
    """-N is a federation's clients, and no federation holds more than the largest round
    secagg plans (10^6): ``-N 2**70`` printed a valid-looking figure (at a delta below
    1/N, which the command asks for) for a federation no server can run."""
    plan = ("--delta", "1e-40", "-q", "0.5", "-T", "10", "--accountant", "rdp", "-N", value)
    budget = ("-z", "1") if command == "epsilon" else ("--epsilon", "1")
    line = _usage_line(_run("privacy", command, *budget, *plan))
    assert "'--clients' / '-N'" in line and str(MAX_NUM_CLIENTS) in line, line


def test_privacy_at_the_bounds_still_answers() -> None:
    noise = _run("privacy", "noise", "--epsilon", repr(MAX_EPSILON), *_PLAN)
    assert noise.exit_code == 0 and "noise multiplier z = " in noise.output, noise.output
    epsilon = _run("privacy", "epsilon", "-z", repr(MAX_NOISE_MULTIPLIER), *_PLAN)
    assert epsilon.exit_code == 0 and "epsilon = " in epsilon.output, epsilon.output
    most = ("-z", "1", "--delta", "1e-7", "-q", "0.01", "-T", "10", "-N", str(MAX_NUM_CLIENTS))
    federation = _run("privacy", "epsilon", *most)
    assert federation.exit_code == 0 and "the most sampled client" in federation.output, (
        federation.output
    )


# --- secagg client: a policy no round can satisfy --------------------------------------


def _client(*args: str) -> Result:
    base = ("client", "--server", "127.0.0.1:50051", "--name", "b1", "--dimension", "4")
    with mock.patch("secagg.runtime.launch.run_branch", side_effect=_Started):
        return _run(*base, *args)


@pytest.mark.parametrize(
    ("flag", "value", "bound"),
    [
        ("--min-noise-multiplier", "1e300", "10000"),
        ("--min-noise-multiplier", repr(MAX_NOISE_MULTIPLIER * 1.01), "10000"),
        ("--max-clip", "1e300", "1000000"),
        ("--max-clip", repr(MAX_CLIP * 1.01), "1000000"),
    ],
)
def test_client_policy_flags_past_any_round_are_refused_before_dialling(
    flag: str, value: str, bound: str
) -> None:
    line = _usage_line(_client(flag, value))
    assert f"'{flag}'" in line and bound in line, line


@pytest.mark.parametrize(
    ("table", "key", "bound"),
    [
        ("min_noise_multiplier = 1e300", "branch.min_noise_multiplier", "10000"),
        ("max_clip = 1e300", "branch.max_clip", "1e+06"),
        ("record_sensitivity = 1e300", "branch.record_sensitivity", "1e+06"),
        ("min_threshold = 20\nexpected_clients = 10", "branch.expected_clients = 10", "20"),
        ("min_threshold = 200001", "branch.max_clients = 100000", "200001"),
    ],
)
def test_client_policy_file_no_round_can_satisfy_is_refused_naming_the_key(
    tmp_path: Path, table: str, key: str, bound: str
) -> None:
    policy = tmp_path / "branch.toml"
    policy.write_text(f"[branch]\n{table}\n")
    line = _refusal_line(_client("--policy", str(policy)))
    assert key in line and bound in line, line


def test_the_policy_bounds_themselves_load() -> None:
    policy = BranchPolicy(
        min_noise_multiplier=MAX_NOISE_MULTIPLIER,
        max_clip=MAX_CLIP,
        record_sensitivity=MAX_CLIP,
        min_threshold=10,
        expected_clients=10,
    )
    assert policy.min_noise_multiplier == MAX_NOISE_MULTIPLIER
    assert BranchPolicy(min_threshold=DEFAULT_MAX_CLIENTS).min_threshold == DEFAULT_MAX_CLIENTS
    with pytest.raises(ConfigurationError, match=r"^branch\.min_noise_multiplier must be at most"):
        BranchPolicy(min_noise_multiplier=float(2**70))


# --- counts a federation's plan names: rounds, cohort, threshold, worker processes ------
#
# Upper-bounds review (2026-12-06, later): ``privacy epsilon -T 2**70 --accountant rdp``
# printed epsilon 3.95e20; ``secagg client --rounds 2**70`` and ``--expected-clients
# 2**70`` started a branch, and ``--min-threshold`` was bounded only by the policy's
# ``max_clients``, a key with no bound of its own; ``bench grpc --clients 20000
# --processes 20000`` passed every check and set out to start 20 000 processes.

#: the bounds, written out (not imported: the tests must run against the old CLI)
MAX_ROUNDS = 10**9  # privacy -T, client --rounds: past any federation's life
MAX_PROCESSES = 10_000  # bench grpc --processes: bench scale's --workers


@pytest.mark.parametrize("command", ["epsilon", "noise"])
@pytest.mark.parametrize("value", [str(2**70), str(2**63), str(MAX_ROUNDS + 1)])
def test_privacy_rounds_past_any_federation_are_refused(command: str, value: str) -> None:
    budget = ("-z", "1") if command == "epsilon" else ("--epsilon", "1")
    plan = ("--delta", "1e-5", "-q", "1", "--accountant", "rdp", "-T", value)
    line = _usage_line(_run("privacy", command, *budget, *plan))
    assert "'--rounds' / '-T'" in line and str(MAX_ROUNDS) in line, line


def test_privacy_rounds_at_the_bound_still_answer() -> None:
    """10^9 rounds is the plan docs/privacy.md works through (-q 1e-9); both accountants
    answer it in seconds."""
    for accountant in ("rdp", "pld"):
        plan = ("-z", "1", "--delta", "1e-5", "-q", "1", "-T", str(MAX_ROUNDS))
        result = _run("privacy", "epsilon", *plan, "--accountant", accountant)
        assert result.exit_code == 0 and "epsilon = " in result.output, result.output


@pytest.mark.parametrize(
    ("flag", "value", "bound"),
    [
        ("--rounds", str(2**70), str(MAX_ROUNDS)),
        ("--rounds", str(MAX_ROUNDS + 1), str(MAX_ROUNDS)),
        ("--expected-clients", str(2**70), str(MAX_NUM_CLIENTS)),
        ("--expected-clients", str(MAX_NUM_CLIENTS + 1), str(MAX_NUM_CLIENTS)),
    ],
)
def test_client_counts_past_any_federation_are_refused_before_dialling(
    flag: str, value: str, bound: str
) -> None:
    line = _usage_line(_client(flag, value))
    assert f"'{flag}'" in line and bound in line, line


def test_client_min_threshold_is_bounded_whatever_the_policys_max_clients(
    tmp_path: Path,
) -> None:
    """``branch.max_clients`` has no bound of its own, and a policy raising it let
    ``--min-threshold`` ask for more share holders than any round has."""
    policy = tmp_path / "branch.toml"
    policy.write_text(f"[branch]\nmax_clients = {2**62}\n")
    for value in (str(MAX_NUM_CLIENTS + 1), str(2**61)):
        line = _usage_line(_client("--policy", str(policy), "--min-threshold", value))
        assert "'--min-threshold'" in line and str(MAX_NUM_CLIENTS) in line, line


def test_client_counts_at_their_bounds_start_the_branch(tmp_path: Path) -> None:
    policy = tmp_path / "branch.toml"
    policy.write_text(f"[branch]\nmax_clients = {MAX_NUM_CLIENTS}\n")
    for args in (
        ("--rounds", str(MAX_ROUNDS)),
        ("--expected-clients", str(MAX_NUM_CLIENTS)),
        ("--policy", str(policy), "--min-threshold", str(MAX_NUM_CLIENTS)),
    ):
        result = _client(*args)
        assert isinstance(result.exception, _Started), (args, result.output)


def _bench_grpc(*args: str) -> Result:
    with mock.patch("secagg.apps.bench.grpc.run_benchmark", side_effect=_Started):
        return _run("bench", "grpc", *args)


@pytest.mark.parametrize(
    ("clients", "processes"),
    [("20000", "20000"), (str(MAX_PROCESSES + 1), str(MAX_PROCESSES + 1)), ("100", str(2**70))],
)
def test_bench_grpc_processes_past_its_bound_are_refused(clients: str, processes: str) -> None:
    line = _usage_line(_bench_grpc("--clients", clients, "--processes", processes))
    assert "'--processes'" in line and str(MAX_PROCESSES) in line, line


def test_bench_grpc_processes_at_its_bound_start_the_benchmark() -> None:
    # the flag's bound, on a machine with room for 10 001 Python processes (memory
    # unknown): this machine's own memory is weighed apart (test_bench_grpc_memory.py)
    with mock.patch("secagg.apps.cli_types.memory_available", return_value=None):
        result = _bench_grpc("--clients", str(MAX_PROCESSES), "--processes", str(MAX_PROCESSES))
    assert isinstance(result.exception, _Started), result.output


# --- the [branch] keys that match the bounded client flags ------------------------------
#
# The flags --expected-clients and --min-threshold stop at 10^6 (the largest round secagg
# plans); the [branch] keys behind them, and max_clients, took any integer from a file.


@pytest.mark.parametrize("key", ["max_clients", "expected_clients", "min_threshold"])
@pytest.mark.parametrize("value", [MAX_NUM_CLIENTS + 1, 2**70])
def test_branch_count_keys_past_any_round_are_refused_naming_the_key(key: str, value: int) -> None:
    counts = {"max_clients": 2**71, "expected_clients": None, "min_threshold": None}
    counts[key] = value
    if key != "max_clients":
        counts["max_clients"] = MAX_NUM_CLIENTS
    with pytest.raises(
        ConfigurationError, match=rf"^branch\.{key} must be at most {MAX_NUM_CLIENTS}"
    ):
        BranchPolicy(**counts)


def test_branch_count_keys_at_the_largest_round_load() -> None:
    policy = BranchPolicy(
        max_clients=MAX_NUM_CLIENTS, expected_clients=MAX_NUM_CLIENTS, min_threshold=MAX_NUM_CLIENTS
    )
    assert policy.max_clients == policy.min_threshold == MAX_NUM_CLIENTS


def test_a_policy_file_with_a_count_past_any_round_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    policy = tmp_path / "branch.toml"
    policy.write_text(f"[branch]\nmax_clients = {2**62}\n")
    line = _refusal_line(_client("--policy", str(policy)))
    assert "branch.max_clients" in line and str(MAX_NUM_CLIENTS) in line, line
