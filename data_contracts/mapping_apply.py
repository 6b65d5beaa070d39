"""Applying a mapping to a file's rows: declaration items and control results (spec §6).

Every rule is vectorised. A source column is read as text, stripped, and factorised into codes
over its distinct values; padding, prefixes, maps, number and date parsing run once per distinct
value and are spread back to the rows by the codes, so a million rows of codes and dates cost a
few array operations. Problems the mapping is responsible for (a column the file does not
have, a value outside a ``map``, a date that does not fit its ``format``, a number in a numeric
``extra`` attribute that is not one) are collected with the first offending rows and raised
together as a :class:`MappingError` before anything is written. Values the *contract* judges (a
malformed amount, an invalid country) pass through as they are, so the contract quarantines the
row with the field, the rule and the raw value.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from data_contracts.dataset import ExtraAttribute
from data_contracts.definitions import ID_MAX_LENGTH, contract_for
from data_contracts.io import UnusableInput
from data_contracts.mapping import (
    LABEL_TARGETS,
    FieldRule,
    LoadedMapping,
    MappingProblem,
    SourceOptions,
    evaluation_order,
)
from data_contracts.mapping_expression import parse_expression
from data_contracts.values import factorize_text

__all__ = ["MappedRecords", "SourceTable", "apply_mapping", "read_source"]

_SHOWN_ROWS = 5
_DIGITS = re.compile(r"[+-]?[0-9]{1,18}")
_MISS = object()
Path_ = tuple[str, ...]


@dataclass(frozen=True)
class SourceTable:
    """A foreign file's rows, and the number each row has in the file."""

    frame: pd.DataFrame
    row_numbers: np.ndarray  # CSV: the header is row 1, the first data row is row 2
    path: Path


@dataclass
class MappedRecords:
    """What a mapping made of a file: records in the contract's fields, ready to validate."""

    declarations: pd.DataFrame
    declaration_rows: np.ndarray
    control_results: pd.DataFrame
    control_rows: np.ndarray
    extra: list[ExtraAttribute]
    revenue_known: bool
    warnings: list[str] = field(default_factory=list)


# --- reading the file --------------------------------------------------------------------------


def _header(path: Path, options: SourceOptions, encoding: str) -> list[str]:
    try:
        with path.open("r", encoding=encoding, newline="") as handle:
            return next(csv.reader(handle, delimiter=options.delimiter))
    except StopIteration:
        raise UnusableInput(f"{path}: the file is empty (no header row)") from None
    except UnicodeDecodeError as error:
        raise UnusableInput(
            f"{path}: not {options.encoding} text (byte 0x{error.object[error.start]:02x} at "
            f"offset {error.start}); set source.encoding in the mapping"
        ) from None


def _utf8_bytes(path: Path, options: SourceOptions, utf8: bool) -> bytes:
    data = path.read_bytes()
    try:
        if utf8:
            data.decode("utf-8")  # checked here, so the error can say where
            return data.removeprefix(codecs.BOM_UTF8)
        return data.decode(options.encoding).encode("utf-8")
    except UnicodeDecodeError as error:
        raise UnusableInput(
            f"{path}: not {options.encoding} text (byte 0x{error.object[error.start]:02x} at "
            f"offset {error.start}); set source.encoding in the mapping"
        ) from None


def _read_csv(path: Path, options: SourceOptions) -> pd.DataFrame:
    """Every column as text (Arrow strings): codes and ids keep their leading zeros."""
    utf8 = codecs.lookup(options.encoding).name == "utf-8"
    header = [
        name.strip() for name in _header(path, options, "utf-8-sig" if utf8 else options.encoding)
    ]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise UnusableInput(f"{path}: duplicated column(s) {', '.join(duplicated)}")
    try:
        table = pa_csv.read_csv(
            io.BytesIO(_utf8_bytes(path, options, utf8)),
            read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pa_csv.ParseOptions(delimiter=options.delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as error:
        raise UnusableInput(
            f"{path}: malformed CSV ({error}); is the delimiter {options.delimiter!r} right?"
        ) from None
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def read_source(path: Path | str, options: SourceOptions) -> SourceTable:
    """Read a CSV (as text) or Parquet file as the mapping's ``source`` describes it.

    Raises:
        UnusableInput: no such file, not readable in that format or encoding, duplicated columns.
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableInput(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise UnusableInput(f"{path}: the file is empty")
    if options.format == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises many types for damaged files
            raise UnusableInput(
                f"{path}: unreadable Parquet ({type(error).__name__}: {error}); "
                "is source.format right?"
            ) from None
        frame.columns = [str(c).strip() for c in frame.columns]
        first = 1
    else:
        frame = _read_csv(path, options)
        first = 2
    frame = frame.reset_index(drop=True)
    return SourceTable(frame, np.arange(first, first + len(frame)), path)


# --- values ------------------------------------------------------------------------------------


@dataclass
class _Cells:
    """A source column as codes into its distinct stripped, non-blank values (-1 = blank)."""

    codes: np.ndarray
    uniques: np.ndarray  # object array of str
    raw: pd.Series

    def spread(self, per_unique: np.ndarray, blank: Any) -> np.ndarray:
        """Per-row values from per-distinct-value ones (``blank`` where the cell is blank)."""
        sentinel = np.array([blank], dtype=per_unique.dtype)
        return np.concatenate([per_unique, sentinel])[self.codes]

    def rows_where(self, bad_unique: np.ndarray) -> np.ndarray:
        """Row positions whose value is one of the flagged distinct values."""
        return np.flatnonzero(np.append(bad_unique, False)[self.codes])


def _as_text(series: pd.Series) -> pd.Series:
    """A column as text: numbers from Parquet as their digits (1234.0 is the code 1234)."""
    if pd.api.types.is_bool_dtype(series):
        return series.map({True: "true", False: "false"}).astype("object")
    if pd.api.types.is_integer_dtype(series):
        return series.astype("Int64").astype("string").astype("object")
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        if np.all(np.floor(values[finite]) == values[finite]):
            return series.astype("Int64").astype("string").astype("object")
        return series.astype("string").astype("object")
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.map(lambda t: None if pd.isna(t) else t.isoformat()).astype("object")
    return series.astype("object")


def _plain_text(series: pd.Series) -> np.ndarray:
    text = _as_text(series).to_numpy(dtype=object)
    if pd.api.types.infer_dtype(text) not in ("string", "empty"):
        # Odd objects in an object column (numbers among text): their text.
        text = np.array(
            [
                v if v is None or isinstance(v, str) else None if pd.isna(v) else str(v)
                for v in text
            ],
            dtype=object,
        )
    return text


def _cells(series: pd.Series) -> _Cells:
    text: Any = None
    if isinstance(series.dtype, pd.ArrowDtype) and pa.types.is_string(series.dtype.pyarrow_dtype):
        arrow = pa.array(series.array)  # a CSV's columns: already Arrow strings
        if isinstance(arrow, pa.ChunkedArray):
            arrow = arrow.combine_chunks()  # one dictionary for the whole column
    else:
        text = _plain_text(series)
    try:
        if text is not None:
            arrow = pa.array(text, type=pa.string(), from_pandas=True)
        # Arrow strips and dictionary-encodes a million strings in a few hundredths of a second.
        trimmed = pc.utf8_trim_whitespace(arrow)
        encoded = pc.if_else(pc.equal(trimmed, ""), None, trimmed).dictionary_encode()
    except (pa.ArrowException, UnicodeEncodeError):  # e.g. lone surrogates: the slow way
        text = _plain_text(series) if text is None else text
        codes, uniques = factorize_text(text)
        stripped = pd.Series(uniques, dtype=object).str.strip()
        stripped = stripped.where(stripped.ne(""), None).to_numpy(dtype=object)
        merged, distinct = factorize_text(stripped)
        remap = np.append(merged, -1).astype(np.int64)
        return _Cells(remap[codes], distinct, series)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    uniques = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    return _Cells(codes, uniques, series)


def _numbers(texts: np.ndarray, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """Floats from text, and the mask of values that are not finite numbers."""
    try:
        values = pa.array(texts, type=pa.string(), from_pandas=True)
        if decimal == ",":
            values = pc.replace_substring(values, ",", ".")
        # The common case, every value a plain number: Arrow parses them at once.
        numbers = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, UnicodeEncodeError):
        series = pd.Series(texts, dtype=object)
        if decimal == ",":
            series = series.str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
    numbers = np.asarray(numbers, dtype=float)
    return numbers, ~np.isfinite(numbers)


@dataclass
class _Values:
    """One field's per-row values (object, float64 or UTC datetime64[ns]) and what is blank."""

    values: np.ndarray
    missing: np.ndarray

    def floats(self) -> np.ndarray:
        if self.values.dtype.kind == "f":
            return self.values
        return pd.to_numeric(pd.Series(self.values, dtype=object), errors="coerce").to_numpy(
            dtype=float
        )

    def fill(self, other: _Values) -> _Values:
        values = self.values
        if values.dtype != other.values.dtype:
            values = values.astype(object)
            source = other.values.astype(object)
        else:
            values = values.copy()
            source = other.values
        values[self.missing] = source[self.missing]
        return _Values(values, self.missing & other.missing)


def _constant(value: Any, n: int) -> _Values:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return _Values(np.full(n, value, dtype=np.int64), np.zeros(n, dtype=bool))
    if isinstance(value, float):
        return _Values(np.full(n, value), np.full(n, not np.isfinite(value)))
    values = np.full(n, value, dtype=object)
    blank = value is None or (isinstance(value, str) and not value.strip())
    return _Values(values, np.full(n, blank))


# --- the evaluator -----------------------------------------------------------------------------


class _Evaluator:
    """Evaluates rules over one set of rows, collecting the mapping's problems."""

    def __init__(self, loaded: LoadedMapping, frame: pd.DataFrame, rows: np.ndarray) -> None:
        self.loaded = loaded
        self.frame = frame
        self.rows = rows
        self.n = len(frame)
        self.decimal = loaded.mapping.source.decimal
        self.problems: list[MappingProblem] = []
        self._cells: dict[str, _Cells] = {}

    def cells(self, column: str) -> _Cells:
        if column not in self._cells:
            self._cells[column] = _cells(self.frame[column])
        return self._cells[column]

    def fail(
        self, path: Path_, message: str, positions: np.ndarray, values: Sequence[Any] | np.ndarray
    ) -> None:
        shown = tuple(
            (int(self.rows[p]), str(v))
            for p, v in zip(positions[:_SHOWN_ROWS], values, strict=False)
        )
        self.problems.append(self.loaded.problem(path, message, shown, len(positions)))

    def fail_values(self, path: Path_, message: str, cells: _Cells, bad: np.ndarray) -> None:
        positions = cells.rows_where(bad)
        self.fail(path, message, positions, cells.uniques[cells.codes[positions[:_SHOWN_ROWS]]])

    def numbers(self, column: str) -> tuple[np.ndarray, np.ndarray, _Cells]:
        """Per-row floats of a source column, the mask of present non-numbers, the cells."""
        cells = self.cells(column)
        raw = cells.raw
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            values = raw.to_numpy(dtype=float, na_value=np.nan)
            return values, np.isinf(values), cells
        per_unique, bad = _numbers(cells.uniques, self.decimal)
        return cells.spread(per_unique, np.nan), cells.spread(bad, False), cells

    def column_rule(self, path: Path_, rule: FieldRule, kind: str) -> _Values:
        assert rule.column is not None
        cells = self.cells(rule.column)
        blank = cells.codes < 0
        if kind == "timestamp" and pd.api.types.is_datetime64_any_dtype(cells.raw):
            return _Values(_typed_times(cells.raw, rule.timezone), blank)
        if rule.map is not None:
            mapped = np.array([rule.map.get(v, _MISS) for v in cells.uniques], dtype=object)
            miss = np.array([m is _MISS for m in mapped], dtype=bool)
            if miss.any():
                allowed = ", ".join(map(str, list(rule.map)[:12]))
                self.fail_values(
                    (*path, "map"), f"value not in the map (the map has: {allowed})", cells, miss
                )
                mapped[miss] = None
            values = cells.spread(mapped, None)
            return _Values(values, blank | pd.isna(values))
        texts = cells.uniques
        if rule.pad is not None:
            texts = pd.Series(texts, dtype=object).str.rjust(rule.pad, "0").to_numpy(dtype=object)
        if rule.prefix is not None:
            texts = np.array([rule.prefix + t for t in texts], dtype=object)
        if kind == "float":
            return self._amounts(path, rule, cells, texts)
        if kind == "int":
            # Plain digits become numbers (as the contract reads them), the rest stays text for
            # the contract to refuse: the column reaches it typed, not as text and numbers mixed.
            whole = np.array([_DIGITS.fullmatch(t) is not None for t in texts], dtype=bool)
            numbers = np.array(texts, dtype=object)
            numbers[whole] = [int(t) for t in texts[whole]]
            return _Values(cells.spread(numbers, None), blank)
        if kind == "timestamp" and (rule.format is not None or rule.timezone is not None):
            return _Values(self._times(path, rule, cells), blank)
        return _Values(cells.spread(texts, None), blank)

    def _amounts(self, path: Path_, rule: FieldRule, cells: _Cells, texts: np.ndarray) -> _Values:
        raw = cells.raw
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            numbers = raw.to_numpy(dtype=float, na_value=np.nan)
            bad = np.zeros(self.n, dtype=bool)
        else:
            per_unique, bad_unique = _numbers(texts, self.decimal)
            numbers, bad = cells.spread(per_unique, np.nan), cells.spread(bad_unique, False)
        currency = rule.currency
        if currency is not None and currency.rate is not None:
            numbers = numbers / currency.rate
        elif currency is not None and currency.column is not None and currency.rates is not None:
            codes = self.cells(currency.column)
            rates = np.array([currency.rates.get(c, np.nan) for c in codes.uniques], dtype=float)
            unknown = np.isnan(rates)
            if unknown.any():
                self.fail_values(
                    (*path, "currency", "rates"),
                    f"currency not in the rates table ({', '.join(currency.rates)})",
                    codes,
                    unknown,
                )
            per_row = codes.spread(rates, np.nan)
            no_code = (codes.codes < 0) & ~np.isnan(numbers)
            if no_code.any():
                positions = np.flatnonzero(no_code)
                self.fail(
                    (*path, "currency", "column"),
                    "an amount without a currency code",
                    positions,
                    [""] * min(len(positions), _SHOWN_ROWS),
                )
            with np.errstate(divide="ignore", invalid="ignore"):
                numbers = numbers / per_row
        missing = cells.codes < 0
        if bad.any():
            # Not a number: passed on as written, so the contract quarantines the row and says so.
            values = numbers.astype(object)
            values[bad] = cells.spread(texts, None)[bad]
            return _Values(values, missing)
        return _Values(numbers, missing)

    def _times(self, path: Path_, rule: FieldRule, cells: _Cells) -> np.ndarray:
        fmt = rule.format or "ISO8601"
        aware = rule.format is not None and "%z" in rule.format
        parsed = pd.to_datetime(
            pd.Series(cells.uniques, dtype=object), format=fmt, errors="coerce", utc=aware
        )
        bad = parsed.isna().to_numpy()
        if bad.any():
            self.fail_values(
                (*path, "format" if rule.format else "column"),
                f"not a date-time in the format {fmt!r}",
                cells,
                bad,
            )
        if parsed.dt.tz is None:
            zone = rule.timezone or "UTC"
            # An hour that happens twice when clocks go back is read as standard time.
            parsed = parsed.dt.tz_localize(
                zone, ambiguous=np.zeros(len(parsed), dtype=bool), nonexistent="shift_forward"
            )
        utc = parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
        return cells.spread(utc, np.datetime64("NaT", "ns"))

    def expression(self, path: Path_, rule: FieldRule, done: dict[str, _Values]) -> _Values:
        assert rule.expression is not None
        parsed = parse_expression(rule.expression)
        columns: dict[str, np.ndarray] = {}
        bad_input = np.zeros(self.n, dtype=bool)
        shown = np.full(self.n, None, dtype=object)
        for column in parsed.columns:
            numbers, bad, cells = self.numbers(column)
            columns[column] = numbers
            newly = bad & ~bad_input
            shown[newly] = cells.spread(cells.uniques, None)[newly]
            bad_input |= bad
        fields = {name: done[name].floats() for name in parsed.fields}
        result = parsed.evaluate(columns, fields, self.n)
        infinite = np.isinf(result)
        if bad_input.any() or infinite.any():
            values = result.astype(object)
            values[infinite] = "inf"
            values[bad_input] = shown[bad_input]
            return _Values(values, np.isnan(result) & ~bad_input)
        return _Values(result, np.isnan(result))

    def rule(
        self,
        path: Path_,
        rule: FieldRule,
        kind: str,
        done: dict[str, _Values],
        subject_time: np.ndarray | None = None,
    ) -> _Values:
        """One field's values by its rule, with ``default`` / ``default_from`` where blank."""
        source = rule.source
        if source == "column":
            result = self.column_rule(path, rule, kind)
        elif source == "expression":
            result = self.expression(path, rule, done)
        elif source == "offset_days":
            assert subject_time is not None and rule.offset_days is not None
            offset = np.timedelta64(round(rule.offset_days * 86_400), "s").astype("timedelta64[ns]")
            result = _Values(subject_time + offset, np.isnat(subject_time))
        elif source == "default_from":
            assert rule.default_from is not None
            return done[rule.default_from]
        else:
            return _constant(rule.constant_value, self.n)
        if "default" in rule.model_fields_set and result.missing.any():
            result = result.fill(_constant(rule.default, self.n))
        if rule.default_from is not None and result.missing.any():
            result = result.fill(done[rule.default_from])
        return result


# --- declarations, extra attributes, labels ---------------------------------------------------


def _column_problems(loaded: LoadedMapping, frame: pd.DataFrame) -> list[MappingProblem]:
    columns = [str(c) for c in frame.columns]
    problems = []
    for path, column in loaded.mapping.source_columns():
        if column in frame.columns:
            continue
        close = difflib.get_close_matches(column, columns, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        shown = ", ".join(columns[:30]) + (" …" if len(columns) > 30 else "")
        problems.append(
            loaded.problem(path, f"no column {column!r} in the file{hint} (columns: {shown})")
        )
    return problems


def _typed_times(raw: pd.Series, zone: str | None) -> np.ndarray:
    """UTC datetime64[ns] from a typed date-time column (naive ones in ``zone``, else UTC)."""
    times = pd.Series(pd.to_datetime(raw))
    if times.dt.tz is None:
        times = times.dt.tz_localize(
            zone or "UTC", ambiguous=np.zeros(len(times), dtype=bool), nonexistent="shift_forward"
        )
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _series(values: _Values, kind: str) -> pd.Series:
    """The column as the contract reads it fastest: typed where the values allow."""
    array = values.values
    if array.dtype.kind == "M":
        return pd.Series(array).dt.tz_localize("UTC")
    if kind == "float" and array.dtype.kind == "f":
        return pd.Series(array)
    if kind == "int" and array.dtype.kind in "iu" and not values.missing.any():
        return pd.Series(array)
    out = array.astype(object)
    out[values.missing] = None
    inferred = pd.api.types.infer_dtype(out)
    if kind == "int" and inferred == "integer":  # e.g. a map's codes
        return pd.Series(out, dtype=object).astype("Int64")
    if kind == "bool" and inferred == "boolean" and not values.missing.any():
        return pd.Series(out.astype(bool))
    return pd.Series(out, dtype=object)


def _subject_times(lodged: _Values) -> np.ndarray:
    if lodged.values.dtype.kind == "M":
        return lodged.values
    parsed = pd.to_datetime(
        pd.Series(lodged.values, dtype=object), utc=True, errors="coerce", format="ISO8601"
    )
    return parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _extra_column(evaluator: _Evaluator, name: str, column: str, kind: str) -> np.ndarray:
    if kind == "numeric":
        numbers, bad, cells = evaluator.numbers(column)
        if bad.any():
            positions = np.flatnonzero(bad)
            evaluator.fail(
                ("extra", name, "type"),
                "not a number in a numeric attribute (declare it categorical, or fix the rows)",
                positions,
                cells.spread(cells.uniques, None)[positions[:_SHOWN_ROWS]],
            )
        values = numbers.astype(object)
        values[np.isnan(numbers)] = None
        return values
    cells = evaluator.cells(column)
    return cells.spread(cells.uniques, None)


def _extra_maps(evaluator: _Evaluator) -> tuple[list[dict[str, Any]] | None, list[ExtraAttribute]]:
    mapping = evaluator.loaded.mapping
    if not mapping.extra:
        return None, []
    names = list(mapping.extra)
    columns = [
        _extra_column(evaluator, name, rule.column, rule.type)
        for name, rule in mapping.extra.items()
    ]
    maps = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    attributes = [
        ExtraAttribute(name=name, type=rule.type, label=rule.label, source_column=rule.column)
        for name, rule in mapping.extra.items()
    ]
    return maps, attributes


def _declarations(
    evaluator: _Evaluator,
) -> tuple[dict[str, _Values], pd.DataFrame, list[ExtraAttribute]]:
    mapping = evaluator.loaded.mapping
    contract = contract_for("declarations", mapping.identifier_format)
    done: dict[str, _Values] = {}
    for target in evaluation_order(mapping):
        kind = contract.spec(target).type
        done[target] = evaluator.rule(
            ("declarations", target), mapping.declarations[target], kind, done
        )
    columns = {name: _series(values, contract.spec(name).type) for name, values in done.items()}
    extra, attributes = _extra_maps(evaluator)
    if extra is not None:
        columns["extra"] = pd.Series(extra, dtype=object)
    frame = pd.DataFrame(columns)
    ordered = [name for name in contract.field_names if name in frame.columns]
    return done, frame[ordered], attributes


def _control_ids(declaration_ids: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Stable ids (the same row re-imported gets the same id): declaration id and item."""
    ids: list[str | None] = []
    for declaration, item in zip(declaration_ids, items, strict=True):
        if declaration is None:
            ids.append(None)
            continue
        text = f"{declaration}-{item}"
        if len(text) > ID_MAX_LENGTH:
            text = "I" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        ids.append(text)
    return np.array(ids, dtype=object)


def _label_rule(
    evaluator: _Evaluator,
    target: str,
    rule: FieldRule | None,
    default: Any,
    done: dict[str, _Values],
    subject_time: np.ndarray,
) -> pd.Series:
    kind = LABEL_TARGETS[target]
    if rule is None:
        values = _constant(default, evaluator.n)
    else:
        values = evaluator.rule(("labels", target), rule, kind, done, subject_time)
    return _series(values, kind)


def _controls(
    evaluator: _Evaluator, done: dict[str, _Values], warnings: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    labels = evaluator.loaded.mapping.labels
    assert labels is not None
    outcome = evaluator.cells(labels.outcome.column)
    labelled = np.flatnonzero(outcome.codes >= 0)
    irregular_values = np.isin(outcome.uniques, labels.outcome.irregular)
    irregular = np.append(irregular_values, False)[outcome.codes][labelled]
    sub = _Evaluator(evaluator.loaded, evaluator.frame.iloc[labelled], evaluator.rows[labelled])
    sub_done = {name: _Values(v.values[labelled], v.missing[labelled]) for name, v in done.items()}
    subject_time = _subject_times(sub_done["lodged_at"])
    defaults = {"control_type": "documentary", "selection_reason": "rule"}
    frame = pd.DataFrame(
        {
            "control_id": _control_ids(
                _series(sub_done["declaration_id"], "str").to_numpy(),
                _series(sub_done["item_number"], "int").to_numpy(),
            ),
            "subject_type": "declaration",
            "subject_id": _series(sub_done["declaration_id"], "str"),
            "item_number": _series(sub_done["item_number"], "int"),
        }
    )
    controlled = labels.controlled_at or FieldRule(offset_days=0)
    frame["controlled_at"] = _not_before_on_the_same_day(
        _label_rule(sub, "controlled_at", controlled, None, sub_done, subject_time),
        pd.Series(subject_time).dt.tz_localize("UTC"),
        controlled,
    )
    if labels.reported_at is not None:
        frame["reported_at"] = _not_before_on_the_same_day(
            _label_rule(sub, "reported_at", labels.reported_at, None, sub_done, subject_time),
            frame["controlled_at"],
            labels.reported_at,
        )
    for target, default in defaults.items():
        frame[target] = _label_rule(
            sub, target, getattr(labels, target), default, sub_done, subject_time
        )
    frame["outcome"] = np.where(irregular, "irregularity", "no_irregularity")
    frame["risk_area"] = _risk_areas(sub, labels.risk_area, irregular, sub_done, subject_time)
    revenue = labels.revenue_recovered_eur
    # Unknown revenue is recorded as 0 for the contract; the manifest says it is unknown.
    frame["revenue_recovered_eur"] = _label_rule(
        sub, "revenue_recovered_eur", revenue, 0.0, sub_done, subject_time
    )
    frame["seizure"] = _seizures(sub, labels.seizure)
    for target, default in defaults.items():
        if getattr(labels, target) is None:
            warnings.append(f"labels.{target} not given: every control is recorded as {default!r}")
    if labels.controlled_at is None:
        warnings.append("labels.controlled_at not given: controls are dated at the lodgement")
    evaluator.problems.extend(sub.problems)
    return frame, evaluator.rows[labelled]


_TIME_OF_DAY = re.compile(r"%[HIklMSXcTRrpfz]")


def _dated_by_day(rule: FieldRule, times: pd.Series) -> bool:
    """Whether a file column gives days only (no time of day)."""
    if rule.column is None or not pd.api.types.is_datetime64_any_dtype(times):
        return False
    if rule.format is not None:
        return _TIME_OF_DAY.search(rule.format) is None
    local = times.dropna().dt.tz_convert(rule.timezone or "UTC")
    return bool(len(local)) and bool((local == local.dt.normalize()).all())


def _not_before_on_the_same_day(times: pd.Series, earlier: pd.Series, rule: FieldRule) -> pd.Series:
    """A control (or its report) dated by day only, on the day of the event it follows, took
    place after that event, not at the midnight before it: it is dated at the event. A day
    before the event's day stays as it is (and the contract quarantines it)."""
    if not _dated_by_day(rule, times):
        return times
    same_day = (times < earlier) & (times + pd.Timedelta(days=1) > earlier)
    return times.mask(same_day, earlier)


def _risk_areas(
    sub: _Evaluator,
    rule: FieldRule,
    irregular: np.ndarray,
    done: dict[str, _Values],
    subject_time: np.ndarray,
) -> np.ndarray:
    """Risk areas of the irregular rows only (the others have none, whatever the column says)."""
    rows = np.flatnonzero(irregular)
    only = _Evaluator(sub.loaded, sub.frame.iloc[rows], sub.rows[rows])
    only_done = {name: _Values(v.values[rows], v.missing[rows]) for name, v in done.items()}
    values = only.rule(("labels", "risk_area"), rule, "str", only_done, subject_time[rows])
    sub.problems.extend(only.problems)
    out = np.full(sub.n, None, dtype=object)
    out[rows] = _series(values, "str").to_numpy()
    return out


def _seizures(sub: _Evaluator, rule: Any) -> np.ndarray:
    if rule is None:
        return np.zeros(sub.n, dtype=bool)
    if rule.constant is not None:
        return np.full(sub.n, bool(rule.constant))
    cells = sub.cells(rule.column)
    return np.append(np.isin(cells.uniques, rule.values), False)[cells.codes]


def _description_warning(mapping: Any, frame: pd.DataFrame) -> str | None:
    if "goods_description" not in frame.columns or frame["goods_description"].isna().all():
        return (
            "no goods descriptions in the file: the description features (vague description, "
            "description vs HS code) carry no information for this dataset"
        )
    return None


def apply_mapping(loaded: LoadedMapping, table: SourceTable) -> MappedRecords:
    """Declaration items (with ``extra``) and control results from ``table`` by the mapping.

    Raises:
        MappingError: columns the file lacks, values outside a map, unparseable dates, non-numbers
            in numeric attributes; each with its key, line and first offending rows.
    """
    problems = _column_problems(loaded, table.frame)
    if problems:
        raise loaded.error(problems)
    evaluator = _Evaluator(loaded, table.frame, table.row_numbers)
    done, declarations, attributes = _declarations(evaluator)
    warnings: list[str] = []
    description = _description_warning(loaded.mapping, declarations)
    if description:
        warnings.append(description)
    if loaded.mapping.labels is not None:
        controls, control_rows = _controls(evaluator, done, warnings)
        revenue_known = loaded.mapping.labels.revenue_recovered_eur is not None
        if not revenue_known:
            warnings.append(
                "labels.revenue_recovered_eur not given: the revenue is unknown (not zero), so no "
                "revenue model is trained and Revenue@n% is not reported"
            )
    else:
        controls = pd.DataFrame()
        control_rows = np.zeros(0, dtype=np.int64)
        revenue_known = True
        warnings.append("no labels in the mapping: the file brings declarations only")
    if evaluator.problems:
        raise loaded.error(evaluator.problems)
    return MappedRecords(
        declarations=declarations,
        declaration_rows=table.row_numbers,
        control_results=controls,
        control_rows=control_rows,
        extra=attributes,
        revenue_known=revenue_known,
        warnings=warnings,
    )
