"""Benchmark: batch validation of declarations (target: 1M declaration items in at most 60 s).

Times ``validate_frame(frame, "declarations")`` (type parsing, re-send detection, the Great
Expectations suite, reasons and risk-signal warnings) on the synthetic world's declaration feed.
Baseline measured in the same run on the same frame: the same contract rules written as plain
vectorised pandas (``notna`` / ``isin`` / ``str.fullmatch`` / comparisons / ``duplicated``),
i.e. what the checks cost without a framework, without reasons and without warnings. Prints both
times, rows per second, the ratio crisk / baseline, peak memory, and whether the target is met.
The two must flag the same rows; a difference is printed, since a fast baseline that checks less
would make the ratio meaningless.

    .venv/bin/python benchmarks/validation.py --declarations 1000000
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from data_contracts.definitions import RecordContract, contract_for
from data_contracts.validate import validate_frame
from world.generate import WorldConfig, generate_world

TARGET_SECONDS = 60.0
TARGET_ROWS = 1_000_000


def _text(column: pd.Series) -> pd.Series:
    """Stripped text, blank as missing (what a CSV cell means)."""
    text = column.astype("string").str.strip()
    return text.mask(text == "")


def baseline_bad_rows(frame: pd.DataFrame, contract: RecordContract) -> np.ndarray:
    """Boolean mask of rows breaking any rule of ``contract``, in plain vectorised pandas.

    Scalar fields only, as the declaration contract has (list fields would need a loop, which
    is not the point of a floor). The frame is the world's, already typed.
    """
    bad = np.zeros(len(frame), dtype=bool)
    values: dict[str, pd.Series] = {}
    for spec in contract.fields:
        if spec.type == "map" or spec.name not in frame:
            continue
        column = frame[spec.name]
        if spec.type == "str":
            column = _text(column)
        elif spec.type in ("int", "float"):
            column = pd.to_numeric(column, errors="coerce")
        values[spec.name] = column
        present = column.notna().to_numpy()
        if spec.required:
            bad |= ~present
        codes = spec.code_set()
        if codes is not None:
            bad |= present & ~column.isin(list(codes)).to_numpy()
        if spec.pattern is not None:
            bad |= present & ~column.str.fullmatch(spec.pattern).fillna(False).to_numpy(bool)
        if spec.max_length is not None:
            bad |= present & (column.str.len() > spec.max_length).fillna(False).to_numpy(bool)
        for bound, fails in ((spec.gt, column.le), (spec.ge, column.lt)):
            if bound is not None:
                bad |= fails(bound).fillna(False).to_numpy(bool)
        if spec.le is not None:
            bad |= column.gt(spec.le).fillna(False).to_numpy(bool)
    for pair in contract.pair_rules:
        left, right = values[pair.left], values[pair.right]
        ok = left.ge(right) if pair.or_equal else left.gt(right)
        bad |= (left.notna() & right.notna() & ~ok).to_numpy(bool)
    for cond in contract.conditional_required:
        applies = values[cond.when_field].isin(list(cond.when_values)).to_numpy(bool)
        bad |= applies & values[cond.field].isna().to_numpy()
    for cond_max in contract.conditional_max:
        applies = values[cond_max.when_field].isin(list(cond_max.when_values)).to_numpy(bool)
        bad |= applies & values[cond_max.field].gt(cond_max.limit).fillna(False).to_numpy(bool)
    # Re-sends: every copy of a key but the last is quarantined (exact or superseded).
    bad |= frame.duplicated(list(contract.key), keep="last").to_numpy()
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--declarations", type=int, default=TARGET_ROWS)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    contract = contract_for("declarations")

    started = time.perf_counter()
    frame = generate_world(WorldConfig(seed=args.seed, declarations=args.declarations)).declarations
    generated = time.perf_counter() - started
    rows = len(frame)
    # Pay Great Expectations' import and first-run set-up outside the timing: a long-running
    # ingest pays them once, and they would otherwise dominate small runs.
    validate_frame(frame.head(100), "declarations")

    started = time.perf_counter()
    result = validate_frame(frame, "declarations")
    crisk = time.perf_counter() - started

    started = time.perf_counter()
    baseline_bad = baseline_bad_rows(frame, contract)
    baseline = time.perf_counter() - started

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"declaration rows: {rows:,}  (world generated in {generated:.1f} s)")
    print(
        f"crisk validate_frame: {crisk:.1f} s  ({rows / crisk:,.0f} rows/s; "
        f"{result.n_valid:,} valid, {result.n_quarantined:,} quarantined)"
    )
    print(
        f"baseline (plain pandas, same rules): {baseline:.2f} s  ({rows / baseline:,.0f} rows/s; "
        f"{int(baseline_bad.sum()):,} rows flagged)"
    )
    if int(baseline_bad.sum()) != result.n_quarantined:
        print("WARNING: the baseline flags a different number of rows than crisk")
    print(f"ratio crisk / baseline: {crisk / baseline:.1f}x")
    print(f"peak memory (whole process, incl. the world): {peak_gb:.2f} GB")
    scaled = crisk * TARGET_ROWS / rows
    verdict = "met" if scaled <= TARGET_SECONDS else "MISSED"
    note = "" if rows >= TARGET_ROWS else f" (extrapolated linearly: {scaled:.0f} s for 1M)"
    print(f"target {TARGET_SECONDS:.0f} s for 1M rows: {verdict}{note}")


if __name__ == "__main__":
    main()
