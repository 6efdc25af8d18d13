"""softgrad.book's helpers in both editions: a check's feedback and a chapter's mistake table, in English and Chinese.

What a code cell prints is shared by the two editions of the book, so a chapter glues its feedback
demonstrations (``feedback(..., glue_as=NAME)``) and its table of mistakes (``glue_mistake_table``)
in both languages, and each edition shows its own (``_ext/glue_language.py``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from support.entries import Entry

from softgrad import i18n
from softgrad.book import LANGUAGES, SECOND_LANGUAGE, feedback, glue_mistake_table, mistake_table, translated_key

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def glued(monkeypatch):
    """What the helpers glue (MyST-NB's glue, replaced): name -> value."""
    import myst_nb

    found = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: found.__setitem__(name, value))
    return found


@pytest.fixture(autouse=True)
def _automatic_language():
    """Each test starts and ends with the automatic choice of language (English here)."""
    i18n.use(None)
    yield
    i18n.use(None)


def _unshifted_softmax(z, axis=-1):
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _failing_feedback(**kwargs):
    from softgrad import reference
    from softgrad.testing import check_against_reference

    with np.errstate(all="ignore"):
        return feedback(check_against_reference, _unshifted_softmax, reference.softmax,
                        np.array([[1000.0, 999.0], [1.0, 2.0]]), **kwargs)


def _block(value) -> str:
    """The text of a glued feedback: its Markdown is a fenced block of text."""
    found = re.fullmatch(r"(`{3,})text\n(.*)\n\1", value.text, re.S)
    assert found, value.text
    return found.group(2)


# ---- feedback ---------------------------------------------------------------------------------


def test_feedback_glues_the_message_in_both_languages_and_keeps_the_english(glued):
    english = _failing_feedback()
    assert _failing_feedback(glue_as="demo") == english  # what the cell prints: unchanged
    assert set(glued) == {"demo", translated_key("demo")}
    assert _block(glued["demo"]) == english
    chinese = _block(glued[translated_key("demo")])
    assert CJK.search(chinese) and "[softmax-no-max-shift]" in chinese  # the mistake's id stays as it is
    assert chinese != english


def test_glued_feedback_looks_like_the_cells_printed_output(glued):
    feedback(lambda: None, glue_as="ok")
    html = glued["ok"]._repr_html_()
    assert html.startswith('<div class="cell_output docutils container"><div class="output stream')
    assert "<pre><span></span>passed\n</pre>" in html
    assert glued["ok"]._repr_markdown_() == "```text\npassed\n```"


def test_feedback_escapes_its_text_in_html_and_fences_backticks(glued):
    def check():
        raise AssertionError("z < 0 & ```code``` here")

    feedback(check, glue_as="odd")
    assert "z &lt; 0 &amp; ```code``` here" in glued["odd"]._repr_html_()
    assert glued["odd"].text.startswith("````text\n")


def test_a_passed_gradient_check_reads_in_chinese_too(glued):
    from softgrad.gradcheck import check_gradient

    z = np.array([0.5, -1.0, 2.0])
    english = feedback(check_gradient, lambda v: float(np.sum(v**2)), 2 * z, z, name="2z", glue_as="grad")
    assert english.startswith("passed: 2z: relative error ")
    assert _block(glued["grad"]) == english
    chinese = _block(glued[translated_key("grad")])
    assert chinese.startswith("通过：2z 的相对误差为 ") and "完整的中心差分" in chinese
    assert "relative error" not in chinese


def test_feedback_runs_the_check_once_per_language_english_first(glued):
    seen = []

    def check(x):
        seen.append(i18n.language())

    feedback(check, 1, glue_as="twice")
    assert seen == list(LANGUAGES)


def test_feedback_returns_the_readers_language_and_leaves_the_choice_as_it_was(glued):
    i18n.use("zh_CN")
    chinese = _failing_feedback(glue_as="demo")
    assert chinese == _block(glued[translated_key("demo")]) and CJK.search(chinese)
    assert i18n.language() == "zh_CN"
    assert not CJK.search(_block(glued["demo"]))  # the English edition's text is English all the same


def test_feedback_without_glue_as_glues_nothing(glued):
    _failing_feedback()
    assert glued == {}


def test_chinese_lines_are_wrapped_by_their_width_on_screen():
    from softgrad.book import FEEDBACK_WIDTH, _columns

    long = "这是一条很长的中文信息，" * 10

    def check():
        raise AssertionError(long)

    lines = feedback(check).splitlines()
    assert len(lines) > 1 and all(_columns(line) <= FEEDBACK_WIDTH for line in lines)
    assert "".join(line.strip() for line in lines) == long


# ---- mistake tables ---------------------------------------------------------------------------




SOFTMAX = "Chapter 1, The softmax function, section 'The max trick'"


def test_the_chinese_table_translates_the_header_and_the_catalogues_titles():
    from softgrad.mistakes import CATALOGUE

    rows = {"softmax-no-max-shift": {"en": ("`exp` overflows", "logits of ±1000"),
                                     "zh_CN": ("`exp` 上溢", "±1000 的 logit")}}
    english = str(mistake_table(CATALOGUE.values(), "The softmax function", rows))
    chinese = str(mistake_table(CATALOGUE.values(), "The softmax function", rows, language="zh_CN"))
    assert english.splitlines()[0] == "| Mistake | What goes wrong | Caught by |"
    assert chinese.splitlines()[0] == "| 错误 | 后果 | 由什么发现 |"
    assert "| softmax without subtracting the maximum (`softmax-no-max-shift`) | `exp` overflows |" in english
    assert "| softmax 没有减去最大值（`softmax-no-max-shift`） | `exp` 上溢 | ±1000 的 logit |" in chinese
    assert len(english.splitlines()) == len(chinese.splitlines())  # the same mistakes, in the same order
    # the entries without a row: the first sentence of the translated explanation, caught by the graded checks
    fallback = next(line for line in chinese.splitlines() if "`mutates-input`" in line)
    assert fallback.endswith("| 评分检查 |") and CJK.search(fallback.split("|")[2])


def test_the_english_table_is_as_before_whatever_the_readers_language():
    """A Chinese reader's section names its chapter in Chinese: the table still finds the chapter's entries."""
    from softgrad.mistakes import CATALOGUE

    english = str(mistake_table(CATALOGUE.values(), "The softmax function", {}))
    i18n.use("zh_CN")
    assert str(mistake_table(CATALOGUE.values(), "The softmax function", {})) == english
    assert i18n.language() == "zh_CN"


def test_a_row_in_english_only_is_refused_for_the_chinese_table():
    entries = [Entry("no-shift", "softmax without the shift", "exp overflows. Subtract the max.", SOFTMAX)]
    assert "| x | y |" in str(mistake_table(entries, "The softmax function", {"no-shift": ("x", "y")}))
    with pytest.raises(ValueError, match="English only"):
        mistake_table(entries, "The softmax function", {"no-shift": ("x", "y")}, language="zh_CN")
    with pytest.raises(ValueError, match="no text in 'zh_CN'"):
        mistake_table(entries, "The softmax function", {"no-shift": {"en": ("x", "y")}}, language="zh_CN")
    with pytest.raises(ValueError, match="no mistake table in 'fr'"):
        mistake_table(entries, "The softmax function", {}, language="fr")


def test_glue_mistake_table_glues_both_tables_as_html_and_returns_the_english(glued):
    entries = [Entry("vjp", "forgets the <g, p> term", "The <g, p> term. More.", SOFTMAX),
               Entry("pipe", "a | pipe", "Pipes. More.", SOFTMAX)]
    rows = {"vjp": {"en": (r"only $\operatorname{diag}(p)$, the caller's `g`", "a | b"),
                    "zh_CN": (r"只剩 $\operatorname{diag}(p)$", "甲")},
            "pipe": {"en": ("x", "y"), "zh_CN": ("乙", "丙")}}
    shown = glue_mistake_table("table", entries, "The softmax function", rows)
    assert str(shown) == str(mistake_table(entries, "The softmax function", rows))  # for Colab
    assert set(glued) == {"table", translated_key("table", SECOND_LANGUAGE)}
    assert glued["table"].text == str(shown)
    html = glued["table"]._repr_html_()
    assert "<th class=\"head\"><p>Mistake</p></th>" in html and "<p>a | pipe (" in html
    assert "forgets the &lt;g, p&gt; term" in html and "<p>a | b</p>" in html
    assert r'<span class="math notranslate nohighlight">\(\operatorname{diag}(p)\)</span>' in html
    assert '<code class="docutils literal notranslate"><span class="pre">g</span></code>' in html
    assert "caller’s" in html  # curly apostrophes, as in the English prose
    chinese = glued[translated_key("table")]._repr_html_()
    assert "<th class=\"head\"><p>错误</p></th>" in chinese and "<p>甲</p>" in chinese


# ---- the built book ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_chapter_3_shows_its_table_and_feedback_in_each_editions_language(built_book):
    from conftest import ZH_HTML

    english = (built_book / "chapters" / "03_jacobian.html").read_text()
    chinese = (ZH_HTML / "chapters" / "03_jacobian.html").read_text()
    assert '<th class="head"><p>Mistake</p></th>' in english and "<p>错误</p>" not in english
    assert '<th class="head"><p>错误</p></th>' in chinese and "<p>Mistake</p>" not in chinese
    assert "passed: diag(p) - p p^T: relative error" in english
    assert "通过：diag(p) - p p^T 的相对误差为" in chinese and "passed:" not in chinese
    assert "这与一个已知错误相符" in chinese and "This matches a known mistake" not in chinese
