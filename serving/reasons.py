"""Reasons a person can read, from LightGBM's native TreeSHAP (``pred_contrib``).

A reason is a feature, its value, its contribution to the area model's log-odds (exactly
``shap.TreeExplainer``'s value, tested) and a sentence that says three things: the value, the
comparison that makes it meaningful (the typical value for importers of the same goods, or where
it stands among recent items), and the size of the effect as a change of the calibrated
probability ("raises the financial risk from 4.1% to 9.3%": the score with and without this
feature's contribution).

Comparisons come from the model's reference sample (a random sample of recent items that travels
with the model in the bundle): :class:`ReferenceProfile` summarises it once, when the bundle is
loaded, so a request only looks values up (a binary search and a dictionary access per reason).
Everything is generic over the model's spec: a feature added later (a national ``extra``
attribute, say) gets the same kind of sentence from its label and its reference values.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.model_input import calibrate

__all__ = [
    "AREA_NAMES",
    "GROUP_FEATURE",
    "Comparison",
    "FeatureReference",
    "ReferenceProfile",
    "area_name",
    "format_probability",
    "format_value",
    "reason_sentence",
    "top_reasons",
]

AREA_NAMES = {
    "financial": "financial",
    "safety_security": "safety and security",
    "prohibitions_restrictions": "prohibitions and restrictions",
    "ipr": "IPR (counterfeit)",
    "product_safety": "product safety",
}
# Features of a party: compared with the same kind of party trading the same goods.
_PARTIES = {
    "importer_": "importers",
    "seller_": "sellers",
    "declarant_": "declarants",
    "consignor_": "consignors",
    "carrier_": "carriers",
    "chapter_share": "importers",
    "origin_share": "importers",
    "registration_age": "importers",
}
GROUP_FEATURE = "hs_chapter"
_MIN_GROUP = 30  # reference items a group needs before its typical value is quoted
_LOG_UNIT = re.compile(r"\s*\(log(?: ([^)]*))?\)")

Kind = Literal["numeric", "flag", "categorical"]


def area_name(area: str) -> str:
    return AREA_NAMES.get(area, area.replace("_", " "))


def format_probability(value: float) -> str:
    """A probability as a person reads it: 4.1%, 12%, <0.1%."""
    percent = round(100.0 * float(value), 9)  # 0.09999999999999998 is 10%, not 10.0%
    if percent < 0.1:
        return "<0.1%"
    if percent < 10:
        return f"{percent:.1f}%"
    if 99.9 < percent < 100:
        return ">99.9%"
    return f"{percent:.0f}%"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def format_value(value: Any, unit: str = "") -> str:
    """A feature value as text (missing: "unknown (no history)")."""
    if _missing(value):
        return "unknown (no history)"
    if isinstance(value, float | np.floating | int | np.integer) and not isinstance(value, bool):
        number = float(value)
        if number.is_integer() and abs(number) < 1e9:
            text = f"{int(number):,}"
        elif abs(number) >= 100:
            text = f"{number:,.0f}"
        else:
            text = f"{number:.3g}"
        return f"{text} {unit}".strip()
    return str(value)


@dataclass(frozen=True)
class Comparison:
    """How an item's value stands against the reference sample."""

    text: str  # ", against a typical 0.04 for importers of goods in HS chapter 61 (…)"
    percentile: float | None = None  # share of recent items with a lower value, 0–100
    typical: Any = None  # the typical value quoted (group or overall median, or a share)


@dataclass(frozen=True)
class FeatureReference:
    """One feature's reference values, summarised for look-ups."""

    name: str
    label: str
    kind: Kind
    values: np.ndarray = field(repr=False)  # sorted non-missing values (numeric and flags)
    missing_share: float = 0.0
    median: float | None = None
    group_medians: Mapping[str, float] = field(default_factory=dict)
    shares: Mapping[str, float] = field(default_factory=dict)  # categories (flags: "yes")
    party: str | None = None  # "importers" for an importer's feature
    log_unit: str | None = None  # "EUR" for a feature shown on a log scale
    as_share: bool = False  # a rate or share between 0 and 1, shown as a percentage
    ordered: list[float] = field(init=False, repr=False, compare=False)
    # Comparison texts that do not depend on the item, written once (a request only joins them).
    texts: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ordered", self.values.tolist())
        texts = {"missing": f" (as for {format_probability(self.missing_share)} of recent items)"}
        if self.kind == "categorical":
            texts.update(
                {
                    f"={k}": f" ({format_probability(v)} of recent items)"
                    for k, v in self.shares.items()
                }
            )
        elif self.kind == "flag":
            texts["flag"] = (
                f" (yes for {format_probability(self.shares.get('yes', 0.0))} of recent items)"
            )
        else:
            if self.median is not None:
                texts["median"] = f"typical {self._plain_display(self.median)}"
            for group, typical in self.group_medians.items():
                texts[f"@{group}"] = (
                    f", against a typical {self._plain_display(typical)} for {self.party} of "
                    f"goods in HS chapter {group}"
                )
        object.__setattr__(self, "texts", texts)

    def percentile(self, value: Any) -> float | None:
        """Mid-rank percentile of ``value`` among the non-missing reference values."""
        ordered = self.ordered
        if _missing(value) or self.kind == "categorical" or not ordered:
            return None
        number = float(value)
        # bisect on a list: a request computes a few of these per item, and numpy's per-call
        # overhead would cost more than the search itself.
        below = bisect.bisect_left(ordered, number)
        up_to = bisect.bisect_right(ordered, number, below)
        return 100.0 * (below + 0.5 * (up_to - below)) / len(ordered)

    def display(self, value: Any) -> str:
        """The value as a person reads it (flags as yes/no, log scales undone)."""
        if _missing(value):
            return "unknown, no history" if _is_history(self.name) else "not given"
        if self.kind == "flag":
            return "yes" if float(value) >= 0.5 else "no"
        if self.log_unit is not None and isinstance(value, int | float | np.floating):
            return "about " + format_value(math.exp(float(value)), self.log_unit)
        if self.as_share and isinstance(value, int | float | np.floating):
            return format_probability(float(value)) if value > 0 else "0%"
        return format_value(value)

    def compare(self, value: Any, group: Any = None) -> Comparison:
        """The comparison a sentence quotes for ``value`` (``group``: the item's HS chapter)."""
        texts = self.texts
        if _missing(value):
            return Comparison(texts["missing"])
        if self.kind == "categorical":
            key = f"={value}"
            if key not in texts:
                return Comparison(" (not seen among recent items)", typical=0.0)
            return Comparison(texts[key], typical=self.shares[key[1:]])
        if self.kind == "flag":
            return Comparison(texts["flag"], typical=self.shares.get("yes", 0.0))
        percentile = self.percentile(value)
        standing = "" if percentile is None else _standing(percentile)
        group_text = texts.get(f"@{group}") if self.party is not None else None
        if group_text is not None:
            typical = self.group_medians[str(group)]
            return Comparison(
                group_text + (f" ({standing})" if standing else ""), percentile, typical
            )
        if self.median is None:
            return Comparison(f", {standing}" if standing else "", percentile)
        typical_text = texts["median"]
        text = f", {standing} ({typical_text})" if standing else f" ({typical_text})"
        return Comparison(text, percentile, self.median)

    def _plain_display(self, value: float) -> str:
        return self.display(value).removeprefix("about ")


def _standing(percentile: float) -> str:
    if percentile >= 50:
        return f"higher than {min(percentile, 99.0):.0f}% of recent items"
    return f"lower than {min(100.0 - percentile, 99.0):.0f}% of recent items"


def _label_and_unit(label: str, name: str) -> tuple[str, str | None]:
    match = _LOG_UNIT.search(label) if name.startswith("log_") else None
    if match is None:
        return label, None
    return _LOG_UNIT.sub("", label), (match.group(1) or "")


def _is_history(name: str) -> bool:
    """Features counted over a party's or a route's past (missing means: never seen)."""
    return bool(re.search(r"_\d+d$", name)) or _party(name) is not None


def _party(name: str) -> str | None:
    return next((party for prefix, party in _PARTIES.items() if name.startswith(prefix)), None)


def _feature_reference(
    name: str, label: str, column: pd.Series, categorical: bool, groups: pd.Series | None
) -> FeatureReference:
    text_label, log_unit = _label_and_unit(label, name)
    n = max(len(column), 1)
    if categorical:
        values = column.astype("string")
        counts = values.value_counts(dropna=True)
        return FeatureReference(
            name, text_label, "categorical", np.empty(0),
            missing_share=float(values.isna().sum() / n),
            shares={str(k): float(v / n) for k, v in counts.items()},
        )  # fmt: skip
    numbers = pd.to_numeric(column, errors="coerce").astype(float)
    present = numbers.dropna()
    values = np.sort(present.to_numpy())
    missing_share = float(1.0 - len(present) / n)
    if len(values) and np.isin(values, (0.0, 1.0)).all() and log_unit is None:
        return FeatureReference(
            name, text_label, "flag", values, missing_share,
            shares={"yes": float(values.mean())},
        )  # fmt: skip
    party = _party(name)
    group_medians: dict[str, float] = {}
    if party is not None and groups is not None:
        grouped = present.groupby(groups.loc[present.index].astype("string"))
        sizes = grouped.size()
        medians = grouped.median()
        group_medians = {
            str(k): float(v) for k, v in medians.items() if sizes[k] >= _MIN_GROUP and pd.notna(v)
        }
    as_share = bool(
        re.search(r"(rate|share)(_|$)", name) and len(values) and 0 <= values[0] <= values[-1] <= 1
    )
    return FeatureReference(
        name, text_label, "numeric", values, missing_share,
        median=float(np.median(values)) if len(values) else None,
        group_medians=group_medians, party=party, log_unit=log_unit, as_share=as_share,
    )  # fmt: skip


class ReferenceProfile:
    """Every feature of a model summarised from its reference sample (built once per bundle)."""

    def __init__(self, features: Mapping[str, FeatureReference], n_items: int) -> None:
        self.features = dict(features)
        self.n_items = n_items

    @classmethod
    def from_frame(
        cls,
        reference: pd.DataFrame,
        feature_names: Sequence[str],
        labels: Mapping[str, str],
        categorical: Sequence[str] | set[str],
    ) -> ReferenceProfile:
        """Summarise ``reference`` (the model frame of recent items) for ``feature_names``."""
        groups = reference.get(GROUP_FEATURE)
        categorical = set(categorical)
        features = {}
        for name in feature_names:
            column = reference[name] if name in reference else pd.Series([None] * len(reference))
            features[name] = _feature_reference(
                name, labels.get(name, name.replace("_", " ")), column, name in categorical, groups
            )
        return cls(features, len(reference))

    @classmethod
    def empty(cls) -> ReferenceProfile:
        return cls({}, 0)

    def get(self, name: str, label: str) -> FeatureReference:
        found = self.features.get(name)
        if found is None:  # a model without a reference: no comparison, the value alone
            text, unit = _label_and_unit(label, name)
            return FeatureReference(name, text, "numeric", np.empty(0), log_unit=unit)
        return found


def reason_sentence(
    label: str,
    value_text: str,
    contribution: float,
    area: str,
    comparison: str = "",
    probabilities: tuple[float, float] | None = None,
) -> str:
    """'Label: value, comparison. This raises the <area> risk from p0 to p1.'"""
    direction = "raises" if contribution > 0 else "lowers"
    sentence = f"{label[0].upper()}{label[1:]}: {value_text}{comparison}. This {direction} the "
    sentence += f"{area_name(area)} risk"
    if probabilities is None:
        return sentence + "."
    before, after = (format_probability(p) for p in probabilities)
    if before == after:
        return sentence + f" slightly (it stays at {after})."
    return sentence + f" from {before} to {after}."


def top_reasons(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    values: Sequence[Any],
    labels: Mapping[str, str],
    area: str,
    k: int = 5,
    *,
    profile: ReferenceProfile | None = None,
    group: Any = None,
    calibration: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The ``k`` features with the largest contributions for one row, each with its sentence.

    ``contributions`` is one row of ``pred_contrib`` (the last column is the bias). Reasons that
    raise the risk come first; if fewer than ``k`` do, the strongest lowering ones follow, so an
    officer also sees what spoke against a control. With ``calibration`` (the model's map) each
    reason says how far it moves the calibrated probability; with ``profile`` it quotes the
    comparison, ``group`` being the item's HS chapter.
    """
    row = np.asarray(contributions, dtype=float)
    features = row[: len(feature_names)]
    order = np.argsort(-np.abs(features))
    ranked = features[order]
    chosen = np.concatenate([order[ranked > 0], order[ranked < 0]])[:k].tolist()
    strength = features[chosen].tolist()
    effects: list[float] | None = None
    if calibration is not None and chosen:
        margin = float(row.sum())
        effects = _calibrated([margin, *(margin - c for c in strength)], calibration)
    profile = profile or ReferenceProfile.empty()
    reasons = []
    for position, i in enumerate(chosen):
        name = feature_names[i]
        value = values[i]
        reference = profile.get(name, labels.get(name, name))
        comparison = reference.compare(value, group)
        probabilities = None if effects is None else (effects[position + 1], effects[0])
        reasons.append(
            {
                "feature": name,
                "value": None if _missing(value) else value,
                "contribution": round(strength[position], 6),
                "area": area,
                "sentence": reason_sentence(
                    reference.label,
                    reference.display(value),
                    strength[position],
                    area,
                    comparison.text,
                    probabilities,
                ),
                "percentile": None
                if comparison.percentile is None
                else round(comparison.percentile, 1),
                "typical": _plain(comparison.typical),
                "probability_without": None
                if probabilities is None
                else round(probabilities[0], 6),
                "probability_with": None if probabilities is None else round(probabilities[1], 6),
            }
        )
    return reasons


def _calibrated(margins: list[float], calibration: Mapping[str, Any]) -> list[float]:
    """``calibrate`` for a handful of margins (plain floats: cheaper than numpy for six)."""
    method = calibration.get("method", "none")
    if method == "platt":
        a, b = float(calibration["a"]), float(calibration["b"])
        return [_sigmoid(a * m + b) for m in margins]
    if method == "none":
        return [_sigmoid(m) for m in margins]
    return [float(p) for p in calibrate(np.array(margins), calibration)]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)  # never overflows for x < 0
    return z / (1.0 + z)


def _plain(value: Any) -> Any:
    if isinstance(value, np.floating | float):
        return None if math.isnan(value) else round(float(value), 6)
    return value
