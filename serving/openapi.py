"""The OpenAPI document as the service really behaves (``/docs.json``).

BentoML describes the request and response models (they carry the contract's patterns, ranges,
enums and required fields, ``data_contracts.models``) but documents 400/404/500 answers the
service never gives and no key scheme. :func:`amend_openapi` completes it: every status each
route answers with the one error shape, the bearer-key scheme on protected routes, the batch
bounds of this deployment, and the cross-field rules JSON Schema can state (``if``/``then``);
the two it cannot (a greater-or-equal between two fields, the first itinerary element) are
named in ``x-crisk-rules`` and in the field descriptions. Requests are parsed with lenient
(opaque) party ids and checked afterwards in the served models' identifier format
(``serving.identifiers``); the document states the format each subject is really checked in, so
a client generated from it sends ids the service accepts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from data_contracts.definitions import KINDS, RecordContract, party_id_fields
from data_contracts.models import model_for
from serving.auth import ENDPOINT_ROLES

__all__ = ["amend_openapi"]

_ERROR = {
    "type": "object",
    "required": ["error", "message", "reasons"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "reasons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "rule"],
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string"},
                    "value": {},
                    "message": {"type": "string"},
                },
            },
        },
        "n_reasons": {"type": "integer"},
        "reasons_omitted": {"type": "integer"},
    },
}
_STATUS_TEXT = {
    401: "No API key, or an unknown one.",
    403: "The key's role may not call this endpoint.",
    404: "No such scoring id.",
    413: "The body is larger than the limit (CRISK_SERVE_MAX_BODY_BYTES).",
    415: "Not application/json, or a compressed body.",
    422: "The body breaks the contract (also: more items than one request may carry): the "
    "reasons name each field and rule.",
    503: "No model is served for a subject type in the request.",
}
_STATUSES = {
    "/score": (401, 403, 413, 415, 422, 503),
    "/feedback": (401, 403, 413, 415, 422),
    "/explain": (401, 403, 404, 413, 415, 422),
}
_RECORDS = {
    "DeclarationItem": "declarations",
    "EnsFiling": "ens",
    "ControlResult": "control-results",
}
# Request records and the subject whose served models' identifier format checks them.
_SUBJECTS = {"DeclarationItem": "declaration", "EnsFiling": "ens"}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _STATUS_TEXT[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _cross_field_schema(contract: RecordContract) -> dict[str, Any]:
    """``allOf`` of the conditional rules, and the rules JSON Schema cannot express."""
    conditions: list[dict[str, Any]] = []
    for cond in contract.conditional_required:
        conditions.append(
            {
                "if": {
                    "properties": {cond.when_field: {"enum": list(cond.when_values)}},
                    "required": [cond.when_field],
                },
                "then": {
                    "required": [cond.field],
                    "properties": {cond.field: {"not": {"type": "null"}}},
                },
            }
        )
    for cond_max in contract.conditional_max:
        conditions.append(
            {
                "if": {
                    "properties": {cond_max.when_field: {"enum": list(cond_max.when_values)}},
                    "required": [cond_max.when_field],
                },
                "then": {"properties": {cond_max.field: {"maximum": cond_max.limit}}},
            }
        )
    rules = [p.message for p in contract.pair_rules] + [h.message for h in contract.list_head_rules]
    out: dict[str, Any] = {}
    if conditions:
        out["allOf"] = conditions
    if rules:
        out["x-crisk-rules"] = rules
    return out


def _records(document: dict[str, Any], identifier_formats: Mapping[str, str]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, kind in _RECORDS.items():
        contract = KINDS[kind]
        if name not in schemas:
            schemas[name] = model_for(kind).model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
        served = identifier_formats.get(_SUBJECTS.get(name, ""))
        if served is not None:
            checked = model_for(kind, served).model_json_schema()["properties"]
            for field in party_id_fields(contract):
                schemas[name]["properties"][field] = checked[field]
        schemas[name].update(_cross_field_schema(contract))
        for pair in contract.pair_rules:
            field = schemas[name]["properties"].get(pair.left)
            if field is not None:
                field["description"] = f"{field.get('description', '')} ({pair.message})".strip()
        for head in contract.list_head_rules:
            field = schemas[name]["properties"].get(head.list_field)
            if field is not None:
                field["description"] = f"{field.get('description', '')} ({head.message})".strip()
    schemas["Error"] = _ERROR


def _request_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    return content.get("schema")


def _bound_batches(document: dict[str, Any], max_batch: int) -> None:
    paths = document.get("paths", {})
    score_operation = paths.get("/score", {}).get("post", {})
    score = _request_schema(score_operation)
    if score is not None:
        for name in ("declarations", "ens"):
            if name in score.get("properties", {}):
                score["properties"][name]["maxItems"] = max_batch
        # "At least one item": one self-contained branch per list (hypothesis-jsonschema cannot
        # merge an allOf with additionalProperties: false).
        branches = []
        for name in ("declarations", "ens"):
            branch = copy.deepcopy(score)
            branch["required"] = sorted({*branch.get("required", []), name})
            branch["properties"][name]["minItems"] = 1
            branch.pop("title", None)
            branches.append(branch)
        score_operation["requestBody"]["content"]["application/json"]["schema"] = {
            "anyOf": branches,
            "title": score.get("title", "ScoreRequest"),
            "description": (
                f"At least one item; at most {max_batch} declarations and {max_batch} ENS filings."
            ),
        }
    feedback = _request_schema(paths.get("/feedback", {}).get("post", {}))
    if feedback is not None and "control_results" in feedback.get("properties", {}):
        results = feedback["properties"]["control_results"]
        results["items"] = {"$ref": "#/components/schemas/ControlResult"}
        results["maxItems"] = max_batch
        results["description"] = (
            "Control results (spec §2). Each is validated on its own: a result that breaks the "
            "contract is listed under `rejected` with its reasons (the answer is still 200), the "
            "others are stored."
        )


def amend_openapi(
    document: dict[str, Any],
    max_batch: int,
    identifier_formats: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of BentoML's document that documents what the service really answers.

    ``identifier_formats``: subject type → the identifier format its served models' data used
    (``eori`` or ``opaque``), as ``/readyz`` lists it; party ids are documented in that format.
    """
    out = copy.deepcopy(document)
    # The schemas are pydantic's JSON Schema 2020-12 (numeric exclusiveMinimum, type null in
    # anyOf): that is OpenAPI 3.1, not the 3.0 BentoML announces, under which they are invalid.
    out["openapi"] = "3.1.0"
    _records(out, identifier_formats or {})
    out["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "role key (CRISK_API_KEYS)"}
    }
    out["components"]["schemas"].pop("TaskStatusResponse", None)
    for path, operations in out.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for undocumented in ("400", "404", "500"):
                responses.pop(undocumented, None)
            if path in ENDPOINT_ROLES:
                operation["security"] = [{"bearer": []}]
                if "requestBody" in operation:
                    operation["requestBody"]["required"] = True
                operation["description"] = (
                    f"{operation.get('description', '')} Roles: "
                    f"{', '.join(sorted(ENDPOINT_ROLES[path]))}."
                ).strip()
                for status in _STATUSES.get(path, ()):
                    responses[str(status)] = _error_response(status)
            if path == "/readyz":
                responses["503"] = {"description": "Not ready yet: still loading."}
    _bound_batches(out, max_batch)
    return out
