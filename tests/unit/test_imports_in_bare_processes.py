"""Libraries must import in processes whose ``__main__`` has no file (``python -c``, pytest-xdist
workers, embedded interpreters): pyspark.sql.connect, which Great Expectations imports when
pyspark is installed, calls ``sys.exit(0)`` there unless its grpc dependencies are present."""

from __future__ import annotations

import subprocess
import sys


def test_great_expectations_imports_under_python_c() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import great_expectations; print('imported')"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "imported", done.stderr[-2000:]
