"""The SQL engines the feature tables run on: DuckDB in process, or Spark (the scale profile).

The builders generate one SQL text per table from their view's definition (windows, measures);
an engine registers the records as named relations and runs that text. The two dialects share
everything the tables use (window range frames, ``::DOUBLE`` casts, ``UNION ALL``) except the
name of the exact, interpolating quantile: ``quantile_function``.
"""

from __future__ import annotations

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

    def close(self) -> None:
        self._con.close()
