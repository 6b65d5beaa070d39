"""The three pages in a real browser: headless Chromium (Debian's package, installed when
missing) opens the decision page, a model card, the indicators page and a validation report,
and must see no console error, no network request and every picture rendered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.integration.audited import AuditedWorkspace
from tests.integration.browser import Chromium, PageReport, ensure_chromium
from tests.integration.workspaces import crisk_home

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    executable, how = ensure_chromium()
    if executable is None:
        pytest.skip(f"headless Chromium is not available here: {how}")
    with Chromium(executable) as browser:
        yield browser


def _pages(audited: AuditedWorkspace, out: Path) -> dict[str, Path]:
    selected = next(iter(audited.explained))
    sample = out / "declarations.csv"
    pd.read_parquet(audited.home / "world" / "declarations.parquet").head(500).to_csv(
        sample, index=False
    )
    commands = {
        "decision": ["audit", "show", selected, "--html", str(out / "decision.html")],
        "model card": ["audit", "model-report", "--no-log", "--out", str(out / "cards")],
        "indicators": ["report", "--out", str(out / "report")],
        "validation": ["validate", "declarations", str(sample), "--out", str(out / "validation")],
    }
    with crisk_home(audited.home):
        for name, command in commands.items():
            result = CliRunner().invoke(app, command)
            assert result.exit_code in (0, 1), f"{name}: {result.output}"
    return {
        "decision": out / "decision.html",
        "model card": out / "cards" / "crisk_declaration_financial.html",
        "indicators": out / "report" / "report.html",
        "validation": out / "validation" / "report.html",
    }


def _assert_rendered(name: str, report: PageReport, pictures: bool) -> None:
    assert not report.console_errors, f"{name}: console errors {report.console_errors}"
    assert not report.network_requests, f"{name}: fetched {report.network_requests}"
    if not pictures:
        return
    assert report.images, f"{name}: no pictures"
    for image in report.images:
        assert image["complete"], f"{name}: {image['alt']} did not load"
        assert image["width"] >= 300 and image["height"] >= 200, f"{name}: {image}"


def test_pages_render_offline_in_headless_chromium(
    audited_workspace: AuditedWorkspace, chromium: Chromium, tmp_path: Path
) -> None:
    pages = _pages(audited_workspace, tmp_path)
    for name, path in pages.items():
        report = chromium.open(path)
        _assert_rendered(name, report, pictures=name != "validation")
        assert report.title, name
