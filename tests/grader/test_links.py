"""Feedback links every known mistake that a failed test names to its section of the book."""

from __future__ import annotations

from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from softgrad import about, i18n
from softgrad.book import SECOND_LANGUAGE
from softgrad.grader.preprocessors import LinkMistakeSections
from softgrad.grader.preprocessors.links import in_edition
from softgrad.mistakes import CATALOGUE
from softgrad.mistakes.catalogue import anchor

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_language_in_the_environment(monkeypatch):
    for name in (i18n.ENVIRONMENT, "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)


def _graded(traceback: str, metadata: dict | None = None):
    cell = new_code_cell("check(...)", outputs=[new_output("error", ename="AssertionError", evalue="x",
                                                           traceback=[traceback])])
    notebook = new_notebook(cells=[cell, new_code_cell("fine()")], metadata=metadata or {})
    return LinkMistakeSections().preprocess(notebook, {})[0]


def test_each_named_mistake_gets_a_link_to_its_section():
    text = ("softmax(z) is wrong in 1 of 2 entries.\nThis matches a known mistake: softmax without subtracting the "
            "maximum [softmax-no-max-shift].\n ... [global-max-shift] ... [softmax-no-max-shift] [not-a-mistake]")
    notebook = _graded(f"\x1b[0;31m{text}\x1b[0m")
    added = notebook.cells[0].outputs[-1]
    html = added.data["text/html"]
    for mistake in (CATALOGUE["softmax-no-max-shift"], CATALOGUE["global-max-shift"]):
        assert f'href="{mistake.url}"' in html and mistake.section.replace("'", "&#x27;") in html
    assert html.count("<li>") == 2, "each mistake once, and no link for an id the catalogue does not know"
    assert mistake.url.startswith("https://") and "#" in mistake.url


def test_cells_that_name_no_mistake_are_left_as_they_are():
    notebook = _graded("AssertionError: a message that names no known mistake")
    assert len(notebook.cells[0].outputs) == 1 and notebook.cells[1].outputs == []


BOOK = about.BOOK_URL


def test_the_links_of_an_english_notebook_are_as_they_were():
    added = _graded("... [softmax-no-max-shift] ...").cells[0].outputs[-1]
    assert added.data["text/html"] == (
        '<div class="softgrad-read-more"><p>Read more in the book:</p><ul><li><a href="'
        f'{BOOK}chapters/01_softmax.html#the-max-trick" target="_blank" rel="noopener">Chapter 1, The softmax '
        "function, section &#x27;The max trick&#x27;</a>: softmax without subtracting the maximum "
        "[softmax-no-max-shift]</li></ul></div>")
    assert added.data["text/plain"] == (
        "Read more in the book: Chapter 1, The softmax function, section 'The max trick' "
        f"({BOOK}chapters/01_softmax.html#the-max-trick)")


def test_a_chinese_notebook_gets_chinese_words_and_links_to_the_chinese_edition():
    chinese = {"softgrad": {"language": "zh_CN"}}
    added = _graded("... [softmax-no-max-shift] ... [global-max-shift]", chinese).cells[0].outputs[-1]
    url = f"{BOOK}{SECOND_LANGUAGE}/chapters/01_softmax.html#the-max-trick"
    assert added.data["text/html"].startswith(
        '<div class="softgrad-read-more"><p>详见本书：</p><ul><li><a href="'
        f'{url}" target="_blank" rel="noopener">第 1 章《softmax 函数》中的“减去最大值的技巧”一节</a>：'
        "softmax 没有减去最大值 [softmax-no-max-shift]</li><li>")
    assert added.data["text/plain"].startswith(
        f"详见本书：第 1 章《softmax 函数》中的“减去最大值的技巧”一节（{url}）；第 1 章")
    assert "Read more" not in str(added.data) and f'href="{BOOK}chapters/' not in added.data["text/html"]
    assert i18n.language() == "en", "the notebook's language is the feedback's only"


def test_the_chinese_edition_is_the_english_address_in_the_language_s_folder():
    mistake = CATALOGUE["softmax-no-max-shift"]
    assert in_edition(mistake.url, SECOND_LANGUAGE) == mistake.url.replace(BOOK, f"{BOOK}{SECOND_LANGUAGE}/")
    assert in_edition(mistake.url, "en") == mistake.url
    assert in_edition("https://example.org/chapters/x.html", SECOND_LANGUAGE) == "https://example.org/chapters/x.html"


def test_every_mistake_s_section_is_in_the_chinese_edition_under_the_same_anchor():
    built = REPO / "_build" / "html" / SECOND_LANGUAGE / "chapters"
    if not built.is_dir():
        pytest.skip("the Chinese edition is not built (./course book)")
    missing = [m.id for m in CATALOGUE.values() if f'id="{anchor(m.heading)}"' not in
               (built / f"{m.chapter}.html").read_text(encoding="utf-8")]
    assert not missing, f"sections with no anchor of that name in the Chinese edition: {missing}"
