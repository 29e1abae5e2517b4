"""``secagg client``: one branch, which dials the server, trains locally and sends only
masked updates, under its own policy (``--policy``'s ``[branch]`` table and the options)
and, with ``--epsilon-budget``, its own privacy budget kept in ``--state``.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from secagg.aggregation.policy import DEFAULT_MAX_CLIENTS, MAX_CLIP, BranchPolicy
from secagg.apps.cli_types import FiniteFloat, NonEmptyPath, RegularFilePath, check_memory
from secagg.apps.commands.common import (
    MAX_FEDERATION_ROUNDS,
    _fail,
    _one_line,
    _one_line_naming,
    _party_environment_failure,
    _path_read_failure,
    _state_file_status,
    in_file,
    shown_path,
)
from secagg.apps.commands.dialling import (
    DEFAULT_MESSAGE_BYTES,
    DEFAULT_MESSAGE_RECEIVE_SECONDS,
    _certs_error,
    _connection_failure,
    _dialling_party,
    _redialling,
    _refuse_special_certificates,
)
from secagg.apps.commands.parties import (
    _one_verbosity,
    _read_table,
    _setup_logging,
    _sigterm_as_interrupt,
    _stop_said_while_starting,
    _stopped,
    _verbosity,
    _verdict_said_here,
)
from secagg.dp.config import MAX_NOISE_MULTIPLIER
from secagg.durable import file_kind
from secagg.errors import ConfigurationError, ContradictoryPolicy, SecAggError
from secagg.protocol.graph_params import MAX_NUM_CLIENTS
from secagg.runtime.config import MAX_DIMENSION
from secagg.transport.base import MAX_WAIT_SECONDS
from secagg.transport.waiting import raise_stop_within

if TYPE_CHECKING:
    from secagg.runtime.client import TrainingHook


def _hook_module(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--hook module:factory`` names a module Python can find.

    Why: the ``secagg`` command, an installed script, does not search the current
    folder, so ``cd examples/bank_fraud`` and ``--hook dpsgd_hook:make_hook`` (what the
    example's docstring said) ended ``cannot load hook ...: No module named
    'dpsgd_hook'``, with nothing saying where Python looks (front-door audit,
    2026-12-05). The line names the file Python looks for under the folder, since for
    a dotted module that folder is the one above its package: ``PYTHONPATH=/opt/mybank``
    for ``mybank.fraud`` (what docs/deployment.md showed) does not find
    ``/opt/mybank/fraud.py``, and "the folder that holds it" read as that one
    (newcomer's walk-through, 2026-12-05).

    A value that is not ``demo`` nor ``module:factory`` (``--hook dpsgd_hook``, the
    factory left out; ``--hook ''``) is refused here too, naming ``--hook``: the
    runtime's "a hook is 'demo' or 'package.module:factory'" named no flag (hostile CLI
    review, 2026-12-06)."""
    del ctx, param
    if value is None or value == "demo":
        return value
    module, _, factory = value.partition(":")
    special = _special_file_in_hook(value, module)
    if special is not None:
        raise click.BadParameter(
            f"{special}, not a Python module: --hook takes 'demo' or 'module:factory' (a "
            "module Python imports from a regular .py file, e.g. mybank.fraud:make_hook)"
        )
    if not module.strip() or not factory.strip():
        raise click.BadParameter(
            f"{value!r} is neither 'demo' nor 'module:factory' (a module Python can import "
            "and the factory in it, e.g. mybank.fraud:make_hook)"
        )
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; an empty or relative name
        found = False
    if not found:
        # the file a dotted name is looked up as: PYTHONPATH names the folder above the
        # top package, not the one holding the file ("PYTHONPATH=/opt/mybank" with
        # /opt/mybank/fraud.py and "mybank.fraud" does not import; the folder is /opt)
        where = module.replace(".", "/") + ".py"
        raise click.BadParameter(
            f"no module {module!r} on Python's path (the secagg command does not look in the "
            f"current folder): install it, or put on PYTHONPATH the FOLDER of FOLDER/{where} "
            f"(PYTHONPATH=FOLDER secagg client ... --hook {value})"
        )
    return value


def _special_file_in_hook(value: str, module: str) -> str | None:
    """``'PATH' is a named pipe`` when ``--hook`` names one (or a device, a socket): the
    value itself, its module part, or the file the module would be imported from on
    Python's path; None otherwise.

    Why: ``--hook FIFO`` was refused as "neither 'demo' nor 'module:factory'", and a
    ``hook.py`` that is a named pipe as "no module 'hook' on Python's path" (Python's
    finder skips a file that is not a regular one), so the operator went looking for a
    missing module or a wrong PYTHONPATH while the file was there, the wrong kind
    (commands review, 2026-12-06). ``os.stat`` never opens the path, so a named pipe
    cannot block this check waiting for a writer."""
    where = module.replace(".", os.sep)
    candidates = [value, module]
    for entry in sys.path if module.strip() else ():
        folder = entry or os.curdir
        candidates += [
            os.path.join(folder, where + ".py"),
            os.path.join(folder, where, "__init__.py"),
        ]
    for candidate in candidates:
        if not candidate.strip():
            continue
        try:
            mode = os.stat(candidate).st_mode
        except (OSError, ValueError):  # missing, unreadable folder, a NUL in the name
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return f"{candidate!r} is {file_kind(mode)}"
    return None


@click.command()
@_dialling_party("This branch's name (its certificate's).")
@click.option(
    "--hook",
    default="demo",
    show_default=True,
    callback=_hook_module,
    help="'demo' or 'module:factory' (the module importable: installed, or its folder on "
    "PYTHONPATH).",
)
@click.option(
    "--dimension",
    # a federation's bound (federation.dimension): --dimension 2**70 was an OverflowError
    # traceback from numpy, and 3 000 000 000 allocated until killed (upper-bounds review)
    type=click.IntRange(1, MAX_DIMENSION),
    required=True,
    help=f"Model parameters (at most {MAX_DIMENSION}, a federation's largest model).",
)
@click.option(
    "--rounds",
    # a federation's plan's bound (privacy -T's): --rounds 2**70 was taken as a count
    # no federation reaches (upper-bounds review, 2026-12-06)
    type=click.IntRange(1, MAX_FEDERATION_ROUNDS),
    default=None,
    help=f"Stop after this many rounds (at most {MAX_FEDERATION_ROUNDS}; default: run until "
    "the server announces the federation's end).",
)
@click.option(
    "--idle",
    type=FiniteFloat(0.0, MAX_WAIT_SECONDS, min_open=True, allow_inf=True),
    default=900.0,
    show_default=True,
    help="Give up after this long connected without progress between rounds (a round "
    "start, a notice or a round's end taken, a payload of its round answered; messages it "
    "refuses or takes without an answer do not count). The timer counts across sessions "
    "(the time without one is --give-up-after's). Inside its round the branch waits for "
    "the deadline the server announced; out of a round (a notice that it runs without "
    "this branch, or its session lost) the timer counts from that round's deadline plus "
    "30 s. Keep it above the server's quorum_wait_seconds (600 by default), during which "
    "a lone connected branch hears nothing; at most a week (604800); 'inf': never.",
)
@_redialling
@_verbosity
@click.option(
    "--policy",
    "policy_path",
    type=NonEmptyPath(exists=True, dir_okay=False),
    help="A TOML file whose [branch] table is this branch's policy (options below override it).",
)
@click.option(
    "--allow-plain",
    is_flag=True,
    default=None,
    help="Accept the plain backend, which sends the update in clear (refused by default).",
)
@click.option(
    "--key-holder-fingerprint",
    default=None,
    help="The CKKS key holder's fingerprint (64 hex digits); CKKS rounds need it.",
)
@click.option(
    "--max-clip",
    # bounded as a federation's dp.clip (MAX_CLIP): 1e300 capped nothing any round can have
    type=FiniteFloat(0.0, MAX_CLIP, min_open=True),
    default=None,
    help=f"Refuse rounds clipping above this (at most {MAX_CLIP:g}, a federation's largest clip).",
)
@click.option(
    "--min-noise-multiplier",
    # no round satisfies more than a federation's largest z: 1e300 started a branch that
    # then refused every round (upper-bounds review, 2026-12-06)
    type=FiniteFloat(0.0, MAX_NOISE_MULTIPLIER, min_open=True),
    default=None,
    help="Join only rounds where this branch adds a distributed noise share of at least this "
    f"z (at most {MAX_NOISE_MULTIPLIER:g}, a federation's largest).",
)
@click.option(
    "--expected-clients",
    # no round has more clients than the largest secagg plans (MAX_NUM_CLIENTS, 10^6):
    # --expected-clients 2**70 started a branch whose cap on the noise split capped
    # nothing, as --max-clip 1e300 did (upper-bounds review, 2026-12-06)
    type=click.IntRange(1, MAX_NUM_CLIENTS),
    default=None,
    help=f"The cohort this branch expects (at most {MAX_NUM_CLIENTS}, the largest round "
    "secagg plans).",
)
@click.option(
    "--min-threshold",
    # a round's threshold is at most its clients: past 10^6 no round can satisfy it,
    # whatever branch.max_clients says (the policy refuses it above that key, 10^5 by
    # default, but the key has no bound of its own; upper-bounds review, 2026-12-06)
    type=click.IntRange(1, MAX_NUM_CLIENTS),
    default=None,
    help="A floor on the Shamir threshold (at most the branch's max_clients, "
    f"{DEFAULT_MAX_CLIENTS} by default, and {MAX_NUM_CLIENTS}, the largest round secagg plans).",
)
@click.option(
    "--require-active",
    is_flag=True,
    default=None,
    help="Join only the active (malicious-server) variant of the masking backends.",
)
@click.option(
    "--epsilon-budget",
    type=FiniteFloat(0.0, min_open=True),
    default=None,
    help="This branch's own privacy budget: it takes only rounds where it adds its own "
    "distributed noise share, and none that would take its epsilon (its own accounting, "
    "kept in --state) past this. Needs --delta and --state.",
)
@click.option(
    "--delta",
    type=FiniteFloat(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="The delta of --epsilon-budget (well below 1 over the customers this branch protects).",
)
@click.option(
    "--federation",
    default=None,
    help="The federation this branch joins (the server's [federation] name): a round of "
    "any other is refused before anything is trained or sent. Without it the branch joins "
    "the federation the server names at the first round.",
)
@click.option(
    "--state",
    "state_path",
    # not "" (the current folder: "--state . is a folder"), not a folder, not a named
    # pipe (its read blocked forever)
    type=RegularFilePath(dir_okay=False, what="a branch state file"),
    default=None,
    help="This branch's state file: the federation its rounds belong to and the last round "
    "number it started, so that a restarted branch still refuses a round it already ran "
    "and a round of another federation (created if missing; one file per branch and "
    "federation). Without it the branch remembers rounds only while it runs.",
)
@_stop_said_while_starting("name")
def client(
    target: str,
    server_name: str | None,
    name: str,
    certificates: str,
    hook: str,
    dimension: int,
    rounds: int | None,
    idle: float,
    connect_timeout: float,
    give_up_after: float,
    max_message_bytes: int | None,
    message_receive_timeout: float | None,
    policy_path: str | None,
    verbose: bool,
    quiet: bool,
    state_path: str | None,
    **policy_options: object,
) -> None:
    """Run one branch: dial the server, train locally, send only masked updates.

    The branch enforces its own policy: a round weaker than it (the plain backend,
    a CKKS key that is not the pinned key holder's, a larger clip, a smaller noise
    share, a lower threshold) or of another federation than --federation is refused
    before anything of the update leaves, and the command exits with status 3. With
    --state it keeps the last round it started, and its federation, across restarts
    and refuses a round at or below it, or of another federation (exit status 2).
    With --epsilon-budget (and --delta) it keeps its own privacy budget, in --state
    (required with it: a spend kept in memory restarts from 0): a round it cannot
    account for, or one that would take its epsilon past the budget, is refused before
    training (exit status 3); the summary line says the epsilon spent.

    Exit status: 0 when the server announced that the federation finished (or after
    --rounds rounds); 1, with one line naming the cause, when the federation was
    stopped before it finished, the server cannot be reached, the TLS handshake fails,
    the server refuses this branch, the server runs an older secagg release (its round
    start is of an older wire version: upgrade the server), or the branch gave up
    redialling, or the machine refuses its --state or --policy file or a --certs file
    (no permission, a read-only or full disk, an I/O error, another process of the
    branch holding its lock); 2 for a mistake in its options or files (a model whose
    size is not the federation's included, and a --state file that is not this
    branch's state, or a --state path in a folder that does not exist).
    """
    import math

    from secagg.runtime.branch_state import BranchStateError
    from secagg.runtime.client import BranchRefused, ServerOutdated
    from secagg.runtime.launch import run_branch
    from secagg.transport.base import TransportError
    from secagg.transport.certs import CertificateStoreError

    # the model, the update and a round's masked copy, 8 bytes a parameter each (the
    # demo hook's target is a fourth): --dimension 2147483648 (within the federation's
    # bound) allocated until the machine's memory ran out (upper-bounds review, 2026-12-05)
    check_memory(
        32 * dimension, f"--dimension {dimension} (a model and its round copies)", "'--dimension'"
    )
    _one_verbosity("secagg client", verbose, quiet)
    _refuse_special_certificates(certificates, name)
    _setup_logging(verbose, quiet)
    try:
        try:
            policy = _branch_policy(policy_path, policy_options)
        except OSError as exc:  # its --policy file: no permission, an I/O error
            _path_read_failure("secagg client", f"{name}: --policy", str(policy_path), exc)
        _check_budget_is_kept(policy, policy_options, state_path, name, policy_path)
        training = _build_hook(hook, name, dimension)
        with _sigterm_as_interrupt(), _verdict_said_here(verbose):
            stats = run_branch(
                target,
                name,
                training,
                certificates,
                policy=policy,
                rounds=rounds,
                idle_timeout=None if math.isinf(idle) else idle,
                connect_timeout=connect_timeout,
                give_up_after=None if math.isinf(give_up_after) else give_up_after,
                dimension=dimension,
                name_override=server_name,
                state=state_path,
                max_message_bytes=max_message_bytes or DEFAULT_MESSAGE_BYTES,
                message_receive_timeout=(
                    DEFAULT_MESSAGE_RECEIVE_SECONDS
                    if message_receive_timeout is None
                    else message_receive_timeout
                ),
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (_Terminated)
        _stopped(
            f"secagg client: {name}",
            exc,
            "nothing more of this branch's update leaves; a round in flight goes on without "
            "it (a dropout), and the branch rejoins the next round once started again",
        )
    except BranchRefused as exc:
        _fail("secagg client", f"{name} refused {exc}", 3)
    except ServerOutdated as exc:  # the server's side, as a refusal of this branch: 1
        _fail("secagg client", f"{name}: {_one_line(exc, name)}", 1)
    except BranchStateError as exc:  # its state file: named by the flag that gave it
        said = _state_failure(exc, name, state_path)
        _fail("secagg client", f"{name}: --state {said}", _state_file_status(exc))
    except CertificateStoreError as exc:  # missing, unreadable, a file for a folder
        raise _certs_error(exc, name) from None
    except ConfigurationError as exc:  # its files, its policy, its model's dimension
        _fail("secagg client", f"{name}: {_one_line_naming(exc, name, policy_path)}", 2)
    except TransportError as exc:  # cannot connect, refused, gave up redialling
        _fail("secagg client", f"{name}: {_connection_failure(exc, target, certificates, name)}")
    except sqlite3.Error as exc:  # a store under the branch (its hook's, a library's)
        _party_environment_failure("secagg client", name, exc)
    except (SecAggError, OSError) as exc:
        _fail("secagg client", f"{name}: {_one_line(exc, name)}")
    own = "".join(  # rounds it refused, left or lost: not "completed" (review, 2026-12-05)
        f"{count} {what}, "
        for count, what in (
            (getattr(stats, "rounds_refused", 0), "refused by its policy"),
            (getattr(stats, "rounds_left", 0), "left"),
            (getattr(stats, "rounds_lost", 0), "lost"),
            # rounds the server ran without it (its sampling left it out), told by notices
            (getattr(stats, "rounds_not_sampled", 0), "not sampled"),
            # its hook returned NaN or infinity and it sent the zero vector: a broken
            # trainer the operator must hear of, though the round went on (edc32e9)
            (getattr(stats, "non_finite_updates", 0), "with a non-finite update sent as zero"),
        )
        if count
    )
    summary = (
        f"{name}: {stats.rounds_completed} rounds completed, {stats.rounds_aborted} aborted, "
        f"{own}{stats.refused_messages} messages refused{_budget_summary(stats)}"
    )
    outcome = getattr(stats, "outcome", None)
    if outcome == "stopped":  # the server announced an end before the last round
        reason = getattr(stats, "end_reason", "") or "no reason given"
        _fail("secagg client", f"{summary}; the federation stopped before it finished: {reason}")
    click.echo(summary + ("; the federation finished" if outcome == "finished" else ""))


def _build_hook(spec: str, name: str, dimension: int) -> TrainingHook:
    """The branch's training hook from ``--hook``; a factory that fails is one line.

    Why: the factory is the operator's own code, run before any dial; one that raised
    anything but a secagg error (``int(os.environ["SECAGG_ROUNDS"])`` on ``ten``, a
    missing package, a bug) ended the branch in a traceback through click (review,
    2026-12-06). It is the branch's own set-up mistake: exit 2, one line naming
    ``--hook``, the exception's type and message. The secagg errors keep their own
    lines (a ConfigurationError from the hook names what to set, exit 2)."""
    from secagg.runtime.launch import load_hook

    try:
        return load_hook(spec, name, dimension)
    except (SecAggError, KeyboardInterrupt):
        raise
    except Exception as exc:  # the operator's code: any failure there is one line
        raise_stop_within(exc)  # a Ctrl-C or SIGTERM the hook's import wrapped: the stop
        _fail(
            "secagg client",
            f"{name}: --hook {spec} failed: {type(exc).__name__}: {_one_line(exc)}",
            2,
        )


def _state_failure(exc: BaseException, name: str, state_path: str | None) -> str:
    """A failure of the branch's ``--state`` file as one line, the file shown by
    :func:`shown_path` wherever the message names it (as the branch's state names it:
    the path as :class:`~pathlib.Path` writes it, which may differ from the one typed).

    Why: the message was folded to one line, but the file named in it raw, so an escape
    in its name (``--state $'b\\x1b[2Jx.state'``) reached the terminal as it was
    (tests/apps/test_client_state_path_shown.py)."""
    if state_path is None:
        return _one_line(exc, name)
    return _one_line_naming(exc, name, str(Path(state_path)))


def _check_budget_is_kept(
    policy: BranchPolicy,
    options: dict[str, object],
    state_path: str | None,
    name: str,
    policy_path: str | None = None,
) -> None:
    """Refuse a branch budget without ``--state`` (one line, exit 2), before anything is
    dialled.

    Why refuse rather than warn: a budget kept in memory starts again from 0 whenever the
    process restarts, and the server decides when it stops. It announces the federation's
    end early (exit 1), or runs the round the budget refuses (exit 3), and the service
    manager the deployment guide recommends (``Restart=on-failure``) starts the branch
    again with its whole budget: round after round, as if it had none (review of the
    branch budget, 2026-12-05). A state file costs nothing; the library's
    :class:`~secagg.runtime.client.FederationClient` still keeps a spend in memory (with
    a warning) for simulations and tests."""
    if policy.epsilon_budget is None or state_path is not None:
        return
    given = (
        "--epsilon-budget"
        if options.get("epsilon_budget") is not None
        else f"branch.epsilon_budget {_policy_flag(policy_path)}"  # which file, too
    )
    _fail(
        "secagg client",
        f"{name}: {given} needs --state: without a state file the spend is kept in memory "
        "and starts again from 0 whenever the branch restarts, which the server can cause "
        "(an early end exits 1, a refused round 3; a service manager then restarts it)",
        2,
    )


def _budget_summary(stats: Any) -> str:
    """``; epsilon spent 1.2346 of its budget 3.0000 (delta 1e-06)`` for a branch with its
    own budget (branch.epsilon_budget), rounded up; nothing without one."""
    from secagg.dp.display import shown

    spent = getattr(stats, "epsilon_spent", None)
    budget = getattr(stats, "epsilon_budget", None)
    delta = getattr(stats, "privacy_delta", None)
    if spent is None or budget is None or delta is None:
        return ""
    return (
        f"; epsilon spent {shown(spent)} of its budget {shown(budget)} "
        f"(delta {shown(delta, 4, significant=True)})"
    )


def _branch_policy(path: str | None, options: dict[str, object]) -> BranchPolicy:
    """The ``[branch]`` table of ``path`` (if given), overridden by the options set.

    A mistake of the file names it (``--policy F: branch.max_clip must be ...``), as
    ``secagg server --config F`` names its file: ``branch.max_clip must be positive``
    alone did not say which of a branch's files was wrong (as ``secagg simulate
    --config``, newcomer walk-through, 2026-12-07). A value typed as an option is named
    as that option, not as the file's key."""
    from dataclasses import fields

    known = [field.name for field in fields(BranchPolicy)]
    section: dict[str, object] = {}
    if path is not None:
        try:
            section = _read_table(path, "branch", known)
        except ConfigurationError as exc:
            raise ConfigurationError(in_file("--policy", path, str(exc))) from None
    typed = {key: value for key, value in options.items() if value is not None}
    section.update(typed)
    try:
        policy = BranchPolicy.from_dict(section)
    except ContradictoryPolicy as exc:
        # two keys: each named where it was given, a flag or the --policy file's key
        raise click.BadParameter(
            " with ".join(_said(key, typed, path) for key in exc.settings) + f": {exc.reason}",
            param_hint=" / ".join(f"'--{key.replace('_', '-')}'" for key in exc.settings),
        ) from None
    except ConfigurationError as exc:
        # a value typed as an option is named as that option, not as the policy file's
        # key: ``--max-clip -1`` said ``branch.max_clip must be ...`` (CLI audit, 2026-12-05)
        # (every such key: ``--epsilon-budget needs branch.delta`` named a flag and a key)
        message = str(exc)
        named = [key for key in typed if re.search(rf"\bbranch\.{key}\b", message)]
        for key in named:
            message = re.sub(rf"\bbranch\.{key}\b", "--" + key.replace("_", "-"), message)
        if named:
            flag = "--" + named[0].replace("_", "-")
            raise click.BadParameter(message, param_hint=f"'{flag}'") from None
        if path is not None:  # the file's own keys (typed options complete it)
            raise ConfigurationError(in_file("--policy", path, message)) from None
        raise
    return policy


def _said(key: str, typed: dict[str, object], path: str | None = None) -> str:
    """``--allow-plain`` for a key given as a flag, ``branch.allow_plain (--policy F)``
    for one read from the policy file F: where the operator changes it.

    Why: a :class:`~secagg.errors.ContradictoryPolicy` is two keys, often one of each
    (``--allow-plain`` beside a file's ``require_active = true``). The policy itself
    refuses such a pair since 2026-12-06 (``allow_plain`` beside a pinned key holder
    or the active variant: a plain round has neither guard, and the server chooses
    the backend); this command refused it on its own before, and a policy built in
    code took plain rounds with it."""
    flag = "--" + key.replace("_", "-")
    return flag if typed.get(key) is not None else f"branch.{key} {_policy_flag(path)}"


def _policy_flag(path: str | None) -> str:
    """``(--policy F)``: where a key of the policy file was read, the file named (a
    branch may keep several policy files; ``(--policy)`` said which flag, not which
    file)."""
    return "(--policy)" if path is None else f"(--policy {shown_path(path)})"
