"""Pydantic models derived from the declarative contracts (the HTTP side of the contract).

``DeclarationItem``, ``EnsFiling`` and ``ControlResult`` are generated from the same
``FieldSpec`` tables the Great Expectations suites come from, and use the same rule names in
their errors (:func:`reasons_from_error` turns a ``ValidationError`` into contract reasons).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from data_contracts.definitions import KINDS, TIMESTAMP_TEXT_PREFIX, FieldSpec, RecordContract

__all__ = [
    "ControlResult",
    "DeclarationItem",
    "EnsFiling",
    "model_for",
    "reason_from_error_item",
    "reasons_from_error",
]

_BASE_TYPES: dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "timestamp": datetime,
    "map": dict[str, Any],
}

# pydantic error type -> contract rule name (the same names the GX suites report).
_RULES = {
    "missing": "required",
    "none_required": "required",
    "string_pattern_mismatch": "pattern",
    "greater_than": "greater_than",
    "greater_than_equal": "at_least",
    "less_than_equal": "at_most",
    "string_too_long": "max_length",
    "extra_forbidden": "unknown_field",
    "too_short": "required",  # only required lists have a minimum length (one element)
    "finite_number": "type",
}


def _code_check(spec: FieldSpec) -> AfterValidator:
    def check(value: Any) -> Any:
        codes = spec.code_set()
        if value is not None and codes is not None and value not in codes:
            raise PydanticCustomError(
                "code_list", "{field} must be one of the allowed codes", {"field": spec.name}
            )
        return value

    return AfterValidator(check)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_timestamp(value: Any) -> Any:
    """Refuse what batch parsing refuses: numbers (Unix seconds) and text not led by a date."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not re.match(TIMESTAMP_TEXT_PREFIX, value.strip())
    ):
        raise PydanticCustomError("datetime_parsing", "must be an ISO 8601 date-time")
    return value


def _blank_to_none(value: Any) -> Any:
    """A blank or NaN optional value is absent, as a blank cell is in a file (coerce.py)."""
    if (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and value != value
    ):
        return None
    return value


def _not_blank(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("missing", "value is required")
    return value


def _annotation(spec: FieldSpec) -> Any:
    if spec.type == "str_list":
        element: Any = Annotated[str, AfterValidator(_not_blank)]
        if spec.code_set() is not None:
            element = Annotated[str, _code_check(spec)]
        elif spec.pattern:
            element = Annotated[str, Field(pattern=f"^(?:{spec.pattern})$")]
        base: Any = Annotated[list[element], Field(min_length=1 if spec.required else 0)]  # type: ignore[valid-type]
    else:
        base = _BASE_TYPES[spec.type]
        constraints: dict[str, Any] = {}
        if spec.type == "str":
            if spec.pattern:
                constraints["pattern"] = f"^(?:{spec.pattern})$"
            if spec.max_length:
                constraints["max_length"] = spec.max_length
        if spec.type in ("int", "float"):
            for name in ("gt", "ge", "le"):
                bound = getattr(spec, name)
                if bound is not None:
                    constraints[name] = bound
            if spec.type == "float":
                constraints["allow_inf_nan"] = False
        validators: list[Any] = []
        if spec.type == "str":
            validators.append(AfterValidator(_not_blank))
        if spec.type == "timestamp":
            validators.extend([BeforeValidator(_iso_timestamp), AfterValidator(_utc)])
        if spec.code_set() is not None:
            validators.append(_code_check(spec))
        base = (
            Annotated[base, Field(**constraints), *validators]
            if constraints or validators
            else base
        )
    return base if spec.required else Annotated[base | None, BeforeValidator(_blank_to_none)]


def _cross_field_validator(contract: RecordContract) -> Any:
    def check(model: BaseModel) -> BaseModel:
        values = model.__dict__
        for pair in contract.pair_rules:
            left, right = values.get(pair.left), values.get(pair.right)
            if left is not None and right is not None:
                ok = left >= right if pair.or_equal else left > right
                if not ok:
                    raise PydanticCustomError(pair.rule, pair.message, {"field": pair.left})
        for cond in contract.conditional_required:
            if values.get(cond.when_field) in cond.when_values and values.get(cond.field) is None:
                raise PydanticCustomError(cond.rule, cond.message, {"field": cond.field})
        for cond_max in contract.conditional_max:
            value = values.get(cond_max.field)
            applies = values.get(cond_max.when_field) in cond_max.when_values
            if applies and value is not None and value > cond_max.limit:
                raise PydanticCustomError(
                    cond_max.rule, cond_max.message, {"field": cond_max.field}
                )
        for head in contract.list_head_rules:
            items, other = values.get(head.list_field), values.get(head.equals_field)
            if items and other is not None and items[0] != other:
                raise PydanticCustomError(head.rule, head.message, {"field": head.list_field})
        return model

    return model_validator(mode="after")(check)


@cache
def model_for(kind: str) -> type[BaseModel]:
    """The pydantic model of record kind ``kind``."""
    contract = KINDS[kind]
    fields: dict[str, Any] = {}
    for spec in contract.fields:
        default = ... if spec.required else None
        fields[spec.name] = (
            _annotation(spec),
            Field(default=default, description=spec.description, examples=[spec.example]),
        )
    model = create_model(  # type: ignore[call-overload]
        contract.record_name,
        __config__=ConfigDict(
            extra="forbid",
            str_strip_whitespace=True,
            # A code sent as a JSON number ("hs_code": 85171300) is the same code, as in CSV.
            coerce_numbers_to_str=True,
            title=contract.record_name,
        ),
        __doc__=contract.description,
        __validators__={"cross_field_rules": _cross_field_validator(contract)},
        **fields,
    )
    return model


@cache
def _cross_rule_fields() -> dict[str, str]:
    """Cross-field rule name -> the field it is about (errors may arrive without context)."""
    fields: dict[str, str] = {}
    for contract in KINDS.values():
        for pair in contract.pair_rules:
            fields[pair.rule] = pair.left
        for cond in contract.conditional_required:
            fields[cond.rule] = cond.field
        for cond_max in contract.conditional_max:
            fields[cond_max.rule] = cond_max.field
        for head in contract.list_head_rules:
            fields[head.rule] = head.list_field
    return fields


def reason_from_error_item(item: dict[str, Any], prefix: tuple[Any, ...] = ()) -> dict[str, Any]:
    """One contract reason from one pydantic error item (as ``ValidationError.errors()`` gives)."""
    location = [str(part) for part in (*prefix, *item.get("loc", ()))]
    ctx = dict(item.get("ctx") or {})
    kind = str(item.get("type", "invalid"))
    if "field" not in ctx and kind in _cross_rule_fields():
        ctx["field"] = _cross_rule_fields()[kind]
    if "field" in ctx and (not location or location[-1] != str(ctx["field"])):
        # Cross-field rules are raised at record level; name the field the rule is about.
        location = [*location, str(ctx["field"])]
    rule = _RULES.get(kind)
    if rule is None:
        rule = (
            "type" if kind.endswith(("_type", "_parsing")) or kind.startswith("invalid") else kind
        )
    value = item.get("input")
    return {
        "field": ".".join(location),
        "rule": rule,
        "value": None if value is None or isinstance(value, dict | list) else str(value)[:200],
        "message": str(item.get("msg", "")),
    }


def reasons_from_error(
    error: ValidationError, prefix: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """Contract reasons ``{field, rule, value, message}`` from a pydantic ValidationError."""
    return [reason_from_error_item(dict(item), prefix) for item in error.errors(include_url=False)]


DeclarationItem = model_for("declarations")
EnsFiling = model_for("ens")
ControlResult = model_for("control-results")
