"""cli.py's names after its split into secagg.apps.commands (2026-12-06).

``secagg.apps.cli`` held every command in 2 315 lines; each command group now lives in a
module of :mod:`secagg.apps.commands` and cli.py keeps the top-level group and the entry
point. About ninety test files import ``main``, ``run``, ``client`` or a helper
(``_probe_tls``, ``_quiet_accountant``, ``_budget_summary``, ...) from cli, so every
name it defined stays importable there, as the very object its new home holds (a copy
would take a patch the command never reads), and the group holds the same commands.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import click

import secagg.apps.cli as cli

#: every name cli.py defined before the split, by the module that now defines it
HOMES = {
    "secagg.apps.cli": ["OneLineUsageError", "_OneLineErrors", "main", "run"],
    "secagg.apps.commands.common": [
        "_CLIENTS",
        "_LENGTH",
        "_config_error",
        "_fail",
        "_one_line",
        "_os_error",
    ],
    "secagg.apps.commands.rounds": [
        "MAX_DEGREE",
        "_DROPOUT_PHASES",
        "_ROUND_FLAGS",
        "_cohort_size",
        "_emit",
        "_out_of_memory",
        "_random_schedule",
        "one_round",
        "params",
    ],
    "secagg.apps.commands.privacy": [
        "PLD_SAMPLED_MIN_NOISE",
        "_ACCOUNTANT_OPTION",
        "_CLIENTS_OPTION",
        "_DELTA_OPTION",
        "_DropAccountantNoise",
        "_ROUNDS_OPTION",
        "_SAMPLE_RATE_OPTION",
        "_amplified_note",
        "_beyond_the_accountant",
        "_delta_for_clients",
        "_federation_figure",
        "_pld_out_of_reach",
        "_pld_refusal",
        "_quiet_accountant",
        "privacy",
        "privacy_epsilon",
        "privacy_noise",
    ],
    "secagg.apps.commands.bench": [
        "_ROUNDS",
        "_RUNS",
        "_WORKERS",
        "_bench_json_output",
        "_emit_bench",
        "_output_path",
        "_plan_bench_round",
        "_warnings_as_lines",
        "bench",
        "bench_ckks",
        "bench_dp",
        "bench_grpc",
        "bench_masking",
        "bench_papers",
        "bench_scale",
    ],
    "secagg.apps.commands.certs": ["certs", "certs_init", "certs_issue", "certs_revoke"],
    "secagg.apps.commands.parties": [
        "_Terminated",
        "_config_failure",
        "_read_table",
        "_setup_logging",
        "_sigterm_as_interrupt",
        "_stopped",
        "_verbosity",
        "_verdict_said_here",
        "_warning_as_log_line",
    ],
    "secagg.apps.commands.server": [
        "SERVER_BYTES_PER_PARAMETER",
        "_certificates_failure",
        "_model_past_memory",
        "_what_a_stop_keeps",
        "server",
    ],
    "secagg.apps.commands.dialling": [
        "_certs_error",
        "_connection_failure",
        "_dialling_party",
        "_handshake_failure",
        "_probe_tls",
        "_redialling",
        "_server_address",
        "_server_name",
    ],
    "secagg.apps.commands.client": [
        "_branch_policy",
        "_budget_summary",
        "_check_budget_is_kept",
        "_hook_module",
        "client",
    ],
    "secagg.apps.commands.keyholder": [
        "_key_holder_settings",
        "_key_holders_federation",
        "keyholder",
        "keyholder_init",
    ],
}

#: secagg's commands, in the order cli.py added them before the split
COMMANDS = [
    "round",
    "params",
    "privacy",
    "bench",
    "certs",
    "server",
    "client",
    "keyholder-init",
    "keyholder",
    "simulate",
    "audit",
]


def test_every_name_cli_defined_is_still_importable_from_it() -> None:
    names = [name for names in HOMES.values() for name in names]
    assert len(names) == len(set(names)) == 86  # every top-level definition of the old cli.py
    assert [name for name in names if not hasattr(cli, name)] == []
    assert set(names) <= set(cli.__all__)


def test_each_name_is_its_homes_own_object() -> None:
    """``cli.X is home.X``: one object, so a test importing a helper from cli holds what
    the command calls, and a patch on the home reaches the command."""
    for home, names in HOMES.items():
        module = importlib.import_module(home)
        for name in names:
            assert getattr(cli, name) is getattr(module, name), (name, home)
            value = getattr(module, name)
            defined = getattr(getattr(value, "callback", value), "__module__", home)
            if callable(value) and defined.startswith("secagg.apps"):
                assert defined == home, (name, defined, home)  # defined there, not imported


def test_the_group_holds_the_same_commands_in_the_same_order() -> None:
    assert list(cli.main.commands) == COMMANDS
    assert cli.main.commands["round"] is cli.one_round
    assert cli.main.commands["keyholder-init"] is cli.keyholder_init
    assert isinstance(cli.main, cli._OneLineErrors)
    # the groups below keep their own subcommands
    assert list(cli.privacy.commands) == ["epsilon", "noise"]
    assert list(cli.bench.commands) == ["masking", "papers", "dp", "ckks", "scale", "grpc"]
    assert list(cli.certs.commands) == ["init", "issue", "revoke"]
    assert all(isinstance(cli.main.commands[name], click.Command) for name in COMMANDS)


def test_the_console_entry_point_is_clis_run() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["scripts"]
    module, _, attribute = scripts["secagg"].partition(":")
    assert getattr(importlib.import_module(module), attribute) is cli.run


def test_no_command_module_imports_cli() -> None:
    """The command modules sit below cli.py: importing any of them alone leaves
    ``secagg.apps.cli`` unloaded (no import cycle; a command can be imported alone)."""
    homes = [home for home in HOMES if home != "secagg.apps.cli"]
    probe = (
        "import importlib, sys\n"
        f"for home in {homes!r}:\n"
        "    importlib.import_module(home)\n"
        "print('secagg.apps.cli' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False", done.stdout + done.stderr
