"""Progress bars for the command line: ``rich`` bars with counts and ETA on a terminal.

:class:`TerminalProgress` is what the CLI passes as ``progress`` to every long step (see
``data_contracts.progress`` for the protocol): a call with a message starts a phase (a line with
a spinner and the time it takes), ``advance(task, done, total)`` draws a bar with ``done/total``,
the elapsed time and the time remaining. When the output is not a terminal (a pipe, a log file,
CI), the same calls print plain lines: each phase once, and each counted task when it starts
and when it ends, so logs stay short and readable.
"""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from data_contracts.progress import CountedProgress, advance, quiet

__all__ = ["CountedProgress", "TerminalProgress", "advance", "quiet"]


class _Remaining(TimeRemainingColumn):
    """Time left for counted tasks; nothing for a phase (its length is not known)."""

    def render(self, task: Task) -> Text:
        if not task.fields.get("counted"):
            return Text("")
        return super().render(task)


class TerminalProgress:
    """Phases and counted tasks of long steps, drawn on ``console`` (stderr)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = console.is_terminal and not console.is_dumb_terminal
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._phase: TaskID | None = None
        self._started: dict[str, float] = {}

    def __enter__(self) -> TerminalProgress:
        if self.live:
            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[count]}"),
                TimeElapsedColumn(),
                _Remaining(),
                console=self.console,
            )
            self._bars.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close_phase()
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def _close_phase(self) -> None:
        if self._bars is not None and self._phase is not None:
            self._bars.update(self._phase, total=1, completed=1, count="done")
        self._phase = None

    def __call__(self, message: str) -> None:
        """A new phase of the step (the previous one is done)."""
        self._close_phase()
        if self._bars is None:
            self.console.print(f"[cyan]•[/cyan] {message}", highlight=False)
            return
        self._phase = self._bars.add_task(message, total=None, count="", counted=False)

    def advance(self, task: str, done: int, total: int) -> None:
        """``done`` of ``total`` units of ``task`` finished."""
        if self._bars is None:
            self._plain(task, done, total)
            return
        if task not in self._tasks:
            self._close_phase()
            self._tasks[task] = self._bars.add_task(task, total=total, counted=True, count="")
        self._bars.update(
            self._tasks[task], completed=done, total=total, count=f"{done:,}/{total:,}"
        )

    def _plain(self, task: str, done: int, total: int) -> None:
        if task not in self._started:
            self._started[task] = time.perf_counter()
            self.console.print(f"[cyan]•[/cyan] {task} ({total:,})", highlight=False)
        elif done >= total:
            seconds = time.perf_counter() - self._started[task]
            self.console.print(f"  {task}: {done:,}/{total:,} in {seconds:.1f} s", highlight=False)
