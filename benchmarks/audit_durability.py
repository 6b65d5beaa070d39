"""The cost of a synced audit log: two `crisk serve`, audit fsync on and off, side by side.

Both servers run at once on copies of the same trained workspace and get the same requests,
alternately, from one client, so machine load (a shared 2-core box) falls on both alike; the
ratio of their latencies is the cost of ``CRISK_SERVE_AUDIT_FSYNC=true`` (``synchronous=FULL``:
the write-ahead log is synced at every commit, before the answer leaves).

    .venv/bin/python benchmarks/audit_durability.py --home .crisk --requests 200

``--baseline-code DIR`` runs the second server from another checkout's code instead (e.g.
/work/main), fsync as configured there: a same-run comparison of two versions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

KEY = "durability-scorer"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _copy(home: Path, target: Path) -> Path:
    shutil.copytree(home, target, ignore=shutil.ignore_patterns("service", "runs", "world"))
    return target


def _start(home: Path, env_extra: dict[str, str], code: Path | None) -> tuple[Any, str]:
    port = _free_port()
    env = dict(os.environ)
    env.update(
        {
            "CRISK_HOME": str(home),
            "CRISK_API_KEYS": f"scorer:{KEY}",
            "BENTOML_HOME": str(home / "bentoml"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
            "DO_NOT_TRACK": "true",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "BENTOML_DO_NOT_TRACK": "true",
            "FEAST_USAGE": "False",
            **env_extra,
        }
    )
    if code is not None:
        env["PYTHONPATH"] = str(code)
    command = [sys.executable, "-m", "bentoml", "serve", "serving.service:CustomsRiskScorer",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        command, env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    return process, f"http://127.0.0.1:{port}"


def _wait(url: str, process: Any) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url}: not ready")


def _stop(process: Any) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _bodies(home: Path, batch: int, count: int) -> list[bytes]:
    from data_contracts.definitions import contract_for

    fields = contract_for("declarations").field_names
    frame = pd.read_parquet(home / "data" / "declarations.parquet", columns=fields)
    records = json.loads(
        frame.sample(batch * count, random_state=2).to_json(orient="records", date_format="iso")
    )
    records = [{k: v for k, v in r.items() if v is not None} for r in records]
    return [
        json.dumps({"declarations": records[i : i + batch]}).encode()
        for i in range(0, len(records), batch)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200, help="per server and batch size")
    parser.add_argument("--baseline-code", type=Path, help="Run the baseline from this checkout.")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="crisk-durability-"))
    cases = {
        "audit fsync on": ({"CRISK_SERVE_AUDIT_FSYNC": "true"}, None),
        "baseline": (
            ({}, args.baseline_code)
            if args.baseline_code
            else ({"CRISK_SERVE_AUDIT_FSYNC": "false"}, None)
        ),
    }
    servers = {}
    try:
        for name, (env, code) in cases.items():
            home = _copy(args.home.resolve(), scratch / name.replace(" ", "_"))
            servers[name] = _start(home, env, code)
        for process, url in servers.values():
            _wait(url, process)
        headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
        with httpx.Client(timeout=60, headers=headers) as client:
            for batch in (1, 100):
                bodies = _bodies(args.home, batch, args.requests)
                latencies: dict[str, list[float]] = {name: [] for name in servers}
                for body in bodies:
                    for name, (_, url) in servers.items():
                        started = time.perf_counter()
                        response = client.post(f"{url}/score", content=body)
                        latencies[name].append(time.perf_counter() - started)
                        if response.status_code != 200:
                            raise RuntimeError(f"{name}: {response.status_code} {response.text}")
                medians = {n: float(np.median(v)) * 1000 for n, v in latencies.items()}
                p99 = {n: float(np.percentile(v, 99)) * 1000 for n, v in latencies.items()}
                for name in servers:
                    print(f"batch {batch:>3} {name:>15}: p50 {medians[name]:7.1f} ms, "
                          f"p99 {p99[name]:7.1f} ms")  # fmt: skip
                ratio = medians["audit fsync on"] / medians["baseline"]
                print(f"batch {batch:>3} p50 ratio fsync-on / baseline: {ratio:.2f}x")
    finally:
        for process, _ in servers.values():
            _stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
