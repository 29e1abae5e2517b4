"""Test helpers that build signed privacy ledgers from hand-written rows.

Shared by the ledger's verify and report tests: each test states the rows that matter
to it (a DP block, an ε, a status) and these helpers fill in the rest and sign them,
so a change to the row format is made in one place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from secagg.ledger import Ledger, LedgerKey
from secagg.ledger.entry import LedgerEntry, sampling_lacks


def ledger_row(
    number: int,
    dp: dict[str, Any] | None,
    epsilon: float | None,
    *,
    federation: str = "test",
    participants: Sequence[str] = ("a", "b", "c"),
    delta: float = 1e-5,
    **changes: Any,
) -> dict:
    """Round ``number``'s ledger row: a completed round in which every participant
    contributed, with ``dp`` as its DP block and ``epsilon`` as its cumulative ε;
    ``changes`` override any other :class:`LedgerEntry` field."""
    values: dict[str, Any] = {
        "federation": federation,
        "round": number,
        "status": "complete",
        "reason": None,
        "started_at": None,
        "finished_at": 1.0e9 + number,
        "backend": {"name": "secagg+"},
        "participants": tuple(participants),
        "contributed": len(participants),
        "dropouts": {},
        "dp": dp,
        "epsilon": epsilon,
        "delta": delta,
        "model_sha256": f"{number:064x}",
        "publish_participants": False,
    }
    # a DP block without the whole sampling record is the layout before it (version 2):
    # built through the entry's named legacy path, which the server never takes
    values["legacy_layout"] = dp is not None and bool(sampling_lacks(dp))
    return LedgerEntry(**(values | changes)).row(lambda name: name)


def write_ledger(
    path: Path,
    rows: Iterable[dict],
    key: LedgerKey | None = None,
    *,
    models_as_written: bool = False,
) -> tuple[Path, LedgerKey]:
    """Append ``rows`` to a new ledger at ``path``, signed with ``key`` (a fresh one if
    none is given), and return the path and the key that verifies it.

    An aborted row (one whose sum was not revealed) is appended with the model digest
    of the row before it, as the server writes it: the model moves only in a charged
    round, and ``verify`` fails an aborted row whose model moved (DP audit t6).
    :func:`ledger_row` gives every row its own digest, so without this every fixture
    with an aborted round would fail for that. ``models_as_written``: append every row
    as given (a test that forges a model moved in an aborted round). The caller's
    dicts are not changed."""
    key = LedgerKey.generate() if key is None else key
    ledger = Ledger(path, key)
    previous: str | None = None
    try:
        for row in rows:
            if not models_as_written and _model_held(row) and previous is not None:
                row = row | {"model_sha256": previous}
            previous = row.get("model_sha256", previous)
            ledger.append(row)
    finally:
        ledger.close()
    return path, key


def _model_held(row: dict) -> bool:
    """The server keeps the model through this round: it released nothing (aborted, its
    sum never revealed to the server)."""
    dp = row.get("dp")
    revealed = isinstance(dp, dict) and dp.get("sum_revealed") is True
    return row.get("status") != "complete" and not revealed


def write_central_config(
    path: Path,
    *,
    name: str,
    clients: Sequence[str],
    rate: float,
    z: float,
    delta: float,
    budget: float | None = None,
    federation_extra: str = "",
) -> Path:
    """A federation TOML with central client-level DP (RDP accountant) at Poisson ``rate``:
    the config an auditor passes to ``secagg audit verify --config``. ``federation_extra``
    is TOML lines added to ``[federation]`` (a seed, a mistake)."""
    listed = ", ".join(f'"{client}"' for client in clients)
    path.write_text(
        f'[federation]\nname = "{name}"\nclients = [{listed}]\ndimension = 4\n'
        + federation_extra
        + f'[sampling]\nkind = "poisson"\nrate = {rate}\n'
        # no colluders assumed: rounds of 2 drawn from the clients plan (since 2026-12-07 a
        # drawn round is sized for the population's colluders, and 5 % of 20 refused it)
        + '[backend]\nname = "secagg+"\nvalue_bound = 1.0\ncorrupt_fraction = 0.0\n'
        + '[dp]\nunit = "client"\nmechanism = "central"\nclip = 1.0\n'
        + f'noise_multiplier = {z}\ndelta = {delta}\naccountant = "rdp"\n'
        + ("" if budget is None else f"epsilon_budget = {budget}\n")
    )
    return path


def central_dp(
    noise_multiplier: float,
    delta: float,
    *,
    accountant: str = "rdp",
    adjacency: str = "add/remove one client",
    **extra: Any,
) -> dict[str, Any]:
    """A client-level central DP block, clip 1, noise std = multiplier (one client's
    sensitivity); the defaults are a row from before per-client charging (RDP,
    add/remove adjacency, no sampling record). ``extra`` adds keys (``sampling``,
    ``composition``)."""
    return {
        "unit": "client",
        "mechanism": "central",
        "clip": 1.0,
        "noise_multiplier": noise_multiplier,
        "noise_std": noise_multiplier,
        "sample_rate": 1.0,
        "accountant": accountant,
        "delta": delta,
        "adjacency": adjacency,
        **extra,
    }


def central_client_dp(noise_multiplier: float, delta: float) -> dict[str, Any]:
    """The DP block of client-level central DP as the server writes it: clip 1, PLD,
    each client charged for its rounds, a Poisson cohort at rate 0.5 of 4 clients."""
    return central_dp(
        noise_multiplier,
        delta,
        accountant="pld",
        adjacency="zero-out one client's update",
        composition="per_client",
        sampling={"kind": "poisson", "rate": 0.5, "population": 4, "seeded": False},
    )


def central_client_rows(
    cohorts: Iterable[Sequence[str]], noise_multiplier: float, delta: float
) -> tuple[list[dict[str, Any]], float]:
    """Complete rows of :func:`central_client_dp`, one per cohort, each claiming the
    per-client accountant's ε after it; and the last row's ε."""
    from secagg.dp.accountants import PerClientAccountant

    accountant = PerClientAccountant(delta, "pld")
    rows = []
    for number, cohort in enumerate(cohorts, start=1):
        accountant.step(noise_multiplier, cohort)
        rows.append(
            ledger_row(
                number,
                central_client_dp(noise_multiplier, delta),
                accountant.epsilon(),
                participants=cohort,
                publish_participants=True,
            )
        )
    return rows, accountant.epsilon()


def adaptive_client_rows(
    cohorts: Iterable[Sequence[str]],
    noise_multiplier: float,
    count_noise_stddev: float,
    delta: float,
    *,
    clip: float = 0.5,
) -> list[dict[str, Any]]:
    """Complete rows of client-level central DP with adaptive clipping, as the server
    writes them: ``dp.noise_multiplier`` the total ``z``, the update noised at the
    ``z_delta`` the count's noise leaves (:func:`~secagg.dp.accounting.adaptive_noise_split`),
    ``noise_std = z_delta x clip``, each client charged the two releases of its rounds."""
    from secagg.dp.accountants import PerClientAccountant
    from secagg.dp.accounting import adaptive_noise_split

    z_delta = adaptive_noise_split(noise_multiplier, count_noise_stddev)
    accountant = PerClientAccountant(delta, "pld")
    rows = []
    for number, cohort in enumerate(cohorts, start=1):
        accountant.charge(PerClientAccountant.precision(z_delta, count_noise_stddev), cohort)
        dp = central_client_dp(noise_multiplier, delta) | {
            "clip": clip,
            "noise_std": z_delta * clip,
            "adaptive_clipping": {
                "update_noise_multiplier": z_delta,
                "count_noise_stddev": count_noise_stddev,
            },
        }
        rows.append(
            ledger_row(
                number,
                dp,
                accountant.epsilon(),
                participants=cohort,
                publish_participants=True,
                delta=delta,
            )
        )
    return rows


def record_dpsgd_row(
    number: int,
    participants: Sequence[str],
    reports: dict[str, dict[str, Any]],
    *,
    delta: float,
    population: int | None = None,
) -> dict[str, Any]:
    """A completed record-level DP-SGD round of ``participants`` (identity hashes) in the
    row format the server writes: the branches account themselves (``reports``, hash ->
    report), the row claims the worst reported ε. ``population`` None leaves the
    sampling record out (a row from before the server wrote one)."""
    dp: dict[str, Any] = {
        "unit": "record",
        "mechanism": "dpsgd",
        "clip": 1.0,
        "sample_rate": 1.0,
        "accountant": "in-clients",
        "delta": delta,
        "client_reports": reports,
    }
    if population is not None:
        dp["sampling"] = {"kind": "poisson", "rate": 1.0, "population": population, "seeded": False}
    return {
        "round": number,
        "status": "complete",
        "participants": {"count": len(participants), "identity_hashes": list(participants)},
        "contributed": len(participants),
        "dropouts": {},
        "backend": {"name": "secagg+"},
        "dp": dp,
        "privacy": {
            "epsilon": max((r["epsilon"] for r in reports.values()), default=None),
            "delta": delta,
        },
        "model_sha256": f"{number:064x}",
        "noise_seeded": False,
        "version": 2,
    }


def branch_report(
    history: Sequence[tuple[float, float, int]],
    epsilon: float,
    *,
    delta: float,
    accountant: str = "rdp",
) -> dict[str, Any]:
    """A branch's record-level report as a row carries it: its DP-SGD history (noise
    multiplier, sample rate, steps), the accountant and δ it used, and its claimed ε."""
    return {
        "accountant": accountant,
        "delta": delta,
        "history": [list(h) for h in history],
        "epsilon": epsilon,
        "unit": "customer",
    }


def verify_rows(path: Path, rows: Iterable[dict], **options: Any) -> Any:
    """Sign ``rows`` into a new ledger at ``path`` and verify it (``options`` go to
    :func:`~secagg.ledger.verify.verify_ledger`); the signatures must hold, so only the
    replay can object."""
    from secagg.ledger.verify import verify_ledger

    written, key = write_ledger(path, rows)
    result = verify_ledger(written, key.public_key, **options)
    assert result.chain.ok
    return result


def distributed_rows(
    mechanism: Any,
    contributed: Sequence[int],
    names: Sequence[str],
    delta: float,
    dimension: int = 16,
) -> list[dict[str, Any]]:
    """Distributed-DP rows as the server writes them: round ``i + 1`` released by
    ``mechanism`` (a :class:`~secagg.dp.distributed.DistributedRelease` planned for
    ``dimension``) with ``contributed[i]`` of the ``names`` contributing, every one
    sampled (rate 1)."""
    import numpy as np

    population = len(names)
    rows = []
    for number, count in enumerate(contributed, start=1):
        mechanism.round_options(population)
        out = mechanism.release(
            np.zeros(dimension), contributors=count, participants=population, noise_added=0.0
        )
        sampling = {"kind": "poisson", "rate": 1.0, "population": population, "seeded": False}
        entry = LedgerEntry(
            federation="audit", round=number, status="complete", reason=None,
            started_at=None, finished_at=1.0e9 + number, backend={"name": "secagg+"},
            participants=tuple(names), contributed=count, dropouts={},
            dp=mechanism.ledger_block(out.store) | {"sampling": sampling},
            epsilon=out.epsilon, delta=delta, model_sha256=f"{number:064x}",
            noise_seeded=False,
        )  # fmt: skip
        rows.append(entry.row(lambda name: name))
    return rows


def as_another_process(ledger: Ledger) -> Ledger:
    """``ledger``, a writer of this process, standing for another process's (a server
    the audit runs beside): this process's readers then read its file as they read one
    another process writes, lock-free with their checks, not through SQLite beside their
    own writer (``secagg.ledger.chain._written_here``). For tests that put the other
    process's writer in this one, to run it inside a read."""
    from secagg.ledger import chain

    chain._OPEN_WRITERS.discard(ledger)
    return ledger


def posix_locks_on(*files: Path) -> list[str]:
    """The POSIX locks the kernel holds on ``files`` (by inode; a missing file is
    skipped), as ``/proc/locks`` (Linux) lists them.

    Why the kernel's table: SQLite's locks are POSIX locks, and any close of a file drops
    every one its process holds on it; only the table shows a writer's locks lost.

    Each line without its first field, the lock's place in the table (``8:``), and in
    sorted order: both move as other processes take and drop locks (the fresh-clone CI of
    7597fe38 compared "8: POSIX ..." with "9: POSIX ..." for the same lock)."""
    inodes = {os.stat(file).st_ino for file in files if os.path.exists(file)}
    held = []
    with open("/proc/locks") as table:
        for line in table:
            fields = line.split()
            where = fields[6] if fields[1] == "->" else fields[5]
            if int(where.rsplit(":", 1)[1]) in inodes:
                held.append(" ".join(fields[1:]))
    return sorted(held)
