"""Benchmark: generating the synthetic world (target: 1M declaration items in at most 60 s).

Baseline measured in the same run: drawing the same number of rows of random columns of the
same width with numpy and writing them to Parquet (the floor any generator pays). Prints the
world's time, the floor's time and their ratio, and peak memory.

    .venv/bin/python benchmarks/world_generation.py --declarations 1000000
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from world.generate import WorldConfig, generate_world, write_world


def floor_seconds(rows: int, columns: int, out: Path) -> float:
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"c{i}": rng.random(rows) for i in range(columns)})
    frame["text"] = rng.integers(0, 1000, rows).astype(str)
    frame.to_parquet(out / "floor.parquet")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--declarations", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        started = time.perf_counter()
        world = generate_world(WorldConfig(seed=args.seed, declarations=args.declarations))
        generated = time.perf_counter() - started
        write_world(world, out / "world")
        total = time.perf_counter() - started
        rows = len(world.declarations) + len(world.ens) + len(world.control_results)
        columns = world.declarations.shape[1]
        floor = floor_seconds(rows, columns, out)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"declaration items: {args.declarations:,}  (rows written: {rows:,})")
    print(f"world generate + write: {total:.1f} s  (generate {generated:.1f} s)")
    print(f"baseline (random columns of the same size + parquet): {floor:.1f} s")
    print(f"ratio world / baseline: {total / floor:.1f}x")
    print(f"peak memory: {peak_gb:.1f} GB")
    verdict = "met" if total <= 60 or args.declarations < 1_000_000 else "MISSED"
    print(f"target 60 s for 1M items: {verdict}")


if __name__ == "__main__":
    main()
