"""A branch's DP-SGD training hook for a real federation (``secagg client --hook``).

Each branch runs ``secagg client`` on its own machine with its own CSV; this factory
builds the branch's model and ONE :class:`~secagg.dp.dpsgd.DPSGDTrainer` for the whole
federation (its accountant composes every round) and returns a
:class:`~secagg.runtime.hooks.DPSGDHook`, which also sends the accountant's inputs to
the server's signed ledger::

    PYTHONPATH=examples/bank_fraud \\
    SECAGG_BRANCH_CSV=branch-001.csv SECAGG_LABEL=is_fraud SECAGG_ROUNDS=10 \\
    secagg client --server fl.bank.internal:50051 --name branch-001 \\
        --certs /etc/secagg/branch --dimension 3 --hook dpsgd_hook:make_hook

(``PYTHONPATH`` names the folder that holds this file: the ``secagg`` command, an
installed script, does not import from the current folder.)

The federation's ``[federation] dimension`` (and ``--dimension``) is the model's
parameter count: a logistic model over F feature columns has F + 1. Its ``[dp]``
section says ``unit = "record"`` and ``mechanism = "dpsgd"``: the noise is added here,
inside the branch, at the target epsilon over all ``SECAGG_ROUNDS`` rounds.

The features are scaled with public statistics (``SECAGG_FEATURE_STATS``, a JSON file
``{"features": {name: {"mean": m, "std": s}}}`` every branch is given), or used as the
file holds them (scale them beforehand with public constants: a time in days,
``log1p`` of an amount). Never with the branch's own mean and std: those move with
every record, so the model would depend on data no DP-SGD noise covers and the epsilon
this hook reports to the signed ledger would not be the epsilon of what ran (it did
so, review of 2026-12-06). A federation that must learn its scale from the branches
releases it with noise and charges it (``secagg.apps.simulation.feature_stats`` shows
a noised secure sum composed into every branch's epsilon).
"""

from __future__ import annotations

import math
import os

from secagg.apps.models.nets import build_model, fraud_loss
from secagg.apps.models.tabular import load_labelled_csv
from secagg.apps.models.training import as_dataset
from secagg.apps.simulation.feature_stats import load_public_statistics
from secagg.dp.dpsgd import DPSGDTrainer, flat_parameters
from secagg.errors import ConfigurationError
from secagg.runtime.hooks import DPSGDHook

LOCAL_EPOCHS = 1


def make_hook(name: str, dimension: int) -> DPSGDHook:
    """The hook of branch ``name``: DP-SGD over its CSV (``SECAGG_BRANCH_CSV``)."""
    path = os.environ.get("SECAGG_BRANCH_CSV")
    if not path:
        raise ConfigurationError(f"{name}: set SECAGG_BRANCH_CSV to this branch's CSV file")
    table = load_labelled_csv(path, os.environ.get("SECAGG_LABEL", "is_fraud"))
    stats_path = os.environ.get("SECAGG_FEATURE_STATS")
    if stats_path:  # public: the same for every neighbouring dataset, so it costs nothing
        features = load_public_statistics(stats_path, table.feature_names).apply(table.x)
    else:
        features = table.x
    # the same seed on every branch: all start from one model, as the server's does
    model = build_model("logistic", features.shape[1], seed=0)
    size = flat_parameters(model).size
    if size != dimension:
        raise ConfigurationError(
            f"--dimension {dimension}, but a logistic model over {features.shape[1]} "
            f"features has {size} parameters"
        )
    rounds = int(_setting("SECAGG_ROUNDS", "10", whole=True))
    epsilon = _setting("SECAGG_EPSILON", "3", whole=False)
    trainer = DPSGDTrainer(
        model,
        as_dataset(features, table.y),
        batch_size=min(64, len(table.y)),
        learning_rate=0.5,
        max_grad_norm=1.0,
        target_epsilon=epsilon,
        epochs=rounds * LOCAL_EPOCHS,
        delta=1e-5,
        loss_fn=fraud_loss(10.0),
    )
    return DPSGDHook(trainer, epochs=LOCAL_EPOCHS)


def _setting(variable: str, default: str, *, whole: bool) -> float:
    """A positive number from the environment, or a ConfigurationError naming the
    variable (``secagg client`` prints it as one line, exit 2).

    Why: ``SECAGG_ROUNDS=ten`` ended the branch in a ValueError traceback, and
    ``SECAGG_ROUNDS=0`` said "target_epsilon needs epochs, a positive int, not 0",
    naming neither the variable nor its value (review, 2026-12-06)."""
    text = os.environ.get(variable, default).strip()
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value <= 0:
        kind = "a whole number of at least 1" if whole else "a positive number"
        raise ConfigurationError(f"{variable} must be {kind}, not {text!r}")
    return value
