"""The class grader's steps (intake, grade, record, report), each helper alone, without grading anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import scaffold

from softgrad.grader import classgrade, grade, intake, record
from softgrad.grader import course as grader_course


def test_a_submission_digest_changes_with_any_file_and_not_with_order():
    files = {"softmax.ipynb": b'{"cells": []}', "timestamp.txt": b"2026-11-23 10:00:00"}
    same = dict(reversed(list(files.items())))
    assert intake.submission_digest(files) == intake.submission_digest(same)
    assert intake.submission_digest(files) != intake.submission_digest({**files, "timestamp.txt": b"later"})
    assert intake.submission_digest(files) != intake.submission_digest(
        {"softmax.ipynb ": files["softmax.ipynb"], "timestamp.txt": files["timestamp.txt"]})


def test_submission_files_leave_out_checkpoints_and_refuse_data_dumps(tmp_path, monkeypatch):
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "softmax-checkpoint.ipynb").write_text("{}")
    (tmp_path / "softmax.ipynb").write_text("{}")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.npy").write_bytes(b"0" * 100)
    assert sorted(intake.submission_files(tmp_path)) == ["data/x.npy", "softmax.ipynb"]
    monkeypatch.setattr(intake, "MAX_SUBMISSION_BYTES", 50)
    with pytest.raises(ValueError, match="holds more than .* a submission is notebooks and small files"):
        intake.submission_files(tmp_path)


def test_course_config_takes_nbgrader_settings_and_rejects_anything_else(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text('c = get_config()\nc.SafeExecute.timeout = 60\n')
    config = grader_course.course_config(tmp_path, ["--SafeExecute.timeout=5", "--CourseDirectory.course_id=x"])
    # command-line values stay strings until a trait reads them, as on nbgrader's command line
    assert str(config.SafeExecute.timeout) == "5" and str(config.CourseDirectory.course_id) == "x"
    assert config.CourseDirectory.root == str(tmp_path)
    with pytest.raises(ValueError, match="--Class.trait=value"):
        grader_course.course_config(tmp_path, ["--timeout", "5"])
    assert grader_course.course_db_url(tmp_path) == f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert grader_course.course_db_url(tmp_path, "postgresql://a@b/c") == "postgresql://a@b/c"
    (tmp_path / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.db_url = "sqlite:////x.db"\n')
    assert grader_course.course_db_url(tmp_path) == "sqlite:////x.db"


def _gradebook_url(path: Path) -> str:
    """A new SQLite gradebook's URL, already stamped with a schema version (so nbgrader runs no alembic)."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES ('stamped')")
    connection.close()
    return f"sqlite:///{path}"


def test_gradebooks_of_one_url_share_an_engine_and_its_compiled_statements(tmp_path, monkeypatch):
    """share_gradebook_engines: nbgrader compiles its statements once per process, and closes every connection."""
    from nbgrader import api

    monkeypatch.setattr(api, "create_engine", api.create_engine)  # undone after the test
    grader_course.share_gradebook_engines()
    grader_course.share_gradebook_engines()  # twice changes nothing
    url, other = _gradebook_url(tmp_path / "a.db"), _gradebook_url(tmp_path / "b.db")
    with api.Gradebook(url) as gradebook:
        gradebook.add_student("ada")
        first = gradebook.engine
        compiled = len(first._compiled_cache)
    assert first.pool.checkedout() == 0, "a closed gradebook left a connection open"
    with api.Gradebook(url) as gradebook:
        assert gradebook.engine is first
        assert [student.id for student in gradebook.students] == ["ada"]
        gradebook.add_student("grace")
        grown = len(first._compiled_cache) - compiled
    with api.Gradebook(other) as gradebook:
        assert gradebook.engine is not first and gradebook.students == []
    assert grown <= 1, f"{grown} statements compiled again for the second opening"
    with_options = api.create_engine(url, connect_args={"timeout": 5})  # options that are not hashable
    assert api.create_engine(url, connect_args={"timeout": 5}) is with_options and with_options is not first
    (tmp_path / "a.db").unlink()  # a new file at the same address is a new gradebook
    _gradebook_url(tmp_path / "a.db")
    with api.Gradebook(url) as gradebook:
        assert gradebook.students == []


def test_only_a_worker_s_scratch_gradebook_commits_without_waiting_for_the_disk(tmp_path, monkeypatch):
    """scratch_gradebook: the worker's private copy is thrown away with it; the class's gradebook stays durable."""
    from nbgrader import api
    from sqlalchemy import text

    monkeypatch.setattr(api, "create_engine", api.create_engine)  # undone after the test
    monkeypatch.setattr(api.Gradebook, "__init__", api.Gradebook.__init__)
    grader_course.share_gradebook_engines()
    scratch, kept = _gradebook_url(tmp_path / "scratch.db"), _gradebook_url(tmp_path / "class.db")
    grader_course.scratch_gradebook(scratch)
    synchronous = {}
    for url in (scratch, kept):
        with api.Gradebook(url) as gradebook:
            gradebook.add_student("ada")
        for _ in range(2):  # every connection, not only the first
            with api.Gradebook(url) as gradebook:
                synchronous.setdefault(url, []).append(gradebook.db.execute(text("PRAGMA synchronous")).scalar())
    assert synchronous == {scratch: [0, 0], kept: [2, 2]}, "0: OFF, 2: FULL (SQLite's default)"
    with api.Gradebook(scratch) as gradebook:
        assert [student.id for student in gradebook.students] == ["ada"], "what was committed is there"


def test_a_scratch_gradebook_opened_again_is_not_checked_again(tmp_path, monkeypatch):
    """scratch_gradebook: nbgrader's checks that the tables and the course exist run at the first opening of the
    worker's copy only (a dozen openings per submission); the class's gradebook is checked every time."""
    from nbgrader import api
    from sqlalchemy import event

    monkeypatch.setattr(api, "create_engine", api.create_engine)  # undone after the test
    monkeypatch.setattr(api.Gradebook, "__init__", api.Gradebook.__init__)
    grader_course.share_gradebook_engines()
    scratch, kept = _gradebook_url(tmp_path / "scratch.db"), _gradebook_url(tmp_path / "class.db")
    grader_course.scratch_gradebook(scratch)
    grader_course.scratch_gradebook(scratch)  # twice changes nothing
    statements = {}
    for url in (scratch, kept):
        with api.Gradebook(url, course_id="softmax101") as gradebook:  # the first opening creates the course
            gradebook.add_student("ada")
            full = set(vars(gradebook))
        seen = []
        event.listen(api.create_engine(url, echo=False, future=True), "before_cursor_execute",
                     lambda *args, seen=seen: seen.append(args[2]))
        with api.Gradebook(url, course_id="softmax101") as gradebook:
            statements[url] = len(seen)
            assert set(vars(gradebook)) == full, "opened quickly, it has what nbgrader's own opening gives it"
            assert gradebook.course_id == "softmax101"
            assert [student.id for student in gradebook.students] == ["ada"]
            gradebook.add_student("grace")
        with api.Gradebook(url, course_id="another") as gradebook:  # another course is checked (and created)
            assert gradebook.db.query(api.Course).filter(api.Course.id == "another").count() == 1
    assert statements[scratch] == 0, "the scratch gradebook was checked again"
    assert statements[kept] > 0, "the class's gradebook must be checked at every opening"


def test_the_reports_read_an_autograded_notebook_as_nbformat_does(tmp_path):
    """report.autograded_notebooks: each graded cell's printed lines and traceback, and the findings, as
    nbformat.read gives them (on disk a multi-line output is a list of lines); a notebook that cannot be read
    is left out, as a missing one is."""
    import nbformat

    from softgrad.grader import report

    nb = nbformat.v4.new_notebook(metadata={"softgrad": {"findings": [{"rule": "patches-library", "cell": "softmax",
                                                                        "line": 2, "detail": "np.allclose"}]}})
    answer = nbformat.v4.new_code_cell("print('one')\nprint('two')", metadata={"nbgrader": {"grade_id": "softmax"}})
    answer.outputs = [nbformat.v4.new_output("stream", name="stdout", text="one\ntwo\n")]
    test = nbformat.v4.new_code_cell("assert False", metadata={"nbgrader": {"grade_id": "test-softmax"}})
    test.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="wrong",
                                           traceback=["\x1b[0;31mAssertionError\x1b[0m", "wrong"])]
    nb.cells = [answer, test, nbformat.v4.new_code_cell("x = 1")]
    folder = tmp_path / "autograded" / "ada" / "ps1"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "softmax.ipynb")
    assert isinstance(json.loads((folder / "softmax.ipynb").read_text())["cells"][0]["outputs"][0]["text"], list)
    (tmp_path / "autograded" / "bob" / "ps1").mkdir(parents=True)
    (tmp_path / "autograded" / "bob" / "ps1" / "softmax.ipynb").write_text('{"cells": [')

    found = report.autograded_notebooks(tmp_path, "ps1")
    assert list(found) == [folder / "softmax.ipynb"]
    expected = {c.metadata["nbgrader"]["grade_id"]: report.cell_output_text(c)
                for c in nbformat.read(folder / "softmax.ipynb", as_version=4).cells if "nbgrader" in c.metadata}
    assert found[folder / "softmax.ipynb"].outputs == expected == {"softmax": "one\ntwo\n",
                                                                   "test-softmax": "AssertionError\nwrong"}
    assert report.read_findings(tmp_path, "ps1") == {"ada": [{**nb.metadata["softgrad"]["findings"][0],
                                                             "notebook": "softmax.ipynb"}]}


def test_a_submission_is_recorded_in_statements_that_do_not_grow_with_its_cells(tmp_path, monkeypatch):
    """record_grades reads a submission's grades with their cells (code, written, task) together, not one
    statement per cell: the coordinator records every submission of the class, on the cores that grade."""
    from nbgrader import api
    from sqlalchemy import event

    monkeypatch.setattr(api, "create_engine", api.create_engine)  # undone after the test
    grader_course.share_gradebook_engines()
    url = _gradebook_url(tmp_path / "gradebook.db")
    with api.Gradebook(url) as gradebook:
        gradebook.add_assignment("ps")
        gradebook.add_notebook("nb", "ps")
        for i in range(8):
            gradebook.add_grade_cell(f"code{i}", "nb", "ps", max_score=1, cell_type="code")
        for i in range(3):
            gradebook.add_grade_cell(f"written{i}", "nb", "ps", max_score=2, cell_type="markdown")
            gradebook.add_task_cell(f"task{i}", "nb", "ps", max_score=3, cell_type="markdown")
            gradebook.add_solution_cell(f"answer{i}", "nb", "ps")
        gradebook.add_student("ada")
    # code0 and code1 are not in the worker's answer: a code cell without a score is a 0, a written one waits
    sent = {"timestamp": None, "seconds": 1.0, "worker": "w", "notebooks": {"nb": {
        "grades": {**{f"code{i}": 1.0 for i in range(2, 8)}, "written0": 2.0, "task0": 1.5},
        "comments": {"answer0": "No response.", "task1": "see the task"}, "late_penalty": None}}}
    with api.Gradebook(url) as gradebook:
        gradebook.add_submission("ps", "ada")  # as an earlier run left it: the path that reads the most
        record.ensure_ledger(gradebook)
        statements = []
        event.listen(gradebook.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        score = record.record_grades(gradebook, "ps", "ada", sent, digest="d", run_id="r")
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) <= 8, f"{len(reads)} reads to record 14 graded cells:\n" + "\n".join(r[:150] for r in reads)
    with api.Gradebook(url) as gradebook:
        notebook, = gradebook.find_submission("ps", "ada").notebooks
        grades = {grade.name: (grade.auto_score, grade.needs_manual_grade) for grade in notebook.grades}
        comments = {comment.name: comment.auto_comment for comment in notebook.comments}
    assert grades == {"code0": (0.0, False), "code1": (0.0, False), **{f"code{i}": (1.0, False) for i in range(2, 8)},
                      "written0": (2.0, False), "written1": (None, True), "written2": (None, True),
                      "task0": (1.5, False), "task1": (None, True), "task2": (None, True)}
    assert comments == {"answer0": "No response.", "answer1": None, "answer2": None, "task0": None,
                        "task1": "see the task", "task2": None}
    assert score == 6.0 + 2.0 + 1.5


def test_messages_never_show_a_database_password():
    assert grader_course.safe_url("postgresql://grader:s3cret@dbhost/course") == "postgresql://grader:***@dbhost/course"
    assert grader_course.safe_url("postgresql://grader@dbhost/course") == "postgresql://grader@dbhost/course"
    assert grader_course.safe_url("sqlite:////tmp/gradebook.db") == "sqlite:////tmp/gradebook.db"


def test_the_failure_reason_is_the_line_that_explains(tmp_path):
    log = ("[AutogradeApp | ERROR] There was an error processing assignment: /x/submitted/ada/ps1\n"
           "Traceback (most recent call last):\n  File 'x', line 1\n"
           "nbformat.reader.NotJSONError: Notebook does not appear to be JSON: '{\"cells\": ['\n"
           "[AutogradeApp | ERROR] Please see the the above traceback for details on the specific errors\n")
    assert grade.failure_from_log(log) == ("nbgrader could not grade it: nbformat.reader.NotJSONError: "
                                               "Notebook does not appear to be JSON: '{\"cells\": ['")
    assert "no reason given" in grade.failure_from_log("")


def test_in_a_whole_class_log_each_student_gets_the_reason_of_their_own_submission(tmp_path):
    def failed(student: str, error: str) -> str:
        return (f"[AutogradeApp | ERROR] There was an error processing assignment: "
                f"{tmp_path / 'submitted' / student / 'ps1'}\n{error}\n[AutogradeApp | INFO] Next\n")

    log = failed("ada", "RuntimeError: Kernel died before replying to kernel_info") + failed("bob", "KeyError: 'x'")
    assert scaffold._failure_reason(log, tmp_path, "ps1", "ada").endswith("RuntimeError: Kernel died before "
                                                                           "replying to kernel_info")
    assert scaffold._failure_reason(log, tmp_path, "ps1", "bob").endswith("KeyError: 'x'")
    assert "see reports/autograde.log" in scaffold._failure_reason(log, tmp_path, "ps1", "cy")


def test_an_autograded_folder_is_replaced_whole_and_leftovers_are_removed(tmp_path):
    folder = tmp_path / "autograded" / "ada" / "ps1_softmax"
    folder.mkdir(parents=True)
    (folder / "old.ipynb").write_text("old")
    for leftover in (".ps1_softmax.deadbeef.partial", ".ps1_softmax.deadbeef.old"):  # killed mid-write or mid-swap
        folder.with_name(leftover).mkdir()
    record.write_autograded(folder, {"softmax.ipynb": b"new", "sub/timestamp.txt": b"t"}, "run1")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "softmax.ipynb", "sub/timestamp.txt"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["ps1_softmax"]


def test_a_worker_keeps_only_the_latest_workspaces(tmp_path, monkeypatch):
    """A long-lived worker of a shared scheduler gets a new package every run; old ones are removed."""
    monkeypatch.setattr(grade, "_WORKSPACES", {})
    roots = [tmp_path / f"run{i}" for i in range(grade._WORKSPACES_KEPT + 2)]
    for i, root in enumerate(roots):
        root.mkdir()
        grade._remember(f"digest{i}", grade._Workspace(root, "sqlite://", None))
    assert [r.exists() for r in roots] == [False, False] + [True] * grade._WORKSPACES_KEPT
    assert list(grade._WORKSPACES) == [f"digest{i}" for i in range(2, len(roots))]


def test_the_summary_says_what_happened():
    run = classgrade.ClassRun("ps1_softmax", graded=["ada", "bob"], failed={"cy": "not JSON"}, skipped=["dee"],
                              flagged=["bob"], seconds=150.0, workers=2)
    text = run.summary()
    assert text.splitlines()[0] == ("ps1_softmax: graded 2, failed 1, already graded 1, flagged 1, in 2 min 30 s "
                                    "on 2 worker(s) (1.2 submissions per minute)")
    assert "failed: cy: not JSON" in text and "worth a look (integrity flags): bob" in text


@pytest.mark.slow
def test_the_exported_gradebook_has_the_class_gradebooks_schema_version_without_running_alembic(tmp_path, monkeypatch):
    import sqlite3

    from nbgrader import api

    repo = Path(__file__).resolve().parents[2]
    course = scaffold.make_course(tmp_path, repo, ["ps1_softmax"])
    scaffold.generate_assignment(course, "ps1_softmax")  # nbgrader stamps the class's gradebook itself
    with sqlite3.connect(course / "gradebook.db") as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()

    def no_alembic():
        raise AssertionError("the export ran `alembic heads`")

    monkeypatch.setattr(api, "get_alembic_version", no_alembic)
    exported = tmp_path / "exported.db"
    exported.write_bytes(grade.export_assignment(f"sqlite:///{course / 'gradebook.db'}", "ps1_softmax"))
    with sqlite3.connect(exported) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(version,)]
        assert connection.execute("SELECT name FROM assignment").fetchall() == [("ps1_softmax",)]
    with api.Gradebook(f"sqlite:///{exported}") as copy:  # nbgrader reads it as its own
        assert {cell.name for cell in copy.find_notebook("softmax", "ps1_softmax").grade_cells}


@pytest.mark.slow
def test_a_local_cluster_s_workers_may_start_kernels_and_run_no_profiler():
    """The workers of a local cluster are not daemonic (a worker starts kernels) and run without Dask's statistical
    profiler (a look at the grading thread's stack every 10 ms: about 15% more CPU for grading); the scheduler
    neither steals work nor manages memory, and checks its event loop every second, not every 20 ms."""
    import dask

    client, cluster = grade._start_client(1, None)
    try:
        settings = client.run(lambda: (dask.config.get("distributed.worker.profile.enabled"),
                                       dask.config.get("distributed.worker.daemon")))
        callbacks = {name.split("-")[0]: pc.callback_time for name, pc in cluster.scheduler.periodic_callbacks.items()}
    finally:
        client.close()
        cluster.close()
    assert list(settings.values()) == [(False, False)]
    assert not {"stealing", "amm"} & set(callbacks), callbacks
    assert callbacks["tick"] == 1000 and callbacks["monitor"] == 5000, callbacks


@pytest.mark.slow
def test_a_grading_cluster_starts_in_the_background_with_its_workers_ready_to_grade():
    """GradingCluster: no more workers than submissions; each worker has nbgrader and the grading code imported
    as it starts, and starts the assignment's template as soon as the grading begins; closed on exit."""
    import sys
    import time

    from softgrad.grader import template

    warm = ("nbgrader.apps", "nbgrader.converters.autograde", "softgrad.grader.preprocessors")

    def loaded():
        return sorted(name for name in warm if name in sys.modules)

    def templates():
        with template._TEMPLATES_LOCK:
            return [list(key) for key, found in template._TEMPLATES.items() if found is not None]

    with grade.GradingCluster(workers=3, scheduler=None, expected=2) as cluster:
        assert cluster.local_workers == 2, "three workers for two submissions"
        # one of the two turns out to be graded already: one worker grades it, the other is gone before it starts
        grading = cluster.grading({"assignment": "ps"}, submissions=1, run_id="test", preload=template.BASE)
        assert grading.workers == 1 and len(cluster._workers()) == 1
        client = grading.client
        assert list(client.run(loaded).values()) == [sorted(warm)], "the worker started without the grading code"
        deadline = time.monotonic() + 60
        while not any(client.run(templates).values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(client.run(templates).values()) == [[list(template.BASE)]]
        cluster.close_soon()
    assert client.status == "closed"


def test_a_grading_cluster_is_made_at_once_and_started_in_the_background(monkeypatch):
    """GradingCluster returns while the cluster starts (the coordinator meanwhile reads the course); a cluster
    that could not start says so when the grading needs it, and closing it then raises nothing."""
    import threading

    started, release, closed = threading.Event(), threading.Event(), []

    class Client:
        def close(self):
            closed.append("client")

    def slow_start(workers, scheduler):
        started.set()
        assert release.wait(10)
        return Client(), None

    monkeypatch.setattr(grade, "_start_client", slow_start)
    with grade.GradingCluster(workers=2, scheduler=None, expected=5) as cluster:
        assert started.wait(10) and not release.is_set(), "made before the cluster had started"
        release.set()
        assert cluster.grading({"assignment": "ps"}, submissions=5, run_id="test").workers == 2
    assert closed == ["client"]

    def no_start(workers, scheduler):
        raise OSError("no free port")

    monkeypatch.setattr(grade, "_start_client", no_start)
    with grade.GradingCluster(workers=2, scheduler=None, expected=5) as cluster, pytest.raises(OSError, match="port"):
        cluster.grading({"assignment": "ps"}, submissions=5, run_id="test")


def test_a_cluster_starts_early_only_for_submissions_likely_to_be_graded(tmp_path):
    """classgrade._submissions_in_sight: the folders submitted (or the students asked for) less those the ledger
    of the course's gradebook says are graded; none when the gradebook is elsewhere and nothing is known."""
    import sqlite3

    for student in ("ada", "bob", "cy"):
        (tmp_path / "submitted" / student / "ps1").mkdir(parents=True)
    (tmp_path / "submitted" / "dee" / "ps2").mkdir(parents=True)
    guess = classgrade._submissions_in_sight
    assert guess(tmp_path, "ps1", None, False) == 0, "no gradebook here: its ledger is not known"
    with sqlite3.connect(tmp_path / "gradebook.db") as connection:
        connection.execute("CREATE TABLE other (x)")
    assert guess(tmp_path, "ps1", None, False) == 3, "no ledger yet: nothing graded"
    with sqlite3.connect(tmp_path / "gradebook.db") as connection:
        connection.execute(record._LEDGER_DDL)
        connection.executemany(
            f"INSERT INTO {record.LEDGER} (assignment, student, state, attempts) VALUES (?, ?, ?, 1)",
            [("ps1", "ada", "graded"), ("ps1", "bob", "failed"), ("ps2", "cy", "graded")])
    assert guess(tmp_path, "ps1", None, False) == 2, "ada is graded; bob failed and is tried again"
    assert guess(tmp_path, "ps1", None, True) == 3, "--force grades all three again"
    assert guess(tmp_path, "ps1", ["ada"], False) == 0 and guess(tmp_path, "ps1", ["ada", "cy"], False) == 1
    assert guess(tmp_path, "ps9", None, False) == 0, "nothing submitted"
