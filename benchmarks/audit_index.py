"""The audit writer's cost per scored item: subject index in its own file against inside the log.

Two logs in one run, each filled to ``--prefill`` items first, then appended to in turns with
the same 100-item entries (the size of a scored batch's entry: inputs and 60 features by
column, the items' response fields), fsync on as the service runs it:

- ``index file``: this code (serving.audit_subjects): the writer appends rows in order; the
  subject index is brought up to date in bulk, as the service's checkpoint thread does every
  two seconds (its cost is counted here, in the same process);
- ``index in the log``: the same log with the B-tree on ``(subject_type, subject_id)`` that the
  log kept before, maintained by every append.

Printed: CPU time (user + system, the whole process) and wall time per item, and the ratio.

    .venv/bin/python benchmarks/audit_index.py --prefill 300000
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
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402

import serving.audit as audit_module  # noqa: E402
from serving.audit import AuditLog, new_scoring_ids  # noqa: E402
from serving.audit_subjects import index_pending  # noqa: E402

_ITEMS = 100
_INDEX_EVERY = 2.0  # seconds, as the service's checkpoint thread


def _entry(rng: np.random.Generator) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One 100-item entry shaped like a scored batch's (about 1.5 KB per item)."""
    ids = [f"26ES{rng.integers(10**13, 10**14)}" for _ in range(_ITEMS)]
    header = {
        "created_at": "2026-12-02T06:00:00+00:00",
        "subject_type": "declaration",
        "bundle": "crisk-bundle:benchmark",
        "thresholds": {"select": 0.1, "red": 0.3, "revenue": 900.0, "random_rate": 0.005},
        "inputs": {
            "declaration_id": ids,
            "goods_description": ["cotton t-shirts for men, knitted"] * _ITEMS,
            **{f"input_{k}": [f"X{k}{i}" for i in range(_ITEMS)] for k in range(20)},
        },
        "features": {f"feature_{k}": rng.normal(size=_ITEMS) for k in range(60)},
    }
    items = [
        {"subject_type": "declaration", "subject_id": ids[i], "item_number": 1,
         "event_time": "2026-12-01T10:00:00+00:00", "scores": {"financial": 0.0173},
         "overall": 0.0173, "expected_revenue_eur": 0.04, "channel": "green",
         "random_selection": False, "selection": {"probability": 0.005, "reason": None},
         "primary_area": "financial", "reasons": [], "warnings": [],
         "model_version": {"financial": "crisk_declaration_financial/1"},
         "feature_service": "customs_risk_declaration_v2"}
        for i in range(_ITEMS)
    ]  # fmt: skip
    return header, items


def _fresh(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**item, "scoring_id": s}
        for item, s in zip(items, new_scoring_ids(len(items)), strict=True)
    ]


def _open(folder: Path, inner_index: bool) -> AuditLog:
    log = AuditLog(folder / "audit.sqlite", fsync=True)
    if inner_index:
        log._connect().execute(
            "CREATE INDEX IF NOT EXISTS audit_items_subject_bench"
            " ON audit_items (subject_type, subject_id)"
        )
    return log


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _append_round(folder: Path, inner_index: bool, count: int, seed: int) -> tuple[float, float]:
    """``count`` entries appended to the log in ``folder`` by this process; its CPU (every
    thread: the WAL checkpoints and the indexing too) and wall time."""
    if inner_index:  # the log as it was: no index file to bring up to date
        audit_module.index_pending = lambda log_path, limit=0: 0
    rng = np.random.default_rng(seed)
    entries = [_entry(rng) for _ in range(20)]
    log = _open(folder, inner_index)
    started, cpu_started = time.perf_counter(), _cpu()
    for k in range(count):
        header, items = entries[k % len(entries)]
        log.append(header, _fresh(items))
    time.sleep(_INDEX_EVERY * 1.5)  # the checkpoint thread's round after the last append
    return _cpu() - cpu_started, time.perf_counter() - started - _INDEX_EVERY * 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefill", type=int, default=300_000, help="Items in each log first.")
    parser.add_argument("--entries", type=int, default=600, help="Entries timed per log.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating rounds per log.")
    parser.add_argument("--round", nargs=3, help=argparse.SUPPRESS)  # folder inner seed (child)
    args = parser.parse_args()
    if args.round:
        folder, inner, seed = args.round
        spent, took = _append_round(
            Path(folder), inner == "1", args.entries // args.rounds, int(seed)
        )
        print(json.dumps({"cpu": spent, "wall": took}))
        return
    root = Path(tempfile.mkdtemp(prefix="crisk-audit-index-"))
    variants = {"index file": False, "index in the log": True}
    rng = np.random.default_rng(7)
    entries = [_entry(rng) for _ in range(20)]
    for name, inner in variants.items():
        folder = root / name.replace(" ", "_")
        folder.mkdir()
        log = _open(folder, inner)
        for k in range(args.prefill // _ITEMS):
            header, items = entries[k % len(entries)]
            log.append(header, _fresh(items))
        index_pending(log.path, limit=10**9)
    cpu = dict.fromkeys(variants, 0.0)
    wall = dict.fromkeys(variants, 0.0)
    for k in range(args.rounds):
        for name, inner in variants.items() if k % 2 == 0 else list(variants.items())[::-1]:
            folder = root / name.replace(" ", "_")
            child = [sys.executable, __file__, "--entries", str(args.entries), "--rounds",
                     str(args.rounds), "--round", str(folder), str(int(inner)), str(k)]  # fmt: skip
            measured = json.loads(subprocess.run(child, check=True, capture_output=True).stdout)
            cpu[name] += measured["cpu"]
            wall[name] += measured["wall"]
    items_timed = (args.entries // args.rounds) * args.rounds * _ITEMS
    print(
        f"audit appends, {_ITEMS}-item entries, fsync on, logs prefilled with "
        f"{args.prefill:,} items, {args.entries} entries each in {args.rounds} alternating "
        f"rounds ({os.cpu_count()} cores)"
    )
    for name in variants:
        print(
            f"  {name:>18}: CPU {1e6 * cpu[name] / items_timed:6.1f} us/item, "
            f"wall {1e6 * wall[name] / items_timed:6.1f} us/item"
        )
    print(
        f"  CPU per item, index in the log / index file: "
        f"{cpu['index in the log'] / cpu['index file']:.2f}x; "
        f"wall: {wall['index in the log'] / wall['index file']:.2f}x"
    )
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
