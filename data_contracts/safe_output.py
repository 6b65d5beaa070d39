"""Writing untrusted text into files a person opens: CSV cells that are not formulas, HTML that
is text.

Records carry free text from outside (goods descriptions, names, notes, national attributes). A
cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a formula
by spreadsheet programs (CSV injection), so every CSV crisk writes goes through
:func:`csv_safe_frame`, which prefixes such text with an apostrophe (the OWASP advice; the
apostrophe is not shown by spreadsheets). Numbers are left alone: ``-3.5`` stays a number.
HTML is escaped with :func:`html_text`.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "csv_cell", "csv_safe_frame", "html_text"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """``value``, or text that a spreadsheet shows as text and never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells (and column names) are safe to write as CSV."""
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(csv_cell)
    safe.columns = [csv_cell(str(c)) for c in safe.columns]
    return safe


def html_text(value: Any) -> str:
    """``value`` as HTML text (quotes included), never markup."""
    return html.escape(str(value), quote=True)
