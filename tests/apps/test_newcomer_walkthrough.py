"""A newcomer's walk-through of README.md and docs/deployment.md, command by command.

Why: a bank's ML engineer followed the deployment guide literally, on one machine, with
real processes (2026-12-05). Each test here is a place where the guide or a command's
line sent them the wrong way: the hook's ``PYTHONPATH`` example named the folder that
holds the file, which does not import ``mybank.fraud``; the key holder's steps never
issued its certificate; the example branch policy refused every round of the example
federation; a server started from another folder said "CA certificate not found at
certs/ca.pem" without naming the key or the folder a relative path is read from; and
``certs issue``/``certs revoke`` said less (or other) than the guide.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from secagg.aggregation.policy import BranchPolicy
from secagg.apps.cli import main
from secagg.apps.simulation.config import SimulationConfig
from secagg.runtime.config import FederationConfig

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "deployment.md"


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _one_line(result: Result, status: int) -> str:
    """The single line a mistake prints, after checking the exit status."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def _toml_blocks(page: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)


def _guide_federation() -> FederationConfig:
    (block,) = [b for b in _toml_blocks(GUIDE) if b.startswith("[federation]")]
    return FederationConfig.from_dict(tomllib.loads(block))


# --- the server's certificate folder -----------------------------------------------------


def test_a_server_started_from_another_folder_names_the_key_and_the_folder_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``secagg server --config fed/federation.toml`` from the folder above: the relative
    ``certificates = "certs"`` is read from the current folder, not the config's. The
    line said only ``CA certificate not found at certs/ca.pem``."""
    (tmp_path / "fed").mkdir()
    (tmp_path / "fed" / "federation.toml").write_text(
        "[federation]\n"
        'name = "pilot"\n'
        'clients = ["branch-001", "branch-002", "branch-003"]\n'
        "dimension = 10\n"
        "rounds = 1\n"
        "[server]\n"
        'state = "state/fraud.sqlite"\n'
        'bind = "127.0.0.1:0"\n'
        'certificates = "certs"\n'
    )
    monkeypatch.chdir(tmp_path)
    line = _one_line(_run("server", "--config", "fed/federation.toml"), 2)
    assert line.startswith("secagg server: --config fed/federation.toml: "), line
    assert "[server] certificates = 'certs'" in line, line
    assert f"read from the current folder {tmp_path}" in line, line
    assert "CA certificate not found at certs/ca.pem" in line, line
    assert not (tmp_path / "state").exists()  # refused before any state is made


def test_an_absolute_certificate_folder_is_named_without_the_current_folder(
    tmp_path: Path,
) -> None:
    """The same key for an absolute path, without the hint about relative ones."""
    config = tmp_path / "federation.toml"
    config.write_text(
        "[federation]\n"
        'name = "pilot"\n'
        'clients = ["branch-001", "branch-002"]\n'
        "dimension = 10\n"
        "rounds = 1\n"
        "[server]\n"
        f'state = "{tmp_path / "server.sqlite"}"\n'
        'bind = "127.0.0.1:0"\n'
        f'certificates = "{tmp_path / "nowhere"}"\n'
    )
    line = _one_line(_run("server", "--config", str(config)), 2)
    assert f"[server] certificates = '{tmp_path / 'nowhere'}': " in line, line
    assert "current folder" not in line, line


def test_the_guide_says_where_relative_server_paths_are_read_from() -> None:
    text = " ".join(GUIDE.read_text().split())
    assert "a relative one from the folder `secagg server` is started in" in text


# --- the hook's module ---------------------------------------------------------------------


def test_a_missing_dotted_hook_names_the_file_under_the_pythonpath_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``PYTHONPATH=/opt/mybank ... --hook mybank.fraud:make_hook`` with
    ``/opt/mybank/fraud.py`` does not import: the folder is the one above the package.
    "Put the folder that holds it on PYTHONPATH" read as /opt/mybank; the line now
    names the file Python looks for under FOLDER."""
    common = ("client", "--server", "127.0.0.1:9", "--name", "b1", "--certs", str(tmp_path))
    package = tmp_path / "opt" / "nc_walk_bank"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fraud.py").write_text("def make_hook(name, dimension):\n    return None\n")
    monkeypatch.syspath_prepend(str(package))  # the newcomer's PYTHONPATH=/opt/mybank
    line = _one_line(_run(*common, "--dimension", "4", "--hook", "nc_walk_bank.fraud:make"), 2)
    assert "'--hook'" in line and "no module 'nc_walk_bank.fraud'" in line, line
    assert "put on PYTHONPATH the FOLDER of FOLDER/nc_walk_bank/fraud.py" in line, line
    # the folder above the package, as the line says, gets past the flag
    monkeypatch.syspath_prepend(str(tmp_path / "opt"))
    found = _run(*common, "--dimension", "4", "--hook", "nc_walk_bank.fraud:make")
    assert "'--hook'" not in found.output, found.output


def test_the_guides_pythonpath_example_names_the_folder_above_the_package() -> None:
    """The example's file, under the PYTHONPATH it gives, is the module it names."""
    text = " ".join(GUIDE.read_text().split())
    examples = re.findall(r"PYTHONPATH=(/\S+) secagg client \.\.\. --hook ([\w.]+):", text)
    assert examples, "the guide's PYTHONPATH example changed"
    for folder, module in examples:
        where = f"{folder}/{module.replace('.', '/')}.py"
        assert f"`{where}`" in text, (folder, module, "the file is never named")


# --- the key holder ------------------------------------------------------------------------


def test_the_guides_key_holder_steps_issue_its_certificate() -> None:
    """The key holder dials with a certificate of its own name from the federation's
    CA; the guide's steps went from ``keyholder-init`` to ``keyholder --name compliance``
    and the newcomer's key holder stopped at ``certificate of client 'compliance' not
    found``."""
    (block,) = [
        b.split("```", 1)[0]
        for b in GUIDE.read_text().split("```bash\n")[1:]
        if "secagg keyholder-init" in b.split("```", 1)[0]
    ]
    (name,) = re.findall(r"secagg keyholder --server \S+ --name (\S+)", block)
    issue = block.index(f"secagg certs issue {name} ")
    assert issue < block.index("secagg keyholder --server"), block


def test_certs_issue_and_revoke_say_what_the_guide_says(tmp_path: Path) -> None:
    """``certs issue compliance`` (the key holder) said "keep it on the branch"; ``certs
    revoke`` said only "from its next connection", where the server also ends the open
    session within 30 s (the guide, measured 1.3 s in the walk-through)."""
    folder = str(tmp_path / "certs")
    assert _run("certs", "init", "--dir", folder).exit_code == 0
    issued = _run("certs", "issue", "compliance", "--dir", folder)
    assert issued.exit_code == 0, issued.output
    first = issued.output.splitlines()[0]
    assert "branch" not in first and "compliance's machine only" in first, first
    revoked = _run("certs", "revoke", "compliance", "--dir", folder)
    assert revoked.exit_code == 0, revoked.output
    assert "ends its open session within 30 s" in revoked.output, revoked.output
    assert "ends its open session within 30 s" in " ".join(GUIDE.read_text().split())


# --- the branch's policy -------------------------------------------------------------------


def test_the_guides_branch_policy_admits_the_guides_federation() -> None:
    """A newcomer copying both examples ran three branches that each refused round 1
    (exit 3, ``branch.min_noise_multiplier``): the example policy asked for a distributed
    noise share, which the example federation (central DP) never carries. The example
    policy, with a real fingerprint for its placeholder, now admits the example rounds."""
    (block,) = [b for b in _toml_blocks(GUIDE) if b.startswith("[branch]")]
    table = tomllib.loads(block.replace("3f9a...e1", "ab" * 32))["branch"]
    policy = BranchPolicy.from_dict(table)
    config = _guide_federation()
    assert config.dp is not None and config.dp.mechanism == "central"
    policy.check_backend(config.backend.name)
    policy.check_size(len(config.clients), config.dimension)
    policy.check_clip(config.dp.clip)
    policy.check_noise_share(noise_multiplier=None, clip=config.dp.clip, expected_clients=None)
    policy.check_federation(config.name)


# --- the README's commands table -----------------------------------------------------------


def test_the_readme_says_which_exit_status_wins_as_verify_does() -> None:
    """The README gave verify "exit 3 if its noise was seeded, 4 (UNVERIFIED) without
    --pubkey"; the newcomer's simulation ledger verified without --pubkey exited 3, as
    ``audit verify --help`` says (a failure outranks NOT PRIVATE, which outranks
    UNVERIFIED): the README now says so too."""
    help_text = " ".join(_run("audit", "verify", "--help").output.split())
    assert "A failure (1) outranks NOT PRIVATE (3), which outranks UNVERIFIED (4)" in help_text
    readme = " ".join((ROOT / "README.md").read_text().split())
    (row,) = [line for line in readme.split("| `secagg ") if line.startswith("audit verify")]
    assert "1, a failure, outranks 3, which outranks 4" in row, row


def test_the_readme_says_the_key_holder_needs_a_certificate() -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    (row,) = [line for line in readme.split("| `secagg ") if line.startswith("keyholder --")]
    assert "`secagg certs issue N`" in row, row


def test_help_texts_carry_no_review_history_or_markup() -> None:
    """``secagg params --help`` read "(``RoundConfig.create``, ...) (network audit,
    2026-12-03)": the code's history in the user's help. Every command's help is now
    free of dated review notes and RST double backquotes (a date the help quotes as a
    ledger format, "before 2026-12-03", is the format's name, not a note)."""
    commands = [
        ("params",),
        ("round",),
        ("server",),
        ("client",),
        ("keyholder",),
        ("keyholder-init",),
        ("certs", "init"),
        ("certs", "issue"),
        ("certs", "revoke"),
        ("privacy", "epsilon"),
        ("privacy", "noise"),
        ("audit", "verify"),
        ("audit", "report"),
        ("audit", "empirical"),
    ]
    for argv in commands:
        result = _run(*argv, "--help")
        assert result.exit_code == 0, (argv, result.output)
        assert "``" not in result.output, (argv, result.output)
        assert not re.search(r"(audit|review), 20\d\d-\d\d-\d\d", result.output), argv


def test_the_guide_says_a_wrong_dimension_is_found_at_the_first_round() -> None:
    """The newcomer's branch with ``--dimension 1000`` against a federation of 12345
    connected and waited ten minutes (the server's wait for the others) before the first
    round told it; the guide said only "2 for a mistake in its own options". The line
    it quotes is the runtime's."""
    text = " ".join(GUIDE.read_text().split())
    assert "is stopped at the first round it is sampled for" in text
    (quoted,) = re.findall(r"`secagg client: branch-001: (this branch's model has [^`]*)`", text)
    source = (ROOT / "secagg" / "runtime" / "client.py").read_text()
    assert "parameters but the federation's model has" in source
    assert quoted.startswith("this branch's model has 1000 parameters but the federation's")


def test_the_bank_fraud_example_ships_the_federation_its_hook_runs_in() -> None:
    """examples/bank_fraud §7 described the hook's federation config in a sentence; the
    newcomer had to write one. ``federation.toml`` beside the hook is that config (record
    level, dpsgd, three parameters: the hook's logistic model over two columns), and the
    commands in its header name only the hook and files of the folder."""
    folder = ROOT / "examples" / "bank_fraud"
    config = FederationConfig.load(folder / "federation.toml")
    assert config.dp is not None and (config.dp.unit, config.dp.mechanism) == ("record", "dpsgd")
    assert config.dimension == 3 and len(config.clients) == 3
    header = (folder / "federation.toml").read_text().split("[federation]")[0]
    assert "--hook dpsgd_hook:make_hook" in header and "--dimension 3" in header
    assert "[`federation.toml`](federation.toml)" in (folder / "README.md").read_text()


def test_the_bank_fraud_pilot_waits_for_branches_started_one_by_one() -> None:
    """The pilot's header starts the server, then each branch "likewise", one at a time.
    In the walk-through (2026-12-06) each branch took about 40 s to connect (torch's import on
    a loaded machine); the server's ``--wait`` (60 s by default) waits for every
    branch, then runs with any quorum: a branch started after it found the ten short
    rounds already run by the other two. The header's server line now waits long
    enough for three branches started by hand, and says what happens after the wait
    (the default and the quorum it names are the code's)."""
    from secagg.runtime.server import QUORUM

    header = (ROOT / "examples" / "bank_fraud" / "federation.toml").read_text()
    header = header.split("[federation]")[0]
    (server_line,) = [line for line in header.splitlines() if "secagg server " in line]
    found = re.search(r"--wait (\d+)", server_line)
    assert found, server_line
    default = next(p.default for p in main.commands["server"].params if p.name == "wait")
    branches = len(_bank_fraud_config().clients)  # a minute each, started one by one
    assert int(found.group(1)) > default and int(found.group(1)) >= 60 * branches, server_line
    text = " ".join(line.lstrip("# ") for line in header.splitlines())
    assert f"({default:g} s without it)" in text, text
    assert f"runs with any {QUORUM} connected" in text, text


def _bank_fraud_config() -> FederationConfig:
    return FederationConfig.load(ROOT / "examples" / "bank_fraud" / "federation.toml")


# --- the README's and the examples' k and t -------------------------------------------------


def _params(clients: int, dropout: float, corrupt: float) -> tuple[int, int]:
    """(k, t) as ``secagg params`` prints them for a cohort."""
    result = _run(
        "params", "--clients", str(clients), "--dropout", str(dropout), "--corrupt", str(corrupt)
    )
    found = re.match(r"k=(\d+) neighbours, t=(\d+) ", _one_line(result, 0))
    assert found, result.output
    return int(found.group(1)), int(found.group(2))


def test_the_readmes_k_and_t_are_what_secagg_params_prints() -> None:
    """The README's first claim a newcomer can check, "k = 36, t = 19 for 1000 clients,
    10% dropout, 5% corrupt", is what ``secagg params`` prints for that cohort (the
    walk-through of 2026-12-07 ran it); and the example configs' "k = 36 neighbours, not
    144 at 25 % / 25 %" are the command's at the example's own dropout and corrupt
    fraction and at the simulator's defaults."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    claims = re.findall(
        r"k = (\d+), t = (\d+) for (\d+) clients, (\d+)% dropout, (\d+)% corrupt", readme
    )
    assert claims, "the README's k and t sentence changed"
    for k, t, clients, dropout, corrupt in claims:
        shown = (int(k), int(t))
        assert _params(int(clients), int(dropout) / 100, int(corrupt) / 100) == shown, claims
    checked = []
    for example in sorted((ROOT / "examples").glob("*.toml")):
        text = " ".join(example.read_text().split())
        for k, other in re.findall(r"k = (\d+) neighbours, not (\d+) at 25 % / 25 %", text):
            config = SimulationConfig.load(example)
            shown = _params(config.branches, config.tolerated_dropout, config.corrupt_fraction)
            assert shown[0] == int(k), (example.name, shown)
            # 25 % / 25 %: the simulator's defaults, which the example's keys replace
            default = SimulationConfig()
            assert (default.tolerated_dropout, default.corrupt_fraction) == (0.25, 0.25)
            assert _params(config.branches, 0.25, 0.25)[0] == int(other), example.name
            checked.append(example.name)
    assert "many_participants.toml" in checked, checked
