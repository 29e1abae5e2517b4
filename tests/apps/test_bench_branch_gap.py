"""The branch-gap probe: its personal copies keep a customer's sensitivity at the clip, its
command line refuses the reported seeds, and its quick run reports every variant."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _benchmarks import benchmark_script

#: the world this file's ``--quick`` runs probe: the quick world (30 000 training rows,
#: 3 000 test rows a branch, 2 rounds) shrunk to a third; the same eight branches, seed
#: and variants, so the same rules hold (a variant moves the federated score only, one
#: branch is above the large-branch share), at a third of the training and scoring
SMALLER_QUICK_WORLD = {"train_rows": 10_000, "test_rows_per_branch": 1_000}


@pytest.fixture(scope="module")
def probe():
    """The probe script, its ``--quick`` runs on :data:`SMALLER_QUICK_WORLD`."""
    with benchmark_script("bench_branch_gap") as module, pytest.MonkeyPatch.context() as patch:
        for name in ("probe_seed", "probe_mix"):
            original = getattr(module, name)

            def smaller(seed, variant, base, original=original):
                return original(seed, variant, {**base, **SMALLER_QUICK_WORLD})

            patch.setattr(module, name, smaller)
        yield module


@pytest.mark.parametrize("personal", [0, 33, 2081])
def test_one_customer_moves_shared_and_personal_sums_together_by_at_most_the_clip(probe, personal):
    """The personal copy must not add sensitivity: a customer's shared and personal
    gradients are clipped as one vector, so what one customer changes in the released
    sum (both parts) stays within the clip the noise is sized for."""
    import torch

    from secagg.apps.models.nets import build_model, fraud_loss

    model = build_model("mlp", 30, seed=3)
    generator = torch.Generator().manual_seed(5)
    inputs = torch.randn(6, 30, generator=generator) * 4.0
    targets = torch.tensor([[1.0], [0.0], [1.0], [0.0], [1.0], [1.0]])
    clip = 0.7
    for unit in range(inputs.shape[0]):
        shared, own = probe._unit_gradient_sums(
            model,
            inputs[unit : unit + 1],
            targets[unit : unit + 1],
            fraud_loss(10.0),
            clip,
            personal,
        )
        together = shared if own is None else np.concatenate([shared, own])
        assert np.linalg.norm(together) <= clip * (1 + 1e-9)
        assert np.linalg.norm(together) > 0.5 * clip  # these gradients are large: clipped
        if own is not None:  # the personal copy is the shared gradient's last entries
            np.testing.assert_allclose(own, shared[-personal:])


def test_the_command_refuses_the_reported_seeds_and_unknown_variants(probe, capsys):
    with pytest.raises(SystemExit, match="reported seeds"):
        probe.main(["--seeds", "1000,3"])
    with pytest.raises(SystemExit, match="--variants"):
        probe.main(["--seeds", "1000", "--variants", "personal-head:0"])
    with pytest.raises(SystemExit, match="--seeds"):
        probe.main(["--seeds", "ten"])


def test_quick_run_reports_each_variant_against_the_real_baselines(probe, tmp_path, capsys):
    out = tmp_path / "gap.json"
    probe.main(["--quick", "--out", str(out)])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    assert [r["variant"] for r in result["rows"]] == ["baseline", "personal-head:1"]
    baseline, personal = result["rows"]
    # the same world and baselines for both variants; only the federation differs
    assert baseline["centralized_auprc"] == personal["centralized_auprc"]
    assert baseline["local_only_auprc"] == personal["local_only_auprc"]
    assert baseline["federated_auprc"] != personal["federated_auprc"]
    for row in result["rows"]:
        assert row["noise_multiplier"] > 1.0
        assert 0.0 < row["federated_auprc"] <= 1.0
        assert 0 < row["branches_at_least_local"] + len(row["branches_behind"]) <= 8
        assert row["largest_branch"] in {f"branch-{i:02d}" for i in range(1, 9)}
    assert set(result["summary"]) == {"baseline", "personal-head:1"}


def test_without_a_personal_copy_the_probe_sums_what_the_mechanism_sums(probe):
    import torch

    from secagg.apps.models.nets import build_model, fraud_loss
    from secagg.dp.gradient_sum import clipped_gradient_sum

    model = build_model("mlp", 12, seed=1)
    generator = torch.Generator().manual_seed(2)
    inputs = torch.randn(40, 12, generator=generator) * 3.0
    targets = (torch.rand(40, 1, generator=generator) < 0.3).float()
    shared, own = probe._unit_gradient_sums(model, inputs, targets, fraud_loss(10.0), 0.5, 0)
    assert own is None
    expected = clipped_gradient_sum(model, inputs, targets, fraud_loss(10.0), clip=0.5)
    np.testing.assert_allclose(shared, expected, rtol=1e-12, atol=1e-15)


def test_own_noise_offsets_score_alike_where_a_rule_says_they_must(probe, tmp_path, capsys):
    """The own-noise rows: the unshrunk offset at weight 1 is the row's own verdict; a
    branch below the large-branch share keeps no offset, so every weight scores it the
    same; the shrunk head reports a James-Stein weight in [0, 1] for every branch."""
    out = tmp_path / "own.json"
    variants = ["personal-own-raw:1", "personal-own-large:1", "personal-own-head:1"]
    probe.main(["--quick", "--variants", *variants, "--out", str(out)])
    capsys.readouterr()
    raw, large, head = json.loads(out.read_text())["rows"]
    assert list(raw["offset_weight_sweep"]) == [f"{w:g}" for w in probe.OFFSET_WEIGHTS]
    at_one = raw["offset_weight_sweep"]["1"]["branches"]
    for name, (difference, low, high, _) in raw["branches"].items():
        assert at_one[name][:3] == [difference, low, high]
    sweep = large["offset_weight_sweep"]
    shares = large["branch_shares"]
    mean_share = 1 / len(shares)
    small = [name for name, share in shares.items() if share < probe.LARGE_BRANCH * mean_share]
    assert small and len(small) < len(shares)  # the quick world has one branch that large
    for name in small:
        assert len({sweep[w]["branches"][name][3] for w in sweep}) == 1
    assert set(head["offset_weights"]) == set(shares)
    assert all(0.0 <= w <= 1.0 for w in head["offset_weights"].values())


def test_own_noise_variants_parse_and_refuse_a_zero_gain(probe):
    own = probe.parse_variant("personal-own-large:2")
    assert (own.personal, own.gain, own.own_noise, own.large_only) == ("all", 2.0, True, True)
    assert probe.parse_variant("personal-own-head:1").shrink
    assert not probe.parse_variant("personal-own-raw:1").shrink
    with pytest.raises(SystemExit, match="--variants"):
        probe.parse_variant("personal-own:0")
