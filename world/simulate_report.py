"""What `crisk simulate` writes: summary, table, plots, and the MLflow run (spec §7).

Into ``DIR``:

- ``summary.json``: ``{"weeks", "capacity", "explore", "strategies": {NAME: {"controls",
  "hits", "revenue_recovered_eur", "by_week": [{"week", "controls", "hits",
  "revenue_recovered_eur"}, ...]}}}`` — exactly that shape;
- ``table.csv`` and ``table.md``: per strategy the totals, hit rate, recall, revenue against
  random, the rule profiles and the oracle, and the hit rate before and after the planted change;
- ``weeks.csv``: every strategy's week, with the recall's denominator;
- ``hit_rate.png``, ``recall.png``, ``revenue.png``: by week, the planted change marked;
- ``share_of_best.png``: revenue recovered over four weeks as a share of the oracle's;
- ``decisions.csv``: every gate decision of the retrained strategies;
- ``simulation.json``: the settings, the world, the timings.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from world.simulate import SimulationResult

__all__ = ["AFTER_CHANGE_LAG", "share_of_best_plot", "summary", "table", "write_outputs"]

logger = logging.getLogger(__name__)

# Weeks after the planted change before "after" is measured: the time any strategy needs to
# see outcomes, retrain and act (the first retraining after the change, plus reporting).
AFTER_CHANGE_LAG = 8
_STYLE = {
    "random": ("#9e9e9e", ":"),
    "rules": ("#8d6e63", "--"),
    "static": ("#e53935", "-"),
    "retrained": ("#fb8c00", "-"),
    "retrained_explore": ("#1e88e5", "-"),
    "oracle": ("#43a047", "--"),
}


def summary(result: SimulationResult) -> dict[str, Any]:
    """The issue's ``summary.json`` shape, nothing more."""
    frame = result.frame()
    strategies: dict[str, Any] = {}
    for name in result.config.strategies:
        weeks = frame[frame["strategy"] == name].sort_values("week")
        strategies[name] = {
            "controls": int(weeks["controls"].sum()),
            "hits": int(weeks["hits"].sum()),
            "revenue_recovered_eur": round(float(weeks["revenue_recovered_eur"].sum()), 2),
            "by_week": [
                {
                    "week": int(w.week),
                    "controls": int(w.controls),
                    "hits": int(w.hits),
                    "revenue_recovered_eur": round(float(w.revenue_recovered_eur), 2),
                }
                for w in weeks.itertuples()
            ],
        }
    config = result.config
    return {
        "weeks": config.weeks,
        "capacity": config.capacity,
        "explore": config.explore,
        "strategies": strategies,
    }


def _ratio(value: float, reference: float) -> float:
    return float(value / reference) if reference else float("nan")


def _rate(frame: pd.DataFrame, strategy: str, weeks: pd.Series) -> float:
    part = frame[(frame["strategy"] == strategy) & frame["week"].isin(weeks)]
    return float(part["hits"].sum() / max(1, part["controls"].sum())) if len(part) else np.nan


def table(result: SimulationResult) -> pd.DataFrame:
    """One row per strategy: totals, rates and ratios; hit rates around the planted change."""
    frame = result.frame()
    totals = frame.groupby("strategy", sort=False)[
        ["controls", "hits", "revenue_recovered_eur", "random_controls", "scheme_controls",
         "scheme_hits"]
    ].sum()  # fmt: skip
    week_truth = frame.drop_duplicates("week")[["irregular_items", "recoverable_eur"]].sum()
    revenue = totals["revenue_recovered_eur"]
    rows = []
    change = result.config.shift_week
    for name in result.config.strategies:
        weeks = frame[frame["strategy"] == name]
        row: dict[str, Any] = {
            "strategy": name,
            "controls": int(totals.loc[name, "controls"]),
            "random_controls": int(totals.loc[name, "random_controls"]),
            "hits": int(totals.loc[name, "hits"]),
            "hit_rate": totals.loc[name, "hits"] / max(1, totals.loc[name, "controls"]),
            "recall": totals.loc[name, "hits"] / max(1, week_truth["irregular_items"]),
            "revenue_recovered_eur": round(float(revenue.loc[name]), 2),
            "revenue_vs_random": _ratio(revenue.loc[name], revenue.get("random", np.nan)),
            "revenue_vs_rules": _ratio(revenue.loc[name], revenue.get("rules", np.nan)),
            "revenue_share_of_oracle": _ratio(revenue.loc[name], revenue.get("oracle", np.nan)),
            # Ground truth, for the report only: how much of the planted scheme it found.
            "scheme_controls": int(totals.loc[name, "scheme_controls"]),
            "scheme_hits": int(totals.loc[name, "scheme_hits"]),
        }
        if change is not None:
            before = weeks[weeks["week"] < change]
            after = weeks[weeks["week"] >= change + AFTER_CHANGE_LAG]
            row["hit_rate_before_change"] = before["hits"].sum() / max(1, before["controls"].sum())
            row["hit_rate_after_change"] = after["hits"].sum() / max(1, after["controls"].sum())
            row["hit_rate_after_change_share_of_oracle"] = _ratio(
                row["hit_rate_after_change"], _rate(frame, "oracle", after["week"])
            )
            row["hit_rate_before_change_share_of_oracle"] = _ratio(
                row["hit_rate_before_change"], _rate(frame, "oracle", before["week"])
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame, result: SimulationResult) -> str:
    config = result.config
    change = config.shift_week
    header = [
        f"# crisk simulate: {config.weeks} weeks, capacity {config.capacity:.0%}, "
        f"exploration {config.explore:.0%} of it",
        "",
        f"World: {config.world.declarations:,} declaration items over {config.world.weeks} weeks "
        f"(seed {config.world.seed}); the last {config.weeks} replayed, retraining every "
        f"{config.retrain_every} weeks. "
        + (
            f"Planted change (world/drift.py): from replayed week {change}. Hit rate after "
            f"the change counts from week {change + AFTER_CHANGE_LAG}."
            if change is not None
            else "No planted change inside the replayed weeks."
        ),
        "",
    ]
    columns = [c for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = []
        for column, value in zip(columns, row, strict=True):
            if isinstance(value, float):
                digits = 0 if column == "revenue_recovered_eur" else 3
                cells.append(f"{value:,.{digits}f}")
            elif isinstance(value, int | np.integer):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*header, *lines, ""])


def _plot(frame: pd.DataFrame, result: SimulationResult, out_dir: Path) -> list[Path]:
    frame = frame.assign(
        hit_rate=frame["hits"] / frame["controls"].clip(lower=1),
        recall=frame["hits"] / frame["irregular_items"].clip(lower=1),
    )
    strategies, shift = list(result.config.strategies), result.config.shift_week
    written = [
        _line_plot(frame, column, title, out_dir / path, strategies, shift)
        for column, title, path in (
            ("hit_rate", "Hit rate (share of controls that found an irregularity)", "hit_rate.png"),
            ("recall", "Recall (share of the week's irregular items found)", "recall.png"),
            ("revenue_recovered_eur", "Revenue recovered (EUR per week)", "revenue.png"),
        )
    ]
    if "oracle" in strategies:
        written.append(share_of_best_plot(frame, strategies, shift, out_dir / "share_of_best.png"))
    return written


def share_of_best_plot(
    frame: pd.DataFrame, strategies: list[str], shift_week: int | None, path: Path
) -> Path:
    """Each strategy's revenue recovered over four weeks as a share of the oracle's in the same
    weeks: the normalisation customs-selection studies use (the best any selection of the same
    size could recover), which a drifting world's changing totals do not move."""
    columns = ["week", "strategy", "revenue_recovered_eur"]
    by_week = frame[columns].pivot(index="week", columns="strategy", values=columns[-1])
    window = by_week.sort_index().rolling(4, min_periods=1).sum()
    share = window.div(window["oracle"].where(window["oracle"] > 0), axis=0)
    long = share.reset_index().melt(id_vars="week", value_name="share_of_best")
    title = "Revenue recovered as a share of the oracle's (the best possible)"
    return _line_plot(long, "share_of_best", title, path, strategies, shift_week, window=1)


def _line_plot(
    frame: pd.DataFrame,
    column: str,
    title: str,
    path: Path,
    strategies: list[str],
    shift_week: int | None,
    window: int = 2,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.8))
    for name in strategies:
        weeks = frame[frame["strategy"] == name].sort_values("week")
        values = weeks[column].rolling(window, min_periods=1).mean()
        colour, style = _STYLE.get(name, ("black", "-"))
        axis.plot(weeks["week"], values, style, color=colour, label=name, linewidth=1.8)
    if shift_week is not None:
        axis.axvline(shift_week, color="black", alpha=0.4, linewidth=1)
        axis.annotate(
            "planted change", (shift_week, axis.get_ylim()[1]),
            xytext=(4, -14), textcoords="offset points", fontsize=8,
        )  # fmt: skip
    smoothing = "four-week window" if column == "share_of_best" else f"{window}-week average"
    axis.set_title(f"{title}, {smoothing}")
    axis.set_xlabel("replayed week")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, ncol=3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_outputs(result: SimulationResult, out_dir: Path) -> dict[str, Path]:
    """Write every output file; returns them by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    files["summary"] = out_dir / "summary.json"
    files["summary"].write_text(json.dumps(summary(result), indent=1))
    frame = table(result)
    files["table_csv"] = out_dir / "table.csv"
    frame.to_csv(files["table_csv"], index=False)
    files["table_md"] = out_dir / "table.md"
    files["table_md"].write_text(_markdown(frame, result))
    weeks = result.frame()
    files["weeks"] = out_dir / "weeks.csv"
    weeks.to_csv(files["weeks"], index=False)
    files["decisions"] = out_dir / "decisions.csv"
    pd.DataFrame(result.decisions).to_csv(files["decisions"], index=False)
    for path in _plot(weeks, result, out_dir):
        files[path.stem] = path
    config = asdict(result.config)
    config["world"]["start"] = str(config["world"]["start"])
    files["simulation"] = out_dir / "simulation.json"
    files["simulation"].write_text(
        json.dumps(
            {
                "config": config,
                "shift_week": result.config.shift_week,
                "seconds": round(result.seconds, 1),
                "seconds_by_part": result.seconds_by_part,
            },
            indent=1,
            default=str,
        )
    )
    return files


def log_to_mlflow(result: SimulationResult, files: dict[str, Path], settings: Any) -> str:
    """One MLflow run in the workspace's experiment: settings, totals, weeks, every file.

    ``settings`` are the workspace's TrainingSettings (its MLflow store). The strategies' own
    training runs and gate decisions are in their workspaces' stores (``DIR/workspaces``).
    """
    import mlflow

    from training.registry import configure_mlflow

    configure_mlflow(settings)
    config = result.config
    with mlflow.start_run(run_name="crisk simulate") as run:
        mlflow.set_tags({"kind": "simulation", "world_seed": str(config.world.seed)})
        mlflow.log_params(
            {
                "weeks": config.weeks, "capacity": config.capacity, "explore": config.explore,
                "retrain_every": config.retrain_every, "declarations": config.world.declarations,
                "world_weeks": config.world.weeks, "shift_week": config.shift_week,
                "strategies": ",".join(config.strategies),
            }
        )  # fmt: skip
        for row in table(result).to_dict("records"):
            name = row.pop("strategy")
            mlflow.log_metrics(
                {f"{name}_{k}": float(v) for k, v in row.items() if np.isfinite(float(v))}
            )
        for week in result.weeks:
            mlflow.log_metrics(
                {
                    f"{week.strategy}_week_hits": week.hits,
                    f"{week.strategy}_week_revenue_eur": week.revenue_recovered_eur,
                },
                step=week.week,
            )
        mlflow.log_metric("seconds", result.seconds)
        for path in files.values():
            mlflow.log_artifact(str(path))
        return str(run.info.run_id)
