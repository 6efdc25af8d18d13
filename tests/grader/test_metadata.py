"""QuickCheckCellMetadata: nbgrader's check of the cells' metadata, the same answers with the schema checked once."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import nbformat
import pytest
from jsonschema import ValidationError as SchemaError
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.preprocessors import CheckCellMetadata

from softgrad.grader.preprocessors.metadata import QuickCheckCellMetadata, QuickMetadataValidator

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "solutions").glob("*/*.ipynb"))


def _answer(validator, nb) -> tuple[str, str] | None:
    """What validating ``nb`` raised (its type and message), or None."""
    try:
        validator.validate_nb(copy.deepcopy(nb))
    except Exception as error:  # noqa: BLE001 (any error is part of the answer compared)
        return type(error).__name__, str(error)
    return None


def _graded_cell(nb):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))


def _broken(nb, change) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    change(_graded_cell(nb).metadata["nbgrader"])
    return nb


# each a way a cell's nbgrader metadata gets corrupted (by hand, by a tool, by another nbgrader version)
CORRUPTIONS = {
    "points as text": lambda m: m.update(points="two"),
    "grade as a string": lambda m: m.update(grade="yes"),
    "no grade id": lambda m: m.pop("grade_id"),
    "no locked": lambda m: m.pop("locked"),
    "an unknown key": lambda m: m.update(colour="red"),
    "an old schema": lambda m: m.update(schema_version=1),
    "a newer schema": lambda m: m.update(schema_version=4),
    "no schema version": lambda m: m.pop("schema_version"),
    "a cell type that is not a string": lambda m: m.update(cell_type=3),
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.parent.name)
def test_every_course_notebook_is_valid_for_both(path):
    """Both validators accept every source notebook of the course."""
    nb = nbformat.read(path, as_version=4)
    assert _answer(MetadataValidator(), nb) is None
    assert _answer(QuickMetadataValidator(), nb) is None


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corrupted_metadata_gets_nbgrader_s_own_error(name):
    """A corrupted cell is rejected with exactly the error nbgrader's own validator raises."""
    nb = _broken(nbformat.read(NOTEBOOKS[0], as_version=4), CORRUPTIONS[name])
    expected = _answer(MetadataValidator(), nb)
    assert expected is not None, f"nbgrader accepts {name}: the case tests nothing"
    assert _answer(QuickMetadataValidator(), nb) == expected


def test_the_check_of_the_schema_happens_once(monkeypatch):
    """The schema is checked against JSON Schema's meta-schema once per process, not once per cell."""
    from jsonschema import validators

    checked = []
    kind = validators.validator_for(MetadataValidator().schema)
    monkeypatch.setattr(kind, "check_schema", classmethod(lambda cls, schema: checked.append(schema)))
    monkeypatch.setattr(QuickMetadataValidator, "_validators", {})
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    for _ in range(3):
        QuickMetadataValidator().validate_nb(nb)
    assert len(checked) == 1


def test_the_preprocessor_fails_a_corrupted_notebook_as_nbgrader_s_does(caplog):
    """The preprocessor raises nbgrader's error for a corrupted notebook and passes a valid one unchanged."""
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    assert QuickCheckCellMetadata().preprocess(copy.deepcopy(nb), {})[0] == nb
    broken = _broken(nb, CORRUPTIONS["points as text"])
    errors = []
    for preprocessor in (CheckCellMetadata(), QuickCheckCellMetadata()):
        with caplog.at_level(logging.ERROR), pytest.raises(ValidationError) as raised:
            preprocessor.preprocess(copy.deepcopy(broken), {})
        errors.append(str(raised.value))
        assert isinstance(raised.value.__context__, SchemaError)
    assert errors[0] == errors[1]
