"""The template process: each child is a new process with its own state, and a process dies as a Popen'd one would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from softgrad.grader import template
from softgrad.grader.preprocessors import SafeExecute

pytestmark = pytest.mark.slow

# A module the children run (as `python -m` would): it reports what a process can see of itself.
REPORTER = textwrap.dedent("""
    import json, os, random, resource, sys
    import numpy as np
    print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "argv": sys.argv[1:],
                      "env": os.environ.get("MARKER"), "connection": "SOFTGRAD_TEMPLATE_FD" in os.environ,
                      "limit": resource.getrlimit(resource.RLIMIT_AS)[0], "random": random.random(),
                      "numpy_random": float(np.random.rand()), "sid": os.getsid(0), "path0": sys.path[0],
                      "numpy_preloaded": "numpy" in sys.modules}))
    if len(sys.argv) > 1 and sys.argv[1] == "exit":
        sys.exit(int(sys.argv[2]))
""")


@pytest.fixture(scope="module")
def owner():
    """A template of its own (not the process-wide one), with a module of the test's on its path."""
    found = template.Template.start(("numpy.random", "random"))
    yield found
    found.close()


@pytest.fixture
def reporter(tmp_path):
    (tmp_path / "reporter_module.py").write_text(REPORTER)
    return tmp_path


def report(owner: template.Template, cwd, *args: str, **options) -> tuple[dict, int]:
    read, write = os.pipe()
    child = owner.spawn("reporter_module", args, cwd=cwd, env=dict(os.environ, MARKER="m"), stdout=write, **options)
    os.close(write)
    with os.fdopen(read) as output:
        text = output.read()
    return json.loads(text.splitlines()[0]), child.wait(30)


def test_a_child_is_a_new_process_in_its_own_directory_with_its_own_environment(owner, reporter):
    seen, code = report(owner, reporter, "a", "b c")
    assert code == 0
    assert seen["pid"] != os.getpid() and seen["ppid"] == owner._process.pid, "the template is its parent"
    assert seen["cwd"] == str(reporter) and seen["path0"] == str(reporter), "as `python -m` in that directory"
    assert seen["argv"] == ["a", "b c"] and seen["env"] == "m"
    assert seen["numpy_preloaded"], "the child starts with what the template imported"


def test_children_do_not_share_random_state(owner, reporter):
    first, _ = report(owner, reporter)
    second, _ = report(owner, reporter)
    assert first["random"] != second["random"] and first["numpy_random"] != second["numpy_random"]


def test_a_child_gets_its_memory_limit_and_session(owner, reporter):
    seen, _ = report(owner, reporter, memory_limit_mb=3000, new_session=True)
    assert seen["limit"] == 3000 * 2**20
    assert seen["sid"] == seen["pid"], "a session (and process group) of its own, as jupyter_client's kernels"


def test_the_exit_status_is_what_popen_would_say(owner, reporter):
    _, code = report(owner, reporter, "exit", "7")
    assert code == 7
    child = owner.spawn("http.server", ["0", "--bind", "127.0.0.1"], cwd=reporter, env=dict(os.environ),
                        stdout=os.open(os.devnull, os.O_WRONLY), stderr=os.open(os.devnull, os.O_WRONLY))
    assert child.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        child.wait(0.2)
    child.kill()
    assert child.wait(10) == -signal.SIGKILL


def test_passed_descriptors_reach_the_child_under_their_placeholders(owner, tmp_path):
    (tmp_path / "writer_module.py").write_text("import os, sys\nos.write(int(sys.argv[1]), b'through')\n")
    read, write = os.pipe()
    child = owner.spawn("writer_module", ["{0}"], cwd=tmp_path, env=dict(os.environ), pass_fds=(write,))
    os.close(write)
    assert child.wait(30) == 0 and os.read(read, 100) == b"through"


def test_only_a_child_given_a_connection_can_ask_the_template_for_processes(owner, reporter):
    (reporter / "parent_module.py").write_text(textwrap.dedent("""
        import os, sys
        from softgrad.grader import template
        mine = template.inherited()
        child = mine.spawn("reporter_module", [], cwd=os.getcwd(), env=dict(os.environ))
        sys.exit(10 + child.wait(30))
    """))
    child = owner.spawn("parent_module", [], cwd=reporter, env=dict(os.environ), share=True,
                        stdout=os.open(os.devnull, os.O_WRONLY))
    assert child.wait(60) == 10, "the child started a process of its own through the template"
    seen, _ = report(owner, reporter)
    assert not seen["connection"], "a child not given a connection has none"


def test_communicate_kills_a_child_that_overruns(owner, tmp_path):
    (tmp_path / "echo_module.py").write_text("import sys, time\nsys.stdout.write(sys.stdin.read().upper())\n"
                                             "sys.stdout.flush()\ntime.sleep(float(sys.argv[1]))\n")
    pipes = [os.pipe() for _ in range(3)]

    def spawn(seconds: str) -> template.Child:
        return owner.spawn("echo_module", [seconds], cwd=tmp_path, env=dict(os.environ), stdin=pipes[0][0],
                           stdout=pipes[1][1], stderr=pipes[2][1])

    child = spawn("0")
    for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
        os.close(fd)
    assert child.communicate(b"x" * 200_000, (pipes[0][1], pipes[1][0], pipes[2][0]), 30)[0] == b"X" * 200_000
    pipes = [os.pipe() for _ in range(3)]
    child = spawn("60")
    for fd in (pipes[0][0], pipes[1][1], pipes[2][1]):
        os.close(fd)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        child.communicate(b"", (pipes[0][1], pipes[1][0], pipes[2][0]), 1)
    assert time.monotonic() - started < 15 and child.returncode == -signal.SIGKILL


def test_a_template_ends_with_its_owner_and_takes_running_children_with_it(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        from softgrad.grader import template
        owner = template.Template.start(())
        child = owner.spawn("http.server", ["0", "--bind", "127.0.0.1"], cwd={str(tmp_path)!r}, env=dict(os.environ),
                            stdout=os.open(os.devnull, os.O_WRONLY), stderr=os.open(os.devnull, os.O_WRONLY))
        print(owner._process.pid, child.pid, flush=True)
        os._exit(0)  # no atexit, no close: as a grader that is killed
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    server, child = map(int, done.stdout.split())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (_alive(server) or _alive(child)):
        time.sleep(0.1)
    assert not _alive(server) and not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_switch_turns_templates_off(monkeypatch):
    monkeypatch.setenv(template.SWITCH, "0")
    assert template.template() is None and not template.enabled()


def test_a_notebook_that_imports_pytorch_gets_the_template_that_imported_it():
    assert template.preload_for(["import numpy as np", "x = 1"]) == template.BASE
    assert template.preload_for(["import numpy as np\nimport torch.nn.functional as F"]) == template.TORCH
    assert template.preload_for(["from triton import language as tl"]) == template.TORCH


@pytest.mark.parametrize("templates", ["1", "0"])
def test_the_kernel_is_forked_from_the_template_unless_templates_are_off(monkeypatch, tmp_path, templates):
    monkeypatch.setenv(template.SWITCH, templates)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os; print(os.getppid(), os.getpid())")])
    SafeExecute(timeout=30, extra_arguments=["--HistoryManager.hist_file=:memory:"]).preprocess(
        nb, {"metadata": {"path": str(tmp_path)}})
    parent, kernel = map(int, nb.cells[0].outputs[0].text.split())
    if templates == "1":
        assert parent == template.template()._process.pid and kernel != os.getpid()
    else:
        assert parent == os.getpid()


def test_a_template_killed_by_a_students_code_is_replaced_at_the_next_request():
    """A kernel's parent is its template: `os.kill(os.getppid(), 9)` in a notebook kills the template."""
    first = template.template()
    os.kill(first._process.pid, signal.SIGKILL)
    first._process.wait()
    second = template.template()
    assert second is not None and second is not first and second.alive() and not first.alive()


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie waiting for init to reap it has ended too)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


@pytest.mark.parametrize("templates", ["1", "0"])
def test_the_kernel_and_what_it_started_end_with_the_notebook(monkeypatch, tmp_path, templates):
    """Once the last cell has run, the kernel is killed at once, with every process its code started."""
    monkeypatch.setenv(template.SWITCH, templates)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, subprocess\nchild = subprocess.Popen(['sleep', '60'])\nprint(os.getpid(), child.pid)")])
    executor = SafeExecute(timeout=30, extra_arguments=["--HistoryManager.hist_file=:memory:"])
    assert executor.shutdown_kernel == "immediate"
    executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    kernel, child = map(int, nb.cells[0].outputs[0].text.split())
    try:
        assert _gone(kernel) and _gone(child)
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_killing_a_forked_kernel_returns_once_it_has_exited(tmp_path):
    """jupyter_client then finds the kernel gone at its first look (it looks again only every 0.1 s)."""
    import asyncio

    from softgrad.grader.preprocessors.execute import TemplateProvisioner

    child = template.template().spawn("timeit", ["-n", "1000", "import time; time.sleep(1)"], cwd=tmp_path,
                                      env=dict(os.environ), new_session=True)
    provisioner = TemplateProvisioner(kernel_id="k", kernel_spec=None, parent=None)
    provisioner.process, provisioner.pid, provisioner.pgid = child, child.pid, child.pid
    assert child.poll() is None
    asyncio.run(provisioner.kill())
    assert child.poll() == -signal.SIGKILL
