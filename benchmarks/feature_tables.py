"""Benchmark and regression check: building the feature tables of a workspace.

Builds every view's table from the workspace's data store into a fresh directory, reports the
time and peak memory, and, with ``--reference DIR`` (tables written earlier, e.g. by the code
before a refactor, on the same data store), checks that every reference table is reproduced:
same rows, columns, dtypes and values (sorted by key and snapshot time; relative tolerance
1e-12 for sums of money, which the builders add up in integer cents).

    .venv/bin/python benchmarks/feature_tables.py --home /tmp/ws --reference /tmp/old_tables

``--engine spark`` builds on Spark (``--spark-master``, default ``local[2]``); with the DuckDB
tables of the same data store as ``--reference`` it is the engines' parity check at any size.
The time includes starting the Spark session. ``--layout partitioned`` writes every table as a
hive-partitioned directory (``event_month=YYYY-MM``); either layout is compared with either.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _build(
    home: Path, out: Path, engine: str, master: str, layout: str
) -> tuple[float, dict[str, int]]:
    from features.tables import workspace_table_rows

    started = time.perf_counter()
    rows = workspace_table_rows(
        home,
        engine,  # type: ignore[arg-type]
        out_dir=out,
        spark_master=master,
        layout=layout,  # type: ignore[arg-type]
    )
    return time.perf_counter() - started, rows


def _compare(reference: Path, built: Path) -> list[str]:
    from data_contracts.offline_data import existing_dataset, read_dataset

    problems = []
    hidden = (".", "_")  # staging paths, Spark's markers
    names = {p.name.removesuffix(".parquet") for p in reference.iterdir()}
    for name in sorted(n for n in names if not n.startswith(hidden)):
        old_path, new_path = existing_dataset(reference, name), existing_dataset(built, name)
        if old_path is None:
            continue
        if new_path is None:
            problems.append(f"{name}: not built")
            continue
        old, new = read_dataset(old_path), read_dataset(new_path)
        for frame in (old, new):  # pandas writes nanoseconds, the engines' Parquet microseconds
            frame["event_timestamp"] = frame["event_timestamp"].dt.as_unit("us")
        order = [old.columns[0], "event_timestamp"]
        old = old.sort_values(order).reset_index(drop=True)
        new = new.sort_values(order).reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(old, new, check_exact=False, rtol=1e-12, atol=1e-9)
        except AssertionError as error:
            problems.append(f"{name}: {error}")
            continue
        print(f"  {name}: {len(old):,} rows × {old.shape[1]} columns identical")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="Workspace with a data store.")
    parser.add_argument("--reference", type=Path, help="Tables to reproduce (same data store).")
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--layout", choices=["file", "partitioned"], default="file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seconds, rows = _build(
            args.home, Path(tmp) / "tables", args.engine, args.spark_master, args.layout
        )
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(
            f"{args.engine} ({args.layout}): built {len(rows)} tables "
            f"({sum(rows.values()):,} rows) "
            f"in {seconds:.1f} s, peak memory {peak_gb:.2f} GB"
        )
        if args.reference is None:
            return 0
        problems = _compare(args.reference, Path(tmp) / "tables")
    for problem in problems:
        print(f"DIFFERENT {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
