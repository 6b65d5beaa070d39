"""`crisk serve` as a user starts and stops it: the workspace it uses, its keys, its processes.

- Without CRISK_HOME and with HOME elsewhere, the CLI and the service write into ./.crisk only.
- SIGTERM to `crisk serve` stops it and its workers, and frees the port.
- SIGKILL of the whole process group of `crisk serve` leaves no worker serving: BentoML's worker
  runs in a session of its own and exits by itself when its parent is gone.
- Keys: the demo's generated key file is 0600 and its keys are printed; keys given in the
  environment are never printed; one key for two roles is refused before anything starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import psutil
import pytest
from typer.testing import CliRunner

from data_contracts.definitions import contract_for
from pipelines.cli import app
from tests.conftest import free_port
from tests.integration.workspaces import copy_workspace

pytestmark = pytest.mark.integration

CRISK = str(Path(sys.executable).parent / "crisk")
# What the Makefile and conftest export and a fresh shell does not have.
_WORKSPACE_VARIABLES = (
    "CRISK_HOME",
    "BENTOML_HOME",
    "MPLCONFIGDIR",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "CRISK_API_KEYS",
    "CRISK_API_KEYS_FILE",
)


def _fresh_environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _WORKSPACE_VARIABLES}
    env.update({"HOME": str(home), **extra})
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"crisk serve exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not ready:\n{log.read_text()[-3000:]}")


def _serve(cwd: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    port = free_port()
    process = subprocess.Popen(
        [CRISK, "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, process, log)
    return process, url, port


def _declaration(home: Path) -> dict:
    frame = pd.read_parquet(home / "data" / "declarations.parquet").tail(1)
    fields = contract_for("declarations").field_names
    return frame[fields].to_json(orient="records", date_format="iso")


def _gone(processes: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=seconds)
    return alive


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def test_without_crisk_home_the_cli_and_service_stay_in_dot_crisk_and_sigterm_stops_all(
    trained_workspace: Path, tmp_path: Path
) -> None:
    user_home, cwd = tmp_path / "home", tmp_path / "cwd"
    user_home.mkdir()
    cwd.mkdir()
    copy_workspace(trained_workspace, cwd / ".crisk")
    env = _fresh_environment(user_home)
    controls = cwd / "controls.csv"
    pd.read_parquet(trained_workspace / "data" / "control_results.parquet").head(5).to_csv(
        controls, index=False
    )
    ingested = subprocess.run(
        [CRISK, "ingest", "control-results", str(controls)], cwd=cwd, env=env, capture_output=True
    )
    assert ingested.returncode == 0, ingested.stderr.decode()

    log = tmp_path / "serve.log"
    process, url, port = _serve(cwd, env, log)
    family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    try:
        printed = log.read_text()
        assert "Bearer scorer-" in printed, "the local demo prints its generated scorer key"
        key_file = cwd / ".crisk" / "service" / "api_keys"
        assert key_file.stat().st_mode & 0o777 == 0o600
        scorer = next(
            line.split(":", 1)[1]
            for line in key_file.read_text().splitlines()
            if line.startswith("scorer:")
        )
        response = httpx.post(
            f"{url}/score",
            content=f'{{"declarations": {_declaration(cwd / ".crisk")}}}',
            headers={"Authorization": f"Bearer {scorer}", "content-type": "application/json"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert len(family) >= 2, "crisk serve became the arbiter and started a worker"

        os.kill(process.pid, signal.SIGTERM)
        assert not _gone(family, 20), "a server process outlived SIGTERM to crisk serve"
        assert _port_free(port)
    finally:
        _kill(family)

    verified = subprocess.run(
        [CRISK, "audit", "verify"], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "signed checkpoints verified" in verified.stdout
    assert list(user_home.iterdir()) == [], "nothing may be written into the user's home"
    assert sorted(p.name for p in cwd.iterdir()) == [".crisk", "controls.csv"]


def test_sigkill_of_the_process_group_leaves_no_worker(
    trained_workspace: Path, tmp_path: Path
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    copy_workspace(trained_workspace, cwd / ".crisk")
    env = _fresh_environment(tmp_path, CRISK_API_KEYS="scorer:kill-test-scorer-key")
    log = tmp_path / "serve.log"
    process, _, port = _serve(cwd, env, log)
    workers = psutil.Process(process.pid).children(recursive=True)
    try:
        assert workers, "BentoML started a worker"
        assert all(os.getsid(w.pid) != os.getsid(process.pid) for w in workers), (
            "the worker runs in a session of its own: a process-group kill does not reach it"
        )
        printed = log.read_text()
        assert "kill-test-scorer-key" not in printed and "curl" not in printed, (
            "keys configured in the environment are never printed"
        )
        os.killpg(process.pid, signal.SIGKILL)
        assert not _gone(workers, 20), "the worker outlived its arbiter"
        assert _port_free(port)
    finally:
        _kill(workers)


def test_one_key_for_two_roles_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRISK_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("CRISK_API_KEYS", "scorer:same-key,auditor:same-key")
    result = CliRunner().invoke(app, ["serve", "--port", str(free_port())])
    assert result.exit_code == 2
    assert "also the key of role 'scorer'" in " ".join(result.output.split())
