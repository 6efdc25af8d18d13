"""softgrad.book's helpers for the chapters: feedback() shows what a student reads, mistake_table() lists mistakes."""

from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest
from support.entries import Entry

from softgrad import book
from softgrad.book import FEEDBACK_WIDTH, feedback, mistake_table

# ---- feedback ---------------------------------------------------------------------------------


def _failing_check(value, *, limit):
    if value > limit:
        raise AssertionError(f"value {value} is above the limit {limit}.\n  See: the chapter.")


def test_feedback_returns_the_message_of_a_failed_check():
    assert feedback(_failing_check, 3, limit=1) == "value 3 is above the limit 1.\n  See: the chapter."


def test_feedback_says_passed_and_shows_what_the_check_returned():
    assert feedback(_failing_check, 0, limit=1) == "passed"
    assert feedback(lambda: "relative error 1e-11") == "passed: relative error 1e-11"


def test_feedback_lets_other_errors_through():
    """A check that crashes is a bug to see, not feedback to print."""
    def broken(x):
        raise ValueError("the check itself is broken")

    with pytest.raises(ValueError, match="broken"):
        feedback(broken, 1)


def test_feedback_wraps_long_lines_and_keeps_their_indentation():
    words = " ".join(f"word{i}" for i in range(60))

    def wordy():
        raise AssertionError(f"short first line\n    {words}")

    lines = feedback(wordy).splitlines()
    assert lines[0] == "short first line"
    assert len(lines) > 3 and all(len(line) <= FEEDBACK_WIDTH for line in lines)
    assert lines[1].startswith("    word0") and all(line.startswith("      word") for line in lines[2:])
    assert " ".join(" ".join(lines[1:]).split()) == words  # nothing lost or reordered


def test_feedback_passes_arguments_through_unchanged():
    seen = {}

    def check(*args, **kwargs):
        seen.update(args=args, kwargs=kwargs)

    z = np.arange(3.0)
    feedback(check, z, "g", name="softmax", axis=0)
    assert seen["args"][0] is z and seen["args"][1] == "g" and seen["kwargs"] == {"name": "softmax", "axis": 0}


def test_feedback_works_with_the_course_checks():
    """The helper is used with softgrad.testing's checks: a wrong softmax yields the named mistake."""
    from softgrad import reference
    from softgrad.testing import check_against_reference

    def softmax_without_shift(z, axis=-1):
        e = np.exp(z)
        return e / np.sum(e, axis=axis, keepdims=True)

    with np.errstate(all="ignore"):
        message = feedback(check_against_reference, softmax_without_shift, reference.softmax,
                           np.array([[1000.0, 999.0], [1.0, 2.0]]))
    assert "softmax-no-max-shift" in message
    assert feedback(check_against_reference, reference.softmax, reference.softmax, np.ones((2, 3))) == "passed"


# ---- mistake_table ----------------------------------------------------------------------------




CATALOGUE = [
    Entry("no-shift", "softmax without the shift", "exp overflows. Subtract the max.",
          "Chapter 1, The softmax function, section 'The max trick'"),
    Entry("pipe-title", "a title with a | pipe", "It breaks tables; escape it. More text.",
          "Chapter 1, The softmax function, section 'Batches and axes'"),
    Entry("other-chapter", "a Jacobian mistake", "Elsewhere.",
          "Chapter 3, The Jacobian of softmax, section 'The quotient rule, step by step'"),
]


def _rows(table):
    return [line for line in str(table).splitlines()[2:]]


def test_mistake_table_lists_the_chapters_entries_with_the_rows_given():
    table = mistake_table(CATALOGUE, "The softmax function",
                          {"no-shift": ("overflow: inf / inf", "logits of ±1000"),
                           "pipe-title": ("a | b", "a square batch")})
    text = str(table)
    assert text.splitlines()[0] == "| Mistake | What goes wrong | Caught by |"
    rows = _rows(table)
    assert len(rows) == 2 and "other-chapter" not in text
    assert rows[0] == "| softmax without the shift (`no-shift`) | overflow: inf / inf | logits of ±1000 |"
    assert "a title with a \\| pipe" in rows[1] and "a \\| b" in rows[1]  # a pipe would split the cell
    assert table._repr_markdown_() == text


def test_mistake_table_never_hides_an_entry_without_a_row():
    table = mistake_table(CATALOGUE, "The softmax function", {"no-shift": ("overflow", "±1000")})
    rows = _rows(table)
    assert len(rows) == 2
    assert rows[1] == "| a title with a \\| pipe (`pipe-title`) | It breaks tables; escape it. | the graded checks |"


def test_mistake_table_escapes_angle_brackets_of_the_catalogue_but_not_of_the_rows():
    """<g, p> in a title must not open an HTML tag; a row's math such as $a < b$ stays as written."""
    entries = [Entry("vjp", "forgets the <g, p> term", "The <g, p> term. More.", CATALOGUE[0].section)]
    table = mistake_table(entries, "The softmax function", {"vjp": ("only $p < 1$", "x")})
    assert "forgets the &lt;g, p> term" in str(table) and "only $p < 1$" in str(table)
    fallback = mistake_table(entries, "The softmax function", {})
    assert "| The &lt;g, p> term. |" in str(fallback)


def test_mistake_table_refuses_rows_for_mistakes_the_chapter_does_not_teach():
    with pytest.raises(ValueError, match="other-chapter"):
        mistake_table(CATALOGUE, "The softmax function", {"other-chapter": ("x", "y")})
    with pytest.raises(ValueError, match="no entry"):
        mistake_table(CATALOGUE, "A chapter that does not exist", {})


def test_mistake_table_reads_the_real_catalogue():
    from softgrad.mistakes import CATALOGUE as REAL

    table = mistake_table(REAL.values(), "The softmax function", {})
    assert "softmax-no-max-shift" in str(table)


def test_book_imports_nothing_from_the_checks_or_the_catalogue():
    """Chapters pass the checks and the catalogue in: the helpers stay independent of the grading code."""
    tree = ast.parse(inspect.getsource(book))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    grading = ("softgrad.testing", "softgrad.mistakes", "softgrad.grader")
    assert not {name for name in imported if name.startswith(grading)}, imported
