"""Benchmark and regression check: building the feature tables of a workspace.

Builds every view's table from the workspace's data store into a fresh directory, reports the
time and peak memory, and, with ``--reference DIR`` (tables written earlier, e.g. by the code
before a refactor, on the same data store), checks that every reference table is reproduced:
same rows, columns, dtypes and values (sorted by key and snapshot time; relative tolerance
1e-12 for sums of money, which the builders add up in integer cents).

    .venv/bin/python benchmarks/feature_tables.py --home /tmp/ws --reference /tmp/old_tables
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def _build(home: Path, out: Path) -> tuple[float, dict[str, int]]:
    from data_contracts.workspace import Workspace
    from features.tables import FeatureTableInputs, build_feature_tables

    workspace = Workspace.at(home)
    started = time.perf_counter()
    tables = build_feature_tables(
        FeatureTableInputs(
            declarations=workspace.record_file("declarations"),
            control_results=workspace.record_file("control-results"),
            operators=workspace.record_file("operators"),
            ens=workspace.record_file("ens"),
            control_results_history=workspace.control_results_history_file,
        ),
        out,
    )
    seconds = time.perf_counter() - started
    rows = {view: len(pd.read_parquet(path)) for view, path in tables.written.items()}
    for view, missing in tables.skipped.items():
        print(f"  skipped {view}: no {', '.join(sorted(missing))}")
    return seconds, rows


def _compare(reference: Path, built: Path) -> list[str]:
    problems = []
    for old_path in sorted(reference.glob("*.parquet")):
        new_path = built / old_path.name
        if not new_path.exists():
            problems.append(f"{old_path.stem}: not built")
            continue
        old, new = pd.read_parquet(old_path), pd.read_parquet(new_path)
        order = [old.columns[0], "event_timestamp"]
        old = old.sort_values(order).reset_index(drop=True)
        new = new.sort_values(order).reset_index(drop=True)
        try:
            pd.testing.assert_frame_equal(old, new, check_exact=False, rtol=1e-12, atol=1e-9)
        except AssertionError as error:
            problems.append(f"{old_path.stem}: {error}")
            continue
        print(f"  {old_path.stem}: {len(old):,} rows × {old.shape[1]} columns identical")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="Workspace with a data store.")
    parser.add_argument("--reference", type=Path, help="Tables to reproduce (same data store).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        seconds, rows = _build(args.home, Path(tmp) / "tables")
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(
            f"built {len(rows)} tables ({sum(rows.values()):,} rows) in {seconds:.1f} s, "
            f"peak memory {peak_gb:.2f} GB"
        )
        if args.reference is None:
            return 0
        problems = _compare(args.reference, Path(tmp) / "tables")
    for problem in problems:
        print(f"DIFFERENT {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
