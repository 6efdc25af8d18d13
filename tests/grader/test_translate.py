"""The released notebooks in Chinese: translated text, the same code, ids and nbgrader metadata."""

from __future__ import annotations

import re

import nbformat
import pytest
from conftest import ASSIGNMENTS, REPO

from softgrad.book import SECOND_LANGUAGE
from softgrad.grader import translate

CJK = re.compile(r"[\u4e00-\u9fff]")


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_markdown_is_translated_entry_by_entry_whatever_its_line_breaks():
    """A paragraph wrapped over indented lines, a heading and table cells all find their entries."""
    markdown = nbformat.v4.new_markdown_cell(
        "# Problem set 1\n\n- **Stable.** No overflow\n  for large logits.\n\n| function | returns |\n|---|---|\n"
        "| `softmax(z)` | probabilities |")
    page = {"Problem set 1": "习题集 1",
            "**Stable.** No overflow for large logits.": "**稳定。** 大的 logit 也不上溢。",
            "function": "函数", "returns": "返回", "probabilities": "概率", "`softmax(z)`": "`softmax(z)`",
            "An entry of no cell": "没有单元格的条目"}
    translated, unused = translate.translate_notebook(_notebook(markdown), page, {}, SECOND_LANGUAGE)
    assert translated.cells[0].source == (
        "# 习题集 1\n\n- **稳定。** 大的 logit 也不上溢。\n\n| 函数 | 返回 |\n|---|---|\n| `softmax(z)` | 概率 |")
    assert unused == ["An entry of no cell"]
    assert markdown.source.startswith("# Problem set 1"), "the English notebook must not change"


def test_a_word_inside_another_word_is_left_alone():
    """An entry 'function' does not touch 'functions' or `function` in code."""
    cell = nbformat.v4.new_markdown_cell("Three functions; the `function` keyword.\n\nfunction")
    translated, _ = translate.translate_notebook(_notebook(cell), {"function": "函数"}, {}, SECOND_LANGUAGE)
    assert translated.cells[0].source == "Three functions; the `function` keyword.\n\n函数"


def test_comments_are_translated_as_blocks_and_code_is_kept():
    """Consecutive comment lines are one sentence; code, tool comments and strings stay as they are."""
    source = ('x = "# not a comment"\nif x:\n    # Without a GPU, Triton interprets\n    # the kernels.\n'
              "    y = 1  # one\nimport numpy  # noqa: F401")
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": "setup", "locked": True}
    assert translate.comments([_notebook(cell)]) == ["Without a GPU, Triton interprets the kernels.", "one"]
    messages = {"Without a GPU, Triton interprets the kernels.": "没有 GPU 时，\nTriton 解释执行内核。", "one": "一"}
    translated, _ = translate.translate_notebook(_notebook(cell), {}, messages, SECOND_LANGUAGE)
    assert translated.cells[0].source == (
        'x = "# not a comment"\nif x:\n    # 没有 GPU 时，\n    # Triton 解释执行内核。\n'
        "    y = 1  # 一\nimport numpy  # noqa: F401")
    assert translated.cells[0].metadata == cell.metadata
    assert translated.metadata["softgrad"]["language"] == SECOND_LANGUAGE


def test_an_untranslated_catalogue_is_refused_with_its_name(tmp_path):
    """Releasing from an incomplete catalogue fails and names the file, instead of mixing languages."""
    release = tmp_path / "exercises" / "ps0_demo"
    release.mkdir(parents=True)
    nbformat.write(_notebook(nbformat.v4.new_markdown_cell("Hello")), release / "demo.ipynb")
    with pytest.raises(ValueError, match=r"exercises/ps0_demo/demo\.po.*no catalogue"):
        translate.release(tmp_path, ["ps0_demo"])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_chinese_notebook_is_the_english_one_with_its_text_translated(assignment):
    """Same cells, ids, nbgrader metadata and code: the same gradebook grades both copies."""
    english = sorted((REPO / "exercises" / assignment).glob("*.ipynb"))
    assert english, f"exercises/{assignment} is missing: run ./course release {assignment}"
    for path in english:
        chinese_path = REPO / "exercises" / SECOND_LANGUAGE / assignment / path.name
        assert chinese_path.exists(), f"{chinese_path.relative_to(REPO)} is missing: run ./course release {assignment}"
        en, zh = nbformat.read(path, as_version=4), nbformat.read(chinese_path, as_version=4)
        assert [(c.id, c.cell_type) for c in zh.cells] == [(c.id, c.cell_type) for c in en.cells]
        for a, b in zip(en.cells, zh.cells, strict=True):
            assert b.metadata == a.metadata, f"cell {a.id}: metadata differ"
            if a.cell_type == "code":
                code_of = translate.code_without_comments
                assert code_of(b.source) == code_of(a.source), f"cell {a.id}: the code differs, not only comments"
            elif re.search(r"[A-Za-z]{4,} [A-Za-z]{4,} [A-Za-z]{4,}", re.sub(r"`[^`]*`|\$[^$]*\$", "", a.source)):
                assert CJK.search(b.source), f"cell {a.id} of {chinese_path.name} is still English"
        assert zh.metadata["softgrad"]["language"] == SECOND_LANGUAGE
        assert {k: v for k, v in zh.metadata.items() if k != "softgrad"} == en.metadata


def test_the_chinese_notebooks_are_what_the_catalogues_make_now(tmp_path):
    """A translation or a release changed since the Chinese notebooks were written: release them again."""
    # raises, naming the file, when a catalogue is incomplete or has entries no notebook contains
    written = translate.release(REPO, into=tmp_path)
    stale = [str(path.relative_to(tmp_path)) for path in written
             if path.read_bytes() != (REPO / "exercises" / SECOND_LANGUAGE / path.relative_to(tmp_path)).read_bytes()]
    assert not stale, f"{stale} in exercises/{SECOND_LANGUAGE} are out of date: run ./course release"
