"""A branch keeps its last started round across restarts (``state``; ``--state``).

Review finding (2026-12-05): the high-water mark that makes a branch refuse a round
number it already started lived in memory only, so a hostile server could replay an
already-run round (same number, same spec: the same protocol round id) to a restarted
branch, which trained, noised and signed it a second time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from _endpoints import SentMessages

from secagg.aggregation import encode_spec
from secagg.aggregation.masking import MaskingBackend
from secagg.runtime.branch_state import BranchStateError, RoundMark
from secagg.runtime.client import FederationClient
from secagg.runtime.wire import Leave, Relay, RoundStart, encode_message

D = 8
NAME = "branch-00"
SPEC = encode_spec(MaskingBackend(graph="complete", value_bound=4.0).plan(3, D))


class _Branch:
    """One branch process: a FederationClient over ``state``, counting its trainings."""

    def __init__(self, state: Path | None) -> None:
        self.trained: list[int] = []
        self.outbox = SentMessages()
        self.client = FederationClient(NAME, self._train, self.outbox, state=state)

    def _train(self, model: np.ndarray) -> np.ndarray:
        self.trained.append(1)
        return np.full_like(model, 0.1)

    def start(self, number: int) -> None:
        self.client.handle(
            encode_message(RoundStart(number, 0, SPEC, np.zeros(D), 1.0, federation="fed"))
        )


def test_a_restarted_branch_refuses_a_replayed_round_number(tmp_path: Path) -> None:
    state = tmp_path / "branch.state"
    first = _Branch(state)
    first.start(5)
    assert first.trained == [1] and first.client.stats.rounds_started == 1
    # the process restarts; the hostile server replays round 5 (and an older one)
    again = _Branch(state)
    for number in (5, 4):
        again.start(number)
    assert again.trained == []  # not trained, noised or signed a second time
    assert again.client.stats.rounds_started == 0
    assert again.client.stats.refused_messages == 2
    assert all(isinstance(m, Leave) for m in again.outbox.sent)  # nothing of an update
    assert json.loads(state.read_text())["last_started"] == 5  # the refusals changed nothing


def test_an_honestly_restarted_branch_takes_the_next_round(tmp_path: Path) -> None:
    state = tmp_path / "branch.state"
    _Branch(state).start(5)
    again = _Branch(state)
    again.start(6)
    assert again.trained == [1] and again.client.stats.rounds_started == 1
    assert again.client._session is not None and again.client._round == 6
    assert RoundMark(state, NAME).last == 6


def test_a_new_state_file_is_created_at_once_and_without_one_nothing_is_kept(
    tmp_path: Path,
) -> None:
    """The default: no state, the mark lives as long as the process (documented in
    docs/deployment.md); with a path, the file exists before any round."""
    state = tmp_path / "branch.state"
    _Branch(state)
    assert json.loads(state.read_text()) == {
        "version": 2,
        "branch": NAME,
        "federation": None,  # the first round taken names it
        "last_started": None,
    }
    assert state.stat().st_mode & 0o777 == 0o600
    _Branch(None).start(5)
    forgetful = _Branch(None)
    forgetful.start(5)
    assert forgetful.trained == [1]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'{"version": 2, "branch": "branch-00", "last_started": 5}',
        b'{"version": 1, "branch": "branch-00", "last_started": 5.0}',
        b'{"version": 1, "branch": "branch-00", "last_started": true}',
        b'{"version": 1, "branch": "branch-00", "last_started": -1}',
        b'{"version": 1, "branch": "branch-00"}',
        b'{"version": 1, "branch": 7, "last_started": 5}',
        b'{"version": 1, "branch": "branch-00", "last_started": 5, "extra": 1}',
        b'{"version": 1, "branch": "branch-01", "last_started": 5}',
        # version 2 records the federation its rounds belong to (tests/runtime/
        # test_federation_state.py has the version-1 files that are read)
        b'{"version": 3, "branch": "branch-00", "federation": "fed", "last_started": 5}',
        b'{"version": true, "branch": "branch-00", "last_started": 5}',
        b'{"version": 2, "branch": "branch-00", "federation": null, "last_started": 5}',
        b'{"version": 2, "branch": "branch-00", "federation": "", "last_started": 5}',
        b'{"version": 2, "branch": "branch-00", "federation": "a\\nb", "last_started": 5}',
        b'{"version": 2, "branch": "branch-00", "federation": 7, "last_started": 5}',
        b'{"version": 2, "branch": "branch-00", "last_started": 5, "federation": "f", "x": 1}',
    ],
)
def test_a_corrupt_or_foreign_state_stops_the_branch_and_is_not_reset(
    tmp_path: Path, content: bytes
) -> None:
    state = tmp_path / "branch.state"
    state.write_bytes(content)
    with pytest.raises(BranchStateError) as caught:
        _Branch(state)
    message = str(caught.value)
    assert "\n" not in message and str(state) in message
    assert "''s" not in message  # "branch 'branch-01''s state" read as a typo
    assert state.read_bytes() == content  # never silently reset


def test_a_state_path_that_is_a_folder_or_cannot_be_created_stops_the_branch(
    tmp_path: Path,
) -> None:
    with pytest.raises(BranchStateError, match="is a folder"):
        _Branch(tmp_path)
    missing = tmp_path / "no-such-folder" / "branch.state"
    with pytest.raises(BranchStateError, match="cannot create"):
        _Branch(missing)
    assert not missing.parent.exists()


def test_a_round_the_state_cannot_record_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk or a lost folder: the branch stops before training, its mark and
    the file unchanged, and says it leaves the round."""
    state = tmp_path / "branch.state"
    branch = _Branch(state)
    branch.start(3)
    before = state.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(BranchStateError, match="cannot record round 4 in this branch's state"):
        branch.start(4)
    assert branch.trained == [1] and branch.client._started == 3
    assert state.read_bytes() == before
    assert [m for m in branch.outbox.sent if isinstance(m, Leave)] == [
        Leave(4, "could not take part (BranchStateError)")
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no leftovers
    assert not [m for m in branch.outbox.sent if isinstance(m, Relay) and m.round == 4]


def test_secagg_client_names_a_corrupt_state_file_in_one_line_before_dialling(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from secagg.apps import devca
    from secagg.apps.cli import main

    ca = tmp_path / "certs"
    devca.init_ca(ca)
    devca.issue_client(ca, NAME)
    state = tmp_path / "branch.state"
    state.write_bytes(b"{half a file")
    result = CliRunner().invoke(
        main,
        [
            "client", "--server", "127.0.0.1:9", "--name", NAME, "--certs", str(ca),
            "--dimension", str(D), "--connect-timeout", "1", "--state", str(state),
        ],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception)
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"secagg client: {NAME}: --state {state}: cannot read"), line
    assert state.read_bytes() == b"{half a file"


def test_an_honest_federation_goes_on_across_a_restart_of_a_branch_with_state(
    tmp_path: Path,
) -> None:
    """Guard: the mark refuses nothing an honest server sends. Round 1 completes, branch 0
    restarts over its state file (round 1 recorded), and round 2 completes with it."""
    import threading

    from secagg.runtime.config import FederationConfig
    from secagg.runtime.server import FederationServer
    from secagg.runtime.store import ServerStore
    from secagg.transport.inprocess import InProcessHub

    names = [f"branch-{i:02d}" for i in range(4)]
    config = FederationConfig.from_dict(
        {
            "federation": {"name": "mark", "clients": names, "dimension": D, "rounds": 2},
            "sampling": {"kind": "poisson", "rate": 1.0},
            "backend": {"name": "secagg+", "value_bound": 4.0},
            "deadlines": {"phase_seconds": 30.0},
        }
    )
    hub = InProcessHub()
    states = {name: tmp_path / f"{name}.state" for name in names}

    def branch(name: str) -> FederationClient:
        return FederationClient(
            name, lambda m: np.full_like(m, 0.25), hub.connect(name), state=states[name]
        )

    failures: list[BaseException] = []

    def serve(client: FederationClient, rounds: int) -> threading.Thread:
        def run() -> None:
            try:
                client.run(idle_timeout=60, rounds=rounds)
            except BaseException as exc:  # the test re-raises it
                failures.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    first = branch(names[0])
    threads = [serve(first, 1)] + [serve(branch(name), 2) for name in names[1:]]
    server = FederationServer(config, hub, ServerStore(tmp_path / "server.sqlite"))
    one = server.run_round()
    assert one.status == "complete", one.reason
    threads[0].join(timeout=60)
    assert not threads[0].is_alive() and not failures
    hub.disconnect(names[0])
    again = branch(names[0])  # a new process over the same state
    assert again._started == 1
    threads[0] = serve(again, 1)
    two = server.run_round()
    assert two.status == "complete", two.reason
    assert two.contributed == tuple(names)
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert not failures, failures
    assert again.stats.rounds_completed == 1 and again.stats.refused_messages == 0
    assert all(RoundMark(states[name], name).last == 2 for name in names)


def test_a_second_process_over_the_same_state_file_stops_rather_than_write_over_it(
    tmp_path: Path,
) -> None:
    """Two processes of one branch each kept their own mark and wrote it: the file
    could end below a round one of them ran, which a restart would then take again."""
    state = tmp_path / "branch.state"
    one, two = _Branch(state), _Branch(state)
    one.start(4)
    with pytest.raises(BranchStateError, match="another process of 'branch-00'"):
        two.start(5)
    assert two.trained == [] and RoundMark(state, NAME).last == 4
    state.unlink()  # the file removed under a running branch: not recreated silently
    with pytest.raises(BranchStateError, match="the state file is gone"):
        one.start(5)


def test_the_deployment_guide_says_what_state_keeps_and_what_happens_without_it() -> None:
    guide = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
    text = " ".join(guide.read_text().split())
    assert "--state /var/lib/secagg/branch-001.state" in text  # in the start command
    assert "**Without `--state`** the branch remembers its rounds only while" in text
    # the file records its federation (no longer a workaround the operator must know)
    assert "The state file records that federation too" in text
    assert "a new federation needs a new state file" in text
    assert "Set the name each branch joins: `--federation" in text
