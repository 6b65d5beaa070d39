"""Benchmark: the request path in process (no HTTP), with reasons on every item.

``Scorer.score`` of the served bundle on declarations from the workspace: contract warnings,
online features (cache warm), every area model, channels and five reasons for every item
(``explain=True``) at batch 1 and 100, and at batch 1000 as served (reasons for the items that
are not green). Prints items/s and latency percentiles; run it with two checkouts' interpreters
on the same workspace, alternating, to compare versions on a shared machine:

    .venv/bin/python benchmarks/scoring.py --home .crisk
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _items(home: Path, n: int) -> list[dict]:
    from data_contracts.definitions import contract_for
    from data_contracts.models import DeclarationItem

    frame = pd.read_parquet(home / "data" / "declarations.parquet").sample(n, random_state=5)
    records = json.loads(
        frame[contract_for("declarations").field_names].to_json(orient="records", date_format="iso")
    )
    return [dict(DeclarationItem.model_validate(r)) for r in records]


def _time(scorer, items: list[dict], batch: int, explain: bool, seconds: float) -> list[float]:
    latencies = []
    stop = time.monotonic() + seconds
    i = 0
    while time.monotonic() < stop:
        chunk = items[i : i + batch]
        if len(chunk) < batch:
            i, chunk = 0, items[:batch]
        started = time.perf_counter()
        scorer.score(chunk, [], explain=explain)
        latencies.append(time.perf_counter() - started)
        i += batch
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=8.0, help="Duration per case.")
    args = parser.parse_args()
    home = args.home.resolve()
    os.environ.setdefault("BENTOML_HOME", str(home / "bentoml"))
    from features.online import OnlineFeatureReader
    from serving.bundle import load_bundle
    from serving.config import ServingSettings
    from serving.scorer import Scorer

    settings = ServingSettings(home=home)
    started = time.perf_counter()
    bundle = load_bundle(settings)
    load_seconds = time.perf_counter() - started
    services = {s: bundle.feature_service(s) for s in bundle.subjects()}
    readers = {
        s: OnlineFeatureReader(settings.features, name)
        for s, name in services.items()
        if name is not None
    }
    scorer = Scorer(bundle, readers, settings)
    items = _items(home, 3000)
    scorer.score(items[:1000], [], explain=True)  # warm the feature cache and the code paths
    print(f"bundle {bundle.tag} loaded in {load_seconds:.1f} s")
    for batch, explain in ((1, True), (100, True), (1000, False)):
        latencies = _time(scorer, items, batch, explain, args.seconds)
        rate = batch * len(latencies) / sum(latencies)
        print(
            f"  batch {batch:>4} explain={explain!s:<5}: {rate:8.0f} items/s, "
            f"p50 {1000 * statistics.median(latencies):7.2f} ms, "
            f"p99 {1000 * float(np.percentile(latencies, 99)):7.2f} ms"
        )


if __name__ == "__main__":
    main()
