"""Arithmetic expressions of a mapping (``expression`` rules), parsed safely and run on columns.

``"`VALUE` * `TAX_RATE` / 100 / 15.6"``: source columns in backticks, already mapped fields by
name (``customs_value_eur``), numbers, ``+ - * / // % **``, parentheses and ``abs``, ``min``,
``max``, ``round``. The text is parsed with Python's own parser into a syntax tree and every node
is checked against that whitelist; nothing else (attributes, subscripts, other calls, names that
are not fields) is accepted, and the user's text is never passed to ``eval``. Evaluation is
vectorised over numpy arrays: a million rows cost a few array operations.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Expression", "ExpressionError", "parse_expression"]

_BACKTICKED = re.compile(r"`([^`]*)`")
_MAX_NODES = 200

_BINARY: dict[type[ast.operator], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_UNARY: dict[type[ast.unaryop], Callable[[np.ndarray], np.ndarray]] = {
    ast.UAdd: np.positive,
    ast.USub: np.negative,
}
_FUNCTIONS: dict[str, tuple[int, Callable[..., np.ndarray]]] = {
    "abs": (1, np.abs),
    "round": (1, np.round),
    "min": (2, np.fmin),
    "max": (2, np.fmax),
}


class ExpressionError(ValueError):
    """The expression is not one the mapping accepts; the message says what is wrong."""


@dataclass(frozen=True)
class Expression:
    """A checked expression: what it reads, and how to compute it."""

    text: str
    tree: ast.expr
    columns: tuple[str, ...]  # source columns, in order of first use
    fields: tuple[str, ...]  # mapped fields it reads
    placeholders: dict[str, str]  # placeholder name -> source column

    def evaluate(
        self, columns: Mapping[str, np.ndarray], fields: Mapping[str, np.ndarray], n: int
    ) -> np.ndarray:
        """The expression over ``n`` rows of float arrays (NaN where an input is missing)."""

        def value(node: ast.expr) -> Any:
            if isinstance(node, ast.Constant):
                return float(node.value)  # type: ignore[arg-type]  # numbers only (_check)
            if isinstance(node, ast.Name):
                if node.id in self.placeholders:
                    return columns[self.placeholders[node.id]]
                return fields[node.id]
            if isinstance(node, ast.BinOp):
                return _BINARY[type(node.op)](value(node.left), value(node.right))
            if isinstance(node, ast.UnaryOp):
                return _UNARY[type(node.op)](value(node.operand))
            assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            return _FUNCTIONS[node.func.id][1](*(value(a) for a in node.args))

        with np.errstate(all="ignore"):
            result = value(self.tree)
        return np.broadcast_to(np.asarray(result, dtype=np.float64), (n,)).copy()


def _check(node: ast.AST, placeholders: dict[str, str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise ExpressionError(f"only numbers are allowed as constants, not {node.value!r}")
    elif isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            raise ExpressionError("assignments are not allowed")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left, placeholders)
        _check(node.right, placeholders)
    elif isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            raise ExpressionError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, placeholders)
    elif isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise ExpressionError(f"only {', '.join(_FUNCTIONS)} may be called")
        if len(node.args) != _FUNCTIONS[name][0]:
            raise ExpressionError(f"{name} takes {_FUNCTIONS[name][0]} argument(s)")
        for argument in node.args:
            _check(argument, placeholders)
    else:
        raise ExpressionError(
            f"{type(node).__name__} is not allowed: use numbers, `COLUMNS`, mapped fields, "
            "+ - * / // % ** and abs/min/max/round"
        )


def parse_expression(text: str) -> Expression:
    """Check ``text`` and return it ready to evaluate.

    Raises:
        ExpressionError: unbalanced backticks, a syntax error, or anything outside the whitelist.
    """
    placeholders: dict[str, str] = {}
    by_column: dict[str, str] = {}

    def placeholder(match: re.Match[str]) -> str:
        column = match.group(1)
        if not column.strip():
            raise ExpressionError("empty column name in backticks")
        if column not in by_column:
            by_column[column] = f"__column_{len(by_column)}"
            placeholders[by_column[column]] = column
        return by_column[column]

    rewritten = _BACKTICKED.sub(placeholder, text)
    if "`" in rewritten:
        raise ExpressionError("unbalanced backtick: quote each source column as `COLUMN`")
    try:
        tree = ast.parse(rewritten.strip(), mode="eval")
    except SyntaxError as error:
        raise ExpressionError(f"not an arithmetic expression ({error.msg})") from None
    if sum(1 for _ in ast.walk(tree)) > _MAX_NODES:
        raise ExpressionError(f"longer than {_MAX_NODES} terms")
    _check(tree.body, placeholders)
    function_names = {id(n.func) for n in ast.walk(tree.body) if isinstance(n, ast.Call)}
    fields = tuple(
        dict.fromkeys(
            n.id
            for n in ast.walk(tree.body)
            if isinstance(n, ast.Name) and n.id not in placeholders and id(n) not in function_names
        )
    )
    bad = [f for f in fields if f.startswith("__")]
    if bad:
        raise ExpressionError(f"{bad[0]}: not a field name")
    return Expression(
        text=text,
        tree=tree.body,
        columns=tuple(placeholders.values()),
        fields=fields,
        placeholders=placeholders,
    )
