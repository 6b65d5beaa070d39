"""The SQL engines the feature tables run on: DuckDB in process, or Spark (the scale profile).

The builders generate one SQL text per table from their view's definition (windows, measures);
an engine registers the records as named relations and runs that text. The two dialects share
everything the tables use (window range frames, ``::DOUBLE`` casts, ``UNION ALL``) except the
name of the exact, interpolating quantile: ``quantile_function``. Each engine also writes a
finished table as a hive-partitioned Parquet dataset (``write_partitioned``), the scale
profile's offline layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import duckdb
import pandas as pd

__all__ = ["DuckDBEngine", "SqlEngine", "TableEngine"]

TableEngine = Literal["duckdb", "spark"]


class SqlEngine(Protocol):
    """What the builders need of an engine."""

    name: TableEngine
    # Exact quantile with linear interpolation between the closest ranks, (column, fraction).
    quantile_function: str

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """Make ``frame`` readable as the relation ``name`` (replacing an earlier one)."""

    def query(self, sql: str) -> pd.DataFrame:
        """Run ``sql`` and return its rows in the order the query gives."""

    def write_partitioned(self, frame: pd.DataFrame, directory: Path, column: str) -> None:
        """Write ``frame`` as Parquet under the new ``directory``, one hive partition
        (``column=value/``) per value of ``column``, which the files themselves do not hold."""

    def close(self) -> None:
        """Release what the engine holds for this build."""


class DuckDBEngine:
    """One in-process DuckDB connection (UTC), the single-machine default."""

    name: TableEngine = "duckdb"
    quantile_function = "quantile_cont"

    def __init__(self) -> None:
        self._con = duckdb.connect()
        self._con.execute("SET TimeZone='UTC'")

    def register(self, name: str, frame: pd.DataFrame) -> None:
        self._con.register(name, frame)

    def query(self, sql: str) -> pd.DataFrame:
        return self._con.execute(sql).df()

    def write_partitioned(self, frame: pd.DataFrame, directory: Path, column: str) -> None:
        self._con.register("__partitioned_table", frame)
        target = str(directory).replace("'", "''")
        try:
            self._con.execute(
                f"COPY (SELECT * FROM __partitioned_table) TO '{target}' "
                f"(FORMAT parquet, PARTITION_BY ({column}))"
            )
        finally:
            self._con.unregister("__partitioned_table")

    def close(self) -> None:
        self._con.close()
