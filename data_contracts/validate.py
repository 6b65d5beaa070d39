"""Splitting a batch of records into valid and quarantined rows (spec §2, contract behaviour).

``valid + quarantined == input``, always. Every quarantined row carries machine-readable
reasons ``{field, rule, value, message}``; valid rows carry their risk-signal warnings.
Re-sent records are resolved here too: an identical re-send is an ``exact_duplicate``, an
earlier version of a record that was sent again with changes is ``superseded`` (the newest
version is the one that counts; earlier ones stay in quarantine as history).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.coerce import Reason, coerce_frame
from data_contracts.definitions import (
    CONTRACT_VERSION,
    IdentifierFormat,
    RecordContract,
    contract_for,
)
from data_contracts.io import UnusableInput
from data_contracts.progress import Progress, advance, quiet
from data_contracts.signals import risk_signals
from data_contracts.suites import run_suite

__all__ = ["ValidationResult", "check_columns", "validate_frame"]

logger = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    """The split of one batch."""

    kind: str
    valid: pd.DataFrame
    quarantine: pd.DataFrame
    n_input: int
    suite_result: Any = None
    contract_version: str = CONTRACT_VERSION

    @property
    def n_valid(self) -> int:
        return len(self.valid)

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantine)

    def rule_counts(self) -> dict[str, int]:
        """How many quarantined rows each (field, rule) caught."""
        counts: dict[str, int] = {}
        for reasons in self.quarantine.get("reasons", []):
            for reason in {(r["field"], r["rule"]) for r in reasons}:
                key = f"{reason[0]}:{reason[1]}"
                counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def check_columns(raw: pd.DataFrame, contract: RecordContract, source: str) -> None:
    """Raise :class:`UnusableInput` for missing required or unknown columns."""
    columns = [str(c) for c in raw.columns]
    missing = [name for name in contract.required_fields if name not in columns]
    known = set(contract.field_names)
    unknown = [name for name in columns if name not in known]
    problems = []
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if unknown:
        problems.append(
            f"unknown column(s): {', '.join(unknown)} (national attributes go in `extra`; "
            "map foreign files with `crisk import`)"
        )
    if problems:
        raise UnusableInput(f"{source}: {'; '.join(problems)}")


def _joined(typed: pd.DataFrame, columns: list[str]) -> pd.Series:
    joined = typed[columns[0]].astype(str)
    for column in columns[1:]:
        joined = joined + "\x1f" + typed[column].astype(str)
    return joined


def _resend_reasons(typed: pd.DataFrame, contract: RecordContract) -> list[list[Reason]]:
    reasons: list[list[Reason]] = [[] for _ in range(len(typed))]
    key_cols = list(contract.key)
    keyed = typed[key_cols].notna().all(axis=1).to_numpy()
    keys = _joined(typed, key_cols)
    repeated_key = keys.duplicated(keep=False).to_numpy() & keyed
    if not repeated_key.any():
        return reasons
    # Only re-sent keys need their content compared (usually a tiny share of a batch).
    subset = typed[repeated_key]
    frame = pd.DataFrame(
        {
            "key": keys[repeated_key].to_numpy(),
            "hash": _joined(subset, contract.field_names)
            .map(lambda s: hashlib.blake2b(s.encode(), digest_size=12).hexdigest())
            .to_numpy(),
            "position": np.flatnonzero(repeated_key),
        }
    )
    last = frame.groupby("key", sort=False).tail(1).set_index("key")
    repeated = frame[frame["key"].duplicated(keep="last")]
    key_name = ",".join(key_cols)
    for key, content, position in repeated.itertuples(index=False):
        newest_hash, newest_position = last.loc[key, "hash"], int(last.loc[key, "position"])
        if content == newest_hash:
            rule, message = "exact_duplicate", f"identical to row {newest_position + 1}"
        else:
            rule, message = (
                "superseded",
                f"replaced by a newer version at row {newest_position + 1}",
            )
        reasons[position].append(
            {"field": key_name, "rule": rule, "value": key.replace("\x1f", "|"), "message": message}
        )
    return reasons


def _reference_reasons(
    typed: pd.DataFrame, subject_times: Mapping[tuple[str, str], pd.Timestamp]
) -> list[list[Reason]]:
    """controlled_at must not precede the lodgement/filing of the controlled subject."""
    reasons: list[list[Reason]] = [[] for _ in range(len(typed))]
    keys = zip(typed["subject_type"].astype(str), typed["subject_id"].astype(str), strict=True)
    for position, (key, controlled_at) in enumerate(zip(keys, typed["controlled_at"], strict=True)):
        subject_time = subject_times.get(key)
        if subject_time is not None and pd.notna(controlled_at) and controlled_at < subject_time:
            reasons[position].append(
                {
                    "field": "controlled_at",
                    "rule": "controlled_before_subject",
                    "value": str(controlled_at),
                    "message": f"controlled_at is before the subject's time {subject_time}",
                }
            )
    return reasons


def _display(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, list | dict | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, default=str)
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "…"


def validate_frame(
    raw: pd.DataFrame,
    kind: str,
    *,
    source: str = "input",
    subject_times: Mapping[tuple[str, str], pd.Timestamp] | None = None,
    identifiers: IdentifierFormat | str = "eori",
    row_numbers: Sequence[int] | np.ndarray | None = None,
    progress: Progress = quiet,
) -> ValidationResult:
    """Validate ``raw`` against the contract of ``kind`` (four counted stages on ``progress``).

    Args:
        raw: the records, one per row.
        kind: ``declarations``, ``ens`` or ``control-results``.
        source: what to call the input in errors (a file name).
        subject_times: lodgement/filing time per (subject type, id), for control results.
        identifiers: the party-id format (``eori`` or ``opaque``, see ``contract_for``).
        row_numbers: the number each row has in its source file (the quarantine's ``row``);
            default: its position from 1.

    Raises:
        UnusableInput: required columns are missing or unknown columns are present.
    """
    contract = contract_for(kind, identifiers)
    if row_numbers is not None and len(row_numbers) != len(raw):
        raise ValueError(f"{len(row_numbers)} row numbers for {len(raw)} rows")
    check_columns(raw, contract, source)
    raw = raw.reset_index(drop=True)
    task = f"validating {len(raw):,} {kind}"
    advance(progress, task, 0, 4)
    typed, reasons = coerce_frame(raw, contract)
    advance(progress, task, 1, 4)
    for position, extra in enumerate(_resend_reasons(typed, contract)):
        reasons[position].extend(extra)
    advance(progress, task, 2, 4)
    suite = run_suite(contract, typed) if len(typed) else None
    advance(progress, task, 3, 4)
    if suite is not None:
        for meta, positions in suite.failures:
            field = meta.get("field", "")
            values = typed.get(field)
            for position in positions:
                value = None if values is None else _display(values.iloc[position])
                reasons[position].append(
                    {
                        "field": field,
                        "rule": meta.get("rule", ""),
                        "value": value,
                        "message": meta.get("message", ""),
                    }
                )
    if subject_times is not None and kind == "control-results":
        for position, extra in enumerate(_reference_reasons(typed, subject_times)):
            reasons[position].extend(extra)

    bad = np.array([bool(r) for r in reasons], dtype=bool)
    valid = typed.loc[~bad, contract.field_names].reset_index(drop=True)
    if kind != "control-results" and len(valid):
        valid = pd.concat([valid, pd.DataFrame(risk_signals(valid, kind))], axis=1)
    elif kind != "control-results":
        for column in (
            "warning_vague_description",
            "warning_description_mismatch",
            "warning_value_outlier",
            "warning_mass_outlier",
        ):
            valid[column] = pd.Series(dtype=bool)
        valid["warnings"] = pd.Series(dtype=object)
    bad_positions = np.flatnonzero(bad)
    quarantine = pd.DataFrame(
        {
            name: [_display(v) for v in raw[name].iloc[bad_positions]] if name in raw else None
            for name in contract.field_names
        }
    )
    numbers = bad_positions + 1 if row_numbers is None else np.asarray(row_numbers)[bad_positions]
    quarantine.insert(0, "row", numbers)
    quarantine["reasons"] = [reasons[p] for p in bad_positions]
    advance(progress, task, 4, 4)
    return ValidationResult(
        kind=kind,
        valid=valid,
        quarantine=quarantine,
        n_input=len(raw),
        suite_result=None if suite is None else suite.result,
    )
