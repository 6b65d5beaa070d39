"""Faults: a feature store lost after start, kill -9 during a stream of scores, and the data
store under two concurrent ingests or a writer killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from data_contracts.definitions import contract_for
from data_contracts.workspace import Workspace
from pipelines.ingest import data_file, ingest_file
from serving.audit import AuditLog, load_public_key
from tests.conftest import RunningServer, start_server, stop_server
from tests.integration.workspaces import copy_workspace
from world.generate import World

pytestmark = pytest.mark.integration

CRISK = str(Path(sys.executable).parent / "crisk")


@pytest.fixture(scope="module")
def private_server(
    trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, Path]]:
    """A server on a private copy: these tests break its feature store and kill it."""
    home = copy_workspace(trained_workspace, tmp_path_factory.mktemp("faults") / "home")
    server = start_server(home, home.parent / "server.log")
    yield server, home
    stop_server(server.process, sig=signal.SIGKILL)


def _declarations(home: Path, n: int, seed: int) -> list[dict[str, Any]]:
    frame = pd.read_parquet(home / "data" / "declarations.parquet").sample(n, random_state=seed)
    fields = contract_for("declarations").field_names
    return json.loads(frame[fields].to_json(orient="records", date_format="iso"))


def _score(server: RunningServer, items: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/score",
        json={"declarations": items},
        headers={"Authorization": f"Bearer {server.keys['scorer']}"},
        timeout=60,
    )


def test_a_feature_store_lost_after_start_degrades_and_recovers(
    private_server: tuple[RunningServer, Path],
) -> None:
    server, home = private_server
    assert _score(server, _declarations(home, 2, seed=1)).status_code == 200
    assert httpx.get(f"{server.url}/readyz").json()["feature_store"] == "ok"

    # The store goes away under the running service: its tables vanish (kept aside first).
    online = home / "feast" / "online_store.db"
    kept = home.parent / "online_store.kept.db"
    with sqlite3.connect(online) as source, sqlite3.connect(kept) as copy:
        source.backup(copy)
    with sqlite3.connect(online) as store:
        tables = [r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            store.execute(f'DROP TABLE "{table}"')
    try:
        time.sleep(2.5)  # the reader notices a changed store every 2 s and drops its cache
        response = _score(server, _declarations(home, 5, seed=2))
        assert response.status_code == 200, response.text
        for result in response.json()["results"]:
            assert "features_unavailable" in result["warnings"]
            assert 0.0 <= result["overall"] <= 1.0
        ready = httpx.get(f"{server.url}/readyz").json()
        assert ready["status"] == "degraded" and ready["feature_store"] == "unavailable"
        assert "feature store unavailable" in ready["feature_store_problem"]
    finally:
        with sqlite3.connect(kept) as copy, sqlite3.connect(online) as store:
            copy.backup(store)
    time.sleep(2.5)
    response = _score(server, _declarations(home, 3, seed=3))
    assert response.status_code == 200
    assert all("features_unavailable" not in r["warnings"] for r in response.json()["results"])
    assert httpx.get(f"{server.url}/readyz").json()["feature_store"] == "ok"


def test_kill_9_during_a_stream_of_scores_keeps_every_answered_score_in_a_valid_chain(
    private_server: tuple[RunningServer, Path],
) -> None:
    server, home = private_server
    answered: list[str] = []
    stop = threading.Event()
    bodies = [_declarations(home, 3, seed=10 + i) for i in range(20)]

    def stream() -> None:
        with httpx.Client(timeout=30) as client:
            i = 0
            while not stop.is_set():
                try:
                    response = client.post(
                        f"{server.url}/score",
                        json={"declarations": bodies[i % len(bodies)]},
                        headers={"Authorization": f"Bearer {server.keys['scorer']}"},
                    )
                except httpx.HTTPError:
                    return  # the server is gone: this request was never answered
                if response.status_code == 200:
                    answered.extend(r["scoring_id"] for r in response.json()["results"])
                i += 1

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 60
    while len(answered) < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_server(server.process, sig=signal.SIGKILL)
    stop.set()
    thread.join(timeout=30)
    assert len(answered) >= 60, "the stream was answered before the kill"

    log = AuditLog(Workspace.at(home).audit_dir / "audit.sqlite")
    key = load_public_key(home / "keys" / "audit-signing-key.pem.pub")
    verification = log.verify(key)
    assert verification.ok, verification.problem
    missing = [scoring_id for scoring_id in answered if log.get(scoring_id) is None]
    assert not missing, f"{len(missing)} answered scores are not in the audit log"


# --- the data store ------------------------------------------------------------------------------


def _parts(world: World, directory: Path) -> list[Path]:
    """The small world's declarations in three files of disjoint declarations."""
    frame = world.declarations
    ids = frame["declaration_id"].drop_duplicates().sort_values().to_numpy()
    paths = []
    for part, chosen in enumerate((ids[0::3], ids[1::3], ids[2::3])):
        path = directory / f"part{part}.parquet"
        frame[frame["declaration_id"].isin(set(chosen))].to_parquet(path, index=False)
        paths.append(path)
    return paths


def _stored_keys(workspace: Workspace) -> set[tuple[str, int]]:
    stored = pd.read_parquet(data_file(workspace, "declarations"))
    return set(zip(stored["declaration_id"], stored["item_number"].astype(int), strict=True))


def _keys(path: Path, workspace: Workspace) -> set[tuple[str, int]]:
    scratch = Workspace.at(workspace.home.parent / f"scratch-{path.stem}")
    ingest_file(scratch, "declarations", path)
    return _stored_keys(scratch)


def test_two_concurrent_ingests_lose_nothing(small_world: World, tmp_path: Path) -> None:
    base, left, right = _parts(small_world, tmp_path)
    workspace = Workspace.at(tmp_path / "ws")
    ingest_file(workspace, "declarations", base)
    env = {**os.environ, "CRISK_HOME": str(workspace.home)}
    runs = [
        subprocess.Popen(
            [CRISK, "ingest", "declarations", str(path)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for path in (left, right)
    ]
    for run in runs:
        output = run.communicate(timeout=300)[0].decode()
        assert run.returncode in (0, 1), output
    expected = _keys(base, workspace) | _keys(left, workspace) | _keys(right, workspace)
    assert _stored_keys(workspace) == expected
    assert not list(workspace.data_dir.glob(".*.tmp")), "no temporary file is left behind"


_KILLED_WRITER = """
import sys, time
from pathlib import Path
import pandas as pd
from data_contracts.workspace import Workspace
from pipelines.ingest import ingest_file

original = pd.DataFrame.to_parquet

def slow_half_write(self, path, *args, **kwargs):
    original(self, path, *args, **kwargs)
    if "quarantine" in str(path) or "declarations.parquet" not in str(path):
        return
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])  # half a file on disk...
    print("WRITING", flush=True)
    time.sleep(60)  # ...when kill -9 arrives

pd.DataFrame.to_parquet = slow_half_write
ingest_file(Workspace.at(sys.argv[1]), "declarations", Path(sys.argv[2]))
"""


def test_a_writer_killed_mid_write_leaves_the_store_intact(
    small_world: World, tmp_path: Path
) -> None:
    base, extra, _ = _parts(small_world, tmp_path)
    workspace = Workspace.at(tmp_path / "ws")
    ingest_file(workspace, "declarations", base)
    stored = data_file(workspace, "declarations")
    before = stored.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(workspace.home), str(extra)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert writer.stdout is not None
    deadline = time.monotonic() + 300
    line = b""
    while b"WRITING" not in line and time.monotonic() < deadline:
        line = writer.stdout.readline()
        assert line or writer.poll() is None, "the writer ended before writing"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)

    assert stored.read_bytes() == before, "the stored file is the old one, whole"
    pd.read_parquet(stored)  # and readable
    # The next ingest (a new process: the dead one's lock went with it) completes the work.
    result = ingest_file(workspace, "declarations", extra)
    assert result.n_valid > 0
    assert _stored_keys(workspace) == _keys(base, workspace) | _keys(extra, workspace)
    assert not list(workspace.data_dir.glob(".*.tmp")), "the dead writer's temporary file is gone"
