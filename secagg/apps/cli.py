"""The ``secagg`` console command.

``secagg simulate`` is the main job: a bank-branch fraud federation with
its baselines (see :mod:`secagg.apps.simulation`). ``secagg round`` runs one
secure-aggregation round in memory with the embedded defaults (100 clients,
100 000 coordinates, SecAgg+ with the published choice of k and t, 5% of the
clients dropping at random phases) and checks the result against a plaintext
sum. ``secagg params`` shows the k and t SecAgg+ would choose.
``secagg privacy epsilon`` and ``secagg privacy noise`` are the accountant
for users and auditors (DP-FedAvg with Poisson client sampling).
``secagg bench masking``, ``dp``, ``ckks`` and ``grpc`` run the benchmarks.
``secagg certs``, ``secagg server``, ``secagg client`` and ``secagg keyholder`` run
real federations. ``secagg audit`` checks a privacy ledger, reports it, or estimates
epsilon empirically.

Where each part lives
---------------------
This module holds the top-level group (:func:`main`, whose usage errors are one line)
and the entry point (:func:`run`, ``[project.scripts]`` and ``python -m
secagg.apps.cli``). Each command group is a module of :mod:`secagg.apps.commands`:
``rounds`` (round, params), ``privacy``, ``bench``, ``certs`` (the development CA),
``server``, ``client`` and ``keyholder`` (keyholder-init too), with ``dialling`` (the
options and connection diagnosis of the parties that dial the server), ``parties``
(what the long-running parties share) and ``common``; ``simulate`` and ``audit`` live in
:mod:`secagg.apps.simulation.cli` and :mod:`secagg.apps.audit.cli`. Every name this
module defined before that split (2026-12-06) is still importable from it, as the very
object its new home holds. A test that replaces a name a command reads (a helper, a
constant) replaces it in the module that reads it, not here: a name rebound on this
module reaches nothing but this module.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from typing import Any, NoReturn

import click

from secagg import __version__
from secagg.apps.audit.cli import audit
from secagg.apps.commands.bench import (
    _ROUNDS,
    _RUNS,
    _WORKERS,
    _bench_json_output,
    _emit_bench,
    _output_path,
    _plan_bench_round,
    _warnings_as_lines,
    bench,
    bench_ckks,
    bench_dp,
    bench_grpc,
    bench_masking,
    bench_papers,
    bench_scale,
)
from secagg.apps.commands.certs import certs, certs_init, certs_issue, certs_revoke
from secagg.apps.commands.client import (
    _branch_policy,
    _budget_summary,
    _check_budget_is_kept,
    _hook_module,
    client,
)
from secagg.apps.commands.common import (
    _CLIENTS,
    _LENGTH,
    _config_error,
    _environment_cause,
    _fail,
    _one_line,
    _os_error,
    install_command_logging,
)
from secagg.apps.commands.dialling import (
    _certs_error,
    _connection_failure,
    _dialling_party,
    _handshake_failure,
    _probe_tls,
    _redialling,
    _server_address,
    _server_name,
)
from secagg.apps.commands.keyholder import (
    _key_holder_settings,
    _key_holders_federation,
    keyholder,
    keyholder_init,
)
from secagg.apps.commands.parties import (
    _config_failure,
    _read_table,
    _setup_logging,
    _sigterm_as_interrupt,
    _stopped,
    _Terminated,
    _verbosity,
    _verdict_said_here,
    _warning_as_log_line,
)
from secagg.apps.commands.privacy import (
    _ACCOUNTANT_OPTION,
    _CLIENTS_OPTION,
    _DELTA_OPTION,
    _ROUNDS_OPTION,
    _SAMPLE_RATE_OPTION,
    PLD_SAMPLED_MIN_NOISE,
    _amplified_note,
    _beyond_the_accountant,
    _delta_for_clients,
    _DropAccountantNoise,
    _federation_figure,
    _pld_out_of_reach,
    _pld_refusal,
    _quiet_accountant,
    privacy,
    privacy_epsilon,
    privacy_noise,
)
from secagg.apps.commands.rounds import (
    _DROPOUT_PHASES,
    _ROUND_FLAGS,
    MAX_DEGREE,
    _cohort_size,
    _emit,
    _out_of_memory,
    _random_schedule,
    one_round,
    params,
)
from secagg.apps.commands.server import (
    SERVER_BYTES_PER_PARAMETER,
    _certificates_failure,
    _model_past_memory,
    _what_a_stop_keeps,
    server,
)
from secagg.apps.simulation.cli import simulate
from secagg.errors import ConfigurationError, SecAggError

#: every name this module defined before the split into secagg.apps.commands, and the
#: two commands it adds from elsewhere: importable from here, as before
__all__ = [
    "MAX_DEGREE",
    "PLD_SAMPLED_MIN_NOISE",
    "SERVER_BYTES_PER_PARAMETER",
    "_ACCOUNTANT_OPTION",
    "_CLIENTS",
    "_CLIENTS_OPTION",
    "_DELTA_OPTION",
    "_DROPOUT_PHASES",
    "_LENGTH",
    "_ROUNDS",
    "_ROUNDS_OPTION",
    "_ROUND_FLAGS",
    "_RUNS",
    "_SAMPLE_RATE_OPTION",
    "_WORKERS",
    "EnvironmentFailure",
    "OneLineUsageError",
    "_DropAccountantNoise",
    "_OneLineErrors",
    "_Terminated",
    "_amplified_note",
    "_bench_json_output",
    "_beyond_the_accountant",
    "_branch_policy",
    "_budget_summary",
    "_certificates_failure",
    "_certs_error",
    "_check_budget_is_kept",
    "_cohort_size",
    "_config_error",
    "_config_failure",
    "_connection_failure",
    "_delta_for_clients",
    "_dialling_party",
    "_emit",
    "_emit_bench",
    "_fail",
    "_federation_figure",
    "_handshake_failure",
    "_hook_module",
    "_key_holder_settings",
    "_key_holders_federation",
    "_model_past_memory",
    "_one_line",
    "_os_error",
    "_out_of_memory",
    "_output_path",
    "_plan_bench_round",
    "_pld_out_of_reach",
    "_pld_refusal",
    "_probe_tls",
    "_quiet_accountant",
    "_random_schedule",
    "_read_table",
    "_redialling",
    "_server_address",
    "_server_name",
    "_setup_logging",
    "_sigterm_as_interrupt",
    "_stopped",
    "_verbosity",
    "_verdict_said_here",
    "_warning_as_log_line",
    "_warnings_as_lines",
    "_what_a_stop_keeps",
    "audit",
    "bench",
    "bench_ckks",
    "bench_dp",
    "bench_grpc",
    "bench_masking",
    "bench_papers",
    "bench_scale",
    "certs",
    "certs_init",
    "certs_issue",
    "certs_revoke",
    "client",
    "keyholder",
    "keyholder_init",
    "main",
    "one_round",
    "params",
    "privacy",
    "privacy_epsilon",
    "privacy_noise",
    "run",
    "server",
    "simulate",
]


class OneLineUsageError(click.ClickException):
    """A usage mistake shown as the one line that names it, exit status 2.

    Why: click prints a usage error as ``Usage: ...``, ``Try '... --help' for
    help.``, a blank line and then ``Error: ...``: four lines for one mistake,
    the one that matters last. An operator reading a failed job's log (or a
    script grepping it) should see one line naming the flag, the key or the file;
    ``ClickException.show`` prints just that, ``Error: <message>``.
    """

    exit_code = 2

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message())


class EnvironmentFailure(click.ClickException):
    """A failure of the machine a command ran on, or of its files, that no command
    layer said in its own words: one line, ``Error: <cause>``, exit status 1 (2 for a
    :class:`~secagg.errors.ConfigurationError`, a mistake in the input).

    Why: each command names the failures it expects, but one it did not (a full disk
    as ``bench papers`` writes its plots, a state that fails to read as the server
    reports its rounds, a ledger error past a party's own handler) ended in a Python
    traceback through click (environment-failure review, 2026-12-07). Only the message
    is shown: an OSError's cause and the path it names, never a file's contents."""

    def __init__(self, exc: OSError | sqlite3.Error | SecAggError) -> None:
        super().__init__(_environment_cause(exc))
        self.exit_code = 2 if isinstance(exc, ConfigurationError) else 1


class _OneLineErrors(click.Group):
    """The top-level group: every usage error below it, at any depth, is one line, and
    so is a failure of the machine or its files that no command said itself
    (:class:`EnvironmentFailure`, exit 1).

    Subcommands parse their arguments inside this group's ``invoke`` and the group's
    own options in ``make_context``; both are wrapped. A group called without a
    command still prints its help (``NoArgsIsHelpError`` is left to click). A closed
    stdout (EPIPE) is left to click, which exits quietly on it; a KeyboardInterrupt is
    no failure of the environment and is never taken here.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.UsageError as exc:
            raise OneLineUsageError(exc) from exc
        except (OSError, sqlite3.Error, SecAggError) as exc:
            if isinstance(exc, OSError) and exc.errno == errno.EPIPE:
                raise  # click's own: a reader that went away hears nothing more
            raise EnvironmentFailure(exc) from exc


@click.group(cls=_OneLineErrors)
@click.version_option(__version__, prog_name="secagg")
def main() -> None:
    """secagg: secure aggregation for federated learning."""


# in the order they were defined before the split (``secagg --help`` sorts them anyway)
main.add_command(one_round)
main.add_command(params)
main.add_command(privacy)
main.add_command(bench)
main.add_command(certs)
main.add_command(server)
main.add_command(client)
main.add_command(keyholder_init)
main.add_command(keyholder)
main.add_command(simulate)
main.add_command(audit)


def run() -> NoReturn:
    """The ``secagg`` command: :func:`main`, then the exit.

    A command that opened gRPC sessions (server, client, keyholder, bench grpc) leaves
    through :func:`~secagg.transport.process.exit_process`, skipping gRPC's teardown,
    which can hang a process that has finished its work (see that module). Every
    other command exits normally. Tests call :func:`main` (click's runner), not this.
    Before :func:`main`, the command's own root log handler
    (:func:`~secagg.apps.commands.common.install_command_logging`), so that Opacus's
    import-time ``basicConfig`` formats no other library's lines.
    """
    install_command_logging()  # before anything imports Opacus, whose basicConfig
    try:
        main()  # standalone: click always ends with SystemExit
    except SystemExit as exc:
        code: object = exc.code
    else:  # pragma: no cover - click's standalone mode never returns
        code = 0
    if "secagg.transport.grpc_transport" in sys.modules:
        from secagg.transport.process import exit_process

        exit_process(code)
    sys.exit(code)  # type: ignore[arg-type]


if __name__ == "__main__":
    run()
