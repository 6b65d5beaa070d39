"""How the service process is started and stopped: one command line for the CLI, tests and
benchmarks, and the worker's watch on its parent.

``crisk serve`` replaces itself with ``bentoml serve`` (:func:`exec_server`), so a SIGTERM or
SIGINT sent to the ``crisk serve`` pid reaches BentoML's arbiter, which stops its workers and
exits: nothing stays behind. BentoML starts each worker in a session of its own, so a SIGKILL of
the arbiter (or of the whole process group of ``crisk serve``) would leave the worker serving,
reparented to init; :func:`exit_with_parent`, called in the worker, asks the kernel for a
SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``) and, where that is not available or
the parent died before the request, a watcher thread notices the new parent and stops the worker.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PARENT_VARIABLE", "SERVICE", "exec_server", "exit_with_parent", "serve_command"]

SERVICE = "serving.service:CustomsRiskScorer"
# The pid of the process that started the server (the arbiter, once `crisk serve` has exec'd).
PARENT_VARIABLE = "CRISK_SERVE_ARBITER_PID"
_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 0.5
_GRACE_SECONDS = 10.0

logger = logging.getLogger(__name__)


def serve_command(host: str, port: int) -> list[str]:
    """``bentoml serve`` of the crisk service with this interpreter (the project's venv)."""
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]


def exec_server(host: str, port: int, env: Mapping[str, str], cwd: Path) -> None:
    """Replace this process with the server (never returns): signals reach it directly."""
    command = serve_command(host, port)
    environment = {**env, PARENT_VARIABLE: str(os.getpid())}
    os.chdir(cwd)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, environment)


def _request_death_signal() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def _stop_self(reason: str) -> None:
    logger.warning("%s: stopping this worker", reason)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_GRACE_SECONDS)
    os._exit(1)  # the graceful stop did not finish: leave anyway, the port must be freed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_server_worker() -> bool:
    return any("_bentoml_impl.worker" in argument for argument in sys.orig_argv)


def exit_with_parent() -> None:
    """Make this process (a server worker) exit when its parent, the arbiter, is gone.

    Does nothing elsewhere (the service class built in a test or a notebook process).
    """
    if not _is_server_worker():
        return
    parent = os.getppid()
    _request_death_signal()
    recorded = os.environ.get(PARENT_VARIABLE, "")
    if recorded.isdigit() and int(recorded) != parent and not _alive(int(recorded)):
        # The arbiter died before the death signal was asked for: the kernel will not send it.
        threading.Thread(
            target=_stop_self, args=(f"the server's arbiter (pid {recorded}) is gone",), daemon=True
        ).start()
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_SECONDS)
        _stop_self(f"the server's arbiter (pid {parent}) is gone")

    threading.Thread(target=watch, name="crisk-parent-watch", daemon=True).start()
