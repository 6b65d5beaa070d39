"""Evaluate, track, gate: `crisk evaluate` and `crisk promote` against the real MLflow SQLite
store of the trained test workspace.

Whatever writes to the registry or tracking store runs on a private copy of the workspace whose
MLflow locations are rewritten to point at the copy, so the shared session workspace (served by
other tests) keeps its champions. Reading the champions' training runs uses the original.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from typer.testing import CliRunner, Result

from data_contracts.definitions import CONTRACT_VERSION
from data_contracts.workspace import Workspace
from features.services import SERVICE_FOR_SUBJECT
from pipelines.cli import app
from tests.integration.workspaces import alias_version, runs_named
from tests.integration.workspaces import copy_workspace as _copy_workspace
from tests.integration.workspaces import crisk_home as _crisk_home
from tests.integration.workspaces import mlflow_client as _client
from training.dataset import data_snapshot_id
from training.registry import registered_models

pytestmark = pytest.mark.integration

RATES = ("1", "2", "5", "10")
BASELINES = {
    "random",
    "rules",
    "logistic_regression",
    "label_encoded_lightgbm",
    "raw_columns_lightgbm",
}
DEPLOYMENT_SETS = {"random_controls", "controlled"}  # what a real deployment has
EXPERIMENT = "crisk"
PREFIX = "crisk"
GATED_MODEL = "crisk_declaration_financial"  # the area with the most labels in the test world


# --- helpers ------------------------------------------------------------------------------------


def _registered(client: MlflowClient) -> list[str]:
    return registered_models(client, PREFIX)


def _champion(client: MlflowClient, name: str) -> str:
    return alias_version(client, name, "champion")


def _invoke(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _k(n: int, rate: str) -> int:
    """Items selected at ``rate`` percent of ``n``: at least one, as training/metrics.py does."""
    return max(1, round(n * int(rate) / 100))


def _assert_rates(metrics: dict[str, Any], n: int, positives: int, what: str) -> None:
    """Precision and recall at every rate are probabilities, and both count the same hits
    among the same ``n`` items with the same ``positives``: the proof that a baseline (or the
    oracle) was scored on exactly the model's items."""
    for key in ("precision_at", "recall_at"):
        assert set(metrics[key]) == set(RATES), f"{what}: {key}"
        assert all(0.0 <= v <= 1.0 for v in metrics[key].values()), f"{what}: {key}"
    for rate in RATES:
        hits = metrics["precision_at"][rate] * _k(n, rate)
        assert hits == pytest.approx(round(hits), abs=1e-6), f"{what}@{rate}%: not a count"
        assert hits == pytest.approx(metrics["recall_at"][rate] * positives, abs=1e-6), (
            f"{what}@{rate}%: precision and recall disagree on the hits"
        )
    recall = [metrics["recall_at"][r] for r in RATES]
    assert recall == sorted(recall), f"{what}: recall must grow with the selected share"


def _refuse_non_json(constant: str) -> None:
    raise AssertionError(f"metrics.json is not strict JSON: it holds {constant}")


def _probability(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 1.0


def _decision_runs(client: MlflowClient, name: str) -> list[Run]:
    return runs_named(client, f"crisk promote {name}", EXPERIMENT)


def _promote(client: MlflowClient, name: str, *options: str) -> Run:
    """Run `crisk promote` and return the decision run it logged for ``name``."""
    before = {r.info.run_id for r in _decision_runs(client, name)}
    _invoke("promote", *options)
    new = [r for r in _decision_runs(client, name) if r.info.run_id not in before]
    assert len(new) == 1, f"one decision run per promote, got {len(new)}"
    return new[0]


def _champion_artifacts(name: str, version: str, destination: Path) -> Path:
    """A local copy of a registered version's model folder (``artifacts/model.txt``...)."""
    return Path(
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=str(destination))
    )


def _register_challenger(client: MlflowClient, name: str, folder: Path) -> str:
    version = client.create_model_version(name, source=str(folder))
    client.set_registered_model_alias(name, "challenger", version.version)
    return str(version.version)


# --- crisk evaluate ------------------------------------------------------------------------------


@dataclass
class Evaluated:
    home: Path
    out: Path
    output: str
    report: dict[str, Any]
    champions: dict[str, str]
    client: MlflowClient


@pytest.fixture(scope="module")
def evaluated(trained_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Evaluated:
    """`crisk evaluate --alias champion` run once on a copy of the trained workspace."""
    base = tmp_path_factory.mktemp("evaluate")
    home = _copy_workspace(trained_workspace, base / "home")
    out = base / "out"
    with _crisk_home(home) as client:
        result = _invoke("evaluate", "--alias", "champion", "--out", str(out))
        champions = {name: _champion(client, name) for name in _registered(client)}
    report = json.loads((out / "metrics.json").read_text(), parse_constant=_refuse_non_json)
    return Evaluated(home, out, result.output, report, champions, _client(home))


def _area_keys(report: dict[str, Any]) -> list[str]:
    return [key for key in report["areas"] if "@" not in key]


def test_evaluate_reports_every_champion_area_on_what_a_deployment_has(
    evaluated: Evaluated,
) -> None:
    report = evaluated.report
    assert (evaluated.out / "report.html").is_file()
    assert report["alias"] == "champion"
    assert report["models"] == evaluated.champions
    # One area entry per classifier (the revenue model ranks ties; it has no area of its own).
    expected = set()
    for name in evaluated.champions:
        subject, area = name.removeprefix(f"{PREFIX}_").split("_", 1)
        if area != "revenue":
            expected.add(area if subject == "declaration" else f"{subject}:{area}")
    assert expected and set(_area_keys(report)) == expected
    subjects = {metrics["subject"] for key, metrics in report["areas"].items() if "@" not in key}
    assert set(report["primary_datasets"]) == set(report["windows"]) == subjects
    for subject in subjects:
        assert set(report["primary_datasets"][subject].split(", ")) <= DEPLOYMENT_SETS
        window = report["windows"][subject]
        assert window["from"] < window["to"]
        assert report["splits"][subject]["source"] == "last_days"
    for key in _area_keys(report):
        metrics = report["areas"][key]
        # The ground truth is for the oracle comparison only: never the primary set.
        assert metrics["dataset"] in DEPLOYMENT_SETS
        assert metrics["dataset_reason"] == report["primary_reasons"][key]
        random = report["areas"][f"{key}@random_controls"]
        if metrics["dataset"] == "random_controls":
            assert random["n_irregular"] >= 30 and "unbiased" in metrics["dataset_reason"]
        else:
            assert (
                random["n_irregular"] < 30 and "administration chose" in metrics["dataset_reason"]
            )
        name, version = metrics["model"].split("/")
        assert evaluated.champions[name] == version
        for rate_key in ("precision_at", "recall_at", "revenue_at"):
            assert set(metrics[rate_key]) == set(RATES), f"{key}: {rate_key}"
        for scalar in ("pr_auc", "roc_auc", "brier"):
            assert _probability(metrics[scalar]), f"{key}: {scalar}={metrics[scalar]}"
        assert set(metrics["baselines"]) == BASELINES
        for other in ("random_controls", "controlled", "synthetic_ground_truth"):
            assert f"{key}@{other}" in report["areas"], f"{key} lacks the {other} set"
        # Random controls carry 95% intervals around their point estimates.
        for rate in RATES:
            low, high = random["precision_at_interval"][rate]
            assert low <= random["precision_at"][rate] <= high
        assert key in evaluated.output  # the CLI's summary table names every area
    statement = report["selection_bias"]
    assert "random_controls" in statement and "propensity" in statement
    assert "weighting on" in statement
    for name in ("label-enc. LGBM", "raw-col. LGBM", "oracle P@5%"):
        assert name in evaluated.output
    described = report["datasets"]["declaration:controlled"]["measures"]
    assert "among the top n% of these inspected items" in described


def test_evaluate_metrics_are_probabilities_counted_on_the_same_items_as_baselines_and_oracle(
    evaluated: Evaluated,
) -> None:
    report = evaluated.report
    for key in _area_keys(report):
        metrics = report["areas"][key]
        subject = metrics["subject"]
        n, positives = metrics["n_items"], metrics["n_irregular"]
        assert n == report["datasets"][f"{subject}:{metrics['dataset']}"]["n_items"]
        assert 0 < positives < n, f"{key}: both classes are needed for the AUCs"
        _assert_rates(metrics, n, positives, f"{key} model")
        for name, baseline in metrics["baselines"].items():
            _assert_rates(baseline, n, positives, f"{key} baseline {name}")
            assert _probability(baseline["pr_auc"]) and _probability(baseline["roc_auc"])

        # The oracle: every item of the window by its ground truth (reporting only).
        truth = report["areas"][f"{key}@synthetic_ground_truth"]
        n_truth, truth_positives = truth["n_items"], truth["n_irregular"]
        assert n_truth == report["datasets"][f"{subject}:synthetic_ground_truth"]["n_items"]
        _assert_rates(truth["oracle"], n_truth, truth_positives, f"{key} oracle")
        assert metrics["oracle"]["dataset"] == "synthetic_ground_truth"
        oracle, random = truth["oracle"]["precision_at"], truth["baselines"]["random"]
        assert oracle["5"] >= random["precision_at"]["5"]
        for rate in RATES:
            assert metrics["precision_at_share_of_oracle"][rate] == pytest.approx(
                truth["precision_at"][rate] / oracle[rate]
            )
        # The random baseline really is random selection: its hit rate is the base rate.
        k, base_rate = _k(n_truth, "10"), truth_positives / n_truth
        spread = 4 * math.sqrt(base_rate * (1 - base_rate) / k) + 1 / k
        assert abs(random["precision_at"]["10"] - base_rate) <= spread, key
        assert truth["precision_at"]["10"] > random["precision_at"]["10"], key

        calibration = metrics["calibration"]
        assert sum(calibration["count"]) == n
        assert calibration["predicted"] == sorted(calibration["predicted"])
        assert all(_probability(p) for p in calibration["predicted"] + calibration["observed"])

        for other in ("random_controls", "controlled"):
            part = report["areas"][f"{key}@{other}"]
            assert part["n_items"] == report["datasets"][f"{subject}:{other}"]["n_items"]
            if part["n_irregular"]:
                _assert_rates(part, part["n_items"], part["n_irregular"], f"{key}@{other}")
        assert (
            report["datasets"][f"{subject}:random_controls"]["n_items"]
            <= report["datasets"][f"{subject}:controlled"]["n_items"]
            < n_truth
        )
    financial = report["areas"]["financial"]
    revenue = [financial["revenue_at"][r] for r in RATES]
    assert all(_probability(v) for v in revenue) and revenue == sorted(revenue)


def test_evaluate_slices_by_transport_declaration_type_aeo_and_origin_region(
    evaluated: Evaluated,
) -> None:
    expected = {
        "declaration": {"transport_mode", "declaration_type", "aeo", "origin_region"},
        "ens": {"transport_mode", "ics2_release", "origin_region"},
    }
    for key in _area_keys(evaluated.report):
        metrics = evaluated.report["areas"][key]
        slices = metrics["slices"]
        assert set(slices) == expected[metrics["subject"]], key
        for name, values in slices.items():
            assert values, f"{key}: slice {name} has no value with enough items"
            assert sum(v["n_items"] for v in values.values()) <= metrics["n_items"]
            assert sum(v["n_irregular"] for v in values.values()) <= metrics["n_irregular"]
            for value, entry in values.items():
                assert entry["n_items"] >= 50, f"{key}/{name}={value}: too small to report"
                assert 0 <= entry["n_irregular"] <= entry["n_items"]
                assert all(_probability(p) for p in entry["precision_at"].values())
        if metrics["subject"] == "declaration":
            # On the primary set (controls only), the AEO slice may be too small to report.
            aeo = slices["aeo"]
            assert aeo and set(aeo) <= {"aeo", "non_aeo"}
            assert sum(v["n_items"] for v in aeo.values()) <= metrics["n_items"]


def test_evaluate_writes_an_html_report_and_logs_an_mlflow_run(evaluated: Evaluated) -> None:
    html = (evaluated.out / "report.html").read_text()
    assert "How selection bias was handled" in html
    assert "oracle Precision@n%" in html and "share of the oracle" in html
    for baseline in BASELINES:
        assert f"baseline {baseline}: Precision@n%" in html
    for key in _area_keys(evaluated.report):
        assert f"<h2>{key} — " in html
    assert html.count("data:image/png;base64,") == len(_area_keys(evaluated.report))

    client = evaluated.client
    experiment = client.get_experiment_by_name(EXPERIMENT)
    assert experiment is not None
    (run,) = client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'crisk evaluate @champion'"
    )
    assert run.data.tags["alias"] == "champion"
    for subject, dataset in evaluated.report["primary_datasets"].items():
        assert run.data.tags[f"dataset_{subject}"] == dataset
        window = evaluated.report["windows"][subject]
        assert run.data.tags[f"window_{subject}"] == f"{window['from']} .. {window['to']}"
    for key in _area_keys(evaluated.report):
        logged = run.data.metrics[f"{key.replace(':', '_')}_precision_at_5"]
        assert logged == pytest.approx(evaluated.report["areas"][key]["precision_at"]["5"])
    logged = sorted(a.path for a in client.list_artifacts(run.info.run_id))
    assert logged == ["metrics.json", "report.html"]


# --- what each champion's training run logged ----------------------------------------------------


def test_each_champion_run_logs_params_metrics_lineage_diagnostics_and_a_usable_model(
    trained_workspace: Path, tmp_path: Path
) -> None:
    client = _client(trained_workspace)
    names = _registered(client)
    assert GATED_MODEL in names
    snapshot = data_snapshot_id(Workspace.at(trained_workspace))
    for name in names:
        version = client.get_model_version_by_alias(name, "champion")
        run = client.get_run(version.run_id)
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        subject, task = params["subject"], params["task"]
        assert name == f"{PREFIX}_{subject}_{'revenue' if task == 'revenue' else params['area']}"

        # Parameters: what was fitted and how.
        objective = "tweedie" if task == "revenue" else "binary"
        assert params["objective"] == objective
        for key in ("learning_rate", "num_leaves", "max_depth", "seed", "calibration"):
            assert key in params, f"{name}: param {key}"
        assert int(params["best_iteration"]) > 0

        # Metrics on the test window, all controls and (classifiers) random controls only.
        sets = ("controlled",) if task == "revenue" else ("controlled", "random_controls")
        for data_set in sets:
            n, hits = metrics[f"test_{data_set}_n_items"], metrics[f"test_{data_set}_n_irregular"]
            assert 0 <= hits <= n and n > 0, f"{name} {data_set}"
            if task != "revenue":
                assert _probability(metrics[f"test_{data_set}_brier"]), f"{name} {data_set}"
            if 0 < hits < n:  # the AUCs need both classes (NaN is not logged)
                assert _probability(metrics[f"test_{data_set}_roc_auc"]), f"{name} {data_set}"
                assert _probability(metrics[f"test_{data_set}_pr_auc"]), f"{name} {data_set}"
        assert _probability(metrics["test_controlled_roc_auc"]), f"{name}: no AUC on controls"
        assert metrics["test_n_train"] >= metrics["test_n_train_positive"] > 0
        # The headline figures are MLflow metrics, comparable across runs without artifacts.
        for rate in RATES:
            for measure in ("precision_at", "recall_at") if task != "revenue" else ("revenue_at",):
                assert _probability(metrics[f"test_controlled_{measure}_{rate}"]), f"{name}"

        # Lineage, on the run, on its parent `crisk train` run and on the registered version.
        lineage = {
            "data_snapshot": snapshot,
            "contract_version": CONTRACT_VERSION,
            "feature_service": SERVICE_FOR_SUBJECT[subject],
        }
        parent = client.get_run(tags["mlflow.parentRunId"])
        assert parent.info.run_name == "crisk train"
        for key, value in lineage.items():
            assert tags[key] == value, f"{name}: run tag {key}"
            assert version.tags[key] == value, f"{name}: version tag {key}"
            if key != "feature_service":
                assert parent.data.tags[key] == value, f"{name}: parent tag {key}"

        # Artifacts: the per-model metrics, and the diagnostics an auditor looks at.
        top = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"metrics.json", "diagnostics"} <= top
        diagnostics = {a.path: a for a in client.list_artifacts(run.info.run_id, "diagnostics")}
        plots = {"shap_summary.png"} | (
            set() if task == "revenue" else {"pr_curve.png", "calibration.png"}
        )
        for plot in plots:
            entry = diagnostics.get(f"diagnostics/{plot}")
            assert entry is not None and entry.file_size > 1_000, f"{name}: {plot}"
        run_metrics = json.loads(
            Path(
                mlflow.artifacts.download_artifacts(
                    f"{run.info.artifact_uri}/metrics.json", dst_path=str(tmp_path / name)
                )
            ).read_text()
        )
        assert set(run_metrics["controlled"]["precision_at"]) == set(RATES)

        # The logged model: a signature, an input example that satisfies it, and it predicts.
        model_id = version.source.removeprefix("models:/")
        logged = client.get_logged_model(model_id)
        assert logged.source_run_id == run.info.run_id
        folder = Path(
            mlflow.artifacts.download_artifacts(
                logged.artifact_location, dst_path=str(tmp_path / name / "model")
            )
        )
        description = mlflow.models.Model.load(str(folder))
        assert description.signature is not None
        inputs = description.signature.inputs.input_names()
        spec = json.loads((folder / "artifacts" / "spec.json").read_text())
        assert inputs == spec["features"]
        output = "expected_revenue_eur" if task == "revenue" else "probability"
        assert description.signature.outputs.input_names() == [output]
        assert description.saved_input_example_info is not None
        example = description.load_input_example(str(folder))
        assert list(example.columns) == inputs and len(example) > 0
        predicted = mlflow.pyfunc.load_model(str(folder)).predict(example)
        assert list(predicted.columns) == [output] and len(predicted) == len(example)
        scores = predicted[output].to_numpy(dtype=float)
        if task == "revenue":
            assert (scores >= 0).all(), f"{name}: negative expected revenue"
        else:
            assert all(_probability(v) for v in scores), f"{name}: not probabilities"


# --- crisk promote -------------------------------------------------------------------------------


@pytest.fixture
def private_home(trained_workspace: Path, tmp_path: Path) -> Iterator[tuple[Path, MlflowClient]]:
    home = _copy_workspace(trained_workspace, tmp_path / "home")
    with _crisk_home(home) as client:
        yield home, client


def test_promote_a_challenger_as_good_as_the_champion_moves_the_alias_and_logs_why(
    private_home: tuple[Path, MlflowClient], trained_workspace: Path
) -> None:
    _, client = private_home
    original = _client(trained_workspace)
    before = {name: _champion(client, name) for name in _registered(client)}
    champion = client.get_model_version_by_alias(GATED_MODEL, "champion")
    # The same logged model registered again: a challenger exactly as good as the champion.
    challenger = str(
        client.create_model_version(
            GATED_MODEL, source=champion.source, run_id=champion.run_id
        ).version
    )
    client.set_registered_model_alias(GATED_MODEL, "challenger", challenger)

    runs_before = {name: len(_decision_runs(client, name)) for name in before}
    decision = _promote(client, GATED_MODEL)  # no --model: every registered model is decided

    assert _champion(client, GATED_MODEL) == challenger != before[GATED_MODEL]
    assert decision.data.tags["decision"] == "promoted"
    assert decision.data.tags["model"] == GATED_MODEL
    assert "not worse, promoted" in decision.data.tags["reason"]
    params = decision.data.params
    assert params["challenger"] == challenger == params["champion_after"]
    assert params["champion_before"] == before[GATED_MODEL]
    assert params["metric"] == "precision_at_5"
    assert params["dataset"] in DEPLOYMENT_SETS  # never the synthetic ground truth
    assert float(params["margin"]) == pytest.approx(0.02)
    values = decision.data.metrics
    assert _probability(values["challenger_value"])
    assert values["challenger_value"] == pytest.approx(values["champion_value"])
    # The rule profiles were measured on the same set, and the model is not below them.
    assert _probability(values["rules_value"])
    assert values["challenger_value"] >= values["rules_value"]

    for name in set(before) - {GATED_MODEL}:
        assert _champion(client, name) == before[name]
        (latest, *_) = _decision_runs(client, name)
        assert len(_decision_runs(client, name)) == runs_before[name] + 1
        assert latest.data.tags["decision"] == "kept"
        assert latest.data.tags["reason"] == "the challenger is already the champion"
    # The shared workspace did not see any of it.
    assert _champion(original, GATED_MODEL) == before[GATED_MODEL]
    assert len(original.search_model_versions(f"name = '{GATED_MODEL}'")) == int(challenger) - 1


def test_promote_keeps_the_champion_against_a_clearly_worse_challenger(
    private_home: tuple[Path, MlflowClient], tmp_path: Path
) -> None:
    _, client = private_home
    champion = _champion(client, GATED_MODEL)
    folder = _champion_artifacts(GATED_MODEL, champion, tmp_path / "inverted")
    spec_path = folder / "artifacts" / "spec.json"
    spec = json.loads(spec_path.read_text())
    calibration = spec["calibration"]
    # Reverse the calibration map: the same trees, the ranking turned upside down.
    if calibration["method"] == "platt":
        calibration["a"] = -calibration["a"]
    elif calibration["method"] == "isotonic":
        calibration["y"] = calibration["y"][::-1]
    else:
        pytest.fail(f"cannot invert calibration {calibration['method']!r}")
    spec_path.write_text(json.dumps(spec))
    challenger = _register_challenger(client, GATED_MODEL, folder)

    decision = _promote(client, GATED_MODEL, "--model", GATED_MODEL)

    assert _champion(client, GATED_MODEL) == champion
    assert str(client.get_model_version_by_alias(GATED_MODEL, "challenger").version) == challenger
    assert decision.data.tags["decision"] == "kept"
    assert "worse, champion kept" in decision.data.tags["reason"]
    params = decision.data.params
    assert params["challenger"] == challenger
    assert params["champion_before"] == params["champion_after"] == champion
    new, old = decision.data.metrics["challenger_value"], decision.data.metrics["champion_value"]
    assert new < old * (1 - 0.02)
    assert new < 0.5 * old  # inverted, not merely a little worse


def _promote_with_margin(client: MlflowClient, margin: float) -> Run:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRISK_TRAIN_PROMOTION_MARGIN", f"{margin:.6f}")
        decision = _promote(client, GATED_MODEL, "--model", GATED_MODEL)
    assert float(decision.data.params["margin"]) == pytest.approx(margin, abs=1e-6)
    return decision


def test_promote_margin_is_relative_to_the_champions_value(
    private_home: tuple[Path, MlflowClient], tmp_path: Path
) -> None:
    _, client = private_home
    champion = _champion(client, GATED_MODEL)
    # The champion's first trees alone: the same kind of model, but not the same value. On the
    # few labelled controls of the gate's window the truncation may be the better one: then it
    # has just been promoted, and the full model, registered again, is the worse challenger.
    for trees in (1, 2, 3, 5):
        folder = _champion_artifacts(GATED_MODEL, champion, tmp_path / f"trees_{trees}")
        booster_path = folder / "artifacts" / "model.txt"
        booster = lgb.Booster(model_file=str(booster_path))
        booster.save_model(str(booster_path), num_iteration=trees)
        challenger = _register_challenger(client, GATED_MODEL, folder)
        strict = _promote_with_margin(client, 0.0)
        new, old = strict.data.metrics["challenger_value"], strict.data.metrics["champion_value"]
        if new != old:
            break
    if new > old:
        champion = _champion(client, GATED_MODEL)
        full = _champion_artifacts(
            GATED_MODEL, strict.data.params["champion_before"], tmp_path / "full"
        )
        challenger = _register_challenger(client, GATED_MODEL, full)
        strict = _promote_with_margin(client, 0.0)
        new, old = strict.data.metrics["challenger_value"], strict.data.metrics["champion_value"]
    assert 0 < new < old < 1, "one of the two models must be worse, yet find something"
    assert strict.data.tags["decision"] == "kept"

    # The challenger may be `margin` of the champion's value worse: it passes from
    # 1 - new/old on. An absolute margin would let it pass from old - new on, which is less.
    relative, absolute = 1 - new / old, old - new
    between = _promote_with_margin(client, (relative + absolute) / 2)
    assert between.data.tags["decision"] == "kept", between.data.tags["reason"]
    assert _champion(client, GATED_MODEL) == champion

    lenient = _promote_with_margin(client, relative + 0.005)
    for run in (between, lenient):  # the same two models on the same data: the same numbers
        assert run.data.metrics["challenger_value"] == pytest.approx(new)
        assert run.data.metrics["champion_value"] == pytest.approx(old)
    assert lenient.data.tags["decision"] == "promoted", lenient.data.tags["reason"]
    assert f"allowed {relative + 0.005:.0%} less" in lenient.data.tags["reason"]
    assert lenient.data.params["champion_after"] == challenger
    assert _champion(client, GATED_MODEL) == challenger
