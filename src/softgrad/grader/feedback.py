"""Step 5 of grading a class: nbgrader's HTML feedback for the students graded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from softgrad.grader.course import course_config
from softgrad.progress import Progress

__all__ = ["generate_feedback"]


def generate_feedback(course: Path, assignment: str, db_url: str, overrides: Sequence[str],
                       students: list[str], progress: TextIO | None) -> list[str]:
    """nbgrader's feedback (HTML) for the students graded in this run, regenerated."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    config = course_config(course, overrides)
    config.CourseDirectory.db_url = db_url
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    written = []
    bar = Progress(len(students), progress)
    for student in sorted(students):
        outcome = api.generate_feedback(assignment, student, force=True)
        if outcome["success"]:
            written.append(student)
        bar.step(f"feedback for {student}" + ("" if outcome["success"] else ": FAILED (see nbgrader's log)"))
    return written
