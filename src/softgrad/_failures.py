"""How checks fail: one place that raises, and the formatting of the evidence.

Every check in the library raises :class:`AssertionError` through :func:`fail`. In a
notebook, IPython hides the frames of the library's helpers (they set
``__tracebackhide__``), so the student sees the test line that failed and this message,
not the library's internals.
"""

from __future__ import annotations

import textwrap

import numpy as np

MESSAGE_WIDTH = 80
"""Messages are wrapped to this width: nbgrader's feedback pages do not wrap long lines."""


def wrap_message(message: str, width: int = MESSAGE_WIDTH) -> str:
    """Wrap every line of ``message`` to ``width``, continuing each one two spaces further in.

    Words are never split (so mistake ids such as ``[softmax-no-max-shift]`` stay whole).
    """
    wrapped = []
    for line in message.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        wrapped.append(textwrap.fill(line, width=width, subsequent_indent=indent + "  ",
                                     break_long_words=False, break_on_hyphens=False) or line)
    return "\n".join(wrapped)


def fail(message: str, cause: BaseException | None = None) -> None:
    """Raise the AssertionError a student reads (``cause`` is chained for context)."""
    raise AssertionError(wrap_message(message)) from cause


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


def worst_entries(actual: np.ndarray, expected: np.ndarray, count: int = 3) -> list[str]:
    """The ``count`` entries where ``actual`` and ``expected`` differ most, as lines of text.

    A nan or an infinity where the expected value is finite counts as the largest difference.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(actual - expected)
    both_equal = (actual == expected) | (np.isnan(actual) & np.isnan(expected))
    diff = np.where(both_equal, 0.0, np.where(np.isfinite(diff), diff, np.inf))
    order = np.argsort(-diff.reshape(-1), kind="stable")[:count]
    lines = []
    for flat in order:
        if diff.reshape(-1)[flat] == 0.0:
            break
        index = np.unravel_index(int(flat), actual.shape) if actual.shape else ()
        lines.append(
            f"{format_index(index) if index else 'value'}: yours {format_value(actual[index])}, "
            f"expected {format_value(expected[index])}"
        )
    return lines
