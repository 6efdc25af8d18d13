"""softgrad grade: a class graded in parallel on Dask, every grade recorded exactly once, whatever dies.

One small class of problem set 1 (right, wrong, blank, broken, and two submissions that kill
the process grading them) is graded on two local workers; the tests check each grade, the
ledger, the CSV, a re-run, a regrade, a killed coordinator, an existing Dask scheduler given
by address, and a real PostgreSQL gradebook.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from nbgrader.api import Gradebook
from support import scaffold
from support.adversarial import ASSIGNMENT, CASES, FULL, NOTEBOOK, SOFTMAX_POINTS, cell, write
from support.loadtest import _wrong

from softgrad.grader import classgrade, record, report
from softgrad.grader import course as grader_course

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("classgrade")]

# The kernel's parent is the grading worker: killing it is what an out-of-memory killer or a
# crashed machine does to a worker mid-submission.
# The grading process that started the kernel (jupyter_client tells every kernel its pid; the kernel's
# parent process is a template, see softgrad.grader.template): what a submission that kills its grader kills.
GRADER = "int(os.environ['JPY_PARENT_PID'])"
KILL_THE_WORKER = f"import os, signal\nos.kill({GRADER}, signal.SIGKILL)\n"


def kill_the_worker_once(flag: Path) -> str:
    return (f"import os, pathlib, signal\nif not pathlib.Path({str(flag)!r}).exists():\n"
            f"    pathlib.Path({str(flag)!r}).write_text('killed')\n    os.kill({GRADER}, signal.SIGKILL)\n")


def new_course(workdir: Path, db: str | None = None) -> tuple[Path, Path, dict[str, str]]:
    course = scaffold.make_course(workdir, REPO, [ASSIGNMENT])
    if db:  # PostgreSQL checks that each assignment belongs to a course: nbgrader needs the course's id
        with (course / "nbgrader_config.py").open("a") as config:
            config.write('\nc.CourseDirectory.course_id = "softmax-2026"\n')
        scaffold.run_nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", "--db", db)
    else:
        scaffold.generate_assignment(course, ASSIGNMENT)
    answers = scaffold.solution_sources(REPO / "solutions" / ASSIGNMENT / NOTEBOOK)
    return course, course / "exercises" / ASSIGNMENT, answers


def submit_right(course: Path, release: Path, answers: dict[str, str], student: str, prefix: str = "") -> None:
    nb = scaffold.fill_notebook(release / NOTEBOOK, answers)
    cell(nb, "softmax").source = prefix + cell(nb, "softmax").source
    write(nb, course / "submitted" / student / ASSIGNMENT)


def ledger_rows(course: Path) -> dict[str, dict]:
    with sqlite3.connect(course / "gradebook.db") as db:
        db.row_factory = sqlite3.Row
        return {row["student"]: dict(row) for row in db.execute(f"SELECT * FROM {record.LEDGER}")}


def grades_per_cell(course: Path) -> list[tuple]:
    """(student, cell, number of grade rows, auto_score, cell type) for every graded cell in the gradebook."""
    with sqlite3.connect(course / "gradebook.db") as db:
        return db.execute(
            "SELECT s.student_id, c.name, COUNT(g.id), MAX(g.auto_score), MAX(gc.cell_type) FROM grade g "
            "JOIN submitted_notebook n ON g.notebook_id = n.id JOIN submitted_assignment s ON n.assignment_id = s.id "
            "JOIN base_cell c ON g.cell_id = c.id JOIN grade_cells gc ON gc.id = c.id "
            "GROUP BY s.student_id, c.name").fetchall()


EXPECTED = {"right_1": FULL, "right_2": FULL, "wrong": FULL - SOFTMAX_POINTS, "blank": 0.0, "renamed": FULL,
            "corrupted": 0.0, "killed_once": FULL, "kills_every_time": 0.0}
FAILS = {"corrupted", "kills_every_time"}


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    """The class, graded once on two local workers."""
    workdir = tmp_path_factory.mktemp("classgrade")
    course, release, answers = new_course(workdir / "course")
    for student in ("right_1", "right_2"):
        submit_right(course, release, answers, student)
    _wrong(scaffold.fill_notebook(release / NOTEBOOK, answers), course / "submitted" / "wrong" / ASSIGNMENT)
    write(scaffold.fill_notebook(release / NOTEBOOK, {}), course / "submitted" / "blank" / ASSIGNMENT)
    cases = {case.name: case for case in CASES}
    for student, case in (("renamed", "renamed_notebook"), ("corrupted", "corrupted_notebook")):
        cases[case].build(scaffold.fill_notebook(release / NOTEBOOK, answers),
                          course / "submitted" / student / ASSIGNMENT)
    submit_right(course, release, answers, "killed_once", kill_the_worker_once(workdir / "killed.flag"))
    submit_right(course, release, answers, "kills_every_time", KILL_THE_WORKER)
    run = classgrade.grade_class(course, ASSIGNMENT, workers=2)
    return course, run, workdir


def test_every_student_gets_the_expected_grade(small_class):
    course, run, workdir = small_class
    results = report.read_results(course, ASSIGNMENT)
    got = {student: results[student].auto_score for student in EXPECTED}
    assert got == EXPECTED, run.summary()
    assert sorted(run.graded) == sorted(set(EXPECTED) - FAILS)
    assert set(run.failed) == FAILS
    assert (workdir / "killed.flag").exists(), "the worker-killing submission never ran: the test proves nothing"


def test_a_submission_whose_worker_died_is_graded_again_once(small_class):
    course, run, _ = small_class
    rows = ledger_rows(course)
    assert rows["killed_once"]["state"] == "graded" and rows["killed_once"]["attempts"] == 1
    assert "died every time" in run.failed["kills_every_time"]
    assert rows["kills_every_time"]["state"] == "failed" and "died every time" in rows["kills_every_time"]["detail"]


def test_each_cell_of_each_student_has_exactly_one_grade(small_class):
    course, _, _ = small_class
    rows = grades_per_cell(course)
    assert {student for student, *_ in rows} == set(EXPECTED)
    duplicated = [r for r in rows if r[2] != 1]
    ungraded = [r for r in rows if r[3] is None and r[4] == "code"]  # written answers wait for a person
    assert not duplicated, f"cells with more than one grade: {duplicated}"
    assert not ungraded, f"code cells left without an automatic score: {ungraded}"


def test_the_csv_and_the_report_list_every_student(small_class):
    course, run, _ = small_class
    with run.csv.open() as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert {s: float(r["score"]) for s, r in rows.items()} == EXPECTED
    assert {s for s, r in rows.items() if r["status"] == "failed"} == FAILS
    assert "not a readable" in rows["corrupted"]["detail"] or "JSON" in rows["corrupted"]["detail"], rows["corrupted"]
    report = run.report.read_text()
    assert all(f"| {student} |" in report for student in EXPECTED)
    assert "submitted as 'softmax (1).ipynb'" in report


def test_a_rerun_grades_only_what_is_not_finished(small_class):
    course, _, _ = small_class
    before = ledger_rows(course)
    again = classgrade.grade_class(course, ASSIGNMENT, workers=2)
    after = ledger_rows(course)
    assert sorted(again.skipped) == sorted(set(EXPECTED) - FAILS)
    assert set(again.graded) | set(again.failed) == FAILS, "only the failed submissions are tried again"
    for student in set(EXPECTED) - FAILS:
        assert after[student] == before[student], f"{student} was graded again"
    assert all(after[s]["attempts"] == 2 for s in FAILS)


def test_a_changed_resubmission_and_force_are_graded_again(small_class):
    course, _, _ = small_class
    notebook = course / "submitted" / "wrong" / ASSIGNMENT / NOTEBOOK
    nb = json.loads(notebook.read_text())
    right = json.loads((course / "submitted" / "right_1" / ASSIGNMENT / NOTEBOOK).read_text())
    notebook.write_text(json.dumps(right))  # "wrong" re-submits the right answer
    run = classgrade.grade_class(course, ASSIGNMENT, students=["wrong", "right_2"], workers=2)
    assert run.graded == ["wrong"] and run.skipped == ["right_2"]
    assert run.workers == 1, "two workers for the one submission to grade"
    assert report.read_results(course, ASSIGNMENT)["wrong"].auto_score == FULL
    forced = classgrade.grade_class(course, ASSIGNMENT, students=["right_2"], force=True, workers=1,
                                    feedback=True)
    assert forced.graded == ["right_2"] and ledger_rows(course)["right_2"]["attempts"] == 2
    page = (course / "feedback" / "right_2" / ASSIGNMENT / "softmax.html").read_text()
    assert f"{FULL:g}" in page and "### BEGIN HIDDEN TESTS" not in page
    notebook.write_text(json.dumps(nb))
    assert classgrade.grade_class(course, ASSIGNMENT, students=["wrong"], workers=1).graded == ["wrong"]
    assert report.read_results(course, ASSIGNMENT)["wrong"].auto_score == EXPECTED["wrong"]


def test_a_broken_resubmission_keeps_nothing_of_the_earlier_grade(small_class):
    """Zeros in the gradebook, and no earlier notebook, hand-given score or feedback to contradict them."""
    course, _, _ = small_class
    student = "right_1"
    first = classgrade.grade_class(course, ASSIGNMENT, students=[student], force=True, workers=1, feedback=True)
    assert first.feedback == [student]
    with Gradebook(grader_course.course_db_url(course)) as book:  # the instructor corrects a cell by hand
        grade = book.find_submission(ASSIGNMENT, student).notebooks[0].grades[0]
        grade.manual_score = grade.max_score
        book.db.commit()
    (course / "submitted" / student / ASSIGNMENT / NOTEBOOK).write_text('{"cells": [')  # a broken re-submission
    run = classgrade.grade_class(course, ASSIGNMENT, students=[student], workers=1, feedback=True)
    assert list(run.failed) == [student] and run.feedback == []
    with Gradebook(grader_course.course_db_url(course)) as book:
        assert book.find_submission(ASSIGNMENT, student).score == 0
    for output in ("autograded", "feedback"):
        assert not (course / output / student / ASSIGNMENT).exists(), f"an earlier run's {output} folder stayed"


def test_the_cluster_starts_before_the_course_is_read_with_no_more_workers_than_needed(small_class, monkeypatch):
    """A local cluster starts while the coordinator loads nbgrader and reads the course, so that its workers are
    ready sooner; two workers asked for and one submission to grade start one worker."""
    course, _, _ = small_class
    order = []

    class Recorded(classgrade.GradingCluster):
        def __init__(self, **options):
            order.append(("cluster", options["expected"]))
            super().__init__(**options)

    make_package = classgrade.make_package
    monkeypatch.setattr(classgrade, "GradingCluster", Recorded)
    monkeypatch.setattr(classgrade, "make_package", lambda *args: order.append("package") or make_package(*args))
    run = classgrade.grade_class(course, ASSIGNMENT, students=["blank"], force=True, workers=2)
    assert order == [("cluster", 1), "package"]
    assert run.graded == ["blank"] and run.workers == 1
    assert report.read_results(course, ASSIGNMENT)["blank"].auto_score == EXPECTED["blank"]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(status.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_coordinator_loses_nothing_and_the_rerun_finishes(tmp_path):
    course, release, answers = new_course(tmp_path / "course")
    students = [f"student_{i}" for i in range(8)]
    for student in students:
        submit_right(course, release, answers, student)
    command = [sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(course), "--workers", "2",
               "--quiet"]
    coordinator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
    deadline = time.monotonic() + 300
    graded: dict[str, dict] = {}
    while time.monotonic() < deadline and len(graded) < 2:
        time.sleep(0.5)
        if (course / "gradebook.db").exists():
            try:
                graded = ledger_rows(course)
            except sqlite3.OperationalError:  # the ledger table is not there yet
                graded = {}
        assert coordinator.poll() is None, "the run ended before it could be killed"
    assert len(graded) >= 2, "nothing was graded within 5 minutes"
    helpers = _descendants(coordinator.pid)
    coordinator.send_signal(signal.SIGKILL)
    coordinator.wait()
    first = ledger_rows(course)
    assert len(first) < len(students), "the run finished before it was killed: the test proves nothing"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_alive(pid) for pid in helpers):
        time.sleep(0.5)
    assert not [pid for pid in helpers if _alive(pid)], "workers or kernels outlived the killed coordinator"

    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"already graded {len(first)}" in done.stdout
    final = ledger_rows(course)
    assert set(final) == set(students)
    for student, row in first.items():
        assert final[student] == row, f"{student} was graded again after the restart"
    assert all(row["state"] == "graded" and row["attempts"] == 1 for row in final.values())
    assert {s: r.auto_score for s, r in report.read_results(course, ASSIGNMENT).items()} == dict.fromkeys(
        students, FULL)
    assert all(row[2] == 1 for row in grades_per_cell(course))
    assert not list((course / "autograded").glob("*/.*")), "a half-written autograded folder was left behind"


def test_grades_on_an_existing_dask_scheduler_whose_workers_share_no_files(tmp_path):
    course, release, answers = new_course(tmp_path / "course")
    submit_right(course, release, answers, "on_a_cluster")
    _wrong(scaffold.fill_notebook(release / NOTEBOOK, answers), course / "submitted" / "wrong" / ASSIGNMENT)
    dask = str(Path(sys.executable).parent / "dask")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    scheduler_file = tmp_path / "scheduler.json"
    processes = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0",
                                   "--no-dashboard"], cwd=elsewhere, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        processes.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--preload", "softgrad.grader.warm"],
                                          cwd=elsewhere, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env=os.environ | {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}))
        run = classgrade.grade_class(course, ASSIGNMENT, scheduler=address)
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=30)
    assert sorted(run.graded) == ["on_a_cluster", "wrong"]
    results = report.read_results(course, ASSIGNMENT)
    assert results["on_a_cluster"].auto_score == FULL and results["wrong"].auto_score == FULL - SOFTMAX_POINTS
    workers = {row["worker"] for row in ledger_rows(course).values()}
    assert len(workers) == 1 and str(os.getpid()) not in next(iter(workers))


def test_a_postgresql_gradebook_on_a_real_server(tmp_path):
    from support import postgres

    if postgres.find_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: ./course test installs it (apt install postgresql)")
        pytest.skip("PostgreSQL is not installed (Debian: sudo apt install postgresql)")
    server = postgres.start_server()
    try:
        url = server.create_database("softmax_course")
        course, release, answers = new_course(tmp_path / "course", db=url)
        submit_right(course, release, answers, "ada")
        _wrong(scaffold.fill_notebook(release / NOTEBOOK, answers), course / "submitted" / "bob" / ASSIGNMENT)
        write(scaffold.fill_notebook(release / NOTEBOOK, {}), course / "submitted" / "cy" / ASSIGNMENT)
        done = subprocess.run([sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(course),
                               "--db", url, "--quiet"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "graded 3, failed 0" in done.stdout
        assert not (course / "gradebook.db").exists(), "the grades went to SQLite instead of PostgreSQL"
        scores = {s: r.auto_score for s, r in report.read_results(course, ASSIGNMENT, db_url=url).items()}
        assert scores == {"ada": FULL, "bob": FULL - SOFTMAX_POINTS, "cy": 0.0}
        again = classgrade.grade_class(course, ASSIGNMENT, db_url=url, students=["ada"], force=True, workers=1)
        assert again.graded == ["ada"]
        from nbgrader.api import Gradebook
        from sqlalchemy import text

        with Gradebook(url) as gradebook:
            attempts = dict(gradebook.db.execute(text(f"SELECT student, attempts FROM {record.LEDGER}")).all())
        assert attempts == {"ada": 2, "bob": 1, "cy": 1}
    finally:
        server.stop()


def test_the_command_says_what_is_wrong(tmp_path):
    course, release, answers = new_course(tmp_path / "course")
    empty = subprocess.run([sys.executable, "-m", "softgrad", "grade", ASSIGNMENT, "--course", str(course)],
                           capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and "collect them first (`nbgrader collect ps1_softmax`)" in empty.stderr
    submit_right(course, release, answers, "ada")

    def grade(*args):
        return subprocess.run([sys.executable, "-m", "softgrad", "grade", *args, "--course", str(course)],
                              capture_output=True, text=True, timeout=120)

    unknown = grade("ps9_nothing")
    assert unknown.returncode == 2 and "'ps9_nothing' is not in the gradebook" in unknown.stderr
    assert "nbgrader generate_assignment ps9_nothing" in unknown.stderr
    nobody = grade(ASSIGNMENT, "--student", "ghost")
    assert nobody.returncode == 2 and "no submission of ps1_softmax from ghost" in nobody.stderr
    setting = grade(ASSIGNMENT, "--", "timeout=5")
    assert setting.returncode == 2 and "--Class.trait=value" in setting.stderr
    no_course_id = grade(ASSIGNMENT, "--db", "postgresql://grader:secret@dbhost/softmax")
    assert no_course_id.returncode == 2 and "c.CourseDirectory.course_id" in no_course_id.stderr
    assert "secret" not in no_course_id.stderr, "a password was printed"
    workers = grade(ASSIGNMENT, "--workers", "0")
    assert workers.returncode == 2 and "--workers must be at least 1" in workers.stderr
