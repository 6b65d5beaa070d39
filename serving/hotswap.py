"""Moving a running service to a new champion without a restart and without a failed request.

`crisk promote` (and `crisk retrain`, and training's first champion of an area) rewrite the
workspace's champion marker (:attr:`data_contracts.workspace.Workspace.champion_marker`). Each
service worker checks it every ``reload_check_seconds`` in a background thread; when it
changed, the thread builds the new bundle from the registry and a new scorer beside the old one
— nothing on the request path waits for it — and then replaces the worker's scorer in a single
assignment. A request holds the scorer it started with until it is answered, so every request
is scored entirely by one bundle, old or new. If the new bundle cannot be built, the old one
keeps serving and ``/readyz`` says why.

Online features need nothing here: the feature reader drops its cache when the online store is
re-materialised (``features.online``); a new bundle on another feature service gets new readers.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ChampionWatcher", "read_marker"]

logger = logging.getLogger(__name__)


def read_marker(marker: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(marker.read_text()))
    except (OSError, ValueError):
        return None


class ChampionWatcher:
    """Polls the marker; on a change calls ``reload`` (which builds and installs the new scorer).

    ``reload`` runs in the watcher's thread; an exception leaves the current scorer in place and
    is reported through ``on_problem``.
    """

    def __init__(
        self,
        marker: Path,
        reload: Callable[[], None],
        *,
        interval: float,
        on_problem: Callable[[str], None] = logger.warning,
    ) -> None:
        self.marker = marker
        self.reload = reload
        self.interval = interval
        self.on_problem = on_problem
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.marker.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def check(self) -> bool:
        """Reload if the marker changed since the last check; True when it did."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return False
        self._seen = stamp
        try:
            self.reload()
        except Exception as error:  # the old champion keeps serving
            self.on_problem(f"could not move to the new champion: {type(error).__name__}: {error}")
        return True

    def start(self) -> ChampionWatcher:
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()
