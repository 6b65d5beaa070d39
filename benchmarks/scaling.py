"""Benchmark: how time and memory grow with the world, per step, and the Spark and Dask paths.

For each size (``--sizes`` × ``--base`` declaration items; the default world is 150,000 items
and 100,000 ENS filings, and ENS grow in the same proportion) a fresh workspace goes through:

- ``world``: generating the synthetic world and writing its files;
- ``ingest``: the contracts over declarations, ENS and control results into the data store;
- ``features``: the point-in-time feature tables (DuckDB), the Feast registration and the
  online store load (the phases are timed apart: ``tables`` is what the Spark path replaces);
- ``features_spark``: the same with ``CRISK_FEATURES_TABLE_ENGINE=spark`` (skipped, with a
  note, on a checkout whose ``FeatureStoreSettings`` has no ``table_engine``);
- ``train``: every area model and the revenue model on one machine;
- ``train_dask``: the same with ``CRISK_TRAIN_DASK_SCHEDULER=local:2`` (cluster start included);
- ``serve``: ``crisk serve`` on the workspace, ``/score`` at batch 100 from 4 clients.

Each step runs in a process of its own; its peak memory is the largest sum of resident memory
over that process and everything it started (Dask workers, Spark's JVM, BentoML workers),
sampled every 0.1 s. The slope of log(time) and log(memory) against log(items) says how each
step grows (1: linear); the extrapolation to ``--target`` items assumes it keeps growing so.
Writes ``scaling.json``, ``scaling.md`` (the table) and ``scaling.png`` (the plot) to ``--out``.

    .venv/bin/python benchmarks/scaling.py --out /tmp/scaling               # 1x, 2x, 4x
    .venv/bin/python benchmarks/scaling.py --base 50000 --sizes 1,2,4 --out /tmp/scaling
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its own names would shadow
# the project's packages (benchmarks/training.py would be `training`): drop that entry.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from data_contracts.workspace import TELEMETRY_OFF  # noqa: E402

DEFAULT_ITEMS = 150_000
ENS_PER_ITEM = 100_000 / 150_000  # the default world's proportion
STEPS = ("world", "ingest", "features", "features_spark", "train", "train_dask", "serve")
SCORE_BATCH = 100
SCORE_CLIENTS = 4
SCORE_SECONDS = 20.0


# --- the steps, each run in a child process ---------------------------------------------------


def _settings(home: Path, items: int) -> Any:
    from pipelines.config import PipelineSettings

    return PipelineSettings(
        home=home, world_declarations=items, world_ens=round(items * ENS_PER_ITEM)
    )


class PhaseTimes:
    """A progress callable that times each phase a step announces (a message starts one)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._since = time.perf_counter()

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if self._current is not None:
            name = _phase_name(self._current)
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self._since
        self._current, self._since = message, now

    def close(self) -> dict[str, float]:
        self("")
        return self.seconds


def _run_step(step: str, home: Path, items: int) -> dict[str, Any]:
    from pipelines import steps
    from world.generate import WorldConfig, WorldFiles

    settings = _settings(home, items)
    progress = PhaseTimes()
    out: dict[str, Any] = {}
    if step == "world":
        steps.make_world(
            settings.workspace.world_dir, seed=settings.world_seed,
            declarations=items, ens=settings.world_ens, weeks=settings.world_weeks,
            start=WorldConfig().start,
        )  # fmt: skip
    elif step == "ingest":
        steps.ingest_world(settings, WorldFiles(settings.workspace.world_dir))
    elif step in ("features", "features_spark"):
        steps.materialize_features(settings, progress)
        out["phases"] = progress.close()
        online = settings.workspace.feast_dir / "online_store.db"
        out["online_store_bytes"] = online.stat().st_size if online.exists() else None
    elif step in ("train", "train_dask"):
        models = steps.train_models(settings, progress)
        out["models"] = len(models)
    return out


def _phase_name(message: str) -> str:
    if "feature tables" in message:
        return "tables"
    if "Feast" in message:
        return "register"
    if "online store" in message:
        return "online_store"
    return message


def _step_environment(step: str, home: Path) -> dict[str, str]:
    env = {**os.environ, **TELEMETRY_OFF, "CRISK_HOME": str(home)}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    # The demo world's few labels: train areas the bootstrap would train (as `make run` does).
    env.setdefault("CRISK_TRAIN_MIN_POSITIVE_LABELS", "50")
    env["CRISK_TRAIN_DIAGNOSTICS"] = "false"  # plots are not training
    if step == "features_spark":
        env["CRISK_FEATURES_TABLE_ENGINE"] = "spark"
    if step == "train_dask":
        env["CRISK_TRAIN_DASK_SCHEDULER"] = "local:2"
    return env


def spark_engine_available() -> bool:
    from features.config import FeatureStoreSettings

    return "table_engine" in FeatureStoreSettings.model_fields


# --- measuring --------------------------------------------------------------------------------


class PeakMemory:
    """The largest resident memory of a process and its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.peak = 0
        self._pid, self._interval = pid, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.is_set():
            try:
                root = psutil.Process(self._pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in tree:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            self._done.wait(self._interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def measure_step(step: str, home: Path, items: int, log: Path) -> dict[str, Any]:
    """Run one step in a child process: wall time, peak memory of its tree, what it reported."""
    result_file = log.with_suffix(".json")
    command = [sys.executable, __file__, "--step", step, "--home", str(home), "--items",
               str(items), "--result", str(result_file)]  # fmt: skip
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with log.open("wb") as handle:
        child = subprocess.Popen(
            command, env=_step_environment(step, home), stdout=handle, stderr=subprocess.STDOUT
        )
        memory = PeakMemory(child.pid)
        code = child.wait()
    seconds = time.perf_counter() - started
    peak = memory.stop()
    if code != 0:
        raise RuntimeError(f"{step} at {items:,} items failed ({code}); see {log}")
    reported = json.loads(result_file.read_text())
    return {"seconds": seconds, "cpu_seconds": _children_cpu() - cpu_before, "peak_bytes": peak,
            **reported}  # fmt: skip


def _children_cpu() -> float:
    """CPU seconds of every finished child process (and theirs): the time a loaded machine
    does not inflate as it inflates the wall clock."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure_serving(home: Path, log: Path) -> dict[str, Any]:
    """Items scored per second at batch 100 through ``crisk serve``, and the server's memory."""
    import httpx

    from benchmarks import local_server

    keys = {"scorer": "scaling-scorer", "officer": "scaling-officer",
            "auditor": "scaling-auditor", "admin": "scaling-admin"}  # fmt: skip
    port = local_server.free_port()
    bodies = local_server.declaration_bodies(home, SCORE_BATCH, 200, seed=1)
    process = local_server.start_server(home, port, log, keys)
    memory = PeakMemory(process.pid)
    url = f"http://127.0.0.1:{port}"
    try:
        local_server.wait_ready(url, process)
        headers = {"Authorization": f"Bearer {keys['scorer']}",
                   "content-type": "application/json"}  # fmt: skip
        with httpx.Client(timeout=60, headers=headers) as warm:
            for body in bodies[:5]:
                warm.post(f"{url}/score", content=body).raise_for_status()
        requests, latencies = local_server.closed_loop(
            f"{url}/score", bodies, headers, SCORE_CLIENTS, SCORE_SECONDS
        )
    finally:
        local_server.stop_server(process)
        peak = memory.stop()
    latencies.sort()
    return {
        "items_per_second": requests * SCORE_BATCH / SCORE_SECONDS,
        "median_ms": 1000 * latencies[len(latencies) // 2],
        "peak_bytes": peak,
    }


# --- one size, all sizes ----------------------------------------------------------------------


def measure_size(items: int, root: Path, steps: tuple[str, ...]) -> dict[str, Any]:
    """Every step on a fresh workspace of ``items``; a failed step is recorded, not fatal."""
    home = root / f"ws_{items}"
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(home, ignore_errors=True)
    out: dict[str, Any] = {}
    for step in steps:
        print(f"  {items:,} items: {step} ...", flush=True)
        log = logs / f"{step}_{items}.log"
        try:
            out[step] = (
                measure_serving(home, log)
                if step == "serve"
                else measure_step(step, home, items, log)
            )
        except RuntimeError as error:
            print(f"    failed: {error}; {log}: {_tail(log)}", flush=True)
            out.setdefault("failed", {})[step] = str(error)
            if step in ("world", "ingest", "features", "train"):
                break  # the later steps need what this one makes
            continue
        print(f"    {_describe(out[step])}", flush=True)
    shutil.rmtree(home, ignore_errors=True)
    return out


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1] if lines else "(no output)"


def _describe(result: Mapping[str, Any]) -> str:
    parts = []
    if "seconds" in result:
        parts.append(f"{result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU)")
    if "items_per_second" in result:
        parts.append(f"{result['items_per_second']:,.0f} items/s at batch {SCORE_BATCH}")
    parts.append(f"peak {result['peak_bytes'] / 2**30:.2f} GiB")
    return ", ".join(parts)


def slope(sizes: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(size)."""
    x = [math.log(s) for s in sizes]
    y = [math.log(v) for v in values]
    mx, my = sum(x) / len(x), sum(y) / len(y)
    var = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / var if var else math.nan


def extrapolate(sizes: list[int], values: list[float], target: int, floor: float = 1.0) -> float:
    """The value at ``target`` from the largest measured size, growing with the measured slope
    but at least with ``floor``: at small sizes fixed costs (imports, start-up, a loaded
    machine) flatten the slope, while the steps read, sort and join every row."""
    b = max(slope(sizes, values), floor)
    return values[-1] * (target / sizes[-1]) ** b


def summarise(results: dict[int, dict[str, Any]], target: int) -> dict[str, Any]:
    sizes = sorted(results)
    summary: dict[str, Any] = {}
    for step in STEPS:
        measured = [s for s in sizes if step in results[s]]
        if len(measured) < 2:
            continue
        row: dict[str, Any] = {}
        metric = "items_per_second" if step == "serve" else "seconds"
        for key in (metric, "peak_bytes", *(("cpu_seconds",) if step != "serve" else ())):
            values = [float(results[s][step][key]) for s in measured]
            # Serving cost is per request: the world's size reaches it only through the online
            # store's look-ups, so its throughput is carried over, not grown. Memory keeps its
            # measured slope: at small sizes it is mostly the interpreter and the libraries.
            floor = 0.0 if key == "peak_bytes" else 1.0
            row[key] = {
                "slope": slope(measured, values),
                "at_target": values[-1]
                if step == "serve"
                else extrapolate(measured, values, target, floor=floor),
            }
        summary[step] = row
    online = [
        (s, results[s]["features"].get("online_store_bytes"))
        for s in sizes
        if results[s].get("features", {}).get("online_store_bytes")
    ]
    if len(online) >= 2:
        summary["online_store_bytes"] = {
            "slope": slope([s for s, _ in online], [float(b) for _, b in online]),
            "at_target": extrapolate(
                [s for s, _ in online], [float(b) for _, b in online], target, floor=0.0
            ),
        }
    return summary


def markdown(results: dict[int, dict[str, Any]], summary: dict[str, Any], target: int) -> str:
    sizes = sorted(results)
    head = "| step | " + " | ".join(f"{s:,} items" for s in sizes)
    head += (
        f" | slope time (CPU) | slope memory | at {target / 1e6:,.0f}M items "
        "(extrapolated, at least linear) |"
    )
    lines = [head, "|" + "---|" * (len(sizes) + 4)]
    for step in STEPS:
        cells = []
        for s in sizes:
            r = results[s].get(step)
            if r is None:
                cells.append("—")
            elif step == "serve":
                cells.append(f"{r['items_per_second']:,.0f}/s, {r['peak_bytes'] / 2**30:.2f} GiB")
            else:
                cells.append(
                    f"{r['seconds']:.0f} s ({r['cpu_seconds']:.0f} s CPU), "
                    f"{r['peak_bytes'] / 2**30:.2f} GiB"
                )
        row = summary.get(step)
        if row is None:
            lines.append(f"| {step} | " + " | ".join(cells) + " | — | — | — |")
            continue
        metric = "items_per_second" if step == "serve" else "seconds"
        at = row[metric]["at_target"]
        at_text = f"{at:,.0f} items/s" if step == "serve" else _duration(at)
        at_text += f", {row['peak_bytes']['at_target'] / 2**30:,.0f} GiB"
        lines.append(
            f"| {step} | " + " | ".join(cells)
            + f" | {row[metric]['slope']:.2f}{_cpu_slope(row)} | {row['peak_bytes']['slope']:.2f}"
            + f" | {at_text} |"
        )  # fmt: skip
    lines.append("")
    for s in sizes:
        phases = results[s].get("features", {}).get("phases", {})
        if phases:
            text = ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
            lines.append(f"- features at {s:,} items: {text}")
    return "\n".join(lines) + "\n"


def _cpu_slope(row: Mapping[str, Any]) -> str:
    return f" ({row['cpu_seconds']['slope']:.2f})" if "cpu_seconds" in row else ""


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plot(results: dict[int, dict[str, Any]], path: Path) -> None:
    os.environ.setdefault("MPLCONFIGDIR", str(path.parent / ".matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    figure, (times, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    for step in STEPS:
        measured = [s for s in sizes if step in results[s] and "seconds" in results[s][step]]
        if measured:
            times.plot(measured, [results[s][step]["seconds"] for s in measured], "o-", label=step)
        measured = [s for s in sizes if step in results[s]]
        if measured:
            memory.plot(
                measured, [results[s][step]["peak_bytes"] / 2**30 for s in measured], "o-",
                label=step,
            )  # fmt: skip
    for axis, label in ((times, "seconds"), (memory, "peak memory (GiB)")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("declaration items")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
    times.legend(fontsize=8)
    memory.legend(fontsize=8)
    times.set_title("time per step (log-log: slope 1 = linear)")
    memory.set_title("peak memory of the step's processes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=DEFAULT_ITEMS, help="Items of size 1.")
    parser.add_argument("--sizes", default="1,2,4", help="Multiples of --base, comma-separated.")
    parser.add_argument("--target", type=int, default=100_000_000, help="Extrapolate to this.")
    parser.add_argument("--out", type=Path, default=Path("scaling"))
    parser.add_argument("--steps", default=",".join(STEPS), help="Comma-separated subset.")
    parser.add_argument("--work", type=Path, help="Where the workspaces go (default: a tmp dir).")
    parser.add_argument("--report-only", type=Path, help="Rewrite the report from a scaling.json.")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        args.result.write_text(json.dumps(_run_step(args.step, args.home, args.items)))
        return
    if args.report_only:
        # The table and plot again from a finished (or stopped) run's measurements.
        measured = json.loads(args.report_only.read_text())
        measured_sizes = {int(k): v for k, v in measured["sizes"].items()}
        args.out.mkdir(parents=True, exist_ok=True)
        load = tuple(measured.get("load_average_before", (math.nan,) * 3))
        write_report(measured_sizes, args, load, measured.get("spark_engine", False),  # type: ignore[arg-type]
                     measured.get("seconds", math.nan))  # fmt: skip
        print((args.out / "scaling.md").read_text())
        return
    steps = tuple(args.steps.split(","))
    unknown = set(steps) - set(STEPS)
    if unknown:
        parser.error(f"--steps: unknown {', '.join(sorted(unknown))} (known: {', '.join(STEPS)})")
    with_spark = spark_engine_available()
    if not with_spark and "features_spark" in steps:
        print(
            "note: this checkout has no Spark feature-table engine "
            "(FeatureStoreSettings.table_engine): the features_spark step is skipped"
        )
        steps = tuple(s for s in steps if s != "features_spark")
    sizes = [round(float(m) * args.base) for m in args.sizes.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        results: dict[int, dict[str, Any]] = {}
        for items in sizes:
            results[items] = measure_size(items, Path(tmp), steps)
            # Written after every size: a long run stopped early keeps what it measured.
            report = write_report(results, args, load, with_spark, time.perf_counter() - started)
    print(markdown(results, report["summary"], args.target))
    print(f"load average before {load}, after {os.getloadavg()}; {report['seconds']:.0f} s")


def write_report(
    results: dict[int, dict[str, Any]],
    args: argparse.Namespace,
    load: tuple[float, float, float],
    with_spark: bool,
    seconds: float,
) -> dict[str, Any]:
    """``scaling.json``, ``scaling.md`` and (with two sizes or more) ``scaling.png``."""
    summary = summarise(results, args.target)
    report = {
        "sizes": results,
        "summary": summary,
        "target": args.target,
        "spark_engine": with_spark,
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "seconds": seconds,
    }
    (args.out / "scaling.json").write_text(json.dumps(report, indent=1))
    (args.out / "scaling.md").write_text(markdown(results, summary, args.target))
    if len(results) > 1:
        plot(results, args.out / "scaling.png")
    return report


if __name__ == "__main__":
    main()
