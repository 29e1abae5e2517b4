"""A ``[server] state`` that is a symbolic link to nothing (its disk not mounted, its
folder moved) is said so, not "names no file ... pass --init".

Why: a federation kept on another disk and reached through links (``state.sqlite ->
/mnt/fed/state.sqlite``, and its ledger and key likewise) started with the disk not
mounted found none of its files, and the start said "[server] state = S names no file,
and no ledger or ledger key is beside it: pass --init to start a new federation there":
taken at its word, ``--init`` began a second federation under the empty mount point, a
ledger signed from round 1 with its epsilon restarted, while the real one waited on the
disk. The links are there: the line names the link and where it leads, exit 2 (the path
is the mistake, as for a state folder that does not exist), and nothing is made.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from secagg.errors import ConfigurationError
from secagg.runtime.config import FederationConfig
from secagg.runtime.launch import StateMissing, open_server_state


def _config(folder: Path, state: Path) -> FederationConfig:
    path = folder / "federation.toml"
    path.write_text(
        '[federation]\nname = "env"\nclients = ["b-0", "b-1", "b-2"]\ndimension = 4\n'
        'rounds = 1\n[sampling]\nkind = "poisson"\nrate = 1.0\n'
        '[backend]\nname = "secagg+"\nvalue_bound = 1.0\n'
        f'[server]\nstate = "{state}"\nbind = "127.0.0.1:1"\n'
        f'certificates = "{folder / "certs"}"\n'
    )
    return FederationConfig.load(path)


@pytest.mark.parametrize("linked", [("",), ("", ".ledger", ".ledger-key")], ids=["state", "all"])
def test_a_state_linked_to_an_unmounted_disk_is_said_so(
    tmp_path: Path, linked: tuple[str, ...]
) -> None:
    (tmp_path / "srv").mkdir()
    disk = tmp_path / "mnt" / "fed"  # the disk's folder, not mounted: absent
    state = tmp_path / "srv" / "state.sqlite"
    for suffix in linked:
        os.symlink(f"{disk}/state.sqlite{suffix}", f"{state}{suffix}")
    before = sorted(os.listdir(tmp_path / "srv"))
    with pytest.raises(StateMissing) as caught:
        open_server_state(_config(tmp_path, state), init=False)
    assert isinstance(caught.value, ConfigurationError)  # exit 2: the path is the mistake
    line = str(caught.value)
    assert "names no file" not in line, line
    assert f"{state} is a symbolic link to {disk}/state.sqlite" in line, line
    assert "does not exist" in line and "not mounted" in line, line
    assert sorted(os.listdir(tmp_path / "srv")) == before  # no lock file, nothing made
    assert not (tmp_path / "mnt").exists()


def test_a_link_to_a_state_that_is_there_starts_as_the_file_would(tmp_path: Path) -> None:
    """The honest layout: the links lead to the files; without --init a state that was
    never written is refused as before (not as a broken link)."""
    (tmp_path / "srv").mkdir()
    (tmp_path / "disk").mkdir()
    (tmp_path / "disk" / "state.sqlite").write_bytes(b"")
    state = tmp_path / "srv" / "state.sqlite"
    os.symlink(tmp_path / "disk" / "state.sqlite", state)
    with pytest.raises(StateMissing) as caught:
        open_server_state(_config(tmp_path, state), init=False)
    assert "symbolic link" not in str(caught.value), caught.value


def test_init_through_a_link_to_a_file_not_yet_made_starts_there(tmp_path: Path) -> None:
    """A link made before the first start (``ln -s /mnt/fed/state.sqlite``) is the
    layout ``--init`` is for: the state is made at the link's target."""
    (tmp_path / "srv").mkdir()
    (tmp_path / "disk").mkdir()
    state = tmp_path / "srv" / "state.sqlite"
    os.symlink(tmp_path / "disk" / "state.sqlite", state)
    opened = open_server_state(_config(tmp_path, state), init=True)
    try:
        assert (tmp_path / "disk" / "state.sqlite").stat().st_size > 0
    finally:
        opened.close()
