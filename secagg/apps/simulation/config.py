"""What a simulation is: one validated object, from defaults, a TOML file or CLI flags.

The defaults are the README's main job: 8 bank branches, SecAgg+, record-level
(customer-level) DP-SGD in every branch at epsilon = 3, delta = 1e-5. A file
overrides any of them::

    [simulation]
    branches = 8
    rounds = 10
    seed = 0
    model = "mlp"               # logistic | mlp
    backend = "secagg+"         # plain | secagg | secagg+ | ckks
    dropout = 0.05              # chance a branch vanishes in a round, at a random phase
    tolerated_dropout = 0.25    # SecAgg+ k and t survive this dropout fraction ...
    corrupt_fraction = 0.25     # ... and this fraction of colluding branches
    out = "secagg-runs/demo"     # default: secagg-runs/<time>-<backend>-<unit>

    [privacy]
    unit = "record"             # record (a customer) | client (a whole branch)
    mechanism = "dpsgd"         # record: dpsgd | off;  client: central | distributed | off
    epsilon = 3.0               # a target; or give noise_multiplier instead
    delta = 1e-5
    clip = 1.0                  # per record (DP-SGD) or per branch update (central)

    [training]
    local_epochs = 3
    batch_size = 256
    learning_rate = 2.0
    positive_weight = 10.0
    server_learning_rate = 2.0

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
    # partition = "dirichlet"   # creditcard / csv: iid | dirichlet (labels) | feature
    # alpha = 0.5
    train_rows = 120000
    test_rows_per_branch = 20000

Unknown keys are errors: a typo must not silently run the default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from secagg.aggregation import BACKENDS
from secagg.apps.models import MODELS
from secagg.errors import ConfigurationError

UNITS = ("record", "client")
MECHANISMS = {"record": ("dpsgd", "off"), "client": ("central", "distributed", "off")}
SOURCES = ("synthetic", "creditcard", "csv")
STANDARDIZE = ("auto", "secure", "public", "none")
PARTITIONS = ("iid", "dirichlet", "feature")


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
    ),
    "privacy": ("unit", "mechanism", "epsilon", "noise_multiplier", "delta", "clip", "update_clip"),
    "training": (
        "local_epochs",
        "batch_size",
        "learning_rate",
        "positive_weight",
        "server_learning_rate",
        "server_momentum",
    ),
    "data": (
        "source",
        "path",
        "label",
        "customer_column",
        "max_rows_per_customer",
        "standardize",
        "stats_path",
        "stats_bound",
        "stats_noise_multiplier",
        "partition",
        "alpha",
        "train_rows",
        "test_rows_per_branch",
    ),
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigurationError(message)


@dataclass(frozen=True)
class SimulationConfig:
    """Every knob of ``secagg simulate``; see the module docstring for the file layout."""

    # [simulation]
    branches: int = 8
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
    # [privacy]
    unit: str = "record"
    mechanism: str = "dpsgd"
    epsilon: float | None = 3.0
    noise_multiplier: float | None = None
    delta: float = 1e-5
    clip: float = 1.0
    update_clip: float = 5.0  # record / off: the L2 bound of an update in the ring
    # [training]
    local_epochs: int = 3
    batch_size: int = 256
    learning_rate: float = 2.0
    positive_weight: float = 10.0
    server_learning_rate: float = 2.0
    server_momentum: float = 0.0
    # [data]
    source: str = "synthetic"
    path: str | None = None
    label: str | None = None
    customer_column: str | None = None
    max_rows_per_customer: int = 8
    standardize: str = "auto"
    stats_path: str | None = None
    stats_bound: float = 5.0
    stats_noise_multiplier: float = 10.0
    partition: str = "dirichlet"
    alpha: float = 0.5
    train_rows: int = 120_000
    test_rows_per_branch: int = 20_000

    def __post_init__(self) -> None:
        _require(2 <= self.branches <= 1000, "simulation.branches must lie in [2, 1000]")
        _require(1 <= self.rounds <= 10_000, "simulation.rounds must lie in [1, 10000]")
        _require(self.seed >= 0, "simulation.seed must be non-negative")
        _require(self.model in MODELS, f"simulation.model must be one of {MODELS}")
        _require(self.backend in BACKENDS, f"simulation.backend must be one of {BACKENDS}")
        _require(0 <= self.dropout < 0.5, "simulation.dropout must lie in [0, 0.5)")
        _require(0 <= self.tolerated_dropout < 1, "simulation.tolerated_dropout: [0, 1)")
        _require(0 <= self.corrupt_fraction < 1, "simulation.corrupt_fraction: [0, 1)")
        _require(self.unit in UNITS, f"privacy.unit must be one of {UNITS}")
        allowed = MECHANISMS[self.unit]
        _require(
            self.mechanism in allowed,
            f"privacy.mechanism {self.mechanism!r} does not protect a {self.unit}; "
            f"with unit = {self.unit!r} choose one of {allowed}",
        )
        if self.private:
            _require(
                (self.epsilon is None) != (self.noise_multiplier is None),
                "privacy: give exactly one of epsilon (a target) and noise_multiplier",
            )
            if self.epsilon is not None:
                _require(
                    math.isfinite(self.epsilon) and self.epsilon > 0,
                    "privacy.epsilon must be positive",
                )
            if self.noise_multiplier is not None:
                _require(self.noise_multiplier > 0, "privacy.noise_multiplier must be > 0")
        _require(0 < self.delta < 1, "privacy.delta must lie in (0, 1)")
        _require(math.isfinite(self.clip) and self.clip > 0, "privacy.clip must be positive")
        _require(self.update_clip > 0, "privacy.update_clip must be positive")
        _require(self.local_epochs >= 1, "training.local_epochs must be at least 1")
        _require(self.batch_size >= 1, "training.batch_size must be at least 1")
        _require(self.learning_rate > 0, "training.learning_rate must be positive")
        _require(self.positive_weight > 0, "training.positive_weight must be positive")
        _require(self.server_learning_rate > 0, "training.server_learning_rate must be positive")
        _require(0 <= self.server_momentum < 1, "training.server_momentum must lie in [0, 1)")
        if self.mechanism == "distributed":
            _require(
                self.backend in ("secagg", "secagg+"),
                "privacy.mechanism = 'distributed' needs a masking backend (secagg, secagg+)",
            )
        _require(self.source in SOURCES, f"data.source must be one of {SOURCES}")
        _require(
            (self.path is not None) == (self.source != "synthetic"),
            "data.path names the CSV file, needed for 'creditcard' and 'csv' and only for them",
        )
        _require(
            (self.label is not None) == (self.source == "csv"),
            "data.label names the label column of a generic CSV (source = 'csv') only",
        )
        _require(
            self.customer_column is None or self.source != "synthetic",
            "data.customer_column names a column of a loaded CSV; synthetic rows are "
            "customers already",
        )
        _require(
            1 <= self.max_rows_per_customer <= 1000,
            "data.max_rows_per_customer must lie in [1, 1000]",
        )
        _require(self.standardize in STANDARDIZE, f"data.standardize must be one of {STANDARDIZE}")
        _require(
            math.isfinite(self.stats_bound) and self.stats_bound > 0,
            "data.stats_bound must be positive",
        )
        _require(
            math.isfinite(self.stats_noise_multiplier) and self.stats_noise_multiplier > 0,
            "data.stats_noise_multiplier must be positive (a secure release without noise is "
            "only made when the run has no DP)",
        )
        _require(
            not (self.feature_statistics == "secure" and self.unit == "client" and self.private),
            "data.standardize = 'secure' noises the statistics per record; with unit = "
            "'client' a whole branch must be hidden: use 'public' (data.stats_path, or the "
            "synthetic generator's reference sample) or 'none'",
        )
        _require(
            self.stats_path is None or self.feature_statistics == "public",
            "data.stats_path is read only with data.standardize = 'public'",
        )
        _require(
            not (
                self.feature_statistics == "public"
                and self.source != "synthetic"
                and self.stats_path is None
            ),
            "data.standardize = 'public' with a CSV needs data.stats_path (a JSON file of "
            "public statistics); or use 'secure' or 'none'",
        )
        _require(self.partition in PARTITIONS, f"data.partition must be one of {PARTITIONS}")
        _require(self.alpha > 0, "data.alpha must be positive")
        _require(self.train_rows >= 100 * self.branches, "data.train_rows: 100 per branch at least")
        _require(self.test_rows_per_branch >= 100, "data.test_rows_per_branch must be >= 100")

    @property
    def private(self) -> bool:
        return self.mechanism != "off"

    @property
    def feature_statistics(self) -> str:
        """Where the standardisation comes from: ``secure`` (noised, accounted secure
        aggregation of the branches' sums), ``public`` (public or prior data) or
        ``none``. ``auto`` is secure except under client-level DP, whose unit (a whole
        branch) a per-record noise does not hide."""
        if self.standardize != "auto":
            return self.standardize
        return "public" if self.unit == "client" and self.private else "secure"

    @property
    def protected(self) -> str:
        """What one unit of the guarantee is, in words every output uses: a ``client``
        (a whole branch), a ``customer`` (synthetic rows are customers; loaded data with
        a customer column) or a ``transaction`` (loaded rows without one)."""
        if self.unit == "client":
            return "client"
        if self.source == "synthetic" or self.customer_column is not None:
            return "customer"
        return "transaction"

    @property
    def epochs(self) -> int:
        """Local epochs over the whole run: what a branch's DP-SGD budget covers."""
        return self.rounds * self.local_epochs

    def with_changes(self, **changes: Any) -> SimulationConfig:
        """A copy with some fields changed (validated again); ``None`` values are ignored."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- TOML ------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], base: SimulationConfig | None = None
    ) -> SimulationConfig:
        """From the TOML layout (sections as tables) over ``base`` (default: the defaults)."""
        values: dict[str, Any] = {}
        for section, table in data.items():
            if section not in SECTIONS:
                raise ConfigurationError(
                    f"unknown section [{section}]; known: {', '.join(SECTIONS)}"
                )
            if not isinstance(table, dict):
                raise ConfigurationError(f"[{section}] must be a table")
            for key, value in table.items():
                if key not in SECTIONS[section]:
                    raise ConfigurationError(
                        f"unknown key {section}.{key}; known: {', '.join(SECTIONS[section])}"
                    )
                values[key] = value
        if "epsilon" in values and "noise_multiplier" not in values:
            values["noise_multiplier"] = None  # the file chose a target
        if "noise_multiplier" in values and "epsilon" not in values:
            values["epsilon"] = None
        types = {f.name: f.type for f in fields(cls)}
        for key, value in values.items():
            if value is not None and "int" in str(types[key]) and "float" not in str(types[key]):
                _require(
                    isinstance(value, int) and not isinstance(value, bool),
                    f"{key} must be an integer, not {value!r}",
                )
        try:
            return replace(base or cls(), **values)
        except TypeError as exc:
            raise ConfigurationError(str(exc)) from None

    @classmethod
    def load(cls, path: str | Path, base: SimulationConfig | None = None) -> SimulationConfig:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigurationError(f"no configuration file at {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
        return cls.from_dict(data, base)
