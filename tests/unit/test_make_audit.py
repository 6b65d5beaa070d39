"""`make audit` reports the locked dependencies' known vulnerabilities and passes offline."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_audit_says_it_could_not_check_when_offline() -> None:
    # An unreachable proxy stands for a machine without network; nothing leaves it.
    unreachable = "http://127.0.0.1:9"
    proxies = {name: unreachable for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY")}
    env = {**os.environ, **proxies, "http_proxy": unreachable, "NO_PROXY": "", "no_proxy": ""}
    done = subprocess.run(
        ["make", "-s", "audit"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "could not be reached" in done.stdout
    assert "Traceback" not in done.stdout, "one line, not pip-audit's traceback"
