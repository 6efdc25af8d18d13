"""Verifying, after execution: every test cell re-run outside the student's kernel; the lower grade is kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool, Dict, Integer, List, Unicode

from softgrad import i18n
from softgrad.grader import replay, template
from softgrad.grader.integrity import Finding, scan_cells
from softgrad.grader.preprocessors.common import cell_kind, error_output, label, record
from softgrad.grader.tripwires import ANSWER_KEY
from softgrad.i18n import _

__all__ = ["VerifyOutsideKernel"]


class VerifyOutsideKernel(NbGraderPreprocessor):
    """Re-run the test cells outside the student's kernel; keep the lower grade; read the student's cells."""

    enabled = Bool(True, help="Re-run test cells outside the kernel.").tag(config=True)
    call_timeout = Integer(60, help="Seconds for one call of a student's function in the re-run.").tag(config=True)
    total_timeout = Integer(900, help="Seconds for the whole re-run of one notebook.").tag(config=True)
    memory_limit_mb = Integer(4096, help="Address space of the student's process in the re-run, MiB.").tag(config=True)
    forbidden_modules = List(Unicode(), list(ANSWER_KEY),
                             help="Course modules the student's code may not call in the re-run.").tag(config=True)
    not_rerun = Dict(
        {}, help="Assignments whose test cells are not re-run, with the reason (e.g. PyTorch objects cannot "
                 "cross a process boundary)."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        student_cells = [(label(c, i), c.source) for i, c in enumerate(nb.cells) if cell_kind(c) == "student"]
        for finding in scan_cells(student_cells):
            record(nb, finding)
        self._protect_scores(nb)
        self._record_kernel_problems(nb)
        if not self.enabled:
            return nb, resources
        if assignment in self.not_rerun:
            nb.metadata.setdefault("softgrad", {})["replay"] = {"skipped": self.not_rerun[assignment]}
            return nb, resources
        answer = self._replay(nb, resources)
        nb.metadata.setdefault("softgrad", {})["replay"] = {
            k: answer.get(k) for k in ("error", "notes", "student_names") if k in answer}
        for index, cell in enumerate(nb.cells):
            if cell_kind(cell) != "test":
                continue
            grade_id = label(cell, index)
            result = answer.get("cells", {}).get(grade_id)
            if result is None:
                continue
            nb.metadata["softgrad"]["replay"].setdefault("outcomes", {})[grade_id] = result["outcome"]
            score, _points = nbgrader_utils.determine_grade(cell, self.log)
            if result["outcome"] == "fail" and score:
                with i18n.notebook_language_is(i18n.notebook_language(nb.metadata)):  # the student reads it
                    cell.outputs.insert(0, error_output("GradingIntegrityError", _(
                        "this test passed while your notebook ran, but failed when the grader re-ran it outside "
                        "your notebook's Python process, where your code cannot change the checks. The re-run "
                        "said: {message}").format(message=result["message"])))
                record(nb, Finding("retried-outside-kernel", grade_id, 0, result["message"][:500]))
        return nb, resources

    @staticmethod
    def _record_kernel_problems(nb: NotebookNode) -> None:
        """Timeouts, memory errors and kernel deaths, in any cell, go to the report (the first 'not run' too)."""
        not_run_seen = False
        for index, cell in enumerate(nb.cells):
            for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
                name = output.get("ename")
                if name in ("KernelDied", "TimeoutError", "MemoryError") or (name == "NotRun" and not not_run_seen):
                    not_run_seen |= name == "NotRun"
                    record(nb, Finding("kernel-problem", label(cell, index), 0, f"{name}: {output.evalue[:300]}"))

    @staticmethod
    def _protect_scores(nb: NotebookNode) -> None:
        """An error in a test cell costs the cell even when an ``execute_result`` came before it.

        nbgrader reads a cell's outputs in order and takes the first ``execute_result`` as a
        partial score, so a result displayed early (by the student's code, through IPython's
        display hook) would hide a later failure.
        """
        for cell in nb.cells:
            if cell_kind(cell) != "test":
                continue
            failed = [o for o in cell.outputs if o.output_type == "error"
                      or (o.output_type == "stream" and o.get("name") == "stderr")]
            if failed and any(o.output_type == "execute_result" for o in cell.outputs):
                cell.outputs = failed + [o for o in cell.outputs if not any(o is f for f in failed)]

    def _replay(self, nb: NotebookNode, resources: dict) -> dict:
        cwd = resources.get("metadata", {}).get("path") or os.getcwd()
        # A test cell that scored nothing in the kernel cannot score less: its re-run (and the diagnosis
        # of its failure, the costly part of a wrong answer's checks) would change no grade and no feedback.
        already_zero = [label(cell, index) for index, cell in enumerate(nb.cells)
                        if cell_kind(cell) == "test" and nbgrader_utils.determine_grade(cell, self.log)[0] == 0]
        request = {"notebook": nb, "cwd": str(cwd), "call_timeout": self.call_timeout,
                   "memory_limit_mb": self.memory_limit_mb, "forbidden_modules": list(self.forbidden_modules),
                   "skip": already_zero}
        environment = dict(os.environ)
        language = i18n.notebook_language(nb.metadata)
        if language is not None:  # the re-run's checks speak the notebook's language, as its kernel's did
            environment[i18n.ENVIRONMENT] = language
        data = json.dumps(request).encode()
        try:
            output, errors = self._run_forked(nb, data, cwd, environment) or self._run_process(data, cwd, environment)
        except subprocess.TimeoutExpired:
            return {"error": f"the re-run took longer than {self.total_timeout} s"}
        try:
            return json.loads(output)
        except json.JSONDecodeError:
            return {"error": f"the re-run ended without an answer: {errors.decode(errors='replace')[-2000:]}"}

    def _run_process(self, data: bytes, cwd: str, environment: dict) -> tuple[bytes, bytes]:
        """The re-run in a new Python process: its standard output and error."""
        done = subprocess.run([sys.executable, "-m", replay.__name__], input=data, capture_output=True,
                              timeout=self.total_timeout, cwd=cwd, env=environment)
        return done.stdout, done.stderr

    def _run_forked(self, nb: NotebookNode, data: bytes, cwd: str, environment: dict) -> tuple[bytes, bytes] | None:
        """The re-run forked from a template that imported what this notebook needs (it forks the sandbox too),
        or None when there is no template (:mod:`softgrad.grader.template`)."""
        found = template.template(template.preload_for(c.source for c in nb.cells if c.cell_type == "code"))
        if found is None:
            return None
        (stdin_r, stdin_w), (stdout_r, stdout_w), (stderr_r, stderr_w) = os.pipe(), os.pipe(), os.pipe()
        try:
            child = found.spawn(replay.__name__, cwd=cwd, env=environment, stdin=stdin_r, stdout=stdout_w,
                                stderr=stderr_w, share=True)
        except template.TemplateError as error:
            self.log.warning("%s; the re-run starts a new Python process", error)
            for fd in (stdin_w, stdout_r, stderr_r):
                os.close(fd)
            return None
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        return child.communicate(data, (stdin_w, stdout_r, stderr_r), self.total_timeout)
