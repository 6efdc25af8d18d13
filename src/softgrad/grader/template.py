"""A template process: the grader's fresh Python processes, forked from one that has imported everything.

Every submission needs three new Python processes: the student's kernel, the trusted re-run of
the tests (:mod:`softgrad.grader.replay`) and the sandbox where the student's functions run in
that re-run (:mod:`softgrad.grader.sandbox`). Started with ``python -m ...``, each of them pays
for starting Python and importing NumPy, IPython, ipykernel and the course's checks (and
PyTorch, for the assignments that use it) before it does any work: about half a second of CPU
each, two and a half seconds more with PyTorch.

A *template* is a Python process started once per grading process that imports all of that and
then waits. Asked for a process, it forks: the child is a new process with a fresh copy of the
template's memory (nothing the previous student's processes did is in it), which sets its own
working directory, environment, memory limit and standard streams, and runs the module it was
asked for as ``python -m`` would. Nothing of one submission is shared with the next: the template
itself never runs a student's code, a test or a request's data; it only forks.

When the grading process ends, its templates end, and take with them any child still running
(a kernel would otherwise notice that its parent had gone). The template holds no notebook, no
hidden test and no answer: only imported modules. Its children would get a copy of its random
generators' state: Python's reseeds itself after a fork, and each child reseeds NumPy's global
generator from the operating system, as a new process would have.

Client side: :func:`template` (one per set of modules to import, started on first use),
:meth:`Template.spawn` (a :class:`Child`, used like :class:`subprocess.Popen`). A child that was
asked to (``share=True``) can ask the same template for processes of its own
(:func:`inherited`): the re-run starts its sandbox this way. ``SOFTGRAD_TEMPLATE=0`` in the
environment turns templates off: every process is then started with ``python -m``, as before.

Server side: ``python -m softgrad.grader.template SOCKET_FD MODULE...``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

__all__ = ["BASE", "SWITCH", "TORCH", "Child", "Template", "TemplateError", "enabled", "inherited", "preload_for",
           "template"]

SWITCH = "SOFTGRAD_TEMPLATE"
"""The environment variable that turns templates off (``0``)."""

_INHERITED_FD = "SOFTGRAD_TEMPLATE_FD"  # a child's own connection to its template (share=True)

BASE = ("numpy", "numpy.linalg", "numpy.testing", "numpy.random", "IPython.core.interactiveshell",
        "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger", "IPython.core.completerlib",
        "IPython.core.debugger", "IPython.core.oinspect", "IPython.extensions.storemagic", "sqlite3", "psutil",
        "pydoc", "softgrad.testing", "softgrad.mistakes", "softgrad.reference", "softgrad.gradcheck",
        "softgrad.grader.guard", "softgrad.grader.replay", "softgrad.grader.sandbox")
"""What every template imports: what a kernel (ipykernel imports its debugger as it starts), the re-run and
the sandbox of any assignment import."""

TORCH = (*BASE, "torch", "torch.nn.functional", "torch.autograd", "torch.testing", "softgrad.torch_testing",
         "softgrad.torchtools")
"""The template of the assignments whose notebooks import PyTorch."""

_IMPORTS_TORCH = re.compile(r"^\s*(?:import|from)\s+(?:torch|triton)\b", re.MULTILINE)
_START_TIMEOUT = 120.0


def enabled() -> bool:
    """Whether the grader starts its processes from templates (``SOFTGRAD_TEMPLATE`` is not ``0``)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def preload_for(sources: Iterable[str]) -> tuple[str, ...]:
    """The template for a notebook with cells ``sources``: :data:`TORCH` if one imports PyTorch or Triton."""
    return TORCH if any(_IMPORTS_TORCH.search(source) for source in sources) else BASE


# ---------------------------------------------------------------------------------------
# The client side


class Child:
    """A process forked by a template, used like :class:`subprocess.Popen`.

    Its parent is the template, so its exit status comes from the template, through a pipe of
    its own: ``returncode`` is what ``Popen`` would say (negative: killed by that signal).
    """

    stdin = stdout = stderr = None  # what LocalProvisioner.wait closes

    def __init__(self, pid: int, status_fd: int, args: Sequence[str]):
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self._status_fd = status_fd
        self._lock = threading.Lock()

    def _read_status(self, timeout: float | None) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            ready, _, _ = select.select([self._status_fd], [], [], timeout)
            if not ready:
                return None
            data = os.read(self._status_fd, 16)
            os.close(self._status_fd)
            if len(data) >= 4:
                self.returncode = os.waitstatus_to_exitcode(int.from_bytes(data[:4], "little"))
            else:  # the template ended before it could say: the child was killed with it
                self.returncode = -signal.SIGKILL
            return self.returncode

    def poll(self) -> int | None:
        return self._read_status(0)

    @property
    def status_fd(self) -> int:
        """A descriptor that becomes readable when the child has exited (for an event loop's ``add_reader``)."""
        return self._status_fd

    def wait(self, timeout: float | None = None) -> int:
        code = self._read_status(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return code

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def communicate(self, data: bytes, pipes: tuple[int, int, int], timeout: float) -> tuple[bytes, bytes]:
        """Write ``data`` to the child's stdin and read its stdout and stderr, as
        :meth:`subprocess.Popen.communicate` does; ``pipes`` are this side's ends (stdin's write end, stdout's
        and stderr's read ends), closed here. On timeout the child is killed and TimeoutExpired raised."""
        stdin, stdout, stderr = pipes
        read: dict[int, list[bytes]] = {stdout: [], stderr: []}

        def drain(fd: int) -> None:
            with contextlib.suppress(OSError):
                while chunk := os.read(fd, 1 << 16):
                    read[fd].append(chunk)

        def feed() -> None:
            with contextlib.suppress(OSError):
                view = memoryview(data)
                while view:
                    view = view[os.write(stdin, view):]
            os.close(stdin)

        threads = [threading.Thread(target=feed, daemon=True)] + [
            threading.Thread(target=drain, args=(fd,), daemon=True) for fd in (stdout, stderr)]
        for thread in threads:
            thread.start()
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.wait()
            raise
        finally:
            for thread in threads:
                thread.join(5)
            for fd in (stdout, stderr):
                with contextlib.suppress(OSError):
                    os.close(fd)
        return b"".join(read[stdout]), b"".join(read[stderr])


class TemplateError(RuntimeError):
    """The template could not start or could not fork: the caller starts the process the usual way."""


class Template:
    """A connection to a template process (see the module docstring)."""

    def __init__(self, connection: socket.socket, process: subprocess.Popen | None, preload: tuple[str, ...]):
        self._connection = connection
        self._process = process  # None: a connection inherited from the parent process
        self.preload = preload
        self._lock = threading.Lock()
        self.closed = False

    @classmethod
    def start(cls, preload: tuple[str, ...]) -> Template:
        """A new template process that imports ``preload``; raises :class:`TemplateError` if it does not start."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        environment = {k: v for k, v in os.environ.items() if k != _INHERITED_FD}
        try:
            process = subprocess.Popen([sys.executable, "-m", __spec__.name, str(theirs.fileno()), *preload],
                                       pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=environment)
        except OSError as error:
            ours.close()
            raise TemplateError(f"the template did not start: {error}") from error
        finally:
            theirs.close()
        ours.settimeout(_START_TIMEOUT)
        try:
            ready = json.loads(ours.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as error:
            process.kill()
            ours.close()
            raise TemplateError(f"the template did not say it was ready: {error}") from error
        ours.settimeout(None)
        if not ready.get("ready"):
            process.kill()
            ours.close()
            raise TemplateError("the template ended while importing its modules")
        return cls(ours, process, preload)

    def spawn(self, module: str, args: Sequence[str] = (), *, cwd: str | Path, env: Mapping[str, str],
              memory_limit_mb: int = 0, stdin: int | None = None, stdout: int | None = None,
              stderr: int | None = None, pass_fds: Sequence[int] = (), new_session: bool = False,
              share: bool = False) -> Child:
        """Fork a child that runs ``python -m module args`` in ``cwd`` with environment ``env``.

        ``stdin``, ``stdout``, ``stderr``: file descriptors of this process the child gets as its
        standard streams (``None``: ``/dev/null`` for stdin, this process's own for the others).
        ``pass_fds``: more descriptors the child gets; ``{0}``, ``{1}``, ... in ``args`` become
        their numbers in the child.
        ``memory_limit_mb``: the child's address space (RLIMIT_AS; 0: no limit).
        ``new_session``: the child starts a session (and process group) of its own.
        ``share``: the child gets a connection to this template (:func:`inherited`).
        """
        status_r, status_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY)
        streams = [devnull if stdin is None else stdin, 1 if stdout is None else stdout,
                   2 if stderr is None else stderr]
        extra: socket.socket | None = None
        fds = [status_w, *streams, *pass_fds]
        env = {k: v for k, v in env.items() if k != _INHERITED_FD}  # a connection is only given, never inherited
        request = {"module": module, "args": list(args), "cwd": str(cwd), "env": env,
                   "memory_limit": memory_limit_mb * 1024 * 1024, "passed": len(pass_fds),
                   "new_session": new_session, "share": share}
        try:
            with self._lock:
                if self.closed:
                    raise TemplateError("the template is closed")
                if share:  # a new connection for the child: one end to the template, one to the child
                    extra, for_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                    fds += [extra.fileno(), for_child.fileno()]
                try:
                    socket.send_fds(self._connection, [json.dumps(request).encode()], fds)
                    answer = json.loads(self._connection.recv(1 << 16) or b"{}")
                finally:
                    if share:
                        extra.close()
                        for_child.close()
        except (OSError, ValueError) as error:
            os.close(status_r)
            raise TemplateError(f"the template did not answer: {error}") from error
        finally:
            os.close(status_w)
            os.close(devnull)
        if "pid" not in answer:
            os.close(status_r)
            raise TemplateError(f"the template could not fork: {answer.get('error', 'no answer')}")
        return Child(answer["pid"], status_r, [sys.executable, "-m", module, *args])

    def alive(self) -> bool:
        """Whether the template can still fork (it is not closed, and its process, if this one started it, runs)."""
        return not self.closed and (self._process is None or self._process.poll() is None)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            with contextlib.suppress(OSError):
                self._connection.close()
        if self._process is not None:
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


_TEMPLATES: dict[tuple[str, ...], Template | None] = {}
_TEMPLATES_LOCK = threading.Lock()


def template(preload: tuple[str, ...] = BASE) -> Template | None:
    """This process's template that imported ``preload``, started on first use; None when templates are off
    or this one could not start (the caller then starts its process the usual way)."""
    if not enabled():
        return None
    with _TEMPLATES_LOCK:
        found = _TEMPLATES.get(preload)
        if found is not None and not found.alive():  # killed (by a student's code, or for memory): a new one
            found.close()
            del _TEMPLATES[preload]
        if preload not in _TEMPLATES:
            try:
                _TEMPLATES[preload] = Template.start(preload)
            except TemplateError as error:
                print(f"softgrad: {error}; starting processes the usual way", file=sys.stderr)
                _TEMPLATES[preload] = None
        found = _TEMPLATES[preload]
        return None if found is None or found.closed else found


def inherited() -> Template | None:
    """The connection to its template that this process was given (``share=True``), or None."""
    fd = os.environ.get(_INHERITED_FD)
    if not fd or not enabled():
        return None
    with _TEMPLATES_LOCK:
        if ("inherited",) not in _TEMPLATES:
            try:
                connection = socket.socket(fileno=int(fd))
            except (OSError, ValueError):
                connection = None
            _TEMPLATES[("inherited",)] = None if connection is None else Template(connection, None, ())
        found = _TEMPLATES[("inherited",)]
        return None if found is None or found.closed else found


@atexit.register
def _close_templates() -> None:
    for found in list(_TEMPLATES.values()):
        if found is not None:
            found.close()


# ---------------------------------------------------------------------------------------
# The server side: the template itself


class _Task:
    """What a forked child runs, once it has left the template's loop."""

    def __init__(self, request: dict, fds: list[int]):
        self.request, self.fds = request, fds


def _serve(first: socket.socket) -> _Task | None:
    """Answer requests until the first connection closes. In a child: return its task."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd is what matters
    connections = {first.fileno(): first}
    statuses: dict[int, int] = {}  # pid -> the write end of its status pipe

    def reap() -> None:
        while statuses:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = statuses.pop(pid, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.write(fd, status.to_bytes(4, "little"))
                os.close(fd)

    while first.fileno() in connections:
        ready, _, _ = select.select([*connections, wake_r], [], [])
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            reap()
        for fd in ready:
            if fd == wake_r:
                continue
            connection = connections[fd]
            try:
                message, fds, _flags, _address = socket.recv_fds(connection, 1 << 20, 64)
            except OSError:
                message, fds = b"", []
            if not message:
                connections.pop(fd).close()
                continue
            request = json.loads(message)
            if request.get("share"):  # the last two: the template's end of a new connection, and the child's
                connections[fds[-2]] = socket.socket(fileno=fds[-2])
            pid = os.fork()
            if pid == 0:  # the child: leave the template's loop with nothing of it open
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for other in connections.values():
                    other.close()
                for other in (wake_r, wake_w, *statuses.values()):
                    with contextlib.suppress(OSError):
                        os.close(other)
                return _Task(request, fds[:-2] + fds[-1:] if request.get("share") else fds)
            statuses[pid] = fds[0]
            for other in fds[1:-2] + fds[-1:] if request.get("share") else fds[1:]:
                os.close(other)
            with contextlib.suppress(OSError):
                connection.send(json.dumps({"pid": pid}).encode())
            reap()
    for pid in statuses:  # the grader has gone: so do the processes it asked for, as its own children would
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return None


def _run(task: _Task) -> None:
    """In the forked child: become the process the request describes, then run its module as ``-m`` would."""
    import runpy
    import traceback

    request, fds = task.request, task.fds
    status_w, streams, rest = fds[0], fds[1:4], fds[4:]
    os.close(status_w)
    passed, shared = rest[:request["passed"]], rest[request["passed"]:]
    if request["new_session"]:
        os.setsid()
    if request["memory_limit"]:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (request["memory_limit"], request["memory_limit"]))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for target, fd in enumerate(streams):
        os.dup2(fd, target)
        os.close(fd)
    for fd in passed:
        os.set_inheritable(fd, True)
    if shared:
        os.environ[_INHERITED_FD] = str(shared[0])
    # a new process's state, where the template's copy would be shared by every child (Python's own
    # generator reseeds itself after a fork; NumPy's global one does not)
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.argv = [request["module"], *(str(passed[int(arg[1:-1])]) if re.fullmatch(r"\{\d+\}", arg) else arg
                                     for arg in request["args"])]
    sys.path[0] = os.getcwd()
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            code = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:  # noqa: BLE001 (what Python does with an uncaught exception: print it, exit 1)
        traceback.print_exc()
        code = 1
    # Then end as a forked process of multiprocessing does: wait for the threads, run the atexit functions,
    # flush, and skip tearing down the interpreter (the modules the template imported), which only costs time.
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def main() -> None:
    import importlib

    connection = socket.socket(fileno=int(sys.argv[1]))
    # ipykernel's debugger (debugpy) warns on import that Python's modules are frozen: not here (its children
    # get their own environment)
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt of the grader is not for the template
    for name in sys.argv[2:]:
        with contextlib.suppress(Exception):  # a module that does not import: its children import it themselves
            importlib.import_module(name)
    connection.send(json.dumps({"ready": True, "pid": os.getpid(), "time": time.process_time()}).encode())
    task = _serve(connection)
    if task is not None:
        _run(task)


if __name__ == "__main__":
    main()
