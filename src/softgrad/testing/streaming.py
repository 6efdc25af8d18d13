"""Checks of memory and of one-pass algorithms over streams of chunks (chapter 8)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from softgrad import reference
from softgrad._failures import fail
from softgrad.i18n import _, ngettext
from softgrad.measure import peak_memory
from softgrad.mistakes import MUTATES_INPUT, Mistake, suspects
from softgrad.testing.core import _bytes, _case, _judge, _measured_call, call_student, describe_array, expected_dtype
from softgrad.testing.diagnosis import Evidence
from softgrad.testing.rerun import watched_only_in_kernel


def check_peak_memory(
    function: Callable[..., object],
    *args: object,
    name: str,
    limit: int,
    explanation: str,
    mistake: Mistake | None = None,
    arg_names: Sequence[str] = ("z",),
    case: str = "",
    **kwargs: object,
) -> None:
    """Check that one call of ``function`` allocates at most ``limit`` bytes at its peak.

    Memory is measured with :func:`softgrad.measure.peak_memory` (NumPy's allocations, not
    the process). ``explanation`` says in words what the limit allows ("16 arrays the size
    of z"); ``mistake`` is named when the limit is exceeded.

    When the grader re-runs the test outside the notebook (``function`` is a sandbox proxy,
    :mod:`softgrad.grader.replay`), the student's code runs in another process, whose allocations
    this process cannot see; the check then skips itself and the notebook run's result stands.
    """
    __tracebackhide__ = True
    if watched_only_in_kernel(function, "check_peak_memory"):
        return  # measured in the notebook run; across a process boundary only the copying would count
    what, peak = _measured_call(peak_memory, function, args, kwargs, name=name, arg_names=arg_names, case=case)
    if peak > limit:
        message = _("{what} allocated {peak} at its peak; the limit is {limit} ({explanation}).").format(
            what=what, peak=_bytes(peak), limit=_bytes(limit), explanation=_(explanation))
        if mistake is not None:
            message += "\n" + mistake.describe()
        fail(message)


def check_online_logsumexp(
    function: Callable[..., object],
    chunks: Sequence[np.ndarray],
    *,
    case: str = "",
    one_shot: bool = True,
) -> None:
    """Check ``function(chunks)`` against the log-sum-exp of the chunks joined together.

    With ``one_shot`` (the default) the student's function receives a generator over the
    chunks, which can be read only once: code that loops over the chunks twice, or indexes
    them like a list, gets nothing (or an error) on its second look. Otherwise it receives
    the list. Every known wrong implementation of ``online_logsumexp`` is run on a fresh
    generator (or list) of the same chunks to name the mistake. The result must be a NumPy
    array of the rows' shape, in the chunks' floating dtype, and agree with the float64
    reference within :func:`forward_tolerance`.
    """
    __tracebackhide__ = True
    chunks = [np.asarray(c) for c in chunks]
    joined = np.concatenate(chunks, axis=-1)

    def fresh():
        copies = [c.copy() for c in chunks]  # whatever a function does to them, `chunks` stays intact
        return (c for c in copies) if one_shot else copies

    known = {
        mistake: [lambda *_, impl=impl: impl(fresh()) for impl in implementations]
        for mistake, implementations in suspects("online_logsumexp").items()
    }
    widths = [c.shape[-1] for c in chunks]
    shown = widths if len(widths) <= 6 else [*widths[:3], "...", *widths[-2:]]
    # TRANSLATORS: {kind} is "a one-shot generator" or "a list"; {logits} describes the joined chunks
    what = ngettext("online_logsumexp(chunks) with {count} chunk of widths {widths} ({kind}) forming {logits}",
                    "online_logsumexp(chunks) with {count} chunks of widths {widths} ({kind}) forming {logits}",
                    len(chunks)).format(count=len(chunks), widths=shown,
                                        kind=_("a one-shot generator") if one_shot else _("a list"),
                                        logits=describe_array("logits", joined)) + _case(case)
    given = [c.copy() for c in chunks]
    outcome = call_student(function, (c for c in given) if one_shot else given, arg_names=("chunks",),
                           name="online_logsumexp", mistakes=known)
    if not all(np.array_equal(a, b, equal_nan=True) for a, b in zip(chunks, given, strict=True)):
        fail(_("{what}: the function modified the chunks it was given; it must leave the caller's arrays "
               "unchanged.").format(what=what) + "\n" + MUTATES_INPUT.describe())
    def stream(arguments: tuple) -> tuple:  # every call gets a stream of its own (copies: nothing is changed)
        copies = [np.array(c, copy=True) for c in arguments[0]]
        return ((c for c in copies) if one_shot else copies,)

    evidence = Evidence(suspects("online_logsumexp"), (chunks,), {}, student=function, prepare=stream)
    _judge(outcome.value, reference.logsumexp_of_chunks(chunks), what=what, dtype=expected_dtype(joined),
           strict_dtype=True, evidence=evidence, data=(joined,), warnings_seen=outcome.warnings)
