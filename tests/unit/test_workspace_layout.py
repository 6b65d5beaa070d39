"""A workspace records its layout version; another version is refused and never touched."""

from __future__ import annotations

import json

import pytest

from data_contracts.workspace import LAYOUT_VERSION, Workspace, WorkspaceError


def test_a_new_workspace_records_its_layout(tmp_path) -> None:
    workspace = Workspace.at(tmp_path / "ws").ensure()
    assert json.loads(workspace.layout_file.read_text()) == {"layout_version": LAYOUT_VERSION}
    assert workspace.layout_version() == LAYOUT_VERSION


def test_a_workspace_from_before_the_record_is_this_layout(tmp_path) -> None:
    (tmp_path / "ws" / "data").mkdir(parents=True)
    workspace = Workspace.at(tmp_path / "ws")
    assert workspace.layout_version() == LAYOUT_VERSION
    workspace.ensure()
    assert workspace.layout_file.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [('{"layout_version": 99}', "layout version 99"), ("{oops", "unreadable layout record")],
)
def test_another_layout_is_refused_untouched(tmp_path, text: str, message: str) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    (home / "workspace.json").write_text(text)
    with pytest.raises(WorkspaceError, match=message):
        Workspace.at(home).ensure()
    assert [p.name for p in home.iterdir()] == ["workspace.json"], "nothing was created"


def test_an_unwritable_workspace_is_one_clear_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WorkspaceError, match="cannot be written"):
        Workspace.at(blocker / "ws").ensure()
