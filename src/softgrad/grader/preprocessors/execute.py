"""Executing: nbgrader's ``Execute`` with limits on memory, output and time, survival of kernel death, and
the notebook's language given to its kernel (and to the errors the grader writes into its cells)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Enum, Integer

from softgrad import i18n
from softgrad.grader import guard, template
from softgrad.grader.integrity import Finding
from softgrad.grader.preprocessors.common import cell_kind, error_output, label, record
from softgrad.i18n import _

__all__ = ["PromptKernelClient", "SafeExecute", "TemplateProvisioner"]


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's client of a kernel, ready as soon as the kernel is.

    jupyter_client waits for a new kernel in three steps: its answer to a ``kernel_info`` request
    on the shell channel, one message on IOPub (IOPub is connected), then IOPub silent for 0.2 s,
    to drop what the kernel published as it started. The last wait always costs 0.2 s in which
    neither process does anything, and the second another 0.2 s whenever the kernel answered
    before IOPub was connected (what it published about the request went nowhere): for a class
    graded on two cores, up to a quarter of a submission's time. Here the kernel is ready when it
    has said on IOPub that it is idle after a ``kernel_info`` request: everything it published as it
    started came before that. A kernel announces that IOPub is connected (``iopub_welcome``,
    ipykernel 7 and later); it is asked again then, and what it says about that request arrives.
    A kernel that does not answer within 1 s, or does not say it is idle within 0.2 s of its
    answer, is asked again, as jupyter_client does, until the timeout.

    The client also connects sooner: it connects as the kernel starts, before the kernel has opened
    its ports, and ZeroMQ tries a refused connection again only after 100 ms (``RECONNECT_IVL``):
    another 0.1 s of nothing per kernel. Its sockets try again every 10 ms.
    """

    reconnect_ms = 10

    def _context_default(self) -> zmq.asyncio.Context:
        context = super()._context_default()  # the client's own, closed with it
        context.setsockopt(zmq.RECONNECT_IVL, self.reconnect_ms)  # the default of every socket it makes
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        requests: set[str] = set()  # the idle after any of them will do: it may arrive late, on a loaded machine
        while True:
            requests.add(self.kernel_info())
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except queue.Empty:
                pass
            else:
                if reply["msg_type"] == "kernel_info_reply" and await self._idle_after(requests, 0.2):
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                # jupyter_client's words, which SafeExecute's retry looks for
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    async def _idle_after(self, requests: set[str], seconds: float) -> bool:
        """Whether IOPub says, within ``seconds``, that the kernel is idle after one of ``requests`` (other messages
        are dropped). When IOPub says it has just been connected, the kernel is asked again (added to ``requests``)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            try:
                message = await self.iopub_channel.get_msg(timeout=left)
            except queue.Empty:
                return False
            if message["msg_type"] == "iopub_welcome":
                requests.add(self.kernel_info())
                until = time.monotonic() + seconds
            elif (message["msg_type"] == "status" and message["content"].get("execution_state") == "idle"
                  and message["parent_header"].get("msg_id") in requests):
                return True
        return False


class TemplateProvisioner(LocalProvisioner):
    """jupyter_client's provisioner of local kernels, whose kernel is forked from a template.

    A kernel command that is not ``python -m MODULE ...`` of this Python, or a template that cannot
    fork, starts the kernel the usual way. Like a kernel started by jupyter_client, the forked one
    leads a process group of its own (interrupts and kills go to the group).
    """

    template: template.Template | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        module = _python_module(cmd, kwargs.get("env"))
        if self.template is None or module is None:
            return await super().launch_kernel(cmd, **kwargs)
        cwd = kwargs.get("cwd") or os.getcwd()
        # What jupyter_client's launcher tells a kernel it starts: which process is its parent. ipykernel
        # read its default from the environment when the template imported it, so it is said again here.
        env = {**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid())}
        args = [*module[1], f"--IPKernelApp.parent_handle={os.getpid()}"]
        try:
            self.process = self.template.spawn(module[0], args, cwd=cwd, env=env, new_session=True)
        except template.TemplateError as error:
            self.log.warning("%s; the kernel starts as a new Python process", error)
            return await super().launch_kernel(cmd, **kwargs)
        self.pid = self.pgid = self.process.pid
        self.cwd = cwd
        return self.connection_info

    async def kill(self, restart: bool = False) -> None:
        """Kill the kernel's process group, and return once the kernel has exited: jupyter_client then finds it
        gone at its first look, instead of looking again every 0.1 s."""
        await super().kill(restart)
        child = self.process
        if isinstance(child, template.Child) and child.poll() is None:
            loop = asyncio.get_running_loop()
            exited = loop.create_future()
            loop.add_reader(child.status_fd, lambda: exited.done() or exited.set_result(None))
            try:
                await asyncio.wait_for(exited, 5)
            except asyncio.TimeoutError:
                pass  # jupyter_client waits for it, and says so
            finally:
                loop.remove_reader(child.status_fd)


def _python_module(cmd: list[str], env: dict | None) -> tuple[str, list[str]] | None:
    """``(MODULE, ARGS)`` when ``cmd`` is ``PYTHON -m MODULE ARGS`` with this process's Python, else None."""
    if len(cmd) < 3 or cmd[1] != "-m":
        return None
    found = shutil.which(cmd[0], path=(env or os.environ).get("PATH"))
    if found is None:
        return None
    same = (Path(found).parent.resolve() == Path(sys.executable).parent.resolve()
            and os.path.realpath(found) == os.path.realpath(sys.executable))
    return (cmd[2], list(cmd[3:])) if same else None


class SafeExecute(Execute):
    """nbgrader's ``Execute`` with limits on memory, output and time, and survival of kernel death.

    A notebook that declares its language (``metadata.softgrad.language``, as the Chinese copies of the
    exercises do) gets a kernel whose ``SOFTGRAD_LANG`` says it, so that the course's checks write
    their messages in that language (:mod:`softgrad.i18n`); other notebooks' kernels inherit the
    grader's environment. The errors the grader itself writes into the cells (a timeout, a dead
    kernel, a cell not run) are in the notebook's language too: the student reads them in the feedback.
    """

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
    shutdown_kernel = Enum(
        ["graceful", "immediate"], default_value="immediate",
        help="How the kernel ends once the last cell has run: killed at once (`immediate`, the default: every output "
             "has arrived by then, and the kernel's own clean exit costs about 0.1 s of CPU per notebook and changes "
             "nothing graded), or asked to shut down and given time to (`graceful`, nbclient's default)."
    ).tag(config=True)
    kernel_start_attempts = Integer(
        3, help="Starts of a kernel that dies before it answers, with fresh ports each time. Jupyter picks a "
                "kernel's ports, frees them, and the kernel binds them later: another process (a second grading "
                "worker, any outgoing connection) can take one in between, and the kernel exits with "
                "'Address already in use'."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._stopped: str | None = None
        self._killed_for: int | None = None  # the memory limit (MiB) the kernel was killed for
        self._timed_out = False
        self._started = time.monotonic()
        self._printed: dict[int, int] = {}
        self._guard_ready = False
        self._watch_stop = threading.Event()
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self._watch_stop.set()

    def _in_language(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, :func:`softgrad.i18n._` speaks the notebook's language (main thread only)."""
        return i18n.notebook_language_is(i18n.notebook_language(self.nb.metadata))

    # -- the kernel: started with a memory limit, and watched --

    def _language_environment(self, kwargs: dict) -> dict:
        """``kwargs`` for the kernel's start, with the notebook's language in its environment, if it has one."""
        language = i18n.notebook_language(self.nb.metadata) if getattr(self, "nb", None) is not None else None
        if language is None:
            return kwargs
        return {**kwargs, "env": {**kwargs.get("env", os.environ), i18n.ENVIRONMENT: language}}

    def create_kernel_manager(self):
        """nbclient's kernel manager, whose kernel is forked from a template when there is one
        (:mod:`softgrad.grader.template`): the kernel is still a new process, for this notebook only."""
        km = super().create_kernel_manager()
        km.client_class = f"{PromptKernelClient.__module__}.{PromptKernelClient.__qualname__}"
        sources = (cell.source for cell in self.nb.cells if cell.cell_type == "code")
        found = template.template(template.preload_for(sources))
        if found is not None:
            km.kernel_id = km.kernel_id or str(uuid.uuid4())
            km.provisioner = TemplateProvisioner(kernel_id=km.kernel_id, kernel_spec=km.kernel_spec, parent=km)
            km.provisioner.template = found
        return km

    async def async_start_new_kernel(self, **kwargs):
        kwargs = self._language_environment(kwargs)
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
                self._killed_for = self.memory_limit_mb
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
                    record(self.nb, Finding("output-flood", label(self.nb.cells[cell_index], cell_index), 0,
                                             f"printed more than {self.output_limit_bytes:,} characters; the rest "
                                             f"was dropped"))
                    with self._in_language():
                        note = _("[the grader dropped the rest of this cell's output: more than {count} "
                                 "characters]").format(count=f"{self.output_limit_bytes:,}")
                    outs.append(NotebookNode(output_type="stream", name="stdout", text=f"\n{note}\n"))
                return None
        return super().output(outs, msg, display_id, cell_index)

    # -- time and death --

    async def _async_handle_timeout(self, timeout, cell=None):
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    guard_libraries = Bool(
        True, help="Before each test cell, undo what the student's code rebound in NumPy, PyTorch, IPython and "
                   "the course library (softgrad.grader.guard), and report it."
    ).tag(config=True)

    def _guard(self, cell: NotebookNode, index: int) -> None:
        """Snapshot the libraries before the student's first cell; restore them before each test cell."""
        kind = cell_kind(cell)
        if kind == "student" and not self._guard_ready:
            self._guard_ready = True
            run_sync(self._silent)(f"__import__({guard.__name__!r}, fromlist=['_']).snapshot()")
        elif kind == "test" and self._guard_ready:
            restored = run_sync(self._silent)(f"__import__({guard.__name__!r}, fromlist=['_']).restore()")
            if restored is None:
                record(self.nb, Finding("kernel-problem", label(cell, index), 0,
                                         "the kernel did not answer the grader's check of the libraries before "
                                         "this test (busy, or the check was broken by the notebook's code)"))
            elif restored not in ("[]", ""):
                record(self.nb, Finding("patches-library", label(cell, index), 0,
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
            with self._in_language():
                self._stopped = _("the notebook used up its {seconds} s of grading time").format(
                    seconds=self.notebook_timeout)
        if self._stopped is not None:
            with self._in_language():
                cell.outputs = [error_output("NotRun", _("this cell was not run: {reason}").format(
                    reason=self._stopped))]
            return cell, self.resources
        self._timed_out = False
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            with self._in_language():
                reason = (_("it used more than the memory limit of {limit} MiB").format(limit=self._killed_for)
                          if self._killed_for is not None else
                          _("the process exited or crashed (for example os._exit, or a crash in C code)"))
                cell.outputs.append(error_output("KernelDied", _(
                    "the Python kernel died while running this cell: {reason}").format(reason=reason)))
                self._stopped = _("the kernel died in an earlier cell ({reason})").format(reason=reason)
            return cell, self.resources
        except CellTimeoutError:  # the reply came, but the cell's output did not finish arriving
            self._timed_out = True
        if self._timed_out:
            with self._in_language():
                cell.outputs.append(error_output("TimeoutError", _(
                    "this cell was stopped after {seconds} s: an infinite loop, or code far slower than it needs "
                    "to be").format(seconds=self.timeout)))
            if not run_sync(self._responds)(self.interrupt_grace):
                run_sync(self._kill_kernel)()
                with self._in_language():
                    self._stopped = _("the code in an earlier cell did not stop when interrupted after {seconds} "
                                      "s").format(seconds=self.timeout)
        return cell, resources

    async def _responds(self, grace: float) -> bool:
        """Whether the kernel answers a kernel_info request within ``grace`` seconds."""
        return await self._shell_reply(self.kc.kernel_info(), grace) is not None

    async def _kill_kernel(self) -> None:
        await ensure_async(self.km.shutdown_kernel(now=True))
