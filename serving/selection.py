"""Checking a control result's ``selection_reason`` against what the service recorded.

The audit log knows how the service selected each item it scored (``model`` above a threshold,
``random`` by the uniform draw, or not at all) and with which probability. A control result
that claims otherwise is accepted — its outcome is true information about the goods and must
not be lost — but flagged, and when it goes into the data store the audit's account wins on
what the audit is authoritative about, so the random-control set stays a uniform sample:

- the audit says ``random`` or ``model``: that is the selection reason, with its probability;
- the audit says the service released the item and the result claims ``model`` or ``random``:
  someone else chose it, so it is ``other`` (left out of training, as officers' tips are);
- ``rule`` or ``other`` on a released item agree with the audit (selections outside the
  service); a subject the service never scored cannot be checked (``unverified``).

The claim as sent is kept in the feedback store and in the result's ``note``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["SelectionCheck", "check_selections", "reconcile"]

_SERVICE_REASONS = ("model", "random")
_NOTE_LIMIT = 2000


@dataclass(frozen=True)
class SelectionCheck:
    """What the audit log says about one result's selection."""

    status: str  # "ok" | "mismatch" | "unverified"
    claimed: str | None
    audited: str | None  # the service's reason (None: released), when audited
    probability: float | None  # the recorded selection probability, when audited
    scoring_id: str | None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "claimed": self.claimed,
            "audited": self.audited,
            "probability": self.probability,
            "scoring_id": self.scoring_id,
        }

    def warning(self, index: int) -> dict[str, Any]:
        """The entry of the ``/feedback`` response's ``warnings`` list."""
        return {
            "index": index,
            "field": "selection_reason",
            "rule": "selection_reason_matches_audit"
            if self.status == "mismatch"
            else "selection_reason_unverified",
            "value": self.claimed,
            "audited": self.audited,
            "scoring_id": self.scoring_id,
            "message": self.message,
        }


def _item_number(value: Any) -> int | None:
    """An item number as a file or a request carries it ("3", 3.0, blank) or None."""
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def _audited_item(items: list[Mapping[str, Any]], item_number: Any) -> Mapping[str, Any] | None:
    """The newest audited item a result is about; a declaration-level result (no item number)
    is about the item of the newest score the service selected most surely."""
    number = _item_number(item_number)
    if number is not None:
        return next((i for i in items if i.get("item_number") == number), None)
    newest = [i for i in items if i["_seq"] == items[0]["_seq"]]
    return max(newest, key=lambda i: float((i.get("selection") or {}).get("probability") or 0))


def _check(claimed: str | None, item: Mapping[str, Any] | None) -> SelectionCheck:
    if item is None or "selection" not in item:
        status = "unverified" if claimed in _SERVICE_REASONS else "ok"
        return SelectionCheck(
            status, claimed, None, None, None,
            f"selection_reason {claimed!r} cannot be checked: the service never scored this "
            "subject (or scored it before selections were recorded)",
        )  # fmt: skip
    selection = item["selection"]
    audited, probability = selection.get("reason"), float(selection.get("probability"))
    scoring_id = item.get("scoring_id")
    agrees = claimed == audited if audited is not None else claimed not in _SERVICE_REASONS
    if agrees:
        return SelectionCheck("ok", claimed, audited, probability, scoring_id)
    said = f"{audited!r}" if audited else "that it released the item (no selection)"
    return SelectionCheck(
        "mismatch", claimed, audited, probability, scoring_id,
        f"selection_reason {claimed!r} but the audit log (scoring_id {scoring_id}) records {said}; "
        "accepted, and stored with the audit's selection",
    )  # fmt: skip


def check_selections(audit: Any, results: Sequence[Mapping[str, Any]]) -> list[SelectionCheck]:
    """One check per result (``audit`` is a :class:`serving.audit.AuditLog`)."""
    by_subject: dict[str, list[str]] = {}
    for result in results:
        subject_id = str(result["subject_id"]).strip()
        by_subject.setdefault(str(result["subject_type"]).strip(), []).append(subject_id)
    audited = {subject: audit.subject_items(subject, ids) for subject, ids in by_subject.items()}
    checks = []
    for result in results:
        items = audited[str(result["subject_type"]).strip()].get(
            str(result["subject_id"]).strip(), []
        )
        item = _audited_item(items, result.get("item_number")) if items else None
        checks.append(_check(result.get("selection_reason"), item))
    return checks


def reconcile(record: Mapping[str, Any], check: Mapping[str, Any] | None) -> dict[str, Any]:
    """The result as the data store takes it: the audit's selection where it is known.

    ``check`` is :meth:`SelectionCheck.as_dict` as stored with the result (None: not checked).
    The recorded probability is kept only for the service's own selections: an item the
    service released was selected by someone else, with a probability the audit cannot know.
    """
    out = dict(record)
    if not check or check.get("status") == "unverified":
        return out
    audited = check.get("audited")
    if check.get("status") == "mismatch":
        out["selection_reason"] = audited if audited in _SERVICE_REASONS else "other"
        claim = (
            f"[selection_reason reported as {check.get('claimed')!r}; the audit log records "
            f"{audited!r} (scoring_id {check.get('scoring_id')})]"
        )
        # The note is bounded (2,000 characters): the officer's text gives way, never the claim.
        note = str(out.get("note") or "")[: _NOTE_LIMIT - len(claim) - 1]
        out["note"] = f"{note} {claim}" if note else claim
    if audited in _SERVICE_REASONS and check.get("probability") is not None:
        out["selection_probability"] = float(check["probability"])
    return out
