"""Benchmark: the cost of writing reasons (``serving.reasons.top_reasons``) per explained row.

Five reasons per row from one model of the served bundle (its spec and reference sample), with
the reference profile and calibration as the scorer passes them. ``--compare`` loads another
checkout's ``serving/reasons.py`` beside this one and times it on the same rows, in the same
process, alternating (the fair comparison on a shared machine):

    .venv/bin/python benchmarks/reasons.py --home .crisk --compare /work/main/serving/reasons.py
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _load(path: Path):  # another checkout's reasons module, by file
    spec = importlib.util.spec_from_file_location("other_reasons", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="A workspace with a bundle.")
    parser.add_argument("--model", default="crisk_declaration_financial")
    parser.add_argument("--compare", type=Path, help="Another checkout's serving/reasons.py.")
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from serving.reasons import ReferenceProfile, top_reasons

    folder = next((args.home / "bentoml" / "models" / "crisk-bundle").glob(f"*/{args.model}"))
    spec = json.loads((folder / "spec.json").read_text())
    reference = pd.read_parquet(folder / "reference_sample.parquet")
    started = time.perf_counter()
    profile = ReferenceProfile.from_frame(
        reference, spec["features"], spec["labels"], set(spec["vocabularies"])
    )
    print(f"reference profile of {len(reference):,} rows: {time.perf_counter() - started:.2f} s")
    names = spec["features"]
    rows = reference.head(args.rows)[names]
    values = [[None if v != v else v for v in row] for row in rows.itertuples(index=False)]
    contributions = np.random.default_rng(1).normal(0, 0.3, (len(values), len(names) + 1))
    group = names.index("hs_chapter") if "hs_chapter" in names else None
    candidates = {"this checkout": top_reasons}
    if args.compare:
        candidates["compared"] = _load(args.compare).top_reasons
    for _ in range(args.rounds):
        timings = []
        for name, function in candidates.items():
            rich = "profile" in inspect.signature(function).parameters
            started = time.perf_counter()
            for j, row in enumerate(values):
                extra = (
                    {
                        "profile": profile,
                        "group": None if group is None else row[group],
                        "calibration": spec["calibration"],
                    }
                    if rich
                    else {}
                )
                function(contributions[j], names, row, spec["labels"], "financial", 5, **extra)
            timings.append(f"{name} {1e6 * (time.perf_counter() - started) / len(values):.0f} µs")
        print("per explained row: " + ", ".join(timings))


if __name__ == "__main__":
    main()
