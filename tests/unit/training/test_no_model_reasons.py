"""Why an area got no model: the training run's tag, written and read by one name."""

from __future__ import annotations

from training.train import no_model_reasons, no_model_tag


def test_reasons_are_read_back_by_subject_area_and_task_even_with_underscores_in_the_area() -> None:
    tags = {
        no_model_tag("declaration", "product_safety", "classification"): "4 training hits",
        no_model_tag("declaration", "financial", "revenue"): "113 training hits",
        "mlflow.runName": "crisk train",
        "data_snapshot": "abc",
    }
    assert no_model_reasons(tags) == {
        "declaration/financial (revenue)": "113 training hits",
        "declaration/product_safety (classification)": "4 training hits",
    }
