"""`crisk import --mapping M FILE`: a foreign declaration file into the workspace (spec §6).

Order matters, so that a mapping error leaves nothing behind: the mapping is read and checked,
the file is read, every rule is applied and every mapping problem collected, and the dataset
manifest is merged with the workspace's, all before the first write. Then the manifest is
written and the rows go through the contracts exactly as ``crisk ingest`` sends them (valid
rows merged into the data store, the rest quarantined with reasons and their row numbers in
the file).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from data_contracts.dataset import (
    DatasetManifest,
    ExtraAttribute,
    manifest_path,
    read_manifest,
    write_manifest,
)
from data_contracts.mapping import MappingFile, load_mapping
from data_contracts.mapping_apply import MappedRecords, apply_mapping, read_source
from data_contracts.workspace import OfflineLayout, Workspace
from pipelines.ingest import IngestResult, data_file, ingest_frame

__all__ = ["ImportResult", "import_file", "merged_manifest"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    logger.info(message)


@dataclass(frozen=True)
class ImportResult:
    """What an import brought in, and what it left in quarantine."""

    dataset: str
    n_rows: int
    declarations: IngestResult
    control_results: IngestResult | None
    manifest: DatasetManifest
    manifest_path: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """As ``crisk ingest``: 0 every row stored, 1 some quarantined."""
        parts = [self.declarations, self.control_results]
        return 1 if any(p is not None and p.n_quarantined for p in parts) else 0


def _merged_extra(
    stored: list[ExtraAttribute], incoming: list[ExtraAttribute]
) -> tuple[list[ExtraAttribute], list[str]]:
    by_name = {a.name: a for a in stored}
    conflicts = []
    for attribute in incoming:
        before = by_name.get(attribute.name)
        if before is not None and before.type != attribute.type:
            conflicts.append(
                f"extra.{attribute.name} is {attribute.type} here but {before.type} in the "
                "workspace: a model cannot read it both ways"
            )
        by_name[attribute.name] = attribute if before is None or not before.label else before
    return list(by_name.values()), conflicts


def merged_manifest(
    workspace: Workspace, mapping: MappingFile, mapped: MappedRecords
) -> DatasetManifest:
    """The manifest after this import: this dataset's facts merged with what is stored.

    Re-importing the next file of the same dataset adds its attributes, keeps a published split
    unless the new mapping gives one, and keeps the revenue known only if every file gave it.

    Raises:
        ValueError: the workspace holds another dataset, other records, another identifier
            format, or an attribute of another type (import into its own ``CRISK_HOME``).
    """
    incoming = DatasetManifest(
        dataset=mapping.dataset,
        source="import",
        identifier_format=mapping.identifier_format,
        extra=mapped.extra,
        split=mapping.split,
        revenue_known=mapped.revenue_known,
    )
    has_manifest = manifest_path(workspace).exists()
    has_records = data_file(workspace, "declarations").exists()
    if not has_manifest:
        if has_records:
            raise ValueError(
                f"{workspace.home} already holds records from `crisk ingest` or the synthetic "
                f"world; import {mapping.dataset!r} into an empty workspace (another CRISK_HOME)"
            )
        return incoming
    stored = read_manifest(workspace)
    problems = []
    if stored.source != "import" or stored.dataset != mapping.dataset:
        problems.append(
            f"{workspace.home} holds dataset {stored.dataset!r} ({stored.source}); import "
            f"{mapping.dataset!r} into its own workspace (another CRISK_HOME)"
        )
    elif stored.identifier_format != mapping.identifier_format:
        problems.append(
            f"identifier_format is {mapping.identifier_format} here but "
            f"{stored.identifier_format} in the workspace's dataset {stored.dataset!r}"
        )
    extra, conflicts = _merged_extra(stored.extra, mapped.extra)
    problems.extend(conflicts)
    if problems:
        raise ValueError("; ".join(problems))
    return stored.model_copy(
        update={
            "extra": extra,
            "split": mapping.split or stored.split,
            "revenue_known": stored.revenue_known and mapped.revenue_known,
        }
    )


def import_file(
    workspace: Workspace,
    mapping_file: Path,
    file: Path,
    progress: Progress = _quiet,
    reporting_delays: Mapping[str, float] | None = None,
    layout: OfflineLayout | None = None,
) -> ImportResult:
    """Map ``file`` by ``mapping_file`` and bring its rows into the workspace.

    ``reporting_delays`` (days per control type) date the outcomes of labels whose mapping
    gives no ``reported_at`` (default: the ingest defaults). ``layout``: how the records are
    stored (``CRISK_RECORDS_LAYOUT``; default: as they are).

    Raises:
        MappingError: the mapping is invalid or does not fit the file (nothing written).
        UnusableInput: the file cannot be read as the mapping's ``source`` says (nothing written).
        ValueError: the workspace holds another dataset (nothing written).
    """
    loaded = load_mapping(mapping_file)
    mapping = loaded.mapping
    progress(f"reading {file} ({mapping.source.format})")
    table = read_source(file, mapping.source)
    progress(f"mapping {len(table.frame):,} rows by {mapping_file}")
    mapped = apply_mapping(loaded, table)
    manifest = merged_manifest(workspace, mapping, mapped)
    # The manifest first: it names the dataset, so a re-run after an interrupted import finds
    # its own dataset rather than "records of another one".
    path = write_manifest(workspace.ensure(), manifest)
    progress(f"validating {len(mapped.declarations):,} declaration items")
    source = f"{file} (mapped by {mapping_file})"
    declarations = ingest_frame(
        workspace,
        "declarations",
        mapped.declarations,
        source,
        row_numbers=mapped.declaration_rows,
        identifiers=mapping.identifier_format,
        layout=layout,
    )
    controls = None
    if mapping.labels is not None:
        progress(f"validating {len(mapped.control_results):,} control results from the labels")
        controls = ingest_frame(
            workspace,
            "control-results",
            mapped.control_results,
            source,
            row_numbers=mapped.control_rows,
            identifiers=mapping.identifier_format,
            reporting_delays=reporting_delays,
            layout=layout,
        )
    return ImportResult(
        dataset=mapping.dataset,
        n_rows=len(table.frame),
        declarations=declarations,
        control_results=controls,
        manifest=manifest,
        manifest_path=path,
        warnings=mapped.warnings,
    )
