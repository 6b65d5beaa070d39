"""Benchmark: point-in-time feature retrieval for training, and online retrieval for serving.

Offline (targets: 1M training rows in ≤ 60 s, peak memory ≤ 6 GB): crisk's retrieval (a DuckDB
ASOF join per view, derived from the Feast FeatureService) against, as the baseline measured in
the same run, a plain pandas ``merge_asof`` of the same views with the same ttl and the same
on-demand transformations. Each method runs in its own process so its peak memory is its own;
the two results are compared value for value. Optionally Feast's own ``get_historical_features``
(DuckDB offline store) on a smaller sample, for reference.

Online: p50/p99 latency of feature retrieval for batches of 100 entity rows, from Feast's SQLite
online store directly and through crisk's reader (cold cache and warm cache).

    .venv/bin/python benchmarks/feature_retrieval.py --home /tmp/ws1m --rows 1000000 \
        --feast-rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.services import SERVICE_FOR_SUBJECT

SERVICE = SERVICE_FOR_SUBJECT["declaration"]


def _entities(home: Path, rows: int, seed: int = 0) -> pd.DataFrame:
    from features.retrieval import entity_frame

    records = pd.read_parquet(home / "data" / "declarations.parquet")
    rng = np.random.default_rng(seed)
    picked = records.iloc[rng.integers(0, len(records), rows)] if rows != len(records) else records
    return entity_frame(picked.reset_index(drop=True), "declaration")


def _pandas_asof(home: Path, entities: pd.DataFrame) -> pd.DataFrame:
    """The baseline: one pandas merge_asof per view, then the same on-demand transformations."""
    from features.config import FeatureStoreSettings
    from features.retrieval import service_layout
    from features.store import feature_store

    layout = service_layout(feature_store(FeatureStoreSettings(home=home)), SERVICE)
    frame = entities.copy()
    frame["__row"] = np.arange(len(frame))
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True).astype(
        "datetime64[ns, UTC]"
    )
    ordered = frame.sort_values("event_timestamp", kind="stable")
    for view in layout.views:
        key = view.join_keys[0]
        table = pd.read_parquet(view.path, columns=[key, view.timestamp_field, *view.features])
        table = table.rename(columns={view.timestamp_field: "__fts"}).sort_values("__fts")
        table["__fts"] = pd.to_datetime(table["__fts"], utc=True).astype("datetime64[ns, UTC]")
        joined = pd.merge_asof(
            ordered[["__row", "event_timestamp", key]],
            table,
            left_on="event_timestamp",
            right_on="__fts",
            by=key,
            direction="backward",
        )
        if view.ttl is not None:
            stale = joined["__fts"] + view.ttl < joined["event_timestamp"]
            joined.loc[stale, list(view.features)] = np.nan
        for feature in view.features:
            ordered[feature] = joined[feature].to_numpy(dtype=float)
    result = ordered.sort_values("__row").drop(columns="__row").reset_index(drop=True)
    for odfv in layout.on_demand:
        outputs = odfv.feature_transformation.udf({c: result[c].to_numpy() for c in result.columns})
        for name, values in outputs.items():
            result[name] = np.asarray(values, dtype=float)
    return result


def _run_method(method: str, home: Path, rows: int, out: Path) -> None:
    from features.config import FeatureStoreSettings
    from features.retrieval import historical_features

    entities = _entities(home, rows)
    settings = FeatureStoreSettings(home=home)
    started = time.perf_counter()
    if method == "crisk":
        frame = historical_features(settings, SERVICE, entities, engine="duckdb")
    elif method == "feast":
        frame = historical_features(settings, SERVICE, entities, engine="feast")
    else:
        frame = _pandas_asof(home, entities)
    seconds = time.perf_counter() - started
    frame.reset_index(drop=True).to_parquet(out.with_suffix(".parquet"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    out.write_text(json.dumps({"seconds": seconds, "peak_gb": peak, "rows": len(frame)}))


def _child(method: str, home: Path, rows: int, folder: Path) -> dict:
    out = folder / f"{method}.json"
    subprocess.run(
        [sys.executable, __file__, "--home", str(home), "--rows", str(rows), "--method", method,
         "--out", str(out)],
        check=True,
    )  # fmt: skip
    return json.loads(out.read_text())


def _online(home: Path, iterations: int) -> dict[str, tuple[float, float]]:
    from features.config import FeatureStoreSettings
    from features.online import OnlineFeatureReader

    entities = _entities(home, 100 * iterations, seed=1)
    settings = FeatureStoreSettings(home=home)
    reader = OnlineFeatureReader(settings, SERVICE)
    service = reader.store.get_feature_service(SERVICE)
    batches = [entities.iloc[i * 100 : (i + 1) * 100] for i in range(iterations)]
    timings: dict[str, list[float]] = {"feast_direct": [], "crisk_cold": [], "crisk_warm": []}
    for batch in batches:
        rows = batch.drop(columns=["event_timestamp"]).to_dict(orient="records")
        started = time.perf_counter()
        reader.store.get_online_features(features=service, entity_rows=rows).to_dict()
        timings["feast_direct"].append(time.perf_counter() - started)
        columns = {c: batch[c].to_numpy() for c in batch.columns}
        reader._cache.clear()
        started = time.perf_counter()
        reader.get(columns)
        timings["crisk_cold"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reader.get(columns)
        timings["crisk_warm"].append(time.perf_counter() - started)
    return {
        name: (float(np.percentile(t, 50) * 1000), float(np.percentile(t, 99) * 1000))
        for name, t in timings.items()
    }


def _measure(result: dict) -> str:
    return f"{result['seconds']:.1f} s, peak {result['peak_gb']:.2f} GB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="A materialised workspace.")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--feast-rows", type=int, default=0, help="Also time Feast itself.")
    parser.add_argument("--online-iterations", type=int, default=200)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("FEAST_USAGE", "False")
    if args.method:
        _run_method(args.method, args.home, args.rows, args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        crisk = _child("crisk", args.home, args.rows, folder)
        baseline = _child("pandas", args.home, args.rows, folder)
        left = pd.read_parquet(folder / "crisk.parquet")
        right = pd.read_parquet(folder / "pandas.parquet")
        features = [c for c in right.columns if c in left.columns and right[c].dtype.kind == "f"]
        same = all(
            np.allclose(left[c].to_numpy(), right[c].to_numpy(), equal_nan=True, rtol=1e-9)
            for c in features
        )
        time_ratio = crisk["seconds"] / baseline["seconds"]
        memory_ratio = crisk["peak_gb"] / baseline["peak_gb"]
        lines = [
            f"point-in-time retrieval, {args.rows:,} entity rows, {len(features)} features",
            f"  crisk (DuckDB ASOF from the FeatureService): {_measure(crisk)}",
            f"  baseline (pandas merge_asof, same views):    {_measure(baseline)}",
            f"  ratio crisk / baseline: time {time_ratio:.2f}x, memory {memory_ratio:.2f}x",
            f"  identical values: {same}",
            f"  target <= 60 s: {_verdict(crisk['seconds'] <= 60)}",
            f"  target <= 6 GB: {_verdict(crisk['peak_gb'] <= 6)}",
        ]
        if args.feast_rows:
            feast = _child("feast", args.home, args.feast_rows, folder)
            lines.append(f"  Feast itself, {args.feast_rows:,} rows: {_measure(feast)}")
        print("\n".join(lines))
    online = _online(args.home, args.online_iterations)
    print(f"online retrieval, {args.online_iterations} batches of 100 entity rows, p50 / p99 ms")
    for name, (p50, p99) in online.items():
        print(f"  {name:>13}: {p50:7.2f} / {p99:7.2f}")


if __name__ == "__main__":
    main()
