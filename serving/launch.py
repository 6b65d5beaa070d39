"""How the service process is started: one command line for the CLI, the tests and benchmarks."""

from __future__ import annotations

import sys

__all__ = ["SERVICE", "serve_command"]

SERVICE = "serving.service:CustomsRiskScorer"


def serve_command(host: str, port: int) -> list[str]:
    """``bentoml serve`` of the crisk service with this interpreter (the project's venv)."""
    return [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", host, "--port", str(port)]
