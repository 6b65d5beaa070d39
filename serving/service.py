"""The BentoML scoring service: ``crisk serve`` runs ``serving.service:CustomsRiskScorer``.

Endpoints: ``POST /score`` (scorer), ``POST /feedback`` (officer), ``POST /explain`` (auditor),
``/readyz`` (which models, fallback or not), ``/healthz`` and ``/livez``, ``/metrics``
(Prometheus), OpenAPI at ``/docs.json``. Every score is written to the hash-chained audit log
before the response leaves; feedback is committed to disk before it is acknowledged.
"""

from __future__ import annotations

import gc
import logging
import os
from datetime import UTC, datetime
from typing import Any

import bentoml
import orjson
from pydantic import ValidationError
from starlette.responses import Response

from data_contracts.models import ControlResult, reasons_from_error
from serving.audit_writer import AuditWriter
from serving.auth import ApiKeyMiddleware, parse_api_keys
from serving.bundle import load_bundle, record_serving_bundle
from serving.columnar import request_columns, score_columns
from serving.config import ServingSettings
from serving.decision import decision_record, subject_control_results
from serving.hotswap import ChampionWatcher
from serving.identifiers import party_id_reasons_in_columns
from serving.launch import exit_with_parent
from serving.middleware import (
    PARSED_BODY,
    BatchBound,
    ConnectionRecycling,
    OpenApiDocument,
    ReadinessEndpoint,
    RequestBounds,
    RequestLimits,
    ValidationErrors,
    error_body,
)
from serving.openapi import amend_openapi
from serving.schemas import (
    ExplainRequest,
    FeedbackRequest,
    FeedbackResponse,
    ScoreRequest,
    ScoreResponse,
)
from serving.scorer import Scorer
from serving.selection import check_selections
from serving.state import service_audit_log, service_feedback_store

__all__ = ["CustomsRiskScorer"]

logger = logging.getLogger("crisk.serving")

# What /readyz reports; filled in by the service when it has loaded (same worker process).
_STATE: dict[str, Any] = {"ready": False, "status": "starting"}


class _DropValidationTracebacks(logging.Filter):
    """BentoML logs a traceback with the request's values for every invalid body: drop those."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        return not (info and info[0] is not None and info[0].__name__ == "ValidationError")


async def _read_score_request(cls: Any, request: Any, serde: Any) -> Any:
    """``/score``'s body: by column when the fast validator accepts it (serving.columnar), else
    the contract's models validate it as BentoML would (and refuse it with their reasons)."""
    # RequestBounds has parsed the body already (strict JSON, counted).
    document = request.scope.get(PARSED_BODY)
    columns = score_columns(document) if document is not None else None
    if columns is not None:
        return columns
    return await super(ScoreRequestIODescriptor, cls).from_http_request(request, serde)


# The class BentoML would derive from ScoreRequest (same name and fields, so the OpenAPI
# document is the same), reading the body its own way. Made with type(): mypy's pydantic plugin
# cannot follow the request models' generated item types into a subclass written out here.
ScoreRequestIODescriptor: Any = type(
    "ScoreRequestIODescriptor",
    (bentoml.IODescriptor, ScoreRequest),
    {
        "__module__": __name__,
        "from_http_request": classmethod(_read_score_request),
    },
)


def _api_keys() -> dict[str, str]:
    settings = ServingSettings()
    return parse_api_keys(settings.api_keys, settings.api_keys_file)


def _request_limits() -> RequestLimits:
    settings = ServingSettings()
    return RequestLimits(
        max_body_bytes=settings.max_body_bytes,
        batches={
            "/score": BatchBound(("declarations", "ens"), settings.max_batch, minimum=1),
            "/feedback": BatchBound(("control_results",), settings.max_batch),
        },
    )


def _recycle_every() -> int:
    settings = ServingSettings()
    return settings.recycle_connections if settings.workers > 1 else 0


def _readiness() -> dict[str, Any]:
    """The loaded state, with what the request path has learnt since (the feature store)."""
    state = {k: v for k, v in _STATE.items() if not k.startswith("_")}
    scorer = _STATE.get("_scorer")
    problem = scorer.feature_problem() if scorer is not None else None
    if problem is not None:
        state.update(status="degraded", feature_store="unavailable", feature_store_problem=problem)
    return state


def _openapi(document: dict[str, Any]) -> dict[str, Any]:
    """The document in this deployment's bounds and the served models' identifier formats
    (the service has loaded before it answers any request: BentoML's lifespan creates it)."""
    return amend_openapi(
        document, ServingSettings().max_batch, _STATE.get("identifier_formats", {})
    )


def _feature_readers(
    settings: ServingSettings, subjects: list[str], services: dict[str, str | None]
) -> tuple[dict[str, Any], str | None]:
    from features.online import OnlineFeatureReader

    readers: dict[str, Any] = {}
    problem = None
    for subject in subjects:
        service = services[subject]
        try:
            readers[subject] = OnlineFeatureReader(settings.features, service) if service else None
        except Exception as error:  # an unreachable store is served with cold-start values
            readers[subject] = None
            problem = f"feature store unavailable ({type(error).__name__}: {error})"
            logger.warning("%s: scoring %s with cold-start features", problem, subject)
    return readers, problem


@bentoml.service(
    name="crisk",
    workers=int(os.environ.get("CRISK_SERVE_WORKERS", "1")),
    traffic={"timeout": 60},
    logging={"access": {"enabled": False}},
)
class CustomsRiskScorer:
    """Scores declarations and ENS filings; takes control results back."""

    def __init__(self) -> None:
        exit_with_parent()
        logging.getLogger("bentoml._internal.server.http_app").addFilter(
            _DropValidationTracebacks()
        )
        settings = ServingSettings()
        parse_api_keys(settings.api_keys, settings.api_keys_file)  # a bad key list stops the start
        workspace = settings.workspace.ensure()
        for name, value in settings.deployment.environment(workspace).items():
            os.environ.setdefault(name, value)
        self.settings = settings
        self.scorer, feature_problem = _scorer_for(settings, load_bundle(settings), None)
        record_serving_bundle(settings, self.scorer.bundle)
        # The workspace's SQLite files, or PostgreSQL shared with other replicas (serving.state).
        self.audit = service_audit_log(settings)
        self.feedback_store = service_feedback_store(settings)
        # Scores' entries go through one writer thread (group commit, serving.audit_writer).
        self.audit_writer = AuditWriter(self.audit)
        _STATE.clear()
        _STATE.update(_bundle_state(self.scorer, feature_problem, settings))
        self.watcher = ChampionWatcher(
            workspace.champion_marker,
            self._move_to_new_champion,
            interval=settings.reload_check_seconds,
            on_problem=_swap_problem,
        ).start()
        # Everything loaded so far lives as long as the process: keep it out of the collector's
        # way (fewer and shorter collections on the request path).
        gc.collect()
        gc.freeze()
        logger.info(
            "crisk ready: bundle %s (%s)", self.scorer.bundle.tag, self.scorer.bundle.source
        )

    def _move_to_new_champion(self) -> None:
        """Build the new champions' scorer beside the serving one, then swap in one assignment
        (serving.hotswap): a request in flight finishes with the scorer it started with."""
        bundle = load_bundle(self.settings)
        if bundle.tag == self.scorer.bundle.tag:
            return
        scorer, feature_problem = _scorer_for(self.settings, bundle, self.scorer)
        self.scorer = scorer
        record_serving_bundle(self.settings, bundle)
        swaps = int(_STATE.get("swaps", 0)) + 1
        _STATE.update({**_bundle_state(scorer, feature_problem, self.settings), "swaps": swaps})
        logger.info("crisk moved to bundle %s (%s)", bundle.tag, bundle.champions)

    @bentoml.on_shutdown
    def _sign_audit_head(self) -> None:
        """A signed checkpoint of the audit log's head, so its tail cannot be cut unnoticed."""
        self.audit_writer.close()
        self.audit.close()

    @bentoml.api(route="/score")
    async def score(self, request: ScoreRequestIODescriptor, /) -> ScoreResponse:
        """Score a batch: per-area probabilities, channel, reasons, warnings and a scoring id."""
        # Empty and oversized batches were refused before parsing (RequestBounds).
        batch = request_columns(request)
        scorer = self.scorer  # one bundle for the whole request, even across a champion swap
        for field, subject, columns, n in (
            ("declarations", "declaration", batch.declarations, batch.n_declarations),
            ("ens", "ens", batch.ens, batch.n_ens),
        ):
            if n and not scorer.bundle.classifiers(subject):
                # Refuse rather than release unscored goods, and say why (BentoML would hide
                # the message of a 5xx exception behind a generic one).
                return _no_model(field, subject, scorer.bundle.subjects())  # type: ignore[return-value]
            kind = "declarations" if subject == "declaration" else "ens"
            id_format = scorer.bundle.identifier_format(subject)
            invalid = party_id_reasons_in_columns(field, kind, columns, id_format) if n else []
            if invalid:
                return _refused_ids(invalid, self.settings.max_error_reasons)  # type: ignore[return-value]
        outcome = scorer.score_batch(
            batch.declarations, batch.n_declarations, batch.ens, batch.n_ens, batch.explain
        )
        # Committed (and synced) before the answer leaves; concurrent requests share a commit,
        # and the event loop serves other requests while the disk syncs.
        await self.audit_writer.write(outcome.audit)
        # The results are built here to the ScoreResponse schema (tests check it); validating
        # them again would cost more than scoring them at a thousand items.
        return Response(orjson.dumps({"results": outcome.results}), media_type="application/json")  # type: ignore[return-value]

    @bentoml.api(route="/feedback")
    def feedback(self, request: FeedbackRequest, /) -> FeedbackResponse:
        """Store control results (durable, idempotent by control_id); they feed the next retrain."""
        checked: list[tuple[int, Any, dict[str, Any]]] = []
        rejected: list[dict[str, Any]] = []
        for index, raw in enumerate(request.control_results):
            try:
                result = ControlResult.model_validate(raw)
            except ValidationError as error:
                rejected.append({"index": index, "reasons": reasons_from_error(error)})
                continue
            checked.append((index, result, result.model_dump(mode="json")))
        # The subjects' scoring times in one look-up per subject type, not one per result.
        times: dict[tuple[str, str], str] = {}
        for subject_type in {record["subject_type"] for _, _, record in checked}:
            ids = [r["subject_id"] for _, _, r in checked if r["subject_type"] == subject_type]
            found = self.audit.subject_times(subject_type, ids)
            times.update({(subject_type, i): t for i, t in found.items()})
        valid: list[dict[str, Any]] = []
        positions: list[int] = []
        for index, result, record in checked:
            subject_time = times.get((record["subject_type"], record["subject_id"]))
            if subject_time is not None and _before(result.controlled_at, subject_time):
                rejected.append(
                    {
                        "index": index,
                        "reasons": [
                            {
                                "field": "controlled_at",
                                "rule": "controlled_before_subject",
                                "value": record["controlled_at"],
                                "message": f"controlled_at precedes the subject's {subject_time}",
                            }
                        ],
                    }
                )
                continue
            valid.append(record)
            positions.append(index)
        rejected.sort(key=lambda rejection: int(rejection["index"]))
        warnings = []
        for record, index, check in zip(
            valid, positions, check_selections(self.audit, valid), strict=True
        ):
            # Accepted either way (the outcome is real); the audit's account is kept beside it.
            record["_selection_check"] = check.as_dict()
            if check.status != "ok":
                warnings.append(check.warning(index))
        accepted, duplicates = self.feedback_store.add(valid)
        return FeedbackResponse(
            accepted=accepted, duplicates=duplicates, rejected=rejected, warnings=warnings
        )

    @bentoml.api(route="/explain")
    def explain(self, request: ExplainRequest, /, ctx: bentoml.Context) -> dict[str, Any]:
        """The decision page of a scoring id as JSON: what was received, features with their
        percentiles, scores, thresholds, reasons, per-area explanations, versions, selection
        and every control result received for the subject (``crisk audit show`` renders it)."""
        entry = self.audit.get(request.scoring_id)
        if entry is None:
            ctx.response.status_code = 404
            return error_body(
                "not_found",
                f"no score with scoring_id {request.scoring_id}",
                "scoring_id",
                "not_found",
                request.scoring_id,
            )
        serving = self.scorer.bundle
        bundle = serving if entry.get("bundle") == serving.tag else None
        if bundle is None:
            try:
                bundle = load_bundle(self.settings, entry["bundle"])
            except Exception as error:  # a deleted bundle: the recorded decision is still shown
                logger.warning("bundle %s not loadable: %s", entry.get("bundle"), error)
        results = subject_control_results(
            self.settings.workspace, self.feedback_store, entry["subject_type"],
            entry["subject_id"], entry.get("item_number"),
        )  # fmt: skip
        return decision_record(entry, bundle, results, k=self.settings.top_reasons)


def _scorer_for(
    settings: ServingSettings, bundle: Any, previous: Scorer | None
) -> tuple[Scorer, str | None]:
    """A scorer over ``bundle``; feature readers of an unchanged feature service are kept."""
    subjects = bundle.subjects()
    services = {s: bundle.feature_service(s) for s in subjects}
    kept = {}
    if previous is not None:
        kept = {
            s: previous.readers[s]
            for s in subjects
            if previous.readers.get(s) is not None
            and previous.bundle.feature_service(s) == services[s]
        }
    fresh, problem = _feature_readers(settings, [s for s in subjects if s not in kept], services)
    return Scorer(bundle, {**fresh, **kept}, settings), problem


def _bundle_state(
    scorer: Scorer, feature_problem: str | None, settings: ServingSettings
) -> dict[str, Any]:
    """What /readyz reports about the serving bundle (``_scorer``: the request path's own, for
    what it learns later about the feature store)."""
    bundle = scorer.bundle
    subjects = bundle.subjects()
    return {
        "ready": True,
        "status": "degraded" if (bundle.fallback or feature_problem) else "ok",
        "bundle": bundle.tag,
        "source": bundle.source,
        "fallback": bundle.fallback,
        "fallback_reason": bundle.fallback_reason,
        "feature_store": "unavailable" if feature_problem else "ok",
        "feature_store_problem": feature_problem,
        "models": {m.name: m.version for m in bundle.models},
        "feature_services": {s: bundle.feature_service(s) for s in subjects},
        "subjects": subjects,
        "identifier_formats": {s: bundle.identifier_format(s) for s in subjects},
        "revenue_models": {s: bundle.revenue(s) is not None for s in subjects},
        "blue_channel": {
            s: "from expected revenue"
            if bundle.revenue(s) is not None
            else "disabled: no revenue model (revenue unknown or too few recoveries)"
            for s in subjects
        },
        "control_capacity": settings.control_capacity,
        "loaded_at": datetime.now(UTC).isoformat(),
        "swap_problem": None,
        "_scorer": scorer,
    }


def _swap_problem(message: str) -> None:
    logger.warning("%s; the current champion keeps serving", message)
    _STATE["swap_problem"] = message


def _no_model(field: str, subject: str, served: list[str]) -> Response:
    """503 naming the subject type without a model and what the service does score."""
    message = (
        f"{field}: no {subject} model is served (the models were trained on a workspace "
        f"without {subject} records, or with too few labelled controls of them); "
        f"this service scores {', '.join(served) or 'nothing yet'}"
    )
    body = {"error": "no_model", "field": field, "served_subjects": served, "message": message}
    return Response(orjson.dumps(body), status_code=503, media_type="application/json")


def _refused_ids(reasons: list[dict[str, Any]], max_reasons: int) -> Response:
    """422 in the one 4xx shape, at most ``max_reasons`` reasons and the count of the rest."""
    first = reasons[0]
    body: dict[str, Any] = {
        "error": "invalid_request",
        "message": f"{len(reasons)} problem(s); first: {first['field']}: {first['rule']}",
        "reasons": reasons[:max_reasons],
        "n_reasons": len(reasons),
    }
    if len(reasons) > max_reasons:
        body["reasons_omitted"] = len(reasons) - max_reasons
    return Response(orjson.dumps(body), status_code=422, media_type="application/json")


def _before(moment: Any, recorded: str) -> bool:
    """Is ``moment`` before the recorded (audit) time? Both compared in UTC."""
    import pandas as pd

    reference = pd.Timestamp(recorded)
    reference = (
        reference.tz_localize("UTC") if reference.tzinfo is None else reference.tz_convert("UTC")
    )
    return bool(pd.Timestamp(moment) < reference)


# The decorator returns a bentoml Service object; mypy sees the plain class.
_service: Any = CustomsRiskScorer
# Outermost first: connection recycling (several workers), routes and keys, then the bounds on
# what a body may be, then the rewriting of validation answers, then the endpoints answered
# without BentoML.
_service.add_asgi_middleware(ConnectionRecycling, every=_recycle_every)
_service.add_asgi_middleware(ApiKeyMiddleware, keys=_api_keys)
_service.add_asgi_middleware(RequestBounds, limits=_request_limits)
_service.add_asgi_middleware(
    ValidationErrors, max_reasons=lambda: ServingSettings().max_error_reasons
)
_service.add_asgi_middleware(OpenApiDocument, amend=_openapi)
_service.add_asgi_middleware(ReadinessEndpoint, state=_readiness)
