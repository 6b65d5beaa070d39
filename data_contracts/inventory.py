"""Which record kinds a workspace holds, and what every step says about the ones it lacks.

The normal case for a customs administration's or a researcher's data is declarations and
control results only: no ENS filings, no operator register, no random controls, no ground
truth. Every step works on that, and says once, in one line per missing kind, what follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_contracts.record_store import has_records, read_stored_records
from data_contracts.workspace import Workspace

__all__ = ["MISSING_KIND_NOTES", "RecordInventory"]

MISSING_KIND_NOTES: dict[str, str] = {
    "ens": "no ENS filings in this workspace: ENS views, feature services and models are "
    "skipped (the service refuses ENS requests with 503)",
    "operators": "no operator register in this workspace: registration and AEO features are "
    "missing (cold-start values)",
    "random_controls": "no random controls in this workspace: evaluation figures come from the "
    "controls the administration chose, not from an unbiased sample",
}


@dataclass(frozen=True)
class RecordInventory:
    """The record kinds present in a workspace's data store."""

    declarations: bool
    ens: bool
    control_results: bool
    operators: bool
    random_controls: int

    @classmethod
    def of(cls, workspace: Workspace) -> RecordInventory:
        random = 0
        results = has_records(workspace, "control-results")
        if results:
            stored = read_stored_records(workspace, "control-results", ["selection_reason"])
            random = int((stored["selection_reason"] == "random").sum())
        return cls(
            declarations=has_records(workspace, "declarations"),
            ens=has_records(workspace, "ens"),
            control_results=results,
            operators=has_records(workspace, "operators"),
            random_controls=random,
        )

    @property
    def kinds(self) -> frozenset[str]:
        """Record kinds (``declarations``, ``ens``, ``control-results``, ``operators``)."""
        present = {
            "declarations": self.declarations,
            "ens": self.ens,
            "control-results": self.control_results,
            "operators": self.operators,
        }
        return frozenset(kind for kind, held in present.items() if held)

    @property
    def subjects(self) -> tuple[str, ...]:
        """Subject types models can be trained for (records and control results present)."""
        if not self.control_results:
            return ()
        return tuple(
            s for s, held in (("declaration", self.declarations), ("ens", self.ens)) if held
        )

    def notes(self) -> list[str]:
        """One line per missing kind (nothing when the workspace has everything)."""
        missing = []
        if self.declarations and not self.ens:
            missing.append("ens")
        if not self.operators:
            missing.append("operators")
        if self.control_results and self.random_controls == 0:
            missing.append("random_controls")
        return [MISSING_KIND_NOTES[kind] for kind in missing]
