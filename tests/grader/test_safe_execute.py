"""SafeExecute on small notebooks, without nbgrader around it: each limit does what it says."""

from __future__ import annotations

import asyncio
import queue
import socket

import nbformat
import pytest
import zmq
from jupyter_client.connect import LocalPortCache

from softgrad.grader.preprocessors import SafeExecute, VerifyOutsideKernel
from softgrad.grader.preprocessors.execute import PromptKernelClient

pytestmark = pytest.mark.slow


def run(*sources: str, **limits) -> list[list[tuple[str, str]]]:
    """Execute code cells; return each cell's outputs as (kind, text) pairs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    options = {"timeout": 10, "interrupt_grace": 2, "extra_arguments": ["--HistoryManager.hist_file=:memory:"]}
    SafeExecute(**(options | limits)).preprocess(nb, {"metadata": {"path": "."}})
    return [[(o.get("ename") or o.get("name"), str(o.get("evalue", o.get("text", "")))) for o in c.outputs]
            for c in nb.cells]


def test_the_kernel_gets_memory_error_at_the_address_space_limit():
    outputs = run("import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20)",
                  "import numpy as np\nhoard = []\nwhile True:\n    hoard.append(np.ones(10**7))",
                  "print('still alive')", memory_limit_mb=1536)
    assert outputs[0] == [("stdout", "1536\n")]
    assert "MemoryError" in [kind for kind, _ in outputs[1]], outputs
    assert outputs[2] == [("stdout", "still alive\n")], "the kernel survives its MemoryError"


def test_a_kernel_over_the_limit_is_killed_from_outside_when_the_limit_inside_is_off():
    outputs = run("import numpy as np\nhoard = []\nwhile True:\n    hoard.append(np.ones(10**7))",
                  "print('never')", memory_limit_mb=1024, limit_address_space=False)
    assert outputs[0][-1][0] == "KernelDied" and "memory limit of 1024 MiB" in outputs[0][-1][1]
    assert outputs[1][0][0] == "NotRun" and "kernel died in an earlier cell" in outputs[1][0][1]


def test_output_beyond_the_limit_is_dropped_with_a_note():
    outputs = run("for i in range(100):\n    print('x' * 1000)", output_limit_bytes=10_000)
    text = "".join(t for _, t in outputs[0])
    assert len(text) < 20_000 and "dropped the rest of this cell's output" in text


def test_the_notebook_time_budget_stops_the_cells_after_it():
    outputs = run("import time; time.sleep(3)", "print('late')", notebook_timeout=2)
    assert outputs[1][0][0] == "NotRun" and "2 s of grading time" in outputs[1][0][1]


@pytest.fixture
def a_taken_port(monkeypatch):
    """The race Jupyter leaves open: the first port handed to a kernel is taken by another process first.

    Jupyter picks a kernel's ports, frees them, and the kernel binds them a moment later; another
    grading worker, or any outgoing connection, can take one in between. Yields the handed-out ports.
    """
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    handed: list[int] = []
    find = LocalPortCache.find_available_port

    def the_taken_port_first(self, ip):
        handed.append(taken.getsockname()[1] if not handed else find(self, ip))
        return handed[-1]

    monkeypatch.setattr(LocalPortCache, "find_available_port", the_taken_port_first)
    yield handed
    taken.close()


def test_a_kernel_that_lost_its_port_is_started_again_and_the_notebook_runs(a_taken_port):
    assert run("print('graded')") == [[("stdout", "graded\n")]]
    assert len(a_taken_port) >= 10, "the kernel was not started a second time: the test proves nothing"


def test_without_a_second_start_the_lost_port_costs_the_notebook(a_taken_port):
    """The same race with one attempt: what happened to a whole submission before the retry."""
    with pytest.raises(RuntimeError, match="died before replying"):
        run("print('graded')", kernel_start_attempts=1)


def test_an_early_displayed_number_does_not_hide_a_failure():
    """nbgrader takes the first execute_result of a cell as its score; an error must come first."""
    cell = nbformat.v4.new_code_cell("x", metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 2,
                                                                 "solution": False, "locked": True}})
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1),
                    nbformat.v4.new_output("error", ename="AssertionError", evalue="wrong", traceback=[])]
    nb = nbformat.v4.new_notebook(cells=[cell])
    VerifyOutsideKernel._protect_scores(nb)
    assert nb.cells[0].outputs[0].output_type == "error"


# -- a new kernel is ready when it says so (PromptKernelClient) --

class _Channel:
    """A kernel's channel that hands out scripted messages; ``None`` in the script is a wait that times out."""

    def __init__(self, script: list):
        self.script, self.empty = list(script), 0

    async def get_msg(self, timeout=None):
        if not self.script or self.script[0] is None:
            self.script[:1] = []
            self.empty += 1
            raise queue.Empty
        return self.script.pop(0)


def _message(kind: str, parent: str = "", **content) -> dict:
    return {"msg_type": kind, "parent_header": {"msg_id": parent} if parent else {}, "content": content,
            "header": {"msg_type": kind}}


class _ScriptedClient(PromptKernelClient):
    """PromptKernelClient on scripted channels; its kernel_info requests are ki-1, ki-2, ..."""

    def __init__(self, shell: list, iopub: list, alive: bool = True):
        super().__init__()
        self._shell, self._iopub, self._alive, self.asked = _Channel(shell), _Channel(iopub), alive, []

    @property
    def shell_channel(self):
        return self._shell

    @property
    def iopub_channel(self):
        return self._iopub

    def kernel_info(self):
        self.asked.append(f"ki-{len(self.asked) + 1}")
        return self.asked[-1]

    async def _async_is_alive(self):
        return self._alive


def _reply(parent: str) -> dict:
    return _message("kernel_info_reply", parent, status="ok", protocol_version="5.3")


def test_a_new_kernel_is_ready_once_it_is_idle_after_a_kernel_info_request():
    """Not after IOPub has been silent for 0.2 s (jupyter_client's wait): what follows the idle is left unread."""
    later = _message("stream", "someone-else", name="stdout", text="later")
    client = _ScriptedClient([_reply("ki-1")], [_message("iopub_welcome"), _message("status", "ki-1",
                             execution_state="busy"), _message("status", "ki-1", execution_state="idle"), later])
    asyncio.run(client.wait_for_ready(timeout=5))
    assert client._iopub.script == [later] and client._iopub.empty == 0


def test_a_kernel_that_answered_before_iopub_was_connected_is_asked_again_at_once():
    """What the kernel published about the first request went nowhere; the second request's idle arrives."""
    client = _ScriptedClient([_reply("ki-1")], [_message("iopub_welcome"),
                                                _message("status", "ki-2", execution_state="busy"),
                                                _message("status", "ki-2", execution_state="idle")])
    asyncio.run(client.wait_for_ready(timeout=5))
    assert client.asked == ["ki-1", "ki-2"] and client._iopub.empty == 0 and client._iopub.script == []


def test_a_kernel_silent_on_iopub_is_asked_again_as_jupyter_client_does():
    """No idle within 0.2 s of the reply (an old kernel, no welcome): a new request, as jupyter_client sends."""
    client = _ScriptedClient([_reply("ki-1"), _reply("ki-2")],
                             [None, _message("status", "ki-2", execution_state="idle")])
    asyncio.run(client.wait_for_ready(timeout=5))
    assert client.asked == ["ki-1", "ki-2"] and client._iopub.empty == 1


def test_an_idle_that_arrives_after_the_next_request_still_counts():
    """On a loaded machine IOPub may lag the shell channel by more than 0.2 s: the first request's idle arrives
    while the second is waited for, and it proves as much as the second's would."""
    client = _ScriptedClient([_reply("ki-1"), _reply("ki-2")],
                             [None, _message("status", "ki-1", execution_state="idle")])
    asyncio.run(client.wait_for_ready(timeout=0.5))
    assert client.asked == ["ki-1", "ki-2"] and client._iopub.script == []


def test_a_kernel_that_dies_before_it_answers_is_reported_in_jupyter_clients_words():
    """SafeExecute starts the kernel again when it reads them (a port lost to another process)."""
    client = _ScriptedClient([None], [], alive=False)
    with pytest.raises(RuntimeError, match="died before replying"):
        asyncio.run(client.wait_for_ready(timeout=5))


def test_a_kernel_that_never_answers_times_out():
    client = _ScriptedClient([None, None], [])
    with pytest.raises(RuntimeError, match="didn't respond in 0 seconds"):
        asyncio.run(client.wait_for_ready(timeout=0))


def test_the_course_s_kernels_are_waited_for_by_the_prompt_client():
    """Whose sockets try a refused connection again after 10 ms (ZeroMQ's default: 100 ms); the notebook runs."""
    clients = []

    class Recording(SafeExecute):
        def start_new_kernel_client(self):
            super().start_new_kernel_client()
            clients.append((type(self.kc), self.kc.shell_channel.socket.getsockopt(zmq.RECONNECT_IVL),
                            self.kc.iopub_channel.socket.getsockopt(zmq.RECONNECT_IVL)))

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('first')")])
    Recording(timeout=10, extra_arguments=["--HistoryManager.hist_file=:memory:"]).preprocess(
        nb, {"metadata": {"path": "."}})
    assert clients == [(PromptKernelClient, 10, 10)]
    assert [(o.output_type, o.get("text")) for o in nb.cells[0].outputs] == [("stream", "first\n")]
