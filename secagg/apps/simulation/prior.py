"""The prior every setting starts from: step 2 of ``secagg simulate``.

``public``: fitted without DP on the generator's public reference worlds (no branch's
rows), standardised with the run's released feature statistics; ``file``: an earlier
run's released ``model.npy``, read without pickle and checked (its privacy cost is the
config's ``prior_epsilon`` and ``prior_delta``, composed by
:mod:`secagg.apps.simulation.privacy`); ``none``: the seeded initialisation.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from secagg.apps.simulation import tuning
from secagg.apps.simulation.config import SimulationConfig, key, shown_file
from secagg.apps.simulation.data import _public_reference, _public_validation_worlds
from secagg.apps.simulation.tuning import TunedFit, pooled_customers
from secagg.errors import ConfigurationError

#: public priors fitted in this process, by :func:`_fit_key`; the oldest goes first
_FITTED: OrderedDict[str, TunedFit] = OrderedDict()
#: how many fits :data:`_FITTED` keeps (a model and its vector each: a few MB at most)
_FITTED_KEPT = 4
_FITTED_LOCK = threading.Lock()


def prior_model(config: SimulationConfig, stats: Any) -> TunedFit | np.ndarray | None:
    """The model training starts from; it costs none of the branches' privacy.

    ``file``: the vector in ``prior_path`` (numpy ``.npy``, read without pickle), e.g. an
    earlier federation's released model. ``public``: fitted without privacy on the
    synthetic generator's public reference world (another seed: other branch mixes,
    typology shares and profiles; no branch's rows), standardised with the run's own
    released statistics, its tuning validated as ``prior_validation`` says (by default
    on public worlds held out of its fit). ``none``: None."""
    source = config.prior_source
    if source == "none":
        return None
    if source == "file":
        return read_prior_file(config)
    reference = _public_reference(config)
    x, y = _standardised_rows(reference, stats)
    world = public_validation_world(config, stats) if config.prior_validation == "world" else None
    customers = pooled_customers([b.customers_train for b in reference])
    return _fitted_once(config, x, y, customers, world)


def public_validation_world(config: SimulationConfig, stats: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rows (standardised as the reference's are) and labels of the public worlds
    held out of the prior's fit, which ``prior_validation = "world"`` chooses on."""
    return _standardised_rows(_public_validation_worlds(config), stats)


def _standardised_rows(worlds: list[Any], stats: Any) -> tuple[np.ndarray, np.ndarray]:
    """The training rows of ``worlds`` pooled, standardised with the run's released
    feature statistics (when it has them), and their labels.

    Why one function: the prior is fitted on the reference's rows and chooses its
    tuning on the held-out worlds' rows; both must be standardised alike, or the
    validation scores the prior on rows unlike those it will be used on."""
    x = np.concatenate([b.x_train for b in worlds])
    if stats is not None:
        x = stats.apply(x)
    return x, np.concatenate([b.y_train for b in worlds])


def _fit_key(
    config: SimulationConfig,
    x: np.ndarray,
    y: np.ndarray,
    customers: np.ndarray | None,
    world: tuple[np.ndarray, np.ndarray] | None = None,
) -> str:
    """A digest of everything the public prior's fit depends on: its rows, labels and
    customers (shape, type and bytes; the held-out customers are drawn from them), the
    held-out world's rows and labels (``prior_validation = "world"``), every setting
    :func:`~secagg.apps.simulation.tuning.fit_tuned` reads, and torch's thread count (a
    sum over more threads rounds otherwise)."""
    import torch

    digest = hashlib.sha256()
    digest.update(b"rows" if customers is None else b"customers")
    arrays: tuple[np.ndarray, ...] = (x, y) if customers is None else (x, y, customers)
    if world is not None:
        arrays += (np.frombuffer(b"world", dtype=np.uint8), *world)
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(memoryview(contiguous).cast("B"))
    settings = (*tuning.fit_settings(config, config.prior_validation), torch.get_num_threads())
    digest.update(repr(settings).encode())
    return digest.hexdigest()


def _fitted_once(
    config: SimulationConfig,
    x: np.ndarray,
    y: np.ndarray,
    customers: np.ndarray | None,
    world: tuple[np.ndarray, np.ndarray] | None = None,
) -> TunedFit:
    """The public prior fitted on ``x``, ``y``, validated as ``config.prior_validation``
    says (on ``world``, the held-out public worlds' rows and labels; on whole
    ``customers``; on rows), once per process for the same inputs.

    Why: the fit is a deterministic function of its rows and settings (the same seed
    gives the same model bit for bit), and it is the costliest step before the baselines;
    a process that runs several simulations of one world (an experiment's settings, a
    test module) refitted it every time. Each caller gets its own copy of the model and
    of the vector: nothing it does reaches the next caller's prior."""
    fit_key = _fit_key(config, x, y, customers, world)
    with _FITTED_LOCK:
        kept = _FITTED.get(fit_key)
        if kept is not None:
            _FITTED.move_to_end(fit_key)
    if kept is None:
        kept = tuning.fit_tuned(
            config,
            x,
            y,
            {"scratch": None},
            "public-prior",
            customers=customers,
            validation=config.prior_validation,
            world=world,
        )
        with _FITTED_LOCK:
            _FITTED[fit_key] = kept
            while len(_FITTED) > _FITTED_KEPT:
                _FITTED.popitem(last=False)
    return dataclasses.replace(
        kept, model=copy.deepcopy(kept.model), vector=np.array(kept.vector, copy=True)
    )


def forget_fitted_priors() -> None:
    """Empty the process's public-prior cache (a test that checks the fit itself)."""
    with _FITTED_LOCK:
        _FITTED.clear()


def read_prior_file(config: SimulationConfig, features: int | None = None) -> np.ndarray:
    """The model vector in ``prior_path`` (``.npy``, read without pickle), checked: a
    file that is missing, not numpy, not a vector of real numbers, holds a NaN or an
    infinity, or (given the data's ``features``) is not of the size of this run's model
    is refused with one line naming ``prior_path``.

    Why: a string array was a ValueError traceback, a vector of another model's size
    said "expected a flat vector of 2081 parameters" naming no flag, and a vector with a
    NaN (a corrupted or diverged file) ran to the end, exit 0, from a random start
    (simulate audit, 2026-12-04). :func:`~secagg.apps.simulation.runner.run_simulation`
    calls it before any data is generated, and again with the features once the data is
    loaded."""

    assert config.prior_path is not None
    path, flag = config.prior_path, key("prior_path")
    shown = shown_file("prior_path", path)  # the path as written; ``path`` is opened
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except FileNotFoundError:
        raise ConfigurationError(f"no prior model at {shown} ({flag})") from None
    except OSError as exc:
        raise ConfigurationError(f"{shown} ({flag}) cannot be read: {exc.strerror}") from None
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        # numpy tries any other file as a pickle, and its refusal advised loading it
        # "unsafely" with allow_pickle or pickle.load (simulate audit, 2026-12-04)
        raise ConfigurationError(
            f"{shown} ({flag}) is not a .npy file (numpy.save writes one; an earlier run's "
            "model.npy is one)"
        )
    try:
        vector = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigurationError(f"no prior model at {shown} ({flag})") from None
    except ValueError as exc:
        if "pickle" in str(exc).lower():  # a .npy of dtype object
            raise ConfigurationError(
                f"{shown} ({flag}) holds Python objects, not a float vector: a file is never "
                "unpickled here"
            ) from None
        detail = " ".join(str(exc).split())
        raise ConfigurationError(
            f"{shown} ({flag}) is not a numpy model vector: {detail}"
        ) from None
    except (OSError, EOFError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigurationError(
            f"{shown} ({flag}) is not a numpy model vector: {detail}"
        ) from None
    if not isinstance(vector, np.ndarray):  # an .npz archive
        raise ConfigurationError(f"{shown} ({flag}) is not a numpy model vector: an archive")
    if vector.dtype.kind != "f" or vector.size == 0 or sum(n > 1 for n in vector.shape) > 1:
        raise ConfigurationError(
            f"{shown} ({flag}) is not a numpy model vector: an array of {vector.dtype} and "
            f"shape {vector.shape}, not a flat float vector (an earlier run's model.npy is one)"
        )
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(flat)):
        raise ConfigurationError(
            f"{shown} ({flag}) holds {int(np.sum(~np.isfinite(flat)))} NaN or infinite "
            "parameters: a corrupted or diverged model is no place to start"
        )
    if features is not None:
        from secagg.apps.models.nets import build_model

        model = build_model(config.model, features, seed=config.seed)
        size = sum(p.numel() for p in model.parameters())
        if flat.size != size:
            raise ConfigurationError(
                f"{shown} ({flag}) holds {flat.size} parameters; the {config.model} model of "
                f"these {features} features has {size}: it is a model of other data or "
                f"another {key('model')}"
            )
    return flat
