"""Group commit of audit entries: one writer thread, one transaction for concurrent requests.

A score is answered only once its audit entry is committed (and synced, with
``CRISK_SERVE_AUDIT_FSYNC``). Committing on the event loop blocked every other request for the
length of a sync; committing each request on its own thread made the requests queue for
SQLite's write lock. Instead each request hands its entries to one writer thread and waits for
them; the writer appends everything handed in meanwhile with one ``append_many`` call (one
transaction, one sync) and wakes each request when its own entries are durable. While the
writer waits for the disk (without the GIL), the event loop reads, validates and scores the
next requests.

A failed group is retried request by request, so one unwritable entry fails its own request
only.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["AuditEntries", "AuditWriter"]

logger = logging.getLogger(__name__)

AuditEntries = Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]
_MAX_GROUP = 64  # entries per transaction: bounds the time one commit holds the write lock


class _Appending(Protocol):
    def append(self, header: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> int: ...


@dataclass
class _Pending:
    entries: AuditEntries
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[int]]

    def resolve(self, numbers: list[int]) -> None:
        self._wake(numbers, None)

    def fail(self, error: BaseException) -> None:
        self._wake(None, error)

    def _wake(self, numbers: list[int] | None, error: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, numbers, error)
        except RuntimeError:  # the event loop is closed (shutdown): nobody waits any more
            logger.debug("audit entries written after their request's event loop closed")


def _settle(
    future: asyncio.Future[list[int]], numbers: list[int] | None, error: BaseException | None
) -> None:
    if future.done():  # the request was cancelled (client gone): its entries are written anyway
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(numbers or [])


class AuditWriter:
    """Writes the entries of concurrent requests to ``store`` in shared transactions."""

    def __init__(self, store: _Appending) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    async def write(self, entries: AuditEntries) -> list[int]:
        """Append ``entries`` (one request's, in order); returns once they are committed."""
        if not entries:
            return []
        loop = asyncio.get_running_loop()
        pending = _Pending(entries, loop, loop.create_future())
        self._queue.put(pending)
        return await pending.future

    def close(self, timeout: float = 30.0) -> None:
        """Write what was handed in, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _append(self, entries: AuditEntries) -> list[int]:
        many = getattr(self.store, "append_many", None)
        if many is not None:
            return list(many(entries))
        # A store without batched appends: one transaction per entry, still off the event loop.
        return [self.store.append(header, items) for header, items in entries]

    def _next_group(self) -> tuple[list[_Pending], bool]:
        """The requests waiting now (at least one, blocking for it); and whether to stop."""
        first = self._queue.get()
        if first is None:
            return [], True
        group = [first]
        count = len(first.entries)
        while count < _MAX_GROUP:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is None:
                return group, True
            group.append(pending)
            count += len(pending.entries)
        return group, False

    def _run(self) -> None:
        stop = False
        while not stop:
            group, stop = self._next_group()
            if group:
                self._write_group(group)

    def _write_group(self, group: list[_Pending]) -> None:
        try:
            numbers = self._append([entry for pending in group for entry in pending.entries])
        except BaseException as error:
            if len(group) == 1:
                group[0].fail(error)
                return
            logger.warning("audit group of %d requests failed (%s): one by one", len(group), error)
            for pending in group:
                self._write_group([pending])
            return
        start = 0
        for pending in group:
            pending.resolve(numbers[start : start + len(pending.entries)])
            start += len(pending.entries)
