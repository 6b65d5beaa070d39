"""What a model card shows, and its HTML page (see ``training.model_card`` for where the
content comes from).

The page is self-contained (``data_contracts.pages``): intended and out-of-scope uses, training
data, the handling of the selection bias, metrics per set and slice beside the baselines (with
intervals in whatever shape the evaluation logged them), PR and calibration curves in quantile
bins, SHAP global importance and dependence, the features and their meaning, known
limitations and the promotion history. Every table and picture is drawn from :class:`ModelCard`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from data_contracts.dataset import DatasetManifest
from data_contracts.pages import (
    Markup,
    definition_list,
    escape,
    figure,
    format_number,
    new_figure,
    note,
    page,
    section,
    table,
)
from features.catalogue import feature_meanings
from features.model_input import FEATURES_BY_SUBJECT, calibrate
from training.metrics import RATES, calibration_curve
from training.model import REVENUE_TASK

__all__ = ["SHAP_ROWS", "ModelCard", "index_page", "render_card"]

SHAP_ROWS = 2000
DEPENDENCE_PLOTS = 4
SMALL_SLICE_HITS = 10
_AREA_WORDS = {
    "financial": "a financial irregularity (undervaluation, misclassification, origin, "
    "anti-dumping evasion)",
    "safety_security": "a safety or security risk",
    "prohibitions_restrictions": "goods under prohibitions or restrictions (drug precursors, "
    "weapons, wildlife, cultural goods, waste, F-gases, cash)",
    "ipr": "an infringement of intellectual property rights (counterfeits)",
    "product_safety": "goods that are unsafe or non-compliant products",
}
_SUBJECT_WORDS = {"declaration": "import declaration items", "ens": "ENS filings (ICS2)"}


@dataclass
class ModelCard:
    """Everything recorded about one model version that its card shows."""

    name: str
    version: str
    spec: dict[str, Any]
    booster: lgb.Booster
    reference: pd.DataFrame
    registered_at: str
    run_id: str
    aliases: list[str]
    params: dict[str, str]
    training_metrics: dict[str, Any]
    test_scores: pd.DataFrame | None
    evaluation: dict[str, Any] | None
    evaluation_run: str | None
    decisions: list[dict[str, Any]]
    areas_without_model: dict[str, str]
    manifest: DatasetManifest
    bundle: str | None = None
    shap: np.ndarray | None = field(default=None, repr=False)


# --- rendering helpers --------------------------------------------------------------------------


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return format_number(value)


def _interval(metrics: Mapping[str, Any], key: str, rate: str) -> tuple[float, float] | None:
    """An interval for ``metrics[key][rate]`` in whatever shape the evaluation logged it:
    ``{key}_interval`` / ``{key}_ci`` / ``intervals[key]``, as ``[low, high]`` or a mapping."""
    candidates = [
        metrics.get(f"{key}_interval"),
        metrics.get(f"{key}_ci"),
        (metrics.get("intervals") or {}).get(key),
        (metrics.get("ci") or {}).get(key),
    ]
    for found in candidates:
        if not isinstance(found, Mapping) or rate not in found:
            continue
        value = found[rate]
        if isinstance(value, Mapping):
            low = value.get("low", value.get("lower"))
            high = value.get("high", value.get("upper"))
        elif isinstance(value, list | tuple) and len(value) == 2:
            low, high = value
        else:
            continue
        if low is not None and high is not None:
            return float(low), float(high)
    return None


def _rate_cell(metrics: Mapping[str, Any], key: str, rate: str) -> str:
    value = (metrics.get(key) or {}).get(rate)
    text = _number(value)
    bounds = _interval(metrics, key, rate)
    return text if bounds is None else f"{text} [{bounds[0]:.3f}, {bounds[1]:.3f}]"


def _ranking_table(metrics: Mapping[str, Any]) -> str:
    """Model and baselines on one set: Precision/Recall/Revenue@n%, with intervals if any."""
    rates = [str(r) for r in RATES]
    rows: list[list[Any]] = []
    for key, label in (
        ("precision_at", "Precision"),
        ("recall_at", "Recall"),
        ("revenue_at", "Revenue"),
    ):
        if any((metrics.get(key) or {}).get(r) is not None for r in rates):
            rows.append([f"model: {label}@n%", *(_rate_cell(metrics, key, r) for r in rates)])
    oracle = metrics.get("oracle") or {}
    if oracle.get("precision_at"):
        rows.append(
            ["oracle: Precision@n%", *(_rate_cell(oracle, "precision_at", r) for r in rates)]
        )
    for baseline, values in (metrics.get("baselines") or {}).items():
        rows.append(
            [
                f"baseline {baseline}: Precision@n%",
                *(_rate_cell(values, "precision_at", r) for r in rates),
            ]
        )
    return table(["", *(f"{r}%" for r in rates)], rows)


def _summary_figures(metrics: Mapping[str, Any]) -> str:
    items: list[tuple[str, Any]] = [
        ("items", format_number(metrics.get("n_items"))),
        ("irregular items (hits)", format_number(metrics.get("n_irregular"))),
    ]
    for key, label in (("pr_auc", "PR-AUC"), ("roc_auc", "ROC-AUC"), ("brier", "Brier score")):
        if key in metrics:
            items.append((label, _number(metrics.get(key))))
    for key, value in metrics.items():  # anything else a newer evaluation adds, shown as is
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and key not in ("n_items", "n_irregular", "pr_auc", "roc_auc", "brier")
        ):
            items.append((key.replace("_", " "), _number(value)))
    return definition_list(items)


def _evaluation_sets(card: ModelCard) -> list[tuple[str, dict[str, Any]]]:
    """(set name, metrics) of this model's area in the evaluation, primary set first."""
    if card.evaluation is None or card.spec["task"] == REVENUE_TASK:
        return []
    subject, area = card.spec["subject"], card.spec["area"]
    key = area if subject == "declaration" else f"{subject}:{area}"
    areas = card.evaluation.get("areas", {})
    sets = []
    if key in areas:
        primary = areas[key]
        sets.append((str(primary.get("dataset", "primary")), primary))
    for other, metrics in areas.items():
        if other.startswith(f"{key}@"):
            sets.append((other.split("@", 1)[1], metrics))
    return sets


# --- pictures -----------------------------------------------------------------------------------


def _pr_figure(scores: pd.DataFrame) -> str:
    from sklearn.metrics import precision_recall_curve

    fig, axis = new_figure(5.2, 3.8)
    for label, part, colour in (
        ("all controlled items", scores, "#1f5fa8"),
        ("random controls", scores[scores["selection_reason"] == "random"], "#2e8540"),
    ):
        y = part["label"].to_numpy(dtype=int)
        if 0 < y.sum() < len(y):
            precision, recall, _ = precision_recall_curve(y, part["score"].to_numpy())
            axis.plot(
                recall,
                precision,
                color=colour,
                label=f"{label} (n={len(y):,}, {int(y.sum())} hits)",
            )
            axis.axhline(y.mean(), color=colour, linestyle=":", linewidth=1)
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.set_ylim(0, 1.02)
    axis.legend(fontsize=7)
    return figure(
        fig,
        "precision-recall curve",
        "Precision against recall on the test window (dotted: the hit rate of the set, what "
        "random selection reaches).",
    )


def _calibration_figure(curves: Sequence[tuple[str, dict[str, list[float]]]]) -> str:
    fig, axis = new_figure(5.2, 3.8)
    top = 0.01
    for label, curve in curves:
        if not curve.get("predicted"):
            continue
        axis.plot(curve["predicted"], curve["observed"], marker="o", label=label)
        top = max(top, *curve["predicted"], *curve["observed"])
    axis.plot([0, top], [0, top], linestyle="--", color="#7b8794", label="perfectly calibrated")
    axis.set_xlabel("mean predicted probability (per bin)")
    axis.set_ylabel("observed rate of irregularities")
    axis.legend(fontsize=7)
    return figure(
        fig,
        "calibration curve",
        "Calibration in quantile bins (each point: an equal share of the items, by score).",
    )


def _importance(card: ModelCard) -> pd.DataFrame:
    names = card.spec["features"]
    values = np.abs(card.shap[:, : len(names)]) if card.shap is not None else np.zeros((1, 0))
    importance = pd.DataFrame({"feature": names, "mean_abs_shap": values.mean(axis=0)})
    return importance.sort_values("mean_abs_shap", ascending=False, ignore_index=True)


def _importance_figure(card: ModelCard, importance: pd.DataFrame) -> str:
    top = importance.head(15).iloc[::-1]
    labels = [_label(card, f) for f in top["feature"]]
    fig, axis = new_figure(7.5, 0.3 * len(top) + 1.2)
    axis.barh(labels, top["mean_abs_shap"], color="#1f5fa8")
    axis.tick_params(axis="y", labelsize=8)
    axis.set_xlabel("mean |SHAP value|, log-odds")
    return figure(
        fig,
        "SHAP global importance",
        f"The 15 features that move the score most, on average, over {len(card.reference):,} "
        "recent items (the model's reference sample; up to "
        f"{SHAP_ROWS:,} of them).",
    )


def _dependence_figure(card: ModelCard, feature: str) -> str:
    names = card.spec["features"]
    j = names.index(feature)
    assert card.shap is not None
    shap = card.shap[:, j]
    values = card.reference[feature].head(len(shap))
    fig, axis = new_figure(4.6, 3.2)
    if feature in card.spec["vocabularies"]:
        text = values.astype("string").fillna("(missing)")
        top = text.value_counts().head(12).index
        data = [shap[(text == v).to_numpy()] for v in top]
        axis.boxplot(data, tick_labels=list(top), showfliers=False)
        axis.tick_params(axis="x", labelsize=7, rotation=45)
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        axis.scatter(numbers, shap, s=5, alpha=0.4, color="#1f5fa8")
    axis.axhline(0, color="#7b8794", linewidth=0.8)
    axis.set_xlabel(_label(card, feature), fontsize=8)
    axis.set_ylabel("SHAP value (log-odds)", fontsize=8)
    return figure(fig, f"SHAP dependence: {feature}", f"Dependence on {_label(card, feature)}.")


def _label(card: ModelCard, feature: str) -> str:
    label = card.spec.get("labels", {}).get(feature, feature)
    extra = card.manifest.extra_attribute(feature.removeprefix("extra_"))
    if extra is not None and feature.startswith("extra_") and label == feature:
        label = extra.display_label
    return label


# --- sections -----------------------------------------------------------------------------------


def _identity(card: ModelCard) -> str:
    spec = card.spec
    items: list[tuple[str, Any]] = [
        ("registered model", f"{card.name} version {card.version}"),
        ("aliases now", ", ".join(card.aliases) or "none (no longer champion or challenger)"),
        ("served in bundle", card.bundle or "–"),
        ("subject", _SUBJECT_WORDS.get(spec["subject"], spec["subject"])),
        ("risk area", spec["area"]),
        (
            "task",
            "expected revenue at risk (EUR)"
            if spec["task"] == REVENUE_TASK
            else "probability of an irregularity (calibrated)",
        ),
        ("calibration", spec.get("calibration", {}).get("method", "–")),
        ("registered at", card.registered_at),
        ("training run", card.run_id),
        ("trees", spec.get("best_iteration")),
    ]
    return definition_list(items)


def _uses(card: ModelCard) -> str:
    spec = card.spec
    subject = _SUBJECT_WORDS.get(spec["subject"], spec["subject"])
    if spec["task"] == REVENUE_TASK:
        purpose = (
            f"Estimates the revenue (duties and import VAT, EUR) a control of {subject} would "
            "recover. It breaks ties in the selection and sends items to post-release audit "
            "(blue channel); it is not a probability."
        )
    else:
        purpose = (
            f"Ranks {subject} by the probability of {_AREA_WORDS.get(spec['area'], spec['area'])},"
            " so that control units with a limited capacity look at the riskiest items first. "
            "With the other areas' models it sets the recommended control channel within the "
            "configured capacity, beside a random share that keeps the estimates unbiased."
        )
    intended = [
        purpose,
        "Decision support for risk analysts and control officers: every score comes with its "
        "reasons, and an officer decides the control.",
        f"On data like its training data: dataset {card.manifest.dataset!r}, feature service "
        f"{spec.get('feature_service')}.",
    ]
    out_of_scope = [
        "Deciding a control, a release or a sanction without a person.",
        "Judging an operator's honesty or guilt; the score is about one consignment.",
        f"Risk areas other than {spec['area']} and records other than {subject}.",
        "Data from another administration, period or mapping without retraining and a new "
        "evaluation (the contract and feature service must match).",
        "Reading the score as a rate of irregularities in the whole flow without the random "
        "controls' figures: labels come from targeted controls.",
    ]
    return (
        "<h3>Intended use</h3><ul>" + "".join(f"<li>{escape(t)}</li>" for t in intended) + "</ul>"
        "<h3>Out of scope</h3><ul>"
        + "".join(f"<li>{escape(t)}</li>" for t in out_of_scope)
        + "</ul>"
    )


def _training_data(card: ModelCard) -> str:
    spec = card.spec
    windows = spec.get("windows", {})
    rows = spec.get("rows", {})
    metrics = card.training_metrics
    test = metrics.get("controlled", {})
    table_rows = [
        (window, " to ".join(windows.get(window, ["–", "–"])), rows.get(window))
        for window in ("train", "validation", "test")
    ]
    items: list[tuple[str, Any]] = [
        ("dataset", f"{card.manifest.dataset} ({card.manifest.source})"),
        ("identifiers", card.manifest.identifier_format),
        (
            "training hits",
            format_number(spec.get("train_positives", metrics.get("n_train_positive"))),
        ),
        ("test hits (controlled items)", format_number(test.get("n_irregular"))),
        ("contract version", spec.get("contract_version")),
        ("feature service", spec.get("feature_service")),
        ("data snapshot id", spec.get("data_snapshot")),
        ("reference sample", f"{len(card.reference):,} recent items (all, controlled or not)"),
    ]
    return definition_list(items) + table(("window", "from – to", "labelled items"), table_rows)


def _selection_bias(card: ModelCard) -> str:
    recorded = card.spec.get("selection_bias")
    parts = []
    if isinstance(recorded, Mapping):
        parts.append(definition_list([(k.replace("_", " "), v) for k, v in recorded.items()]))
    elif recorded:
        parts.append(f"<p>{escape(recorded)}</p>")
    params = {
        k: card.params[k]
        for k in ("selection_weighting", "ipw_power", "exclude_selection_reasons")
        if k in card.params
    }
    if params:
        weighting = params.get("selection_weighting")
        text = (
            "Only controlled items have labels; items never controlled are unlabelled, not "
            "negatives. "
            + (
                f"Training rows were weighted by (1 / P(controlled | declared data)) ** "
                f"{params.get('ipw_power')}, the propensity estimated on every item."
                if weighting == "ipw"
                else "Training rows were not weighted against the selection."
            )
            + (
                f" Controls selected for reasons {params['exclude_selection_reasons']!r} were left "
                "out (their selection depended on the outcome)."
                if params.get("exclude_selection_reasons")
                else ""
            )
        )
        parts.append(f"<p>{escape(text)}</p>")
        parts.append(definition_list([(k.replace("_", " "), v) for k, v in params.items()]))
    if card.evaluation and card.evaluation.get("selection_bias"):
        parts.append(f"<p>Evaluation: {escape(card.evaluation['selection_bias'])}</p>")
    if not parts:
        parts.append(note("The training run recorded nothing about the selection bias."))
    return "".join(parts)


def _metrics(card: ModelCard) -> str:
    parts = []
    for set_name, metrics in (
        ("controlled", card.training_metrics.get("controlled")),
        ("random_controls", card.training_metrics.get("random_controls")),
    ):
        if metrics:
            parts.append(f"<h3>Test window at training: {escape(set_name)}</h3>")
            parts.append(_summary_figures(metrics) + _ranking_table(metrics))
    sets = _evaluation_sets(card)
    if card.spec["task"] == REVENUE_TASK:
        parts.append(
            "<p>The revenue model is evaluated by the share of recoverable revenue "
            "its ranking catches (Revenue@n% above).</p>"
        )
    elif not sets:
        parts.append(
            note(
                "No `crisk evaluate` run scored this version: run "
                "`crisk evaluate --alias champion` for per-slice figures beside the baselines."
            )
        )
    for set_name, metrics in sets:
        parts.append(f"<h3>Evaluation run {escape(card.evaluation_run)}: {escape(set_name)}</h3>")
        parts.append(
            _summary_figures(
                {k: v for k, v in metrics.items() if k not in ("precision_at_share_of_oracle",)}
            )
        )
        parts.append(_ranking_table(metrics))
        if metrics.get("slices"):
            parts.append("<h4>Per slice (Precision@5%)</h4>" + _slices_table(metrics["slices"]))
    return "".join(parts)


def _slices_table(slices: Mapping[str, Any]) -> str:
    rows = []
    for name, values in slices.items():
        for value, entry in values.items():
            hits = entry.get("n_irregular")
            small = hits is not None and hits < SMALL_SLICE_HITS
            rows.append(
                (
                    name,
                    value,
                    entry.get("n_items"),
                    hits,
                    _rate_cell(entry, "precision_at", "5"),
                    Markup("<b>small sample</b>") if small else "",
                )
            )
    return table(("slice", "value", "items", "hits", "Precision@5%", ""), rows)


def _curves(card: ModelCard) -> str:
    if card.spec["task"] == REVENUE_TASK:
        return "<p>Not applicable to the revenue model (see Revenue@n% above).</p>"
    parts = []
    curves: list[tuple[str, dict[str, list[float]]]] = []
    scores = card.test_scores
    if scores is None:
        parts.append(
            note("The training run logged no test-window scores (trained by an older crisk).")
        )
    else:
        parts.append(_pr_figure(scores))
        curves.append(("all controlled items", calibration_curve(scores["label"], scores["score"])))
        random = scores[scores["selection_reason"] == "random"]
        if len(random) >= 20:
            curves.append(("random controls", calibration_curve(random["label"], random["score"])))
    for set_name, metrics in _evaluation_sets(card)[:1]:
        if metrics.get("calibration", {}).get("predicted"):
            curves.append((f"evaluation: {set_name}", metrics["calibration"]))
    if curves:
        parts.append(_calibration_figure(curves))
    return "".join(parts)


def _explanations(card: ModelCard, importance: pd.DataFrame) -> str:
    if card.shap is None or importance.empty:
        return note("No SHAP values.")
    top = [f for f in importance["feature"] if importance.set_index("feature").loc[f].iloc[0] > 0]
    dependence = "".join(_dependence_figure(card, f) for f in top[:DEPENDENCE_PLOTS])
    base = float(np.mean(card.shap[:, -1]))
    base_text = (
        f"<p>A typical item's raw score is {base:.2f} log-odds "
        f"({100 * float(calibrate(np.array([base]), card.spec['calibration'])[0]):.1f}% after "
        "calibration); each feature's SHAP value moves it up or down.</p>"
        if card.spec["task"] != REVENUE_TASK
        else ""
    )
    return (
        base_text
        + _importance_figure(card, importance)
        + f"<h3>Dependence plots of the top {min(DEPENDENCE_PLOTS, len(top))} features</h3>"
        + dependence
    )


def _features(card: ModelCard, importance: pd.DataFrame) -> str:
    spec = card.spec
    meanings = feature_meanings(str(spec.get("feature_service")))
    declared = {f.name: f for f in FEATURES_BY_SUBJECT.get(spec["subject"], ())}
    rank = {name: i + 1 for i, name in enumerate(importance["feature"])}
    rows = []
    for name in spec["features"]:
        meaning = meanings.get(name)
        if meaning is not None:
            source = (
                f"Feast view <code>{escape(meaning.view)}</code>: {escape(meaning.description)}"
            )
        elif name.startswith("extra_"):
            source = "a national attribute of the dataset (<code>extra</code>)"
        else:
            source = f"computed from the {escape(spec['subject'])} itself"
        model_feature = declared.get(name)
        monotone = {1: "never lowers the risk", -1: "never raises the risk"}.get(
            model_feature.monotone if model_feature else 0, "learned"
        )
        rows.append(
            (
                rank.get(name),
                Markup(f"<b>{escape(_label(card, name))}</b><br><code>{escape(name)}</code>"),
                "categorical" if name in spec["vocabularies"] else "numeric",
                Markup(source),
                monotone,
            )
        )
    rows.sort(key=lambda r: r[0] or 0)
    return table(
        (
            "importance rank",
            "feature",
            "kind",
            "where it comes from, what it means",
            "a higher value",
        ),
        rows,
    )


def _limitations(card: ModelCard) -> str:
    items = []
    for area, why in card.areas_without_model.items():
        items.append(
            f"No {card.spec['subject']} model for {area}: {why}. The rule profiles stay "
            "in charge of that area."
        )
    random = card.training_metrics.get("random_controls", {})
    if random.get("n_irregular") is not None and random["n_irregular"] < SMALL_SLICE_HITS:
        items.append(
            f"Only {random['n_irregular']} hits among {random.get('n_items', 0):,} random controls "
            "in the test window: the unbiased figures are uncertain."
        )
    for set_name, metrics in _evaluation_sets(card):
        for name, values in (metrics.get("slices") or {}).items():
            for value, entry in values.items():
                hits = entry.get("n_irregular")
                if hits is not None and hits < SMALL_SLICE_HITS:
                    items.append(
                        f"Small sample: slice {name}={value} on {set_name} has "
                        f"{entry.get('n_items'):,} items and {hits} hits."
                    )
    if not card.manifest.revenue_known:
        items.append("Revenue recovered is unknown for this dataset: no revenue model.")
    if card.manifest.source == "synthetic_world":
        items.append(
            "Trained on the synthetic customs world: its figures do not describe real traffic."
        )
    items.append(
        "Scores reflect the training period; drift in trade patterns or in the control policy "
        "changes them. Monitor and retrain (`crisk retrain`)."
    )
    return "<ul>" + "".join(f"<li>{escape(t)}</li>" for t in items) + "</ul>"


def _history(card: ModelCard) -> str:
    if not card.decisions:
        return "<p>No promotion-gate decision about this model has been recorded yet.</p>"
    rows = []
    for decision in card.decisions:
        tags = decision["tags"]
        details = Markup(
            "<br>".join(f"{escape(k)} = {escape(v)}" for k, v in sorted(decision["params"].items()))
        )
        figures = Markup(
            "<br>".join(
                f"{escape(k)} = {_number(v, 4)}" for k, v in sorted(decision["metrics"].items())
            )
        )
        rows.append(
            (
                decision["time"],
                tags.get("decision"),
                tags.get("reason"),
                details,
                figures,
                decision["run_id"],
            )
        )
    return table(("time", "decision", "reason", "parameters", "figures", "MLflow run"), rows)


def render_card(card: ModelCard) -> str:
    """The card as one self-contained HTML page."""
    importance = _importance(card)
    toc = "".join(
        f'<a href="#{anchor}">{escape(title)}</a>'
        for anchor, title in (
            ("uses", "uses"),
            ("data", "data"),
            ("bias", "selection bias"),
            ("metrics", "metrics"),
            ("curves", "curves"),
            ("shap", "explanations"),
            ("features", "features"),
            ("limitations", "limitations"),
            ("history", "promotions"),
        )
    )
    body = [
        f'<nav class="toc">{toc}</nav>',
        section("Model", _identity(card), "model"),
        section("Intended use and out-of-scope uses", _uses(card), "uses"),
        section("Training data", _training_data(card), "data"),
        section("How the selection bias of labels was handled", _selection_bias(card), "bias"),
        section("Metrics per area and slice, with the baselines", _metrics(card), "metrics"),
        section("PR and calibration curves", _curves(card), "curves"),
        section("SHAP global importance and dependence", _explanations(card, importance), "shap"),
        section("Features and what they mean", _features(card, importance), "features"),
        section("Known limitations", _limitations(card), "limitations"),
        section("Promotion history", _history(card), "history"),
    ]
    return page(
        f"Model card: {card.name} v{card.version}",
        "".join(body),
        subtitle=f"{_SUBJECT_WORDS.get(card.spec['subject'])}, risk area {card.spec['area']}; "
        f"generated {datetime.now(UTC).isoformat(timespec='seconds')}",
    )


def index_page(cards: Sequence[ModelCard], paths: Mapping[str, Path], bundle: str | None) -> str:
    rows = [
        (
            Markup(f'<a href="{escape(paths[c.name].name)}">{escape(c.name)}</a>'),
            c.version,
            c.spec["subject"],
            c.spec["area"],
            c.spec["task"],
            ", ".join(c.aliases) or "–",
        )
        for c in cards
    ]
    missing = sorted(
        {(c.spec["subject"], a, w) for c in cards for a, w in c.areas_without_model.items()}
    )
    body = table(("model", "version", "subject", "area", "task", "aliases now"), rows)
    if missing:
        body += "<h2>Areas without a model</h2>" + table(("subject", "area", "why"), missing)
    return page("crisk model cards", body, subtitle=f"bundle {bundle or '–'}")
