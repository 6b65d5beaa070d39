"""The mapping file of ``crisk import`` (spec §6): a typed model of its YAML, with line numbers.

A national administration's or a researcher's file names its columns, codes, identifiers and
currency in its own way; the mapping says, per contract field, where each value comes from and
how it is turned into the contract's form. This module reads the YAML into pydantic models
(``extra="forbid"`` everywhere, so a misspelt key is an error), checks what pydantic cannot see
(target fields the contract knows, rules that fit the field's type, references between fields),
and reports every problem as one line naming the file, the line, the key and the rule.

The YAML is read with the YAML 1.2 booleans only (``true``/``false``): in YAML 1.1 ``NO``
(Norway), ``on`` or ``y`` are booleans, which would silently turn a country code into ``False``.
Digit strings with a leading zero stay text (``0100`` is a code, not the number 100), and keys
and source values (``map`` keys, ``irregular`` values, column names) are always their text.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_contracts.dataset import PublishedSplit
from data_contracts.definitions import contract_for
from data_contracts.mapping_expression import ExpressionError, parse_expression

__all__ = [
    "LABEL_TARGETS",
    "Currency",
    "ExtraRule",
    "FieldRule",
    "LabelRules",
    "LoadedMapping",
    "MappingError",
    "MappingFile",
    "MappingProblem",
    "OutcomeRule",
    "SeizureRule",
    "SourceOptions",
    "evaluation_order",
    "load_mapping",
    "parse_mapping",
]

Path_ = tuple[str, ...]
_MAX_MAPPING_BYTES = 1 << 20
_EXTRA_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

# Which contract type each label rule produces (the control-result fields they fill).
LABEL_TARGETS: dict[str, str] = {
    "risk_area": "str",
    "revenue_recovered_eur": "float",
    "control_type": "str",
    "selection_reason": "str",
    "controlled_at": "timestamp",
    "reported_at": "timestamp",
}


@dataclass(frozen=True)
class MappingProblem:
    """One thing wrong with a mapping (or with the data it maps): where, and what."""

    path: Path_
    message: str
    line: int | None = None
    rows: tuple[tuple[int, str], ...] = ()  # (row number in the file, value), the first few
    n_rows: int = 0  # how many rows in all

    @property
    def key(self) -> str:
        return ".".join(self.path) or "(top level)"

    def describe(self, mapping_file: str) -> str:
        where = f"{mapping_file}:{self.line}" if self.line else mapping_file
        text = f"{where}: {self.key}: {self.message}"
        if self.rows:
            shown = ", ".join(f"row {row} ({value!r})" for row, value in self.rows)
            more = self.n_rows - len(self.rows)
            text += f"; {shown}" + (f" and {more:,} more rows" if more > 0 else "")
        return text


class MappingError(ValueError):
    """The mapping cannot be applied; each problem names the key, its line and the rows."""

    def __init__(self, mapping_file: str, problems: list[MappingProblem]) -> None:
        self.mapping_file = mapping_file
        self.problems = problems
        super().__init__("\n".join(p.describe(mapping_file) for p in problems))


# --- the YAML loader ---------------------------------------------------------------------------

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"


class _Loader(yaml.SafeLoader):
    """Safe YAML with 1.2 booleans and no octal/sexagesimal integers (see the module docstring)."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[Any]]] = {  # type: ignore[misc]
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))

# Keys whose values are names or text of the user's own file: taken as written, never resolved
# into numbers or booleans.
_TEXT_KEYS = frozenset(
    {
        "column",
        "prefix",
        "format",
        "timezone",
        "default_from",
        "expression",
        "label",
        "type",
        "dataset",
        "delimiter",
        "decimal",
        "encoding",
        "identifier_format",
    }
)
_TEXT_LIST_KEYS = frozenset({"irregular", "values"})


@dataclass
class _Document:
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def _scalar_text(loader: _Loader, node: yaml.ScalarNode) -> str | None:
    return None if loader.construct_object(node) is None and node.style is None else node.value


def _convert(loader: _Loader, node: yaml.Node, path: Path_, doc: _Document, text: bool) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _YamlProblem(path, "keys must be plain names", key_node.start_mark.line + 1)
            key = key_node.value
            if key in out:
                raise _YamlProblem((*path, key), "duplicated key", key_node.start_mark.line + 1)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            if key in _TEXT_LIST_KEYS:
                out[key] = _text_list(loader, value_node, (*path, key), doc)
            else:
                out[key] = _convert(loader, value_node, (*path, key), doc, key in _TEXT_KEYS)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, (*path, str(i)), doc, text) for i, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar_text(loader, node) if text else loader.construct_object(node)


def _text_list(loader: _Loader, node: yaml.Node, path: Path_, doc: _Document) -> Any:
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, (*path, str(i)), doc, text=True)
            for i, item in enumerate(node.value)
        ]
    return _convert(loader, node, path, doc, text=True)


@dataclass
class _YamlProblem(Exception):
    path: Path_
    message: str
    line: int | None


def _read_yaml(text: str) -> _Document:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = _Document(None)
        doc.data = {} if node is None else _convert(loader, node, (), doc, text=False)
        return doc
    finally:
        loader.dispose()


# --- the model ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceOptions(_Strict):
    """How the file is read."""

    format: Literal["csv", "parquet"] = "csv"
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV only.")
    decimal: Literal[".", ","] = "."
    encoding: str = Field("utf-8", description="CSV only; e.g. latin-1, cp1252.")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. utf-8, latin-1)") from None
        return value


class Currency(_Strict):
    """Amounts in a local currency: ``{rate: x}`` (local units per EUR) or a rates table."""

    rate: float | None = Field(None, gt=0, description="Local currency units per EUR.")
    column: str | None = Field(None, description="Column holding each row's currency code.")
    rates: dict[str, float] | None = Field(None, description="Units per EUR by currency code.")

    @model_validator(mode="after")
    def _one_form(self) -> Currency:
        if (self.rate is None) == (self.column is None):
            raise ValueError("give either `rate` or `column` with `rates`")
        if self.column is not None and not self.rates:
            raise ValueError("`column` needs a `rates` table: {CODE: units per EUR}")
        if self.rate is not None and self.rates is not None:
            raise ValueError("`rates` goes with `column`, not with `rate`")
        if self.rates and any(not rate > 0 for rate in self.rates.values()):
            raise ValueError("every rate must be greater than 0")
        return self


class FieldRule(_Strict):
    """Where one target field's value comes from, and how it is transformed (spec §6 rules)."""

    column: str | None = None
    pad: int | None = Field(None, ge=1, le=70, description="Left zero-pad to this width.")
    prefix: str | None = Field(None, max_length=20)
    map: dict[str, Any] | None = Field(None, description="Source value -> contract value.")
    default: Any = None
    format: str | None = Field(None, description="strptime format of a date-time column.")
    timezone: str | None = Field(None, description="IANA zone of local date-times.")
    currency: Currency | None = None
    constant: Any = None
    default_from: str | None = Field(None, description="Another target field, where blank.")
    offset_days: float | None = Field(None, description="Days after the subject's time.")
    expression: str | None = Field(None, max_length=1000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Tallinn)") from None
        return value

    @field_validator("map")
    @classmethod
    def _non_empty_map(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not value:
            raise ValueError("an empty map would refuse every value")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> FieldRule:
        given = self.model_fields_set
        sources = [k for k in ("column", "constant", "expression", "offset_days") if k in given]
        if len(sources) > 1:
            raise ValueError(f"give one source, not {' and '.join(sources)}")
        if not sources and not ({"default", "default_from"} & given):
            raise ValueError("give a source: column, constant, expression or offset_days")
        if {"default", "default_from"} <= given:
            raise ValueError("give `default` or `default_from`, not both")
        column_only = [k for k in ("pad", "prefix", "map", "format", "currency") if k in given]
        if column_only and "column" not in given:
            raise ValueError(f"{', '.join(column_only)} apply to a `column`")
        if "map" in given and {"pad", "prefix"} & given:
            raise ValueError("a map gives the contract value itself: drop pad/prefix")
        if "timezone" in given and "column" not in given:
            raise ValueError("timezone applies to a date-time `column`")
        if sources in (["constant"], ["offset_days"]) and {"default", "default_from"} & given:
            raise ValueError("a constant or an offset is never blank: drop the default")
        return self

    @property
    def source(self) -> str:
        """``column``, ``constant``, ``expression``, ``offset_days`` or ``default_from``."""
        for name in ("column", "constant", "expression", "offset_days", "default_from"):
            if name in self.model_fields_set:
                return name
        return "constant"  # `{default: x}` alone: a constant

    @property
    def constant_value(self) -> Any:
        return self.constant if "constant" in self.model_fields_set else self.default


class ExtraRule(_Strict):
    """A national attribute kept in ``extra`` and used by the models."""

    column: str
    type: Literal["categorical", "numeric"]
    label: str = Field("", max_length=80, description="Plain words for reasons and reports.")


class OutcomeRule(_Strict):
    """The inspection result column: listed values are irregular, other non-empty values not."""

    column: str
    irregular: list[str] = Field(min_length=1)


class SeizureRule(_Strict):
    """Goods seized: where the column holds one of ``values`` (or a constant)."""

    column: str | None = None
    values: list[str] | None = None
    constant: bool | None = None

    @model_validator(mode="after")
    def _one_form(self) -> SeizureRule:
        if self.constant is not None:
            if self.column is not None or self.values is not None:
                raise ValueError("give `constant`, or `column` with `values`")
        elif self.column is None or not self.values:
            raise ValueError("give `column` with `values` (the values that mean seized)")
        return self


class LabelRules(_Strict):
    """Past inspection results in the same rows: each labelled row becomes a control result."""

    outcome: OutcomeRule
    risk_area: FieldRule
    seizure: SeizureRule | None = None
    revenue_recovered_eur: FieldRule | None = None
    control_type: FieldRule | None = None
    selection_reason: FieldRule | None = None
    controlled_at: FieldRule | None = None
    reported_at: FieldRule | None = None

    def rules(self) -> Iterator[tuple[str, FieldRule]]:
        for name in LABEL_TARGETS:
            rule = getattr(self, name)
            if rule is not None:
                yield name, rule


class MappingFile(_Strict):
    """The whole mapping (spec §6)."""

    dataset: str = Field(min_length=1, max_length=120)
    source: SourceOptions = Field(default_factory=SourceOptions)  # type: ignore[arg-type]
    identifier_format: Literal["eori", "opaque"] = "eori"
    declarations: dict[str, FieldRule]
    extra: dict[str, ExtraRule] = Field(default_factory=dict)
    labels: LabelRules | None = None
    split: PublishedSplit | None = None

    def source_columns(self) -> Iterator[tuple[Path_, str]]:
        """Every (mapping key, source column) the mapping reads."""
        for target, rule in self.declarations.items():
            yield from _rule_columns(("declarations", target), rule)
        for name, extra in self.extra.items():
            yield ("extra", name, "column"), extra.column
        if self.labels is not None:
            yield ("labels", "outcome", "column"), self.labels.outcome.column
            if self.labels.seizure is not None and self.labels.seizure.column is not None:
                yield ("labels", "seizure", "column"), self.labels.seizure.column
            for target, rule in self.labels.rules():
                yield from _rule_columns(("labels", target), rule)


def _rule_columns(path: Path_, rule: FieldRule) -> Iterator[tuple[Path_, str]]:
    if rule.column is not None:
        yield (*path, "column"), rule.column
    if rule.currency is not None and rule.currency.column is not None:
        yield (*path, "currency", "column"), rule.currency.column
    if rule.expression is not None:
        try:
            parsed = parse_expression(rule.expression)
        except ExpressionError:
            return  # reported by the semantic check
        for column in parsed.columns:
            yield (*path, "expression"), column


# --- checks pydantic cannot make ---------------------------------------------------------------


def _pydantic_problems(error: ValidationError, doc: _Document) -> list[MappingProblem]:
    problems = []
    for item in error.errors(include_url=False):
        path = tuple(str(p) for p in item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown key" + _allowed_keys(path)
        elif kind == "missing":
            message = "required key missing"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            if kind not in ("value_error", "assertion_error") and "input" in item:
                message += f" (got {item['input']!r:.60})"
        problems.append(MappingProblem(path, message, doc.line(path)))
    return problems


_KEYS_BY_SECTION: dict[str, type[BaseModel]] = {
    "source": SourceOptions,
    "labels": LabelRules,
    "split": PublishedSplit,
}


def _allowed_keys(path: Path_) -> str:
    """The keys allowed where an unknown one was found (so a typo is easy to fix)."""
    model: type[BaseModel] | None = None
    if len(path) == 1:
        model = MappingFile
    elif len(path) == 2:
        model = _KEYS_BY_SECTION.get(path[0])
    elif len(path) == 3 and path[0] == "declarations":
        model = FieldRule
    elif len(path) == 3 and path[0] == "extra":
        model = ExtraRule
    elif len(path) == 3 and path[0] == "labels":
        sections: dict[str, type[BaseModel]] = {"outcome": OutcomeRule, "seizure": SeizureRule}
        model = sections.get(path[1], FieldRule)
    elif len(path) == 4 and path[2] == "currency":
        model = Currency
    if model is None:
        return ""
    return f" (allowed here: {', '.join(model.model_fields)})"


def _semantic_problems(mapping: MappingFile, doc: _Document) -> list[MappingProblem]:
    problems: list[MappingProblem] = []

    def problem(path: Path_, message: str) -> None:
        problems.append(MappingProblem(path, message, doc.line(path)))

    contract = contract_for("declarations", mapping.identifier_format)
    types: dict[str, str] = {s.name: s.type for s in contract.fields if s.name != "extra"}
    for target in mapping.declarations:
        if target == "extra":
            problem(("declarations", target), "national attributes go in the `extra` section")
        elif target not in types:
            problem(
                ("declarations", target),
                f"unknown declaration field (fields: {', '.join(types)})",
            )
    missing = [
        name
        for name in contract.required_fields
        if name in types and name not in mapping.declarations
    ]
    if missing:
        problem(("declarations",), f"required field(s) not mapped: {', '.join(missing)}")
    for target, rule in mapping.declarations.items():
        if target in types:
            _check_rule(("declarations", target), rule, types[target], types, problem, labels=False)
    for name in mapping.extra:
        if not _EXTRA_NAME.fullmatch(name):
            problem(("extra", name), "a name of lower-case letters, digits and _ (e.g. pay_type)")
    if mapping.labels is not None:
        for target, rule in mapping.labels.rules():
            _check_rule(
                ("labels", target), rule, LABEL_TARGETS[target], types, problem, labels=True
            )
    problems.extend(_cycles(mapping, doc))
    if mapping.source.format == "parquet":
        for key in ("delimiter", "encoding", "decimal"):
            if key in mapping.source.model_fields_set:
                problem(("source", key), "applies to CSV files only")
    return problems


def _check_rule(
    path: Path_,
    rule: FieldRule,
    kind: str,
    types: dict[str, str],
    problem: Callable[[Path_, str], None],
    *,
    labels: bool,
) -> None:
    given = rule.model_fields_set
    if ("format" in given or "timezone" in given) and kind != "timestamp":
        problem((*path, "format" if "format" in given else "timezone"), "only for date-time fields")
    if "currency" in given and kind != "float":
        problem((*path, "currency"), "only for amounts")
    if "pad" in given and kind not in ("str", "int"):
        problem((*path, "pad"), "only for codes and identifiers")
    if "offset_days" in given and not (labels and kind == "timestamp"):
        problem(
            (*path, "offset_days"),
            "only for labels.controlled_at / labels.reported_at (days after the lodgement)",
        )
    if rule.default_from is not None and rule.default_from not in types:
        problem((*path, "default_from"), f"{rule.default_from!r} is not a declaration field")
    if rule.expression is not None:
        if kind != "float":
            problem((*path, "expression"), "expressions compute amounts and masses only")
        try:
            parsed = parse_expression(rule.expression)
        except ExpressionError as error:
            problem((*path, "expression"), str(error))
            return
        unknown = [name for name in parsed.fields if name not in types]
        if unknown:
            problem(
                (*path, "expression"),
                f"{', '.join(unknown)}: not declaration fields (quote source columns in "
                "backticks: `COLUMN`)",
            )


def _dependencies(mapping: MappingFile) -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {}
    for target, rule in mapping.declarations.items():
        needs: set[str] = set()
        if rule.default_from is not None:
            needs.add(rule.default_from)
        if rule.expression is not None:
            with contextlib.suppress(ExpressionError):
                needs.update(parse_expression(rule.expression).fields)
        deps[target] = needs
    return deps


def evaluation_order(mapping: MappingFile) -> list[str]:
    """Declaration fields in an order where every field comes after those it reads."""
    deps = _dependencies(mapping)
    order: list[str] = []
    done: set[str] = set()

    def visit(target: str, stack: tuple[str, ...]) -> None:
        if target in done or target not in deps or target in stack:
            return
        for need in sorted(deps[target]):
            visit(need, (*stack, target))
        done.add(target)
        order.append(target)

    for target in deps:
        visit(target, ())
    return order


def _cycles(mapping: MappingFile, doc: _Document) -> list[MappingProblem]:
    """Fields that read themselves (through others), or read a field left unmapped."""
    deps = _dependencies(mapping)
    problems = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(target: str) -> None:
        state[target] = 1
        for need in sorted(deps[target]):
            if state.get(need) == 1:
                path = ("declarations", target)
                message = f"reads itself through {need} (default_from / expression)"
                problems.append(MappingProblem(path, message, doc.line(path)))
            elif need in deps and need not in state:
                visit(need)
        state[target] = 2

    for target in deps:
        if target not in state:
            visit(target)
    known = set(contract_for("declarations").field_names)
    for target, needs in deps.items():
        for need in sorted(needs & known - set(mapping.declarations)):
            path = ("declarations", target)
            message = f"reads {need}, which the mapping does not map"
            problems.append(MappingProblem(path, message, doc.line(path)))
    return problems


@dataclass(frozen=True)
class LoadedMapping:
    """A checked mapping, the file it came from and the line of every key."""

    mapping: MappingFile
    name: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line(self, path: Path_) -> int | None:
        return _Document(None, self.lines).line(path)

    def problem(
        self, path: Path_, message: str, rows: tuple[tuple[int, str], ...] = (), n_rows: int = 0
    ) -> MappingProblem:
        return MappingProblem(path, message, self.line(path), rows, n_rows)

    def error(self, problems: list[MappingProblem]) -> MappingError:
        return MappingError(self.name, problems)


def parse_mapping(text: str, name: str = "mapping") -> LoadedMapping:
    """The mapping in ``text``, checked, with the line of every key.

    Raises:
        MappingError: the YAML is malformed, a key is unknown, a rule is incomplete or does
            not fit its field; every problem found is listed.
    """
    try:
        doc = _read_yaml(text)
    except _YamlProblem as found:
        raise MappingError(name, [MappingProblem(found.path, found.message, found.line)]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        reason = getattr(error, "problem", None) or str(error)
        raise MappingError(name, [MappingProblem((), f"not valid YAML: {reason}", line)]) from None
    if not isinstance(doc.data, dict):
        raise MappingError(name, [MappingProblem((), "a mapping of keys expected", 1)])
    try:
        mapping = MappingFile.model_validate(doc.data)
    except ValidationError as error:
        raise MappingError(name, _pydantic_problems(error, doc)) from None
    problems = _semantic_problems(mapping, doc)
    if problems:
        raise MappingError(name, problems)
    return LoadedMapping(mapping, name, doc.lines)


def load_mapping(path: Path | str) -> LoadedMapping:
    """Read and check a mapping file (see :func:`parse_mapping`)."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(str(path), [MappingProblem((), "no such file")])
    if path.stat().st_size > _MAX_MAPPING_BYTES:
        raise MappingError(str(path), [MappingProblem((), "larger than 1 MB: not a mapping")])
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise MappingError(str(path), [MappingProblem((), "not UTF-8 text")]) from None
    return parse_mapping(text, str(path))
