"""Customer-level DP-SGD: one Poisson-sampled item per customer, clipped as a whole.

What must hold for the customer-level epsilon to be true: the grouping keeps at
most ``max_rows`` rows per customer, chosen per customer; Opacus's per-sample
gradient of an item is the gradient of that customer's loss alone; one
customer moves a step by at most ``lr * C / B`` however many rows they have;
the accountant counts customers. Data come from generators seeded by the OS
CSPRNG; the seed is in failure messages so a failing run can be replayed.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from opacus.accountants import PRVAccountant, RDPAccountant  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from secagg.dp.dpsgd import (  # noqa: E402
    CustomerDataset,
    CustomerLoss,
    DPSGDTrainer,
    default_delta,
    flat_parameters,
    group_by_customer,
    load_flat_parameters,
)
from secagg.dp.user_level import keep_customer_rows  # noqa: E402
from secagg.errors import ConfigurationError  # noqa: E402

F = 5


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "big")


def _customers(
    seed: int, num_customers: int, max_rows_each: int, *, min_rows: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``num_customers`` customers (min_rows..max_rows_each rows each), shuffled,
    labelled by a hidden linear rule, with string ids."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(min_rows, max_rows_each + 1, size=num_customers)
    ids = np.repeat(np.array([f"cust-{i}" for i in range(num_customers)]), counts)
    perm = rng.permutation(ids.size)
    ids = ids[perm]
    x = rng.normal(size=(ids.size, F)).astype(np.float32)
    w = rng.normal(size=F)
    y = (x @ w > 0).astype(np.float32)
    return x, y, ids


def _zero_linear() -> nn.Module:
    model = nn.Linear(F, 1)
    load_flat_parameters(model, np.zeros(F + 1, dtype=np.float32))
    return model


def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(F, 8), nn.ReLU(), nn.Linear(8, 1))


# --- grouping -------------------------------------------------------------------------


def test_grouping_pads_masks_and_keeps_input_order():
    x = np.arange(6 * 2, dtype=np.float32).reshape(6, 2) + 1  # row r is (2r+1, 2r+2)
    y = np.array([1, 0, 0, 1, 1, 0], dtype=np.float32)
    ids = np.array(["a", "b", "a", "c", "a", "b"])
    ds = group_by_customer(x, y, ids, max_rows=4, seed=0)
    assert isinstance(ds, CustomerDataset)
    assert (len(ds), ds.num_customers, ds.max_rows, ds.num_features) == (3, 3, 4, 2)
    assert (ds.num_rows_kept, ds.num_rows_dropped, ds.num_truncated_customers) == (6, 0, 0)

    rows, target = ds[0]  # "a": rows 0, 2, 4 in input order, then one padding row
    assert rows.dtype == torch.float32 and target.dtype == torch.float32
    assert rows.shape == (4, 2) and target.shape == (4, 2)
    np.testing.assert_array_equal(rows.numpy(), np.vstack([x[[0, 2, 4]], np.zeros((1, 2))]))
    np.testing.assert_array_equal(target.numpy(), [[1, 1], [0, 1], [1, 1], [0, 0]])
    rows, target = ds[1]  # "b": rows 1, 5
    np.testing.assert_array_equal(rows.numpy()[:2], x[[1, 5]])
    np.testing.assert_array_equal(rows.numpy()[2:], 0)
    np.testing.assert_array_equal(target.numpy(), [[0, 1], [0, 1], [0, 0], [0, 0]])
    rows, target = ds[2]  # "c": row 3
    np.testing.assert_array_equal(target.numpy()[:, 1], [1, 0, 0, 0])
    np.testing.assert_array_equal(rows.numpy()[0], x[3])

    # Integer ids group the same way.
    by_int = group_by_customer(x, y, np.array([7, 8, 7, 9, 7, 8]), max_rows=4, seed=0)
    for i in range(3):
        assert all(torch.equal(a, b) for a, b in zip(by_int[i], ds[i], strict=True))


def test_truncation_is_bounded_per_customer_deterministic_per_seed_and_local():
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=60, max_rows_each=20)
    x[:, 0] = np.arange(x.shape[0])  # feature 0 names the row, to recover which were kept
    max_rows = 5

    def kept(ds: CustomerDataset, order: list[str]) -> dict[str, set[int]]:
        out = {}
        for i, cid in enumerate(order):
            rows, target = ds[i]
            valid = target[:, 1] > 0
            assert int(valid.sum()) <= max_rows
            assert torch.all(rows[~valid] == 0) and torch.all(target[~valid] == 0)
            out[cid] = {int(r) for r in rows[valid, 0]}
        return out

    order = list(dict.fromkeys(ids.tolist()))  # first appearance
    counts = {cid: int(np.sum(ids == cid)) for cid in order}
    ds = group_by_customer(x, y, ids, max_rows=max_rows, seed=b"s1")
    subsets = kept(ds, order)
    for cid in order:
        own = set(np.flatnonzero(ids == cid).tolist())
        assert subsets[cid] <= own, f"seed={seed}"
        assert len(subsets[cid]) == min(counts[cid], max_rows), f"seed={seed}"
        for r in subsets[cid]:  # each kept row carries its own label
            i = order.index(cid)
            slot = int(np.flatnonzero(ds[i][0][:, 0].numpy() == r)[0])
            assert float(ds[i][1][slot, 0]) == y[r]
    heavy = [cid for cid in order if counts[cid] > max_rows]
    assert ds.num_truncated_customers == len(heavy) > 10, f"seed={seed}"
    assert ds.num_rows_dropped == sum(counts[c] - max_rows for c in heavy)
    assert ds.num_rows_kept + ds.num_rows_dropped == x.shape[0]

    # The same seed gives the same subsets; another seed other subsets.
    again = group_by_customer(x, y, ids, max_rows=max_rows, seed=b"s1")
    assert kept(again, order) == subsets
    other = kept(group_by_customer(x, y, ids, max_rows=max_rows, seed=b"s2"), order)
    assert any(other[c] != subsets[c] for c in heavy), f"seed={seed}"

    # Local: adding a whole customer (first, so every position shifts) leaves every
    # other customer's kept rows unchanged, so neighbouring datasets differ in one item.
    extra = 30
    x2 = np.vstack([np.zeros((extra, F), dtype=np.float32), x])
    x2[:, 0] = np.arange(-extra, x.shape[0])
    y2 = np.concatenate([np.ones(extra, dtype=np.float32), y])
    ids2 = np.concatenate([np.array(["newcomer"] * extra), ids])
    ds2 = group_by_customer(x2, y2, ids2, max_rows=max_rows, seed=b"s1")
    subsets2 = kept(ds2, ["newcomer", *order])
    assert len(subsets2.pop("newcomer")) == max_rows
    assert subsets2 == subsets, f"seed={seed}"


def test_capping_first_keeps_the_rows_grouping_would_keep():
    """keep_customer_rows is group_by_customer's choice alone (the simulator caps a branch's
    rows with it, then groups): grouping the capped rows drops nothing more and gives
    every customer the same rows as grouping everything."""
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=40, max_rows_each=15)
    x[:, 0] = np.arange(x.shape[0])
    keep = keep_customer_rows(ids, max_rows=4, seed=b"cap")
    assert keep.dtype == bool and keep.shape == ids.shape
    counts = {cid: int(np.sum(ids[keep] == cid)) for cid in set(ids.tolist())}
    assert counts == {cid: min(4, int(np.sum(ids == cid))) for cid in counts}, f"seed={seed}"

    def rows_by_customer(ds: CustomerDataset, order: list[str]) -> dict[str, set[int]]:
        return {
            cid: {int(r) for r in ds[i][0][ds[i][1][:, 1] > 0, 0]} for i, cid in enumerate(order)
        }

    order = list(dict.fromkeys(ids.tolist()))
    whole = group_by_customer(x, y, ids, max_rows=4, seed=b"cap")
    capped = group_by_customer(x[keep], y[keep], ids[keep], max_rows=4, seed=b"cap")
    assert capped.num_rows_dropped == 0
    capped_order = list(dict.fromkeys(ids[keep].tolist()))  # a first row may be dropped
    assert rows_by_customer(capped, capped_order) == rows_by_customer(whole, order), f"seed={seed}"
    assert set(np.flatnonzero(keep).tolist()) == set().union(
        *rows_by_customer(whole, order).values()
    )


@pytest.mark.parametrize(
    ("customer_ids", "max_rows", "match"),
    [
        (np.array(["a", None], dtype=object), 2, "missing"),
        (np.array([["a"], ["b"]]), 2, "one id per row"),
        (np.array(["a", "b"]), 0, "max_rows"),
    ],
)
def test_capping_refuses_bad_input(customer_ids, max_rows, match):
    with pytest.raises(ConfigurationError, match=match):
        keep_customer_rows(customer_ids, max_rows=max_rows, seed=0)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"max_rows": 0}, "max_rows"),
        ({"max_rows": -3}, "max_rows"),
        ({"max_rows": 2.5}, "max_rows"),
        ({"max_rows": True}, "max_rows"),
        ({"seed": -1}, "seed"),
        ({"seed": "abc"}, "seed"),
        ({"seed": True}, "seed"),
        ({"y": np.zeros(3, dtype=np.float32)}, "one entry per row"),
        ({"customer_ids": np.array(["a", "b"])}, "one entry per row"),
        ({"x": np.zeros((0, F), dtype=np.float32)}, "empty"),
        ({"x": np.zeros(4, dtype=np.float32)}, "features"),
        ({"x": np.full((4, F), np.nan, dtype=np.float32)}, "NaN"),
        ({"y": np.array([0, 1, np.inf, 0])}, "NaN"),
        ({"customer_ids": np.array(["a", None, "b", "a"], dtype=object)}, "missing"),
        ({"customer_ids": np.array([1.0, np.nan, 2.0, 1.0])}, "missing"),
        ({"customer_ids": np.array(["a", "", "b", "a"])}, "missing"),
    ],
)
def test_grouping_refuses_bad_input(change, match):
    args = {
        "x": np.zeros((4, F), dtype=np.float32),
        "y": np.array([0, 1, 1, 0], dtype=np.float32),
        "customer_ids": np.array(["a", "b", "b", "c"]),
        "max_rows": 2,
        "seed": 0,
    }
    args.update(change)
    with pytest.raises(ConfigurationError, match=match):
        group_by_customer(**args)  # type: ignore[arg-type]


# --- the masked loss ------------------------------------------------------------------


def test_customer_loss_is_the_weighted_bce_mean_over_each_customers_real_rows():
    """Same semantics as the apps' fraud_loss (BCEWithLogits, pos_weight, mean) per customer."""
    gen = torch.Generator().manual_seed(_fresh_seed())
    logits = torch.randn(3, 4, 1, generator=gen)
    labels = (torch.rand(3, 4, generator=gen) > 0.5).float()
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.float32)
    target = torch.stack([labels * mask, mask], dim=-1)
    loss = CustomerLoss(positive_weight=10.0)
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([10.0]), reduction="mean")
    expected = [bce(logits[i][mask[i] > 0], labels[i][mask[i] > 0, None]) for i in range(3)]
    torch.testing.assert_close(loss.per_customer(logits, target), torch.stack(expected))
    torch.testing.assert_close(loss(logits, target), torch.stack(expected).mean())
    assert loss.reduction == "mean"

    # Padding never enters, whatever the model outputs there (even inf); [B, T] logits work.
    poisoned = logits.squeeze(-1).clone()
    poisoned[0, 3] = math.inf
    poisoned[1, 1:] = -1e30
    torch.testing.assert_close(loss(poisoned, target), torch.stack(expected).mean())

    # Any elementwise row loss.
    mse = CustomerLoss(row_loss=nn.MSELoss(reduction="none"))
    manual = torch.stack(
        [((logits[i, :, 0] - labels[i]) ** 2)[mask[i] > 0].mean() for i in range(3)]
    ).mean()
    torch.testing.assert_close(mse(logits, target), manual)


def test_customer_loss_on_an_empty_batch_is_zero_with_finite_gradients():
    model = nn.Linear(F, 1)
    out = model(torch.zeros(0, 4, F))
    loss = CustomerLoss(positive_weight=3.0)(out, torch.zeros(0, 4, 2))
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is not None and torch.all(torch.isfinite(p.grad)) for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"positive_weight": 0.0}, "positive_weight"),
        ({"positive_weight": math.nan}, "positive_weight"),
        ({"positive_weight": True}, "positive_weight"),
        ({"row_loss": nn.MSELoss()}, "reduction='none'"),
        ({"row_loss": nn.MSELoss(reduction="none"), "positive_weight": 2.0}, "not both"),
    ],
)
def test_customer_loss_refuses_bad_parameters(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        CustomerLoss(**kwargs)


def test_customer_loss_refuses_wrong_shapes():
    loss = CustomerLoss()
    target = torch.zeros(2, 3, 2)
    with pytest.raises(ConfigurationError, match="one logit per row"):
        loss(torch.zeros(2, 3, 2), target)  # two outputs per row
    with pytest.raises(ConfigurationError, match="one logit per row"):
        loss(torch.zeros(2, 1), target)  # a record-level model output
    with pytest.raises(ConfigurationError, match="CustomerDataset"):
        loss(torch.zeros(2, 1), torch.zeros(2, 1))  # a record-level target


# --- per-customer gradients and clipping ----------------------------------------------


@pytest.mark.filterwarnings("ignore:Full backward hook:UserWarning")  # data need no grad
def test_opacus_per_sample_gradient_is_the_gradient_of_that_customers_loss_alone():
    """Opacus's grad_sample of item i == autograd of customer i's own BCE mean (an MLP:
    the row dimension is summed inside both Linear layers, through a ReLU)."""
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=12, max_rows_each=6)
    ds = group_by_customer(x, y, ids, max_rows=6, seed=seed)  # no truncation
    assert ds.num_rows_dropped == 0
    reference = _mlp()
    trainer = DPSGDTrainer(
        copy.deepcopy(reference),
        ds,
        batch_size=4,
        learning_rate=0.1,
        max_grad_norm=1.0,
        noise_multiplier=1.0,
        accountant="rdp",
        loss_fn=CustomerLoss(positive_weight=3.0),
    )
    rows = torch.stack([ds[i][0] for i in range(len(ds))])
    target = torch.stack([ds[i][1] for i in range(len(ds))])
    trainer._loss_fn(trainer._gsm(rows), target).backward()
    params = [p for p in trainer._gsm.parameters() if p.requires_grad]
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]), reduction="mean")
    for i, cid in enumerate(dict.fromkeys(ids.tolist())):
        own = ids == cid  # this customer's raw rows, independent of the grouping
        loss_i = bce(reference(torch.from_numpy(x[own])), torch.from_numpy(y[own])[:, None])
        manual = torch.autograd.grad(loss_i, list(reference.parameters()))
        for p, g in zip(params, manual, strict=True):
            torch.testing.assert_close(p.grad_sample[i], g, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Optimal order:UserWarning")  # RDP at z=1e-3: huge eps
def test_one_step_is_the_mean_of_per_customer_gradients_clipped_to_c():
    """q=1, ~no noise: the update is -lr/B * sum_i clip_C(grad of customer i's loss)."""
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=16, max_rows_each=8)
    x *= 5.0  # spread the gradient norms
    ds = group_by_customer(x, y, ids, max_rows=8, seed=seed)
    reference = _mlp()
    bce = nn.BCEWithLogitsLoss(reduction="mean")
    grads = []
    for cid in dict.fromkeys(ids.tolist()):
        own = ids == cid
        loss_i = bce(reference(torch.from_numpy(x[own])), torch.from_numpy(y[own])[:, None])
        g = torch.autograd.grad(loss_i, list(reference.parameters()))
        grads.append(torch.cat([t.reshape(-1) for t in g]))
    norms = torch.stack([g.norm() for g in grads])
    clip = float(norms.median())  # about half the customers get clipped
    lr, z, batch = 0.5, 1e-3, len(ds)
    expected = -lr / batch * sum(g * min(1.0, clip / (float(g.norm()) + 1e-6)) for g in grads)

    trainer = DPSGDTrainer(
        copy.deepcopy(reference),
        ds,
        batch_size=batch,
        learning_rate=lr,
        max_grad_norm=clip,
        noise_multiplier=z,
        accountant="rdp",
    )
    start = trainer.flat_parameters()
    assert trainer.train(1).steps == 1 and trainer.sample_rate == 1.0
    update = trainer.model_update(start)
    noise_scale = lr * z * clip / batch  # per-coordinate noise std
    np.testing.assert_allclose(
        update, expected.numpy(), rtol=1e-4, atol=8 * noise_scale, err_msg=f"seed={seed}"
    )
    unclipped = -lr / batch * sum(grads)
    assert np.linalg.norm(update - unclipped.numpy()) > 100 * noise_scale  # clipping acted


@pytest.mark.filterwarnings("ignore:Optimal order:UserWarning")  # RDP at z=1e-3: huge eps
def test_a_customers_row_count_does_not_change_sensitivity():
    """Two datasets differ in one whole customer: 50 neutral rows vs 50 extreme rows.

    Customer level (one item each, q=1, one step, the same noise): the update moves
    by one clipped gradient, lr·C/B, although the customer has 50 rows. Record
    level on the same rows: the 50 rows move it by ~50 records' worth (group privacy).
    """
    seed = _fresh_seed()
    rng = np.random.default_rng(seed)
    others, per_other, heavy_rows = 19, 3, 50
    x_rest = rng.normal(size=(others * per_other, F)).astype(np.float32)
    y_rest = rng.integers(0, 2, size=others * per_other).astype(np.float32)
    ids_rest = np.repeat(np.arange(1, others + 1), per_other)
    # neutral: zero features, balanced labels -> zero gradient at the zero model
    x_neutral = np.zeros((heavy_rows, F), dtype=np.float32)
    y_neutral = np.tile([0.0, 1.0], heavy_rows // 2).astype(np.float32)
    # extreme: 50 identical far-out rows all pushing one way
    direction = rng.normal(size=F)
    x_extreme = np.tile(100 * direction / np.linalg.norm(direction), (heavy_rows, 1))
    y_extreme = np.ones(heavy_rows, dtype=np.float32)
    lr, clip, z = 1.0, 0.1, 1e-3

    def update(x_heavy: np.ndarray, y_heavy: np.ndarray, customer_level: bool) -> np.ndarray:
        x = np.vstack([x_heavy.astype(np.float32), x_rest])
        y = np.concatenate([y_heavy, y_rest])
        ids = np.concatenate([np.zeros(heavy_rows, dtype=np.int64), ids_rest])
        if customer_level:
            data = group_by_customer(x, y, ids, max_rows=64, seed=0)
            loss: nn.Module = CustomerLoss()
        else:
            data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y)[:, None])
            loss = nn.BCEWithLogitsLoss()
        trainer = DPSGDTrainer(
            _zero_linear(),
            data,
            batch_size=len(data),  # q = 1: everyone in the one step
            learning_rate=lr,
            max_grad_norm=clip,
            noise_multiplier=z,
            accountant="rdp",
            loss_fn=loss,
            replay_seed=b"the same noise in both runs",
        )
        start = trainer.flat_parameters()
        trainer.train(1)
        assert trainer.steps == 1
        return trainer.model_update(start)

    customers = others + 1
    moved = np.linalg.norm(update(x_extreme, y_extreme, True) - update(x_neutral, y_neutral, True))
    bound = lr * clip / customers
    assert 0.99 * bound <= moved <= bound * (1 + 1e-4), f"seed={seed} moved={moved}"

    records = others * per_other + heavy_rows
    record_moved = np.linalg.norm(
        update(x_extreme, y_extreme, False) - update(x_neutral, y_neutral, False)
    )
    one_record = lr * clip / records
    assert record_moved >= 45 * one_record, f"seed={seed}"  # ~50 records' worth
    assert record_moved > 4 * moved, f"seed={seed}"


# --- accounting and reports -----------------------------------------------------------


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_counts_customers_not_rows(accountant):
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=100, max_rows_each=6, min_rows=2)
    ds = group_by_customer(x, y, ids, max_rows=4, seed=seed)
    assert ds.num_customers == 100 and x.shape[0] >= 200
    trainer = DPSGDTrainer(
        nn.Linear(F, 1),
        ds,
        batch_size=10,
        learning_rate=0.5,
        max_grad_norm=1.0,
        noise_multiplier=1.1,
        accountant=accountant,
    )
    assert trainer.sample_rate == 1 / math.ceil(100 / 10) == 0.1
    assert trainer.sample_rate != 1 / math.ceil(x.shape[0] / 10)
    assert (trainer.num_records, trainer.privacy_unit) == (100, "customer")
    assert trainer.delta == default_delta(100)
    report = trainer.train(1)
    assert (report.privacy_unit, report.steps, report.sample_rate) == ("customer", 10, 0.1)
    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    for _ in range(10):  # replayed step by step, as an auditor would
        acc.step(noise_multiplier=1.1, sample_rate=0.1)
    assert report.epsilon == pytest.approx(acc.get_epsilon(delta=trainer.delta), rel=1e-9)
    assert acc.history == [(1.1, 0.1, 10)] and trainer.history == ((1.1, 0.1, 10),)

    privacy = trainer.privacy_report()
    assert privacy["unit"] == "customer" and privacy["mechanism"] == "dpsgd"
    assert (privacy["max_rows"], privacy["num_customers"]) == (4, 100)
    assert privacy["history"] == [[1.1, 0.1, 10]]
    assert privacy["epsilon"] == pytest.approx(report.epsilon, rel=1e-12)


def test_delta_is_checked_against_customers_and_record_reports_say_record():
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=50, max_rows_each=6, min_rows=3)
    ds = group_by_customer(x, y, ids, max_rows=6, seed=seed)
    common = {"batch_size": 5, "learning_rate": 0.1, "max_grad_norm": 1.0}
    # 1/rows <= 0.015 < 1/50: fine for 50 customers (a record-level check would refuse it)
    assert 0.015 >= 1 / x.shape[0]
    trainer = DPSGDTrainer(nn.Linear(F, 1), ds, noise_multiplier=1.0, delta=0.015, **common)
    assert trainer.delta == 0.015
    with pytest.raises(ConfigurationError, match="50 customers"):
        DPSGDTrainer(nn.Linear(F, 1), ds, noise_multiplier=1.0, delta=0.02, **common)

    rows = TensorDataset(torch.from_numpy(x), torch.from_numpy(y)[:, None])
    record = DPSGDTrainer(
        nn.Linear(F, 1), rows, noise_multiplier=1.0, loss_fn=nn.BCEWithLogitsLoss(), **common
    )
    assert record.privacy_unit == "record" and record.num_records == x.shape[0]
    report = record.privacy_report()
    assert report["unit"] == "record"
    assert "max_rows" not in report and "num_customers" not in report


def test_loss_and_dataset_must_agree_on_the_unit():
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=20, max_rows_each=3)
    ds = group_by_customer(x, y, ids, max_rows=3, seed=seed)
    common = {"batch_size": 5, "learning_rate": 0.1, "max_grad_norm": 1.0, "noise_multiplier": 1}
    with pytest.raises(ConfigurationError, match="needs a CustomerLoss"):
        DPSGDTrainer(nn.Linear(F, 1), ds, loss_fn=nn.BCEWithLogitsLoss(), **common)
    rows = TensorDataset(torch.from_numpy(x), torch.from_numpy(y)[:, None])
    with pytest.raises(ConfigurationError, match="group_by_customer"):
        DPSGDTrainer(nn.Linear(F, 1), rows, loss_fn=CustomerLoss(), **common)
    # A DataLoader over a CustomerDataset is customer-level too (its sampler is replaced).
    loader = DataLoader(ds, batch_size=5, shuffle=True)
    via_loader = DPSGDTrainer(
        nn.Linear(F, 1), loader, learning_rate=0.1, max_grad_norm=1.0, noise_multiplier=1.0
    )
    assert via_loader.privacy_unit == "customer" and via_loader.sample_rate == 0.25


# --- training -------------------------------------------------------------------------


class _SizeSpy(CustomerLoss):
    """CustomerLoss that records each batch's number of customers."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.sizes.append(target.shape[0])
        return super().forward(logits, target)


def test_empty_poisson_batches_still_step_without_nan():
    """q = 1/40 over 40 steps: P(no empty batch) is about 1e-8."""
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=40, max_rows_each=4)
    ds = group_by_customer(x, y, ids, max_rows=4, seed=seed)
    spy = _SizeSpy()
    trainer = DPSGDTrainer(
        nn.Linear(F, 1),
        ds,
        batch_size=1,
        learning_rate=0.1,
        max_grad_norm=1.0,
        noise_multiplier=1.0,
        accountant="rdp",
        loss_fn=spy,
    )
    start = trainer.flat_parameters()
    report = trainer.train(1)
    assert report.steps == 40 == len(spy.sizes)
    assert 0 in spy.sizes, f"seed={seed} sizes={spy.sizes}"
    update = trainer.model_update(start)  # refuses a non-finite update
    assert np.all(np.isfinite(update)) and np.any(update != 0)
    assert math.isfinite(report.mean_loss)


def test_learns_a_separable_task_through_padding_and_truncation():
    seed = _fresh_seed()
    x, y, ids = _customers(seed, num_customers=300, max_rows_each=8)
    ds = group_by_customer(x, y, ids, max_rows=4, seed=seed)
    assert ds.num_rows_dropped > 0 and ds.num_rows_kept < 4 * ds.num_customers  # both at work
    trainer = DPSGDTrainer(
        _zero_linear(),
        ds,
        batch_size=30,
        learning_rate=2.0,
        max_grad_norm=1.0,
        noise_multiplier=0.8,
        accountant="rdp",
        loss_fn=CustomerLoss(positive_weight=1.0),
    )
    first = trainer.train(1)
    later = trainer.train(4)
    with torch.no_grad():
        logits = trainer.model(torch.from_numpy(x))[:, 0]
    accuracy = float(((logits > 0).float() == torch.from_numpy(y)).float().mean())
    assert later.mean_loss < first.mean_loss < math.log(2) + 0.05, f"seed={seed}"
    assert accuracy >= 0.85, f"seed={seed} accuracy={accuracy}"
    assert later.privacy_unit == "customer" and later.steps == 50
    assert np.all(np.isfinite(flat_parameters(trainer.model)))
