"""Benchmark: one day's import into a year of stored declarations, file against partitioned.

A synthetic world's declarations (``--declarations`` items over 52 weeks) are stored without
their last day in both record layouts (``data_contracts.record_store.write_records``); then the
last day's items are ingested (validation and merge, what ``crisk ingest`` runs) into a fresh
copy of each store, ``--repeat`` times. The file layout reads and rewrites the whole file; the
partitioned layout reads the stored keys and adds a part to the day's month. Prints the median time
of each and their ratio (measured in the same run), and the bytes each wrote.

    .venv/bin/python benchmarks/record_append.py --declarations 150000 --repeat 3
    .venv/bin/python benchmarks/record_append.py --declarations 150000 --day late-in-month
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _written_bytes(data: Path, since: float) -> int:
    return sum(p.stat().st_size for p in data.rglob("*.parquet") if p.stat().st_mtime >= since)


def main() -> None:
    from data_contracts.record_store import write_records
    from data_contracts.workspace import Workspace
    from pipelines.ingest import ingest_frame
    from world.generate import WorldConfig, generate_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declarations", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--day",
        choices=("last", "late-in-month"),
        default="last",
        help="the day imported: the world's last (it opens a month), or the last 28th of a "
        "month (its month already holds four weeks of items)",
    )
    args = parser.parse_args()

    world = generate_world(WorldConfig(seed=7, declarations=args.declarations))
    items = world.declarations
    days = items["lodged_at"].dt.normalize()
    chosen = days.max() if args.day == "last" else days[days.dt.day == 28].max()
    stored, day = items[days != chosen], items[days == chosen]
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for layout in ("file", "partitioned"):
            write_records(Workspace.at(root / layout), "declarations", stored, layout)
        ingest_frame(Workspace.at(root / "warm"), "declarations", day.head(50), "warm-up")
        seconds: dict[str, list[float]] = {"file": [], "partitioned": []}
        written: dict[str, int] = {}
        for _ in range(args.repeat):
            for layout in ("file", "partitioned"):
                home = root / f"{layout}-run"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(root / layout, home)
                started_at = time.time()
                started = time.perf_counter()
                ingest_frame(Workspace.at(home), "declarations", day, "day", layout=layout)  # type: ignore[arg-type]
                seconds[layout].append(time.perf_counter() - started)
                written[layout] = _written_bytes(home / "data", started_at)
    file, parts = (statistics.median(seconds[k]) for k in ("file", "partitioned"))
    print(f"store: {len(stored):,} items; the day's import: {len(day):,} items")
    print(f"file:        {file:.2f} s (median of {args.repeat}), {written['file']:,} bytes written")
    print(f"partitioned: {parts:.2f} s, {written['partitioned']:,} bytes written")
    print(f"ratio file / partitioned: {file / parts:.2f}")


if __name__ == "__main__":
    main()
