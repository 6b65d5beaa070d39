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
import shutil
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent
# The checkout root instead (benchmarks.local_server is shared by the HTTP benchmarks).
sys.path = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.local_server import (  # noqa: E402
    declaration_bodies,
    free_port,
    start_server,
    stop_server,
    wait_ready,
)

KEY = "durability-scorer"


def _copy(home: Path, target: Path) -> Path:
    shutil.copytree(home, target, ignore=shutil.ignore_patterns("service", "runs", "world"))
    return target


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
            port = free_port()
            process = start_server(home, port, home / "server.log", {"scorer": KEY}, env, code)
            servers[name] = (process, f"http://127.0.0.1:{port}")
        for process, url in servers.values():
            wait_ready(url, process)
        headers = {"Authorization": f"Bearer {KEY}", "content-type": "application/json"}
        with httpx.Client(timeout=60, headers=headers) as client:
            for batch in (1, 100):
                bodies = declaration_bodies(args.home, batch, args.requests, seed=2)
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
            stop_server(process)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
