"""Decision pages: everything an auditor needs to review one scored item, in one record.

:func:`decision_record` builds it from the audit entry (what was received, the features used,
the scores, channel, thresholds, reasons and versions recorded at the time), the bundle that
scored it (to explain every area again from the logged features, and to place each feature
against the model's reference sample) and the control results received for the subject (data
store and the service's feedback store). ``POST /explain`` returns the record as JSON;
``crisk audit show`` prints it as text or writes it as a self-contained HTML page (SHAP waterfall
pictures embedded) — one builder, so the three never disagree.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.definitions import contract_for
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
from data_contracts.record_store import has_records, read_stored_records
from data_contracts.workspace import Workspace
from features.model_input import calibrate
from serving.bundle import Bundle, LoadedModel
from serving.reasons import GROUP_FEATURE, area_name, format_probability, top_reasons
from serving.state import FeedbackBackend

__all__ = [
    "CHANNEL_MEANINGS",
    "THRESHOLD_MEANINGS",
    "decision_html",
    "decision_record",
    "decision_text",
    "explain_entry",
    "subject_control_results",
]

logger = logging.getLogger(__name__)

CHANNEL_MEANINGS = {
    "green": "release without control",
    "yellow": "documentary control",
    "red": "physical control",
    "blue": "post-release audit",
}
THRESHOLD_MEANINGS = {
    "select": "selection value from which the model selects an item for control (EUR: expected "
    "revenue + the hit value per expected non-revenue irregularity; the overall probability "
    "when no revenue model serves)",
    "red": "selection value from which a selected item goes to physical control (red)",
    "revenue": "expected revenue (EUR) from which an unselected item goes to post-release audit",
    "hit_value_eur": "what an expected irregularity in an area without revenue counts for in "
    "the selection value (EUR)",
}
_RESULT_FIELDS = (
    "control_id",
    "controlled_at",
    "reported_at",
    "control_type",
    "selection_reason",
    "outcome",
    "risk_area",
    "revenue_recovered_eur",
    "seizure",
    "note",
)
_WATERFALL_BARS = 10


def _plain(value: Any) -> Any:
    """A JSON-ready value: timestamps as ISO text, missing as None, numpy as Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _data_store_results(workspace: Workspace, subject_type: str, subject_id: str) -> list[dict]:
    if not has_records(workspace, "control-results"):
        return []
    frame = read_stored_records(
        workspace, "control-results", filters=[("subject_id", "==", subject_id)]
    )
    frame = frame[frame["subject_type"] == subject_type]
    results = []
    for row in frame.to_dict("records"):
        result = {name: _plain(row.get(name)) for name in _RESULT_FIELDS}
        result.update(item_number=_plain(row.get("item_number")), source="data store")
        results.append(result)
    return results


def subject_control_results(
    workspace: Workspace,
    feedback: FeedbackBackend | None,
    subject_type: str,
    subject_id: str,
    item_number: int | None = None,
) -> list[dict[str, Any]]:
    """Every control result received for a subject: the data store's, then the service's.

    A result the service received and that was since ingested is listed once (from the data
    store, noting that the service received it). Results for another item of the same
    declaration are left out; a result without an item number applies to every item.
    """
    results = _data_store_results(workspace, subject_type, subject_id)
    by_id = {r["control_id"]: r for r in results}
    received = feedback.for_subject(subject_type, subject_id) if feedback is not None else []
    for record in received:
        if record.get("control_id") in by_id:
            by_id[record["control_id"]]["received_by_service_at"] = record.get("received_at")
            continue
        entry = {name: record.get(name) for name in _RESULT_FIELDS}
        entry.update(
            item_number=record.get("item_number"),
            source="feedback store (not yet ingested)",
            received_by_service_at=record.get("received_at"),
        )
        results.append(entry)
    if item_number is not None:
        results = [r for r in results if r.get("item_number") in (None, item_number)]
    return sorted(results, key=lambda r: str(r.get("controlled_at")))


def _frame_of(entry: Mapping[str, Any], model: LoadedModel) -> dict[str, np.ndarray]:
    features = entry.get("features", {})
    return {name: np.array([features.get(name)], dtype=object) for name in model.spec["features"]}


def explain_entry(bundle: Bundle, entry: Mapping[str, Any], k: int = 5) -> list[dict[str, Any]]:
    """Reasons for an audited score, recomputed from the features it recorded (same bundle)."""
    subject = entry["subject_type"]
    area = entry.get("primary_area")
    model = next((m for m in bundle.classifiers(subject) if m.area == area), None)
    if model is None:
        raise LookupError(f"bundle {bundle.tag} has no {subject}/{area} model")
    contributions = model.booster.predict(model.encoder(_frame_of(entry, model)), pred_contrib=True)
    features = entry.get("features", {})
    values = [features.get(name) for name in model.spec["features"]]
    return top_reasons(
        contributions[0],
        model.spec["features"],
        values,
        model.spec["labels"],
        str(area),
        k=k,
        profile=model.profile,
        group=features.get(GROUP_FEATURE),
        calibration=model.spec["calibration"],
    )


def _explain_area(model: LoadedModel, entry: Mapping[str, Any]) -> dict[str, Any]:
    """TreeSHAP of one area model for the audited item, recomputed from its logged features."""
    contributions = model.booster.predict(model.encoder(_frame_of(entry, model)), pred_contrib=True)
    row = np.asarray(contributions[0], dtype=float)
    names = model.spec["features"]
    features = row[: len(names)]
    bias, margin = float(row[-1]), float(row.sum())
    score = float(calibrate(np.array([margin]), model.spec["calibration"])[0])
    base = float(calibrate(np.array([bias]), model.spec["calibration"])[0])
    recorded = entry.get("scores", {}).get(model.area)
    values = entry.get("features", {})
    labels = model.spec.get("labels", {})
    order = np.argsort(-np.abs(features))
    profile = model.profile
    return {
        "model": model.ref,
        "base_value": round(bias, 6),
        "base_probability": round(base, 6),
        "margin": round(margin, 6),
        "probability": round(score, 6),
        "recorded_probability": recorded,
        "matches_recorded": None if recorded is None else bool(abs(score - recorded) < 1e-5),
        "contributions": [
            {
                "feature": names[i],
                "label": profile.get(names[i], labels.get(names[i], names[i])).label,
                "value": _plain(values.get(names[i])),
                "display": profile.get(names[i], labels.get(names[i], names[i])).display(
                    values.get(names[i])
                ),
                "contribution": round(float(features[i]), 6),
            }
            for i in order
        ],
    }


def _features_used(models: Sequence[LoadedModel], entry: Mapping[str, Any]) -> list[dict]:
    """Every logged feature with its value as read, and where it stands among recent items."""
    values = entry.get("features", {})
    group = values.get(GROUP_FEATURE)
    # The log stores keys sorted; the model's own order (request fields first) reads better.
    order = [name for m in models for name in m.spec["features"]]
    names = sorted(values, key=lambda n: order.index(n) if n in order else len(order))
    rows = []
    for name in names:
        value = values[name]
        model = next((m for m in models if name in m.spec["features"]), None)
        if model is None:
            rows.append({"feature": name, "label": name, "value": _plain(value), "used": False})
            continue
        reference = model.profile.get(name, model.spec.get("labels", {}).get(name, name))
        comparison = reference.compare(value, group)
        rows.append(
            {
                "feature": name,
                "label": reference.label,
                "value": _plain(value),
                "display": reference.display(value),
                "percentile": None
                if comparison.percentile is None
                else round(comparison.percentile, 1),
                "comparison": _bare(comparison.text),
                "used": True,
            }
        )
    return rows


def _bare(comparison: str) -> str:
    """A sentence's comparison on its own: ' (4.4% of recent items)' -> '4.4% of recent items'."""
    text = comparison.lstrip(", ").strip()
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


def _selection(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded selection ({reason, probability}) or, for older entries, what implies it."""
    recorded = entry.get("selection")
    if recorded:
        return {**recorded, "recorded": True}
    if entry.get("random_selection"):
        reason: str | None = "random"
    elif entry.get("channel") in ("yellow", "red", "blue"):
        reason = "model"
    else:
        reason = None
    return {"reason": reason, "probability": None, "recorded": False}


def decision_record(
    entry: Mapping[str, Any],
    bundle: Bundle | None,
    control_results: Sequence[Mapping[str, Any]],
    k: int = 5,
) -> dict[str, Any]:
    """The decision page's content for one audited item (``bundle``: the one that scored it).

    Everything the audit entry holds is kept as it is; added are the reasons (recomputed from
    the logged features when the entry has none), each area's explanation, the features with
    their percentiles, the selection, the meaning of the thresholds and the control results.
    """
    record = dict(entry)
    kind = "declarations" if entry["subject_type"] == "declaration" else "ens"
    fields = contract_for(kind).field_names
    received = entry.get("input", {})
    # The log stores keys sorted; the contract's field order is how a declaration reads.
    record["input"] = {
        name: received[name]
        for name in sorted(received, key=lambda n: fields.index(n) if n in fields else len(fields))
    }
    thresholds = entry.get("thresholds", {})
    record["thresholds"] = {
        name: thresholds[name]
        for name in sorted(
            thresholds,
            key=lambda n: list(THRESHOLD_MEANINGS).index(n) if n in THRESHOLD_MEANINGS else 99,
        )
    }
    models = bundle.classifiers(entry["subject_type"]) if bundle is not None else []
    record["selection"] = _selection(entry)
    record["channel_meaning"] = CHANNEL_MEANINGS.get(str(entry.get("channel")), "")
    record["threshold_meanings"] = {
        name: THRESHOLD_MEANINGS.get(name, name) for name in entry.get("thresholds", {})
    }
    record["problems"] = []
    if bundle is None:
        record["problems"].append(
            f"bundle {entry.get('bundle')} is no longer in the model store: the explanation "
            "cannot be recomputed; the recorded reasons are shown"
        )
    if not entry.get("reasons") and bundle is not None:
        record["reasons"] = explain_entry(bundle, entry, k=k)
        record["reasons_recomputed"] = True
    primary = entry.get("primary_area")
    ordered = sorted(models, key=lambda m: (m.area != primary, m.area))
    record["explanations"] = {m.area: _explain_area(m, entry) for m in ordered}
    for area, explanation in record["explanations"].items():
        if explanation["matches_recorded"] is False:
            record["problems"].append(
                f"{area}: the score recomputed from the logged features "
                f"({explanation['probability']:.6f}) differs from the recorded one "
                f"({explanation['recorded_probability']:.6f})"
            )
    record["features_used"] = _features_used(ordered, entry)
    record["control_results"] = [dict(r) for r in control_results]
    return record


# --- text ---------------------------------------------------------------------------------------


def _subject_title(record: Mapping[str, Any]) -> str:
    kind = "declaration" if record["subject_type"] == "declaration" else "ENS filing"
    item = f", item {record['item_number']}" if record.get("item_number") is not None else ""
    return f"{kind} {record['subject_id']}{item}"


def _selection_text(record: Mapping[str, Any]) -> str:
    selection = record["selection"]
    reason = selection.get("reason")
    if reason is None:
        return "not selected for control"
    text = {
        "random": "selected at random (the unbiased sample)",
        "model": "selected by the risk model",
        "rule": "selected by a rule profile",
    }.get(reason, f"selected ({reason})")
    if selection.get("probability") is not None:
        text += f"; probability of this selection {format_probability(selection['probability'])}"
    return text + ("" if selection.get("recorded") else " (derived from the channel)")


def _result_line(result: Mapping[str, Any]) -> str:
    found = result.get("outcome") == "irregularity"
    outcome = f"irregularity ({result.get('risk_area')})" if found else "no irregularity"
    revenue = result.get("revenue_recovered_eur")
    money = f", {format_number(float(revenue))} EUR recovered" if revenue else ""
    return (
        f"{result.get('control_id')}: {result.get('control_type')} control on "
        f"{result.get('controlled_at')} ({result.get('selection_reason')} selection): "
        f"{outcome}{money} [{result.get('source')}]"
    )


def decision_text(record: Mapping[str, Any]) -> str:
    """The decision as plain text for a terminal."""
    lines = [
        f"Decision {record['scoring_id']}: {_subject_title(record)}",
        f"  scored {record.get('created_at')} (event time {record.get('event_time')}), "
        f"bundle {record.get('bundle')}",
        f"  channel {str(record.get('channel')).upper()}: {record.get('channel_meaning')}; "
        f"{_selection_text(record)}",
        f"  overall probability {format_probability(record['overall'])}, expected revenue "
        f"{format_number(float(record.get('expected_revenue_eur') or 0.0))} EUR, main area "
        f"{record.get('primary_area')}",
        "",
        "Scores per risk area",
    ]
    for area, score in record.get("scores", {}).items():
        explanation = record["explanations"].get(area, {})
        base = explanation.get("base_probability")
        typical = "" if base is None else f" (a typical item: {format_probability(base)})"
        lines.append(f"  {area_name(area)}: {format_probability(score)}{typical}")
    lines.append("Thresholds in force")
    for name, value in record.get("thresholds", {}).items():
        lines.append(f"  {name} = {format_number(value, 4)}: {record['threshold_meanings'][name]}")
    lines.append(f"Top reasons ({record.get('primary_area')} model)")
    lines.extend(f"  {i}. {r['sentence']}" for i, r in enumerate(record.get("reasons", []), 1))
    for area, explanation in record["explanations"].items():
        lines.append(
            f"Explanation, {area_name(area)} ({explanation['model']}): "
            f"{format_probability(explanation['base_probability'])} for a typical item -> "
            f"{format_probability(explanation['probability'])} for this one"
        )
        for c in explanation["contributions"][:5]:
            lines.append(f"  {c['contribution']:+.3f} log-odds  {c['label']} = {c['display']}")
    versions = ", ".join(f"{a}: {v}" for a, v in record.get("model_version", {}).items())
    lines += [
        f"Models: {versions}; feature service {record.get('feature_service')}",
        f"Warnings: {', '.join(record.get('warnings', [])) or 'none'}",
        "Request as received",
    ]
    lines.extend(f"  {name}: {value}" for name, value in record.get("input", {}).items())
    lines.append("Features used (where each stands among the model's recent reference items)")
    for feature in record["features_used"]:
        standing = f" — {feature['comparison']}" if feature.get("comparison") else ""
        lines.append(f"  {feature['label']}: {feature.get('display', feature['value'])}{standing}")
    results = record["control_results"]
    lines.append(f"Control results received for this subject: {len(results)}")
    lines.extend(f"  {_result_line(r)}" for r in results)
    audit = record.get("_audit", {})
    lines.append(
        f"Audit log: entry {audit.get('seq')}, position {audit.get('position')}, "
        f"hash {audit.get('hash')}"
    )
    lines.extend(f"PROBLEM: {problem}" for problem in record.get("problems", []))
    return "\n".join(lines)


# --- HTML ---------------------------------------------------------------------------------------


def _waterfall(area: str, explanation: Mapping[str, Any]) -> str:
    """A SHAP waterfall: from a typical item's score to this item's, one bar per feature."""
    contributions = explanation["contributions"]
    shown = contributions[:_WATERFALL_BARS]
    labels = [_short(f"{c['label']} = {c['display']}", 56) for c in shown]
    steps = [c["contribution"] for c in shown]
    if len(contributions) > _WATERFALL_BARS:
        labels.append(f"{len(contributions) - _WATERFALL_BARS} other features")
        steps.append(sum(c["contribution"] for c in contributions[_WATERFALL_BARS:]))
    fig, axis = new_figure(9.0, 0.36 * len(steps) + 1.5)
    start = base = explanation["base_value"]
    ends = [base]
    for position, step in enumerate(steps):
        colour = "#c0392b" if step > 0 else "#1f5fa8"
        axis.barh(position, step, left=start, color=colour, height=0.62)
        axis.text(
            start + step,
            position,
            f" {step:+.2f} ",
            va="center",
            ha="left" if step > 0 else "right",
            fontsize=8,
        )
        start += step
        ends.append(start)
    low, high = min(ends), max(ends)
    pad = 0.12 * max(high - low, 0.5)
    axis.set_xlim(low - pad, high + pad)
    axis.set_yticks(range(len(steps)), labels, fontsize=8)
    axis.invert_yaxis()
    axis.axvline(base, color="#7b8794", linestyle="--", linewidth=1)
    axis.axvline(explanation["margin"], color="#1d2733", linewidth=1)
    axis.set_xlabel("model score, log-odds (dashed: a typical item; solid: this item)", fontsize=9)
    axis.set_title(
        f"{area_name(area)}: {format_probability(explanation['base_probability'])} for a typical "
        f"item → {format_probability(explanation['probability'])} for this one",
        fontsize=10,
    )
    return figure(
        fig,
        alt=f"SHAP waterfall of the {area_name(area)} model",
        caption=f"{explanation['model']}: each bar is one feature's contribution (TreeSHAP), "
        "red raising the risk, blue lowering it; probabilities are the calibrated scores.",
    )


def _short(value: Any, width: int = 24) -> str:
    if isinstance(value, float):
        return format_number(value)
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _badge(channel: Any) -> Markup:
    name = str(channel)
    colour = name if name in CHANNEL_MEANINGS else "grey"
    return Markup(f'<span class="badge {colour}">{escape(name)}</span>')


def _summary_html(record: Mapping[str, Any]) -> str:
    rows: list[tuple[str, Any]] = [
        ("subject", _subject_title(record)),
        ("channel", Markup(f"{_badge(record.get('channel'))} {escape(record['channel_meaning'])}")),
        ("selection", _selection_text(record)),
        ("overall probability", format_probability(record["overall"])),
        ("expected revenue", f"{format_number(float(record.get('expected_revenue_eur') or 0))} €"),
        ("main risk area", area_name(str(record.get("primary_area")))),
        ("random selection", "yes" if record.get("random_selection") else "no"),
        ("scored at", record.get("created_at")),
        ("event time", record.get("event_time")),
        ("warnings", ", ".join(record.get("warnings", [])) or "none"),
    ]
    return definition_list(rows)


def _scores_html(record: Mapping[str, Any]) -> str:
    rows = []
    for area, score in record.get("scores", {}).items():
        explanation = record["explanations"].get(area, {})
        rows.append(
            (
                area_name(area),
                format_probability(score),
                format_probability(explanation["base_probability"]) if explanation else "–",
                explanation.get("model", record.get("model_version", {}).get(area)),
                {True: "yes", False: "NO", None: "–"}[explanation.get("matches_recorded")],
            )
        )
    thresholds = [
        (name, format_number(value, 4), record["threshold_meanings"][name])
        for name, value in record.get("thresholds", {}).items()
    ]
    return (
        table(
            ("risk area", "score", "typical item", "model", "recomputed score equals the recorded"),
            rows,
        )
        + "<h3>Thresholds in force</h3>"
        + table(("threshold", "value", "meaning"), thresholds)
    )


def _reasons_html(record: Mapping[str, Any]) -> str:
    reasons = record.get("reasons", [])
    items = "".join(f"<li>{escape(r['sentence'])}</li>" for r in reasons)
    recomputed = (
        "<p class='muted'>Recomputed from the logged features with the same bundle "
        "(the service stores reasons for items it did not release).</p>"
        if record.get("reasons_recomputed")
        else ""
    )
    return f"<ol>{items}</ol>{recomputed}"


def _results_html(results: Sequence[Mapping[str, Any]]) -> str:
    if not results:
        return "<p>No control result has been received for this subject.</p>"
    headers = (
        "control",
        "controlled at",
        "reported at",
        "type",
        "selection",
        "outcome",
        "risk area",
        "revenue EUR",
        "seizure",
        "source",
    )
    rows = [
        (
            r.get("control_id"),
            r.get("controlled_at"),
            r.get("reported_at"),
            r.get("control_type"),
            r.get("selection_reason"),
            r.get("outcome"),
            r.get("risk_area"),
            r.get("revenue_recovered_eur"),
            r.get("seizure"),
            r.get("source"),
        )
        for r in results
    ]
    return table(headers, rows)


def decision_html(record: Mapping[str, Any]) -> str:
    """The decision as one self-contained HTML page (waterfall pictures embedded)."""
    versions = [(area, ref) for area, ref in record.get("model_version", {}).items()]
    audit = record.get("_audit", {})
    features = [
        (f["label"], f.get("display", f["value"]), f.get("percentile"), f.get("comparison", ""))
        for f in record["features_used"]
    ]
    problems = "".join(note(problem) for problem in record.get("problems", []))
    body = [
        problems,
        section("Decision", _summary_html(record), "decision"),
        section("Scores and thresholds", _scores_html(record), "scores"),
        section(
            f"Top reasons ({area_name(str(record.get('primary_area')))} model)",
            _reasons_html(record),
            "reasons",
        ),
        section(
            "Explanation per risk area (SHAP waterfall)",
            "".join(_waterfall(a, e) for a, e in record["explanations"].items())
            or "<p>No explanation: the bundle is not available.</p>",
            "waterfall",
        ),
        section(
            "Models and features",
            table(("risk area", "registered model/version"), versions)
            + definition_list(
                [
                    ("feature service", record.get("feature_service")),
                    ("bundle", record.get("bundle")),
                ]
            )
            + "<h3>Features used</h3>"
            + table(("feature", "value", "percentile among recent items", "comparison"), features),
            "models",
        ),
        section(
            "Request as received",
            table(
                ("field", "value"),
                [(k, "–" if v is None else str(v)) for k, v in record.get("input", {}).items()],
            ),
            "request",
        ),
        section(
            f"Control results received ({len(record['control_results'])})",
            _results_html(record["control_results"]),
            "controls",
        ),
        section(
            "Audit log",
            definition_list(
                [
                    ("entry", audit.get("seq")),
                    ("position in the entry", audit.get("position")),
                    ("hash", audit.get("hash")),
                    ("scoring id", record["scoring_id"]),
                ]
            )
            + "<p class='muted'>`crisk audit verify` recomputes the hash chain of the log.</p>",
            "audit",
        ),
    ]
    return page(
        f"Decision {record['scoring_id']}",
        "".join(body),
        subtitle=f"{_subject_title(record)} — scored {record.get('created_at')}",
    )
