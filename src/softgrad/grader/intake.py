"""Step 1 of grading a class: the submissions, read and checked before anything runs.

Which students submitted, which of their files nbgrader will grade (a notebook saved under
another name is recognised), what each submission is made of (its files and their digest, so
that an unchanged re-submission is not graded twice), and the problems worth telling the
instructor about (a notebook that is missing or not a notebook).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import nbformat

__all__ = [
    "MAX_SUBMISSION_BYTES",
    "expected_notebooks",
    "inspect_submissions",
    "not_graded",
    "students_to_grade",
    "submission_digest",
    "submission_files",
    "submission_problem",
]

# What a worker may send for one submission: the files nbgrader needs, never a data dump.
MAX_SUBMISSION_BYTES = 64 * 1024 * 1024
_IGNORED_PARTS = {".ipynb_checkpoints", "__pycache__"}


def expected_notebooks(course: Path, assignment: str) -> list[str]:
    """The notebook file names of an assignment, from its source folder."""
    return sorted(p.name for p in (course / "solutions" / assignment).glob("*.ipynb"))


def _grade_ids(path: Path) -> set[str]:
    nb = nbformat.read(path, as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells} - {None}


def inspect_submissions(course: Path, assignment: str) -> dict[str, list[dict]]:
    """Check every student's submitted files before grading; fix an unambiguous rename.

    A notebook that is not where nbgrader looks but was saved under another name (a browser
    download adds `` (1)``) is copied to the expected name when it is the only candidate and
    carries the assignment's nbgrader cells; the student's file stays as it was. A notebook
    that is not JSON, or not a notebook, is reported (nbgrader cannot grade it).
    """
    expected = expected_notebooks(course, assignment)
    source_ids = {name: _grade_ids(course / "solutions" / assignment / name) for name in expected}
    problems: dict[str, list[dict]] = {}
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student = folder.parent.name
        found = []

        def note(detail: str, cell: str = "(notebook)", found: list = found) -> None:
            found.append(submission_problem(detail, cell))

        others = sorted(p.name for p in folder.glob("*.ipynb") if p.name not in expected)
        for name in expected:
            path = folder / name
            if not path.exists():
                candidates = []
                for other in others:
                    try:
                        if _grade_ids(folder / other) & source_ids[name]:
                            candidates.append(other)
                    except Exception:  # noqa: BLE001 (an unreadable file is not a candidate)
                        continue
                if len(candidates) == 1:
                    shutil.copy2(folder / candidates[0], path)
                    others.remove(candidates[0])
                    note(f"{name} was submitted as {candidates[0]!r}; graded as {name}", name)
                else:
                    extra = f" (found {', '.join(repr(o) for o in others)})" if others else ""
                    note(f"{name} is missing{extra}; its cells score 0", name)
                continue
            try:
                nb = nbformat.read(path, as_version=4)
                nbformat.validate(nb)
            except Exception as error:  # noqa: BLE001 (any reason a file is not a notebook)
                first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
                note(f"{name} is not a readable notebook ({type(error).__name__}: {first}); its cells score 0", name)
        if found:
            problems[student] = found
    return problems


def submission_problem(detail: str, cell: str = "(notebook)") -> dict:
    """A finding of the intake or of nbgrader about the submitted files, as the reports record it."""
    return {"rule": "submission-problem", "cell": cell, "line": 0, "severity": "problem", "detail": detail}


def not_graded(reason: str) -> dict:
    """The finding for a submission nbgrader could not grade: every cell scores 0."""
    return submission_problem(f"not graded, all cells score 0: {reason}")


def submission_files(folder: Path) -> dict[str, bytes]:
    """Every file of a submitted folder (relative path -> bytes), editor checkpoints left out."""
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.is_symlink() or _IGNORED_PARTS & set(relative.parts):
            continue
        total += path.stat().st_size
        if total > MAX_SUBMISSION_BYTES:
            raise ValueError(f"{folder} holds more than {MAX_SUBMISSION_BYTES // 2**20} MiB of files; "
                             "a submission is notebooks and small files (remove data sets from it)")
        files[relative.as_posix()] = path.read_bytes()
    return files


def submission_digest(files: Mapping[str, bytes]) -> str:
    """A fingerprint of a submission's files: a changed re-submission gets a new one."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def students_to_grade(course: Path, coursedir, assignment: str, only: Iterable[str] | None) -> list[str]:
    pattern = Path(coursedir.format_path(coursedir.submitted_directory, "*", assignment))
    folders = sorted(course.glob(str(pattern.relative_to(course))))
    students = [f.parent.name for f in folders if f.is_dir()]
    if not students:
        raise LookupError(f"no submissions of {assignment} in {pattern.parent.parent.relative_to(course)}/: "
                          f"collect them first (`nbgrader collect {assignment}`)")
    if only:
        wanted = set(only)
        unknown = sorted(wanted - set(students))
        if unknown:
            raise LookupError(f"no submission of {assignment} from {', '.join(unknown)} in "
                              f"{pattern.parent.parent.relative_to(course)}/")
        students = [s for s in students if s in wanted]
    return students
