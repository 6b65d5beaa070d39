"""HTTP request and response bodies of the scoring service (spec §3).

Request items are the contract's own pydantic models (``data_contracts.models``), so the service
validates exactly what the batch contracts validate.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from data_contracts.models import model_for

# Requests are parsed with the lenient party-id format and checked in the served models' own
# format afterwards (``serving.identifiers``): which format that is, only the bundle knows.
_DeclarationItem = model_for("declarations", "opaque")
_EnsFiling = model_for("ens", "opaque")

__all__ = [
    "ExplainRequest",
    "FeedbackRequest",
    "FeedbackResponse",
    "Reason",
    "ScoreRequest",
    "ScoreResponse",
    "ScoreResult",
    "Selection",
]


class ScoreRequest(BaseModel):
    """Declaration items and/or ENS filings to score, in one batch."""

    model_config = ConfigDict(extra="forbid")

    declarations: list[_DeclarationItem] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="Import declaration items (spec §2). Party ids are EORI numbers when the "
        "served models' data used them (GET /readyz: identifier_formats), else opaque ids.",
    )
    ens: list[_EnsFiling] = Field(  # type: ignore[valid-type]
        default_factory=list,
        description="ICS2 entry summary declarations (spec §2); party ids as for declarations.",
    )
    explain: StrictBool = Field(
        False, description="Reasons for every item, not only those that are not green."
    )


class Reason(BaseModel):
    feature: str = Field(description="Model feature.", examples=["price_z_score"])
    value: Any = Field(description="The item's value of the feature.", examples=[-3.2])
    contribution: float = Field(
        description="Contribution to the area model's raw score, in log-odds (TreeSHAP)."
    )
    area: str = Field(
        description="Risk area whose model the reason explains.", examples=["financial"]
    )
    sentence: str = Field(
        description="The reason in plain language: the value, what it compares with, and how "
        "far it moves the area's calibrated probability."
    )
    percentile: float | None = Field(
        None,
        description="Share of recent items (the model's reference sample) with a lower "
        "value, 0-100; none for categories and missing values.",
        examples=[96.7],
    )
    typical: Any = Field(
        None,
        description="The typical value the sentence compares with (for the same goods' "
        "importers, or among recent items), or the share of recent items with this category.",
    )
    probability_without: float | None = Field(
        None, description="The area's calibrated probability without this feature's contribution."
    )
    probability_with: float | None = Field(
        None, description="The area's calibrated probability with it (the item's score)."
    )


class Selection(BaseModel):
    reason: str | None = Field(
        description="model (a threshold selected it), random (the uniform draw over all items) "
        "or null (released).",
        examples=["model"],
    )
    probability: float = Field(
        description="Chance the service selects this item given its score: 1 above a threshold, "
        "the random rate below (the recorded propensity for unbiased estimates).",
        examples=[1.0],
    )


class ScoreResult(BaseModel):
    subject_type: str = Field(examples=["declaration"])
    subject_id: str = Field(description="declaration_id or ens_id.")
    item_number: int | None = None
    scores: dict[str, float] = Field(description="Calibrated probability per risk area.")
    overall: float = Field(description="Probability of any irregularity.")
    expected_revenue_eur: float = Field(description="Expected revenue at risk, EUR.")
    channel: str = Field(description="green, yellow, red or blue.", examples=["yellow"])
    random_selection: bool = Field(description="Selected at random (unbiased sample), not by risk.")
    selection: Selection = Field(description="Why and how likely the item was selected.")
    primary_area: str = Field(description="The area in which the item stands out most.")
    reasons: list[Reason] = Field(description="Top reasons (every item that is not green).")
    warnings: list[str] = Field(description="Data-quality findings, cold starts, fallbacks.")
    model_version: dict[str, str] = Field(description="Registered model/version per area.")
    feature_service: str | None = Field(description="Feast feature service the models read.")
    scoring_id: str = Field(description="Key for feedback and audit look-up.")


class ScoreResponse(BaseModel):
    results: list[ScoreResult]


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    control_results: list[dict[str, Any]] = Field(
        description="Control results (spec §2); each is validated on its own.",
        max_length=10_000,
    )


class FeedbackResponse(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]]
    warnings: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Accepted results whose selection_reason the audit log contradicts "
        "(stored with the audit's selection) or cannot check: index, field, rule, value, "
        "audited, scoring_id, message.",
    )


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scoring_id: str = Field(min_length=8, max_length=64, pattern=r"^[0-9a-f]+$")
