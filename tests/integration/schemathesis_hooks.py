"""Schemathesis hooks and checks for ``test_schemathesis.py`` (loaded with SCHEMATHESIS_HOOKS).

- :func:`before_call`: a positive body is made to satisfy the two contract rules JSON Schema cannot
  express (a field at least another one; the itinerary's first element), which the OpenAPI
  document names under ``x-crisk-rules``, as a client generated from it would.
- :func:`rejections_follow_the_contract` replaces the built-in ``negative_data_rejection``: the
  contract's one value parser (files and HTTP alike) accepts numbers sent as text, ``"yes"`` for
  true and the like, and ``/feedback`` answers 200 while listing each invalid result under
  ``rejected`` (spec §3). What it checks instead: whatever the server scores or stores, the
  contract accepts, and every control result it did not store is listed with reasons.
- :func:`every_4xx_names_field_and_rule`: the one error shape.
- :func:`protected_routes_need_a_key`: no key, no answer but 401.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from pydantic import ValidationError
from schemathesis.core.failures import Failure

from data_contracts.models import model_for


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Every phase passes here (the coverage phase does not go through map_case).
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return
    for item in case.body.get("declarations") or []:
        net, gross = item.get("net_mass_kg"), item.get("gross_mass_kg")
        if isinstance(net, int | float) and isinstance(gross, int | float) and gross < net:
            item["gross_mass_kg"] = net
    for item in case.body.get("ens") or []:
        itinerary = item.get("itinerary")
        if isinstance(itinerary, list) and itinerary and item.get("country_of_loading"):
            itinerary[0] = item["country_of_loading"]
    for item in case.body.get("control_results") or []:
        if isinstance(item, dict) and item.get("reported_at") and item.get("controlled_at"):
            item["reported_at"] = max(item["reported_at"], item["controlled_at"])


def _rejected_by_contract(kind: str, record: Any) -> bool:
    try:
        model_for(kind).model_validate(record)
    except ValidationError:
        return True
    return False


def _fail(case: Any, title: str, message: str) -> None:
    raise Failure(operation=case.operation.label, title=title, message=message)


@schemathesis.check
def rejections_follow_the_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    if not 200 <= response.status_code < 300 or not isinstance(case.body, dict):
        return None
    path = case.operation.path
    if path == "/score":
        for key in ("declarations", "ens"):
            for position, record in enumerate(case.body.get(key) or []):
                if _rejected_by_contract(key, record):
                    _fail(case, "Scored a record the contract rejects", f"{key}[{position}]")
    if path == "/feedback":
        rejected = {r["index"] for r in response.json()["rejected"]}
        for position, record in enumerate(case.body.get("control_results") or []):
            if _rejected_by_contract("control-results", record) and position not in rejected:
                _fail(
                    case,
                    "Stored a control result the contract rejects",
                    f"control_results[{position}] is not listed under rejected",
                )
    return None


@schemathesis.check
def every_4xx_names_field_and_rule(ctx: Any, response: Any, case: Any) -> bool | None:
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    reasons = body.get("reasons") if isinstance(body, dict) else None
    if not reasons or not all("field" in r and r.get("rule") for r in reasons):
        _fail(case, "A 4xx that does not name the field and the rule", str(body)[:300])
    return None


_PROTECTED = ("/score", "/feedback", "/explain")


@schemathesis.check
def protected_routes_need_a_key(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request that reached a protected route without a key was refused with 401."""
    sent = {k.lower() for k in response.request.headers}
    anonymous = case.operation.path in _PROTECTED and "authorization" not in sent
    if anonymous and case.method.upper() == "POST" and response.status_code != 401:
        _fail(case, "A protected route answered without a key", str(response.status_code))
    return None
