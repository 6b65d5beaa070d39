"""Schemathesis against the real server's own OpenAPI document (``/docs.json``), every endpoint.

Run as a user would run it (``schemathesis run``), every phase it has (examples, coverage,
fuzzing), positive and negative data, all checks: no 5xx, every status documented, responses as
their schemas say, TRACE and other methods 405, valid data accepted, and our own two checks
(``tests/integration/schemathesis_hooks.py``): every 4xx names the field and the rule, and
whatever the server accepts, the contract accepts (it replaces ``negative_data_rejection``, see
there why). With an admin key and without a key. A fixed seed and example budget keep it
reproducible and inside CI's time: the coverage phase (boundary values of every field, and the
methods a route does not take) runs on every endpoint but ``/score``, where it alone generates
about 2,500 cases (~3 minutes); ``CRISK_SCHEMATHESIS_FULL=1`` runs it there too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 60
SEED = 20261201
ROOT = Path(__file__).resolve().parents[2]


def _schemathesis(
    server: Any, headers: list[str], checks: str, *extra: str, max_examples: int = MAX_EXAMPLES
) -> dict[str, Any]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{server.url}/docs.json",
        "--checks",
        checks,
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--request-timeout",
        "60",
        *extra,
        *[arg for header in headers for arg in ("-H", header)],
    ]
    if checks == "all":
        command += ["--exclude-checks", "negative_data_rejection"]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    # Schemathesis keeps a cache in its working directory: a scratch one, not the checkout.
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            command, cwd=scratch, env=env, capture_output=True, text=True, timeout=900
        )
    return {"code": done.returncode, "output": done.stdout + done.stderr}


def _generated(output: str) -> int:
    """The number of test cases from schemathesis' summary line ('N generated, ...')."""
    for line in output.splitlines():
        words = line.split()
        if "generated," in words:
            return int(words[words.index("generated,") - 1].replace(",", ""))
    return 0


def test_all_checks_with_an_admin_key(server: Any) -> None:
    admin = [f"Authorization: Bearer {server.keys['admin']}"]
    runs = [_schemathesis(server, admin, "all", "--phases", "examples,fuzzing")]
    coverage = ["--phases", "coverage"]
    if os.environ.get("CRISK_SCHEMATHESIS_FULL") != "1":
        coverage += ["--exclude-path", "/score"]
    runs.append(_schemathesis(server, admin, "all", *coverage, max_examples=10))
    for run in runs:
        assert run["code"] == 0, run["output"][-6000:]
        assert "mostly rejected" not in run["output"], "generated data should mostly be accepted"
    generated = sum(_generated(run["output"]) for run in runs)
    print(f"schemathesis with an admin key: {generated} cases")
    assert generated >= 300, runs[0]["output"][-3000:]


def test_without_a_key_every_protected_endpoint_is_401(server: Any) -> None:
    checks = "not_a_server_error,every_4xx_names_field_and_rule,protected_routes_need_a_key"
    extra = [] if os.environ.get("CRISK_SCHEMATHESIS_FULL") == "1" else ["--exclude-path", "/score"]
    runs = [
        _schemathesis(server, [], checks, "--phases", "examples,fuzzing", max_examples=10),
        _schemathesis(server, [], checks, "--phases", "coverage", *extra, max_examples=10),
    ]
    output = "".join(run["output"] for run in runs)
    assert all(run["code"] == 0 for run in runs), output[-6000:]
    generated = sum(_generated(run["output"]) for run in runs)
    print(f"schemathesis without a key: {generated} cases")
    assert generated >= 50, output[-3000:]
