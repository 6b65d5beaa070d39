"""The EU monitoring framework's indicators over stored control results and the audit log.

What ``crisk report`` computes (spec §5; domain §4, indicators T2#5, T2#6, T4#20, T3#7 and the
breakdowns "per type of risk" and "per type of border"):

- controls by type and by selection reason ("based on electronic risk analysis" = model or rule);
- the hit rate of each control type for model, rule and random selection;
- detected irregularities for AEOs versus non-AEOs (status from the operator register; without
  one it is "unknown");
- hits per risk area and per transport mode;
- from the audit log, when there is one: items risk-analysed and the channels recommended.

Every figure carries its count. Rates measured on *random* controls are the only unbiased
estimates of the rate in the whole flow: they get a 95% Wilson interval; rates on targeted
controls are labelled as such, and a report without random controls says its rates are biased.
Works on a workspace holding declarations and control results only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.codelists import TRANSPORT_MODES
from data_contracts.dataset import read_manifest
from data_contracts.pages import escape, figure, new_figure, note, page, section, table
from data_contracts.record_store import has_records, read_stored_records
from data_contracts.workspace import Workspace
from serving.config import ServingSettings
from serving.state import AuditStore, FeedbackBackend, open_audit_log, open_feedback_store

__all__ = [
    "Indicator",
    "IndicatorInputs",
    "IndicatorReport",
    "compute_indicators",
    "indicators_html",
    "load_inputs",
    "share_column",
    "wilson_interval",
]

logger = logging.getLogger(__name__)

SELECTION_ORDER = ("model", "rule", "random", "other")
CONTROL_ORDER = ("documentary", "physical", "scan", "post_release_audit")
_FEW_RANDOM = 30
UNBIASED = "unbiased (random)"
TARGETED = "targeted (biased)"


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at 0 hits and at small ``n``)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = hits / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass
class IndicatorInputs:
    """What the indicators are computed from (each part may be missing but the results)."""

    control_results: pd.DataFrame  # contract columns, one row per control (latest version)
    subjects: pd.DataFrame  # subject_type, subject_id, transport_mode, operator_id
    register: pd.Series | None  # operator_id -> AEO status (bool); None: no register
    scored: pd.DataFrame | None  # audit log items; None: no audit log
    revenue_known: bool = True
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Indicator:
    key: str
    title: str
    description: str
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


@dataclass
class IndicatorReport:
    period: tuple[date | None, date | None]
    n_controls: int
    n_random: int
    indicators: list[Indicator]
    notes: list[str]
    sources: dict[str, str]

    def get(self, key: str) -> Indicator:
        return next(i for i in self.indicators if i.key == key)


# --- loading ------------------------------------------------------------------------------------


def _control_results(
    workspace: Workspace, feedback: FeedbackBackend | None
) -> tuple[pd.DataFrame, dict[str, str]]:
    frames, sources = [], {}
    path = workspace.record_file("control-results")
    if has_records(workspace, "control-results"):
        stored = read_stored_records(workspace, "control-results").assign(source="data store")
        frames.append(stored)
        sources["control results"] = f"{len(stored):,} in the data store"
    if feedback is not None:
        received = feedback.frame()
        if not received.empty:
            # Results the service received and that were not ingested yet count too.
            known = set(frames[0]["control_id"]) if frames else set()
            pending = received[~received["control_id"].isin(known)].assign(source="feedback store")
            frames.append(pending)
            sources["feedback store"] = f"{len(pending):,} received, not yet ingested"
    if not frames:
        raise FileNotFoundError(
            f"{path}: no control results in this workspace; ingest some with "
            "`crisk ingest control-results FILE` or `crisk feedback ingest`"
        )
    results = pd.concat(frames, ignore_index=True)
    results["controlled_at"] = pd.to_datetime(results["controlled_at"], utc=True, format="mixed")
    return results, sources


def _subjects(workspace: Workspace) -> tuple[pd.DataFrame, dict[str, str]]:
    parts, sources = [], {}
    if has_records(workspace, "declarations"):
        frame = read_stored_records(
            workspace, "declarations", ["declaration_id", "transport_mode", "importer_id"]
        ).drop_duplicates("declaration_id")
        parts.append(
            pd.DataFrame(
                {
                    "subject_type": "declaration",
                    "subject_id": frame["declaration_id"],
                    "transport_mode": frame["transport_mode"],
                    "operator_id": frame["importer_id"],
                }
            )
        )
        sources["declarations"] = f"{len(frame):,}"
    if has_records(workspace, "ens"):
        frame = read_stored_records(workspace, "ens", ["ens_id", "transport_mode", "consignee_id"])
        parts.append(
            pd.DataFrame(
                {
                    "subject_type": "ens",
                    "subject_id": frame["ens_id"],
                    "transport_mode": frame["transport_mode"],
                    "operator_id": frame["consignee_id"],
                }
            )
        )
        sources["ENS filings"] = f"{len(frame):,}"
    if not parts:
        return pd.DataFrame(
            columns=["subject_type", "subject_id", "transport_mode", "operator_id"]
        ), sources
    return pd.concat(parts, ignore_index=True), sources


def _register(workspace: Workspace) -> pd.Series | None:
    if not has_records(workspace, "operators"):
        return None
    operators = read_stored_records(workspace, "operators", ["operator_id", "aeo"])
    return operators.drop_duplicates("operator_id").set_index("operator_id")["aeo"].astype(bool)


def _scored(audit: AuditStore | None) -> pd.DataFrame | None:
    if audit is None:
        return None
    rows = [
        {
            "subject_type": item.get("subject_type"),
            "channel": item.get("channel"),
            "random_selection": bool(item.get("random_selection")),
            "selection_reason": (item.get("selection") or {}).get("reason"),
            "event_time": item.get("event_time"),
        }
        for item in audit.items()
    ]
    frame = pd.DataFrame(
        rows,
        columns=["subject_type", "channel", "random_selection", "selection_reason", "event_time"],
    )
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True, format="mixed")
    return frame


def load_inputs(workspace: Workspace, state: ServingSettings | None = None) -> IndicatorInputs:
    """Read what the workspace holds; say in ``sources`` what was there. ``state`` names the
    service's feedback store and audit log (default: the settings from the environment)."""
    state = state or ServingSettings(home=workspace.home)
    results, sources = _control_results(workspace, open_feedback_store(state))
    subjects, subject_sources = _subjects(workspace)
    register = _register(workspace)
    scored = _scored(open_audit_log(state))
    sources.update(subject_sources)
    sources["operator register"] = "none" if register is None else f"{len(register):,} operators"
    sources["audit log"] = "none" if scored is None else f"{len(scored):,} scored items"
    return IndicatorInputs(
        results, subjects, register, scored, read_manifest(workspace).revenue_known, sources
    )


# --- indicators ---------------------------------------------------------------------------------


def _in_period(times: pd.Series, start: date | None, end: date | None) -> pd.Series:
    keep = pd.Series(True, index=times.index)
    if start is not None:
        keep &= times >= pd.Timestamp(start, tz="UTC")
    if end is not None:  # the end day is included
        keep &= times < pd.Timestamp(end + timedelta(days=1), tz="UTC")
    return keep


def _rates(group: pd.DataFrame, random_basis: bool) -> dict[str, Any]:
    n = len(group)
    hits = int(group["hit"].sum())
    low, high = wilson_interval(hits, n) if random_basis else (math.nan, math.nan)
    return {
        "controls": n,
        "irregularities": hits,
        "hit rate": hits / n if n else math.nan,
        "95% interval low": low,
        "95% interval high": high,
        "estimate": UNBIASED if random_basis else TARGETED,
    }


def _ordered(values: pd.Series, order: tuple[str, ...]) -> list[str]:
    present = [str(v) for v in values.dropna().unique()]
    return [v for v in order if v in present] + sorted(v for v in present if v not in order)


def _controls_by_type(results: pd.DataFrame) -> Indicator:
    counts = pd.crosstab(results["control_type"], results["selection_reason"])
    reasons = _ordered(results["selection_reason"], SELECTION_ORDER)
    counts = counts.reindex(
        index=_ordered(results["control_type"], CONTROL_ORDER), columns=reasons, fill_value=0
    )
    counts["electronic risk analysis (model + rule)"] = counts.reindex(
        columns=["model", "rule"], fill_value=0
    ).sum(axis=1)
    counts["total"] = counts[reasons].sum(axis=1)
    counts.loc["all types"] = counts.sum()
    frame = counts.reset_index().rename(columns={"control_type": "control type"})
    frame.columns.name = None
    return Indicator(
        "controls_by_type_and_reason",
        "Controls by type and selection reason",
        "T2#5: number of controls of each type carried out based on (electronic) risk analysis.",
        frame,
    )


def _hit_rates(results: pd.DataFrame) -> Indicator:
    rows = []
    for control_type in _ordered(results["control_type"], CONTROL_ORDER):
        of_type = results[results["control_type"] == control_type]
        for reason in _ordered(of_type["selection_reason"], SELECTION_ORDER):
            group = of_type[of_type["selection_reason"] == reason]
            rows.append(
                {
                    "control type": control_type,
                    "selection": reason,
                    **_rates(group, reason == "random"),
                }
            )
    return Indicator(
        "hit_rate_by_type_and_selection",
        "Hit rate per control type and selection",
        "T2#6: proportion of controls of each type that detected an irregularity, for model, "
        "rule and random selection.",
        pd.DataFrame(rows),
    )


def _aeo(results: pd.DataFrame, register: pd.Series | None) -> Indicator:
    rows = []
    for status in ("aeo", "non_aeo", "unknown"):
        group = results[results["aeo_status"] == status]
        if group.empty:
            continue
        rows.append({"AEO status": status, "basis": "all controls", **_rates(group, False)})
        random = group[group["selection_reason"] == "random"]
        if len(random):
            rows.append({"AEO status": status, "basis": "random controls", **_rates(random, True)})
    notes = []
    if register is None:
        notes.append(
            "No operator register in this workspace: every operator's AEO status is unknown."
        )
    return Indicator(
        "irregularities_aeo_vs_non_aeo",
        "Detected irregularities: AEOs versus non-AEOs",
        "T4#20: level of detected irregularities for AEOs versus non-AEOs (importer of a "
        "declaration, consignee of an ENS filing).",
        pd.DataFrame(rows),
        notes,
    )


def _by_area(results: pd.DataFrame, revenue_known: bool) -> Indicator:
    hits = results[results["hit"]]
    total = max(len(hits), 1)
    rows = []
    for area in sorted(hits["risk_area"].dropna().astype(str).unique()):
        in_area = hits[hits["risk_area"] == area]
        row: dict[str, Any] = {
            "risk area": area,
            "irregularities": len(in_area),
            "share of irregularities": len(in_area) / total,
            "found by random controls": int((in_area["selection_reason"] == "random").sum()),
            "seizures": int(in_area["seizure"].fillna(False).astype(bool).sum()),
        }
        if revenue_known:
            row["revenue recovered EUR"] = float(in_area["revenue_recovered_eur"].fillna(0).sum())
        rows.append(row)
    return Indicator(
        "hits_by_risk_area",
        "Hits per risk area",
        "Irregularities detected per type of risk (with the share found by random controls).",
        pd.DataFrame(rows),
        [] if revenue_known else ["Revenue recovered is unknown for this dataset: not reported."],
    )


def _by_transport_mode(results: pd.DataFrame) -> Indicator:
    rows = []
    modes = results["transport_mode"].astype("string")
    for mode in sorted(modes.dropna().unique()):
        group = results[(modes == mode).fillna(False).to_numpy()]
        random = group[group["selection_reason"] == "random"]
        label = TRANSPORT_MODES.get(int(mode), mode) if mode.isdigit() else mode
        low, high = wilson_interval(int(random["hit"].sum()), len(random))
        rows.append(
            {
                "transport mode": f"{mode} {label}",
                "controls": len(group),
                "irregularities": int(group["hit"].sum()),
                "hit rate (all controls)": group["hit"].mean(),
                "random controls": len(random),
                "random irregularities": int(random["hit"].sum()),
                "hit rate (random)": random["hit"].mean() if len(random) else math.nan,
                "95% interval low": low,
                "95% interval high": high,
            }
        )
    unknown = int(results["transport_mode"].isna().sum())
    notes = [f"{unknown:,} controls of subjects not in the data store: no mode."] if unknown else []
    return Indicator(
        "hits_by_transport_mode",
        "Hits per transport mode",
        "Controls and irregularities per type of border (mode of transport).",
        pd.DataFrame(rows),
        notes,
    )


def _risk_analysis(scored: pd.DataFrame) -> Indicator:
    rows = []
    for subject in sorted(scored["subject_type"].dropna().unique()):
        items = scored[scored["subject_type"] == subject]
        for channel in ("green", "yellow", "red", "blue"):
            count = int((items["channel"] == channel).sum())
            rows.append(
                {
                    "subject": subject,
                    "recommendation": f"channel {channel}",
                    "items": count,
                    "share": count / len(items),
                }
            )
        random = int(items["random_selection"].sum())
        rows.append(
            {
                "subject": subject,
                "recommendation": "selected at random",
                "items": random,
                "share": random / len(items),
            }
        )
    return Indicator(
        "risk_analysis",
        "Risk analysis (audit log)",
        "Items scored by the service in the period and the control channel it recommended.",
        pd.DataFrame(rows),
    )


def compute_indicators(
    inputs: IndicatorInputs, start: date | None = None, end: date | None = None
) -> IndicatorReport:
    """Every indicator over the controls made from ``start`` to ``end`` (both days included)."""
    results = inputs.control_results
    results = results[_in_period(results["controlled_at"], start, end)].copy()
    results["hit"] = results["outcome"] == "irregularity"
    subjects = inputs.subjects.drop_duplicates(["subject_type", "subject_id"])
    results = results.merge(subjects, on=["subject_type", "subject_id"], how="left")
    if inputs.register is None:
        results["aeo_status"] = "unknown"
    else:
        aeo = results["operator_id"].map(inputs.register).astype("boolean")
        results["aeo_status"] = np.where(
            aeo.isna(),
            "unknown",
            np.where(aeo.fillna(False).to_numpy(dtype=bool), "aeo", "non_aeo"),
        )
    n_random = int((results["selection_reason"] == "random").sum())
    notes = []
    if results.empty:
        notes.append("No control results in the period.")
    if n_random == 0:
        notes.append(
            "No random controls in the period: every rate below is measured on targeted "
            "controls and is biased (it overstates the rate in the whole flow); no unbiased "
            "estimate is possible."
        )
    elif n_random < _FEW_RANDOM:
        notes.append(f"Only {n_random} random controls in the period: their intervals are wide.")
    indicators = []
    if not results.empty:
        indicators = [
            _controls_by_type(results),
            _hit_rates(results),
            _aeo(results, inputs.register),
            _by_area(results, inputs.revenue_known),
            _by_transport_mode(results),
        ]
    if inputs.scored is None:
        notes.append("No audit log in this workspace: no risk-analysis figures (items scored).")
    else:
        scored = inputs.scored[_in_period(inputs.scored["event_time"], start, end)]
        if len(scored):
            indicators.append(_risk_analysis(scored))
    return IndicatorReport((start, end), len(results), n_random, indicators, notes, inputs.sources)


# --- HTML ---------------------------------------------------------------------------------------


def share_column(column: str) -> bool:
    """Columns holding a rate, a share or an interval bound (shown as percentages)."""
    return any(word in column for word in ("rate", "share", "interval"))


def _cells(frame: pd.DataFrame) -> list[list[Any]]:
    rows = []
    for record in frame.to_dict("records"):
        row = []
        for key, value in record.items():
            if isinstance(value, float) and share_column(key):
                row.append("–" if math.isnan(value) else f"{100 * value:.1f}%")
            else:
                row.append(value)
        rows.append(row)
    return rows


def _error_bars(rate: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    """Distances from the rate to its interval's ends; never negative (at 0% or 100% the
    interval's end equals the rate up to rounding, which matplotlib refuses)."""
    return [np.clip(rate - low, 0.0, None), np.clip(high - rate, 0.0, None)]


def _rate_chart(frame: pd.DataFrame) -> str:
    """Hit rate per control type, one bar per selection, random ones with their interval."""
    fig, axis = new_figure(7.5, 3.6)
    types = list(dict.fromkeys(frame["control type"]))
    reasons = list(dict.fromkeys(frame["selection"]))
    width = 0.8 / max(len(reasons), 1)
    colours = {"model": "#1f5fa8", "rule": "#e0a800", "random": "#2e8540", "other": "#7b8794"}
    for k, reason in enumerate(reasons):
        part = frame[frame["selection"] == reason].set_index("control type").reindex(types)
        x = np.arange(len(types)) + k * width
        rate = part["hit rate"].to_numpy(dtype=float) * 100
        axis.bar(x, rate, width, label=reason, color=colours.get(reason, "#5b6776"))
        if reason == "random":
            low = part["95% interval low"].to_numpy(dtype=float) * 100
            high = part["95% interval high"].to_numpy(dtype=float) * 100
            axis.errorbar(
                x, rate, yerr=_error_bars(rate, low, high), fmt="none", ecolor="#1d2733", capsize=3
            )
    axis.set_xticks(np.arange(len(types)) + width * (len(reasons) - 1) / 2, types)
    axis.set_ylabel("hit rate, %")
    axis.legend(title="selection", fontsize=8)
    return figure(
        fig,
        "hit rate per control type and selection",
        "Hit rate per control type; random selections with their 95% interval (the only "
        "unbiased estimates).",
    )


def _bar_chart(labels: list[str], values: list[float], ylabel: str, alt: str, caption: str) -> str:
    fig, axis = new_figure(7.0, 3.2)
    axis.bar(range(len(values)), values, color="#1f5fa8")
    axis.set_xticks(range(len(values)), labels, rotation=20, ha="right", fontsize=8)
    axis.set_ylabel(ylabel)
    return figure(fig, alt, caption)


def _chart(indicator: Indicator) -> str:
    frame = indicator.table
    if frame.empty:
        return ""
    if indicator.key == "controls_by_type_and_reason":
        part = frame[frame["control type"] != "all types"]
        fig, axis = new_figure(7.0, 3.4)
        bottom = np.zeros(len(part))
        for reason in [c for c in frame.columns if c in SELECTION_ORDER]:
            axis.bar(part["control type"], part[reason], bottom=bottom, label=reason)
            bottom += part[reason].to_numpy(dtype=float)
        axis.set_ylabel("controls")
        axis.legend(title="selection", fontsize=8)
        return figure(
            fig,
            "controls by type and selection reason",
            "Controls by type, stacked by who selected them.",
        )
    if indicator.key == "hit_rate_by_type_and_selection":
        return _rate_chart(frame)
    if indicator.key == "hits_by_risk_area":
        return _bar_chart(
            frame["risk area"].tolist(),
            frame["irregularities"].tolist(),
            "irregularities",
            "irregularities per risk area",
            "Irregularities detected per risk area.",
        )
    if indicator.key == "hits_by_transport_mode":
        return _bar_chart(
            frame["transport mode"].tolist(),
            frame["irregularities"].tolist(),
            "irregularities",
            "irregularities per transport mode",
            "Irregularities detected per transport mode.",
        )
    if indicator.key == "irregularities_aeo_vs_non_aeo":
        labels = [f"{s}\n{b}" for s, b in zip(frame["AEO status"], frame["basis"], strict=True)]
        return _bar_chart(
            labels,
            (frame["hit rate"] * 100).tolist(),
            "hit rate, %",
            "hit rate of AEOs and non-AEOs",
            "Hit rate of controls of AEOs and non-AEOs.",
        )
    return ""


def _period_text(report: IndicatorReport) -> str:
    start, end = report.period
    return f"{start or 'the first control'} to {end or 'the last control'}"


def indicators_html(report: IndicatorReport) -> str:
    """The indicators as one self-contained HTML page with charts."""
    sources = table(("source", "what it holds"), list(report.sources.items()))
    intro = (
        f"<p>{report.n_controls:,} controls from {escape(_period_text(report))}, of which "
        f"{report.n_random:,} selected at random. Rates on random controls are unbiased "
        "estimates of the whole flow, shown with their 95% interval; rates on targeted "
        "controls (model, rule, other) describe those controls only.</p>"
    )
    body = [intro, "".join(note(n) for n in report.notes), section("Sources", sources, "sources")]
    for indicator in report.indicators:
        content = (
            f"<p>{escape(indicator.description)}</p>"
            + "".join(note(n) for n in indicator.notes)
            + _chart(indicator)
            + table(list(indicator.table.columns), _cells(indicator.table))
        )
        body.append(section(indicator.title, content, indicator.key))
    return page("crisk monitoring indicators", "".join(body), subtitle=_period_text(report))
