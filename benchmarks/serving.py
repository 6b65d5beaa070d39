"""Benchmark: `crisk serve` against `mlflow models serve` of the same champion, and the floor.

Both servers run on this machine over loopback and get the same load from the same client:

- crisk: ``POST /score`` with declaration items; it validates them, fetches online features
  (Feast + cache), scores every area model, assigns channels, computes 5 TreeSHAP reasons for
  every non-green item and writes the audit log;
- mlflow: ``POST /invocations`` of the financial champion's pyfunc with the model features
  supplied by the client (computed beforehand, as a risk engine would have to), scores only.

Reported, for each number of worker processes (the same for both servers): throughput (items/s)
at batch 1 and 100 under concurrent clients, p50/p99 latency (crisk asked for reasons on every
item at batch 1), the servers' CPU time per item (their whole process trees: a measure of the
work that a loaded machine does not distort as much as throughput), and crisk's throughput at
batch 1000 against the in-process floor (``Booster.predict`` of the same model on the same
encoded batch). On a shared machine the two servers get their load in alternating slices, so
both see the same neighbours; the same-run ratios are what count.

    .venv/bin/python benchmarks/serving.py --home .crisk --workers 1 2
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its own name would shadow the
# `serving` package: drop that entry before importing the project.
_HERE = Path(__file__).resolve().parent
# The checkout root instead (benchmarks.local_server is shared by the HTTP benchmarks).
sys.path = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import psutil  # noqa: E402

from benchmarks.local_server import closed_loop, free_port, server_environment  # noqa: E402

KEYS = {"scorer": "bench-scorer"}


def _wait(url: str, process: subprocess.Popen[bytes], seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {seconds} s")


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        cwd=env["CRISK_HOME"],
    )  # fmt: skip


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _inputs(home: Path, n: int) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Declaration records, and the model features a client would send to mlflow for them."""
    from data_contracts.definitions import contract_for
    from features.config import FeatureStoreSettings
    from features.model_input import model_frame, request_features
    from features.online import OnlineFeatureReader
    from features.retrieval import entity_columns

    frame = pd.read_parquet(home / "data" / "declarations.parquet").sample(n, random_state=5)
    records = json.loads(
        frame[contract_for("declarations").field_names].to_json(orient="records", date_format="iso")
    )
    reader = OnlineFeatureReader(FeatureStoreSettings(home=home), "customs_risk_declaration_v1")
    feast = reader.get(entity_columns(frame, "declaration"))
    features = pd.DataFrame(
        model_frame(request_features(frame, "declaration"), feast, "declaration")
    )
    return records, features


def _mlflow_body(features: pd.DataFrame, spec: dict[str, Any]) -> bytes:
    columns = spec["features"]
    frame = features[columns].copy()
    for name in columns:
        if name in spec["vocabularies"]:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), "")
    payload = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    return json.dumps(payload).encode()


def _cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU time of a server's process tree (arbiter or CLI, and its workers)."""
    total = 0.0
    root = psutil.Process(process.pid)
    for member in [root, *root.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


class _Case:
    """Requests, latencies and server CPU time of one server at one batch size."""

    def __init__(self) -> None:
        self.requests = 0
        self.seconds = 0.0
        self.cpu = 0.0
        self.client_cpu = 0.0
        self.latencies: list[float] = []

    def add(
        self,
        process: subprocess.Popen[bytes],
        run: Callable[[float], tuple[int, list[float]]],
        seconds: float,
    ) -> None:
        """``run(seconds)`` sends the load and returns (requests, latencies)."""
        cpu = _cpu_seconds(process)
        client = time.process_time()  # this process: the client threads sending the load
        started = time.monotonic()
        count, latencies = run(seconds)
        self.seconds += time.monotonic() - started
        self.cpu += _cpu_seconds(process) - cpu
        self.client_cpu += time.process_time() - client
        self.requests += count
        self.latencies.extend(latencies)

    def row(self, batch: int) -> dict[str, float]:
        items = self.requests * batch
        return {
            "items_per_s": items / self.seconds,
            "p50_ms": float(np.percentile(self.latencies, 50) * 1000),
            "p99_ms": float(np.percentile(self.latencies, 99) * 1000),
            "server_cpu_us_per_item": self.cpu / items * 1e6,
            "client_cpu_us_per_item": self.client_cpu / items * 1e6,
        }


def _run_workers(
    args: argparse.Namespace,
    home: Path,
    workers: int,
    records: list[dict[str, Any]],
    features: pd.DataFrame,
    spec: dict[str, Any],
) -> dict[str, Any]:
    """Both servers with ``workers`` processes each; batch 1 and 100 in alternating slices."""
    from serving.launch import serve_command

    env = server_environment(home, KEYS)
    env["CRISK_SERVE_WORKERS"] = str(workers)
    logs = home / "runs" / "benchmark_serving"
    logs.mkdir(parents=True, exist_ok=True)
    crisk_port, mlflow_port = free_port(), free_port()
    crisk = _start(serve_command("127.0.0.1", crisk_port), env, logs / f"crisk_w{workers}.log")
    mlflow = _start(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
         f"models:/{args.model}@champion", "--env-manager", "local", "-h", "127.0.0.1",
         "-p", str(mlflow_port), "--workers", str(workers)],
        env, logs / f"mlflow_w{workers}.log",
    )  # fmt: skip
    servers = {"crisk": crisk, "mlflow": mlflow}
    baseline_port = free_port()
    if args.baseline_code is not None:
        # The same service from another checkout (e.g. main) on a copy of the workspace: its
        # own audit log and feedback store (another version may keep them in another layout).
        baseline_home = _baseline_home(home, workers)
        baseline_env = {
            **server_environment(baseline_home, KEYS),
            "CRISK_SERVE_WORKERS": str(workers),
            "PYTHONPATH": str(args.baseline_code.resolve()),
        }
        servers["crisk_baseline"] = _start(
            serve_command("127.0.0.1", baseline_port),
            baseline_env,
            logs / f"crisk_baseline_w{workers}.log",
        )
    results: dict[str, Any] = {}
    try:
        _wait(f"http://127.0.0.1:{crisk_port}/readyz", crisk)
        _wait(f"http://127.0.0.1:{mlflow_port}/ping", mlflow)
        if "crisk_baseline" in servers:
            _wait(f"http://127.0.0.1:{baseline_port}/readyz", servers["crisk_baseline"])
        score_url = f"http://127.0.0.1:{crisk_port}/score"
        invoke_url = f"http://127.0.0.1:{mlflow_port}/invocations"
        auth = {"Authorization": f"Bearer {KEYS['scorer']}"}
        targets = [("crisk", score_url, auth), ("mlflow", invoke_url, {})]
        if "crisk_baseline" in servers:
            targets.insert(1, ("crisk_baseline", f"http://127.0.0.1:{baseline_port}/score", auth))
        for batch in (1, 100):
            crisk_bodies = [
                json.dumps({"declarations": records[i : i + batch], "explain": batch == 1}).encode()
                for i in range(0, len(records) - batch + 1, batch)
            ]
            mlflow_bodies = [
                _mlflow_body(features.iloc[i : i + batch], spec)
                for i in range(0, len(records) - batch + 1, batch)
            ]
            bodies_of = {"crisk": crisk_bodies, "crisk_baseline": crisk_bodies}
            bodies_of["mlflow"] = mlflow_bodies
            for name, url, headers in targets:  # warm the feature caches
                closed_loop(url, bodies_of[name][:20], headers, 1, 2.0)
            cases = {name: _Case() for name, _, _ in targets}
            for _ in range(args.rounds):
                for name, url, headers in targets:
                    cases[name].add(
                        servers[name],
                        functools.partial(closed_loop, url, bodies_of[name], headers, args.clients),
                        args.seconds / args.rounds,
                    )
            for name, case in cases.items():
                results[f"{name}_batch{batch}"] = case.row(batch)
        big = [json.dumps({"declarations": records[i : i + 1000]}).encode() for i in (0, 1000)]
        case = _Case()
        case.add(crisk, lambda s: closed_loop(score_url, big, auth, 2, s), args.seconds)
        results["crisk_batch1000"] = case.row(1000)
    finally:
        for process in servers.values():
            _stop(process)
    return results


def _baseline_home(home: Path, workers: int) -> Path:
    """A copy of ``home`` for the baseline checkout's server, without the service's state."""
    copy = home / "runs" / "benchmark_serving" / f"baseline_home_w{workers}"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("runs", "audit", "feedback.sqlite*"))
    return copy


def _floors(model: Any, bundle: Any, features: pd.DataFrame) -> dict[str, dict[str, float]]:
    """In-process ``Booster.predict`` of the batch of 1000: one model, and every model of it."""
    matrix = model.encoder(features.iloc[:1000])
    model.booster.predict(matrix)
    started = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        model.booster.predict(matrix)
    floor = repeats * 1000 / (time.perf_counter() - started)
    # The service runs every declaration model on the batch (areas + revenue), so the same
    # in-process work for all of them is the fairer floor; both are printed.
    served = [m for m in bundle.models if m.subject == model.subject]
    matrices = [(m.booster, m.encoder(features.iloc[:1000])) for m in served]
    started = time.perf_counter()
    for _ in range(repeats):
        for booster, encoded in matrices:
            booster.predict(encoded)
    floor_all = repeats * 1000 / (time.perf_counter() - started)
    return {
        "floor_booster_predict_batch1000": {"items_per_s": floor},
        f"floor_all_{len(served)}_models_batch1000": {"items_per_s": floor_all},
    }


def _report(workers: int, args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(
        f"serving benchmark ({workers} worker(s) per server, {args.clients} concurrent "
        f"clients, {args.seconds:.0f} s per case in {args.rounds} alternating slices)"
    )
    for name, row in results.items():
        extra = (
            f", p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
            f"server CPU {row['server_cpu_us_per_item']:.0f} us/item, "
            f"client CPU {row['client_cpu_us_per_item']:.0f} us/item"
            if "p50_ms" in row
            else ""
        )
        print(f"  {name:>32}: {row['items_per_s']:10.0f} items/s{extra}")
    crisk, mlflow = results["crisk_batch100"], results["mlflow_batch100"]
    floor = results["floor_booster_predict_batch1000"]["items_per_s"]
    print(
        f"  throughput crisk / mlflow at batch 100: "
        f"{crisk['items_per_s'] / mlflow['items_per_s']:.2f}x (target >= 2)"
    )
    print(
        f"  server CPU per item mlflow / crisk at batch 100: "
        f"{mlflow['server_cpu_us_per_item'] / crisk['server_cpu_us_per_item']:.2f}x"
    )
    if "crisk_baseline_batch100" in results:
        before = results["crisk_baseline_batch100"]
        p99_before = results["crisk_batch1"]["p99_ms"] / results["crisk_baseline_batch1"]["p99_ms"]
        print(
            f"  throughput crisk / baseline checkout at batch 100: "
            f"{crisk['items_per_s'] / before['items_per_s']:.2f}x; baseline / mlflow: "
            f"{before['items_per_s'] / mlflow['items_per_s']:.2f}x; p99 at batch 1 crisk / "
            f"baseline: {p99_before:.2f}x"
        )
    p99_ratio = results["crisk_batch1"]["p99_ms"] / results["mlflow_batch1"]["p99_ms"]
    print(f"  p99 crisk (with reasons) / mlflow at batch 1: {p99_ratio:.2f}x (target <= 1.5)")
    share = results["crisk_batch1000"]["items_per_s"] / floor
    print(f"  crisk at batch 1000 / in-process floor: {share:.1%} (target >= 25%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="A workspace with champions.")
    parser.add_argument("--seconds", type=float, default=20.0, help="Load duration per case.")
    parser.add_argument("--rounds", type=int, default=4, help="Alternating slices per case.")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--model", default="crisk_declaration_financial")
    parser.add_argument(
        "--baseline-code",
        type=Path,
        help="Another checkout (e.g. /work/main) whose service runs beside this one's.",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="Worker processes of each server."
    )
    args = parser.parse_args()
    home = args.home.resolve()
    records, features = _inputs(home, 2000)
    os.environ["BENTOML_HOME"] = str(home / "bentoml")
    from serving.bundle import load_bundle
    from serving.config import ServingSettings

    bundle = load_bundle(ServingSettings(home=home))
    model = next(m for m in bundle.models if m.name == args.model)
    load_before = os.getloadavg()
    everything: dict[str, Any] = {}
    for workers in args.workers:
        results = _run_workers(args, home, workers, records, features, model.spec)
        results.update(_floors(model, bundle, features))
        _report(workers, args, results)
        everything[f"workers_{workers}"] = results
    load_after = os.getloadavg()
    print(
        f"  load average (1, 5, 15 min) before: {', '.join(f'{v:.1f}' for v in load_before)}; "
        f"after: {', '.join(f'{v:.1f}' for v in load_after)} ({os.cpu_count()} cores)"
    )
    everything["load_average"] = {"before": load_before, "after": load_after}
    out = home / "runs" / "benchmark_serving"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(everything, indent=1))


if __name__ == "__main__":
    main()
