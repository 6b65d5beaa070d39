"""Behavioural tests of the champions: explanations, invariance, direction, planted cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_contracts.definitions import contract_for
from features.model_input import FEATURES_BY_SUBJECT
from training.explain import shap_values

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def references(bundle) -> dict[str, pd.DataFrame]:
    import bentoml

    folder = Path(bentoml.models.get(bundle.tag).path)
    return {
        m.name: pd.read_parquet(folder / m.name / "reference_sample.parquet").head(600)
        for m in bundle.models
    }


def test_pred_contrib_reasons_equal_shap_tree_explainer(bundle, references) -> None:
    for model in bundle.classifiers("declaration") + bundle.classifiers("ens"):
        matrix = model.encoder(references[model.name])
        native = model.booster.predict(matrix, pred_contrib=True)
        by_shap = shap_values(model.booster, matrix)
        np.testing.assert_allclose(native[:, :-1], by_shap, atol=1e-6, err_msg=model.name)
        np.testing.assert_allclose(native.sum(axis=1), model.margin(matrix), atol=1e-6)


def test_a_higher_past_hit_rate_never_lowers_a_score(bundle, references) -> None:
    for model in bundle.classifiers("declaration") + bundle.classifiers("ens"):
        frame = references[model.name]
        monotone = [
            f.name
            for f in FEATURES_BY_SUBJECT[model.subject]
            if f.monotone == 1 and f.name in model.spec["features"]
        ]
        assert monotone, model.name
        base = model.probability(model.encoder(frame))
        for feature in monotone:
            raised = frame.copy()
            values = pd.to_numeric(raised[feature], errors="coerce")
            raised[feature] = values.fillna(values.median()) + 0.3
            lowered = frame.copy()
            lowered[feature] = values.fillna(values.median())
            higher = model.probability(model.encoder(raised))
            lower = model.probability(model.encoder(lowered))
            assert (higher >= lower - 1e-12).all(), (
                f"{model.name}: raising {feature} lowered a score"
            )
        assert np.isfinite(base).all()


def _records(model_home: Path, kind: str, n: int, seed: int = 0) -> list[dict]:
    name = {"declarations": "declarations", "ens": "ens"}[kind]
    frame = pd.read_parquet(model_home / "data" / f"{name}.parquet").sample(n, random_state=seed)
    return json.loads(
        frame[contract_for(kind).field_names].to_json(orient="records", date_format="iso")
    )


def _scores(scorer, declarations=(), ens=()) -> list[dict]:
    from data_contracts.models import DeclarationItem, EnsFiling

    outcome = scorer.score(
        [DeclarationItem.model_validate(d).model_dump() for d in declarations],
        [EnsFiling.model_validate(e).model_dump() for e in ens],
    )
    return [{"scores": r["scores"], "overall": r["overall"]} for r in outcome.results]


def test_spelling_of_names_and_descriptions_does_not_change_scores(scorer, model_home) -> None:
    ens = _records(model_home, "ens", 20)
    respelled = [
        {**e, "consignor_name": "  " + e["consignor_name"].upper().replace(" ", "  ") + ". ",
         "consignee_name": e["consignee_name"].lower()}
        for e in ens
    ]  # fmt: skip
    assert _scores(scorer, ens=ens) == _scores(scorer, ens=respelled)
    declarations = _records(model_home, "declarations", 20)
    recased = [
        {**d, "goods_description": d["goods_description"].upper() + "  "} for d in declarations
    ]
    assert _scores(scorer, declarations=declarations) == _scores(scorer, declarations=recased)


def test_a_planted_undervaluation_raises_the_financial_score(bundle, references) -> None:
    model = next(m for m in bundle.classifiers("declaration") if m.area == "financial")
    frame = references[model.name]
    known = frame[pd.to_numeric(frame["price_baseline_level"], errors="coerce") >= 1].copy()
    honest, undervalued = known.copy(), known.copy()
    honest["price_z_score"], honest["price_ratio_to_baseline"] = 0.0, 1.0
    undervalued["price_z_score"], undervalued["price_ratio_to_baseline"] = -4.0, 0.25
    fair = model.probability(model.encoder(honest))
    cheap = model.probability(model.encoder(undervalued))
    assert (cheap > fair).mean() > 0.9
    assert cheap.mean() > 3 * fair.mean()


def test_a_planted_risky_transshipment_raises_the_security_score(
    bundle, references, model_home
) -> None:
    models = [m for m in bundle.classifiers("ens") if m.area == "safety_security"]
    if not models:
        pytest.skip("no ENS safety model in this model set")
    profiles = json.loads((model_home / "world" / "risk_profiles.json").read_text())
    hub = profiles["risky_transit_countries"][0]
    model = models[0]
    positives = model.spec.get("train_positives")
    if positives is not None and positives < 200:
        pytest.skip(
            f"{model.name} learned from {positives} positives; the planted route check needs a "
            "full model set (pytest tests/model --model-home DIR)"
        )
    frame = references[model.name]
    direct, via_hub = frame.copy(), frame.copy()
    direct["first_transit_country"] = direct["last_transit_country"] = "none"
    direct["transit_countries"] = 0.0
    via_hub["first_transit_country"] = via_hub["last_transit_country"] = hub
    via_hub["transit_countries"] = 1.0
    assert (
        model.probability(model.encoder(via_hub)).mean()
        > 1.3 * model.probability(model.encoder(direct)).mean()
    )
