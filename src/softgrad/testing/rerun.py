"""What the checks need to know about the grader's re-run of a test outside the student's kernel.

After a notebook has run, the grader runs every test cell again in a trusted process, with the
student's functions in a sandbox process and a proxy standing for each of them
(:mod:`softgrad.grader.replay`). A few checks watch the student's code from the inside:
counting the lines it runs, measuring what it allocates, watching which provided functions it
calls. Across a process boundary they would watch the proxy instead. They call
:func:`watched_only_in_kernel` first, skip themselves in the re-run, and the result of the
notebook run stands.
"""

from __future__ import annotations

__all__ = ["PROXY_MARK", "REMOTE_CALLS", "UNVERIFIABLE", "watched_only_in_kernel"]

PROXY_MARK = "__softgrad_proxy__"
"""The attribute that marks a sandbox proxy (set by :class:`softgrad.grader.sandbox.Proxy`)."""

UNVERIFIABLE: list[str] = []
"""Why the running test cell could not be verified outside the kernel (the re-run reads and clears it)."""


def watched_only_in_kernel(function: object, check: str) -> bool:
    """True (and the running test cell is marked unverifiable) when ``function`` is a sandbox proxy.

    Checks that watch the student's code from the inside cannot do that across a process
    boundary; they call this first and skip themselves in the re-run, so that the notebook
    run's result stands.
    """
    if getattr(function, PROXY_MARK, False):
        UNVERIFIABLE.append(f"{check} watches the code from inside its own process")
        return True
    return False

REMOTE_CALLS = "__softgrad_remote_calls__"
"""In the re-run, the attribute of a stand-in for a student's autograd.Function
(:mod:`softgrad.grader.remote`): the calls the student's Function made where it really ran,
``[(kind, phase, name shown), ...]``, which :func:`softgrad.testing.pytorch.watching_calls` adds to
what it watched (``kind`` is ``"forbidden"`` or ``"host"``)."""
