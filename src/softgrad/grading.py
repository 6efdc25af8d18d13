"""nbgrader preprocessors that make autograding robust and honest.

``nbgrader_config.py`` puts these into nbgrader's own pipeline, so that the standard commands
(``nbgrader autograde ps1_softmax``) use them:

:class:`InspectSubmission` (sanitizing, before nbgrader restores the test cells)
    Notes what the student did to the notebook's structure: test cells deleted, edited,
    turned into Markdown, duplicated or split. nbgrader then restores them
    (``OverwriteCells``, with ``add_missing_cells``); the note goes to the integrity report.
:class:`SafeDeduplicateIds` (replaces nbgrader's ``DeduplicateIds``)
    A cell copied with its nbgrader metadata keeps the first copy graded. nbgrader's own
    version leaves the duplicate with empty metadata, which its next step reads as an
    "old metadata format" and then stops grading the whole class.
:class:`SafeExecute` (replaces nbgrader's ``Execute``)
    Bounds each notebook: a memory limit for the kernel, a cap on the output a cell may
    print, a time budget for the whole notebook, a kernel that ignores an interrupt is
    killed, and a kernel that dies (``os._exit``, a crash, the memory limit) costs the
    cells that did not run, with the reason in each, instead of failing the notebook.
:class:`VerifyOutsideKernel` (after execution, before nbgrader saves the scores)
    Re-runs the test cells outside the student's kernel (:mod:`softgrad.replay`); a test
    that passed in the notebook but fails there scores 0. Reads the student's cells for the
    integrity report (:mod:`softgrad.integrity`).

Every finding is stored in the autograded notebook's metadata (``metadata.softgrad``), from
where :func:`softgrad.autograde.grading_report` collects the class's report.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Dict, Integer, List, Unicode

from softgrad.integrity import Finding, scan_cells
from softgrad.replay import cell_kind

__all__ = ["InspectSubmission", "SafeDeduplicateIds", "SafeExecute", "VerifyOutsideKernel", "findings_of"]

HIDDEN_TESTS = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


def findings_of(nb: NotebookNode) -> list[dict]:
    """The integrity findings recorded in a notebook's metadata (a list, stored in place)."""
    return nb.metadata.setdefault("softgrad", {}).setdefault("findings", [])


def _record(nb: NotebookNode, finding: Finding) -> None:
    entry = finding.as_dict()
    if entry not in findings_of(nb):
        findings_of(nb).append(entry)


def _error_output(ename: str, evalue: str) -> NotebookNode:
    """An error output as a cell would show it; lines wrapped, so feedback pages need no scrolling."""
    lines = textwrap.wrap(f"{ename}: {evalue}", width=100, break_long_words=False, replace_whitespace=False)
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=["\n".join(lines)])


def _label(cell: NotebookNode, index: int) -> str:
    return cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}"


# ---------------------------------------------------------------------------------------
# Sanitizing


class InspectSubmission(NbGraderPreprocessor):
    """Record changes to the notebook's graded structure, before nbgrader restores it."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        nb.metadata["softgrad"] = {"findings": []}
        seen: dict[str, int] = {}
        with Gradebook(info["db_url"]) as gradebook:
            try:
                source = gradebook.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            source_cells = {c.name: c for c in source.source_cells}
            for index, cell in enumerate(nb.cells):
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if not grade_id:
                    continue
                where = f"cell {index + 1}"
                if grade_id in seen:
                    _record(nb, Finding("test-cell-changed", grade_id, 0,
                                        f"{where} repeats the nbgrader id of cell {seen[grade_id] + 1} (a copied or "
                                        f"split cell): only the first is graded"))
                    continue
                seen[grade_id] = index
                original = source_cells.get(grade_id)
                if original is None:
                    continue
                if cell.cell_type != original.cell_type:
                    _record(nb, Finding("test-cell-changed", grade_id, 0,
                                        f"{where} was turned from {original.cell_type} into {cell.cell_type}; "
                                        f"nbgrader turned it back"))
                elif original.locked and _normalise(cell.source) != _normalise(HIDDEN_TESTS.sub("", original.source)):
                    _record(nb, Finding("test-cell-changed", grade_id, 0,
                                        f"{where}: the locked cell was edited; nbgrader restored the original"))
            for name, original in source_cells.items():
                if name not in seen and (original.locked or name in {c.name for c in source.grade_cells}):
                    _record(nb, Finding("test-cell-changed", name, 0,
                                        "this cell was deleted; nbgrader put it back"))
            for cell in source.solution_cells:
                if cell.name not in seen:
                    _record(nb, Finding("submission-problem", cell.name, 0,
                                        "the answer cell was deleted (answers in other cells still count)"))
        return nb, resources


def _normalise(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


class SafeDeduplicateIds(NbGraderPreprocessor):
    """Keep the first cell of each nbgrader id graded; later copies become ordinary cells."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        seen = set()
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id is None:
                continue
            if grade_id in seen:
                del cell.metadata["nbgrader"]  # an ordinary cell: runs, but is not graded or restored
            else:
                seen.add(grade_id)
        return nb, resources


# ---------------------------------------------------------------------------------------
# Execution


class SafeExecute(Execute):
    """nbgrader's ``Execute`` with limits on memory, output and time, and survival of kernel death."""

    memory_limit_mb = Integer(4096, help="Address space of the kernel, in MiB (0: no limit).").tag(config=True)
    output_limit_bytes = Integer(
        200_000, help="Output one cell may print; the rest is dropped with a note (0: no limit)."
    ).tag(config=True)
    notebook_timeout = Integer(
        900, help="Seconds for the whole notebook; cells after that are not run (0: no limit)."
    ).tag(config=True)
    limit_address_space = Bool(
        True, help="Enforce the memory limit inside the kernel too (RLIMIT_AS: allocations fail with MemoryError); "
                   "the kernel's resident memory is watched from outside either way."
    ).tag(config=True)
    interrupt_grace = Integer(
        5, help="Seconds a kernel has to stop after a timeout's interrupt before it is killed."
    ).tag(config=True)
    kernel_start_attempts = Integer(
        3, help="Starts of a kernel that dies before it answers, with fresh ports each time. Jupyter picks a "
                "kernel's ports, frees them, and the kernel binds them later: another process (a second grading "
                "worker, any outgoing connection) can take one in between, and the kernel exits with "
                "'Address already in use'."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped: str | None = None
        self._killed_for: str | None = None
        self._timed_out = False
        self._started = time.monotonic()
        self._printed: dict[int, int] = {}
        self._guard_ready = False
        self._watch_stop = threading.Event()
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._watch_stop.set()

    # -- the kernel: started with a memory limit, and watched --

    async def async_start_new_kernel(self, **kwargs):
        self._start_kwargs = kwargs
        original = list(self.extra_arguments)
        if self.memory_limit_mb and self.limit_address_space:
            limit = self.memory_limit_mb * 1024 * 1024
            # Runs in the kernel before any cell; __import__ keeps the name out of the namespace.
            self.extra_arguments = original + [
                "--IPKernelApp.exec_lines="
                f"__import__('resource').setrlimit(__import__('resource').RLIMIT_AS, ({limit}, {limit}))"
            ]
        try:
            await super().async_start_new_kernel(**kwargs)
        finally:
            self.extra_arguments = original
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if self.memory_limit_mb and process is not None:
            threading.Thread(target=self._watch_memory, args=(process.pid,), daemon=True).start()

    async def async_start_new_kernel_client(self):
        for attempt in range(1, max(self.kernel_start_attempts, 1) + 1):
            try:
                return await super().async_start_new_kernel_client()
            except RuntimeError as error:  # nbclient's words for a kernel that exited before its first reply
                if (attempt >= self.kernel_start_attempts or "died before replying" not in str(error)
                        or not self.owns_km):
                    raise
                self.log.warning("The kernel exited as it started (attempt %d of %d); starting a new one on fresh "
                                 "ports", attempt, self.kernel_start_attempts)
                # nbclient's cleanup has shut the kernel down and dropped its manager (returning its ports).
                self.km = self.create_kernel_manager()
                await self.async_start_new_kernel(**getattr(self, "_start_kwargs", {}))
        raise AssertionError("unreachable")

    # nbclient binds the synchronous wrappers to its own coroutines: bind them to these.
    start_new_kernel = run_sync(async_start_new_kernel)
    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def _watch_memory(self, pid: int) -> None:
        """A second line of defence: the limit above can be raised by code running as root."""
        limit_kb = self.memory_limit_mb * 1024
        while not self._watch_stop.wait(0.25):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return
            match = re.search(r"VmRSS:\s+(\d+)", status)
            if match and int(match.group(1)) > limit_kb:
                self._killed_for = f"it used more than the memory limit of {self.memory_limit_mb} MiB"
                os.kill(pid, 9)
                return

    # -- output: capped per cell while it arrives --

    def output(self, outs, msg, display_id, cell_index):
        if self.output_limit_bytes:
            content = msg.get("content", {})
            size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
            printed = self._printed.get(cell_index, 0)
            self._printed[cell_index] = printed + size
            if printed + size > self.output_limit_bytes and msg["msg_type"] in (
                    "stream", "display_data", "execute_result", "update_display_data"):
                if printed <= self.output_limit_bytes:
                    _record(self.nb, Finding("output-flood", _label(self.nb.cells[cell_index], cell_index), 0,
                                             f"printed more than {self.output_limit_bytes:,} characters; the rest "
                                             f"was dropped"))
                    outs.append(NotebookNode(output_type="stream", name="stdout", text=(
                        f"\n[the grader dropped the rest of this cell's output: more than "
                        f"{self.output_limit_bytes:,} characters]\n")))
                return None
        return super().output(outs, msg, display_id, cell_index)

    # -- time and death --

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    guard_libraries = Bool(
        True, help="Before each test cell, undo what the student's code rebound in NumPy, PyTorch, IPython and "
                   "the course library (softgrad.guard), and report it."
    ).tag(config=True)

    def _guard(self, cell: NotebookNode, index: int) -> None:
        """Snapshot the libraries before the student's first cell; restore them before each test cell."""
        kind = cell_kind(cell)
        if kind == "student" and not self._guard_ready:
            self._guard_ready = True
            run_sync(self._silent)("__import__('softgrad.guard', fromlist=['guard']).snapshot()")
        elif kind == "test" and self._guard_ready:
            restored = run_sync(self._silent)("__import__('softgrad.guard', fromlist=['guard']).restore()")
            if restored is None:
                _record(self.nb, Finding("kernel-problem", _label(cell, index), 0,
                                         "the kernel did not answer the grader's check of the libraries before "
                                         "this test (busy, or the check was broken by the notebook's code)"))
            elif restored not in ("[]", ""):
                _record(self.nb, Finding("patches-library", _label(cell, index), 0,
                                         f"before this test the grader put back what had been rebound: "
                                         f"{restored[:300]}"))

    async def _shell_reply(self, msg_id: str, seconds: float) -> dict | None:
        """The kernel's reply to request ``msg_id``, or None if none came within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except (queue.Empty, TimeoutError):
                return None
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg
        return None

    async def _silent(self, expression: str) -> str | None:
        """Evaluate ``expression`` in the kernel without a trace in the notebook; its repr, or None."""
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"value": expression})
        reply = await self._shell_reply(msg_id, 30)
        value = (reply or {}).get("content", {}).get("user_expressions", {}).get("value", {})
        return value.get("data", {}).get("text/plain", "") if value.get("status") == "ok" else None

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        if self.guard_libraries and self._stopped is None:
            self._guard(cell, index)
        if self._stopped is None and self.notebook_timeout and time.monotonic() - self._started > self.notebook_timeout:
            self._stopped = f"the notebook used up its {self.notebook_timeout} s of grading time"
        if self._stopped is not None:
            cell.outputs = [_error_output("NotRun", f"this cell was not run: {self._stopped}")]
            return cell, self.resources
        self._timed_out = False
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            reason = self._killed_for or "the process exited or crashed (for example os._exit, or a crash in C code)"
            cell.outputs.append(_error_output("KernelDied", f"the Python kernel died while running this cell: "
                                                            f"{reason}"))
            self._stopped = f"the kernel died in an earlier cell ({reason})"
            return cell, self.resources
        except CellTimeoutError:  # the reply came, but the cell's output did not finish arriving
            self._timed_out = True
        if self._timed_out:
            cell.outputs.append(_error_output(
                "TimeoutError", f"this cell was stopped after {self.timeout} s: an infinite loop, or code far "
                                f"slower than it needs to be"))
            if not run_sync(self._responds)(self.interrupt_grace):
                run_sync(self._kill_kernel)()
                self._stopped = f"the code in an earlier cell did not stop when interrupted after {self.timeout} s"
        return cell, resources

    async def _responds(self, grace: float) -> bool:
        """Whether the kernel answers a kernel_info request within ``grace`` seconds."""
        return await self._shell_reply(self.kc.kernel_info(), grace) is not None

    async def _kill_kernel(self) -> None:
        await ensure_async(self.km.shutdown_kernel(now=True))


# ---------------------------------------------------------------------------------------
# Verification


class VerifyOutsideKernel(NbGraderPreprocessor):
    """Re-run the test cells outside the student's kernel; keep the lower grade; read the student's cells."""

    enabled = Bool(True, help="Re-run test cells outside the kernel.").tag(config=True)
    call_timeout = Integer(60, help="Seconds for one call of a student's function in the re-run.").tag(config=True)
    total_timeout = Integer(900, help="Seconds for the whole re-run of one notebook.").tag(config=True)
    memory_limit_mb = Integer(4096, help="Address space of the student's process in the re-run, MiB.").tag(config=True)
    forbidden_modules = List(Unicode(), ["softgrad.reference", "softgrad.mistakes"],
                             help="Course modules the student's code may not call in the re-run.").tag(config=True)
    in_kernel_only = Dict(
        {}, help="Assignments whose test cells are not re-run, with the reason (e.g. PyTorch objects cannot "
                 "cross a process boundary)."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        student_cells = [(_label(c, i), c.source) for i, c in enumerate(nb.cells) if cell_kind(c) == "student"]
        for finding in scan_cells(student_cells):
            _record(nb, finding)
        self._protect_scores(nb)
        self._record_kernel_problems(nb)
        if not self.enabled:
            return nb, resources
        if assignment in self.in_kernel_only:
            nb.metadata.setdefault("softgrad", {})["replay"] = {"skipped": self.in_kernel_only[assignment]}
            return nb, resources
        answer = self._replay(nb, resources)
        nb.metadata.setdefault("softgrad", {})["replay"] = {
            k: answer.get(k) for k in ("error", "notes", "student_names") if k in answer}
        for index, cell in enumerate(nb.cells):
            if cell_kind(cell) != "test":
                continue
            grade_id = _label(cell, index)
            result = answer.get("cells", {}).get(grade_id)
            if result is None:
                continue
            nb.metadata["softgrad"]["replay"].setdefault("outcomes", {})[grade_id] = result["outcome"]
            score, _ = nbgrader_utils.determine_grade(cell, self.log)
            if result["outcome"] == "fail" and score:
                cell.outputs.insert(0, _error_output(
                    "GradingIntegrityError",
                    "this test passed while your notebook ran, but failed when the grader re-ran it outside your "
                    f"notebook's Python process, where your code cannot change the checks. The re-run said: "
                    f"{result['message']}"))
                _record(nb, Finding("retried-outside-kernel", grade_id, 0, result["message"][:500]))
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
                    _record(nb, Finding("kernel-problem", _label(cell, index), 0, f"{name}: {output.evalue[:300]}"))

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
        request = {"notebook": nb, "cwd": str(cwd), "call_timeout": self.call_timeout,
                   "memory_limit_mb": self.memory_limit_mb, "forbidden_modules": list(self.forbidden_modules)}
        try:
            done = subprocess.run([sys.executable, "-m", "softgrad.replay"], input=json.dumps(request),
                                  capture_output=True, text=True, timeout=self.total_timeout, cwd=cwd)
            return json.loads(done.stdout)
        except subprocess.TimeoutExpired:
            return {"error": f"the re-run took longer than {self.total_timeout} s"}
        except json.JSONDecodeError:
            return {"error": f"the re-run ended without an answer: {done.stderr[-2000:]}"}
