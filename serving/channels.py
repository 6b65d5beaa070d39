"""Control channels from scores, sized to the control capacity.

Thresholds come from the bundle's reference quantiles (the score distribution of recent items),
so that the share of items sent to control matches ``control_capacity``:

- ``red`` (physical): the highest-risk share of model selections, and any selection whose main
  area is not financial (goods must be seen for safety, prohibitions, IPR, product safety);
- ``yellow`` (documentary): the other model selections;
- ``blue`` (post-release audit): items not selected whose expected revenue is in the top
  ``post_release_share`` (audits do not hold the goods);
- random selections (``random_rate``, counted inside the capacity) are marked as such: they are
  the unbiased sample that evaluation and retraining rely on;
- ``green``: release.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChannelPolicy", "assign_channels", "random_draw"]


@dataclass(frozen=True)
class ChannelPolicy:
    select_threshold: float
    red_threshold: float
    revenue_threshold: float
    random_rate: float

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
    ) -> ChannelPolicy:
        grid = np.linspace(0.0, 1.0, len(overall_quantiles))
        model_share = capacity - random_rate
        select = float(np.interp(1.0 - model_share, grid, overall_quantiles))
        red = float(np.interp(1.0 - model_share * physical_share, grid, overall_quantiles))
        revenue = (
            float(np.interp(1.0 - post_release_share, grid, revenue_quantiles))
            if revenue_quantiles
            else float("inf")
        )
        return cls(select, red, max(revenue, 1e-9), random_rate)


def random_draw(scoring_ids: list[str]) -> np.ndarray:
    """A uniform number per item read from its (random, hexadecimal) scoring id: the random
    selection of an item is reproducible from the audit log."""
    return np.array([int(s[-13:], 16) / 16**13 for s in scoring_ids])


def assign_channels(
    overall: np.ndarray,
    primary_area: np.ndarray,
    expected_revenue: np.ndarray,
    draw: np.ndarray,
    policy: ChannelPolicy,
) -> tuple[np.ndarray, np.ndarray]:
    """Channel per item and whether it was a random selection."""
    selected = overall >= policy.select_threshold
    non_financial = primary_area != "financial"
    channel = np.full(len(overall), "green", dtype=object)
    channel[selected] = "yellow"
    channel[selected & ((overall >= policy.red_threshold) | non_financial)] = "red"
    blue = ~selected & (expected_revenue >= policy.revenue_threshold)
    channel[blue] = "blue"
    random_selection = (channel == "green") & (draw < policy.random_rate)
    channel[random_selection] = "red"
    return channel, random_selection
