"""Benchmark: ``crisk import`` of a 1M-row national file (example format (a)), target ≤ 60 s.

Writes the example file (a) of a synthetic world of ``--items`` declaration items (semicolons,
decimal commas, Latin-1, local dates and currency, national codes; not timed), then times, each
in its own process on the same file:

- baseline: a plain ``pandas.read_csv`` of the file (same delimiter and encoding, every column
  as text): what merely reading it costs;
- crisk: ``crisk import --mapping examples/national_a.yaml FILE`` into an empty workspace: read,
  apply every rule, validate declarations and control results against the contracts
  (quarantine with reasons), merge into the data store, write the dataset manifest.

Prints both wall times, the ratio crisk / baseline, each process's peak memory (RSS of the
process tree, sampled), the rows stored and quarantined, and whether the target is met.

    .venv/bin/python benchmarks/import_speed.py --items 1000000 [--keep DIR [--reuse]]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the examples' generator lives beside the packages

from examples.make_example_files import EXAMPLES, write_national_a  # noqa: E402
from world.generate import WorldConfig, generate_world  # noqa: E402

TARGET_SECONDS = 60.0

BASELINE = """
import sys, pandas as pd
frame = pd.read_csv(sys.argv[1], sep=";", dtype=str, encoding="latin-1", keep_default_na=False)
print(len(frame))
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS (GB) of the process tree, and stdout of ``command``.

    On a shared machine the wall time grows with the others' load; the CPU time (user + system
    of the process and its children) much less: both are printed.
    """
    cpu_before = _children_cpu()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:
        process = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.STDOUT)
        parent = psutil.Process(process.pid)
        peak = 0
        while process.poll() is None:
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        stdout.seek(0)
        output = stdout.read().decode(errors="replace")
    if process.returncode not in (0, 1):  # 1: some rows quarantined, as the world plants them
        raise RuntimeError(f"{command[0]} failed ({process.returncode}):\n{output[-3000:]}")
    return seconds, _children_cpu() - cpu_before, peak / 1e9, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="Keep the file and workspace here.")
    parser.add_argument(
        "--reuse", action="store_true", help="Reuse the file already in --keep (same --items)."
    )
    args = parser.parse_args()

    folder = args.keep or Path(tempfile.mkdtemp(prefix="crisk-import-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "national_a.csv"
    began = time.perf_counter()
    if not (args.reuse and path.exists()):
        world = generate_world(WorldConfig(seed=args.seed, declarations=args.items, ens=1_000))
        write_national_a(world, path, args.seed)
        del world
    size = path.stat().st_size / 1e6
    print(f"file: {path} ({size:,.0f} MB), ready in {time.perf_counter() - began:.1f} s")
    home = folder / "workspace"
    shutil.rmtree(home, ignore_errors=True)  # an empty workspace every run

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as `make`: compiled imports, not recompiled ones
    baseline_s, baseline_cpu, baseline_gb, rows = _run(
        [sys.executable, "-c", BASELINE, str(path)], env
    )
    env["CRISK_HOME"] = str(home)
    crisk = str(Path(sys.executable).with_name("crisk"))
    mapping = EXAMPLES / "national_a.yaml"
    crisk_s, crisk_cpu, crisk_gb, output = _run(
        [crisk, "import", "--mapping", str(mapping), str(path)], env
    )
    manifest = json.loads((home / "data" / "dataset.json").read_text())

    print(f"rows in the file: {int(rows.strip()):,}")
    print(output.strip())
    load = os.getloadavg()[0]
    print(f"machine load (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    print(
        f"baseline pandas.read_csv: {baseline_s:6.1f} s wall {baseline_cpu:6.1f} s CPU   "
        f"peak {baseline_gb:.2f} GB"
    )
    print(
        f"crisk import:             {crisk_s:6.1f} s wall {crisk_cpu:6.1f} s CPU   "
        f"peak {crisk_gb:.2f} GB"
    )
    print(
        f"ratio crisk / baseline:   {crisk_s / baseline_s:6.1f}x wall "
        f"{crisk_cpu / baseline_cpu:6.1f}x CPU"
    )
    print(f"dataset: {manifest['dataset']} ({len(manifest['extra'])} national attributes)")
    met = "met" if crisk_s <= TARGET_SECONDS else "NOT met"
    print(f"target ≤ {TARGET_SECONDS:.0f} s for {args.items:,} rows: {met}")


if __name__ == "__main__":
    main()
