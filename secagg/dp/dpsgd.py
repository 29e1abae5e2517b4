"""Record-level or customer-level DP-SGD inside one client (one bank branch), through Opacus.

Privacy unit
    One *item* of the branch's own dataset. For an ordinary dataset that is one
    *record* (a row): example-level DP. For a
    :class:`~secagg.dp.user_level.CustomerDataset` (:func:`group_by_customer`)
    it is one *customer*, all of their rows (up to ``max_rows``) at once:
    user-level DP inside the branch, the unit a bank promises its customers (a
    customer with ``k`` rows would otherwise get about ``k`` times the
    record-level epsilon, by group privacy). The trainer names the unit in its
    reports (``"record"`` or ``"customer"``) and counts ``n`` in that unit for
    the sampling rate and for ``delta < 1 / n``.

    Neither is the client-level DP of DP-FedAvg: the guarantee says that the
    branch's model updates barely depend on any one of its records (customers);
    it says nothing about hiding the branch itself. Never add this epsilon to a
    client-level epsilon or compare the two as if they measured the same thing
    (dp-notes §5.1, Opacus issue #669).

Theory of operation
    Every step Opacus draws a Poisson sample of the items (each kept
    independently with probability ``q``), computes one gradient per item,
    clips each to L2 norm ``C`` (``max_grad_norm``), sums them, adds
    ``N(0, (z·C)^2 I)`` and divides by the *expected* batch size. One item
    therefore moves a step's noised sum by at most ``C`` and the step is a
    Poisson-subsampled Gaussian mechanism with parameters ``(q, z)``. An
    accountant (PRV by default, or RDP) composes those steps into ``(epsilon,
    delta)``. For a customer item the per-item gradient is the gradient of that
    customer's masked mean loss (:class:`~secagg.dp.user_level.CustomerLoss`):
    the model sees ``[B, max_rows, F]`` inputs and Opacus's grad samplers sum
    over the row dimension, so the clip bounds the whole customer (see
    :mod:`secagg.dp.user_level`).

    The accountant lives in the trainer and accumulates over *every* call to
    :meth:`DPSGDTrainer.train`. In federated learning the same branch trains in
    every round, each round touching the same records (customers), so the
    epsilon is the composition over ALL local steps across ALL rounds. Keep one
    trainer per branch for the whole federation (a fresh trainer per round would
    restart the count at zero and under-report), and persist
    :attr:`DPSGDTrainer.history` if the process restarts.

    The model update sent to secure aggregation (:meth:`DPSGDTrainer.model_update`)
    is post-processing of the DP-SGD output, so it carries the same record-level
    (customer-level) guarantee. ``TrainingReport.mean_loss`` is NOT: it is computed on raw records
    and is a local diagnostic that must not leave the branch.

Randomness and the floating-point caveat
    Opacus's ``secure_mode=True`` needs ``torchcsprng``, which has no distribution
    for current torch (dp-notes §5.4), so this trainer refuses it rather than let
    an ``ImportError`` surface mid-setup. Left alone, Opacus would draw the
    Gaussian noise with ``torch.normal`` and the Poisson batches with
    ``torch.rand`` from torch generators: Mersenne Twister on CPU, NOT a
    cryptographically secure generator (enough of its outputs reveal its state,
    and noise that can be predicted can be subtracted). A deployed trainer
    (``replay_seed`` None) therefore draws both from keyed AES-CTR streams
    (:class:`~secagg.crypto.stream.KeyedStream`, fresh ``os.urandom`` keys, one for
    the noise and one for the batches): the noise by the project's Gaussian
    sampler (:func:`secagg.dp.noise.gaussian`), the batches as uniforms below
    ``q``, the same distributions and the same steps an epoch
    (:mod:`secagg.dp.keyed_dpsgd`).

    A simulation (``replay_seed`` given, every ``secagg simulate`` run) keeps
    Opacus's torch generators, seeded from the replay seed, exactly as before.
    Its seed is public by construction (the run must replay), so no generator
    could make its noise secret; changing the generator would only move every
    published figure.

    Independently of the generator, adding floating-point Gaussian noise to a
    float is known to leak through the low-order bits and the gaps of the
    floating-point output distribution: Mironov, "On Significance of the Least
    Significant Bits for Differential Privacy" (CCS 2012) for Laplace noise, and
    Jin, McMurtry, Rubinstein, Ohrimenko, "Are We There Yet? Timing and
    Floating-Point Attacks on Differential Privacy Systems" (IEEE S&P 2022), who
    attacked Opacus's Gaussian sampler specifically. Opacus's secure-mode
    mitigation (sum of four draws / 2, after Holohan & Braghin 2021) only blocks
    one of those attacks; Opacus issue #616 explains why precision-based attacks
    remain. The epsilon this module reports is therefore the guarantee of the
    *idealized* real-valued mechanism. Where that residual risk matters, prefer
    the engine's integer (discrete Gaussian / Skellam) noise paths.

Models
    Models are checked with Opacus's ``ModuleValidator``; a model it rejects (e.g.
    one with BatchNorm, whose batch statistics mix records and so defeat
    per-record clipping) raises :class:`~secagg.errors.ConfigurationError`. We
    deliberately do *not* call ``ModuleValidator.fix``: it swaps layers (BatchNorm
    -> GroupNorm), which changes the parameter vector, and every branch and the
    server must share one architecture for secure aggregation to add updates
    coordinate by coordinate. Fix the *global* model once, before distributing it.

Size: about 1 100 lines, most of it :class:`DPSGDTrainer`, one Opacus front door whose
checks (the model, the data, the sampling, the accountant's exact step count) belong
together. The flat-vector helpers (:func:`flat_parameters`, :func:`load_flat_parameters`,
:func:`parameter_names`) live in the torch-only :mod:`secagg.dp.parameter_vector` and are
re-exported here: a run without DP-SGD uses them and must not import Opacus.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import opacus
import torch
from opacus import PrivacyEngine
from opacus.grad_sample import AbstractGradSampleModule
from opacus.optimizers import DPOptimizer
from opacus.validators import ModuleValidator
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, default_collate

from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.accountants import memoise_opacus_rdp
from secagg.dp.display import shown
from secagg.dp.keyed_dpsgd import (
    KeyedNoiseDPOptimizer,
    KeyedPoissonSampler,
    finite_optimizer,
    keyed_optimizer,
)
from secagg.dp.parameter_vector import (
    _named_parameters,
    flat_parameters,
    load_flat_parameters,
    parameter_names,
)
from secagg.dp.user_level import CustomerDataset, CustomerLoss, group_by_customer
from secagg.errors import ConfigurationError

__all__ = [
    "CustomerDataset",
    "CustomerLoss",
    "DPSGDTrainer",
    "TrainingReport",
    "calibrated_noise_multiplier",
    "default_delta",
    "flat_parameters",
    "group_by_customer",
    "load_flat_parameters",
    "parameter_names",
]

AccountantName = Literal["prv", "rdp"]

# Opacus's GradSampleModule stores the wrapped model as ``_module``, so its
# parameter and state-dict names carry this prefix.
_WRAPPED_PREFIX = "_module."


# Opacus's RDP curves, cached for this process (the trainers ask their epsilon after
# every round, and a PRV epsilon sizes its domain by RDP): installed here, once, because
# importing the trainers imports Opacus anyway
memoise_opacus_rdp()

# Opacus warns on construction that secure RNG is off and advises turning it on
# before production. That advice cannot be followed here (no torchcsprng); the
# trainer refuses secure_mode explicitly and documents the caveat instead.
_SECURE_RNG_WARNING = r"Secure RNG turned off"
# torch warns that a full backward hook fires although the *inputs* of the first
# layer (the data) do not require grad. Opacus only needs the gradient w.r.t. the
# layer *output* to form per-sample gradients, so this is expected and harmless.
_BACKWARD_HOOK_WARNING = r"Full backward hook is firing when gradients are computed"
# catch_warnings is not thread-safe (branches train in threads in the simulator), so
# these two are filtered for the process, narrowly: the hook warning above (by text),
# and the PRV accountant's log(1 - q) at q = 1 (a release of every item, e.g. the
# feature statistics: it evaluates to the right limit) by category and module.
warnings.filterwarnings("ignore", message=_BACKWARD_HOOK_WARNING)
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"opacus\.accountants")


def default_delta(num_records: int) -> float:
    """The default delta: the largest power of ten <= ``1 / (10 n)``, and at most 1e-5.

    Why: a mechanism may fail outright with probability delta (e.g. publish a
    random record), so delta must be well below ``1 / n``. ``n · delta <= 0.1``
    bounds the expected number of records such a failure could expose to one
    tenth. The 1e-5 cap keeps small branches no looser than the usual DP-SGD
    convention (Abadi et al. 2016, Opacus examples). A smaller delta costs little
    epsilon (it enters logarithmically).
    """
    if num_records < 1:
        raise ConfigurationError(f"need at least one record, got {num_records}")
    exponent = 5
    while 10**exponent < 10 * num_records:  # integers: no log10 rounding surprises
        exponent += 1
    return 10.0**-exponent


@dataclass(frozen=True)
class TrainingReport:
    """What one :meth:`DPSGDTrainer.train` call did, and the budget spent so far.

    ``epsilon``, ``steps`` and ``epochs`` are cumulative over all ``train`` calls
    of the trainer, so that ``(noise_multiplier, sample_rate, steps, delta,
    accountant)`` is exactly what ``epsilon`` was computed from and an auditor
    can recompute it. ``mean_loss`` covers this call only and is not private.
    ``privacy_unit`` is what one epsilon protects: ``"record"`` or ``"customer"``.
    """

    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int  # total DP-SGD steps so far (the count epsilon composes over)
    epochs: int  # total epochs so far
    accountant: str  # "prv" or "rdp"
    accountant_version: str  # opacus version, so the number is reproducible
    max_grad_norm: float
    mean_loss: float  # item-weighted training loss of this call; NOT DP, keep local
    privacy_unit: str = "record"


def _flat_from_state(module: nn.Module, state: Mapping[str, Any]) -> np.ndarray:
    """Flatten a state dict (with or without ``_module.`` prefixes) in module order."""
    clean = {
        (key[len(_WRAPPED_PREFIX) :] if key.startswith(_WRAPPED_PREFIX) else key): value
        for key, value in state.items()
    }
    parts = []
    for name, p in _named_parameters(module):
        if name not in clean:
            raise ConfigurationError(f"initial state has no entry for parameter {name!r}")
        value = torch.as_tensor(clean[name])
        if value.shape != p.shape:
            raise ConfigurationError(
                f"initial state {name!r} has shape {tuple(value.shape)}, "
                f"the model has {tuple(p.shape)}"
            )
        parts.append(value.detach().reshape(-1).cpu().to(torch.float32))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return torch.cat(parts).numpy().astype(np.float32, copy=True)


def _csprng_seeded_generator(
    device: torch.device, replay_seed: bytes | None = None, label: bytes = b""
) -> torch.Generator:
    """A torch generator seeded from the OS CSPRNG (seeded by it, not one itself).

    With ``replay_seed`` (simulations that must replay exactly) the seed is
    instead derived from it (:func:`secagg.crypto.stream.derive`), domain-separated
    by ``label``: then it draws the noise and the batches. Without, it only feeds the
    ``DataLoader``'s per-epoch worker seed (so that draw leaves torch's global
    generator alone); the noise and the batches come from :func:`_keyed`.
    """
    if replay_seed is None:
        raw = os.urandom(8)
    else:
        raw = derive(b"secagg/v1/dpsgd-replay/" + label + b"/", replay_seed, size=8)
    return torch.Generator(device=device).manual_seed(int.from_bytes(raw, "big"))


def _keyed(
    optimizer: DPOptimizer, loader: DataLoader, n: int, sample_rate: float
) -> tuple[KeyedNoiseDPOptimizer, DataLoader]:
    """What ``make_private`` returned, with the noise and the Poisson batches drawn from
    two keyed streams under fresh ``os.urandom`` keys instead of torch generators.

    The same optimizer settings, the same rate ``q``, the same ``int(1 / q)`` batches
    an epoch and the same collate function (Opacus's, which makes an empty batch
    empty), so the accountant's plan holds; see :mod:`secagg.dp.keyed_dpsgd`."""
    sampler = KeyedPoissonSampler(num_samples=n, sample_rate=sample_rate, stream=KeyedStream())
    keyed_loader = DataLoader(
        loader.dataset,
        batch_sampler=sampler,
        collate_fn=loader.collate_fn,
        generator=loader.generator,  # the worker seed only: see _csprng_seeded_generator
    )
    assert len(keyed_loader) == len(loader)  # the steps an epoch the plan counted
    return keyed_optimizer(optimizer, KeyedStream()), keyed_loader


def _prior_entries(
    releases: Sequence[tuple[float, float, int]],
) -> list[tuple[float, float, int]]:
    """Validated accountant entries of releases made before training."""
    entries = []
    for entry in releases:
        try:
            z, q, steps = entry
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"a prior release is (noise_multiplier, sample_rate, steps), not {entry!r}"
            ) from None
        z = _positive_finite("prior release noise_multiplier", z)
        q = _positive_finite("prior release sample_rate", q)
        if q > 1 or isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise ConfigurationError(f"a prior release needs q <= 1 and integer steps: {entry!r}")
        if steps < 1:
            raise ConfigurationError(f"a prior release has at least one step: {entry!r}")
        entries.append((z, q, int(steps)))
    return entries


def _calibrate_after(
    prior: list[tuple[float, float, int]],
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
) -> float:
    """The smallest training noise whose ``steps``, composed with the ``prior``
    releases, stay within ``target_epsilon`` by the trainer's own (Opacus) accountant.

    The search Opacus's ``get_noise_multiplier`` does, with the prior in the history
    and fewer evaluations of the accountant
    (:func:`~secagg.dp.accounting.noise_multiplier_after`); Opacus's own accountant
    judges the result, so the target holds by the number the trainer reports. Where
    PRV cannot evaluate the next step down (a huge target: z below about 0.05), the
    least noise it can evaluate that meets the target is returned, with a
    :class:`~secagg.dp.accounting.NoiseFloorWarning`.

    Memoised (with its warning, re-emitted): a pure function of its arguments, so the
    simulator can calibrate every branch before the first baseline trains and the
    trainers it builds later get the same ``z`` without a second search."""
    key = (tuple(prior), target_epsilon, delta, sample_rate, steps, accountant)
    with _CALIBRATIONS_LOCK:
        known = _CALIBRATIONS.get(key)
    if known is None:
        said: list[Warning] = []
        z = _search_after(
            prior,
            target_epsilon=target_epsilon,
            delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant=accountant,
            said=said,
        )
        known = (z, tuple(said))
        with _CALIBRATIONS_LOCK:
            if len(_CALIBRATIONS) >= _MOST_CALIBRATIONS:  # a long-lived process: oldest out
                del _CALIBRATIONS[next(iter(_CALIBRATIONS))]
            _CALIBRATIONS[key] = known
    z, warned = known
    for message in warned:  # every time: each trainer's caller hears why its z is what it is
        warnings.warn(message, stacklevel=3)
    return z


#: (prior, target, delta, q, steps, accountant) -> (z, the warnings its search gave)
_CALIBRATIONS: dict[tuple[Any, ...], tuple[float, tuple[Warning, ...]]] = {}
_CALIBRATIONS_LOCK = threading.Lock()
_MOST_CALIBRATIONS = 256

Calibrations = dict[tuple[Any, ...], tuple[float, tuple[Warning, ...]]]

#: (accountant, history, delta) -> the epsilon a calibration's search evaluated. Why: a
#: trainer checks its whole history before it trains (:meth:`DPSGDTrainer._probe`), and
#: at the calibrated z that is the history the search evaluated last; every trainer of
#: the branch (local-only, federated) evaluated it again: about 1-2 s of CPU each near
#: PRV's floor (``--epsilon 1e6``), 11 of a small run's 19 s. The same function of the
#: same arguments: the same float.
_SEARCHED: dict[tuple[Any, ...], float] = {}
_MOST_SEARCHED = 1024


def _searched_epsilon(accountant: str, history: list[Any], delta: float) -> float | None:
    """The epsilon a search evaluated for exactly this history, or None."""
    with _CALIBRATIONS_LOCK:
        return _SEARCHED.get((accountant, tuple(history), delta))


def known_calibrations() -> Calibrations:
    """A copy of this process's calibration memo (picklable), for another process to
    start from with :func:`remember_calibrations`.

    Why: the simulator's Ray engine builds each branch's trainer in a client host, a
    process of its own whose memo is empty, so every host searched again for the noise
    the driver's check had found (a PRV search: seconds of CPU each). Given the driver's
    memo, the host's trainers get the driver's ``z``, the same float the in-process
    engine's trainers get."""
    with _CALIBRATIONS_LOCK:
        return dict(_CALIBRATIONS)


def remember_calibrations(known: Mapping[tuple[Any, ...], Any]) -> None:
    """Add ``known`` (another process's :func:`known_calibrations`) to this process's
    memo; a key already here keeps its own value. Checked whole first: an entry that is
    not ``(key tuple, (positive finite z, tuple of warnings))`` is a ConfigurationError,
    and nothing is added."""
    entries = []
    for key, value in known.items():
        try:
            z, said = value
        except (TypeError, ValueError):
            raise ConfigurationError(f"a calibration is (z, warnings), not {value!r}") from None
        if not (
            isinstance(key, tuple)
            and type(z) is float
            and math.isfinite(z)
            and z > 0
            and isinstance(said, tuple)
            and all(isinstance(w, Warning) for w in said)
        ):
            raise ConfigurationError(f"not a calibration: {key!r} -> {value!r}")
        entries.append((key, (z, said)))
    with _CALIBRATIONS_LOCK:
        for key, value in entries:
            if key not in _CALIBRATIONS:
                if len(_CALIBRATIONS) >= _MOST_CALIBRATIONS:
                    del _CALIBRATIONS[next(iter(_CALIBRATIONS))]
                _CALIBRATIONS[key] = value


def _search_after(
    prior: list[tuple[float, float, int]],
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str,
    said: list[Any],
) -> float:
    """:func:`_calibrate_after`'s search, unmemoised; its floor warning goes to ``said``."""
    from secagg.dp.accountants import opacus_epsilon
    from secagg.dp.accounting import noise_multiplier_after

    def spent(z: float) -> float:
        history = [*prior, (z, sample_rate, steps)]
        value = opacus_epsilon(accountant, history, delta)
        with _CALIBRATIONS_LOCK:
            if len(_SEARCHED) >= _MOST_SEARCHED:
                del _SEARCHED[next(iter(_SEARCHED))]
            _SEARCHED[(accountant, tuple(history), delta)] = value
        return value

    described = f"epsilon={target_epsilon} with the {accountant!r} accountant"
    try:
        if prior:
            already = opacus_epsilon(accountant, prior, delta)
            if not already < target_epsilon:
                raise ConfigurationError(
                    "the releases before training already spend epsilon "
                    f"{shown(already, 3, significant=True)} of "
                    f"the target {target_epsilon:g}: nothing is left for DP-SGD"
                )
        return noise_multiplier_after(
            prior,
            target_epsilon,
            delta,
            sample_rate,
            steps,
            spent=spent,
            accountant=accountant.upper(),
            floor_out=said,
        )
    except ConfigurationError as exc:
        raise ConfigurationError(f"cannot calibrate noise for {described}: {exc}") from None
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        raise ConfigurationError(f"cannot calibrate noise for {described}: {exc}") from exc


def _batches(n: int, batch_size: int) -> int:
    """Batches (DP-SGD steps) per epoch of ``n`` items: the trainer's ``DataLoader``
    length, so the Poisson rate is ``1 / _batches(n, B)``."""
    return -(-n // batch_size)


def _planned_noise(
    prior: list[tuple[float, float, int]],
    n: int,
    batch_size: int,
    target_epsilon: float,
    epochs: int,
    delta: float,
    accountant: str,
) -> float:
    """The noise a trainer of ``n`` items calibrates for ``epochs`` epochs.

    Calibrated for the steps that will really run. Opacus's make_private_with_epsilon
    calibrates for int(epochs / q) steps, but its sampler runs int(1 / q) steps per
    epoch, and in floating point epochs * int(1 / q) can exceed int(epochs / q) (e.g.
    n=750, B=10, 3 epochs: 225 vs 224 steps, target 5.0 ends at 5.0004)."""
    sample_rate = 1 / _batches(n, batch_size)
    return _calibrate_after(
        prior,
        target_epsilon=target_epsilon,
        delta=delta,
        sample_rate=sample_rate,
        steps=epochs * int(1 / sample_rate),
        accountant=accountant,
    )


def calibrated_noise_multiplier(
    data: Dataset | DataLoader,
    *,
    target_epsilon: float,
    epochs: int,
    batch_size: int | None = None,
    delta: float | None = None,
    accountant: AccountantName = "prv",
    prior_releases: Sequence[tuple[float, float, int]] = (),
) -> float:
    """The noise multiplier ``DPSGDTrainer(model, data, target_epsilon=..., epochs=...)``
    with these arguments trains with, or the ConfigurationError it would raise, with
    none of the trainer's setup (no model, no Opacus wrapping).

    Why: a caller with much work to do before it builds its trainers (the simulator's
    prior fit and baselines, minutes) asks first, so that a target no noise can meet
    (one the releases before training already spend) is refused before that work. The
    answer is memoised, so the trainer built later does not search again."""
    if accountant not in ("prv", "rdp"):
        raise ConfigurationError(f"accountant must be 'prv' or 'rdp', not {accountant!r}")
    dataset, _, batch_size = _checked_data(data, batch_size)
    n = len(dataset)  # type: ignore[arg-type]
    unit = "customer" if isinstance(dataset, CustomerDataset) else "record"
    _, target, planned = _checked_noise_plan(None, target_epsilon, epochs)
    delta = _checked_delta(default_delta(n) if delta is None else delta, n, unit)
    prior = _prior_entries(prior_releases)
    return _planned_noise(prior, n, batch_size, target, planned, delta, accountant)  # type: ignore[arg-type]


class _GatheredBatch:
    """A batch fetched with one index per tensor (its length is its number of items)."""

    __slots__ = ("tensors",)

    def __init__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])


class _Gathering(Dataset):
    """The same items as a tensor dataset, with ``__getitems__``: a Poisson batch is
    gathered by one tensor index per tensor instead of one ``__getitem__`` per item and
    a stack per column in ``default_collate``.

    Why: that per-item path was about a quarter of a branch's DP-SGD time in
    ``secagg simulate`` (a million Python calls a run). The batches are the same
    tensors, row for row in the sampler's order, so training is unchanged; an empty
    Poisson batch is still empty (``len`` 0), for Opacus's empty-batch handling.
    """

    def __init__(self, tensors: tuple[torch.Tensor, ...]) -> None:
        self.tensors = tensors

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: Sequence[int]) -> _GatheredBatch:
        chosen = torch.as_tensor(list(indices), dtype=torch.long)
        return _GatheredBatch(tuple(t[chosen] for t in self.tensors))


def _gathering(dataset: Any) -> _Gathering | None:
    """A :class:`_Gathering` over the tensors of a ``TensorDataset`` or
    :class:`CustomerDataset`, or None for any other dataset (kept as given)."""
    if type(dataset) is TensorDataset:
        return _Gathering(tuple(dataset.tensors))
    if isinstance(dataset, CustomerDataset):
        return _Gathering(dataset.tensors)
    return None


def _collate_gathered(batch: Any) -> Any:
    if isinstance(batch, _GatheredBatch):
        return list(batch.tensors)  # what default_collate makes of (input, target) items
    return default_collate(batch)


def _positive_finite(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{name} must be a number, not {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigurationError(f"{name} must be positive and finite, not {value!r}")
    return float(value)


def _checked_data(data: Dataset | DataLoader, batch_size: int | None) -> tuple[Dataset, Any, int]:
    """``(dataset, collate_fn, batch_size)`` from what the caller gave: a ``DataLoader``
    lends its dataset, collate function and (unless overridden) batch size; its sampler
    is dropped, because the accounting assumes the Poisson sampler the trainer builds."""
    collate_fn = None
    if isinstance(data, DataLoader):
        if batch_size is None:
            batch_size = data.batch_size
        collate_fn = data.collate_fn
        dataset = data.dataset
    else:
        dataset = data
    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise ConfigurationError("Poisson sampling needs a map-style dataset with a known length")
    n = len(dataset)
    if n < 1:
        raise ConfigurationError("the dataset is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise ConfigurationError(f"batch_size must be an int, not {batch_size!r}")
    if not 1 <= batch_size <= n:
        raise ConfigurationError(
            f"batch_size must be between 1 and the dataset size {n}, not {batch_size}"
        )
    return dataset, collate_fn, int(batch_size)


#: the most training noise a trainer takes: MAX_NOISE_MULTIPLIER of
#: :mod:`secagg.dp.accounting`, the calibration's ceiling (a test keeps them equal)
_MAX_TRAINING_NOISE = 1e4


def _checked_noise_plan(
    noise_multiplier: float | None, target_epsilon: float | None, epochs: int | None
) -> tuple[float | None, float | None, int | None]:
    """Exactly one way to set the noise: a multiplier, or a target epsilon with the
    epochs it must cover (the calibration needs the step count up front)."""
    if (noise_multiplier is None) == (target_epsilon is None):
        raise ConfigurationError(
            "give exactly one of noise_multiplier and target_epsilon (with epochs)"
        )
    if noise_multiplier is not None:
        if epochs is not None:
            raise ConfigurationError("epochs is only meaningful with target_epsilon")
        z = _positive_finite("noise_multiplier", noise_multiplier)
        if z > _MAX_TRAINING_NOISE:
            # Opacus's accountants overflow (an OverflowError at train()) long before
            # such noise means anything: the calibration's ceiling, as for a target
            raise ConfigurationError(
                f"noise_multiplier must lie in (0, {_MAX_TRAINING_NOISE:g}], not {z!r}: "
                "noise that is the signal's 10^4-fold leaves nothing to learn"
            )
        return z, None, None
    assert target_epsilon is not None
    target_epsilon = _positive_finite("target_epsilon", target_epsilon)
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ConfigurationError(f"target_epsilon needs epochs, a positive int, not {epochs!r}")
    return None, target_epsilon, int(epochs)


def _checked_delta(delta: float, n: int, unit: str) -> float:
    """``delta`` below ``1 / n``: a larger one allows a mechanism that publishes one
    whole item (record or customer) outright."""
    delta = _positive_finite("delta", delta)
    if not delta < 1 / n:
        raise ConfigurationError(
            f"delta must be below 1/n = {1 / n:.3g} for n = {n} {unit}s, not {delta!r}: "
            f"a larger delta allows publishing a whole {unit}"
        )
    return delta


def _checked_loss(loss_fn: nn.Module | None, customer_level: bool) -> tuple[nn.Module, str]:
    """The criterion and its reduction, matched to the privacy unit: a customer's
    per-item gradient is right only under the masked per-customer mean."""
    if loss_fn is None:
        loss_fn = CustomerLoss() if customer_level else nn.CrossEntropyLoss()
    if customer_level and not isinstance(loss_fn, CustomerLoss):
        # Any other loss would average over padding rows and read the valid
        # mask as a label, and its per-item gradient would not be the customer's.
        raise ConfigurationError(
            "a CustomerDataset needs a CustomerLoss (the masked per-customer mean), "
            f"not {type(loss_fn).__name__}; e.g. CustomerLoss(positive_weight=10.0)"
        )
    if not customer_level and isinstance(loss_fn, CustomerLoss):
        raise ConfigurationError(
            "CustomerLoss expects customer items (rows, (label, valid) targets); "
            "build the dataset with group_by_customer"
        )
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction not in ("mean", "sum"):
        raise ConfigurationError(f"loss_fn must reduce with 'mean' or 'sum', not {reduction!r}")
    return loss_fn, reduction


def _trainable_parameters(model: nn.Module, unit: str) -> list[nn.Parameter]:
    """The parameters DP-SGD will train, after checking that Opacus can compute their
    per-item gradients and that they are float32 (before anything is wrapped)."""
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        details = "; ".join(str(e) for e in errors)
        raise ConfigurationError(
            f"model is not compatible with per-{unit} DP-SGD: {details}. Apply "
            "opacus.validators.ModuleValidator.fix to the *global* model before "
            "distributing it, so every branch shares one architecture"
        )
    _named_parameters(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ConfigurationError("the model has no trainable parameters")
    return trainable


class DPSGDTrainer:
    """One front door to record- or customer-level DP-SGD (Opacus) for a branch's model.

    Give EITHER ``noise_multiplier`` (noise std / clip, per step) OR
    ``target_epsilon`` with ``epochs``: then the trainer finds the smallest noise
    multiplier whose epsilon (by its Opacus accountant) after exactly the steps of
    ``epochs`` epochs, and any ``prior_releases``, is at most the target (within
    0.3 % below it in the noise multiplier), and :meth:`train` refuses to run past
    ``epochs`` epochs in total, which would break the promise. This is what
    ``make_private_with_epsilon`` does, except for the step count (see the
    comment in ``__init__``) and a search that asks the accountant 2-4 times
    instead of about a dozen.

    Args:
        model: the branch's model. Trained in place; :attr:`model` returns it.
        data: a map-style ``Dataset`` of ``(inputs..., target)`` items, or a
            ``DataLoader`` over one (its dataset and ``collate_fn`` are kept; its
            sampler is replaced by Poisson sampling, which the accounting assumes).
            A :class:`~secagg.dp.user_level.CustomerDataset` makes the privacy
            unit the customer: ``n``, ``q`` and ``delta`` count customers, the
            model is applied to ``[B, max_rows, F]`` and must output one logit
            per row, and ``loss_fn`` must be a
            :class:`~secagg.dp.user_level.CustomerLoss` (the default there).
        batch_size: *expected* batch size B. Opacus sets ``q = 1 / ceil(n / B)``
            (so ``q ≈ B / n``) and runs ``int(1 / q)`` steps per epoch (in floating
            point that is sometimes ``ceil(n / B) - 1``, e.g. 92 for 93 batches);
            the sampler and the accountant use the same ``q``, and the
            accountant counts the steps that really ran. Defaults to the
            loader's batch size when ``data`` is a ``DataLoader``.
        learning_rate: SGD step size (plain SGD, no momentum: no state carries
            between FL rounds).
        max_grad_norm: per-item (record or customer) L2 clip ``C``.
        noise_multiplier: ``z``; noise std per step is ``z · C`` on the summed
            clipped gradients. Must be > 0: zero noise is not DP.
        target_epsilon, epochs: the alternative to ``noise_multiplier``.
        delta: target delta; default :func:`default_delta` of the dataset size
            (records, or customers). Must satisfy ``0 < delta < 1 / n``.
        accountant: ``"prv"`` (Opacus's default, tighter) or ``"rdp"``. GDP is
            refused: it is a CLT approximation that can underestimate epsilon.
        loss_fn: criterion with ``reduction`` "mean" (default
            ``CrossEntropyLoss()``, or ``CustomerLoss()`` for a customer
            dataset) or "sum".
        secure_mode: must stay False; see the module docstring.
        replay_seed: for simulations only: draw the batches and the noise from
            torch generators seeded from these bytes (Opacus's own path) instead
            of keyed streams under OS-CSPRNG keys, so a run replays exactly.
            Anyone who knows it can subtract the noise: never set it where the
            privacy guarantee matters.
        prior_releases: Gaussian releases of the same items made before training,
            as accountant entries ``(noise_multiplier, sample_rate, steps)`` (e.g.
            the noised feature statistics, :mod:`secagg.dp.statistics`). They start
            the accountant's history, and with ``target_epsilon`` the training
            noise is calibrated so that they *and* the training stay within it.
    """

    def __init__(
        self,
        model: nn.Module,
        data: Dataset | DataLoader,
        *,
        batch_size: int | None = None,
        learning_rate: float,
        max_grad_norm: float,
        noise_multiplier: float | None = None,
        target_epsilon: float | None = None,
        epochs: int | None = None,
        delta: float | None = None,
        accountant: AccountantName = "prv",
        loss_fn: nn.Module | None = None,
        secure_mode: bool = False,
        replay_seed: bytes | None = None,
        prior_releases: Sequence[tuple[float, float, int]] = (),
    ) -> None:
        if secure_mode:
            raise ConfigurationError(
                "secure_mode=True needs torchcsprng, which has no installable build for "
                "this torch; the trainer draws noise and batches from keyed streams instead. "
                "See the secagg.dp.dpsgd docstring for the floating-point caveat."
            )
        if not isinstance(model, nn.Module):
            raise ConfigurationError(f"model must be a torch nn.Module, not {type(model)!r}")
        if isinstance(model, AbstractGradSampleModule):
            raise ConfigurationError("pass the plain model; the trainer wraps it for Opacus")
        if accountant not in ("prv", "rdp"):
            raise ConfigurationError(
                f"accountant must be 'prv' or 'rdp', not {accountant!r} "
                "(GDP is a CLT approximation that can underestimate epsilon)"
            )
        dataset, collate_fn, batch_size = _checked_data(data, batch_size)
        n = len(dataset)  # type: ignore[arg-type]
        customer_level = isinstance(dataset, CustomerDataset)
        unit = "customer" if customer_level else "record"
        noise_multiplier, target_epsilon, epochs = _checked_noise_plan(
            noise_multiplier, target_epsilon, epochs
        )
        delta = _checked_delta(default_delta(n) if delta is None else delta, n, unit)
        learning_rate = _positive_finite("learning_rate", learning_rate)
        max_grad_norm = _positive_finite("max_grad_norm", max_grad_norm)
        loss_fn, reduction = _checked_loss(loss_fn, customer_level)
        trainable = _trainable_parameters(model, unit)
        device = trainable[0].device

        # --- Opacus -----------------------------------------------------------
        gathered = _gathering(dataset) if collate_fn is None else None
        loader = DataLoader(
            dataset if gathered is None else gathered,
            batch_size=batch_size,
            collate_fn=collate_fn if gathered is None else _collate_gathered,
            generator=_csprng_seeded_generator(  # Poisson sampler
                torch.device("cpu"), replay_seed, b"sampler"
            ),
        )
        optimizer = torch.optim.SGD(trainable, lr=learning_rate)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SECURE_RNG_WARNING)
            engine = PrivacyEngine(accountant=accountant, secure_mode=False)
        common: dict[str, Any] = {
            "module": model,
            "optimizer": optimizer,
            "data_loader": loader,
            "criterion": loss_fn,
            "max_grad_norm": max_grad_norm,
            "loss_reduction": reduction,
            "poisson_sampling": True,
            # replay: Opacus's torch.normal from a seeded generator; else none (the
            # keyed optimizer below draws the noise, and refuses a generator)
            "noise_generator": (
                None
                if replay_seed is None
                else _csprng_seeded_generator(device, replay_seed, b"noise")
            ),
        }
        prior = _prior_entries(prior_releases)
        assert len(loader) == _batches(n, batch_size)  # the rate the plan below assumes
        if noise_multiplier is None:
            noise_multiplier = _planned_noise(
                prior,
                n,
                batch_size,
                target_epsilon,
                epochs,
                delta,
                accountant,  # type: ignore[arg-type]
            )
        gsm, dp_optimizer, dp_loader = engine.make_private(
            noise_multiplier=noise_multiplier, **common
        )
        assert dp_loader.sample_rate == 1 / len(loader)  # the rate the sampler draws at
        sample_rate = float(dp_loader.sample_rate)
        if replay_seed is None:  # a deployment: both draws from keyed streams
            dp_optimizer, dp_loader = _keyed(dp_optimizer, dp_loader, n, sample_rate)
        else:  # a simulation: Opacus's seeded noise, non-finite samples zeroed as above
            dp_optimizer = finite_optimizer(dp_optimizer)
        # Opacus's hook records q = 1 / len(dp_loader), and its sampler runs
        # int(1 / q) batches an epoch: for b = 93, 105, 117, ... batches int(1 / (1 / b))
        # is b - 1 in floating point, so the history said q = 1 / (b - 1) while every
        # item was drawn at 1 / b, and a trainer calibrated for what ran reported
        # epsilon above its target (3.0098 for 3; newcomer audit, 2026-12-05). The
        # accountant must record the rate the sampler used.
        dp_optimizer.attach_step_hook(
            engine.accountant.get_optimizer_hook_fn(sample_rate=sample_rate)
        )
        engine.accountant.history.extend(prior)

        self._model = model
        self._gsm = gsm
        self._optimizer = dp_optimizer
        self._loader: DataLoader = dp_loader
        self._sample_rate = sample_rate
        self._engine = engine
        self._loss_fn = loss_fn
        self._reduction: str = reduction
        self._device = device
        self._delta = delta
        #: epsilon by (history, delta): Opacus recomputes it from the whole history on
        #: every call (0.1-0.7 s for PRV), and a round asks it before and after training
        self._epsilons: dict[tuple[tuple[tuple[float, float, int], ...], float], float] = {}
        self._accountant_name: str = accountant
        self._max_grad_norm = max_grad_norm
        self._target_epsilon = target_epsilon
        self._planned_epochs = epochs
        self._epochs_done = 0
        self._num_records = n
        self._unit = unit
        self._max_rows: int | None = dataset.max_rows if customer_level else None

    # --- read-only facts --------------------------------------------------------

    @property
    def model(self) -> nn.Module:
        """The trained model, unwrapped: its ``state_dict`` has no ``_module.`` prefix.

        Run inference under ``torch.no_grad()`` (Opacus's hooks stay attached).
        """
        return self._model

    @property
    def noise_multiplier(self) -> float:
        """Noise std / clip per step (calibrated by Opacus in target-epsilon mode)."""
        return float(self._optimizer.noise_multiplier)

    @property
    def sample_rate(self) -> float:
        """Poisson inclusion probability ``q`` of each item (record or customer) per step."""
        return self._sample_rate

    @property
    def steps_per_epoch(self) -> int:
        """DP-SGD steps in one epoch (``int(1 / q)``, Opacus's convention)."""
        return len(self._loader)

    @property
    def delta(self) -> float:
        """The delta this trainer reports epsilon at."""
        return self._delta

    @property
    def num_records(self) -> int:
        """Size of the branch dataset in privacy units (the ``n`` in ``delta < 1 / n``):
        records, or customers for a customer dataset."""
        return self._num_records

    @property
    def privacy_unit(self) -> str:
        """What one epsilon protects: ``"record"`` or ``"customer"``."""
        return self._unit

    @property
    def steps(self) -> int:
        """DP-SGD steps taken so far, over all :meth:`train` calls."""
        return sum(int(count) for _, _, count in self._engine.accountant.history)

    @property
    def history(self) -> tuple[tuple[float, float, int], ...]:
        """The accountant's ``(noise_multiplier, sample_rate, steps)`` runs, for the ledger."""
        return tuple((float(z), float(q), int(c)) for z, q, c in self._engine.accountant.history)

    def privacy_report(self) -> dict[str, Any]:
        """What this branch tells the server for the ledger: the accountant's inputs
        (not its data), so an auditor can recompute the epsilon, and its unit.

        A customer-level report adds ``max_rows`` (the bound that makes one item
        one whole customer) and ``num_customers`` (the ``n`` behind ``q`` and
        ``delta``; ``q = 1 / ceil(n / B)`` reveals it roughly anyway).
        """
        report: dict[str, Any] = {
            "unit": self._unit,
            "mechanism": "dpsgd",
            "accountant": self._accountant_name,
            "delta": self._delta,
            "history": [list(step) for step in self.history],
            "epsilon": self.epsilon(),
            "max_grad_norm": self._max_grad_norm,
            "opacus": opacus.__version__,
        }
        if self._max_rows is not None:
            report["max_rows"] = self._max_rows
            report["num_customers"] = self._num_records
        return report

    # --- accounting -----------------------------------------------------------

    def epsilon(self, delta: float | None = None) -> float:
        """Epsilon per :attr:`privacy_unit` spent so far, at ``delta`` (default: the trainer's).

        Cumulative over every :meth:`train` call of this trainer. In federated
        learning the branch trains in every round on the same records, so this is
        the composition over all local steps of all rounds so far, which is the
        number to promise customers, not a per-round figure.
        """
        if delta is None:
            delta = self._delta
        delta = _positive_finite("delta", delta)
        if not delta < 1:
            raise ConfigurationError(f"delta must be below 1, not {delta!r}")
        history = self._engine.accountant.history
        if not history:
            return 0.0
        key = (tuple(history), delta)
        if key not in self._epsilons:
            from secagg.dp.accountants import opacus_epsilon

            # raises PrvCannotEvaluate rather than state PRV's capped ~709 + log q
            self._epsilons[key] = opacus_epsilon(self._accountant_name, history, delta)
        return self._epsilons[key]

    def _check_accountable(self, extra_steps: int) -> None:
        """Raise before training if the accountant could not report the result.

        Opacus's PRV accountant fails on some extreme ``(z, q, steps)``
        (issues #601/#604); finding that out *after* training would leave steps
        spent that nobody can state. A fresh accountant of the same kind gets the
        history as it will be, so nothing in the trainer changes on failure.
        """
        history = list(self._engine.accountant.history)
        z, q = self.noise_multiplier, self.sample_rate
        if history and history[-1][:2] == (z, q):  # Opacus's step() extends the last entry
            last = history.pop()
            history.append((z, q, last[2] + extra_steps))
        else:
            history.append((z, q, extra_steps))
        self._probe(history, (z, q, extra_steps), "this training")

    def _probe(
        self,
        history: list[tuple[float, float, int]],
        entry: tuple[float, float, int],
        what: str,
    ) -> None:
        """Evaluate ``history``, this accountant's once ``entry`` is spent, on a fresh
        accountant of the same kind; raise ConfigurationError if it fails or is infinite
        (nothing changes). The value is kept: :meth:`epsilon` of that history is then
        free."""
        from secagg.dp.accountants import opacus_epsilon

        z, q, steps = entry
        try:
            eps = _searched_epsilon(self._accountant_name, history, self._delta)
            if eps is None:
                eps = opacus_epsilon(self._accountant_name, history, self._delta)
            self._epsilons[(tuple(history), self._delta)] = eps
        except ConfigurationError:
            raise  # PrvCannotEvaluate or Opacus's overflow: named already, with the way out
        except (RuntimeError, ValueError, FloatingPointError) as exc:
            raise ConfigurationError(
                f"the {self._accountant_name!r} accountant cannot evaluate "
                f"z={z:.4g}, q={q:.4g}, "
                f"{self.steps + steps} steps ({exc}); try accountant='rdp'"
            ) from exc
        if not math.isfinite(eps):
            raise ConfigurationError(f"{what} would give an infinite epsilon")

    def charge(self, noise_multiplier: float, sample_rate: float, steps: int = 1) -> None:
        """Charge another Gaussian release of this branch's items to its accountant.

        For a release outside DP-SGD that touches the same records (customers):
        e.g. the noised feature statistics (:mod:`secagg.dp.statistics`), one
        unsampled Gaussian, ``charge(z_eff, 1.0)``. ``noise_multiplier`` is its
        noise std over its L2 sensitivity *per item*, ``sample_rate`` the Poisson
        probability that an item was in it (1.0: every item), ``steps`` how many
        such releases. It is appended to the accountant's history, so
        :meth:`epsilon`, :attr:`history`, :attr:`steps` (which then counts it as a
        step) and :meth:`privacy_report` include it; refused, with nothing
        changed, if the accountant could not evaluate the result.

        With ``target_epsilon`` the noise was calibrated for the training alone: a
        charge makes the reported epsilon exceed that target (it is reported, not
        hidden); budget for it when choosing the target.
        """
        z = _positive_finite("noise_multiplier", noise_multiplier)
        q = _positive_finite("sample_rate", sample_rate)
        if q > 1:
            raise ConfigurationError(f"sample_rate must lie in (0, 1], not {sample_rate!r}")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ConfigurationError(f"steps must be a positive int, not {steps!r}")
        entry = (z, q, int(steps))
        self._probe([*self._engine.accountant.history, entry], entry, "this charge")
        self._engine.accountant.history.append(entry)

    # --- training -------------------------------------------------------------

    def train(self, epochs: int = 1, *, progress: bool = False) -> TrainingReport:
        """Run ``epochs`` epochs of DP-SGD and report the budget spent so far.

        Every Poisson batch produces one noised step, including empty batches
        (Opacus then steps on noise alone): skipping them would both reveal that
        the batch was empty and leave steps unaccounted. ``progress`` prints one
        line per epoch to stderr (loss there is a local, non-DP diagnostic).
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ConfigurationError(f"epochs must be a positive int, not {epochs!r}")
        if self._planned_epochs is not None and self._epochs_done + epochs > self._planned_epochs:
            raise ConfigurationError(
                f"noise was calibrated for target_epsilon={self._target_epsilon} over "
                f"{self._planned_epochs} epochs; {self._epochs_done} done, {epochs} more "
                "would exceed the target"
            )
        self._check_accountable(epochs * self.steps_per_epoch)

        self._gsm.train()
        loss_sum = 0.0
        loss_records = 0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_BACKWARD_HOOK_WARNING)
            for epoch in range(epochs):
                epoch_sum, epoch_records = 0.0, 0
                for batch in self._loader:
                    *inputs, target = (t.to(self._device) for t in batch)
                    self._optimizer.zero_grad(set_to_none=True)
                    loss = self._loss_fn(self._gsm(*inputs), target)
                    loss.backward()
                    self._check_one_gradient_per_item(len(target))
                    self._optimizer.step()
                    size = len(target)
                    if size:  # an empty batch has a NaN mean loss but still stepped
                        total = loss.item() * (1 if self._reduction == "sum" else size)
                        epoch_sum += total
                        epoch_records += size
                loss_sum += epoch_sum
                loss_records += epoch_records
                self._epochs_done += 1
                if progress:
                    mean = epoch_sum / epoch_records if epoch_records else math.nan
                    print(
                        f"[dpsgd] epoch {epoch + 1}/{epochs} (total {self._epochs_done}): "
                        f"mean loss {mean:.4f}, {self._unit}-level epsilon "
                        f"{shown(self.epsilon(), 3)} at delta "
                        f"{shown(self._delta, 6, significant=True)}",
                        file=sys.stderr,
                        flush=True,
                    )
        self._optimizer.zero_grad(set_to_none=True)

        return TrainingReport(
            epsilon=self.epsilon(),
            delta=self._delta,
            noise_multiplier=self.noise_multiplier,
            sample_rate=self.sample_rate,
            steps=self.steps,
            epochs=self._epochs_done,
            accountant=self._accountant_name,
            accountant_version=opacus.__version__,
            max_grad_norm=self._max_grad_norm,
            mean_loss=loss_sum / loss_records if loss_records else math.nan,
            privacy_unit=self._unit,
        )

    def _check_one_gradient_per_item(self, items: int) -> None:
        """Refuse a step whose per-sample gradients are not one per item of the batch.

        Opacus takes a parameter's per-sample gradients along the batch axis of the
        activations its layers see, and clips each to ``max_grad_norm``. A model that
        folds another axis into that one (``x.reshape(b * r, f)`` over a customer's
        ``r`` rows, then back) passes every shape check, yet its layers see ``b * r``
        samples: each *row* was clipped to ``C``, so one customer moved a step by up to
        ``r * C`` while the epsilon reported was that of ``C`` (a customer-level
        epsilon of 3.17 for what was, per customer, six rows' worth of it;
        tests/dp/test_dpsgd_one_gradient_per_item.py). Checked after the backward pass
        and before the step: the refused batch changes no parameter and charges nothing
        (earlier steps of the run, if any, were charged as they ran)."""
        for parameter in self._optimizer.params:
            grad_sample = getattr(parameter, "grad_sample", None)
            if grad_sample is None:
                continue
            latest = grad_sample[-1] if isinstance(grad_sample, list) else grad_sample
            if len(latest) != items:
                self._optimizer.zero_grad(set_to_none=True)
                unit = "customers" if self._unit == "customer" else "records"
                raise ConfigurationError(
                    f"the model's per-sample gradients count {len(latest)} samples in a "
                    f"batch of {items} {unit}: it folds another axis into the batch axis "
                    "(e.g. reshapes [batch, rows, features] to [batch * rows, features]), "
                    f"so Opacus would clip each of those, not each one of the {unit}, and "
                    f"the {self._unit}-level epsilon would understate what one "
                    f"{self._unit} can change; keep the batch axis first and whole in "
                    "every layer"
                )

    # --- federated-learning plumbing -------------------------------------------

    def flat_parameters(self) -> np.ndarray:
        """The model's parameters as a flat float32 vector (see :func:`flat_parameters`)."""
        return flat_parameters(self._model)

    def load_flat_parameters(self, vector: np.ndarray) -> None:
        """Load e.g. the round's global model (see :func:`load_flat_parameters`)."""
        load_flat_parameters(self._model, vector)

    def model_update(self, initial: np.ndarray | Mapping[str, Any]) -> np.ndarray:
        """The client's update ``trained - initial`` as a flat float32 vector.

        ``initial`` is the flat vector the round started from (what
        :meth:`flat_parameters` returned after loading the global model) or a
        state dict of it, with or without Opacus's ``_module.`` prefix. The
        result is what goes to secure aggregation; a non-finite update (diverged
        training) is refused because one NaN would poison everybody's sum.
        """
        if isinstance(initial, Mapping):
            start = _flat_from_state(self._model, initial)
        else:
            start = np.asarray(initial)
            if start.dtype != np.float32:
                raise ConfigurationError(f"expected a float32 vector, got {start.dtype}")
        trained = self.flat_parameters()
        if start.shape != trained.shape:
            raise ConfigurationError(
                f"initial has shape {start.shape}, the model has {trained.shape} parameters"
            )
        update = (trained - start).astype(np.float32, copy=False)
        if not np.all(np.isfinite(update)):
            raise ConfigurationError(
                "the model update is not finite (training diverged: lower learning_rate)"
            )
        return update
