"""The HTML model report: what an auditor or model-risk reviewer reads about a model set.

Built from ``crisk evaluate``'s metrics: which models, on which window and data, how each area
ranks against the baselines (and the oracle on the synthetic world), per slice, how well the
probabilities are calibrated, and how the selection bias of training labels was handled.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

__all__ = ["write_model_report"]

_RATES = ("1", "2", "5", "10")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.3f}"
    return html.escape(str(value))


def _calibration_png(curve: dict[str, list[float]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(4, 3))
    top = max([*curve.get("predicted", []), *curve.get("observed", []), 0.01])
    axis.plot([0, top], [0, top], linestyle="--", color="grey")
    axis.plot(curve.get("predicted", []), curve.get("observed", []), marker="o")
    axis.set_xlabel("predicted")
    axis.set_ylabel("observed")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _rates_table(metrics: dict[str, Any]) -> str:
    rows = []
    for label, key in (
        ("Precision@n%", "precision_at"),
        ("Recall@n%", "recall_at"),
        ("Revenue@n%", "revenue_at"),
        ("Precision@n% / best", "precision_at_normalised"),
        ("Recall@n% / best", "recall_at_normalised"),
        ("Revenue@n% / best", "revenue_at_normalised"),
    ):
        values = metrics.get(key) or {}  # None: not reported (e.g. revenue unknown)
        rows.append(
            f"<tr><th>{label}</th>"
            + "".join(f"<td>{_fmt(values.get(r))}</td>" for r in _RATES)
            + "</tr>"
        )
    oracle = metrics.get("oracle", {}).get("precision_at")
    if oracle:
        rows.append(
            "<tr><th>oracle Precision@n%</th>"
            + "".join(f"<td>{_fmt(oracle.get(r))}</td>" for r in _RATES)
            + "</tr>"
        )
        share = metrics.get("precision_at_share_of_oracle", {})
        rows.append(
            "<tr><th>share of the oracle</th>"
            + "".join(f"<td>{_fmt(share.get(r))}</td>" for r in _RATES)
            + "</tr>"
        )
    for name, baseline in metrics.get("baselines", {}).items():
        values = baseline.get("precision_at", {})
        rows.append(
            f"<tr><th>baseline {html.escape(name)}: Precision@n%</th>"
            + "".join(f"<td>{_fmt(values.get(r))}</td>" for r in _RATES)
            + "</tr>"
        )
    head = "<tr><th></th>" + "".join(f"<th>{r}%</th>" for r in _RATES) + "</tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _slices_table(slices: dict[str, Any]) -> str:
    rows = []
    for name, values in slices.items():
        for value, entry in values.items():
            cells = (
                name, value, f"{entry['n_items']:,}", entry.get("n_irregular", ""),
                entry["precision_at"].get("5"),
            )  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("slice", "value", "items", "irregular", "P@5%"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_model_report(report: dict[str, Any], path: Path) -> Path:
    """Write the report of ``crisk evaluate``'s output to ``path``."""
    windows = "; ".join(
        f"{html.escape(subject)}: {_fmt(w.get('from'))} to {_fmt(w.get('to'))} (data set "
        f"<b>{_fmt(report.get('primary_datasets', {}).get(subject))}</b>)"
        for subject, w in report.get("windows", {}).items()
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>crisk model report</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px} table{border-collapse:"
        "collapse;margin:0.5em 0} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        " th{background:#f4f4f4} h2{margin-top:2em}</style></head><body>",
        "<h1>crisk model report</h1>",
        f"<p>Models (alias <b>{_fmt(report.get('alias'))}</b>): "
        + ", ".join(
            f"{html.escape(k)} v{html.escape(v)}" for k, v in report.get("models", {}).items()
        )
        + "</p>",
        f"<p>Evaluation windows: {windows}. "
        "Selection is the top n% by score, ties broken by expected revenue.</p>",
        "<h2>How selection bias was handled</h2>"
        f"<p>{html.escape(report.get('selection_bias', ''))}</p>",
        *(f"<p>Note: {html.escape(note)}</p>" for note in report.get("notes", [])),
    ]
    for key, metrics in report.get("areas", {}).items():
        if "@" in key:
            continue
        parts.append(f"<h2>{html.escape(key)} — {html.escape(metrics.get('model', ''))}</h2>")
        parts.append(
            f"<p>{metrics['n_items']:,} items, {metrics['n_irregular']:,} irregular (data set "
            f"{_fmt(metrics.get('dataset'))}). PR-AUC {_fmt(metrics.get('pr_auc'))}, ROC-AUC "
            f"{_fmt(metrics.get('roc_auc'))}, Brier {_fmt(metrics.get('brier'))}.</p>"
        )
        parts.append(_rates_table(metrics))
        for other_key, other in report["areas"].items():
            if other_key.startswith(f"{key}@"):
                data_set = other_key.split("@", 1)[1]
                baselines = "; ".join(
                    f"{html.escape(b)} {_fmt(v['precision_at']['5'])}"
                    for b, v in other["baselines"].items()
                )
                parts.append(
                    f"<p>On <b>{html.escape(data_set)}</b> ({other['n_items']:,} items, "
                    f"{other['n_irregular']:,} irregular): Precision@5% "
                    f"{_fmt(other['precision_at']['5'])}; baselines: {baselines}</p>"
                )
        if metrics.get("calibration", {}).get("predicted"):
            parts.append(
                f"<p>Calibration:<br><img alt='calibration' src='data:image/png;base64,"
                f"{_calibration_png(metrics['calibration'])}'></p>"
            )
        parts.append(_slices_table(metrics.get("slices", {})))
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
