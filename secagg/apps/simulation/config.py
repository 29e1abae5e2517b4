"""What a simulation is: one validated object, from defaults, a TOML file or CLI flags.

The defaults are the README's main job: 8 bank branches, SecAgg+, record-level
(customer-level) DP-SGD in every branch at epsilon = 3, delta = 1e-5. A file
overrides any of them::

    [simulation]
    branches = 8
    rounds = 10                 # 30 with unit record + mechanism distributed (when
                                # neither the file nor --rounds sets it)
    seed = 0
    model = "mlp"               # logistic | mlp
    backend = "secagg+"         # plain | secagg | secagg+ | ckks
    dropout = 0.05              # chance a branch vanishes in a round, at a random phase
    tolerated_dropout = 0.25    # SecAgg+ k and t survive this dropout fraction ...
    corrupt_fraction = 0.25     # ... and this fraction of colluding branches
    out = "secagg-runs/demo"     # default: secagg-runs/<time>-<backend>-<unit>; a run
                                # folder's config.toml leaves it out, so replaying it
                                # writes a new folder
    seeds = 1                   # > 1: seeds seed .. seed + seeds - 1, mean ± sd
    engine = "inprocess"        # where the branches run: inprocess (threads) | ray
    # ray_address = "auto"      # ray: join this cluster (default: start a local instance)
    # ray_workers = 4           # ray: client hosts (default: one per CPU)
    sample_rate = 1.0           # Poisson rate q at which a branch joins a round; the
                                # client-level accountant uses it (file only, no flag)

    [privacy]
    unit = "record"             # record (a customer) | client (a whole branch)
    mechanism = "dpsgd"         # record: dpsgd | distributed | off;
                                # client: central | distributed | off
    epsilon = 3.0               # a target (at most 1e6); or give noise_multiplier instead
    delta = 1e-5
    # clip = 10.0               # per customer (DP-SGD; default 10) or per branch
                                # update (client level; default 1)

    [training]
    local_epochs = 3
    batch_size = 256
    learning_rate = 0.2
    positive_weight = 10.0
    server_learning_rate = 2.0
    server_momentum = 0.0       # FedAvgM (with server_optimizer = "sgd" only)
    server_optimizer = "sgd"    # sgd (FedAvg / FedAvgM) | adam (FedAdam, Reddi et al.
                                # 2021: betas 0.9 / 0.99), the federation server's step;
                                # adam needs server_learning_rate given (e.g. 0.03)
    # server_adam_tau = 1e-3    # adam only (default 1e-3): its adaptivity, in
                                # [1e-100, 1e6]
    prior = "auto"              # public | none; auto: public for synthetic data
    # prior_path = "run/model.npy"  # start from an earlier run's released model
    # prior_epsilon = 2.96      # with DP and prior_path, required: the epsilon its own
                                # training spent on these protected units (0: it saw
                                # none of their data); every epsilon of a setting that
                                # starts from it adds it (basic composition)
    # prior_delta = 1e-5        # ... and its delta (default: delta; 0 with epsilon 0)
    trainable = "auto"          # all | head; auto: head (the output layer) with a prior,
                                # all with unit record + mechanism distributed
    prior_validation = "world"  # the public prior chooses its lr and epochs on: world
                                # (another public world, what it is used on) |
                                # customer (held-out whole cards of its own worlds) | row
    centralized_validation = "customer"  # the centralized baseline chooses on:
                                # customer (held-out whole cards; chosen by the tuning
                                # seeds' check) | time (the latest fifth of its rows;
                                # customer without row times) | row

    [data]
    source = "synthetic"        # synthetic | creditcard | csv
    # path = "transactions.csv" # creditcard / csv
    # label = "is_fraud"        # csv: the label column
    # customer_column = "card_id" # creditcard / csv: DP-SGD then protects a customer
    # max_rows_per_customer = 8 # ... over up to this many of their rows
    standardize = "auto"        # secure | public | none; auto: secure for record-level
                                # DP and no DP, public for client-level DP
    # stats_path = "stats.json" # public statistics (CSV with standardize = "public")
    stats_bound = 5.0           # secure: each raw value is clipped to [-bound, bound]
    stats_noise_multiplier = 10.0  # secure with record-level DP: z per block
    # max_fraud_share = 0.5     # creditcard / csv: a file whose label is 1 on more of
                                # its rows is refused (an inverted label?); raise it
                                # for a file where fraud is that common (undersampled)
    # partition = "dirichlet"   # creditcard / csv: iid | dirichlet (labels) | feature
                                # (skews on the file's first feature column)
    # partition_column = "amount" # feature: the column it skews on instead (a
                                # feature column: not the label or customer column)
    # alpha = 0.5
    train_rows = 120000         # synthetic only (these three): a CSV brings its own
    test_rows_per_branch = 20000 # rows, and refuses them; its run records none of them
    world = "standard"          # synthetic: standard | hard | many (~1 000 small
                                # participants: examples/many_participants.toml)

Unknown keys are errors: a typo must not silently run the default; the message names
the likely spelling (``privacy.epsilom``: did you mean ``privacy.epsilon``?) or the
section a key belongs in. So are values of
the wrong type (``epsilon = "three"``: ``[privacy] epsilon must be a number``). A
message names each field as the user set it: the CLI flag (``--label``) for a flag, or
a field the command line lacks; the TOML key (``data.label``) for one from the file.

Sizes are capped (:data:`CAPS`), a round no backend can run with ``tolerated_dropout``,
``corrupt_fraction`` and the branches is refused at load (the federation's own plan,
in this file's key names), and so are DP keys (:data:`DP_KEYS`) beside ``mechanism =
"off"`` in ``secagg simulate``, the synthetic generator's keys
(:data:`SYNTHETIC_KEYS`) beside a CSV and a file's split keys (:data:`CSV_KEYS`) beside
synthetic data; real-valued knobs past :data:`REAL_CAPS` (or infinite) are refused
too. Relative paths (:data:`PATH_KEYS`) are read from the directory the command runs
in, and saved absolute in the run folder; an empty one is refused.

Data no federation can learn from is refused before training
(:func:`check_branch_data`): no positive label at all, a branch with fewer than
:data:`MIN_TRAIN_ROWS` training rows, and (for a CSV, whose split the user chooses) a
branch whose training set holds no fraud. A synthetic branch without a training fraud,
or a branch whose test set holds none, is a note in the results instead.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Final

from secagg.aggregation import BACKENDS
from secagg.aggregation.policy import MAX_CLIP
from secagg.apps.models import MODELS
from secagg.apps.models.tabular import MAX_ALPHA
from secagg.errors import ConfigurationError
from secagg.runtime.config import (
    ADAM_BETA1,
    ADAM_BETA2,
    MAX_SERVER_ADAM_TAU,
    MIN_SERVER_ADAM_TAU,
    SERVER_OPTIMIZERS,
    FederationConfig,
)

UNITS = ("record", "client")
MECHANISMS = {
    "record": ("dpsgd", "distributed", "off"),
    "client": ("central", "distributed", "off"),
}
SOURCES = ("synthetic", "creditcard", "csv")
STANDARDIZE = ("auto", "secure", "public", "none")
PRIORS = ("auto", "public", "none")
TRAINABLE = ("auto", "all", "head")
#: what the tuned fits hold out to choose their start, learning rate and epochs on (see
#: :mod:`~secagg.apps.simulation.tuning`): single rows (the default before 2026-12-07)
#: or whole customers (a card's rows never on both sides). Both fits still take them
#: (``prior_validation``, ``centralized_validation``), and a config.toml of before
#: 2026-12-07 sets both with its one ``tuning_validation``
TUNING_VALIDATIONS = ("row", "customer")
#: what the public prior validates on: ``world``, a public world held out of its fit
#: (another derived seed; the prior is used on another world, the run's branches), or
#: one of :data:`TUNING_VALIDATIONS` on its own worlds' rows
PRIOR_VALIDATIONS = ("world", *TUNING_VALIDATIONS)
#: what the centralized baseline validates on: ``time``, the latest fifth of its
#: training rows (it is scored on a later period), or one of :data:`TUNING_VALIDATIONS`
CENTRALIZED_VALIDATIONS = ("time", *TUNING_VALIDATIONS)
PARTITIONS = ("iid", "dirichlet", "feature")
ENGINES = ("inprocess", "ray")


#: the rounds of record-level DP with the noise added once (``unit = "record"``,
#: ``mechanism = "distributed"``) when neither a file nor ``--rounds`` sets them: each
#: round is one step of full-batch DP gradient descent, and ten steps left the
#: federation short of where its signal could take it (without any noise, ten steps
#: scored as ten noised ones: the steps, not the noise, were what limited it). Chosen
#: on the tuning seeds 1000-1009 by a rule fixed before the runs
#: (docs/results.md, "Thirty steps of the noise once"): of 10, 20, 30, 40 rounds at the
#: server learning rate 2 and 10, 20 at 4, the highest mean federated / centralized
#: ratio, if its worst seed and its branches at least local were no worse, and only if
#: it beat ten rounds by 0.01: 30 rounds, 0.946 against 0.922 (worst seed 0.717 against
#: 0.643). The noise is re-sized for the rounds (epsilon is the same target)
RECORD_DISTRIBUTED_ROUNDS = 30

#: the keys only a DP mechanism reads: ``secagg simulate`` refuses them beside
#: ``mechanism = "off"`` (the user believes DP is on), and a run without DP writes none
DP_KEYS = ("epsilon", "noise_multiplier", "delta", "clip", "prior_epsilon", "prior_delta")

#: the keys that name files: ``secagg simulate`` makes them absolute (a relative one is
#: read from the directory it runs in), so a run folder's config.toml and summary.json
#: replay from any directory
PATH_KEYS = ("path", "prior_path", "stats_path")

#: the keys only the synthetic generator reads: a CSV brings its own rows (each branch
#: trains on 70 % of its share of the file). ``secagg simulate`` refuses them beside a
#: CSV, and a CSV run records none (:meth:`SimulationConfig.as_dict`): ``--data csv
#: --train-rows 1000`` was ignored and recorded as ``train_rows: 1000`` in summary.json
SYNTHETIC_KEYS = ("train_rows", "test_rows_per_branch", "world")

#: the keys only a loaded file's split reads (the generator makes its own branches):
#: ``secagg simulate`` refuses them beside synthetic data, and a synthetic run records
#: none. Why: ``--partition feature --alpha 0.1`` on synthetic data ran the generator's
#: branches as ever and recorded the split as if it had been made (simulate audit,
#: 2026-12-04). ``max_fraud_share`` is refused in the config itself (it has no default
#: value to record)
CSV_KEYS = ("partition", "alpha", "partition_column")

#: the TOML sections and the fields each may set
SECTIONS: dict[str, tuple[str, ...]] = {
    "simulation": (
        "branches",
        "rounds",
        "seed",
        "model",
        "backend",
        "dropout",
        "tolerated_dropout",
        "corrupt_fraction",
        "out",
        "seeds",
        "sample_rate",
        "engine",
        "ray_address",
        "ray_workers",
        "tuning_seeds",
    ),
    "privacy": ("unit", "mechanism", "epsilon", "noise_multiplier", "delta", "clip", "update_clip"),
    "training": (
        "local_epochs",
        "batch_size",
        "learning_rate",
        "positive_weight",
        "server_learning_rate",
        "server_momentum",
        "server_optimizer",
        "server_adam_tau",
        "prior",
        "prior_path",
        "prior_epsilon",
        "prior_delta",
        "trainable",
        "prior_validation",
        "centralized_validation",
        # before 2026-12-07 one key for both fits: a run folder's config.toml of then
        # still replays (values_from_dict reads it as both keys)
        "tuning_validation",
    ),
    "data": (
        "source",
        "path",
        "label",
        "customer_column",
        "max_rows_per_customer",
        "max_fraud_share",
        "standardize",
        "stats_path",
        "stats_bound",
        "stats_noise_multiplier",
        "partition",
        "partition_column",
        "alpha",
        "train_rows",
        "test_rows_per_branch",
        "world",
    ),
}


#: the CLI flag of each field ``secagg simulate`` takes from the command line
FLAGS: dict[str, str] = {
    **{
        name: "--" + name.replace("_", "-")
        for name in (
            "branches", "rounds", "seed", "model", "backend", "dropout", "out",
            "unit", "mechanism", "epsilon", "noise_multiplier", "delta", "clip",
            "local_epochs", "batch_size", "learning_rate", "server_learning_rate",
            "server_momentum", "server_optimizer", "server_adam_tau", "path", "label",
            "customer_column",
            "max_rows_per_customer", "partition", "alpha", "train_rows",
            "seeds", "prior", "prior_path", "prior_epsilon", "prior_delta", "trainable",
            "world", "max_fraud_share", "partition_column",
        )
    },
    "source": "--data",
    "test_rows_per_branch": "--test-rows",
    "engine": "--engine",
    "ray_address": "--ray-address",
    "ray_workers": "--ray-workers",
}  # fmt: skip

#: the TOML section of every field
SECTION_OF: dict[str, str] = {key: section for section, keys in SECTIONS.items() for key in keys}

#: how the CLI's current invocation set each field (see :func:`spelled_for`); None: a
#: library caller, whose messages name the TOML keys
_ORIGIN: ContextVar[tuple[frozenset[str], frozenset[str]] | None] = ContextVar(
    "secagg_simulation_origin", default=None
)
#: the ``--config`` file's ``server_optimizer`` in the CLI's current invocation (see
#: :func:`spelled_for`); None: the file names none, or a library caller
_FILE_OPTIMIZER: ContextVar[str | None] = ContextVar(
    "secagg_simulation_file_optimizer", default=None
)
#: the path keys as the CLI's current invocation wrote them (see :func:`paths_written`);
#: None: a library caller, whose messages name the paths it gave
_WRITTEN: ContextVar[Mapping[str, str] | None] = ContextVar(
    "secagg_simulation_written_paths", default=None
)
_NO_VALUE = object()


@contextmanager
def paths_written(written: Mapping[str, str]) -> Iterator[None]:
    """Within this block, a reader's message names a path key (:data:`PATH_KEYS`) as the
    user wrote it (``written``: flag or file value by field name), not by the absolute
    path the configuration holds and the reader opens (:func:`shown_file`).

    Why: the paths are made absolute before the run (so a run folder replays from any
    directory), and the readers' refusals named that form: ``--label x --path c.csv``
    said ``--label x: /home/me/runs/c.csv has no column 'x'``, a path never typed
    (follow-up of the as-written check, 2026-12-08)."""
    token = _WRITTEN.set(dict(written))
    try:
        yield
    finally:
        _WRITTEN.reset(token)


def shown_file(name: str, value: str | Path) -> str:
    """The file of path key ``name`` (holding ``value``, the absolute path opened) as a
    one-line message names it: as written when the CLI's invocation wrote the path that
    ``value`` was made from (:func:`paths_written`), else ``value`` as it is (a library
    caller's own path)."""
    written = (_WRITTEN.get() or {}).get(name)
    if written is None or os.path.abspath(written) != str(value):
        return str(value)
    from secagg.apps.commands.common import shown_path  # the CLI's rule; its import is the CLI's

    return shown_path(written)


@contextmanager
def spelled_for(
    *, flags: Iterable[str], file_keys: Iterable[str] | Mapping[str, Any]
) -> Iterator[None]:
    """Within this block, validation messages name each field the way the user set it.

    Why: ``--data csv --path F`` without ``--label`` said "data.label names the label
    column of a generic CSV only", which reads as if ``--label`` were forbidden. A field
    typed as a flag, or missing from a command line, is named by its flag (``--label``,
    ``--data csv``); a field from the config file by its key (``data.label``).

    ``file_keys`` given as the file's values (a mapping, as ``secagg simulate`` passes
    them) also tells the checks which optimizer the file's ``server_learning_rate`` was
    chosen for (:meth:`SimulationConfig._check_server_optimizer`)."""
    optimizer = file_keys.get("server_optimizer") if isinstance(file_keys, Mapping) else None
    token = _ORIGIN.set((frozenset(flags), frozenset(file_keys)))
    optimizer_token = _FILE_OPTIMIZER.set(optimizer if isinstance(optimizer, str) else None)
    try:
        yield
    finally:
        _FILE_OPTIMIZER.reset(optimizer_token)
        _ORIGIN.reset(token)


def key(name: str, value: object = _NO_VALUE) -> str:
    """Field ``name`` (with ``value``, if given) as the message's reader set it: the CLI
    flag (``--data csv``) or the TOML key (``data.source = 'csv'``)."""
    origin = _ORIGIN.get()
    as_flag = (
        origin is not None
        and name in FLAGS
        and (name in origin[0] or name not in origin[1])  # typed, or absent from the file
    )
    if as_flag:
        return FLAGS[name] if value is _NO_VALUE else f"{FLAGS[name]} {value}"
    toml = f"{SECTION_OF[name]}.{name}"
    return toml if value is _NO_VALUE else f"{toml} = {value!r}"


def _from_default(name: str) -> bool:
    """Whether the CLI's invocation took field ``name`` from its default (neither typed
    nor in the file); False for a library caller, whose messages name TOML keys.

    Why: :func:`key` names such a field by its flag, so "``--branches``" in a refusal
    read as if the user had typed it; a ``--config`` file of ``sample_rate = 0.2`` was
    refused over a ``--branches`` that was never on the command line (newcomer walk,
    2026-12-06). Its refusals add "(the default)" with the value."""
    origin = _ORIGIN.get()
    return origin is not None and name in FLAGS and name not in origin[0] | origin[1]


def _default_branches(branches: int) -> str:
    """`` (--branches 8 is the default)`` after a bound that divides by a branch count
    nobody set, else nothing (see :func:`_from_default`)."""
    return f" ({key('branches', branches)} is the default)" if _from_default("branches") else ""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


def _require_capped(value: float, name: str) -> None:
    """``value`` of the positive knob ``name`` at most :data:`REAL_CAPS` (and finite),
    and at least its :data:`REAL_FLOORS` if it has one."""
    cap = REAL_CAPS[name]
    _require(
        math.isfinite(value) and value <= cap,
        f"{key(name)} must lie in (0, {cap:g}], not {value:g}",
    )
    floor = REAL_FLOORS.get(name)
    if floor is not None:
        _require(
            value >= floor,
            f"{key(name)} must be at least {floor:g}, not {value:g}: {_FLOOR_WHY[name]}",
        )


#: the clip of each DP unit when none is given: per customer (DP-SGD) and per update
DEFAULT_CLIP = {"record": 10.0, "client": 1.0}

#: the seeds the defaults were chosen on; experiments report other seeds. 1000-1002
#: until 2026-12-07; the per-fit validation check and the noise once's rounds
#: (:data:`RECORD_DISTRIBUTED_ROUNDS`) were then chosen on 1000-1009, so a report of
#: any of those is in-sample
TUNING_SEEDS = range(1000, 1010)


def seed_span(seeds: Iterable[int]) -> str:
    """``1000-1002`` for consecutive seeds, else ``0, 5, 9``: how reports name them."""
    ordered = sorted(seeds)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(map(str, ordered))


#: the largest share of a loaded file's rows whose label may be 1 (fraud) unless
#: ``max_fraud_share`` says otherwise. Why: fraud is the rare class (0.17 % of the
#: credit-card file's rows, a few percent in the worst portfolios); a file where it is
#: the majority most likely has its label inverted (1 = legitimate), and trained anyway:
#: 95 % "fraud" rows scored AUPRC 0.98 (local-only), 0.89 (federated), the base rate of
#: the majority, printed as a fraud model's result (simulate data audit, 2026-12-04). A
#: balanced, undersampled file (50 %) still passes; a larger share needs the key raised.
MAX_FRAUD_SHARE = 0.5

#: The largest values of the real-valued knobs, each refused above (and when infinite:
#: TOML writes ``inf``) with one line naming the flag or key. Why: a value past them was
#: a traceback or a silently broken run (simulate audit, 2026-12-04): ``--learning-rate
#: 1e308`` a torch RuntimeError (the rate must fit a float32), ``--noise-multiplier
#: 1e308`` an OverflowError in Opacus's RDP analysis, ``--clip 1e308`` a noise of
#: z * clip past float32 and every local model diverged (exit 0), ``positive_weight =
#: inf`` a loss of infinities. Each is far above any value a study uses:
#:
#: * ``learning_rate`` and ``server_learning_rate``: the runtime's cap on the server's
#:   (``MAX_SERVER_LEARNING_RATE``); past it ``--server-learning-rate 1e308`` was refused
#:   only after the data was made, naming the runtime's ``federation.server_learning_rate``
#:   and blaming the updates' clip (simulate audit, 2026-12-05);
#: * ``noise_multiplier``: the accountants' calibration ceiling (``MAX_NOISE_MULTIPLIER``,
#:   noise 10^4 times the signal);
#: * ``clip`` and ``update_clip``: 10^6 (the defaults: 10 per customer, 1 per branch
#:   update, 5 for an update's bound in the ring); the noise z * clip stays far within
#:   float32 at the largest z. The runtime's ``MAX_CLIP``: a federation file's
#:   ``[backend] value_bound`` and ``[dp] clip`` take no more either;
#: * ``positive_weight``: 10^6 (a fraud rate of 0.17 % balances at about 600);
#: * ``stats_bound``: 10^9 (a raw value's clip: an amount in cents up to ten million
#:   fits), and ``stats_noise_multiplier``: 10^4, as ``noise_multiplier``. Past them
#:   ``stats_bound = 1e160`` (or ``1e308`` for either) said "the Gaussian std must be
#:   finite and non-negative", naming no key, and ``stats_bound = 1e150`` ran on
#:   statistics drowned in noise (CLI audit, 2026-12-05);
#: * ``alpha``: 10^6 (``tabular.MAX_ALPHA``, which ``partition`` itself refuses past),
#:   where Dirichlet(alpha) already draws equal shares to six digits.
#:   Past about 1.8e308 / branches the draw's gamma variates sum to infinity and every
#:   share came out 0: ``--partition feature --alpha 1e308`` put all but the minimum
#:   rows of every bin in the last branch (1, 1, 1 and 19 997 rows of 20 000), the
#:   opposite of the near-IID split a large alpha means (simulate audit, 2026-12-05);
#: * ``server_adam_tau``: the runtime's ``MAX_SERVER_ADAM_TAU`` (10^6, the largest
#:   value bound: above any coordinate a released mean holds).
REAL_CAPS: dict[str, float] = {
    "learning_rate": 100.0,
    "server_learning_rate": 100.0,
    "alpha": MAX_ALPHA,
    "noise_multiplier": 1e4,
    "clip": MAX_CLIP,
    "update_clip": MAX_CLIP,
    "positive_weight": 1e6,
    "stats_bound": 1e9,
    "stats_noise_multiplier": 1e4,
    "server_adam_tau": MAX_SERVER_ADAM_TAU,
}

#: The smallest values of the real-valued knobs that have one, each refused below with
#: one line naming the flag or key. Why: a value far below them was a traceback from
#: the accountants (simulate audit, 2026-12-05): ``--noise-multiplier 1e-300`` a
#: ZeroDivisionError in Opacus's RDP analysis (DP-SGD) or a NaN in the Gaussian's closed
#: form (``ValueError: ... solver cannot continue``, client level), ``--unit client
#: --mechanism distributed --clip 1e-300`` a ZeroDivisionError sizing the discrete
#: Gaussian. Each is far below any value a study uses:
#:
#: * ``noise_multiplier``: 10^-4, the low end of the accountants' calibration bracket
#:   (an epsilon of about 5e7 in one round: no privacy to speak of);
#: * ``clip`` and ``update_clip``: 10^-6, the caps' mirror (the defaults: 10 per
#:   customer, 1 per branch update, 5 for an update's bound in the ring);
#: * ``server_adam_tau``: the runtime's ``MIN_SERVER_ADAM_TAU`` (10^-100; Reddi et al.
#:   tune tau from 10^-7), the federation server's own floor.
REAL_FLOORS: dict[str, float] = {
    "noise_multiplier": 1e-4,
    "clip": 1e-6,
    "update_clip": 1e-6,
    "server_adam_tau": MIN_SERVER_ADAM_TAU,
}

#: what each floor's refusal adds after the number
_FLOOR_WHY = {
    "noise_multiplier": "less noise is no privacy (epsilon about 5e7 in one round) and the "
    "accountants cannot compute it",
    "clip": "a smaller bound leaves nothing of an update (the defaults: 10 per customer, "
    "1 per branch update)",
    "update_clip": "a smaller bound leaves nothing of an update (the default: 5)",
    "server_adam_tau": "a released mean's coordinate that small squares to zero in float64, "
    "and FedAdam's step there grows to the learning rate times the mean over tau (the "
    "federation server's own floor)",
}

#: The largest epsilon a run takes, its target (``epsilon``, ``--epsilon``) and its
#: prior's cost (``prior_epsilon``). Why the target: ``--epsilon 1e308`` reached the
#: accountants, ran, and reported a run "within the target epsilon = 1e+308", a figure
#: no reader can use (upper-bounds review, 2026-12-05); the same bound as the prior's,
#: for which see below. The least noise the accountants evaluate already spends about
#: 600, so every target from there to 10^6 runs at that floor and says so.
MAX_EPSILON: Final = 1e6

#: The largest ``prior_epsilon``: every epsilon of a run from that prior composes it,
#: and past about 1.7e308 the sum is infinite. Why: ``--prior-epsilon 1.7e308`` ran
#: the whole federation and then failed writing the run folder with an OverflowError
#: traceback (the epsilon plot), leaving a summary.json and no report.md; ``1e308``
#: printed a 309-digit epsilon and overflowed the plot's ticks (simulate audit,
#: 2026-12-05). An epsilon of 10^6 already protects nothing (e^epsilon overflows a
#: float64 past 709): beyond it the prior's cost is no privacy figure at all.
MAX_PRIOR_EPSILON: Final = MAX_EPSILON

#: FedAdam's tau when ``server_adam_tau`` is not given: the runtime's default
#: (``federation.server_adam_tau``), read from its config, so the two never disagree
DEFAULT_SERVER_ADAM_TAU: Final[float] = next(
    f.default for f in fields(FederationConfig) if f.name == "server_adam_tau"
)

#: fewest training rows a branch may get from a partition (see check_branch_data)
MIN_TRAIN_ROWS = 10

#: the smallest delta a DP run takes: below it the accountant (Opacus's PRV) fails,
#: "Floating point errors will dominate", after the data and the prior were made, in a
#: line naming no flag (``--delta 1e-300``, simulate audit, 2026-12-04)
MIN_DELTA = 1e-12

#: The largest sizes ``secagg simulate`` accepts, each refused at config load with one
#: line naming the flag or key. Why: ``--train-rows 1000000000000`` was a 335 GiB
#: MemoryError traceback, ``--local-epochs 100000000`` a 1.79 PiB one, ``--test-rows
#: 10000000000`` and ``--batch-size 1000000000`` ran until killed, and ``--seed`` past
#: 2**63 an overflow in torch (simulate audit, 2026-12-04). Each cap is far above what a
#: study on one machine runs (the defaults: 8 branches, 10 rounds of 3 epochs, 280 000
#: synthetic rows; the many world: 1 000 branches, 500 000 rows):
#:
#: * ``branches``: participants of one simulated federation (a thread each);
#: * ``rounds``: federated rounds of one run;
#: * ``seeds``: runs of one experiment (``--seeds``);
#: * ``seed``: the largest seed (``seed + seeds - 1``): the seeds every library takes;
#: * ``local_epochs``: local epochs per round;
#: * ``epochs``: ``rounds * local_epochs``, the epochs a branch's DP-SGD budget covers;
#: * ``runs``: ``rounds * seeds``, the federated rounds an experiment runs in all;
#: * ``batch_size``: the (expected) batch size;
#: * ``rows``: synthetic rows generated, ``train_rows + branches * test_rows_per_branch``;
#: * ``max_rows_per_customer``: the rows of one customer DP-SGD uses;
#: * ``ray_workers``: Ray client hosts.
CAPS: dict[str, int] = {
    "branches": 1000,
    "rounds": 10_000,
    "seeds": 1000,
    "seed": 2**32 - 1,
    "local_epochs": 100,
    "epochs": 10_000,
    "runs": 10_000,
    "batch_size": 1_000_000,
    "rows": 5_000_000,
    "max_rows_per_customer": 1000,
    "ray_workers": 10_000,
}


@dataclass(frozen=True)
class SimulationConfig:
    """Every knob of ``secagg simulate``; see the module docstring for the file layout.

    Every field's default is the constructor's, for every mechanism: ``rounds`` is 10
    here even with ``unit="record", mechanism="distributed"``. A file read by
    :meth:`load` or :meth:`from_dict` (and ``secagg simulate``) that leaves the rounds
    out runs :data:`RECORD_DISTRIBUTED_ROUNDS` (30) of that mechanism instead
    (:func:`with_file_rounds`); pass ``rounds`` to the constructor for the same run."""

    # [simulation]
    branches: int = 8
    #: 10 here for every mechanism; a file without rounds (and ``secagg simulate``)
    #: runs RECORD_DISTRIBUTED_ROUNDS (30) of the noise added once: see the class
    rounds: int = 10
    seed: int = 0
    model: str = "mlp"
    backend: str = "secagg+"
    dropout: float = 0.05
    # what SecAgg+'s k and t must survive: at 8 branches 5 % corrupt rounds to no
    # colluder at all (k = 2); assume up to a quarter collude or drop (k = 6, t = 3)
    tolerated_dropout: float = 0.25
    corrupt_fraction: float = 0.25
    out: str | None = None  # default: secagg-runs/<time>-<backend>-<unit>
    seeds: int = 1  # > 1: an experiment over seeds seed, seed + 1, ... (mean ± sd)
    #: Poisson client sampling: each branch joins a round with this probability, drawn by
    #: the server. No accountant credits it: the central one charges each branch for
    #: the rounds it was in (a round's members see each other), the distributed one
    #: every branch every round (the server that draws the cohort is not trusted there)
    sample_rate: float = 1.0
    #: where the branches run: "inprocess" (a thread each, here) or "ray" (client hosts
    #: in Ray actors; secagg.runtime.ray_engine), for more participants than one process
    engine: str = "inprocess"
    ray_address: str | None = None  # None: start a local Ray instance; else join it
    ray_workers: int | None = None  # Ray client hosts; None: one per CPU of the instance
    #: the seeds this configuration's settings were chosen on (None: the built-in
    #: defaults', :data:`TUNING_SEEDS`): an experiment says whether it reports others
    tuning_seeds: tuple[int, ...] | None = None
    # [privacy]
    unit: str = "record"
    mechanism: str = "dpsgd"
    epsilon: float | None = 3.0
    noise_multiplier: float | None = None
    delta: float = 1e-5
    clip: float | None = None  # None: DEFAULT_CLIP of the unit (see dp_clip)
    update_clip: float = 5.0  # record / off: the L2 bound of an update in the ring
    # [training]
    local_epochs: int = 3
    batch_size: int = 256
    learning_rate: float = 0.2
    positive_weight: float = 10.0
    server_learning_rate: float = 2.0
    server_momentum: float = 0.0
    #: the federation server's step (the runtime's ``federation.server_optimizer``):
    #: "sgd" is FedAvg, FedAvgM with ``server_momentum``; "adam" is FedAdam (Reddi et
    #: al. 2021, the runtime's betas). Why a key: the runtime's server had FedAdam and
    #: ``secagg simulate`` could not run it, so the two could not be compared on the
    #: simulator. The local-only baseline of record-level distributed DP steps with it too
    server_optimizer: str = "sgd"
    #: FedAdam's tau (``federation.server_adam_tau``); None: not set, which adam reads
    #: as the runtime's default (:data:`DEFAULT_SERVER_ADAM_TAU`, filled in at
    #: construction, so the run's records name it) and sgd requires: a tau beside sgd
    #: would change nothing, silently, as the runtime's file refuses it
    server_adam_tau: float | None = None
    # where training starts (see prior_source)
    prior: str = "auto"
    prior_path: str | None = None  # a .npy model vector (an earlier run's model.npy)
    #: what the prior from prior_path already spent on these protected units (its own
    #: training's epsilon and delta; see prior_cost): required with DP and prior_path
    prior_epsilon: float | None = None
    prior_delta: float | None = None  # None: delta (0 when prior_epsilon is 0)
    trainable: str = "auto"  # all | head (the output layer); auto: see trains()
    #: world | customer | row: what the public prior's tuning validates on
    #: (:data:`PRIOR_VALIDATIONS`). Why "world" (decided 2026-12-07 before any run):
    #: the prior is fitted on public worlds and used on another one, the run's
    #: branches, so what matters is how it transfers: a held-out public world measures
    #: that, free (no branch's rows). "customer" (the default of 2026-12-07) and "row"
    #: (before) replay the runs of then (docs/results.md, "Tuning each fit for its use")
    prior_validation: str = "world"
    #: customer | time | row: what the centralized baseline's tuning validates on
    #: (:data:`CENTRALIZED_VALIDATIONS`). Why "customer": "time" (the latest fifth of
    #: its rows, like its out-of-time test) was decided on principle on 2026-12-07, to
    #: be kept unless the check on the tuning seeds (benchmarks/bench_tuning_validation.py,
    #: its rule fixed before it ran) showed it choosing clearly worse than "customer";
    #: on seeds 1000-1009 it did (mean regret 0.050 against 0.031, paired difference
    #: +0.019, se 0.011), so the rule made "customer" the default (docs/results.md,
    #: "Tuning each fit for its use"). "time" replays the runs of that morning
    centralized_validation: str = "customer"
    # [data]
    source: str = "synthetic"
    path: str | None = None
    label: str | None = None
    customer_column: str | None = None
    max_rows_per_customer: int = 8
    #: a loaded file whose label is 1 on a larger share of its rows is refused (see
    #: :data:`MAX_FRAUD_SHARE`, the limit when None); read only with a CSV
    max_fraud_share: float | None = None
    standardize: str = "auto"
    stats_path: str | None = None
    stats_bound: float = 5.0
    stats_noise_multiplier: float = 10.0
    partition: str = "dirichlet"
    #: the feature column ``partition = "feature"`` skews on; None: the file's first.
    #: Why a key: the split followed the file's column order alone, so a bank with its
    #: own CSV had to rewrite the file to skew its branches on, say, the amount
    partition_column: str | None = None
    alpha: float = 0.5
    train_rows: int = 120_000
    test_rows_per_branch: int = 20_000
    world: str = "standard"  # the synthetic world: standard | hard | many

    def __post_init__(self) -> None:
        k = key
        if self.tuning_seeds is not None:  # TOML gives a list; a frozen tuple compares
            object.__setattr__(self, "tuning_seeds", tuple(self.tuning_seeds))
            _require(
                all(isinstance(s, int) and s >= 0 for s in self.tuning_seeds),
                f"{k('tuning_seeds')} must be a list of seeds (integers >= 0)",
            )
        self._check_caps()
        _require(
            math.isfinite(self.sample_rate) and 0 < self.sample_rate <= 1,
            f"{k('sample_rate')} must lie in (0, 1]",
        )
        expected = self.sample_rate * self.branches
        branches = k("branches", self.branches)
        if _from_default("branches"):
            branches += " (the default)"
        _require(
            expected >= 2,
            f"{k('sample_rate', self.sample_rate)} * {branches} = {expected:g} expected "
            "branches in a round; it must be at least 2",
        )
        _require(self.engine in ENGINES, f"{k('engine')} must be one of {ENGINES}")
        _require(
            self.ray_workers is None or self.ray_workers >= 1,
            f"{k('ray_workers')} must be at least 1",
        )
        _require(
            self.ray_address is None or self.ray_address.strip() != "",
            f"{k('ray_address')} must name a Ray cluster (or be left out: a local instance)",
        )
        for ray_only in ("ray_address", "ray_workers"):
            _require(
                self.engine == "ray" or getattr(self, ray_only) is None,
                f"{k(ray_only)} is read only with {k('engine', 'ray')}",
            )
        _require(
            self.out is None or self.out.strip() != "",
            # "" was the directory the command ran in: an empty one got the run's files
            f"{k('out')} is empty: it must name a new (or empty) folder",
        )
        _require(self.model in MODELS, f"{k('model')} must be one of {MODELS}")
        _require(self.backend in BACKENDS, f"{k('backend')} must be one of {BACKENDS}")
        _require(0 <= self.dropout < 0.5, f"{k('dropout')} must lie in [0, 0.5)")
        _require(0 <= self.tolerated_dropout < 1, f"{k('tolerated_dropout')}: [0, 1)")
        _require(0 <= self.corrupt_fraction < 1, f"{k('corrupt_fraction')}: [0, 1)")
        _require(self.unit in UNITS, f"{k('unit')} must be one of {UNITS}")
        allowed = MECHANISMS[self.unit]
        _require(
            self.mechanism in allowed,
            f"{k('mechanism', self.mechanism)} does not protect a {self.unit}; "
            f"with {k('unit', self.unit)} choose one of {allowed}",
        )
        if self.private:
            _require(
                (self.epsilon is None) != (self.noise_multiplier is None),
                f"privacy: give exactly one of epsilon (a target, {k('epsilon')}) and "
                f"noise_multiplier ({k('noise_multiplier')})",
            )
            if self.epsilon is not None:
                _require(
                    math.isfinite(self.epsilon) and self.epsilon > 0,
                    f"{k('epsilon')} must be positive",
                )
                _require(
                    self.epsilon <= MAX_EPSILON,
                    f"{k('epsilon')} must be at most {MAX_EPSILON:g}, not {self.epsilon:g}: "
                    "an epsilon that large protects nothing (e^epsilon, the factor by which "
                    "one protected unit may change what is released, overflows past 709)",
                )
            if self.noise_multiplier is not None:
                _require(self.noise_multiplier > 0, f"{k('noise_multiplier')} must be > 0")
                _require_capped(self.noise_multiplier, "noise_multiplier")
        _require(0 < self.delta < 1, f"{k('delta')} must lie in (0, 1)")
        _require(
            not self.private or self.delta >= MIN_DELTA,
            f"{k('delta')} must be at least {MIN_DELTA:g}: the accountants cannot compute "
            "a smaller one",
        )
        _require(
            self.clip is None or (math.isfinite(self.clip) and self.clip > 0),
            f"{k('clip')} must be positive",
        )
        if self.clip is not None:
            _require_capped(self.clip, "clip")
        _require(self.update_clip > 0, f"{k('update_clip')} must be positive")
        _require_capped(self.update_clip, "update_clip")
        _require(self.local_epochs >= 1, f"{k('local_epochs')} must be at least 1")
        _require(self.batch_size >= 1, f"{k('batch_size')} must be at least 1")
        _require(self.learning_rate > 0, f"{k('learning_rate')} must be positive")
        _require_capped(self.learning_rate, "learning_rate")
        _require(self.positive_weight > 0, f"{k('positive_weight')} must be positive")
        _require_capped(self.positive_weight, "positive_weight")
        _require(self.server_learning_rate > 0, f"{k('server_learning_rate')} must be positive")
        _require_capped(self.server_learning_rate, "server_learning_rate")
        _require(0 <= self.server_momentum < 1, f"{k('server_momentum')} must lie in [0, 1)")
        self._check_server_optimizer()
        _require(
            self.sample_rate == 1 or not self.record_distributed,
            f"{k('unit', 'record')} {k('mechanism', 'distributed')} is full-batch DP gradient "
            f"descent over every branch's customers: it needs {k('sample_rate')} = 1",
        )
        if self.mechanism == "distributed":
            _require(
                self.backend in ("secagg", "secagg+"),
                f"{k('mechanism', 'distributed')} needs a masking backend "
                f"({k('backend', 'secagg')} or secagg+), not {self.backend}",
            )
        _require(self.source in SOURCES, f"{k('source')} must be one of {SOURCES}")
        for name in PATH_KEYS:
            # "" was made absolute into the directory the command ran in, and then read
            # as the file: a folder the user never named (simulate audit, 2026-12-06)
            value = getattr(self, name)
            _require(
                value is None or value.strip() != "",
                f"{k(name)} is empty: it must name a file",
            )
        for name in ("label", "customer_column"):
            # a blank column name passed here and the run read the whole CSV before
            # refusing it as a column the file lacks (config fuzz, 2026-12-05)
            value = getattr(self, name)
            _require(
                value is None or value.strip() != "",
                f"{k(name)} is empty: it must name a column of the file",
            )
        _require(
            self.path is not None or self.source == "synthetic",
            f"{k('path')} is required with {k('source', self.source)}: it names the CSV file",
        )
        _require(
            self.path is None or self.source != "synthetic",
            f"{k('path')} names a CSV file, read only with {k('source', 'creditcard')} "
            "or csv; synthetic data is generated",
        )
        _require(
            self.label is not None or self.source != "csv",
            f"{k('label')} is required with {k('source', 'csv')}: it names the 0/1 fraud column",
        )
        _require(
            self.label is None or self.source == "csv",
            f"{k('label')} is read only with {k('source', 'csv')} (synthetic data and the "
            "credit-card layout bring their own label)",
        )
        _require(
            self.customer_column is None or self.source != "synthetic",
            f"{k('customer_column')} names a column of a loaded CSV; synthetic rows are "
            "customers already",
        )
        _require(
            self.max_fraud_share is None
            or (math.isfinite(self.max_fraud_share) and 0 < self.max_fraud_share <= 1),
            f"{k('max_fraud_share')} must lie in (0, 1] (the largest share of a file's rows "
            "whose label may be 1, fraud)",
        )
        _require(
            self.max_fraud_share is None or self.source != "synthetic",
            f"{k('max_fraud_share')} is read only with a CSV ({k('source', 'creditcard')} or "
            "csv): synthetic data brings its own labels",
        )
        _require(
            self.standardize in STANDARDIZE, f"{k('standardize')} must be one of {STANDARDIZE}"
        )
        _require(
            math.isfinite(self.stats_bound) and self.stats_bound > 0,
            f"{k('stats_bound')} must be positive",
        )
        _require_capped(self.stats_bound, "stats_bound")
        _require(
            math.isfinite(self.stats_noise_multiplier) and self.stats_noise_multiplier > 0,
            f"{k('stats_noise_multiplier')} must be positive (a secure release without "
            "noise is only made when the run has no DP)",
        )
        _require_capped(self.stats_noise_multiplier, "stats_noise_multiplier")
        _require(
            not (self.feature_statistics == "secure" and self.record_distributed),
            f"{k('standardize', 'secure')} charges the statistics to each branch's DP-SGD "
            f"accountant; with {k('unit', 'record')} {k('mechanism', 'distributed')} the "
            "server's accountant holds the budget: use 'public' or 'none'",
        )
        _require(
            not (self.feature_statistics == "secure" and self.unit == "client" and self.private),
            f"{k('standardize', 'secure')} noises the statistics per record; with "
            f"{k('unit', 'client')} a whole branch must be hidden: use 'public' "
            "(data.stats_path, or the synthetic generator's reference sample) or 'none'",
        )
        _require(
            self.stats_path is None or self.feature_statistics == "public",
            f"{k('stats_path')} is read only with {k('standardize', 'public')}",
        )
        _require(
            not (
                self.feature_statistics == "public"
                and self.source != "synthetic"
                and self.stats_path is None
            ),
            (
                f"{k('standardize', 'public')}"
                if self.standardize != "auto"
                # "data.standardize = 'public'" named a key no one set, not the flag that
                # chose it: --unit client (config fuzz, 2026-12-05)
                else f"{k('unit', self.unit)} with {k('mechanism', self.mechanism)} "
                f"standardizes with public statistics ({k('standardize', 'auto')}), which"
            )
            + f" with a CSV needs {k('stats_path')} (a JSON file of public statistics); or "
            f"set {SECTION_OF['standardize']}.standardize to 'secure' or 'none'",
        )
        _require(self.prior in PRIORS, f"{k('prior')} must be one of {PRIORS}")
        _require(self.trainable in TRAINABLE, f"{k('trainable')} must be one of {TRAINABLE}")
        _require(
            self.prior_validation in PRIOR_VALIDATIONS,
            f"{k('prior_validation')} must be one of {PRIOR_VALIDATIONS}",
        )
        _require(
            self.centralized_validation in CENTRALIZED_VALIDATIONS,
            f"{k('centralized_validation')} must be one of {CENTRALIZED_VALIDATIONS}",
        )
        _require(
            not (self.prior == "public" and self.source != "synthetic"),
            f"{k('prior', 'public')} trains on the synthetic generator's public reference "
            f"world; with {k('source', self.source)} give {k('prior_path')} (an earlier "
            "released model) or use 'none'",
        )
        _require(
            self.prior_path is None or self.prior != "none",
            f"{k('prior_path')} names a prior model, but {k('prior', 'none')} asks for none",
        )
        _require(
            self.prior_epsilon is None
            or (math.isfinite(self.prior_epsilon) and self.prior_epsilon >= 0),
            f"{k('prior_epsilon')} must be a number >= 0 (0: the prior saw none of these "
            f"{self.protected}s' data)",
        )
        if self.prior_epsilon is not None:
            _require(
                self.prior_epsilon <= MAX_PRIOR_EPSILON,
                f"{k('prior_epsilon')} must be at most {MAX_PRIOR_EPSILON:g}, not "
                f"{self.prior_epsilon:g}: a prior that spent more protects nothing of these "
                f"{self.protected}s (train without it, {k('prior', 'none')})",
            )
        _require(
            self.prior_delta is None or 0 <= self.prior_delta < 1,
            f"{k('prior_delta')} must lie in [0, 1)",
        )
        _require(
            self.prior_epsilon is None or self.prior_path is not None,
            f"{k('prior_epsilon')} is what a prior from a file ({k('prior_path')}) spent; "
            f"the {self.prior_source} prior costs no privacy beyond the feature statistics' "
            "release: drop it",
        )
        _require(
            self.prior_delta is None or self.prior_epsilon is not None,
            f"{k('prior_delta')} is read only with {k('prior_epsilon')}",
        )
        _require(
            not (self.private and self.prior_path is not None and self.prior_epsilon is None),
            f"{k('prior_path')} starts from a model whose own training may have spent "
            f"privacy on these {self.protected}s: give {k('prior_epsilon')} (the epsilon it "
            f"spent on them, e.g. the earlier run's; 0 if it saw none of their data)",
        )
        cost = self.prior_cost
        _require(
            cost is None or cost[1] + self.delta < 1,
            f"{k('prior_delta')} + {k('delta')} (the composed delta) must be below 1",
        )
        _require(
            not (self.trainable == "head" and self.prior_source == "none"),
            f"{k('trainable', 'head')} fine-tunes the output layer of a prior; with no prior "
            f"({k('prior', 'none')}) the body would stay random: use 'all'",
        )
        from secagg.apps.models.synthetic import WORLDS

        _require(self.world in WORLDS, f"{k('world')} must be one of {WORLDS}")
        _require(self.partition in PARTITIONS, f"{k('partition')} must be one of {PARTITIONS}")
        _require(
            math.isfinite(self.alpha) and self.alpha > 0,
            f"{k('alpha')} must be a finite positive number (a large one splits nearly as "
            f"{k('partition', 'iid')} does)",
        )
        _require_capped(self.alpha, "alpha")
        if self.source != "synthetic":
            # a library caller's value other than the default: the CLI refuses any it was
            # given (build_config), the default typed included
            changed = [n for n in SYNTHETIC_KEYS if getattr(self, n) != _DEFAULTS[n]]
            _require(not changed, synthetic_only(changed, self.source))
            _require(
                self.has_customers
                or self.max_rows_per_customer == _DEFAULTS["max_rows_per_customer"],
                rows_without_customers(),
            )
            _require(self.partition != "iid" or self.alpha == _DEFAULTS["alpha"], alpha_with_iid())
            _require(
                self.partition_column is None or self.partition_column.strip() != "",
                f"{k('partition_column')} is empty: name a feature column of the file, or "
                "drop it to skew on the first",
            )
            _require(
                self.partition_column is None or self.partition == "feature",
                partition_column_without_feature(self.partition),
            )
        else:
            changed = [n for n in CSV_KEYS if getattr(self, n) != _DEFAULTS[n]]
            _require(not changed, csv_only(changed))
            _require(
                self.train_rows >= 100 * self.branches,
                f"{k('train_rows')}: 100 per branch at least ({100 * self.branches} for "
                f"{self.branches} branches)",
            )
            _require(
                self.test_rows_per_branch >= 100, f"{k('test_rows_per_branch')} must be >= 100"
            )
        self._check_round_plan()

    def _check_server_optimizer(self) -> None:
        """``server_optimizer`` and ``server_adam_tau`` as the runtime's federation file
        takes them (:class:`~secagg.runtime.config.FederationConfig`), refused here in
        this file's key names (or the flags) before any data is made: one of
        :data:`~secagg.runtime.config.SERVER_OPTIMIZERS`; no momentum beside FedAdam
        (it has its own first moment); no tau beside sgd (it has none, and would be
        ignored); tau within the runtime's bounds. Fills in the runtime's default tau
        under adam, so summary.json and config.toml record the tau that ran."""
        k = key
        _require(
            self.server_optimizer in SERVER_OPTIMIZERS,
            f"{k('server_optimizer')} must be one of {', '.join(map(repr, SERVER_OPTIMIZERS))}",
        )
        refusal = _rate_of_another_optimizer(self)
        _require(not refusal, refusal)
        if self.server_optimizer == "sgd":
            _require(
                self.server_adam_tau is None,
                f"{k('server_adam_tau')} is set but {k('server_optimizer', 'sgd')}"
                f"{' (the default)' if _from_default('server_optimizer') else ''}, FedAvg / "
                f"FedAvgM, has no tau: set {k('server_optimizer', 'adam')}, or drop "
                f"{k('server_adam_tau')}",
            )
            return
        _require(
            self.server_momentum == 0,
            f"{k('server_momentum', self.server_momentum)} with "
            f"{k('server_optimizer', 'adam')}: FedAdam has its own momentum (beta1 = "
            f"{ADAM_BETA1}); "
            f"drop {k('server_momentum')} or use {k('server_optimizer', 'sgd')}",
        )
        if self.server_adam_tau is None:
            object.__setattr__(self, "server_adam_tau", DEFAULT_SERVER_ADAM_TAU)
        tau = self.server_adam_tau
        assert tau is not None
        _require(
            isinstance(tau, int | float) and not isinstance(tau, bool) and tau > 0,
            f"{k('server_adam_tau')} must be positive",
        )
        _require_capped(float(tau), "server_adam_tau")
        # FedAvg's default rate under FedAdam, which nobody chose: refused (on the command
        # line and in a --config file; a library caller's default is its own choice).
        # Why: FedAdam moves every parameter by about its learning rate each round,
        # whatever the released mean's size, and 2 (FedAvg's, tuned for steps the size of
        # the mean) wrecked the model: 4 branches, 5 rounds, pooled AUPRC of the prior
        # 0.448 against 0.004 federated (noise once), 0.145 (client-level central); DP-SGD
        # 0.366 against 0.216 (second review of FedAdam in the simulator, 2026-12-07)
        _require(not _from_default("server_learning_rate"), _adam_needs_a_rate(self))

    def _check_caps(self) -> None:
        """Every size within :data:`CAPS` (and at least its floor), one line naming it."""
        k = key
        _require(
            2 <= self.branches <= CAPS["branches"],
            f"{k('branches')} must lie in [2, {CAPS['branches']}]",
        )
        _require(
            1 <= self.rounds <= CAPS["rounds"], f"{k('rounds')} must lie in [1, {CAPS['rounds']}]"
        )
        _require(1 <= self.seeds <= CAPS["seeds"], f"{k('seeds')} must lie in [1, {CAPS['seeds']}]")
        _require(self.seed >= 0, f"{k('seed')} must be non-negative")
        _require(
            self.seed + self.seeds - 1 <= CAPS["seed"],
            # the bound as a number: "at most 4294967295 - (--seeds - 1)" left the
            # subtraction to the reader (simulate audit, 2026-12-05)
            f"{k('seed')} must be at most {CAPS['seed'] - max(self.seeds, 1) + 1}"
            + (
                f" with {k('seeds', self.seeds)} (its last seed, {k('seed')} + "
                f"{k('seeds')} - 1, at most {CAPS['seed']}: "
                if self.seeds > 1
                else " ("
            )
            + "the largest seed the data, training and noise generators take)",
        )
        _require(
            self.rounds * self.seeds <= CAPS["runs"],
            f"{k('rounds')} * {k('seeds')} = {self.rounds * self.seeds} federated rounds in "
            f"all: at most {CAPS['runs']}",
        )
        _require(
            self.local_epochs <= CAPS["local_epochs"],
            f"{k('local_epochs')} must be at most {CAPS['local_epochs']}",
        )
        _require(
            self.rounds * self.local_epochs <= CAPS["epochs"],
            f"{k('rounds')} * {k('local_epochs')} = {self.rounds * self.local_epochs} epochs "
            f"of local training per branch: at most {CAPS['epochs']}",
        )
        _require(
            self.batch_size <= CAPS["batch_size"],
            f"{k('batch_size')} must be at most {CAPS['batch_size']}",
        )
        _require(
            1 <= self.max_rows_per_customer <= CAPS["max_rows_per_customer"],
            f"{k('max_rows_per_customer')} must lie in [1, {CAPS['max_rows_per_customer']}]",
        )
        _require(
            self.ray_workers is None or self.ray_workers <= CAPS["ray_workers"],
            f"{k('ray_workers')} must be at most {CAPS['ray_workers']}",
        )
        if self.source == "synthetic":  # a CSV brings its own rows
            rows = self.train_rows + self.branches * self.test_rows_per_branch
            _require(
                rows <= CAPS["rows"],
                f"{k('train_rows')} + {k('branches')} * {k('test_rows_per_branch')} = {rows} "
                f"synthetic rows: at most {CAPS['rows']}; lower {k('train_rows')} or "
                f"{k('test_rows_per_branch')}",
            )

    def _check_round_plan(self) -> None:
        """Plan one round as the federation's server will, and refuse settings no round
        can run with, naming this file's keys.

        Why: ``tolerated_dropout = 0.9`` (or a ``corrupt_fraction`` SecAgg+ cannot
        survive, or a client-level ``delta`` not below 1 / branches) passed here, and the
        run generated its data, fitted the prior and trained every baseline before the
        federation's server refused it, in the words of the runtime's file
        (``[backend] dropout_fraction``), not of this one (simulate audit, 2026-12-04).
        The plan uses a stand-in model size and noise: what it checks (the threshold,
        the neighbour graph, the backend's ring, delta) does not depend on them."""
        k = key
        client_dp = self.unit == "client" and self.private
        _require(
            not client_dp or self.delta < 1 / self.branches,
            f"{k('delta')} = {self.delta:g} is not below 1 / {k('branches')} = "
            f"1/{self.branches}{_default_branches(self.branches)}: the guarantee "
            "would allow releasing one branch's update outright",
        )
        cost = self.prior_cost
        # the prior's delta composes with this run's (basic composition): the sum is the
        # guarantee, under the same rule (``--prior-delta 0.9`` gave delta = 0.90001)
        _require(
            not client_dp or cost is None or cost[1] + self.delta < 1 / self.branches,
            f"{k('prior_delta')} + {k('delta')} (the composed delta) = "
            f"{(cost or (0.0, 0.0))[1] + self.delta:g} is not below 1 / {k('branches')} = "
            f"1/{self.branches}{_default_branches(self.branches)}: the guarantee "
            "would allow releasing one branch's update outright; choose a smaller one",
        )
        from secagg.runtime.config import (
            BackendConfig,
            FederationConfig,
            SamplingConfig,
            SmallDrawWarning,
        )

        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always", SmallDrawWarning)
                FederationConfig(
                    name="simulation-plan",
                    clients=tuple(f"branch-{b + 1:02d}" for b in range(self.branches)),
                    dimension=33,
                    rounds=1,
                    sampling=SamplingConfig(kind="poisson", rate=self.sample_rate),
                    backend=BackendConfig(
                        name=self.backend,
                        value_bound=self.dp_clip if client_dp else self.update_clip,
                        dropout_fraction=self.tolerated_dropout,
                        corrupt_fraction=self.corrupt_fraction,
                        key_holder="key-holder" if self.backend == "ckks" else None,
                    ),
                )
        except ConfigurationError as exc:
            if str(exc).startswith("[sampling] rate"):
                # most draws too small (the population rule): the rate is the cause
                raise ConfigurationError(
                    f"no round can run: {self._in_simulation_words(str(exc))}"
                ) from None
            reason = str(exc).split(": no round of the ", 1)[-1]
            reason = reason.split("can run with these settings: ", 1)[-1]
            reason = reason.replace("corrupt_fraction", k("corrupt_fraction"))
            reason = reason.replace("dropout_fraction", k("tolerated_dropout"))
            reason = reason.replace("num_clients", k("branches"))
            fractions = "dropout_fraction" in str(exc) or "corrupt_fraction" in str(exc)
            if "([sampling] kind = " in str(exc):  # runtime config: a drawn round's refusal
                # a drawn round too small for the population's colluders: the rate and
                # the colluders decide it, not the dropouts (review, 2026-12-07)
                raise ConfigurationError(
                    f"{self._draws_named()}: no round can run: {reason}"
                ) from None
            blamed = (
                f"{k('tolerated_dropout')} = {self.tolerated_dropout:g} and "
                f"{k('corrupt_fraction')} = {self.corrupt_fraction:g} with "
                if fractions  # only then: another cause named them wrongly (review)
                else ""
            )
            bound = (
                ""
                if fractions
                else f" (the updates' bound is {k('clip' if client_dp else 'update_clip')} = "
                f"{self.dp_clip if client_dp else self.update_clip:g})"
            )
            raise ConfigurationError(
                f"{blamed}{k('backend', self.backend)} and {k('branches', self.branches)}"
                f"{' (the default)' if _from_default('branches') else ''}: "
                f"no round can run: {reason}{bound}"
            ) from None

        for warning in said:  # the population rule's warning, in this file's words
            if issubclass(warning.category, SmallDrawWarning):
                warnings.warn(self._in_simulation_words(str(warning.message)), SmallDrawWarning, 2)
            else:  # any other: as it was given
                warnings.warn_explicit(
                    warning.message, warning.category, warning.filename, warning.lineno
                )

    def _draws_named(self) -> str:
        """The keys a sampled round's size hangs on, as the user spelled them:
        ``simulation.sample_rate = 0.26, simulation.corrupt_fraction = 0.25 and
        simulation.branches = 40 with --backend secagg+``."""
        k = key
        return (
            f"{k('sample_rate', self.sample_rate)}, "
            f"{k('corrupt_fraction', self.corrupt_fraction)} and "
            f"{k('branches', self.branches)}"
            f"{' (the default)' if _from_default('branches') else ''} with "
            f"{k('backend', self.backend)}"
        )

    def _in_simulation_words(self, text: str) -> str:
        """The federation's sampling message (:class:`SmallDrawWarning`, its refusal)
        with this file's keys for the federation's: ``[sampling] rate = 0.3 over 40
        clients`` is ``simulation.sample_rate = 0.3 over simulation.branches = 40
        branches``,
        ``backend.corrupt_fraction`` is ``simulation.corrupt_fraction``.

        Why: ``secagg simulate`` printed the federation's keys, which no simulation
        file has (review, 2026-12-07)."""
        k = key
        text = " ".join(text.split())
        text = re.sub(
            r"\[sampling\] rate = (\S+) over (\d+) clients",
            lambda m: (
                f"{k('sample_rate', float(m.group(1)))} over "
                f"{k('branches', int(m.group(2)))} branches"
            ),
            text,
        )
        text = text.replace("[sampling] rate", k("sample_rate"))
        text = text.replace("backend.corrupt_fraction", "corrupt_fraction")
        return re.sub(r"(?<![\w.-])corrupt_fraction", k("corrupt_fraction"), text)

    @property
    def private(self) -> bool:
        return self.mechanism != "off"

    @property
    def feature_statistics(self) -> str:
        """Where the standardisation comes from: ``secure`` (noised, accounted secure
        aggregation of the branches' sums), ``public`` (public or prior data) or
        ``none``. ``auto`` is secure except under client-level DP, whose unit (a whole
        branch) a per-record noise does not hide, and record-level distributed DP, whose
        one accountant (the server's) composes only its own rounds."""
        if self.standardize != "auto":
            return self.standardize
        server_accounts = (self.unit == "client" and self.private) or self.record_distributed
        return "public" if server_accounts else "secure"

    @property
    def record_distributed(self) -> bool:
        """Record-level DP with the noise added once, inside the secure sum: each round
        is one step of full-batch DP gradient descent (see ``secagg.dp.gradient_sum``)."""
        return self.unit == "record" and self.mechanism == "distributed"

    @property
    def dp_clip(self) -> float:
        """The clip in force: ``clip`` if set, else :data:`DEFAULT_CLIP` of the unit.

        Why 10 per customer: a fraud card's gradient on the output layer has a norm of
        tens, a legitimate card's well under 1. A clip of 1 cut every fraud's pull by
        that factor and none of the legitimate ones', so DP-SGD drifted away from the
        fraud signal (on the tuning seeds the federation ended below its own prior:
        0.48 against 0.54); at 10 the balance of the two is kept, and the learning rate
        (0.2) keeps the step the same size. A branch's whole update (client level) is
        another scale: 1."""
        return self.clip if self.clip is not None else DEFAULT_CLIP[self.unit]

    @property
    def prior_source(self) -> str:
        """Where the model starts: ``file`` (``prior_path``: the released model of an
        earlier federation, or any model a bank may use; it costs what its own training
        spent, ``prior_epsilon``: see :attr:`prior_cost`),
        ``public`` (trained without privacy on the synthetic generator's public
        reference world: another seed, no branch's data) or ``none`` (random). ``auto``
        is public for synthetic data, else none (a CSV has no public twin)."""
        if self.prior_path is not None:
            return "file"
        if self.prior == "auto":
            return "public" if self.source == "synthetic" else "none"
        return self.prior

    @property
    def prior_cost(self) -> tuple[float, float] | None:
        """(epsilon, delta) the prior already spent on this run's protected units, which
        every epsilon of a setting starting from it composes with this run's: a prior
        from ``prior_path`` costs what its own training spent (``prior_epsilon``;
        ``prior_delta``, default ``delta``, or 0 when ``prior_epsilon`` is 0: it saw none
        of their data). None: nothing to compose (no DP, or no prior from a file: the
        public prior costs only the feature statistics' release, accounted already).

        Its mechanisms' history is unknown, so the composition is the basic one (the
        epsilons add, and the deltas): the generic bound for any two mechanisms."""
        if not self.private or self.prior_source != "file" or self.prior_epsilon is None:
            return None
        delta = self.prior_delta
        if delta is None:
            delta = 0.0 if self.prior_epsilon == 0 else self.delta
        return float(self.prior_epsilon), float(delta)

    @property
    def trains(self) -> str:
        """What training changes: ``head`` (the output layer) or ``all``. ``auto``: the
        head when there is a prior (few parameters, little DP noise), else all; with
        record-level distributed DP always all (its noise is added once, not per branch)."""
        if self.trainable != "auto":
            return self.trainable
        if self.record_distributed:
            # the noise is added once for all branches: on the tuning seeds the whole
            # model gained 0.017-0.020 AUPRC over the prior, the head alone 0.000-0.009
            return "all"
        return "head" if self.prior_source != "none" else "all"

    @property
    def protected(self) -> str:
        """What one unit of the guarantee is, in words every output uses: a ``client``
        (a whole branch), a ``customer`` (synthetic data: a card; loaded data with
        a customer column: a card and its transactions) or a ``transaction`` (loaded
        rows without one)."""
        if self.unit == "client":
            return "client"
        if self.source == "synthetic" or self.customer_column is not None:
            return "customer"
        return "transaction"

    @property
    def server_step(self) -> str:
        """The federation server's step in words, as report.md (and an experiment's
        title, for FedAdam) names it: ``FedAvg (server learning rate 2)``, ``FedAvgM
        (..., momentum 0.9)`` or ``FedAdam (..., tau 0.001, betas 0.9 / 0.99)``. Why:
        with two optimizers a report that did not say which one ran could not be told
        from the other's."""
        lr = f"server learning rate {self.server_learning_rate:g}"
        if self.server_optimizer == "adam":
            return (
                f"FedAdam ({lr}, tau {self.server_adam_tau:g}, betas {ADAM_BETA1:g} / "
                f"{ADAM_BETA2:g})"
            )
        if self.server_momentum > 0:
            return f"FedAvgM ({lr}, momentum {self.server_momentum:g})"
        return f"FedAvg ({lr})"

    @property
    def epochs(self) -> int:
        """Local epochs over the whole run: what a branch's DP-SGD budget covers."""
        return self.rounds * self.local_epochs

    def with_changes(self, **changes: Any) -> SimulationConfig:
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        """Every field this run reads: a CSV's run leaves out :data:`SYNTHETIC_KEYS`,
        which it never read, so no record (summary.json, config.toml, experiment.json)
        states a setting that did not run."""
        values = asdict(self)
        for name in SYNTHETIC_KEYS if self.source != "synthetic" else CSV_KEYS:
            del values[name]
        if not self.has_customers:  # every row is its own unit: no customer's rows capped
            del values["max_rows_per_customer"]
        if self.partition == "iid":  # the IID split draws no Dirichlet proportions
            values.pop("alpha", None)
        if self.partition != "feature":  # ... and only the feature skew reads a column
            values.pop("partition_column", None)
        if self.server_optimizer != "adam":  # FedAvg(M) has no tau
            values.pop("server_adam_tau", None)
        return values

    @property
    def has_customers(self) -> bool:
        """Whether the data has customers with several rows each: synthetic data (cards)
        or a file with a customer column; a file without one has rows only."""
        return self.source == "synthetic" or self.customer_column is not None

    # --- TOML ------------------------------------------------------------------

    @staticmethod
    def values_from_dict(data: dict[str, Any]) -> dict[str, Any]:
        """The fields a TOML layout (sections as tables) sets, checked: unknown sections
        and keys, and values of the wrong type, are errors naming ``[section] key``.

        A file that sets ``epsilon`` (a target) clears ``noise_multiplier``, and the
        other way round."""
        from secagg.runtime.config import check_types

        values: dict[str, Any] = {}
        for section, table in data.items():
            if section not in SECTIONS and not isinstance(table, dict):
                # ``branches = 3`` above [simulation] read "unknown section [branches]"
                home = SECTION_OF.get(section)
                raise ConfigurationError(
                    f"key {_spelt(section)} at the top level, before any [section] header: "
                    + (f"put it in [{home}]" if home else f"no section has a key {section!r}")
                )
            if section not in SECTIONS:
                raise ConfigurationError(
                    f"unknown section [{_spelt(section)}]"
                    f"{_suggestion(section, SECTIONS, '[{}]')}; known: {', '.join(SECTIONS)}"
                )
            if not isinstance(table, dict):
                raise ConfigurationError(f"[{section}] must be a table")
            for name in table:
                if name not in SECTIONS[section]:
                    raise ConfigurationError(
                        f"unknown key {section}.{_spelt(name)}{_key_suggestion(section, name)}; "
                        f"known: {', '.join(SECTIONS[section])}"
                    )
            table = _legacy_tuning_validation(table)
            # epsilon = "three" said "must be real number, not str", naming no key
            check_types(SimulationConfig, table, section)
            values.update(table)
        if "epsilon" in values and "noise_multiplier" not in values:
            values["noise_multiplier"] = None  # the file chose a target
        if "noise_multiplier" in values and "epsilon" not in values:
            values["epsilon"] = None
        return values

    @staticmethod
    def values_from_file(path: str | Path) -> dict[str, Any]:
        """:meth:`values_from_dict` of a TOML file."""
        from secagg.runtime.config import read_toml

        return SimulationConfig.values_from_dict(read_toml(path))

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base: SimulationConfig | None = None
    ) -> SimulationConfig:
        """From the TOML layout (sections as tables) over ``base`` (default: the defaults,
        with the rounds a file without them runs: :func:`with_file_rounds`)."""
        values = cls.values_from_dict(data)
        if base is not None:  # the caller's configuration: its rounds are its choice
            return replace(base, **values)
        config = with_file_rounds(cls(**values), rounds_given="rounds" in values)
        # as ``secagg simulate --config`` reads the same file (see _check_server_optimizer)
        _require(
            config.server_optimizer != "adam" or "server_learning_rate" in values,
            _adam_needs_a_rate(config),
        )
        return config

    @classmethod
    def load(cls, path: str | Path, base: SimulationConfig | None = None) -> SimulationConfig:
        """From a TOML file over ``base`` (default: the defaults, with the rounds a file
        without them runs: :func:`with_file_rounds`), as ``secagg simulate --config``
        reads it."""
        from secagg.runtime.config import read_toml

        return cls.from_dict(read_toml(path), base)


def _adam_needs_a_rate(config: SimulationConfig) -> str:
    """The refusal of FedAdam at FedAvg's default server learning rate, which nobody
    chose (see :meth:`SimulationConfig._check_server_optimizer` for why), naming the
    flags or keys as the user set them."""
    rate = key("server_learning_rate")
    return (
        f"{key('server_optimizer', 'adam')} needs {rate}: FedAdam moves every parameter "
        "by about the server learning rate each round, whatever the released mean's size, "
        f"and the default, {config.server_learning_rate:g}, is FedAvg's (it wrecks the "
        f"model): give {rate} (0.03 was FedAdam's best on the tuning seeds, with the noise "
        "once: docs/results.md)"
    )


def _rate_of_another_optimizer(config: SimulationConfig) -> str:
    """The refusal of a typed ``--server-optimizer`` that changes the ``--config`` file's
    while the file's ``server_learning_rate`` stays (none typed beside it); "" when that
    is not the case (a library caller's configuration is its own choice).

    Why: the file's rate was chosen for the file's optimizer. A FedAdam run folder's
    config.toml (``server_learning_rate = 0.03``) replayed with ``--server-optimizer sgd``
    as the FedAvg control ran FedAvg with a step about 70 times smaller than its default
    2, a weak control that looked legitimate; a FedAvg folder replayed with
    ``--server-optimizer adam`` ran FedAdam at FedAvg's 2, which wrecks the model (see
    :func:`_adam_needs_a_rate`). Refused, not silently reset to the default: the user
    says which rate the new optimizer runs at (helper brief of 2026-12-07)."""
    origin, file_optimizer = _ORIGIN.get(), _FILE_OPTIMIZER.get()
    if (
        origin is None
        or file_optimizer is None
        or file_optimizer == config.server_optimizer
        or "server_optimizer" not in origin[0]
        or "server_learning_rate" in origin[0]
        or "server_learning_rate" not in origin[1]
    ):
        return ""
    names = {"sgd": "FedAvg", "adam": "FedAdam"}
    section = SECTION_OF["server_learning_rate"]
    then, now = names.get(file_optimizer, file_optimizer), names[config.server_optimizer]
    example = (
        "FedAvg's default, 2, for the FedAvg control"
        if config.server_optimizer == "sgd"
        else "0.03 was FedAdam's best on the tuning seeds, with the noise once: docs/results.md"
    )
    return (
        f"{key('server_optimizer', config.server_optimizer)} over "
        f"{SECTION_OF['server_optimizer']}.server_optimizer = {file_optimizer!r}: "
        f"{section}.server_learning_rate = {config.server_learning_rate!r} was chosen for "
        f"{then}, and {now} would run with it: give {FLAGS['server_learning_rate']} too "
        f"({example})"
    )


def with_file_rounds(config: SimulationConfig, *, rounds_given: bool) -> SimulationConfig:
    """``config`` with the rounds a file (or ``secagg simulate``) runs when neither the
    file nor ``--rounds`` gives them (``rounds_given``): :data:`RECORD_DISTRIBUTED_ROUNDS`
    for record-level DP with the noise added once, else the field's default (10).

    Why one function: ``secagg simulate --config`` applied the rule and
    :meth:`SimulationConfig.load` did not, so docs/scaling.md's way to run a file from
    Python ran 10 rounds of a file the command ran for 30 (second review of the noise
    once's defaults, 2026-12-07). The constructor applies no rule: a library caller's
    ``SimulationConfig(unit="record", mechanism="distributed")`` runs 10.

    A refusal of those rounds (``--seeds 334``: 334 x 30 runs past ``CAPS["runs"]``)
    says they were this default: it named a ``--rounds`` the user never gave, and a
    product the command line did not show."""
    if not config.record_distributed or rounds_given:
        return config
    try:
        return config.with_changes(rounds=RECORD_DISTRIBUTED_ROUNDS)
    except ConfigurationError as exc:
        # the same configuration passed at 10 rounds: the default rounds are the cause
        raise ConfigurationError(
            f"{exc} ({key('rounds')} is {RECORD_DISTRIBUTED_ROUNDS} here, the default "
            f"of {key('unit', 'record')} with {key('mechanism', 'distributed')} when "
            f"no rounds are given: give {key('rounds')})"
        ) from None


def _legacy_tuning_validation(table: dict[str, Any]) -> dict[str, Any]:
    """``[training] tuning_validation = "row" | "customer"``, the one key both tuned fits
    read before 2026-12-07, as the two keys of today (``prior_validation`` and
    ``centralized_validation``) set to it.

    Why: a run folder's config.toml of then names it, and replaying it must tune as
    that run did; beside either new key it is refused (which one wins is no guess to
    make for the user)."""
    if "tuning_validation" not in table:
        return table
    value = table["tuning_validation"]
    newer = [name for name in ("prior_validation", "centralized_validation") if name in table]
    if newer:
        raise ConfigurationError(
            f"training.tuning_validation (before 2026-12-07: both fits) beside "
            f"{' and '.join(f'training.{n}' for n in newer)}: give the two keys alone"
        )
    if value not in TUNING_VALIDATIONS:
        raise ConfigurationError(
            f"training.tuning_validation must be one of {TUNING_VALIDATIONS}, not "
            f"{value!r} (since 2026-12-07: prior_validation and centralized_validation)"
        )
    rest = {k: v for k, v in table.items() if k != "tuning_validation"}
    return {**rest, "prior_validation": value, "centralized_validation": value}


#: the defaults of the fields a library caller may leave out
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(SimulationConfig)}


def synthetic_only(names: Iterable[str], source: str) -> str:
    """The refusal of synthetic-only keys (:data:`SYNTHETIC_KEYS`) beside a CSV."""
    named = [key(name) for name in names]
    return (
        f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} read only with synthetic "
        f"data; {key('source', source)} brings its own rows (each branch trains on 70 % of "
        "its share of the file: the run's branch table says how many): drop "
        + ("it" if len(named) == 1 else "them")
    )


def alpha_with_iid() -> str:
    """The refusal of ``alpha`` beside the IID split, which draws no proportions."""
    return (
        f"{key('alpha')} is the Dirichlet concentration of {key('partition', 'dirichlet')} "
        f"or feature; {key('partition', 'iid')} draws none: drop it"
    )


def partition_column_without_feature(partition: str) -> str:
    """The refusal of ``partition_column`` beside a split that reads no column."""
    return (
        f"{key('partition_column')} names the column {key('partition', 'feature')} skews "
        f"the branches on; {key('partition', partition)} reads none: drop it, or use "
        f"{key('partition', 'feature')}"
    )


def rows_without_customers() -> str:
    """The refusal of ``max_rows_per_customer`` beside a file without customers."""
    return (
        f"{key('max_rows_per_customer')} caps the rows of a customer, and this file has "
        f"none named ({key('customer_column')}): each row is its own unit: drop it, or "
        "name the customer column"
    )


def csv_only(names: Iterable[str]) -> str:
    """The refusal of a loaded file's keys (:data:`CSV_KEYS`) beside synthetic data."""
    named = [key(name) for name in names]
    return (
        f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} read only with a CSV "
        f"({key('source', 'creditcard')} or csv): the synthetic generator makes its own "
        "branches (--world chooses them): drop " + ("it" if len(named) == 1 else "them")
    )


def _spelt(name: str) -> str:
    """A section or key name from the file as a message shows it: as written, or its
    repr when it holds what a terminal would not show as written (a line break, a
    control character, surrounding blanks, nothing at all).

    Why: ``unknown section [\x1e]`` (or ``\u2028``, or ``\x85``) broke the one-line
    message in two, and an escape sequence would have reached the terminal as it was
    (config fuzz, 2026-12-05)."""
    return name if name.isprintable() and name.strip() == name and name else repr(name)


def _suggestion(name: str, known: Iterable[str], form: str = "{}") -> str:
    """`` (did you mean X?)`` for the closest of ``known`` to a misspelt ``name``, if
    one is close; else nothing."""
    from secagg.errors import closest_spelling

    near = closest_spelling(name, known)
    return f" (did you mean {form.format(near)}?)" if near is not None else ""


def _key_suggestion(section: str, name: str) -> str:
    """A key of another section is named with its own (``[privacy] local_epochs``: it is
    ``training.local_epochs``); else the closest key, in this section or any other.

    Why: ``epsilom = 3`` or ``rounds`` under ``[training]`` said only "unknown key" and
    listed the section's keys, leaving the user to spot the slip (simulate audit,
    2026-12-04)."""
    if name in SECTION_OF:
        return f" (it belongs in [{SECTION_OF[name]}]: {SECTION_OF[name]}.{name})"
    here = _suggestion(name, SECTIONS[section], f"{section}.{{}}")
    if here:
        return here
    from secagg.errors import closest_spelling

    near = closest_spelling(name, SECTION_OF)
    return f" (did you mean {SECTION_OF[near]}.{near}?)" if near is not None else ""


def check_branch_data(
    config: SimulationConfig, branches: list[tuple[str, int, int, int]]
) -> list[str]:
    """Refuse data no federation can learn from, before any training; returns warnings.

    ``branches`` holds ``(name, training rows, training frauds, test frauds)``.

    Refused (one :class:`ConfigurationError`): data without a single positive label (it
    ran for 50 s, printed numpy warnings and reported every metric as n/a); a branch with
    fewer than :data:`MIN_TRAIN_ROWS` training rows (a Dirichlet split made branches of
    1 row, which DP-SGD cannot draw a meaningful batch from); and, for a CSV, a branch
    whose training set has no positive: the split is the user's choice (``partition``,
    ``alpha``, ``branches``) and the message says which to change.

    Warned (returned, printed with the results and in report.md): a synthetic branch
    without a fraud in its training set (the generator's small branches at a 0.1 % rate
    can have none in a small run: it still trains and benefits from the federation, but
    its local-only baseline learns nothing), and a branch whose test set has no fraud
    (its own AUPRC is n/a; the pooled figures still count its rows)."""
    csv = config.source != "synthetic"
    hint = (
        f"use {key('partition', 'iid')}, a larger {key('alpha')} or fewer {key('branches')}"
        if csv
        else f"use more {key('train_rows')} or fewer {key('branches')}"
    )
    if branches and sum(frauds for _, _, frauds, _ in branches) == 0:
        label = (config.label or "Class") if csv else "the generator's label"
        data = shown_file("path", config.path) if config.path else "the data"
        raise ConfigurationError(
            f"{data}: the label {label!r} has no positive (fraud) row "
            "in any training set: there is nothing to learn"
        )
    total_rows = sum(rows for _, rows, _, _ in branches)
    total_frauds = sum(frauds for _, _, frauds, _ in branches)
    for name, rows, _, _ in branches:
        _require(
            rows >= MIN_TRAIN_ROWS,
            f"{name} gets {rows} training row{'s' if rows != 1 else ''} from the "
            f"{config.partition if csv else 'synthetic'} split; at least {MIN_TRAIN_ROWS} "
            "are needed: "
            + (
                _no_split_helps(total_rows, MIN_TRAIN_ROWS, "training rows", len(branches))
                if csv and total_rows < MIN_TRAIN_ROWS * len(branches)
                else hint
            ),
        )
    no_train, no_test = [], []
    for name, rows, frauds, test_frauds in branches:
        if frauds == 0:
            _require(
                not csv,
                f"{name}'s training set ({rows} rows) has no fraud (label 1) row after the "
                f"{config.partition} split: "
                + (
                    _no_split_helps(total_frauds, 1, "training frauds", len(branches))
                    if total_frauds < len(branches)
                    else hint
                ),
            )
            no_train.append(
                f"{name}'s training set ({rows} rows) has no fraud: its local-only baseline "
                f"learns nothing ({hint})"
            )
        if test_frauds == 0:
            no_test.append(
                f"{name}'s test set has no fraud: its own AUPRC is n/a (the pooled figures "
                "still count its rows)"
            )
    train_why, test_why = hint, "their own AUPRC is n/a (the pooled figures still count their rows)"
    if config.world == "many":  # by design, not a split to change
        train_why = (
            "the many world: a few hundred transactions at 0.05-0.3 % fraud; they still "
            "send updates (what legitimate traffic looks like) and their local-only "
            "baselines learn nothing"
        )
        test_why = (
            "their own AUPRC is n/a; the pooled figures count their rows, and no per-branch "
            "comparison is made for them"
        )
    return [
        *_folded(no_train, len(branches), "training sets hold no fraud", train_why),
        *_folded(no_test, len(branches), "test sets hold no fraud", test_why),
    ]


def _no_split_helps(total: int, each: int, what: str, branches: int) -> str:
    """The advice of :func:`check_branch_data` when the branches' ``total`` (training rows,
    or training frauds) is below ``each`` for every branch: no partition, alpha or seed can
    give every branch its ``each``, only fewer branches or a larger file can.

    Why: a customer-level file of 16 training rows for 2 branches was told "use
    --partition iid, a larger --alpha or fewer --branches", and a user trying iid and
    every alpha got the same refusal each time (hostile review, 2026-12-06)."""
    most = total // each
    way_out = (
        f"use at most {most} {key('branches')} or a larger file"
        if most >= 2  # a federation has two branches at the least
        else f"nor fewer {key('branches')} (2 at the least): use a larger file"
    )
    return (
        f"the {branches} branches' {what} number {total} in all, too few for {each} "
        f"each, so no split ({key('partition')}, {key('alpha')}) can help"
        + (": " if most >= 2 else ", ")
        + way_out
    )


#: more notes of one kind than this are folded into one line (see :func:`_folded`)
MAX_NOTES_PER_KIND = 8


def _folded(notes: list[str], branches: int, what: str, why: str) -> list[str]:
    """``notes`` (one per branch, each starting with the branch's name) as they are, or
    folded into one line counting them when there are more than
    :data:`MAX_NOTES_PER_KIND`: a network of 1 000 participants, most without a fraud,
    must not bury the results under a thousand notes, nor say nothing."""
    if len(notes) <= MAX_NOTES_PER_KIND:
        return notes
    names = [note.split("'s ", 1)[0] for note in notes]
    return [f"{len(notes)} of {branches} branches' {what} ({listed_names(names, 3)}): {why}"]


def listed_names(names: list[str], limit: int = MAX_NOTES_PER_KIND) -> str:
    """``names`` joined by commas, or the first ``limit`` of them and how many more: a
    line of the console names a few branches, never a thousand."""
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
