"""Every federation the repository ships (examples/**/*.toml) plans rounds that the
branch policies an operator would give it take.

Second review of the merged policy changes (2026-12-07): the branch's new refusals (a
clip that is not positive, a CKKS round of one, a noise share with counts below 1 or a
z that is not finite, ``expected_clients = 1`` beside a pinned key holder, fractions
closer to 1 than a float, integers past the floats) must refuse hostile rounds only.
Each example is read by its own loader (``FederationConfig.load`` for a server's file,
``SimulationConfig.load`` and the simulator's ``federation_config`` for a simulation's),
planned as the server plans a round for cohorts from 2 to the whole population, and
checked by ``secagg client``'s default policy, the same pinned to the population, and
the policy the simulator gives its branches; for a masking round the setup's threshold
too. A refusal here would be an honest federation stopped by its own branches. A cohort
too small for the population's colluders (2 or 3 of 1 000 at 5 %: 50 may fill it) is
refused by the honest server's plan instead (review of colluders, 2026-12-07).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from secagg.aggregation.masking import client_policy
from secagg.aggregation.policy import BranchPolicy
from secagg.apps.simulation.config import SimulationConfig
from secagg.apps.simulation.federation_plan import federation_config
from secagg.crypto.signing import SigningKey
from secagg.errors import ConfigurationError, PolicyRefused
from secagg.protocol.messages import RoundSetup
from secagg.runtime.config import FederationConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(REPO.glob("examples/**/*.toml"))
#: the simulated model's parameters (the MLP of docs/results.md): what the noise is sized for
SIMULATED_DIMENSION = 2081


def _federation(path: Path, tmp_path: Path) -> FederationConfig:
    """The server's federation of ``path``, read by the loader its command uses."""
    text = path.read_text()
    if "[simulation]" in text:
        return federation_config(SimulationConfig.load(path), SIMULATED_DIMENSION, tmp_path / "s")
    return FederationConfig.load(path)


def _policies(config: FederationConfig) -> dict[str, BranchPolicy]:
    """``secagg client``'s defaults, the same with the population pinned, and (with the
    federation's own assumptions) the policy the simulator gives its branches, with a
    noise floor at the federation's own z where the branches add the noise."""
    backend, dp = config.backend, config.dp
    own = {
        "corrupt_fraction": backend.corrupt_fraction,
        "dropout_fraction": backend.dropout_fraction,
        "federation": config.name,
    }
    population = len(config.clients)
    policies = {
        "defaults": BranchPolicy(),
        "pinned": BranchPolicy(expected_clients=population),
        "simulated": BranchPolicy(**own),  # type: ignore[arg-type]
    }
    if dp is not None and dp.mechanism == "distributed" and dp.unit == "client":
        policies["noise floor"] = BranchPolicy(
            min_noise_multiplier=dp.noise_multiplier,
            expected_clients=population,
            max_clip=dp.clip,
            **own,  # type: ignore[arg-type]
        )
    return policies


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.relative_to(REPO).as_posix() for p in EXAMPLES])
def test_every_example_round_is_taken_by_an_operator_s_branch_policy(
    path: Path, tmp_path: Path
) -> None:
    config = _federation(path, tmp_path)
    population = len(config.clients)
    expected = round(config.expected_clients)
    cohorts = sorted({2, 3, expected - expected // 10, expected, population} - {0, 1})
    backend = config.aggregation_backend()
    policies = _policies(config)
    refused = []
    unplanned: list[int] = []
    for n in cohorts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the plan's cost notes: the server's to give
            mechanism = config.mechanism()
            options = mechanism.round_options(n)
        if backend.needs_identities:
            options["identities"] = (SigningKey.generate().verify_key.raw,) * n
        try:
            spec = backend.plan(n, mechanism.round_dimension(config.dimension), **options)
        except ConfigurationError as unplannable:
            # a round too small for its population's colluders (all of them may be in
            # it): the honest server refuses to plan it, no branch is asked
            assert n < population and "drawn from a population of" in str(unplannable)
            unplanned.append(n)
            continue
        for name, policy in policies.items():
            try:
                policy.check_federation(config.name)
                policy.check_clip(mechanism.clip)  # the clip its round start carries
                spec.check_policy(policy)
                round_config = getattr(spec, "round_config", None)
                if round_config is not None:
                    planned = round_config()
                    client_policy(policy).check(  # type: ignore[union-attr]
                        RoundSetup(
                            round_id=bytes(16),
                            recipient=0,
                            num_clients=n,
                            vector_length=planned.vector_length,
                            bits=planned.bits,
                            threshold=planned.threshold,
                            graph=planned.graph,
                            degree=planned.degree,
                            graph_seed=bytes(32),
                            active=planned.active,
                            population=planned.population or 0,
                        )
                    )
            except (ConfigurationError, PolicyRefused) as exc:  # each refusal, together
                refused.append(f"{n} clients, {name}: {type(exc).__name__}: {exc}")
    assert not refused, refused
    assert population in cohorts and population not in unplanned  # the whole federation runs
