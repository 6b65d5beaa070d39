"""A crisk server on loopback for the HTTP benchmarks: start, wait, stop, request bodies.

Each benchmark starts its own server on a copy of a workspace, with keys it chose, telemetry off
and the project's interpreter first on ``PATH``; these helpers are that part, shared.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import pandas as pd

from data_contracts.workspace import TELEMETRY_OFF

__all__ = [
    "declaration_bodies",
    "free_port",
    "server_environment",
    "start_server",
    "stop_server",
    "wait_ready",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(
    home: Path, api_keys: Mapping[str, str], extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment for a server over ``home``: its keys, telemetry off."""
    env = dict(os.environ)
    env.update(
        {
            "CRISK_HOME": str(home),
            "CRISK_API_KEYS": ",".join(f"{role}:{key}" for role, key in api_keys.items()),
            "BENTOML_HOME": str(home / "bentoml"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            **TELEMETRY_OFF,
            **(extra_env or {}),
        }
    )
    return env


def start_server(
    home: Path,
    port: int,
    log: Path,
    api_keys: Mapping[str, str],
    extra_env: Mapping[str, str] | None = None,
    code: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``bentoml serve`` of the crisk service over ``home`` (``code``: another checkout's)."""
    from serving.launch import serve_command

    env = server_environment(home, api_keys, extra_env)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return subprocess.Popen(
        serve_command("127.0.0.1", port), env=env, cwd=home, stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}: not ready in {seconds:.0f} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def closed_loop(
    url: str, bodies: list[bytes], headers: dict[str, str], clients: int, seconds: float
) -> tuple[int, list[float]]:
    """POST ``bodies`` (JSON) round-robin from ``clients`` threads for ``seconds``; returns the
    number of requests and their latencies. A non-200 answer stops the run."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        with httpx.Client(
            timeout=60, headers={"content-type": "application/json", **headers}
        ) as client:
            i = offset
            local = []
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = client.post(url, content=bodies[i % len(bodies)])
                local.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
                i += clients
            with lock:
                latencies.extend(local)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), latencies


def declaration_bodies(home: Path, batch: int, count: int, seed: int) -> list[bytes]:
    """Up to ``count`` full ``/score`` bodies of ``batch`` stored declaration items each."""
    from data_contracts.definitions import contract_for

    fields = contract_for("declarations").field_names
    frame = pd.read_parquet(home / "data" / "declarations.parquet", columns=fields)
    frame = frame.sample(min(len(frame), batch * count), random_state=seed)
    records = json.loads(frame.to_json(orient="records", date_format="iso"))
    records = [{k: v for k, v in r.items() if v is not None} for r in records]
    for record in records:
        if isinstance(record.get("extra"), str):  # stored as JSON text; a request sends a map
            record["extra"] = json.loads(record["extra"])
    return [
        json.dumps({"declarations": records[i : i + batch]}).encode()
        for i in range(0, len(records) - batch + 1, batch)
    ]
