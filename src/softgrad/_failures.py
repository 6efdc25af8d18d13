"""How checks fail: one place that raises, and the formatting of the evidence.

Every check in the library raises :class:`AssertionError` through :func:`fail`. In a
notebook, IPython hides the frames of the library's helpers (they set
``__tracebackhide__``), so the student sees the test line that failed and this message,
not the library's internals.
"""

from __future__ import annotations

import numpy as np

from softgrad.i18n import _, wrap

MESSAGE_WIDTH = 80
"""Messages are wrapped to this width: nbgrader's feedback pages do not wrap long lines."""


def wrap_message(message: str, width: int = MESSAGE_WIDTH) -> str:
    """Wrap every line of ``message`` to ``width``, continuing each one two spaces further in.

    Words are never split (so mistake ids such as ``[softmax-no-max-shift]`` stay whole). A line in Chinese
    is wrapped at its display width (a Chinese character is two columns wide) and may break between two
    Chinese characters (:func:`softgrad.i18n.wrap`).
    """
    wrapped = []
    for line in message.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        wrapped.append(wrap(line, width, indent + "  "))
    return "\n".join(wrapped)


def fail(message: str, cause: BaseException | None = None) -> None:
    """Raise the AssertionError a student reads (``cause`` is chained for context).

    Its frame, like every check's, sets ``__tracebackhide__``: IPython (and pytest) leave it out
    of the traceback, so that a student sees the line of the test that failed and then the
    message, with no frame of the library between them.
    """
    __tracebackhide__ = True
    raise AssertionError(wrap_message(message)) from cause


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 entry``, ``3 entries``: a count with its noun in the right number."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def format_index(index: tuple[int, ...]) -> str:
    """``(1, 2)`` as ``[1, 2]``, the way a student indexes the array."""
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def format_value(value: float) -> str:
    """A number short enough for a message, exact enough to compare by eye."""
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def format_pair(mine: float, right: float) -> tuple[str, str]:
    """Two numbers written with as many digits as it takes to see that they differ (up to 17)."""
    for digits in (6, 9, 12, 17):
        a, b = (format_value(v) if not np.isfinite(v) else f"{v:.{digits}g}" for v in (mine, right))
        if a != b:
            return a, b
    return a, b


def worst_entries(actual: np.ndarray, expected: np.ndarray, count: int = 3,
                  wrong: np.ndarray | None = None) -> list[str]:
    """The ``count`` entries where ``actual`` and ``expected`` differ most, as lines of text.

    A nan or an infinity where the expected value is finite counts as the largest difference.
    Only entries that differ are listed (with ``wrong``, a boolean mask, only those it marks), and
    each pair is written with enough digits to show the difference.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(actual - expected)
    both_equal = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    diff = np.where(both_equal, 0.0, np.where(np.isfinite(diff), diff, np.inf))
    if wrong is not None:
        diff = np.where(np.asarray(wrong, dtype=bool), diff, 0.0)
    order = np.argsort(-diff.reshape(-1), kind="stable")[:count]
    lines = []
    for flat in order:
        if diff.reshape(-1)[flat] == 0.0:
            break
        index = np.unravel_index(int(flat), actual.shape) if actual.shape else ()
        mine, right = format_pair(float(actual[index]), float(expected[index]))
        # TRANSLATORS: one entry of a wrong result: "[1, 2]: yours nan, expected 0.5"
        lines.append(_("{index}: yours {mine}, expected {right}").format(
            index=format_index(index) if index else _("value"), mine=mine, right=right))
    return lines
