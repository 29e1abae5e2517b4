"""The statistics the simulator standardises features with: secure and noised, or public.

Standardising with a mean and std computed over every branch's pooled training
rows releases those rows outside every epsilon (the DP review). Two honest
sources replace it:

* :func:`secure_feature_statistics`: the moment release of
  :mod:`secagg.dp.statistics`. Each branch computes its ``2F + 1`` clipped sums
  (:meth:`~secagg.dp.statistics.MomentRelease.branch_vector`; it and
  :func:`clipped_shares`, both on the branch's side, are the only functions that
  ever see its rows) and adds its own Gaussian noise share; the vectors are
  summed by secure aggregation (SecAgg or SecAgg+), so the server only learns the
  noised total, and :meth:`FeatureStatistics.accountant_step` is what every
  branch charges to its accountant (``DPSGDTrainer.charge(*step)``).
* :func:`public_feature_statistics` and :func:`load_public_statistics`:
  statistics of public or prior data (a reference sample that belongs to no
  branch, a file); no epsilon, nothing to charge.

Aggregation details. The branch vectors are summed in a 64-bit ring
(``bits = 64``) whose ``value_bound`` comes from public numbers only: a public cap
on a branch's rows (``max_branch_rows``), the clip bound, and 64 standard
deviations of a noise share (exceeded with probability below 10^-800; the branch
would then refuse, never wrap). A bound derived from the data would itself leak
the largest branch's size. The ``plain`` backend would show every branch's
vector, with only its share of the noise, to the server, and ``ckks`` needs a key
holder the statistics round has no use for, so both fall back to ``secagg+``
(recorded in :attr:`FeatureStatistics.details`). Secure aggregation needs at least
two branches and every branch's share: a round where a branch dropped is refused
(its noise share would be missing).

What the bound clips. The release clips every value to ``[-bound, bound]``; a column
at another scale (seconds, euros) is clipped value by value, its released mean sits
at the bound and its std at the floor, and the standardised column comes out in the
millions: the model trains on garbage (simulate audit, 2026-12-06: AUPRC 0.157 on a
credit-card-layout file read as a generic CSV, 1.000 with its loader, which scales
Time and Amount). So, before it contributes, each branch counts on its own rows the
share of each column's values the bound would clip (:func:`clipped_shares`) and
refuses to contribute a column whose share is above :data:`MAX_CLIPPED_SHARE`: the
bulk of the column lies beyond the bound, and what would be released describes the
bound, not the column. The count needs only the branch's own rows and never leaves
it (no privacy cost: a branch of a real federation would say why in its own log), and
the refusal comes before any sum, so no epsilon is spent on a useless release. The
simulator's driver, which plays every branch, checks them all before the one secure
round and refuses in one line naming every such column (:class:`ColumnsBeyondBound`).
Below the limit the clipping is a bias (a too-small std), recorded per column in
:attr:`FeatureStatistics.details` (``clipped``: pooled over the branches and the
largest branch's share: the simulator's view; a real branch knows only its own).

Determinism. Masks cancel exactly; what remains random is the noise and the
fixed-point stochastic rounding. With ``replay_seed`` (simulations only: a known
seed protects nothing) both derive from it (:func:`secagg.crypto.stream.derive`),
so the same seed gives byte-identical statistics; without it both come from the
OS CSPRNG.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from secagg.aggregation import get_backend, run_local_round
from secagg.crypto.stream import KeyedStream, derive
from secagg.dp.distributed import assumed_colluders
from secagg.dp.statistics import MomentRelease
from secagg.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_BRANCH_ROWS",
    "MAX_CLIPPED_SHARE",
    "NOTED_CLIPPED_SHARE",
    "PUBLIC",
    "SECURE",
    "ColumnsBeyondBound",
    "FeatureStatistics",
    "clipped_shares",
    "load_public_statistics",
    "public_feature_statistics",
    "secure_feature_statistics",
]

SECURE = "secure"
PUBLIC = "public"
#: the public cap on one branch's rows that sizes the aggregation ring
DEFAULT_MAX_BRANCH_ROWS = 10_000_000
#: a branch refuses to contribute a column the bound would clip more than this share of
#: (its median lies beyond the bound: the released mean would sit near the bound and the
#: std collapse, 0.4-0.6 of the column's and far less for a raw-scale one); at a quarter
#: the std comes out about 20 % small, which standardisation tolerates (the synthetic
#: world's log_amount: up to 24 % on a branch; the Kaggle file's: about 15 %)
MAX_CLIPPED_SHARE = 0.5
#: above this share of a column's values clipped (pooled over the branches) the run says,
#: beside its results, that the column's statistics are biased (its std too small)
NOTED_CLIPPED_SHARE = 0.25
#: rows standardised at a time (:meth:`FeatureStatistics.apply`): 65 536 rows of 31
#: features are 16 MB of float64, a bounded transient whatever the file's size
APPLY_ROWS = 65_536
#: noise-share tail covered by the value bound, in standard deviations
_NOISE_TAIL = 64.0
_BITS = 64
_MASKING = ("secagg", "secagg+")
_FALLBACK = {"plain": "secagg+", "ckks": "secagg+"}
_NOISE_LABEL = "secagg/v1/feature-stats-noise/"
_ROUNDING_LABEL = b"secagg/v1/feature-stats-rounding/"


def _frozen(name: str, values: object) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)  # a copy: the caller's array stays theirs
    if arr.ndim != 1 or arr.size == 0:
        raise ConfigurationError(f"{name} must be a non-empty vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigurationError(f"{name} contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class FeatureStatistics:
    """A mean and std per feature, where they came from, and what they cost.

    ``source`` is ``"secure"`` (the noised moment release over the branches) or
    ``"public"`` (public or prior data: no epsilon). For a secure release,
    ``noise_multiplier`` is the per-block ``z``, ``effective_noise_multiplier`` the
    one Gaussian it amounts to (``z / sqrt(3)``), ``bound`` the clip and
    ``rows_per_unit`` the rows one privacy unit may contribute. ``details`` are the
    facts for the run report (backend, branches, honest noise contributors, ...).
    """

    mean: np.ndarray
    std: np.ndarray
    source: str
    noise_multiplier: float = 0.0
    effective_noise_multiplier: float = 0.0
    bound: float | None = None
    rows_per_unit: int = 1
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mean, std = _frozen("mean", self.mean), _frozen("std", self.std)
        if mean.shape != std.shape:
            raise ConfigurationError(
                f"mean and std must have one value per feature, got {mean.size} and {std.size}"
            )
        if not np.all(std > 0):
            raise ConfigurationError("every std must be positive")
        if self.source not in (SECURE, PUBLIC):
            raise ConfigurationError(
                f"source must be {SECURE!r} or {PUBLIC!r}, not {self.source!r}"
            )
        if self.source == SECURE and self.bound is None:
            raise ConfigurationError("secure statistics need the clip bound they were released at")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "details", dict(self.details))

    @property
    def features(self) -> int:
        return int(self.mean.size)

    @property
    def private(self) -> bool:
        """Whether computing these touched branch data under DP (a secure, noised release)."""
        return self.source == SECURE and self.noise_multiplier > 0

    @property
    def accountant_step(self) -> tuple[float, float, int] | None:
        """What each branch charges its accountant (``DPSGDTrainer.charge(*step)``):
        ``(z / sqrt(3), 1.0, 1)``; None for public statistics or a release without DP."""
        return self._release().accountant_step if self.source == SECURE else None

    def _release(self) -> MomentRelease:
        assert self.bound is not None
        return MomentRelease(
            bound=self.bound,
            features=self.features,
            noise_multiplier=self.noise_multiplier,
            rows_per_unit=self.rows_per_unit,
        )

    def epsilon_at(self, delta: float, accountant: str = "pld") -> float:
        """Epsilon at ``delta`` of this release alone: 0.0 for public statistics (no
        branch data), ``inf`` for a secure release without noise (no DP)."""
        if self.source == PUBLIC:
            from secagg.dp._checks import _delta

            _delta(delta)
            return 0.0
        return self._release().epsilon(delta, accountant)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` as float32; the last axis of ``x`` is the features.

        Computed in float64 a slice of :data:`APPLY_ROWS` rows at a time: the whole
        array at once held three float64 copies of it beside the result (six times a
        branch's float32 rows, 1.4 tables at 3 branches: the peak of loading a CSV,
        memory audit 2026-12-04). Elementwise, so the values are the same."""
        arr = np.asarray(x)
        if arr.ndim == 0 or arr.shape[-1] != self.features:
            raise ConfigurationError(
                f"expected {self.features} features on the last axis, got shape {arr.shape}"
            )
        if arr.ndim != 2:
            return ((arr.astype(np.float64) - self.mean) / self.std).astype(np.float32)
        out = np.empty(arr.shape, dtype=np.float32)
        for start in range(0, arr.shape[0], APPLY_ROWS):
            part = arr[start : start + APPLY_ROWS].astype(np.float64)
            out[start : start + APPLY_ROWS] = (part - self.mean) / self.std
        return out

    def as_dict(self, feature_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready, for the run report. With ``feature_names`` the values are under
        ``"features": {name: {"mean", "std"}}``, the layout
        :func:`load_public_statistics` reads; else as ``"mean"`` and ``"std"`` lists."""
        out: dict[str, Any] = {
            "source": self.source,
            "num_features": self.features,
            "noise_multiplier": self.noise_multiplier,
            "effective_noise_multiplier": self.effective_noise_multiplier,
            "bound": self.bound,
            "rows_per_unit": self.rows_per_unit,
            **self.details,
        }
        if feature_names is None:
            out["mean"] = [float(v) for v in self.mean]
            out["std"] = [float(v) for v in self.std]
            return out
        names = list(feature_names)
        if len(names) != self.features or len(set(names)) != len(names):
            raise ConfigurationError(
                f"give {self.features} distinct feature names, got {len(names)}"
            )
        out["features"] = {
            name: {"mean": float(m), "std": float(s)}
            for name, m, s in zip(names, self.mean, self.std, strict=True)
        }
        return out


# --- secure: the noised moment release over the branches --------------------------


def clipped_shares(rows: np.ndarray, bound: float) -> np.ndarray:
    """The share of each column's values the release would clip (``|x| > bound``), as a
    branch computes it on its own ``(n, F)`` rows before it contributes; the count
    never leaves the branch. No rows: zeros."""
    x = np.asarray(rows, dtype=np.float64)
    if x.shape[0] == 0:
        return np.zeros(x.shape[1], dtype=np.float64)
    return np.asarray(np.mean(np.abs(x) > bound, axis=0), dtype=np.float64)


class ColumnsBeyondBound(ConfigurationError):
    """Some branch would clip most of a column's values: no branch contributes.

    ``columns`` maps each such column to (the largest share a branch would clip, how
    many of the ``branches`` are above :data:`MAX_CLIPPED_SHARE`); ``bound`` is the
    clip bound."""

    def __init__(
        self,
        columns: dict[str, tuple[float, int]],
        branches: int,
        bound: float,
        limit: float,
        *,
        named: bool = True,
    ) -> None:
        self.columns, self.branches, self.bound, self.limit = columns, branches, bound, limit
        self.named = named
        super().__init__(
            f"the moment release clips every value to ±{bound:g}, and a branch refuses to "
            f"contribute a column it would clip more than {100 * limit:.0f} % of: "
            + self.described()
        )

    def described(self) -> str:
        """``'Time' (100 % of its values on 8 of 8 branches), ...``: each column refused,
        the largest share a branch would clip and on how many branches it is too much."""

        def one(name: str, share: float, over: int) -> str:
            label = repr(name) if self.named else name
            most = "" if over == 1 or share == 1 else "up to "
            return (
                f"{label} ({most}{100 * share:.0f} % of its values on {over} of "
                f"{self.branches} branches)"
            )

        return ", ".join(one(name, *values) for name, values in self.columns.items())


def _noise_stream(replay_seed: bytes | str | int | None, branch: int) -> KeyedStream:
    if replay_seed is None:
        return KeyedStream()  # OS CSPRNG
    return KeyedStream(derive(f"{_NOISE_LABEL}{branch}/", replay_seed))


def _backend_name(backend: object) -> str:
    if backend in _MASKING:
        return str(backend)
    if backend in _FALLBACK:
        return _FALLBACK[str(backend)]
    raise ConfigurationError(f"backend must be one of {(*_MASKING, *_FALLBACK)}, not {backend!r}")


def secure_feature_statistics(
    branch_rows: Sequence[np.ndarray],
    *,
    bound: float,
    noise_multiplier: float,
    rows_per_unit: int = 1,
    corrupt_fraction: float = 0.25,
    backend: str = "secagg+",
    replay_seed: bytes | None = None,
    customers: Sequence[np.ndarray | None] | None = None,
    max_branch_rows: int = DEFAULT_MAX_BRANCH_ROWS,
    min_std: float | None = None,
    feature_names: Sequence[str] | None = None,
    max_clipped_share: float = MAX_CLIPPED_SHARE,
) -> FeatureStatistics:
    """Feature mean and std from the branches' rows through the noised moment release.

    ``branch_rows[i]`` is branch ``i``'s ``(n_i, F)`` training rows (for
    customer-level DP: at most ``rows_per_unit`` per customer, the rows it trains
    on; ``customers[i]``, one id per row, lets that be checked). Each branch's rows
    go to :meth:`MomentRelease.branch_vector` and nowhere else; each branch adds
    its noise share for ``honest = branches - assumed_colluders(branches,
    corrupt_fraction)`` (at least 1) contributors, and the ``(branches, 2F + 1)``
    noised vectors are summed by ``backend`` (``plain`` and ``ckks`` fall back to
    ``secagg+``, see the module docstring). ``noise_multiplier = 0`` is a release
    without DP (for runs without DP): nothing to charge, epsilon ``inf``.

    ``replay_seed`` (simulations only) makes the noise and the rounding replayable.
    ``max_branch_rows`` is the public cap that sizes the aggregation ring; a branch
    above it is refused. ``min_std``: see :class:`MomentRelease`.

    Before any branch contributes, each counts the share of each column the bound would
    clip (:func:`clipped_shares`); a column above ``max_clipped_share`` on any branch
    raises :class:`ColumnsBeyondBound` naming every such column (``feature_names``, or
    ``column i``), and nothing is summed. Below it the shares are recorded in
    ``details["clipped"]`` (the columns with any value clipped).
    """
    if isinstance(branch_rows, np.ndarray) or not isinstance(branch_rows, Sequence):
        raise ConfigurationError("branch_rows must be a list with one row array per branch")
    branches = len(branch_rows)
    if branches < 2:
        raise ConfigurationError(
            f"secure aggregation needs at least 2 branches, got {branches}; with one branch "
            "use public statistics"
        )
    if (
        isinstance(max_branch_rows, bool)
        or not isinstance(max_branch_rows, numbers.Integral)
        or max_branch_rows < 1
    ):
        raise ConfigurationError(f"max_branch_rows must be a positive int, not {max_branch_rows!r}")
    if customers is not None and len(customers) != branches:
        raise ConfigurationError(
            f"customers must give one id array (or None) per branch ({branches}), "
            f"got {len(customers)}"
        )
    features: int | None = None
    for i, rows in enumerate(branch_rows):
        shape = getattr(rows, "shape", None)  # shape only: the rows go to branch_vector alone
        if not isinstance(rows, np.ndarray) or shape is None or len(shape) != 2:
            raise ConfigurationError(f"branch {i}'s rows must be a 2-D numpy array")
        if features is None:
            features = int(shape[1])
        elif shape[1] != features:
            raise ConfigurationError(f"branch {i} has {shape[1]} features, branch 0 has {features}")
        if shape[0] > max_branch_rows:
            raise ConfigurationError(
                f"branch {i} has {shape[0]} rows, above max_branch_rows = {max_branch_rows} "
                "(the public cap that sizes the aggregation ring): raise it"
            )
    if not 0 <= corrupt_fraction < 1:
        raise ConfigurationError(f"corrupt_fraction must lie in [0, 1), not {corrupt_fraction!r}")
    name = _backend_name(backend)
    release = MomentRelease(
        bound=bound,
        features=features or 0,
        noise_multiplier=noise_multiplier,
        rows_per_unit=rows_per_unit,
        min_std=min_std,
    )
    if not 0 < max_clipped_share <= 1:
        raise ConfigurationError(f"max_clipped_share must lie in (0, 1], not {max_clipped_share!r}")
    names = (
        [f"column {j}" for j in range(release.features)]
        if feature_names is None
        else [str(n) for n in feature_names]
    )
    if len(names) != release.features:
        raise ConfigurationError(
            f"feature_names must name the {release.features} features, got {len(names)}"
        )
    # each branch, on its own side, before it contributes: the share each column loses
    shares = np.array([clipped_shares(rows, release.bound) for rows in branch_rows])
    over = shares > max_clipped_share
    if over.any():
        raise ColumnsBeyondBound(
            {
                names[j]: (float(shares[:, j].max()), int(over[:, j].sum()))
                for j in np.flatnonzero(over.any(axis=0))
            },
            branches,
            release.bound,
            max_clipped_share,
            named=feature_names is not None,
        )
    sizes = np.array([rows.shape[0] for rows in branch_rows], dtype=np.float64)
    pooled = (sizes @ shares) / max(sizes.sum(), 1.0)  # the simulator's view of them all
    clipped = {
        names[j]: {
            "share": float(pooled[j]),
            "largest_branch_share": float(shares[:, j].max()),
        }
        for j in np.flatnonzero(shares.max(axis=0) > 0)
    }
    colluders = assumed_colluders(branches, float(corrupt_fraction))
    honest = max(1, branches - colluders)

    vectors = np.empty((branches, release.dimension), dtype=np.float64)
    for i, rows in enumerate(branch_rows):  # each branch, on its own side
        ids = None if customers is None else customers[i]
        vectors[i] = release.branch_vector(rows, ids)
        vectors[i] += release.noise_share(honest, _noise_stream(replay_seed, i))

    b = release.bound
    share_std = max(release.stddevs) / math.sqrt(honest)
    value_bound = max_branch_rows * max(1.0, b, b * b) + _NOISE_TAIL * share_std
    rounding = None if replay_seed is None else KeyedStream(derive(_ROUNDING_LABEL, replay_seed))
    chosen = get_backend(
        name, value_bound=value_bound, bits=_BITS, corrupt_fraction=float(corrupt_fraction)
    )
    total, report = run_local_round(chosen, vectors, rounding=rounding)
    if len(report.contributed) != branches:
        raise ConfigurationError(
            f"{len(report.dropped)} branches dropped from the statistics round: their noise "
            "shares are missing, so the total is not released"
        )
    mean, std = release.finish(total)
    s1, s2, s0 = release.stddevs
    details = {
        "backend": name,
        "requested_backend": str(backend),
        "branches": branches,
        "assumed_colluders": colluders,
        "honest_noise_contributors": honest,
        "noise_stddevs": {"sum": s1, "sum_of_squares": s2, "count": s0},
        "min_std": release.min_std,
        "aggregation_error_bound": float(report.error_bound),
        "value_bound": value_bound,
        "bits": _BITS,
        "replayable": replay_seed is not None,
        "max_clipped_share": max_clipped_share,
        "clipped": clipped,
    }
    return FeatureStatistics(
        mean=mean,
        std=std,
        source=SECURE,
        noise_multiplier=release.noise_multiplier,
        effective_noise_multiplier=release.effective_noise_multiplier,
        bound=release.bound,
        rows_per_unit=release.rows_per_unit,
        details=details,
    )


# --- public: statistics of data that belongs to no branch --------------------------


def public_feature_statistics(
    x_public: np.ndarray, *, origin: str = "public reference sample"
) -> FeatureStatistics:
    """Mean and std (population, like ``numpy.std``) of public or prior data.

    ``x_public`` must belong to no branch (e.g. a reference sample of the synthetic
    generator drawn for this purpose): then nothing is charged. A constant column
    gets std 1.0 (it is centred, not scaled), as in ``tabular.standardize``.
    """
    x = np.asarray(x_public, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ConfigurationError(f"x_public must be a non-empty (n, F) array, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigurationError("x_public contains NaN or infinite values")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return FeatureStatistics(
        mean=mean, std=std, source=PUBLIC, details={"origin": origin, "rows": int(x.shape[0])}
    )


def _number(path: str, name: str, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigurationError(f"{path}: feature {name!r}: {key} must be a number, not {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ConfigurationError(f"{path}: feature {name!r}: {key} must be finite, not {value!r}")
    return out


def load_public_statistics(
    path: str | Path, feature_names: Sequence[str], *, shown: str | None = None
) -> FeatureStatistics:
    """Public or prior statistics from a JSON file ``{"features": {name: {"mean", "std"}}}``.

    Every name in ``feature_names`` must be there, in any order (extra features in
    the file are ignored), with a finite mean and a finite std > 0. ``shown``: the file
    as the messages name it [``path``]; why: ``secagg simulate`` reads the absolute path
    a relative ``data.stats_path`` was made into, and names it as the user wrote it (the
    statistics' recorded origin stays the absolute path).
    """
    p = Path(path)
    where = str(p) if shown is None else shown
    names = list(feature_names)
    if not names or len(set(names)) != len(names):
        raise ConfigurationError(f"{where}: give a non-empty list of distinct feature names")
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"no feature statistics file at {where}") from None
    except (OSError, UnicodeDecodeError) as exc:
        # an OSError's own words end in the path it opened (the absolute one)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigurationError(f"{where}: cannot read the feature statistics: {detail}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{where} is not valid JSON: {exc}") from None
    table = data.get("features") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ConfigurationError(
            f'{where} must hold {{"features": {{name: {{"mean": m, "std": s}}}}}}'
        )
    mean, std = [], []
    for name in names:
        if name not in table:
            raise ConfigurationError(f"{where} has no statistics for feature {name!r}")
        entry = table[name]
        if not isinstance(entry, dict) or "mean" not in entry or "std" not in entry:
            raise ConfigurationError(f'{where}: feature {name!r} needs {{"mean": m, "std": s}}')
        m = _number(where, name, "mean", entry["mean"])
        s = _number(where, name, "std", entry["std"])
        if s <= 0:
            raise ConfigurationError(f"{where}: feature {name!r}: std must be positive, not {s!r}")
        mean.append(m)
        std.append(s)
    return FeatureStatistics(
        mean=np.array(mean), std=np.array(std), source=PUBLIC, details={"origin": str(p)}
    )
