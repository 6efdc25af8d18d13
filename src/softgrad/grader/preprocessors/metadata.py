"""Checking nbgrader's cell metadata: nbgrader's ``CheckCellMetadata``, with its JSON schema checked once per process.

nbgrader checks every graded cell's metadata against its schema with ``jsonschema.validate``, which
first checks the schema itself against JSON Schema's meta-schema, once for every cell: 20 cells
of a notebook, twice per submission (before and after execution), 60 to 100 ms of CPU for every
submission graded (measured on problem set 1). :class:`QuickCheckCellMetadata` asks the same
questions and accepts and rejects the same notebooks, with the same errors; only the schema's own
check happens once.
"""

from __future__ import annotations

import traceback
from typing import ClassVar

from jsonschema import exceptions, validators
from nbformat.notebooknode import NotebookNode
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.nbgraderformat.common import BaseMetadataValidator
from nbgrader.preprocessors import CheckCellMetadata

__all__ = ["QuickCheckCellMetadata", "QuickMetadataValidator"]


class _SchemaCheckedOnce(BaseMetadataValidator):
    """nbgrader's check of one cell against its schema, with a validator built (and the schema checked) once."""

    _validators: ClassVar[dict[int, object]] = {}

    def validate_cell(self, cell: NotebookNode) -> None:
        metadata = cell.metadata.get("nbgrader")
        if metadata is None or metadata.get("schema_version", 0) != self.schema_version:
            return super().validate_cell(cell)  # no nbgrader metadata, or another version: nbgrader's own answer
        validator = self._validators.get(self.schema_version)
        if validator is None:
            kind = validators.validator_for(self.schema)
            kind.check_schema(self.schema)
            validator = self._validators[self.schema_version] = kind(self.schema)
        # what jsonschema.validate raises: the most relevant of the errors
        error = exceptions.best_match(validator.iter_errors(metadata))
        if error is not None:
            raise error
        return None


class QuickMetadataValidator(MetadataValidator, _SchemaCheckedOnce):
    """nbgrader's ``MetadataValidator`` (its checks of cell types, ids and versions), the schema checked once."""


class QuickCheckCellMetadata(CheckCellMetadata):
    """nbgrader's ``CheckCellMetadata`` with :class:`QuickMetadataValidator`: same checks, same errors."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        try:
            QuickMetadataValidator().validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            message = "Notebook failed to validate; the nbgrader metadata may be corrupted."  # nbgrader's words
            self.log.error(message)
            raise ValidationError(message)  # noqa: B904 (as nbgrader raises it)
        return nb, resources
