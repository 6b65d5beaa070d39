"""Soak: `crisk serve` under a steady stream of /score and /feedback for minutes, on loopback.

Starts the service on a free loopback port of a trained workspace, sends ``--score-rate``
scoring requests (``--batch`` declaration items each) and ``--feedback-rate`` feedback requests
per second, each on its own schedule (a slow answer does not bunch the next requests), for
``--minutes``, then stops the server and itself. Reported per window: requests, errors, p50 and
p99 latency of /score; the worker's resident memory every ``--rss-every`` seconds; and the
first against the last minute. No memory trend and no error are what a pass looks like.

    .venv/bin/python benchmarks/soak.py --home .crisk --minutes 5

The workspace's audit log and feedback store grow by what the soak sends: use a copy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its own name could shadow a
# package: drop that entry before importing the project.
_HERE = Path(__file__).resolve().parent
# The checkout root instead (benchmarks.local_server is shared by the HTTP benchmarks).
sys.path = [str(_HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks.local_server import (  # noqa: E402
    declaration_bodies,
    free_port,
    start_server,
    stop_server,
    wait_ready,
)

KEYS = {"scorer": "soak-scorer", "officer": "soak-officer"}


@dataclass
class Sample:
    at: float
    route: str
    seconds: float
    status: int


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


def _control(number: int, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "control_id": f"SOAK-{os.getpid()}-{number}", "subject_type": "declaration",
        "subject_id": subject["subject_id"], "item_number": subject["item_number"],
        "controlled_at": "2027-06-01T10:00:00Z", "control_type": "documentary",
        "selection_reason": "random", "outcome": "no_irregularity",
        "revenue_recovered_eur": 0.0, "seizure": False,
    }  # fmt: skip


def _steady(rate: float, until: float, send: Any) -> None:
    """Call ``send(i)`` ``rate`` times a second until ``until`` (monotonic), on schedule."""
    interval = 1.0 / rate
    next_at = time.monotonic()
    i = 0
    while next_at < until:
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(i)
        i += 1
        next_at += interval


def _drive(url: str, args: argparse.Namespace, home: Path, recorder: Recorder) -> None:
    bodies = declaration_bodies(home, args.batch, 200, seed=1)
    scored: list[dict[str, Any]] = []
    start = time.monotonic()
    until = start + args.minutes * 60

    def score(i: int, client: httpx.Client) -> None:
        began = time.perf_counter()
        try:
            response = client.post(f"{url}/score", content=bodies[i % len(bodies)])
            status = response.status_code
            if status == 200 and len(scored) < 10_000:
                scored.extend(response.json()["results"][:1])
        except httpx.HTTPError:
            status = 0
        recorder.add(Sample(time.monotonic() - start, "score", time.perf_counter() - began, status))

    def feedback(i: int, client: httpx.Client) -> None:
        if not scored:
            return
        began = time.perf_counter()
        body = {"control_results": [_control(i, scored[i % len(scored)])]}
        try:
            status = client.post(f"{url}/feedback", json=body).status_code
        except httpx.HTTPError:
            status = 0
        recorder.add(
            Sample(time.monotonic() - start, "feedback", time.perf_counter() - began, status)
        )

    def loop(rate: float, send: Any, role: str) -> None:
        headers = {"Authorization": f"Bearer {KEYS[role]}", "content-type": "application/json"}
        with httpx.Client(timeout=30, headers=headers) as client:
            _steady(rate, until, lambda i: send(i, client))

    threads = [
        threading.Thread(target=loop, args=(args.score_rate, score, "scorer")),
        threading.Thread(target=loop, args=(args.feedback_rate, feedback, "officer")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _sample_rss(pid: int, recorder: Recorder, every: float, stop: threading.Event) -> None:
    start = time.monotonic()
    while not stop.is_set():
        try:
            workers = psutil.Process(pid).children(recursive=True)
            rss = sum(w.memory_info().rss for w in workers)
        except psutil.NoSuchProcess:
            return
        recorder.rss.append((time.monotonic() - start, rss))
        stop.wait(every)


def _window(samples: list[Sample], route: str, lo: float, hi: float) -> dict[str, Any]:
    chosen = [s for s in samples if s.route == route and lo <= s.at < hi]
    latencies = np.array([s.seconds for s in chosen]) * 1000
    return {
        "from_s": lo,
        "requests": len(chosen),
        "errors": sum(1 for s in chosen if s.status != 200),
        "p50_ms": float(np.percentile(latencies, 50)) if len(chosen) else None,
        "p99_ms": float(np.percentile(latencies, 99)) if len(chosen) else None,
    }


def _report(recorder: Recorder, args: argparse.Namespace) -> dict[str, Any]:
    total = args.minutes * 60
    windows = [
        _window(recorder.samples, "score", lo, lo + args.window)
        for lo in np.arange(0, total, args.window)
    ]
    rss = recorder.rss
    times = np.array([t for t, _ in rss])
    values = np.array([v for _, v in rss]) / 2**20
    steady = times > 60  # after the first minute's warm-up (caches, allocator)
    slope = (
        float(np.polyfit(times[steady], values[steady], 1)[0] * 60) if steady.sum() > 2 else None
    )
    return {
        "command": " ".join(sys.argv),
        "minutes": args.minutes,
        "score_rate": args.score_rate,
        "feedback_rate": args.feedback_rate,
        "batch": args.batch,
        "score": {
            "requests": sum(1 for s in recorder.samples if s.route == "score"),
            "errors": sum(1 for s in recorder.samples if s.route == "score" and s.status != 200),
            "first_minute": _window(recorder.samples, "score", 0, 60),
            "last_minute": _window(recorder.samples, "score", total - 60, total),
            "windows": windows,
        },
        "feedback": {
            "requests": sum(1 for s in recorder.samples if s.route == "feedback"),
            "errors": sum(1 for s in recorder.samples if s.route == "feedback" and s.status != 200),
            "first_minute": _window(recorder.samples, "feedback", 0, 60),
            "last_minute": _window(recorder.samples, "feedback", total - 60, total),
        },
        "worker_rss_mb": {
            "start": float(values[0]) if len(values) else None,
            "after_first_minute": float(values[steady][0]) if steady.any() else None,
            "end": float(values[-1]) if len(values) else None,
            "max": float(values.max()) if len(values) else None,
            "trend_mb_per_minute_after_warmup": slope,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="A trained workspace (a copy).")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--score-rate", type=float, default=10.0, help="/score requests a second")
    parser.add_argument("--feedback-rate", type=float, default=2.0, help="/feedback a second")
    parser.add_argument("--batch", type=int, default=10, help="declaration items per /score")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per report window")
    parser.add_argument("--rss-every", type=float, default=5.0)
    parser.add_argument("--out", type=Path, help="Write the results here as JSON.")
    args = parser.parse_args()
    home = args.home.resolve()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(home, port, home / "soak-server.log", KEYS)
    recorder = Recorder()
    stop = threading.Event()
    try:
        wait_ready(url, process)
        sampler = threading.Thread(
            target=_sample_rss, args=(process.pid, recorder, args.rss_every, stop), daemon=True
        )
        sampler.start()
        _drive(url, args, home, recorder)
    finally:
        stop.set()
        stop_server(process)
    result = _report(recorder, args)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
