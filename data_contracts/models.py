"""Pydantic models derived from the declarative contracts (the HTTP side of the contract).

``DeclarationItem``, ``EnsFiling`` and ``ControlResult`` are generated from the same
``FieldSpec`` tables the Great Expectations suites come from, and use the same rule names in
their errors (:func:`reasons_from_error` turns a ``ValidationError`` into contract reasons).
"""

from __future__ import annotations

from datetime import datetime
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

from data_contracts.definitions import (
    EXTRA_KEY_PATTERN,
    EXTRA_VALUE_MAX_LENGTH,
    KINDS,
    FieldSpec,
    IdentifierFormat,
    RecordContract,
    contract_for,
)
from data_contracts.values import ValueRejected, parse_value

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
    "too_long": "max_items",
    "too_short": "required",
    "extra_forbidden": "unknown_field",
    "finite_number": "type",
    "json_invalid": "json",
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


def _parser(spec: FieldSpec) -> BeforeValidator:
    """The shared value parser (``values.py``), exactly as batch validation applies it."""

    kind = spec.type
    native: type | None = {"str": str, "float": float, "bool": bool}.get(kind)

    def parse(value: Any) -> Any:
        # The commonest case first: a clean value of the right JSON type (what parse_value's
        # own fast path returns), without the call; text still has to be non-blank and stripped.
        if native is not None and type(value) is native:
            same: Any = value  # (mypy would narrow `value` to object here)
            if native is str:
                if same and not same[0].isspace() and not same[-1].isspace() and same.isprintable():
                    return same
            elif native is not float or same - same == 0:  # finite
                return same
        try:
            parsed = parse_value(value, kind)
        except ValueRejected as error:
            raise PydanticCustomError(
                "type", "{field}: {reason}", {"field": spec.name, "reason": str(error)}
            ) from None
        if parsed is None:
            if spec.required:
                raise PydanticCustomError("missing", "{field} is required", {"field": spec.name})
            return None
        return parsed.to_pydatetime() if kind == "timestamp" else parsed

    return BeforeValidator(parse)


# What the OpenAPI document says beyond types, so a client generated from it sends what the
# contract accepts: code lists as enums, timestamps within the accepted years, text that is not
# blank and holds no control characters (the parser's rules, values.py).
_FORBIDDEN_CHARS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f\\u202a-\\u202e\\u2066-\\u2069"
_TEXT_SCHEMA_PATTERN = f"^[^{_FORBIDDEN_CHARS}]*[^\\s{_FORBIDDEN_CHARS}][^{_FORBIDDEN_CHARS}]*$"
_TIMESTAMP_SCHEMA_PATTERN = (
    r"^(19|20|21)[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
)
_INT64_MAX = 2**63 - 1


def _element_schema(spec: FieldSpec) -> dict[str, Any]:
    codes = spec.code_set()
    if codes is not None:
        return {"enum": sorted(codes, key=str)}
    if spec.type == "timestamp":
        return {"pattern": _TIMESTAMP_SCHEMA_PATTERN}
    if spec.type in ("str", "str_list") and not spec.pattern:
        return {"pattern": _TEXT_SCHEMA_PATTERN, "minLength": 1}
    if spec.type == "int" and spec.le is None:
        return {"maximum": _INT64_MAX}
    if spec.type == "map":
        return {
            "propertyNames": {"pattern": f"^{EXTRA_KEY_PATTERN}$"},
            "additionalProperties": {
                "anyOf": [
                    {
                        "type": "string",
                        "maxLength": EXTRA_VALUE_MAX_LENGTH,
                        "pattern": f"^[^{_FORBIDDEN_CHARS}]*$",
                    },
                    {"type": "number"},
                    {"type": "boolean"},
                    {"type": "null"},
                ]
            },
        }
    return {}


def _annotation(spec: FieldSpec) -> Any:
    extra = _element_schema(spec)
    if spec.type == "str_list":
        element: Any = Annotated[str, Field(json_schema_extra=extra or None)]
        if spec.code_set() is not None:
            element = Annotated[element, _code_check(spec)]
        elif spec.pattern:
            element = Annotated[element, Field(pattern=f"^(?:{spec.pattern})$")]
        base: Any = Annotated[
            list[element],  # type: ignore[valid-type]
            Field(min_length=1, max_length=spec.max_items),
        ]
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
        if spec.type == "map" and spec.max_items is not None:
            constraints["max_length"] = spec.max_items
        if extra:
            constraints["json_schema_extra"] = extra
        validators: list[Any] = []
        if spec.code_set() is not None:
            validators.append(_code_check(spec))
        if constraints or validators:
            base = Annotated[base, Field(**constraints), *validators]
    # The parser runs first (outermost), on the raw JSON value.
    return Annotated[base if spec.required else base | None, _parser(spec)]


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
def model_for(kind: str, identifiers: IdentifierFormat | str = "eori") -> type[BaseModel]:
    """The pydantic model of record kind ``kind``.

    ``identifiers`` is the workspace's identifier format (``DatasetManifest.identifier_format``):
    ``opaque`` accepts any printable party id, exactly as batch validation with the same format.
    """
    contract = contract_for(kind, identifiers)
    fields: dict[str, Any] = {}
    for spec in contract.fields:
        default = ... if spec.required else None
        fields[spec.name] = (
            _annotation(spec),
            Field(default=default, description=spec.description, examples=[spec.example]),
        )
    model = create_model(  # type: ignore[call-overload]
        contract.record_name,
        # Stripping, blanks and number-to-text are the shared parser's job (values.py).
        __config__=ConfigDict(extra="forbid", title=contract.record_name),
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
    if "field" in ctx and str(ctx["field"]) not in location:
        # Cross-field rules are raised at record level; name the field the rule is about.
        location = [*location, str(ctx["field"])]
    rule = _RULES.get(kind)
    if rule is None:
        rule = (
            "type" if kind.endswith(("_type", "_parsing")) or kind.startswith("invalid") else kind
        )
    value = item.get("input")
    if rule == "type" and "input" in item and value is None and kind != "type":
        rule = "required"  # a missing value where one is required, not a wrong type
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
