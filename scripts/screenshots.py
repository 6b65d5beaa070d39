"""Screenshots of the decision page, a model card and the indicators page for ``docs/``.

Builds the three pages with the ``crisk`` commands on a workspace that has served (audit log,
evaluation), opens them in headless Chromium (``tests/integration/browser.py``) and keeps the top
of each, scaled down, as a small PNG:

    .venv/bin/python scripts/screenshots.py --home .crisk [--scoring-id ID] [--out docs]
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from tests.integration.browser import Chromium, ensure_chromium  # noqa: E402

PAGES = {
    "decision": "screenshot-decision-page.png",
    "model card": "screenshot-model-card.png",
    "indicators": "screenshot-indicators.png",
}


def _selected_item(home: Path) -> str:
    """A scoring id the service did not release (its page has reasons and waterfalls)."""
    with sqlite3.connect(home / "service" / "audit" / "audit.sqlite") as connection:
        rows = connection.execute(
            "SELECT i.scoring_id, json_extract(a.record, '$.items[' || i.position || '].channel')"
            " FROM audit_items i JOIN audit a ON a.seq = i.seq WHERE i.subject_type = 'declaration'"
        ).fetchall()
    return next((sid for sid, channel in rows if channel != "green"), rows[0][0])


def _crisk(home: Path, *args: str) -> None:
    env = {**os.environ, "CRISK_HOME": str(home)}
    subprocess.run(
        [str(Path(sys.executable).with_name("crisk")), *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _small(png: bytes, keep_height: int, width: int) -> Image.Image:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, keep_height)))
    scaled = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    return scaled.quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="A workspace that has served.")
    parser.add_argument("--scoring-id", help="The decision to show (default: a selected item).")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--height", type=int, default=1900, help="Page height kept, in pixels.")
    parser.add_argument("--width", type=int, default=900, help="Width of the saved picture.")
    args = parser.parse_args()
    home = args.home.resolve()
    executable, how = ensure_chromium()
    if executable is None:
        raise SystemExit(f"no Chromium: {how}")
    with tempfile.TemporaryDirectory() as tmp:
        pages = Path(tmp)
        scoring_id = args.scoring_id or _selected_item(home)
        _crisk(home, "audit", "show", scoring_id, "--html", str(pages / "decision.html"))
        _crisk(home, "audit", "model-report", "--no-log", "--out", str(pages / "cards"))
        _crisk(home, "report", "--out", str(pages / "report"))
        paths = {
            "decision": pages / "decision.html",
            "model card": pages / "cards" / "crisk_declaration_financial.html",
            "indicators": pages / "report" / "report.html",
        }
        with Chromium(executable) as browser:
            for name, path in paths.items():
                report = browser.open(path, screenshot=True)
                assert report.screenshot is not None
                target = args.out / PAGES[name]
                _small(report.screenshot, args.height, args.width).save(target, optimize=True)
                print(f"{name}: {target} ({target.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
