"""``secagg simulate``: the main job, as a click command with a progress bar and a table."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import difflib
import errno
import logging
import os
import re
import signal
import sqlite3
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from secagg.aggregation import BACKENDS
from secagg.apps.cli_types import FINITE
from secagg.apps.commands.common import (
    _environment_cause,
    _path_failure,
    in_file,
    machine_failure,
    os_error_status,
    shown_path,
)
from secagg.apps.models import MODELS
from secagg.apps.models.tabular import MissingLabelColumn
from secagg.apps.simulation.config import (
    CSV_KEYS,
    DP_KEYS,
    ENGINES,
    FLAGS,
    PARTITIONS,
    PATH_KEYS,
    SECTION_OF,
    SOURCES,
    SYNTHETIC_KEYS,
    SimulationConfig,
    alpha_with_iid,
    csv_only,
    key,
    listed_names,
    paths_written,
    rows_without_customers,
    shown_file,
    spelled_for,
    synthetic_only,
    with_file_rounds,
)
from secagg.durable import special_file_kind
from secagg.errors import ConfigurationError, SecAggError
from secagg.runtime.config import SERVER_OPTIMIZERS
from secagg.transport.base import TransportError
from secagg.transport.waiting import raised_within


def _options(function: Any) -> Any:
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False),
            help="A TOML file (see secagg.apps.simulation.config); flags override it.",
        ),
        click.option("--branches", type=int, help="Number of branches [8]."),
        click.option(
            "--rounds",
            type=int,
            help="Federated rounds [10; 30 with --unit record --mechanism distributed].",
        ),
        click.option("--seed", type=int, help="Seed of data, training and dropouts [0]."),
        click.option(
            "--seeds",
            type=int,
            help="Run seeds --seed .. --seed + N - 1 and report mean ± sd over them [1].",
        ),
        click.option("--model", type=click.Choice(MODELS), help="Fraud model [mlp]."),
        click.option("--backend", type=click.Choice(BACKENDS), help="Aggregation [secagg+]."),
        click.option("--dropout", type=FINITE, help="Chance a branch vanishes in a round [0.05]."),
        click.option(
            "--unit",
            type=click.Choice(["record", "client"]),
            help="DP unit: a customer record, or a whole branch [record].",
        ),
        click.option(
            "--mechanism",
            type=click.Choice(["dpsgd", "central", "distributed", "off"]),
            help="dpsgd (record), central or distributed (client; with --unit record: "
            "DP gradient descent noised once in the secure sum), off [dpsgd].",
        ),
        click.option("--epsilon", type=FINITE, help="Target epsilon [3]."),
        click.option("--noise-multiplier", type=FINITE, help="Noise, instead of a target."),
        click.option("--delta", type=FINITE, help="DP delta [1e-5]."),
        click.option(
            "--clip",
            type=FINITE,
            help="Clip: per customer (dpsgd) [10] or per branch update (client level) [1].",
        ),
        click.option("--local-epochs", type=int, help="Local epochs per round [3]."),
        click.option("--batch-size", type=int, help="(Expected) batch size [256]."),
        click.option("--learning-rate", type=FINITE, help="Local learning rate [0.2]."),
        click.option("--server-learning-rate", type=FINITE, help="Server learning rate [2]."),
        click.option("--server-momentum", type=FINITE, help="Server momentum, FedAvgM [0]."),
        click.option(
            "--server-optimizer",
            type=click.Choice(SERVER_OPTIMIZERS),
            help="The server's step: sgd (FedAvg, FedAvgM with --server-momentum) or adam "
            "(FedAdam, Reddi et al. 2021: betas 0.9 / 0.99; give --server-learning-rate "
            "with it, e.g. 0.03: FedAvg's 2 wrecks the model) [sgd].",
        ),
        click.option(
            "--server-adam-tau",
            type=FINITE,
            help="With --server-optimizer adam: FedAdam's tau, its adaptivity, in "
            "[1e-100, 1e6] [1e-3].",
        ),
        click.option(
            "--prior",
            type=click.Choice(["auto", "public", "none"]),
            help="Start from public (trained on the generator's public reference worlds: "
            "it costs no privacy beyond the feature statistics' release) or none [auto: "
            "public for synthetic data].",
        ),
        click.option(
            "--prior-path",
            type=click.Path(dir_okay=False),
            help="Start from this model vector (.npy), e.g. an earlier run's model.npy. It "
            "costs what its own training spent on these customers (--prior-epsilon), which "
            "every ε reported for a setting starting from it includes.",
        ),
        click.option(
            "--prior-epsilon",
            type=FINITE,
            help="With DP and --prior-path, required: the ε the prior's training spent on "
            "these protected units (0 if it saw none of their data); composed with this "
            "run's by basic composition (ε's and δ's add).",
        ),
        click.option(
            "--prior-delta",
            type=FINITE,
            help="The prior's δ [--delta; 0 with --prior-epsilon 0].",
        ),
        click.option(
            "--trainable",
            type=click.Choice(["auto", "all", "head"]),
            help="Train every parameter or only the output layer [auto: the head with a "
            "prior, except with --unit record --mechanism distributed: all].",
        ),
        click.option("--data", "source", type=click.Choice(SOURCES), help="Data [synthetic]."),
        click.option("--path", type=click.Path(dir_okay=False), help="The CSV file."),
        click.option("--label", help="Label column of a generic CSV."),
        click.option(
            "--customer-column",
            help="CSV column of the customer (card/account) id: DP-SGD then protects a "
            "customer, not a transaction row.",
        ),
        click.option(
            "--max-rows-per-customer", type=int, help="Rows of a customer DP-SGD uses [8]."
        ),
        click.option(
            "--max-fraud-share",
            type=FINITE,
            help="A CSV whose label is 1 (fraud) on a larger share of its rows is refused "
            "(an inverted label?); raise it for a file where fraud is that common [0.5].",
        ),
        click.option(
            "--partition",
            type=click.Choice(PARTITIONS),
            help="CSV split: iid, dirichlet (label skew) or feature (skew on the file's "
            "first feature column, or --partition-column; per customer, its rows' mean) "
            "[dirichlet].",
        ),
        click.option(
            "--partition-column",
            help="With --partition feature: the feature column the branches are skewed on "
            "[the file's first].",
        ),
        click.option("--alpha", type=FINITE, help="Dirichlet concentration [0.5]."),
        click.option(
            "--train-rows",
            type=int,
            help="Synthetic training rows in all [120000]; not with a CSV.",
        ),
        click.option(
            "--world",
            type=click.Choice(["standard", "hard"]),
            help="Synthetic world: standard, or hard (a fraud ring only one branch has seen "
            "reaches every branch's test period) [standard].",
        ),
        click.option(
            "--test-rows",
            "test_rows_per_branch",
            type=int,
            help="Synthetic test rows per branch [20000]; not with a CSV.",
        ),
        click.option(
            "--engine",
            type=click.Choice(ENGINES),
            help="Where the branches run: inprocess (a thread each) or ray (client hosts "
            "in Ray actors, for many participants; needs the ray extra) [inprocess].",
        ),
        click.option(
            "--ray-address",
            help="--engine ray: join the Ray cluster at this address ('auto', "
            "'ray://HOST:10001') [start a local instance].",
        ),
        click.option("--ray-workers", type=int, help="--engine ray: client hosts [one per CPU]."),
        click.option("--out", type=click.Path(file_okay=False), help="Run folder (must be new)."),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def build_config(config_file: str | None, flags: dict[str, Any]) -> SimulationConfig:
    """Defaults, then the file, then the flags, validated once together.

    A flag for epsilon clears the file's noise multiplier and the other way round, and
    ``--server-optimizer sgd`` the file's FedAdam tau; a mechanism implies its unit
    (central and distributed: client, dpsgd: record; ``--unit record --mechanism
    distributed`` asks for record-level distributed DP) and a unit keeps the run private
    or not as it was. Validation messages name each field as the user set it: ``--label``
    for a flag (or a field the command line lacks), ``data.label`` for a key of the
    file. A flag may complete a file (a file with ``source = "csv"`` and ``--label`` on
    the command line).

    A mistake of the file (see :func:`_file_mistake`) names it first, as the party
    commands do: ``--config F: privacy.epsilon must be positive``.
    """
    return _config_and_file_values(config_file, flags)[0]


def _config_and_file_values(
    config_file: str | None, flags: dict[str, Any], *, check_files: bool = False
) -> tuple[SimulationConfig, dict[str, Any]]:
    """:func:`build_config`, and the values the file set (for the run's messages, which
    name each field as the user set it: :func:`_with_progress`).

    ``check_files`` (the command's run, not a library caller building a configuration
    to look at) also refuses a path key naming nothing or a folder, by the path as the
    user wrote it (:func:`_refuse_unreadable_path`)."""
    from_file = _file_values(config_file)
    typed = {k: v for k, v in flags.items() if v is not None}
    try:
        config = _checked_config(from_file, typed)
        if check_files:
            with spelled_for(flags=typed, file_keys=from_file):
                for name, written in _written_paths(typed, from_file).items():
                    if (opened := getattr(config, name)) is not None:
                        _refuse_unreadable_path(name, written, opened)
        return config, from_file
    except ConfigurationError as exc:
        if config_file is None or not _file_mistake(str(exc), from_file, typed):
            raise
        raise ConfigurationError(in_file("--config", config_file, str(exc))) from exc


def _file_values(config_file: str | None) -> dict[str, Any]:
    """The values ``--config`` sets (none without it), its every mistake one message
    that begins ``--config F``: a missing or empty file, one that is not TOML, an
    unknown section or key (with its likely spelling), a value of the wrong type.

    Why: those messages named the key (``unknown key privacy.epsilom``) but not the
    file, unlike ``secagg server --config F: ...`` (newcomer walk-through, 2026-12-07)."""
    if config_file is None:
        return {}
    # ``--config ""`` ran the defaults as if no file had been named (CLI audit,
    # 2026-12-05), and a missing one named the path but not the flag
    if not config_file.strip():
        raise ConfigurationError("--config is empty: name a TOML file, or drop it")
    if not Path(config_file).exists():
        raise ConfigurationError(in_file("--config", config_file, "no such file"))
    try:
        from_file = SimulationConfig.values_from_file(config_file)
        if from_file:
            return from_file
        from secagg.runtime.config import read_toml

        empty = not read_toml(config_file)
    except ConfigurationError as exc:
        raise ConfigurationError(in_file("--config", config_file, str(exc))) from exc
    if empty:
        # an empty file (a template never filled, a copy that failed) ran the whole
        # default federation, minutes of it, as if it were the file's (review,
        # 2026-12-06); a section header with no keys still means the defaults
        raise ConfigurationError(
            in_file(
                "--config",
                config_file,
                f"{config_file} sets nothing (is it empty?): write its keys ([simulation], "
                "[privacy], [training], [data]), or drop --config for the defaults",
            )
        )
    return from_file


def _file_mistake(message: str, from_file: dict[str, Any], typed: Iterable[str]) -> bool:
    """Whether a refusal of the configuration (its ``message``, in the words
    :func:`~secagg.apps.simulation.config.key` gave it) is the ``--config`` file's to
    fix, and so names the file: it names a key the file set, or no flag typed.

    A refusal that names only flags typed on the command line (``--epsilon must be
    positive`` over a file's ``epsilon = 3``) stays the flags': the file is not what
    the user changes. One that names both (``privacy.epsilon`` beside ``--mechanism
    off``) names the file and the flag, either of which the user may change."""
    return _names_a_file_key(message, from_file) or not any(
        re.search(rf"(?<![\w-]){re.escape(FLAGS[name])}(?![\w-])", message)
        for name in typed
        if name in FLAGS
    )


def _names_a_file_key(message: str, from_file: dict[str, Any]) -> bool:
    """Whether ``message`` names a key the ``--config`` file set, as ``section.key`` or
    ``[section] key``. Alone it decides for a refusal met once the run reads its data
    (a ``data.label`` its CSV lacks): such a line may name neither a key nor a flag (the
    CSV's own words), and is then not blamed on the file.

    A key's words inside a path (``--path runs/simulation.seed/t.csv``, a
    ``data.label.csv``) are not the key: a slash, a backslash or a dot and a name
    around them make them part of a file's name. Why: a data error about a typed
    ``--path`` under a folder called ``simulation.seed`` read ``--config F: ...``
    beside a file that set ``seed`` (second review of the in_file change,
    2026-12-07)."""
    for name in from_file:
        if name not in SECTION_OF:
            continue
        section, field = re.escape(SECTION_OF[name]), re.escape(name)
        spelt = rf"(?:{section}\.{field}|\[{section}\] {field})"
        if re.search(rf"(?<![\w./\\-]){spelt}(?![\w/\\-])(?!\.\w)", message):
            return True
    return False


def _checked_config(from_file: dict[str, Any], typed: dict[str, Any]) -> SimulationConfig:
    """The configuration of the file's values (``from_file``) and the flags typed,
    checked together (:func:`build_config`)."""
    changes = dict(typed)
    if "noise_multiplier" in changes and "epsilon" not in changes:
        changes["epsilon"] = None
    if "epsilon" in changes and "noise_multiplier" not in changes:
        changes["noise_multiplier"] = None
    # a typed FedAvg over a FedAdam file (a run folder's config.toml replayed as the
    # FedAvg control) clears the file's tau, which FedAvg has none of; a tau typed
    # beside it is still refused
    if changes.get("server_optimizer") == "sgd" and "server_adam_tau" not in changes:
        changes["server_adam_tau"] = None
    implied_unit = {"central": "client", "distributed": "client", "dpsgd": "record"}
    if changes.get("mechanism") in implied_unit and "unit" not in changes:
        changes["unit"] = implied_unit[changes["mechanism"]]
    if "unit" in changes and "mechanism" not in changes:
        private = from_file.get("mechanism", SimulationConfig.mechanism) != "off"
        changes["mechanism"] = (
            ("central" if changes["unit"] == "client" else "dpsgd") if private else "off"
        )
    with spelled_for(flags=typed, file_keys=from_file):
        config = SimulationConfig(**{**from_file, **changes})
        # the noise added once runs its own tuned number of steps unless told
        # otherwise (RECORD_DISTRIBUTED_ROUNDS says why and how it was chosen), as
        # SimulationConfig.load reads the same file
        config = with_file_rounds(config, rounds_given="rounds" in typed or "rounds" in from_file)
        # a file sets no None (TOML has no null): its None values are the clearing above
        given = [name for name in DP_KEYS if name in typed or from_file.get(name) is not None]
        if config.mechanism == "off" and given:
            # a run without DP would ignore them, and print a table a reader takes for
            # DP's: with ``mechanism = "off"`` beside ``epsilon = 3`` in a file (or
            # ``--mechanism off`` over a file's DP keys) the user believes DP is on
            names = ", ".join(key(name) for name in given)
            raise ConfigurationError(
                f"{names} {'is' if len(given) == 1 else 'are'} read only with a DP "
                f"mechanism, and this run has none ({key('mechanism', 'off')}): drop "
                f"{'it' if len(given) == 1 else 'them'}, or pick --mechanism dpsgd, "
                "central or distributed"
            )
        # a CSV brings its own rows: a synthetic-only key beside it (the default typed
        # included) would be ignored, and was recorded as if it had run
        synthetic = [n for n in SYNTHETIC_KEYS if n in typed or n in from_file]
        if config.source != "synthetic" and synthetic:
            raise ConfigurationError(synthetic_only(synthetic, config.source))
        # ... and the generator makes its own branches: a split's keys would be ignored
        loaded = [n for n in CSV_KEYS if n in typed or n in from_file]
        if config.source == "synthetic" and loaded:
            raise ConfigurationError(csv_only(loaded))
        # a Dirichlet concentration beside the IID split (it draws none), or a cap on
        # a customer's rows beside a file without customers, did nothing and was recorded
        if config.partition == "iid" and ("alpha" in typed or "alpha" in from_file):
            raise ConfigurationError(alpha_with_iid())
        rows_given = "max_rows_per_customer" in typed or "max_rows_per_customer" in from_file
        if not config.has_customers and rows_given:
            raise ConfigurationError(rows_without_customers())
        # saved into the run folder: a replay from another directory must find them
        absolute = {
            name: os.path.abspath(value)
            for name in PATH_KEYS
            if (value := getattr(config, name)) is not None
        }
        typed_paths = {name: str(getattr(config, name)) for name in absolute}
        if absolute:
            config = dataclasses.replace(config, **absolute)
        # a named pipe or a device for a file read "Error: X is a named pipe, not a CSV
        # file", naming no flag, and only after torch had loaded (seconds): said here,
        # naming the flag or key, before anything is imported or read (the readers still
        # refuse a file swapped for one after this, through their one open)
        for name, value in absolute.items():
            if (kind := special_file_kind(value)) is not None:
                shown = shown_path(typed_paths[name])
                raise ConfigurationError(f"{key(name)} {shown} is {kind}, not a file")
    return config


def _written_paths(flags: dict[str, Any], from_file: dict[str, Any]) -> dict[str, str]:
    """Each path key (:data:`PATH_KEYS`) as the user wrote it, the flag's over the
    file's, for the readers' messages (:func:`~secagg.apps.simulation.config.paths_written`)."""
    written = {}
    for name in PATH_KEYS:
        value = flags.get(name)
        value = from_file.get(name) if value is None else value
        if value is not None:
            written[name] = str(value)
    return written


def _refuse_unreadable_path(name: str, typed: str, opened: str) -> None:
    """Refuse a path key (:data:`PATH_KEYS`) naming nothing or a folder, in one line that
    names the flag or key and the path as the user wrote it (``typed``); what is checked
    is the absolute path the readers open (``opened``), never the written one.

    Why: the readers check the path after it was made absolute, so ``--path nofile.csv`` said
    ``--path /home/me/runs/nofile.csv: no such file``, and ``--prior-path m.npy`` said
    ``no prior model at /home/me/m.npy``: a path never typed. The words are the readers'
    own (:func:`secagg.apps.simulation.data._require_file`,
    :func:`secagg.apps.simulation.prior.read_prior_file`), which still check the file
    they open.

    Why ``opened`` is checked: the absolute path is normalised (``os.path.abspath`` drops
    a trailing slash and folds ``sub/..``), so ``--path tx.csv/`` or ``--path
    nosub/../tx.csv`` read tx.csv, and a check of the written form refused them as "no
    such file" (second review of this check, 2026-12-08)."""
    shown = shown_path(typed)
    if os.path.isdir(opened):
        if name == "prior_path":
            raise ConfigurationError(f"{shown} ({key(name)}) cannot be read: Is a directory")
        raise ConfigurationError(f"{key(name)} {shown} is a directory, not a file")
    if not os.path.exists(opened):
        tilde = _tilde_note(typed)
        if name == "prior_path":
            note = f"; {tilde}" if tilde else ""
            raise ConfigurationError(f"no prior model at {shown} ({key(name)}{note})")
        note = f" ({tilde})" if tilde else ""
        raise ConfigurationError(f"{key(name)} {shown}: no such file{note}")


def _tilde_note(typed: str) -> str:
    """``a leading ~ is not expanded ...`` when ``typed`` begins with a ``~`` that a
    shell would have made a home folder, else nothing.

    Why: no shell expands ``path = "~/tx.csv"`` in a ``--config`` file (nor a quoted
    ``--path '~/tx.csv'``), so the run looks for a folder called ``~`` in the directory
    it runs in. The refusal used to show that absolute path; named as written,
    ``data.path ~/tx.csv: no such file`` denied a file the user can see in their home
    (second review of the as-written check, 2026-12-08)."""
    if not typed.startswith("~") or os.path.expanduser(typed) == typed:
        return ""
    return "a leading ~ is not expanded here: write the home folder out"


def _run_dir(
    config: SimulationConfig, config_file: str | None = None, typed_out: bool = True
) -> Path:
    """The run folder: new or empty. A non-empty one named by the config file (a run
    folder's config.toml from before it left ``out`` out) says to pass ``--out``; so
    does a file's ``out`` that is a file, not a folder.

    Why the file's case names the file: ``out = "results"`` in a ``--config`` file
    where ``results`` was a file read ``--out results is a file, not a folder``,
    blaming a flag never typed (second review of the in_file change, 2026-12-07)."""
    if config.out is not None:
        path = Path(config.out)
        from_file = not typed_out and config_file is not None
        given = (
            f"{shown_path(str(path))} (out in {shown_path(str(config_file))})"
            if from_file
            else f"--out {path}"
        )
        if path.exists() and not path.is_dir():
            if from_file:
                raise ConfigurationError(
                    f"{given} is a file, not a folder: pass --out NEW-FOLDER to write this "
                    "run elsewhere"
                )
            raise ConfigurationError(f"{given} is a file, not a folder")
        if path.exists() and any(path.iterdir()):
            if not from_file:
                raise ConfigurationError(f"{given} is not empty: choose a new folder")
            raise ConfigurationError(
                f"{given} is not empty: pass --out NEW-FOLDER to write "
                "this run elsewhere (a replay of a run folder's config.toml needs a new one)"
            )
        return path
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("secagg-runs") / f"{stamp}-{config.backend}-{config.unit}"


@contextlib.contextmanager
def _no_empty_folder_left(run_dir: Path) -> Iterator[None]:
    """Remove the run folder if the run failed before writing anything into it.

    Why: a data error found once the run has started (an empty CSV, a missing prior)
    left an empty ``secagg-runs/<time>-...`` per attempt (CLI audit, 2026-12-03). Only
    a folder this run created and left empty is removed, never one with files in it."""
    existed = run_dir.exists()
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            if not existed and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()
        raise


class _Stopped(BaseException):
    """Raised in the main thread by SIGTERM while a simulation runs (see
    :func:`_marked_aborted_if_stopped`); a BaseException, as KeyboardInterrupt is, so no
    ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: what an aborted run folder holds: the reason, and that its files are no result
ABORTED_FILE = "ABORTED"

#: what a run folder left by a failed run holds: the cause, and that its files are no
#: result (a failure of the machine or its files: a full disk, a folder removed)
FAILED_FILE = "FAILED"

#: the files that present a finished run (or experiment): removed from a stopped one
RESULT_FILES = ("summary.json", "report.md", "experiment.json", "experiment.md")

#: the failures of the machine or its files a run can meet, said as one line (exit 1)
_ENVIRONMENT_ERRORS = (OSError, sqlite3.Error, SecAggError)


@contextlib.contextmanager
def _marked_failed_if_it_fails(run_dir: Path) -> Iterator[None]:
    """A simulation that fails (not a stop: see :func:`_marked_aborted_if_stopped`)
    leaves a run folder that cannot pass for a finished one, and a failure of the
    machine or its files is one line naming the folder, exit status 1.

    Why: only ConfigurationError and TransportError were said; an OSError (a full
    disk in the run folder, the folder removed mid-run), a StateError, a LedgerError
    or a sqlite3.Error from the run ended in a traceback and left the folder as it was,
    its ledger and server state with no word that the run never finished (environment-
    failure review, 2026-12-07). Now a folder this run wrote into gets a ``FAILED`` file
    naming the cause and loses the files that present a result, whatever the failure (a
    usage error found mid-run too); an empty one is removed, as before. A usage error's
    line (``click.UsageError``, exit 2) and any other exception go on as they were."""
    try:
        yield
    except Exception as exc:
        if raised_within(exc, (_Stopped, KeyboardInterrupt)) is not None:
            # a stop that surfaced as this (raised while it unwound, or wrapping it): the
            # stop's guard marks the run aborted and says this in its line; a FAILED file
            # too named it as the run's cause, beside the ABORTED (second stop review)
            raise
        cause = _environment_cause(exc)
        marked = False
        with contextlib.suppress(OSError):  # a full disk may refuse the marker too
            # a folder the run wrote nothing into stays empty: a new attempt may use it
            marked = _wrote_into(run_dir) and _mark_unfinished(
                run_dir,
                FAILED_FILE,
                f"This simulation failed at {_now()}, before it finished: {cause}.\n",
            )
        if not isinstance(exc, _ENVIRONMENT_ERRORS):
            raise
        if marked:
            left = f"{run_dir} is incomplete, marked failed ({run_dir / FAILED_FILE})"
        elif run_dir.is_dir() and not _wrote_into(run_dir):
            left = f"nothing was written into {run_dir}"
        elif run_dir.is_dir():  # the marker could not be written: its results are gone
            left = f"{run_dir} is incomplete (no summary.json, no report.md)"
        else:
            left = "no run folder was left"
        status = 2 if isinstance(exc, ConfigurationError) else 1
        failure = click.ClickException(f"the simulation failed: {cause}; {left}")
        failure.exit_code = status
        raise failure from exc


def _wrote_into(run_dir: Path) -> bool:
    """Whether the run folder is there and holds anything (an unreadable one: yes)."""
    try:
        return run_dir.is_dir() and any(run_dir.iterdir())
    except OSError:
        return True


def _now() -> str:
    """The time a marker file records, in UTC."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@contextlib.contextmanager
def _marked_aborted_if_stopped(run_dir: Path) -> Iterator[None]:
    """SIGTERM or Ctrl-C during a simulation: the run folder is marked aborted, one line
    says so, and the command exits 128 + the signal (143, 130).

    Why: SIGTERM killed the process silently (exit 143, no line), leaving a folder with a
    ledger of the rounds done, server state and no sign that the run never finished; one
    stopped while the folder was written could keep a summary.json and no report.md
    (simulate audit, 2026-12-04). Now a folder this run wrote into gets an ``ABORTED``
    file naming the signal and loses the files that present a result (summary.json,
    report.md, experiment.json/.md); the ledger and server state stay, for an auditor.
    An empty folder is removed (see :func:`_no_empty_folder_left`). The federation's
    threads may still be training when the signal comes: if any outlives the cleanup,
    the process leaves at once (``os._exit``), without waiting for them.

    The signal is remembered as well as raised: Python runs the handler wherever the main
    thread is, and in a finaliser (``__del__``, a weakref callback) its exception is
    only printed ("Exception ignored in ...") and the run went on to exit 0 with a
    summary.json, as if never stopped (measured: a SIGTERM raised in a ``__del__``). A
    stop taken there still ends the run marked aborted, at the block's end, and the
    swallowed exception prints nothing. Ctrl-C is remembered the same way (its handler
    still raises KeyboardInterrupt, which the code run here expects): taken in a
    ``__del__`` as the report was written, it printed a traceback and the run exited 0
    with its summary.json (simulate audit, 2026-12-05). Its handler replaces only
    Python's own: a job started with SIGINT ignored keeps ignoring it. Both signals are
    ignored while the folder is marked: a second Ctrl-C broke the marking with a
    traceback and left no ``ABORTED`` file."""
    stopped: list[int] = []  # the signal taken, also where its exception was swallowed

    def stop(signum: int, frame: object) -> None:
        del frame
        stopped.append(signum)
        raise _Stopped(signum)

    def interrupt(signum: int, frame: object) -> None:
        del frame
        stopped.append(signum)
        raise KeyboardInterrupt

    previous_hook = sys.unraisablehook

    def unraisable(info: Any) -> None:  # the stop a finaliser took: said below, once
        if not isinstance(info.exc_value, _Stopped | KeyboardInterrupt) or not stopped:
            previous_hook(info)

    previous_int = None
    # whether the handlers are this guard's: ``previous`` alone cannot say, as it is None
    # too for a handler not installed from Python (an embedding program's, set in C),
    # and the guard then left its Ctrl-C handler and unraisable hook behind it
    installed = False
    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (an embedding caller): no handler
        previous = None
    else:
        installed = True
        sys.unraisablehook = unraisable
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous_int = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
        if stopped:  # taken where its exception was swallowed: the run is no result
            raise _Stopped(stopped[0])
    except BaseException as exc:
        # a stop that surfaced as another exception (or none) is still the stop
        if stopped:
            signum = stopped[0]
        elif isinstance(exc, KeyboardInterrupt):
            signum = signal.SIGINT
        else:
            raise
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one: finish this
            if previous_int is not None:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        name = signal.Signals(signum).name
        where = _mark_aborted(run_dir, name)
        # what the stop surfaced as, or met on the way out (a disk error as the ledger
        # closed): the stop is the run's end, but this may be a failure of its own
        met = (
            ""
            if isinstance(exc, _Stopped | KeyboardInterrupt)
            else f" (on the way out: {type(exc).__name__}: {_environment_cause(exc)})"
        )
        # a stderr whose reader is gone (a closed pipe) raised here, and the process then
        # waited for every branch thread to finish training before it left (CLI audit)
        with contextlib.suppress(OSError):
            click.echo(
                f"Error: stopped by {name} before the simulation finished{met}: "
                + (
                    f"{run_dir} is incomplete, marked aborted ({run_dir / ABORTED_FILE})"
                    if where
                    else "no run folder was left"
                ),
                err=True,
            )
        code = 128 + signum
        if any(t.is_alive() for t in threading.enumerate() if t is not threading.main_thread()):
            # a branch's thread may still be training: waiting for it could take a round,
            # and ending the interpreter under it aborts in torch (exit 134)
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(code)
        raise SystemExit(code) from None
    finally:
        if installed:
            sys.unraisablehook = previous_hook
            with contextlib.suppress(ValueError):
                if previous is not None:  # None cannot be put back: ours stays
                    signal.signal(signal.SIGTERM, previous)
                if previous_int is not None:
                    signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def _said_complete_if_stopped(run_dir: Path, report: str = "report.md") -> Iterator[None]:
    """Ctrl-C or SIGTERM once the run folder is written (as the table is printed): one
    line says the folder is complete, and the command exits 130 or 143.

    Why: click turned a Ctrl-C there into a bare "Aborted!" and exit 1, the status of a
    run whose every round failed, and SIGTERM (its handler gone with the run) killed the
    process without a word; the folder was complete either way."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_stopped)
    except ValueError:  # not the main thread (an embedding caller): no handler
        previous = None
    try:
        yield
    except (KeyboardInterrupt, _Stopped) as exc:
        signum = exc.signum if isinstance(exc, _Stopped) else signal.SIGINT
        with contextlib.suppress(OSError):
            click.echo(
                f"Error: stopped by {signal.Signals(signum).name} after the simulation "
                f"finished: {run_dir} is complete ({run_dir / report}); only this "
                "summary was cut short",
                err=True,
            )
        raise SystemExit(128 + signum) from None
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGTERM, previous)


def _raise_stopped(signum: int, frame: object) -> None:
    """A signal's handler: the signal as a :class:`_Stopped` in the main thread."""
    del frame
    raise _Stopped(signum)


def _mark_aborted(run_dir: Path, signal_name: str) -> bool:
    """Write ``ABORTED`` into ``run_dir`` (if the run left anything there) and remove the
    files that present a result; returns whether the folder is there."""
    return _mark_unfinished(
        run_dir,
        ABORTED_FILE,
        f"This simulation was stopped by {signal_name} at {_now()}, before it finished.\n",
    )


def _mark_unfinished(run_dir: Path, marker: str, first_line: str) -> bool:
    """Write ``marker`` (``ABORTED``, ``FAILED``) into ``run_dir``, if the run left
    anything there, after removing the files that present a result; returns whether the
    folder is there. Those files go first: on a full disk their space is what lets the
    marker be written."""
    if not run_dir.is_dir():
        return False
    for name in RESULT_FILES:
        with contextlib.suppress(OSError):
            (run_dir / name).unlink(missing_ok=True)
    (run_dir / marker).write_text(
        first_line + "Its files are incomplete and are no result: the ledger and the server state\n"
        "hold the rounds done so far (for an audit); a seed-*/ folder with a report.md\n"
        "is one finished seed of an experiment. Run it again into a new --out folder.\n"
    )
    return True


@click.command()
@_options
def simulate(config_file: str | None, as_json: bool, quiet: bool, **flags: Any) -> None:
    """Run a bank-branch fraud federation with its baselines and write a run folder.

    With no arguments: 8 branches of synthetic card transactions, SecAgg+,
    record-level (customer-level) DP-SGD in every branch at epsilon = 3,
    delta = 1e-5, 10 rounds of 3 local epochs, 5 % dropouts. Prints local-only, federated and
    centralized (non-private) results.

    Exit status: 0 when the federation trained a model; 1 when no federated round
    completed (with --seeds, in no seed): the run folder is written and reads
    UNTRAINED, and one line says why; 1 too when the machine or its files fail under
    the run (a full disk, a database error): one line, and the folder is marked FAILED;
    2 for a mistake in the flags or the config; 143 or 130 when stopped by SIGTERM or
    Ctrl-C.
    """
    from secagg.apps.simulation.report import no_round_completed, write_run_folder
    from secagg.apps.simulation.runner import run_simulation

    try:
        with _small_draws_said_once():
            config, from_file = _config_and_file_values(config_file, flags, check_files=True)
        run_dir = _run_dir(config, config_file, typed_out=flags.get("out") is not None)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # the file named, not read: by the project's one rule
        raise _path_failure(exc, "--config") from exc
    typed = [k for k, v in flags.items() if v is not None]
    _check_run_dir_writable(run_dir)
    with (
        paths_written(_written_paths(flags, from_file)),
        _quiet_libraries(),
        _marked_aborted_if_stopped(run_dir),
        _marked_failed_if_it_fails(run_dir),
        _no_empty_folder_left(run_dir),
    ):
        progress_bar = None if (quiet or as_json) else _ProgressBar()
        if config.seeds > 1:
            experiment = _experiment(
                config, run_dir, typed, from_file, progress_bar, config_file=config_file
            )
        else:
            result = _with_progress(
                run_simulation,
                config,
                run_dir,
                progress_bar,
                typed=typed,
                from_file=from_file,
                config_file=config_file,
            )
            _check_run_dir_still_there(run_dir)
            written = write_run_folder(result, run_dir)
    if config.seeds > 1:
        # the experiment folder is complete: a stop while its lines print says so (it
        # was marked ABORTED, its complete files removed, helper-86's audit)
        _print_experiment(experiment, run_dir, as_json)
        return
    with _said_complete_if_stopped(run_dir):
        if as_json:
            click.echo((run_dir / "summary.json").read_text())
        else:
            _print_table(result, run_dir, written)
    why = no_round_completed(result)
    if why is not None:  # the folder is written and says UNTRAINED; the run still failed
        raise click.ClickException(
            f"no federated round completed: {why}; the model is untrained, not a result "
            f"({run_dir}, report.md, records the run)"
        )


def _check_run_dir_writable(run_dir: Path) -> None:
    """``--out`` names a folder this process can make, or one it can write in: else one
    usage line naming ``--out``, exit 2, before anything is trained.

    A missing folder is made and removed here (the run makes it again, and a failed run
    leaves none behind). An existing (empty) one is probed with a folder made and removed
    in it. Why the probe: a read-only ``--out`` passed this check, the run trained for
    minutes and then failed on its first file with a traceback (environment-failure
    review, 2026-12-07)."""
    target, action = (
        (run_dir, "create it")
        if not run_dir.exists()
        else (run_dir / f".secagg-write-test-{os.getpid()}", "write in it")
    )
    try:
        target.mkdir(parents=True)
        target.rmdir()
    except OSError as exc:
        # by the project's one rule (``os_error_status``): what the path names is the
        # user's mistake (exit 2); what the machine refuses (no permission, read-only,
        # an I/O error) is exit 1, one line naming --out, the path and the cause
        if os_error_status(exc) == 1:
            raise machine_failure(
                "--out", f"{run_dir}: cannot {action}: {exc.strerror or exc}"
            ) from exc
        raise click.UsageError(f"--out {run_dir}: cannot {action}: {exc.strerror or exc}") from exc


def _check_run_dir_still_there(run_dir: Path) -> None:
    """Raise FileNotFoundError if the run folder went away while the federation ran.

    Why: the run keeps its ledger and server state open, so it finished without a word
    of it, and writing the results made the folder again: a summary.json and a report.md
    that name a ledger and a server state no longer there, a result no one can audit
    (environment-failure review, 2026-12-07). The run then fails as any other failure
    of its files does (:func:`_marked_failed_if_it_fails`)."""
    if not run_dir.is_dir():
        raise FileNotFoundError(
            errno.ENOENT,
            "the run folder was removed while the simulation ran (its ledger and server "
            "state with it)",
            str(run_dir),
        )


def _with_progress(
    job: Any,
    config: SimulationConfig,
    out: Path,
    progress_bar: _ProgressBar | None,
    *,
    typed: list[str],
    from_file: dict[str, Any],
    config_file: str | None = None,
) -> Any:
    """``job(config, out[, progress])`` behind the progress bar (if any), its data errors
    naming each field as the user set it, and raised as one usage line: one of the
    ``--config`` file's (a ``data.label`` its CSV lacks) names the file first
    (:func:`_names_a_file_key`)."""
    try:
        with spelled_for(flags=typed, file_keys=from_file):
            if progress_bar is None:
                return job(config, out)
            with progress_bar:
                return job(config, out, progress_bar.update)
    except ConfigurationError as exc:
        with spelled_for(flags=typed, file_keys=from_file):
            message = _no_label_column(exc, config) or str(exc)
        if config_file is not None and _names_a_file_key(message, from_file):
            message = in_file("--config", config_file, message)
        raise click.UsageError(message) from exc
    except TransportError as exc:  # the Ray engine's client hosts failed to start
        raise click.ClickException(str(exc)) from exc


#: the most columns a missing ``--label``'s line names, and the longest name it quotes
_MAX_COLUMNS_SHOWN = 12
_MAX_COLUMN_CHARS = 40


def _no_label_column(exc: ConfigurationError, config: SimulationConfig) -> str | None:
    """A missing label column (:class:`~secagg.apps.models.tabular.MissingLabelColumn`) as
    the one line of the flag (``--label x``, or ``data.label = 'x'`` from the file) with a
    bounded list of the file's columns and the nearest one; None for any other error.

    Why: the line did not name ``--label``, and listed every column: a 10,000-column
    file printed a line of about 200 KB (front-door review, 2026-12-05). The loader
    knows no flags, so the line is said here, from the columns the error carries."""
    if not isinstance(exc, MissingLabelColumn) or config.label is None:
        return None
    columns = list(exc.columns)

    def quoted(column: str) -> str:
        text = repr(column)  # a newline or an escape in a header stays on the line
        return text if len(text) <= _MAX_COLUMN_CHARS else text[: _MAX_COLUMN_CHARS - 4] + "...'"

    nearest = difflib.get_close_matches(config.label, columns, n=1, cutoff=0.6)
    hint = f"; the nearest is {quoted(nearest[0])}" if nearest else ""
    shown = listed_names([quoted(c) for c in columns], _MAX_COLUMNS_SHOWN)
    return (
        f"{key('label', config.label)}: {shown_file('path', str(config.path))} has no "
        f"column {config.label!r} "
        f"(its {len(columns)} columns: {shown}){hint}"
    )


@contextmanager
def _small_draws_said_once() -> Iterator[None]:
    """While the configuration is built: its :class:`SmallDrawWarning` (too many Poisson
    draws too small for a round, in the simulation's keys) is said once, as one
    ``warning:`` line; any other warning goes on as it was given.

    Why: ``sample_rate = 0.3`` over 40 branches printed it three times, once in Python's
    raw form (``<string>:16: SmallDrawWarning: ...``) naming the federation's keys, as
    the configuration, the early checks and the federation each planned it (review,
    2026-12-07). The run says no more of it (:func:`_quiet_libraries`)."""
    from secagg.runtime.config import SmallDrawWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SmallDrawWarning)
        yield
    said: set[str] = set()
    for warning in caught:
        if not issubclass(warning.category, SmallDrawWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
            continue
        text = " ".join(str(warning.message).split())
        if text not in said:
            said.add(text)
            click.echo(f"warning: SmallDrawWarning: {text}", err=True)


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """While the simulation runs: the progress bar tells the story, so the engine logs
    errors only and Opacus's and torch's advisory warnings are hidden. The federation's
    verdict is not logged at all: the console says it (an early stop read twice, once as
    the server's ERROR record, review 2026-12-05). Restored after, so a caller that runs
    the command in-process (tests, notebooks) keeps its logging."""
    from secagg.runtime.config import SmallDrawWarning
    from secagg.runtime.outcome import reported_by_caller

    logger = logging.getLogger("secagg")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), reported_by_caller():
            warnings.filterwarnings("ignore", module="opacus")
            warnings.filterwarnings("ignore", category=UserWarning, module="torch")
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            # said once at load (:func:`_small_draws_said_once`), in the simulation's keys
            warnings.filterwarnings("ignore", category=SmallDrawWarning)
            # the DP engine says a privacy caveat to each trainer that asks (every
            # branch's, local-only and federated): the console says each caveat once
            # (``--epsilon 1e308`` printed the same NoiseFloorWarning 16 times). Not a
            # "once" filter: every catch_warnings the trainers enter resets its memory
            warnings.showwarning = _each_privacy_caveat_once(warnings.showwarning)
            yield
    finally:
        logger.setLevel(level)


def _each_privacy_caveat_once(show: Any) -> Any:
    """A ``warnings.showwarning`` that prints each distinct privacy caveat
    (:class:`~secagg.dp.config.PrivacyCostWarning`, its text) once, any other warning
    every time, each as one line on stderr: ``warning: <Category>: <text>``. ``show``
    (Python's own) is kept for a caller's ``file``.

    Why one line: Python's form printed the source file's path and, under it, the line
    of code that warned (``  return DPConfig(``), which reads as a traceback:
    ``secagg simulate --branches 2 --unit client`` showed both above its table
    (simulate audit, 2026-12-05), as ``secagg server`` did before its own fix."""
    from secagg.dp.config import PrivacyCostWarning

    said: set[tuple[type, str]] = set()
    lock = threading.Lock()  # the branches' trainers are built in threads

    def once(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, PrivacyCostWarning):
            with lock:
                if (category, str(message)) in said:
                    return
                said.add((category, str(message)))
        if file is not None:  # a caller's own stream: its own form
            show(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())
        click.echo(f"warning: {category.__name__}: {text}", err=True)

    return once


def _experiment(
    config: SimulationConfig,
    out_dir: Path,
    typed: list[str],
    from_file: dict[str, Any],
    progress_bar: _ProgressBar | None,
    config_file: str | None = None,
) -> Any:
    """``--seeds N``: every seed's run folder under ``out_dir``, then mean ± sd (the
    :class:`~secagg.apps.simulation.experiment.ExperimentResult`, written)."""
    from secagg.apps.simulation.experiment import run_experiment

    return _with_progress(
        run_experiment,
        config,
        out_dir,
        progress_bar,
        typed=typed,
        from_file=from_file,
        config_file=config_file,
    )


def _print_experiment(result: Any, out_dir: Path, as_json: bool) -> None:
    """A written experiment's lines (or its JSON) on the console, then exit 1 if no
    seed has a model. Outside the run's guard: a Ctrl-C or SIGTERM here leaves the
    complete folder complete and says so in one line (exit 130 or 143)."""
    from secagg.apps.simulation.experiment import experiment_lines

    with _said_complete_if_stopped(out_dir, "experiment.md"):
        if as_json:
            click.echo((out_dir / "experiment.json").read_text())
        else:
            for line in experiment_lines(result):
                click.echo(line)
            click.echo(f"experiment folder: {out_dir} (experiment.md, experiment.json, seed-*/)")
    if result.seeds and set(result.untrained_seeds) >= set(result.seeds):
        # no seed has a model: the experiment has no figure at all (a seed or two
        # untrained among trained ones is a result, with those seeds named UNTRAINED)
        first = result.seeds[0]
        raise click.ClickException(
            f"no federated round completed in any of the {len(result.seeds)} seeds (seed "
            f"{first}: {result.untrained_why.get(first, 'no round completed')}); the models "
            f"are untrained, not a result ({out_dir}, experiment.md and seed-*/report.md, "
            "record the runs)"
        )


class _ProgressBar:
    """One rich progress bar per stage: local-only, centralized, federated rounds.

    The bars start with the first stage's first update, not on entering the block.
    Why: a run refused before any stage began (a CSV without a fraud row, a label
    column it lacks) printed an empty line on stdout (rich's last render of no bars)
    before its ``Error: ...`` line, where ``--quiet`` printed the line alone (second
    review of the in_file change, 2026-12-07)."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
        )
        self._tasks: dict[str, Any] = {}
        self._started = False

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._started = False
            self._progress.__exit__(*exc)  # type: ignore[arg-type]

    def update(self, stage: str, done: int, total: int, message: str) -> None:
        if not self._started:
            self._progress.__enter__()
            self._started = True
        if stage not in self._tasks:
            self._tasks[stage] = self._progress.add_task(stage, total=total, note="")
        self._progress.update(self._tasks[stage], completed=done, total=total, note=message)


def _print_table(result: Any, run_dir: Path, written: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    from secagg.apps.simulation.report import (
        COLUMNS,
        divergence_lines,
        fmt,
        fmt_bytes,
        fmt_epsilon,
        local_only_lines,
        metric_cell,
        privacy_lines,
        rounds_run,
        summary_rows,
        untrained_lines,
    )

    console = Console(width=None if sys.stdout.isatty() else 150)
    c = result.config
    # FedAdam is named, as in an experiment's title: a FedAdam run and its FedAvg
    # control printed the same title (second review of FedAdam, 2026-12-07)
    step = f", server step {c.server_step}" if c.server_optimizer == "adam" else ""
    table = Table(
        title=f"{c.branches} branches, {rounds_run(result)}, {c.backend}, "
        + (f"{c.protected}-level DP ({c.mechanism})" if c.private else "no DP")
        + step
    )
    for column in ("setting", *COLUMNS.values(), "ε", "sent/branch/round", "s/round"):
        table.add_column(
            column, justify="left" if column == "setting" else "right", no_wrap=column == "setting"
        )
    for row in summary_rows(result):
        # rounded up, as report.md's: to the nearest, the default run's 2.9947 read 2.99
        eps = fmt_epsilon(row["epsilon"], 2) + (
            f" ({row['epsilon_unit']})" if row["epsilon_unit"] else ""
        )
        table.add_row(
            row["setting"],
            *(metric_cell(row, column) for column in COLUMNS),
            eps,
            fmt_bytes(row["bytes_sent_per_branch_per_round"]),
            fmt(row["seconds_per_round"], 1),
        )
    console.print(table)
    fed = next(v for k, v in result.settings.items() if k.startswith("federated"))
    verdicts = result.branch_verdicts
    behind = [n for n, v in verdicts.items() if v["judged"] and not v["at_least_local"]]
    few = [n for n, v in verdicts.items() if not v["enough_frauds"]]
    compared = (
        "no branch compared with local-only (the federated model is UNTRAINED)"
        if fed.get("untrained")
        else "branches behind local-only (95 % paired bootstrap interval below 0): "
        + (listed_names(behind) or "none")
    )
    console.print(
        f"dropouts: {len(result.dropouts)}; rounds completed {fed['rounds_completed']}, "
        f"aborted {fed['rounds_aborted']}; {compared}"
        + (
            f"; too few test frauds (or cards holding them) to judge well: {listed_names(few)}"
            if few
            else ""
        )
    )
    last = fed.get("last_rounds")
    if last:
        from secagg.apps.simulation.report import last_rounds_auprc, rounds_phrase

        console.print(
            f"federated AUPRC, mean of {rounds_phrase(last['rounds'])}: "
            f"{last_rounds_auprc(last['auprc'])}",
            markup=False,
        )
    console.print(
        "pooled: all test sets scored together (local-only: each by its own branch's model); "
        "one seed is one draw: --seeds 5 reports mean ± sd over five",
        markup=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", style="yellow", markup=False)
    for line in untrained_lines(result):
        console.print(line, style="bold red", markup=False)
    for line in divergence_lines(result):
        console.print(line, style="bold red", markup=False)
    for line in local_only_lines(result):
        console.print(line, markup=False)
    for line in privacy_lines(result):
        console.print(line, style="bold red" if "ABOVE" in line else None, markup=False)
    console.print(
        f"run folder: {run_dir} ({', '.join(p.name for p in written)}, server.sqlite, "
        "ledger.sqlite, ledger.pub.pem)"
    )
    console.print(f"total {result.seconds:.1f} s")
