"""Reading record files (CSV or Parquet) with errors that name the file and the problem.

A file that cannot be read at all is *unusable input* (``crisk validate`` exits 2): it is not a
row problem, and no row of it can be validated. Everything readable goes on to the contract.
"""

from __future__ import annotations

import csv
import mmap
from collections import Counter
from pathlib import Path

import pandas as pd

__all__ = ["UnusableInput", "read_records"]


class UnusableInput(Exception):
    """The input cannot be validated at all; the message says why, naming the file."""


def _csv_header(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            return next(reader)
        except StopIteration:
            raise UnusableInput(f"{path}: the file is empty (no header row)") from None


def _nul_offset(path: Path) -> int:
    """Offset of the first NUL byte, or -1: text files have none, and pandas' CSV reader would
    silently cut a value at one."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"\x00")


def _read_csv(path: Path) -> pd.DataFrame:
    offset = _nul_offset(path)
    if offset >= 0:
        raise UnusableInput(
            f"{path}: a NUL byte at offset {offset}: not a text file (UTF-16, or binary?)"
        )
    try:
        header = _csv_header(path)
    except UnicodeDecodeError as error:
        raise UnusableInput(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start}); re-encode the file as UTF-8"
        ) from None
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicated:
        raise UnusableInput(f"{path}: duplicated column(s) {', '.join(duplicated)}")
    csv.field_size_limit(1 << 30)  # huge fields are reported by the contract, not by the reader
    try:
        return pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding="utf-8-sig",
            encoding_errors="strict",
            engine="c",
            on_bad_lines="error",
        )
    except UnicodeDecodeError as error:
        raise UnusableInput(
            f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start}); re-encode the file as UTF-8"
        ) from None
    except pd.errors.ParserError as error:
        raise UnusableInput(f"{path}: malformed CSV ({error})") from None
    except pd.errors.EmptyDataError:
        raise UnusableInput(f"{path}: the file is empty") from None


def read_records(path: Path | str) -> pd.DataFrame:
    """Read a CSV (UTF-8, header row) or Parquet file of records."""
    path = Path(path)
    if not path.exists():
        raise UnusableInput(f"{path}: no such file")
    if path.is_dir():
        raise UnusableInput(f"{path}: is a directory, expected a .csv or .parquet file")
    if path.stat().st_size == 0:
        raise UnusableInput(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises many types for damaged files
            raise UnusableInput(
                f"{path}: unreadable Parquet ({type(error).__name__}: {error})"
            ) from None
        duplicated = sorted(n for n, c in Counter(map(str, frame.columns)).items() if c > 1)
        if duplicated:
            raise UnusableInput(f"{path}: duplicated column(s) {', '.join(duplicated)}")
        return frame
    if suffix in (".csv", ".txt"):
        return _read_csv(path)
    raise UnusableInput(f"{path}: unsupported file type {suffix or '(none)'}; use .csv or .parquet")
