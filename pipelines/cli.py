"""The ``crisk`` command line: thin Typer commands over ``pipelines.steps`` (spec §4).

Every command names the file, row and field in its errors and exits with a code, never a bare
traceback (``--debug`` shows one). Heavy libraries are imported inside the commands so that
``crisk --help`` answers at once.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import secrets
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from typer.exceptions import TyperException

__all__ = ["app"]

app = typer.Typer(
    name="crisk",
    help="Customs risk targeting: synthetic world, contracts, features, models, serving, audit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
world_app = typer.Typer(
    help="The built-in synthetic customs world (spec §7).", no_args_is_help=True
)
features_app = typer.Typer(help="The Feast feature store.", no_args_is_help=True)
feedback_app = typer.Typer(help="Control results that close the loop.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log of every score.", no_args_is_help=True)
app.add_typer(world_app, name="world")
app.add_typer(features_app, name="features")
app.add_typer(feedback_app, name="feedback")
app.add_typer(audit_app, name="audit")

console = Console(stderr=True)
# Tables keep their columns when the output is a file or a pipe (rich would assume 80 columns).
out = Console(width=None if sys.stdout.isatty() else 160)
_DEBUG = {"on": False}

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    _DEBUG["on"] = debug
    from data_contracts.workspace import TELEMETRY_OFF

    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    _configure_logging(debug)


# Loggers whose warnings the user sees; other libraries' warnings go to the debug log.
_OWN_LOGGERS = {"data_contracts", "features", "training", "serving", "world", "pipelines", "crisk"}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (a test runner swaps it between commands)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _OwnWarningsOnly(logging.Filter):
    """Third-party records below ERROR stay out of the user's output (seen with --debug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or record.name.split(".")[0] in _OWN_LOGGERS


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Python warnings (deprecations in GX, MLflow, Feast...) into the debug log, not stderr."""
    logging.getLogger("crisk.warnings").debug(
        "%s: %s (%s:%s)", category.__name__, message, filename, lineno
    )


def _configure_logging(debug: bool) -> None:
    import warnings

    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for existing in list(handler.filters):
        handler.removeFilter(existing)
    if not debug:
        handler.addFilter(_OwnWarningsOnly())
    root.setLevel(logging.DEBUG if debug else logging.WARNING)
    warnings.showwarning = _log_warning


def _settings() -> Any:
    from pipelines.config import PipelineSettings

    settings = PipelineSettings()
    settings.workspace.check_layout()  # a workspace of another crisk version is never touched
    for name, value in settings.training.deployment.environment(settings.workspace).items():
        os.environ.setdefault(name, value)
    return settings


def handled(function: F) -> F:
    """Turn expected failures into a one-line error and an exit code."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pydantic import ValidationError
        from rich.markup import escape

        from data_contracts.io import UnusableInput
        from data_contracts.mapping import MappingError

        try:
            return function(*args, **kwargs)
        except (typer.Exit, TyperException):
            raise  # usage errors (bad KIND, bad option values): click prints them, exit 2
        except MappingError as error:
            for problem in error.problems:  # one line each: file:line: key: what, first rows
                console.print(
                    f"[red]mapping error:[/red] {escape(problem.describe(error.mapping_file))}",
                    soft_wrap=True,
                )
            console.print("nothing was written to the workspace")
            raise typer.Exit(2) from None
        # soft_wrap: a long path is one word, which the console would otherwise cut with an
        # ellipsis; escape: a path or value with [brackets] is not console markup.
        except UnusableInput as error:
            console.print(f"[red]unusable input:[/red] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except ValidationError as error:
            for detail in error.errors():  # one line each: the setting, and what is wrong
                where = ".".join(str(part) for part in detail["loc"])
                message = str(detail["msg"]).removeprefix("Value error, ")
                console.print(
                    f"[red]invalid settings:[/red] {escape(where + ': ' if where else '')}"
                    f"{escape(message)}",
                    soft_wrap=True,
                )
            raise typer.Exit(2) from None
        except (FileNotFoundError, LookupError, ValueError) as error:
            if _DEBUG["on"]:
                raise
            console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception as error:
            if _DEBUG["on"]:
                raise
            console.print(
                f"[red]failed:[/red] {type(error).__name__}: {escape(str(error))} "
                "(run with --debug for details)",
                soft_wrap=True,
            )
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def _progress() -> Any:
    """Progress bars (counts, ETA) for a long step, on stderr; plain lines when not a terminal."""
    from pipelines.progress import TerminalProgress

    return TerminalProgress(console)


def _notes(settings: Any) -> None:
    """One line per record kind the workspace lacks (what the step does without it)."""
    from pipelines.steps import workspace_notes

    for note in workspace_notes(settings):
        console.print(f"[yellow]note:[/yellow] {note}", soft_wrap=True)


# --- world -------------------------------------------------------------------------------------


@world_app.command("generate")
@handled
def world_generate(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the world into.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same world.")] = 7,
    declarations: Annotated[
        int, typer.Option(min=1000, help="Declaration items to generate.")
    ] = 100_000,
    ens: Annotated[
        int | None, typer.Option(min=100, help="ENS filings (default: half the items).")
    ] = None,
    weeks: Annotated[int, typer.Option(min=4, help="Weeks of activity.")] = 52,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2026-01-05",
) -> None:
    """Generate a reproducible synthetic customs world (feeds + ground truth kept apart)."""
    import time

    from pipelines.steps import make_world

    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter(f"--start {start!r}: expected YYYY-MM-DD") from None
    began = time.perf_counter()
    with _progress() as progress:
        files = make_world(
            out_dir,
            seed=seed,
            declarations=declarations,
            ens=ens,
            weeks=weeks,
            start=first_day,
            progress=progress,
        )
    manifest = json.loads(files.manifest.read_text())
    out.print(f"world written to {files.directory} in {time.perf_counter() - began:.1f} s")
    for name, count in manifest["counts"].items():
        out.print(f"  {name}: {count:,}")


def _share(text: str, option: str) -> float:
    """``5%``, ``5`` or ``0.05`` as the share 0.05."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise typer.BadParameter(
            f"{option} {text!r}: expected a share such as 5% or 0.05"
        ) from None
    share = value / 100 if text.strip().endswith("%") or value >= 1 else value
    if not 0 <= share < 1:
        raise typer.BadParameter(f"{option} {text!r}: must be below 100%")
    return share


@app.command("simulate")
@handled
def simulate(
    weeks: Annotated[int, typer.Option(min=1, help="Weeks replayed (the world's last).")] = 26,
    capacity: Annotated[
        str, typer.Option(help="Share of each week's items controlled, e.g. 5%.")
    ] = "5%",
    explore: Annotated[
        str, typer.Option(help="Share of the capacity drawn at random by retrained_explore.")
    ] = "10%",
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default CRISK_HOME/runs/simulation)."),
    ] = None,
    retrain_every: Annotated[
        int, typer.Option(min=1, help="Weeks between retrainings of the retrained strategies.")
    ] = 4,
    declarations: Annotated[
        int, typer.Option(min=10_000, help="Declaration items of the world (the default world).")
    ] = 100_000,
    world_weeks: Annotated[int, typer.Option(min=24, help="Weeks of the world.")] = 52,
    seed: Annotated[int, typer.Option(help="Seed of the world, selections and outcomes.")] = 7,
    shift_week: Annotated[
        int, typer.Option(help="World week the planted fraud scheme starts (-1: none).")
    ] = 34,
    strategies: Annotated[
        str, typer.Option(help="Comma-separated: random,rules,static,retrained,...")
    ] = "random,rules,static,retrained,retrained_explore,oracle",
    processes: Annotated[int, typer.Option(min=1, help="Strategies replayed at once.")] = 3,
) -> None:
    """Replay the synthetic world week by week and compare control strategies (spec §7)."""
    import time

    from world.drift import FraudShift
    from world.generate import WorldConfig
    from world.simulate import SimulationConfig
    from world.simulate import simulate as run_simulation
    from world.simulate_report import log_to_mlflow, write_outputs

    settings = _settings()
    config = SimulationConfig(
        weeks=weeks,
        capacity=_share(capacity, "--capacity"),
        explore=_share(explore, "--explore"),
        retrain_every=retrain_every,
        world=WorldConfig(
            seed=seed, declarations=declarations, weeks=world_weeks,
            shift=FraudShift(start_week=None if shift_week < 0 else shift_week),
        ),
        seed=seed,
        strategies=tuple(s.strip() for s in strategies.split(",") if s.strip()),
        processes=processes,
        min_positive_labels=settings.bootstrap_min_positive_labels,
    )  # fmt: skip
    target = out_dir or settings.workspace.runs_dir / "simulation"
    began = time.perf_counter()
    with _progress() as progress:
        result = run_simulation(config, target, progress)
    files = write_outputs(result, target)
    run_id = log_to_mlflow(result, files, settings.training)
    table = Table("strategy", "controls", "hits", "hit rate", "revenue EUR", "× random", "× rules")
    for row in _read_table(files["table_csv"]):
        table.add_row(
            row["strategy"], f"{int(row['controls']):,}", f"{int(row['hits']):,}",
            f"{float(row['hit_rate']):.3f}", f"{float(row['revenue_recovered_eur']):,.0f}",
            f"{float(row['revenue_vs_random']):.2f}", f"{float(row['revenue_vs_rules']):.2f}",
        )  # fmt: skip
    out.print(table)
    out.print(
        f"{weeks} weeks in {time.perf_counter() - began:.0f} s; outputs in {target} "
        f"(summary.json, table.md, *.png); MLflow run {run_id}"
    )


@app.command("monitor")
@handled
def monitor(
    days: Annotated[
        int, typer.Option(min=1, help="Recent traffic: items scored in these days.")
    ] = 7,
    weeks: Annotated[int, typer.Option(min=1, help="Weeks of control results for hit rates.")] = 8,
    feature_psi: Annotated[
        float, typer.Option(help="PSI above which a feature is flagged.")
    ] = 0.25,
    score_psi: Annotated[
        float, typer.Option(help="PSI above which the scores are flagged.")
    ] = 0.25,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Directory for drift.json (default CRISK_HOME/runs/monitor)."),
    ] = None,
) -> None:
    """Drift: feature and score stability against the champions' training data (from the audit
    log), hit rate by week on random controls; flags what passes the thresholds, logs to MLflow."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from data_contracts.record_store import has_records, read_stored_records
    from serving.bundle import load_bundle, reference_sample
    from serving.monitor import DriftThresholds, drift_report
    from serving.state import open_audit_log, open_feedback_store

    settings = _settings()
    workspace = settings.workspace
    bundle = load_bundle(settings.serving)
    references = {
        s: frame
        for s in bundle.subjects()
        if (frame := reference_sample(settings.serving, bundle, s)) is not None
    }
    since = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    audit = open_audit_log(settings.serving)
    entries = audit.entries_since(since) if audit is not None else []
    frames = (
        [read_stored_records(workspace, "control-results")]
        if has_records(workspace, "control-results")
        else []
    )
    feedback = open_feedback_store(settings.serving)
    if feedback is not None:
        frames.append(feedback.frame())
    results = (
        pd.concat(frames, ignore_index=True).drop_duplicates("control_id")
        if frames
        else pd.DataFrame()
    )
    report = drift_report(
        bundle, references, entries, results,
        capacity=settings.serving.control_capacity, random_rate=settings.serving.random_rate,
        days=days, weeks=weeks,
        thresholds=DriftThresholds(feature_psi=feature_psi, score_psi=score_psi),
    )  # fmt: skip
    target = out_dir or workspace.runs_dir / "monitor"
    target.mkdir(parents=True, exist_ok=True)
    (target / "drift.json").write_text(json.dumps(report.as_dict(), indent=1, default=str))
    _log_monitor(settings, report, target / "drift.json")
    _print_monitor(report)


def _print_monitor(report: Any) -> None:
    for subject, count in report.items.items():
        out.print(f"{subject}: {count:,} items scored in the window; bundle {report.bundle}")
    for subject, scores in report.scores.items():
        top = sorted(report.features.get(subject, {}).items(), key=lambda kv: -kv[1])[:5]
        out.print(
            f"{subject}: score PSI {scores['psi']:.3f}, {scores['share_selected']:.1%} selected "
            f"(capacity {scores['capacity']:.1%}); most shifted features: "
            + ", ".join(f"{name} {value:.3f}" for name, value in top)
        )
    rates = report.hit_rates
    if not rates.empty:
        table = Table("week", "set", "controls", "hits", "hit rate", "95% interval")
        for row in rates.itertuples():
            table.add_row(
                str(row.week.date()), row.set, f"{row.controls:,}", f"{row.hits:,}",
                f"{row.hit_rate:.3f}", f"[{row.low:.3f}, {row.high:.3f}]",
            )  # fmt: skip
        out.print(table)
    for flag in report.flags:
        out.print(f"[yellow]flag:[/yellow] {flag}")
    for warning in report.warnings:
        out.print(f"[red]warning:[/red] {warning}")
    if not report.flags:
        out.print("no drift above the thresholds")


def _log_monitor(settings: Any, report: Any, path: Path) -> None:
    import mlflow

    from training.registry import configure_mlflow

    configure_mlflow(settings.training)
    with mlflow.start_run(run_name="crisk monitor"):
        mlflow.set_tags(
            {"kind": "monitor", "bundle": report.bundle, "flags": len(report.flags),
             "warnings": " | ".join(report.warnings)[:4000]}
        )  # fmt: skip
        metrics = {
            f"psi_{subject}_{name}": value
            for subject, values in report.features.items()
            for name, value in values.items()
        }
        for subject, scores in report.scores.items():
            metrics.update({f"score_{subject}_{k}": float(v) for k, v in scores.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if math.isfinite(float(v))})
        random_rows = report.hit_rates[report.hit_rates["set"] == "random_controls"]
        for step, row in enumerate(random_rows.itertuples()):
            mlflow.log_metric("random_control_hit_rate", float(row.hit_rate), step=step)
        mlflow.log_artifact(str(path))


def _read_table(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as handle:
        return list(csv.DictReader(handle))


# --- contracts ---------------------------------------------------------------------------------


@app.command("validate")
@handled
def validate(
    kind: Annotated[str, typer.Argument(help="declarations | ens | control-results")],
    file: Annotated[Path, typer.Argument(help="CSV (UTF-8, header row) or Parquet file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for valid/quarantine/report.")],
    identifiers: Annotated[
        str | None,
        typer.Option(help="Party ids: eori | opaque (default: the workspace's dataset manifest)."),
    ] = None,
) -> None:
    """Validate a file against its contract. Exit 0 all valid, 1 some quarantined, 2 unusable."""
    from data_contracts.dataset import read_manifest
    from data_contracts.definitions import IDENTIFIER_FORMATS, KINDS
    from pipelines.steps import validate_file

    if kind not in KINDS:
        raise typer.BadParameter(f"KIND {kind!r}: expected one of {', '.join(KINDS)}")
    if identifiers is not None and identifiers not in IDENTIFIER_FORMATS:
        raise typer.BadParameter(
            f"--identifiers {identifiers!r}: expected one of {', '.join(IDENTIFIER_FORMATS)}"
        )
    if identifiers is None:
        identifiers = read_manifest(_settings().workspace).identifier_format
    with _progress() as progress:
        result = validate_file(kind, file, out_dir, progress, identifiers)
    summary = result.result
    out.print(
        f"{summary.n_input:,} rows: {summary.n_valid:,} valid, "
        f"{summary.n_quarantined:,} quarantined"
    )
    counts = summary.rule_counts()
    if counts:
        table = Table("field:rule", "rows", title="quarantine reasons")
        for rule, count in list(counts.items())[:20]:
            table.add_row(rule, f"{count:,}")
        out.print(table)
    out.print(
        f"valid: {result.valid_path}\nquarantine: {result.quarantine_path}\n"
        f"report: {result.report_path}"
    )
    raise typer.Exit(result.exit_code)


@app.command("ingest")
@handled
def ingest(
    kind: Annotated[str, typer.Argument(help="declarations | ens | control-results")],
    file: Annotated[Path, typer.Argument(help="CSV or Parquet file.")],
) -> None:
    """Validate a file and merge its valid rows into the workspace's data store."""
    from data_contracts.definitions import KINDS
    from pipelines.ingest import ingest_file

    if kind not in KINDS:
        raise typer.BadParameter(f"KIND {kind!r}: expected one of {', '.join(KINDS)}")
    settings = _settings()
    with _progress() as progress:
        result = ingest_file(
            settings.workspace,
            kind,
            file,
            progress,
            reporting_delays=settings.reporting_delay_days,
            layout=settings.records_layout,
        )
    out.print(
        f"{result.n_input:,} rows: {result.n_valid:,} valid, {result.n_quarantined:,} quarantined, "
        f"{result.n_replaced:,} stored records replaced by newer versions, "
        f"{result.n_unchanged:,} already stored unchanged"
    )
    raise typer.Exit(result.exit_code)


@app.command("import")
@handled
def import_(
    mapping: Annotated[Path, typer.Option("--mapping", help="The mapping file (YAML, spec §6).")],
    file: Annotated[Path, typer.Argument(help="The file to import (CSV or Parquet).")],
) -> None:
    """Import a foreign declaration file (and its past inspection results) by a mapping.

    Exit 0 every row stored, 1 some rows quarantined, 2 a mapping error or an unreadable file
    (then nothing is written).
    """
    from rich.markup import escape

    from pipelines.importer import import_file

    settings = _settings()
    with _progress() as progress:
        result = import_file(
            settings.workspace,
            mapping,
            file,
            progress,
            settings.reporting_delay_days,
            layout=settings.records_layout,
        )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    table = Table("records", "rows", "valid", "quarantined", "replaced", "unchanged")
    for name, part in (
        ("declaration items", result.declarations),
        ("control results", result.control_results),
    ):
        if part is not None:
            table.add_row(
                name, f"{part.n_input:,}", f"{part.n_valid:,}", f"{part.n_quarantined:,}",
                f"{part.n_replaced:,}", f"{part.n_unchanged:,}",
            )  # fmt: skip
    out.print(f"{result.dataset}: {result.n_rows:,} rows read from {file}")
    out.print(table)
    for part in (result.declarations, result.control_results):
        if part is None or not part.n_quarantined:
            continue
        for rule, count in list(part.rule_counts.items())[:10]:
            out.print(f"  quarantined {part.kind}: {rule} ({count:,} rows)")
        quarantine = settings.workspace.quarantine_dir / part.data_path.name
        out.print(f"  reasons and row numbers of the file: {quarantine}")
    out.print(
        f"dataset manifest: {result.manifest_path}\n"
        "next: crisk features materialize && crisk train && crisk evaluate --out DIR"
    )
    raise typer.Exit(result.exit_code)


# --- features ----------------------------------------------------------------------------------


@features_app.command("apply")
@handled
def features_apply() -> None:
    """Register entities, views and feature services in the Feast registry."""
    from pipelines.steps import apply_features

    settings = _settings()
    _notes(settings)
    registration = apply_features(settings)
    out.print(f"applied {len(registration.objects)} Feast objects")


@features_app.command("materialize")
@handled
def features_materialize() -> None:
    """Recompute the point-in-time feature tables and load the online store."""
    from pipelines.steps import materialize_features

    settings = _settings()
    _notes(settings)
    with _progress() as progress:
        result = materialize_features(settings, progress)
    out.print(
        f"{len(result.tables)} feature tables as of {result.cutoff.isoformat()}; "
        f"{len(result.views)} views materialised"
    )


# --- models ------------------------------------------------------------------------------------


@app.command("train")
@handled
def train() -> None:
    """Train one calibrated LightGBM per risk area with enough labels; register as challenger."""
    from data_contracts.dataset import read_manifest
    from pipelines.steps import areas_without_model, train_models

    settings = _settings()
    _notes(settings)
    with _progress() as progress:
        models = train_models(settings, progress)
    if not models:
        out.print(
            f"no area has {settings.training.min_positive_labels} training hits "
            "(CRISK_TRAIN_MIN_POSITIVE_LABELS): nothing trained; the rule profiles stay in charge"
        )
        for area, reason in areas_without_model(settings).items():
            out.print(f"  {area}: {reason}")
        return
    manifest = read_manifest(settings.workspace)
    table = Table("model", "version", "task", "test P@5% (controlled)", "test ROC-AUC")
    for m in models:
        controlled = m.metrics.get("controlled", {})
        table.add_row(
            m.name,
            m.version,
            m.task,
            f"{controlled.get('precision_at', {}).get('5', float('nan')):.3f}",
            f"{controlled.get('roc_auc', float('nan')):.3f}",
        )
    out.print(table)
    if manifest.split is not None:
        split = manifest.split
        out.print(
            f"windows: the published split of {manifest.dataset!r}: train ≤ {split.train_until}, "
            f"validation ≤ {split.validation_until}, test ≤ {split.test_until}"
        )
    if not manifest.revenue_known:
        out.print(f"no revenue model: the revenue recovered is unknown in {manifest.dataset!r}")


@app.command("evaluate")
@handled
def evaluate(
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory for metrics.json and report.html.")
    ],
    alias: Annotated[
        str, typer.Option(help="Which models: challenger or champion.")
    ] = "challenger",
) -> None:
    """Spec §5 metrics on labelled and random controls beside five baselines (oracle: reported)."""
    from training.evaluate import evaluate as run_evaluate

    settings = _settings()
    _notes(settings)
    with _progress() as progress:
        report = run_evaluate(settings.training, alias=alias, out_dir=out_dir, progress=progress)
    _print_evaluation(report)
    out.print(f"metrics: {out_dir / 'metrics.json'}\nreport: {out_dir / 'report.html'}")


def _p5(metrics: dict[str, Any]) -> str:
    value = (metrics.get("precision_at") or {}).get("5")
    return "–" if value is None or value != value else f"{value:.3f}"


def _print_evaluation(report: dict[str, Any]) -> None:
    """Every model beside every baseline on its primary set, then the oracle comparison."""
    from training.evaluate import BASELINE_NAMES

    headers = ("random", "rules", "logistic", "label-enc. LGBM", "raw-col. LGBM")
    table = Table(
        "area",
        "set",
        "n",
        "hits",
        "P@5%",
        "95% interval",
        *headers,
        title="Precision@5% on the primary set of each area (baselines: same items)",
    )
    oracle = Table(
        "area",
        "items",
        "P@5% on the ground truth",
        "oracle P@5%",
        "share of oracle",
        title="synthetic world only: every item of the window, by its ground truth",
    )
    for key, metrics in report["areas"].items():
        if "@" in key:
            continue
        interval = (metrics.get("precision_at_interval") or {}).get("5")
        table.add_row(
            key, metrics["dataset"], f"{metrics['n_items']:,}", f"{metrics['n_irregular']:,}",
            _p5(metrics), "–" if not interval else f"{interval[0]:.3f} – {interval[1]:.3f}",
            *(_p5(metrics["baselines"].get(name, {})) for name in BASELINE_NAMES),
        )  # fmt: skip
        truth = report["areas"].get(f"{key}@synthetic_ground_truth")
        if truth is not None:
            share = truth.get("precision_at_share_of_oracle", {}).get("5")
            oracle.add_row(
                key, f"{truth['n_items']:,}", _p5(truth), _p5(truth["oracle"]),
                "–" if share is None else f"{share:.3f}",
            )  # fmt: skip
    out.print(table)
    if oracle.row_count:
        out.print(oracle)
    for key, reason in report.get("primary_reasons", {}).items():
        out.print(f"{key}: {reason}", soft_wrap=True)
    for subject, split in report.get("splits", {}).items():
        out.print(f"{subject} windows: {split['windows']}", soft_wrap=True)
    for note in report.get("notes", []):
        out.print(f"note: {note}", soft_wrap=True)


@app.command("promote")
@handled
def promote(
    model: Annotated[
        list[str] | None, typer.Option(help="Registered model(s); default all.")
    ] = None,
) -> None:
    """Make each challenger the champion if it is not worse on the same evaluation window."""
    from training.promote import promote as run_promote

    decisions = run_promote(_settings().training, model)
    table = Table("model", "challenger", "champion before", "champion after", "decision")
    for d in decisions:
        table.add_row(
            d.name, str(d.challenger), str(d.champion_before), str(d.champion_after), d.reason
        )
    out.print(table)


@app.command("retrain")
@handled
def retrain(
    feedback: Annotated[
        Path | None, typer.Option(help="A control-results file to add first.")
    ] = None,
) -> None:
    """Feedback → features → train → evaluate → gate → promote."""
    from pipelines.retrain import retrain as run_retrain

    settings = _settings()
    _notes(settings)
    with _progress() as progress:
        result = run_retrain(settings, feedback, progress)
    if result.feedback is not None:
        out.print(
            f"control results: {result.feedback.n_valid:,} valid, "
            f"{result.feedback.n_quarantined:,} quarantined, "
            f"{result.feedback.n_unchanged:,} already stored unchanged"
        )
    out.print(f"models trained: {len(result.models)}")
    for d in result.decisions:
        out.print(f"{d.name}: {d.reason}")


@app.command("bootstrap")
@handled
def bootstrap(
    force: Annotated[bool, typer.Option(help="Bootstrap even if a champion exists.")] = False,
) -> None:
    """Synthetic world → contracts → features → models, unless a champion is already trained."""
    from pipelines.steps import bootstrap as run_bootstrap
    from pipelines.steps import has_champion

    settings = _settings()
    if not force and has_champion(settings):
        out.print(
            f"a champion is already registered in {settings.workspace.home}: nothing to bootstrap"
        )
        return
    with _progress() as progress:
        result = run_bootstrap(settings, progress)
    out.print(f"bootstrapped {settings.workspace.home}: {len(result.models)} models registered")


# --- serving -----------------------------------------------------------------------------------


def _ensure_api_keys(settings: Any) -> tuple[dict[str, str], bool]:
    """The configured keys, or (the local demo) a key file generated in the workspace.

    Returns the keys and whether they are the demo's own (only those are ever printed).
    """
    from data_contracts.workspace import create_private_file
    from serving.auth import ROLES, parse_api_keys

    serving = settings.serving
    if serving.api_keys or serving.api_keys_file:
        return parse_api_keys(serving.api_keys, serving.api_keys_file), False
    path = settings.workspace.serving_dir / "api_keys"
    if not path.exists():
        keys = "".join(f"{role}:{role}-{secrets.token_urlsafe(16)}\n" for role in ROLES)
        create_private_file(path, keys.encode())
    os.environ["CRISK_API_KEYS_FILE"] = str(path)
    return parse_api_keys(None, path), True


def _check_servable(workspace: Any, deployment: Any) -> None:
    """One line instead of a server that restarts a failing worker forever."""
    registry = workspace.mlflow_dir / "mlflow.db"
    bundles = workspace.bentoml_home / "models" / "crisk-bundle"
    bundled = bundles.is_dir() and any(bundles.iterdir())
    if not deployment.registry_exists(workspace) and not bundled:
        raise FileNotFoundError(
            f"{workspace.home}: nothing to serve (no model registry at {registry}, no bundled "
            "champion); run `crisk bootstrap` (or `make run`) first, or set CRISK_HOME"
        )


def _curl_example(settings: Any, scorer_key: str) -> str:
    from data_contracts.definitions import contract_for
    from data_contracts.record_store import has_records, read_stored_records

    fields = contract_for("declarations").field_names
    if has_records(settings.workspace, "declarations"):
        stored = read_stored_records(settings.workspace, "declarations")
        item = json.loads(stored.tail(1)[fields].to_json(orient="records", date_format="iso"))[0]
        item = {k: v for k, v in item.items() if v is not None}
        if isinstance(item.get("extra"), str):  # stored as JSON text; a request sends a map
            item["extra"] = json.loads(item["extra"])
    else:
        item = {f.name: f.example for f in contract_for("declarations").fields if f.required}
    body = json.dumps({"declarations": [item], "explain": True})
    host = f"http://{settings.serving.host}:{settings.serving.port}"
    return (
        f"curl -s {host}/score -H 'Authorization: Bearer {scorer_key}' "
        f"-H 'Content-Type: application/json' -d '{body}'"
    )


@app.command("serve")
@handled
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 3000).")] = None,
) -> None:
    """Serve the champions over HTTP (BentoML): /score, /feedback, /explain, /readyz, /metrics."""
    from serving.auth import parse_api_keys
    from serving.launch import exec_server

    settings = _settings()
    # Configured keys are checked first (one key for two roles is refused), then whether there
    # is anything to serve, before a demo key file is written.
    parse_api_keys(settings.serving.api_keys, settings.serving.api_keys_file)
    _check_servable(settings.workspace, settings.serving.deployment)
    _notes(settings)
    if host:
        settings.serving.host = host
    if port:
        settings.serving.port = port
    keys, generated = _ensure_api_keys(settings)
    scorer_key = next((k for k, role in keys.items() if role == "scorer"), None)
    env = dict(os.environ)
    env.update(settings.serving.deployment.environment(settings.workspace))
    env["CRISK_HOME"] = str(settings.workspace.home)
    env["CRISK_SERVE_WORKERS"] = str(settings.serving.workers)
    if generated and scorer_key:
        # The local demo only: its keys were generated here, into the workspace. Keys an
        # operator configured are never printed (terminals and CI logs are kept).
        console.print(
            f"[green]API keys[/green] (role:key) are in {os.environ['CRISK_API_KEYS_FILE']}"
        )
        # typer.echo, not rich: the command must stay on one line to be pasted as it is.
        typer.echo(
            "\nTry it once the log below says 'Service crisk initialized':\n"
            + _curl_example(settings, scorer_key)
            + "\n"
        )
    elif not keys:
        console.print(
            "[yellow]no API keys configured: every protected endpoint answers 401[/yellow]"
        )
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    # Replace this process with the server: SIGTERM/SIGINT to this pid stop it and its workers.
    exec_server(settings.serving.host, settings.serving.port, env, settings.workspace.home)


# --- monitoring indicators ---------------------------------------------------------------------


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{option} {value!r}: expected YYYY-MM-DD") from None


def _indicator_table(indicator: Any) -> Table:
    import math

    from serving.indicators import share_column

    table = Table(*[str(c) for c in indicator.table.columns], title=indicator.title)
    for record in indicator.table.to_dict("records"):
        cells = []
        for key, value in record.items():
            if isinstance(value, float) and share_column(key):
                cells.append("–" if math.isnan(value) else f"{100 * value:.1f}%")
            elif isinstance(value, float):
                cells.append(f"{value:,.0f}")
            elif isinstance(value, int):
                cells.append(f"{value:,}")
            else:
                cells.append(str(value))
        table.add_row(*cells)
    return table


@app.command("report")
@handled
def report(
    start: Annotated[
        str | None, typer.Option("--from", help="First day of controls, YYYY-MM-DD.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Last day of controls (included), YYYY-MM-DD.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Directory for the CSV files and report.html (default: CRISK_HOME/runs/report).",
        ),
    ] = None,
) -> None:
    """The EU monitoring framework's indicators (spec §5) over control results and the audit log."""
    from serving.indicators import compute_indicators, indicators_html, load_inputs

    settings = _settings()
    first, last = _day(start, "--from"), _day(end, "--to")
    if first and last and last < first:
        raise typer.BadParameter(f"--to {last} is before --from {first}")
    result = compute_indicators(load_inputs(settings.workspace, settings.serving), first, last)
    target = out_dir or settings.workspace.runs_dir / "report"
    target.mkdir(parents=True, exist_ok=True)
    out.print(
        f"{result.n_controls:,} controls ({result.n_random:,} random) from "
        f"{first or 'the first'} to {last or 'the last'}"
    )
    for remark in result.notes:
        out.print(f"[yellow]note:[/yellow] {remark}")
    for indicator in result.indicators:
        out.print(_indicator_table(indicator))
        for remark in indicator.notes:
            out.print(f"[yellow]note:[/yellow] {remark}")
        indicator.table.to_csv(target / f"{indicator.key}.csv", index=False)
    (target / "report.html").write_text(indicators_html(result))
    out.print(f"CSV files and report.html in {target}")


# --- feedback and audit ------------------------------------------------------------------------


@feedback_app.command("ingest")
@handled
def feedback_ingest(
    file: Annotated[
        Path | None, typer.Argument(help="Control results file; default: what the service stored.")
    ] = None,
) -> None:
    """Validate control results (a file, or the service's feedback store) into the data store."""
    from pipelines.steps import ingest_feedback

    with _progress() as progress:
        result = ingest_feedback(_settings(), file, progress)
    out.print(
        f"{result.n_input:,} control results: {result.n_valid:,} valid, "
        f"{result.n_quarantined:,} quarantined, {result.n_unchanged:,} already stored unchanged"
    )
    raise typer.Exit(result.exit_code)


def _audit_log(settings: Any) -> Any:
    from serving.state import open_audit_log

    log = open_audit_log(settings.serving)
    if log is None:
        path = settings.workspace.audit_dir / "audit.sqlite"
        raise FileNotFoundError(f"{path}: no audit log yet (nothing was scored in this workspace)")
    return log


@audit_app.command("verify")
@handled
def audit_verify(
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="Public key the checkpoints must be signed with (default: the service's)."
        ),
    ] = None,
    head: Annotated[
        Path | None,
        typer.Option(help="A head exported earlier (`crisk audit head --out`) the log must hold."),
    ] = None,
) -> None:
    """Recompute the hash chain and check the signed checkpoints; exit 1 if anything was altered."""
    from serving.audit import load_public_key

    settings = _settings()
    log = _audit_log(settings)
    key_file = public_key or settings.serving.audit_key_path.with_name(
        settings.serving.audit_key_path.name + ".pub"
    )
    if not key_file.exists():
        raise FileNotFoundError(f"{key_file}: no public key to check the checkpoints with")
    expected = json.loads(head.read_text()) if head is not None else None
    result = log.verify(load_public_key(key_file), expected)
    if result.ok:
        tail = (
            f"; {result.unsigned_tail:,} entries after the last checkpoint (signed at shutdown)"
            if result.unsigned_tail
            else ""
        )
        chains = f" in {result.chains} chains (one per replica)" if result.chains > 1 else ""
        out.print(
            f"audit log intact: {result.entries:,} entries{chains}, {result.checkpoints:,} signed "
            f"checkpoints verified with {key_file}{tail}"
        )
        return
    out.print(f"[red]audit log altered[/red] at entry {result.first_bad_seq}: {result.problem}")
    raise typer.Exit(1)


@audit_app.command("head")
@handled
def audit_head(
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the head here (JSON) to keep elsewhere.")
    ] = None,
) -> None:
    """The log's last entry (sequence number and hash) and its last signed checkpoint."""
    head = _audit_log(_settings()).head()
    text = json.dumps(head, indent=2)
    if out_file is not None:
        out_file.write_text(text + "\n")
        out.print(f"head of {head['log']} (entry {head['seq']}) written to {out_file}")
        return
    typer.echo(text)


def _decision(settings: Any, scoring_id: str) -> dict[str, Any]:
    """The decision record of a scoring id (the same builder as ``POST /explain``)."""
    from serving.bundle import load_bundle
    from serving.decision import decision_record, subject_control_results
    from serving.state import open_audit_log, open_feedback_store

    workspace = settings.workspace
    log = open_audit_log(settings.serving)
    if log is None:
        path = workspace.audit_dir / "audit.sqlite"
        raise FileNotFoundError(f"{path}: no audit log, nothing has been scored in this workspace")
    entry = log.get(scoring_id)
    if entry is None:
        raise LookupError(f"no audited score with scoring_id {scoring_id} in {log.path}")
    try:
        bundle = load_bundle(settings.serving, entry["bundle"])
    except Exception as error:  # a deleted bundle: the recorded decision is still shown
        logging.getLogger(__name__).debug("bundle %s: %s", entry.get("bundle"), error)
        bundle = None
    feedback = open_feedback_store(settings.serving)
    results = subject_control_results(
        workspace, feedback, entry["subject_type"], entry["subject_id"], entry.get("item_number")
    )
    return decision_record(entry, bundle, results, k=settings.serving.top_reasons)


@audit_app.command("show")
@handled
def audit_show(
    scoring_id: Annotated[str, typer.Argument(help="The scoring_id of a response item.")],
    html_out: Annotated[
        Path | None,
        typer.Option("--html", help="Write the decision page (self-contained HTML) to this file."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the record as JSON (what POST /explain returns).")
    ] = False,
) -> None:
    """Show one audited decision: request, features, scores, thresholds, reasons, explanations,
    versions, selection and the control results received for the subject."""
    from serving.decision import decision_html, decision_text

    record = _decision(_settings(), scoring_id)
    if as_json:
        # Plain text, not rich: rich wraps long lines, and the output must parse as JSON.
        typer.echo(json.dumps(record, default=str, indent=1))
    else:
        out.print(decision_text(record), markup=False, highlight=False, soft_wrap=True)
    if html_out is not None:
        target = html_out / f"decision-{scoring_id}.html" if html_out.is_dir() else html_out
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(decision_html(record))
        (console if as_json else out).print(f"decision page: {target}")


def _bundle_to_describe(settings: Any, tag: str | None) -> tuple[str, dict[str, str], str]:
    """(bundle tag, model versions, how it was chosen) for the model cards."""
    from serving.bundle import bundle_versions, load_bundle, serving_bundle

    if tag is not None:
        return tag, bundle_versions(settings.serving, tag), "as asked (--bundle)"
    served = serving_bundle(settings.serving)
    if served is not None:
        return (
            served["bundle"],
            bundle_versions(settings.serving, served["bundle"]),
            f"the bundle the service serves (since {served.get('since')})",
        )
    # Nothing has served yet: the bundle `crisk serve` would serve, built from the champions.
    registry = settings.workspace.mlflow_dir / "mlflow.db"
    if not settings.training.deployment.registry_exists(settings.workspace):
        raise FileNotFoundError(
            f"{registry}: no model registry, so no model to describe; train first "
            "(`crisk bootstrap`, or `crisk train` on your data)"
        )
    try:
        bundle = load_bundle(settings.serving)
    except RuntimeError as error:  # registry without champions and nothing bundled
        raise LookupError(f"no served or champion model to describe: {error}") from None
    return bundle.tag, dict(bundle.champions), "the bundle `crisk serve` serves (champions)"


@audit_app.command("model-report")
@handled
def audit_model_report(
    bundle: Annotated[
        str | None,
        typer.Option(help="Bundle tag (crisk-bundle:...); default: the one the service serves."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Directory for the cards (default CRISK_HOME/runs/model_cards)."
        ),
    ] = None,
    log: Annotated[
        bool, typer.Option(help="Also log each card to MLflow with its model version.")
    ] = True,
) -> None:
    """Model cards of the served models: one self-contained HTML page per model and an index."""
    from training.model_card import write_model_cards

    settings = _settings()
    tag, versions, chosen = _bundle_to_describe(settings, bundle)
    target = out_dir or settings.workspace.runs_dir / "model_cards"
    out.print(f"bundle {tag}: {chosen}")
    result = write_model_cards(settings.training, versions, target, bundle=tag, log_to_mlflow=log)
    for name, path in result.cards.items():
        logged = f" (logged to MLflow: {result.logged[name]})" if name in result.logged else ""
        out.print(f"{name} v{versions[name]}: {path}{logged}")
    out.print(f"index: {result.index}")


def main() -> None:  # pragma: no cover - console script entry
    app()
