"""The instructor guide (instructors.md) works as written: its commands run, in order, and grade a class.

Every ```bash block of the guide runs as it is, with four substitutions for what a test cannot
have: the public repository (this one's committed state), the private repository (a bare repository
in a temporary folder), the exchange folder, and the PostgreSQL server (a real one, started
for the test). Between releasing and collecting, three students fetch the assignment, work on
it and submit it with nbgrader's student commands; at the end they fetch their feedback.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from support import scaffold
from support.adversarial import ASSIGNMENT, FULL, NOTEBOOK, SOFTMAX_POINTS, cell, write
from support.loadtest import WRONG_SOFTMAX

from softgrad import about
from softgrad.grader import report

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("classgrade")]

GUIDE = REPO / "instructors.md"
PUBLIC = f"{about.REPOSITORY}.git"
PRIVATE = "git@github.com:your-university/softmax-2026-private.git"
EXCHANGE = "/srv/nbgrader/exchange"
POSTGRES = "postgresql://grader@dbhost/softmax_2026"
COURSE_ID = "softmax-2026"
STUDENTS = {"ada": FULL, "bob": FULL - SOFTMAX_POINTS, "cy": 0.0}


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def test_the_guide_has_every_step_as_a_command():
    commands = "\n".join(bash_blocks(about.fill(GUIDE.read_text())))
    for step in ("git remote add origin", "nbgrader generate_assignment", "nbgrader release_assignment",
                 "nbgrader collect", "softgrad grade ps1_softmax\n", "--force", "--feedback",
                 "nbgrader release_feedback", "nbgrader export", "--db postgresql://"):
        assert step in commands + "\n", f"the guide's commands lack {step!r}"


def _run(command: list[str] | str, cwd: Path, env: dict, shell: bool = False) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command] if shell else command, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}\nfailed in {cwd} ({done.returncode}):\n{done.stdout[-3000:]}\n" \
                                 f"{done.stderr[-3000:]}"
    return done.stdout


def _students_submit(tmp: Path, env: dict, exchange: Path) -> None:
    """Three students fetch ps1, write their answers and submit, with nbgrader's student commands."""
    answers = scaffold.solution_sources(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)
    for student in STUDENTS:
        home = tmp / "home" / student
        home.mkdir(parents=True)
        flags = [f"--course={COURSE_ID}", f"--Exchange.root={exchange}"]
        _run([sys.executable, "-m", "nbgrader", "fetch_assignment", ASSIGNMENT, *flags], home, env)
        notebook = home / ASSIGNMENT / NOTEBOOK
        nb = scaffold.fill_notebook(notebook, {} if student == "cy" else answers)
        if student == "bob":
            cell(nb, "softmax").source = WRONG_SOFTMAX
        write(nb, home / ASSIGNMENT)
        _run([sys.executable, "-m", "nbgrader", "submit", ASSIGNMENT, f"--student={student}", *flags], home, env)


def test_the_guide_runs_from_a_fork_to_feedback_and_grades(tmp_path):
    from support import postgres

    if postgres.find_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: ./course test installs it (apt install postgresql)")
        pytest.skip("PostgreSQL is not installed (Debian: sudo apt install postgresql)")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")
    exchange = tmp_path / "exchange"
    private = tmp_path / "private.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(private)], check=True)
    # "the public repository": this one's committed state as the branch main of a bare repository
    # (whatever this checkout's branch is called, or a detached HEAD in CI)
    public = tmp_path / "public.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(public)], check=True)
    subprocess.run(["git", "-C", str(REPO), "push", "--quiet", str(public), "HEAD:refs/heads/main"], check=True)
    server = postgres.start_server()
    try:
        database = server.create_database("softmax_2026")
        substitutions = {PUBLIC: str(public), PRIVATE: str(private), EXCHANGE: str(exchange), POSTGRES: database}
        blocks = bash_blocks(about.fill(GUIDE.read_text()))
        assert blocks and "git clone" in blocks[0], "the guide starts with the private copy of the course"
        course = tmp_path / "softmax-2026"
        for block in blocks:
            for placeholder, value in substitutions.items():
                block = block.replace(placeholder, value)
            if "nbgrader collect" in block:
                _students_submit(tmp_path, env, exchange)
            if block.startswith("git clone"):  # the fork: cloned next to the other folders, then entered
                _run(block, tmp_path, env, shell=True)
            else:
                _run(block, course, env, shell=True)
        # the graded class is right in SQLite and in PostgreSQL
        for db_url in (None, database):
            scores = {s: r.auto_score for s, r in report.read_results(course, ASSIGNMENT, db_url=db_url).items()}
            assert scores == STUDENTS, f"grades in {db_url or 'gradebook.db'}: {scores}"
    finally:
        server.stop()

    log = subprocess.run(["git", "--git-dir", str(private), "log", "--oneline", "-1", "main"],
                         capture_output=True, text=True)
    assert log.returncode == 0 and log.stdout.strip(), "nothing was pushed to the private repository"
    with (course / "reports" / ASSIGNMENT / "grades.csv").open() as handle:
        assert {row["student"]: float(row["score"]) for row in csv.DictReader(handle)} == STUDENTS
    with (course / "all_grades.csv").open() as handle:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)
                    if row["assignment"] == ASSIGNMENT}
    assert exported == STUDENTS
    # each student fetches their own feedback from the exchange
    for student, score in STUDENTS.items():
        home = tmp_path / "home" / student
        _run([sys.executable, "-m", "nbgrader", "fetch_feedback", ASSIGNMENT, f"--course={COURSE_ID}",
              f"--Exchange.root={exchange}", f"--student={student}"], home, env)
        pages = list((home / ASSIGNMENT / "feedback").rglob("softmax.html"))
        assert pages, f"{student} found no feedback"
        assert f"{score:g}" in pages[0].read_text()
