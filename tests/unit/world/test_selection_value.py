"""What a model-guided control unit ranks by, and the ceiling the oracle sets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_contracts.codelists import RISK_AREAS
from world.strategies import ControlUnit, non_financial_probability, oracle_score


def test_a_financial_irregularity_counts_once_by_what_it_recovers() -> None:
    unit = ControlUnit(share=0.05, physical_share=0.3, hit_value_eur=500.0)
    probabilities = {
        "financial": np.array([0.9, 0.2]),
        "ipr": np.array([0.0, 0.5]),
        "product_safety": np.array([0.0, 0.0]),
    }
    non_financial = non_financial_probability(probabilities, 2)
    np.testing.assert_allclose(non_financial, [0.0, 0.5])
    value = unit.control_value(non_financial, np.array([90.0, 100.0]))
    # A likely but small recovery ranks below a likely counterfeit: 90 EUR vs 100 + 250.
    np.testing.assert_allclose(value, [90.0, 350.0])


def test_the_oracle_ranks_by_the_revenue_really_at_risk() -> None:
    unit = ControlUnit(share=0.05, physical_share=0.3, hit_value_eur=500.0)
    truth = pd.DataFrame(
        {
            **{f"p_{a}": [0.0, 0.0, 0.0] for a in RISK_AREAS},
            "recoverable_revenue_eur": [0.0, 5_000.0, 40.0],
        }
    )
    truth["p_financial"] = [0.99, 0.3, 0.99]
    truth["p_ipr"] = [0.0, 0.0, 0.5]
    score = oracle_score(unit)(truth, truth)
    assert list(np.argsort(-score)) == [1, 2, 0]
