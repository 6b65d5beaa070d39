"""How long steps report their progress, in every layer (the CLI draws it; tests log it).

A step takes ``progress``: any callable that accepts a message (``Callable[[str], None]``, as
steps always have). Calling it announces a new phase. A step that knows how much work a phase
has also calls :func:`advance` with counts; a progress object with an ``advance(task, done,
total)`` method (the CLI's bars, ``pipelines.progress``) shows them with an ETA, and a plain
callable gets one line when the task starts, so old callers keep working unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["CountedProgress", "Progress", "advance", "quiet"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@runtime_checkable
class CountedProgress(Protocol):
    """A progress that also shows counts (and so an ETA)."""

    def __call__(self, message: str) -> None: ...

    def advance(self, task: str, done: int, total: int) -> None: ...


def quiet(message: str) -> None:
    """The default progress: phases go to the debug log."""
    logger.debug(message)


def advance(progress: Progress, task: str, done: int, total: int) -> None:
    """Report that ``done`` of ``total`` units of ``task`` are finished (0 when it starts)."""
    if isinstance(progress, CountedProgress):
        progress.advance(task, done, total)
    elif done == 0:
        progress(f"{task} ({total:,})" if total > 1 else task)
