"""What a workspace's data is: the dataset manifest (``CRISK_HOME/data/dataset.json``).

Records say what each row is; the manifest says what the whole data set is, which every later
step needs and no single row carries: its name (recorded with every run and model), how its
parties are identified (EORI numbers, or a national administration's opaque ids), the national
attributes kept in ``extra`` and how models should read them, a published time split, and
whether control results carry the revenue recovered (unknown is not zero).

``crisk import`` writes it from the mapping file; the synthetic world's bootstrap writes one for
the world; a workspace filled only with ``crisk ingest`` has none, and :func:`read_manifest`
then returns the defaults (EORI ids, no national attributes, no split, revenue known).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from data_contracts.workspace import Workspace

__all__ = [
    "MANIFEST_FILE",
    "DatasetManifest",
    "ExtraAttribute",
    "PublishedSplit",
    "manifest_path",
    "read_manifest",
    "write_manifest",
]

MANIFEST_FILE = "dataset.json"

IdentifierFormat = Literal["eori", "opaque"]


class ExtraAttribute(BaseModel):
    """A national attribute kept in a record's ``extra`` map and used as a model feature."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Key in `extra`.")
    type: Literal["categorical", "numeric"]
    label: str = Field(
        default="", description="Plain words for reasons and model cards, e.g. 'Payment type'."
    )
    source_column: str | None = Field(default=None, description="Where the import read it.")

    @property
    def display_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


class PublishedSplit(BaseModel):
    """A fixed time split (end dates inclusive) that training and evaluation must use."""

    model_config = ConfigDict(extra="forbid")

    train_until: date
    validation_until: date
    test_until: date

    @model_validator(mode="after")
    def _ordered(self) -> PublishedSplit:
        if not self.train_until < self.validation_until < self.test_until:
            raise ValueError("expected train_until < validation_until < test_until")
        return self


class DatasetManifest(BaseModel):
    """The dataset-level facts of a workspace (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(default="unnamed", min_length=1, max_length=120)
    source: Literal["ingest", "import", "synthetic_world"] = "ingest"
    identifier_format: IdentifierFormat = "eori"
    extra: list[ExtraAttribute] = Field(default_factory=list)
    split: PublishedSplit | None = None
    revenue_known: bool = Field(
        default=True,
        description="Control results carry revenue_recovered_eur. False: revenue is unknown "
        "(not zero): no revenue model is trained and Revenue@n% is not reported.",
    )

    def extra_attribute(self, name: str) -> ExtraAttribute | None:
        return next((a for a in self.extra if a.name == name), None)


def manifest_path(workspace: Workspace) -> Path:
    return workspace.data_dir / MANIFEST_FILE


def read_manifest(workspace: Workspace) -> DatasetManifest:
    """The workspace's manifest, or the defaults when it has none."""
    path = manifest_path(workspace)
    if not path.exists():
        return DatasetManifest()
    return DatasetManifest.model_validate_json(path.read_text())


def write_manifest(workspace: Workspace, manifest: DatasetManifest) -> Path:
    """Write the manifest atomically (a reader never sees half a file)."""
    path = manifest_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest.model_dump(mode="json"), indent=1, sort_keys=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".dataset-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        out.write(text + "\n")
    os.replace(temporary, path)
    return path
