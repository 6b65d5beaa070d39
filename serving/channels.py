"""Control channels from scores, sized to the control capacity.

Items are ranked by their selection value: what a control is expected to bring, the expected
revenue at risk (EUR, the revenue model) plus ``hit_value_eur`` for each expected irregularity
in an area that recovers no revenue (counterfeit, unsafe or prohibited goods). A financial
irregularity counts by what it recovers only: ranking by the probability of any irregularity
would fill the capacity with many likely but small recoveries. Without a revenue model (ENS
filings, a dataset whose recovered revenue is unknown) the value is the overall probability.

Thresholds come from the bundle's reference sample (the scores of recent items), so that the
share of items sent to control matches ``control_capacity``:

- ``red`` (physical): the highest-valued share of model selections, and any selection whose main
  area is not financial (goods must be seen for safety, prohibitions, IPR, product safety);
- ``yellow`` (documentary): the other model selections;
- ``blue`` (post-release audit): items not selected whose expected revenue is in the top
  ``post_release_share`` (audits do not hold the goods);
- random selections (``random_rate``, counted inside the capacity) are drawn among *all* scored
  items, whatever their score, from a number read from the item's scoring id (so the draw can be
  checked against the audit log): they are the uniform sample that evaluation and retraining
  rely on, marked as such and sent to ``red``;
- ``green``: release.

Every item also gets its selection probability (:class:`Selection`): 1 where the thresholds
select it (nothing but the score decides), ``random_rate`` elsewhere (only the draw can select
it). That is the propensity training uses for inverse-probability weights, recorded rather than
estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ChannelPolicy",
    "assign_channels",
    "random_draw",
    "ranking_quantiles",
    "selections",
    "threshold_selected",
]


@dataclass(frozen=True)
class ChannelPolicy:
    select_threshold: float  # on the selection value
    red_threshold: float  # on the selection value
    revenue_threshold: float
    random_rate: float
    hit_value_eur: float | None = None  # None: the value is the overall probability

    def selection_value(
        self, overall: np.ndarray, non_financial: np.ndarray, expected_revenue: np.ndarray
    ) -> np.ndarray:
        """Expected revenue + the value of the expected non-revenue irregularities (EUR)."""
        if self.hit_value_eur is None:
            return overall
        return np.nan_to_num(expected_revenue) + self.hit_value_eur * np.nan_to_num(non_financial)

    @classmethod
    def from_quantiles(
        cls,
        overall_quantiles: list[float],
        revenue_quantiles: list[float] | None,
        *,
        capacity: float,
        random_rate: float,
        physical_share: float,
        post_release_share: float,
        hit_value_eur: float | None = None,
    ) -> ChannelPolicy:
        """``overall_quantiles``: of the selection value (of the overall probability when
        ``hit_value_eur`` is None)."""
        grid = np.linspace(0.0, 1.0, len(overall_quantiles))
        # The random draw also falls on items the model selects: the model's share is set so
        # that model + random (without double counting) meets the capacity.
        model_share = (capacity - random_rate) / (1.0 - random_rate)
        select = float(np.interp(1.0 - model_share, grid, overall_quantiles))
        red = float(np.interp(1.0 - model_share * physical_share, grid, overall_quantiles))
        revenue = (
            float(np.interp(1.0 - post_release_share, grid, revenue_quantiles))
            if revenue_quantiles
            else float("inf")
        )
        return cls(select, red, max(revenue, 1e-9), random_rate, hit_value_eur)


def ranking_quantiles(
    quantiles: dict[str, Any], hit_value_eur: float
) -> tuple[list[float], float | None]:
    """Quantiles of the selection value over the bundle's reference items, and the hit value
    they assume; the overall probability's (and None) for a bundle without a revenue model or
    built before the reference scores were kept."""
    reference = quantiles.get("reference_scores")
    if not reference:
        return list(quantiles["overall"]), None
    value = np.asarray(reference["expected_revenue"], dtype=float) + hit_value_eur * np.asarray(
        reference["non_financial"], dtype=float
    )
    grid = np.linspace(0.0, 1.0, len(quantiles["overall"]))
    return np.quantile(value, grid).tolist(), hit_value_eur


def random_draw(scoring_ids: list[str]) -> np.ndarray:
    """A uniform number per item read from its (random, hexadecimal) scoring id: the random
    selection of an item is reproducible from the audit log."""
    return np.array([int(s[-13:], 16) / 16**13 for s in scoring_ids])


def assign_channels(
    value: np.ndarray,
    primary_area: np.ndarray,
    expected_revenue: np.ndarray,
    draw: np.ndarray,
    policy: ChannelPolicy,
) -> tuple[np.ndarray, np.ndarray]:
    """Channel per item (``value``: its selection value) and whether it was a random selection.

    The random draw is independent of the score: an item the model would select anyway can be
    drawn too, and is then marked random (the sample stays uniform over all traffic).
    """
    selected = value >= policy.select_threshold
    non_financial = primary_area != "financial"
    channel = np.full(len(value), "green", dtype=object)
    channel[selected] = "yellow"
    channel[selected & ((value >= policy.red_threshold) | non_financial)] = "red"
    blue = ~selected & (expected_revenue >= policy.revenue_threshold)
    channel[blue] = "blue"
    random_selection = np.asarray(draw < policy.random_rate)
    channel[random_selection] = "red"
    return channel, random_selection


def threshold_selected(
    value: np.ndarray, expected_revenue: np.ndarray, policy: ChannelPolicy
) -> np.ndarray:
    """Items the thresholds select (yellow, red or blue before any random draw)."""
    return np.asarray(
        (value >= policy.select_threshold) | (expected_revenue >= policy.revenue_threshold)
    )


def selections(
    by_threshold: np.ndarray, random_selection: np.ndarray, random_rate: float
) -> list[dict[str, str | float | None]]:
    """Per item: ``{"reason", "probability"}`` of its selection (audit entry shape).

    ``reason`` is ``random`` for a drawn item (even one the thresholds would select: the sample
    stays uniform), ``model`` for a threshold selection, None for a release. ``probability`` is
    the chance the service selects the item given its score: 1 above a threshold, the random
    rate below.
    """
    rate = float(random_rate)
    return [
        {
            "reason": "random" if drawn else "model" if chosen else None,
            "probability": 1.0 if chosen else rate,
        }
        for chosen, drawn in zip(by_threshold.tolist(), random_selection.tolist(), strict=True)
    ]
