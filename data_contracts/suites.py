"""Great Expectations 1.x suites derived from the declarative contracts, and running them.

Each expectation carries ``meta = {"field": ..., "rule": ...}`` so a failing row's reason is read
off the expectation itself; GX returns results in no fixed order, so nothing relies on position.
GX is imported lazily: it costs seconds, and the HTTP service never needs it.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from data_contracts.coerce import item_count_column, joined_list_column, list_head_column
from data_contracts.definitions import CONTRACT_VERSION, FieldSpec, RecordContract

__all__ = ["SuiteRun", "build_suite", "run_suite", "suite_name"]

logger = logging.getLogger(__name__)


def suite_name(contract: RecordContract) -> str:
    opaque = "_opaque_ids" if contract.identifiers == "opaque" else ""
    return f"crisk_{contract.kind.replace('-', '_')}{opaque}_v{CONTRACT_VERSION}"


def _alternation(values: frozenset[Any]) -> str:
    return "(?:" + "|".join(re.escape(str(v)) for v in sorted(values, key=str)) + ")"


def _field_expectations(spec: FieldSpec) -> list[Any]:
    import great_expectations.expectations as gxe

    def meta(rule: str, message: str) -> dict[str, str]:
        return {"field": spec.name, "rule": rule, "message": message}

    out: list[Any] = []
    column = spec.name
    if spec.required:
        out.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=column, meta=meta("required", f"{spec.name} is required")
            )
        )
    if spec.max_items is not None:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=item_count_column(spec.name),
                max_value=spec.max_items,
                meta=meta("max_items", f"{spec.name} must have at most {spec.max_items} items"),
            )
        )
    codes = spec.code_set()
    if spec.type == "map":
        return out
    if spec.type == "str_list":
        joined = joined_list_column(column)
        element = _alternation(codes) if codes is not None else f"(?:{spec.pattern or '.+'})"
        rule = "code_list" if codes is not None else "pattern"
        out.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=joined,
                regex=f"^{element}(?:>{element})*$",
                meta=meta(rule, f"every element of {spec.name} must be a valid code"),
            )
        )
        return out
    if codes is not None:
        value_set = sorted(codes, key=str)
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=column,
                value_set=value_set,
                meta=meta("code_list", f"{spec.name} must be one of the allowed codes"),
            )
        )
    if spec.pattern is not None:
        out.append(
            gxe.ExpectColumnValuesToMatchRegex(
                column=column,
                regex=f"^(?:{spec.pattern})$",
                meta=meta("pattern", f"{spec.name} must match {spec.pattern}"),
            )
        )
    if spec.max_length is not None:
        out.append(
            gxe.ExpectColumnValueLengthsToBeBetween(
                column=column,
                max_value=spec.max_length,
                meta=meta(
                    "max_length", f"{spec.name} must be at most {spec.max_length} characters"
                ),
            )
        )
    if spec.gt is not None:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=spec.gt,
                strict_min=True,
                meta=meta("greater_than", f"{spec.name} must be greater than {spec.gt:g}"),
            )
        )
    if spec.ge is not None:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=spec.ge,
                meta=meta("at_least", f"{spec.name} must be at least {spec.ge:g}"),
            )
        )
    if spec.le is not None:
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                max_value=spec.le,
                meta=meta("at_most", f"{spec.name} must be at most {spec.le:g}"),
            )
        )
    return out


def build_suite(contract: RecordContract) -> Any:
    """The ExpectationSuite of ``contract`` (not yet added to any context)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    suite = gx.ExpectationSuite(
        name=suite_name(contract), meta={"contract_version": CONTRACT_VERSION}
    )
    for spec in contract.fields:
        # National attributes (maps): their shape is checked by the parser (coerce.py), their
        # size here.
        for expectation in _field_expectations(spec):
            suite.add_expectation(expectation)
    for pair in contract.pair_rules:
        suite.add_expectation(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A=pair.left,
                column_B=pair.right,
                or_equal=pair.or_equal,
                ignore_row_if="either_value_is_missing",
                meta={"field": pair.left, "rule": pair.rule, "message": pair.message},
            )
        )
    for cond in contract.conditional_required:
        suite.add_expectation(
            gxe.ExpectColumnValuesToNotBeNull(
                column=cond.field,
                row_condition=Column(cond.when_field).is_in(list(cond.when_values)),
                meta={"field": cond.field, "rule": cond.rule, "message": cond.message},
            )
        )
    for cond_max in contract.conditional_max:
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(
                column=cond_max.field,
                max_value=cond_max.limit,
                row_condition=Column(cond_max.when_field).is_in(list(cond_max.when_values)),
                meta={"field": cond_max.field, "rule": cond_max.rule, "message": cond_max.message},
            )
        )
    for head in contract.list_head_rules:
        suite.add_expectation(
            gxe.ExpectColumnPairValuesToBeEqual(
                column_A=list_head_column(head.list_field),
                column_B=head.equals_field,
                ignore_row_if="either_value_is_missing",
                meta={"field": head.list_field, "rule": head.rule, "message": head.message},
            )
        )
    return suite


@dataclass
class SuiteRun:
    """What a suite run found: failing row positions per (field, rule), and the GX result."""

    failures: list[tuple[dict[str, str], list[Any]]]
    result: Any


def run_suite(contract: RecordContract, typed: pd.DataFrame) -> SuiteRun:
    """Validate the typed frame with the contract's suite in an ephemeral GX context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_definition = (
        context.data_sources.add_pandas("crisk")
        .add_dataframe_asset(contract.kind)
        .add_batch_definition_whole_dataframe("batch")
    )
    suite = context.suites.add(build_suite(contract))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
    )
    frame = typed.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE", "return_unexpected_index_query": False},
        )
    failures = []
    for expectation_result in result.results:
        if expectation_result.success:
            continue
        config = expectation_result.expectation_config
        meta = dict((config.meta if config is not None else None) or {})
        if expectation_result.exception_info and expectation_result.exception_info.get(
            "raised_exception"
        ):
            raise RuntimeError(
                f"expectation {meta} could not run: "
                f"{expectation_result.exception_info.get('exception_message')}"
            )
        failures.append((meta, list(expectation_result.result.get("unexpected_index_list") or [])))
    return SuiteRun(failures=failures, result=result)
