"""The library's messages in Chinese (softgrad.i18n): the catalogue is complete, current and faithful, and the
language is chosen as documented, falling back to English."""

from __future__ import annotations

import collections
import re
from pathlib import Path

import numpy as np
import pytest

from softgrad import i18n, reference
from softgrad.i18n import _, ngettext

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = REPO / "src" / "softgrad" / "locale" / "zh_CN" / "LC_MESSAGES" / "softgrad.po"
BOOK = REPO / "locales" / "zh_CN" / "LC_MESSAGES" / "chapters"


@pytest.fixture(autouse=True)
def automatic_language(monkeypatch):
    """Every test starts from the automatic choice, with nothing in the environment that chooses."""
    for name in (i18n.ENVIRONMENT, "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    i18n.use(None)
    yield
    i18n.use(None)


def _entries() -> list:
    from babel.messages.pofile import read_po

    with CATALOGUE.open("rb") as file:
        return [m for m in read_po(file) if m.id]


def _pairs() -> list[tuple[str, str]]:
    """(msgid, msgstr) for every message, each plural form paired with its English forms."""
    pairs = []
    for entry in _entries():
        if isinstance(entry.id, str):
            pairs.append((entry.id, entry.string))
        else:
            pairs += [(english, entry.string[0]) for english in entry.id]
    return pairs


# ---- the catalogue ----------------------------------------------------------------------------------------

def test_every_message_is_translated_and_none_is_fuzzy_or_obsolete():
    entries = _entries()
    untranslated = [e.id for e in entries if not (e.string if isinstance(e.string, str) else all(e.string))]
    fuzzy = [e.id for e in entries if e.fuzzy]
    assert not untranslated, f"untranslated in {CATALOGUE.name}: {untranslated}"
    assert not fuzzy, f"fuzzy (check the translation, then remove the flag): {fuzzy}"
    assert "#~" not in CATALOGUE.read_text(encoding="utf-8"), "obsolete entries: run ./course messages"


def _extracted() -> set[str]:
    """The msgids the sources have now, extracted as `./course messages` extracts them (babel.cfg)."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with (REPO / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keywords = {**DEFAULT_KEYWORDS, "N_": None}
    found = set()
    for folder in ("src/softgrad", "solutions"):
        for _path, _line, message, _comments, _context in extract_from_dir(
                REPO / folder, method_map, options_map, keywords=keywords, comment_tags=("TRANSLATORS:",)):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_catalogue_has_every_message_of_the_sources_and_no_other():
    catalogue = {e.id if isinstance(e.id, str) else e.id[0] for e in _entries()}
    sources = _extracted()
    assert not sources - catalogue, (
        "messages with no translation (run ./course messages, then translate them in "
        f"{CATALOGUE.relative_to(REPO)}): {sorted(sources - catalogue)}")
    assert not catalogue - sources, f"no longer in the sources (run ./course messages): {sorted(catalogue - sources)}"


def _kept(text: str) -> dict[str, object]:
    """What a translation must keep exactly as its English has it: placeholders, bracketed mistake ids, code in
    backticks, math in dollars, and the layout of a message's lines (the indentation it starts with, when it is
    a line of a longer message, and the indentation after each line break)."""
    return {
        "placeholders": collections.Counter(re.findall(r"\{[^{}]*\}", text)),
        "mistake ids": collections.Counter(re.findall(r"\[[a-z][a-z0-9-]*\]", text)),
        "code": collections.Counter(re.findall(r"`[^`]+`", text)),
        "math": collections.Counter(re.findall(r"\$[^$]+\$", text)),
        "indentation": (re.match(r"(  +)?", text).group(), re.findall(r"\n *", text)),
    }


def _formulas(text: str) -> collections.Counter:
    """The numbers and the symbols of the formulas written in plain text (exp(z - m) = 1, d p_i / d z_j): a
    translation has all of its English's (it may have more: "sum to one" becomes "和等于 1")."""
    return collections.Counter(re.findall(r"\d+(?:\.\d+)?", text) + [c for c in text if c in "=*/^<>_[]|"])


def test_every_translation_keeps_the_placeholders_ids_code_math_and_formulas_of_its_english():
    problems = []
    for english, chinese in _pairs():
        mine, theirs = _kept(english), _kept(chinese)
        problems += [f"{kind}: {english!r} -> {chinese!r}" for kind in mine if mine[kind] != theirs[kind]]
        if _formulas(english) - _formulas(chinese):
            problems.append(f"formulas ({dict(_formulas(english) - _formulas(chinese))} missing): {english!r} -> "
                            f"{chinese!r}")
    assert not problems, "\n".join(problems)


CJK = "\u4e00-\u9fff"


def test_chinese_sentences_use_full_width_punctuation_and_end_as_their_english_does():
    problems = []
    for english, chinese in _pairs():
        if not re.search(f"[{CJK}]", chinese):
            continue
        if re.search(f"[{CJK}][,;:!?]|[{CJK}]\\.(?!\\.)|[{CJK}] [,;:!?](?!\\S)|[{CJK}] [，。：；]", chinese):
            problems.append(f"half-width punctuation after a Chinese character: {chinese!r}")
        if english.endswith(".") and not english.endswith("...") and not chinese.endswith("。"):
            problems.append(f"a sentence should end with 。: {chinese!r}")
    assert not problems, "\n".join(problems)


def test_the_catalogue_reader_agrees_with_babel():
    messages, plurals, forms = i18n.read_po(CATALOGUE.read_text(encoding="utf-8"))
    singular = {e.id: e.string for e in _entries() if isinstance(e.id, str)}
    plural = {tuple(e.id): list(e.string) for e in _entries() if not isinstance(e.id, str)}
    assert messages == singular and plurals == plural
    assert forms.replace(" ", "") == "nplurals=1;plural=0;"


def test_the_reader_skips_fuzzy_and_untranslated_entries_and_reads_continued_strings():
    text = ('msgid ""\nmsgstr "Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n\n'
            '#, fuzzy\nmsgid "a"\nmsgstr "A"\n\nmsgid "b"\nmsgstr ""\n\n'
            'msgid ""\n"c \\"quoted\\"\\n"\n"  d"\nmsgstr "C\\n  D"\n'
            'msgid "{n} e"\nmsgid_plural "{n} es"\nmsgstr[0] "{n} E"\nmsgstr[1] "{n} Es"\n')
    messages, plurals, forms = i18n.read_po(text)
    assert messages == {'c "quoted"\n  d': "C\n  D"}
    assert plurals == {("{n} e", "{n} es"): ["{n} E", "{n} Es"]}
    assert forms == "nplurals=2; plural=(n != 1);"


def test_section_headings_match_the_chinese_book_where_it_has_translated_them():
    """A mistake's "See: Chapter 3, ..., section '...'" names the section as the Chinese book heads it."""
    from babel.messages.pofile import read_po

    from softgrad.mistakes import CATALOGUE as MISTAKES
    from softgrad.mistakes.catalogue import CHAPTERS

    ours = dict(_pairs())
    differ = []
    for chapter, (_number, title) in CHAPTERS.items():
        path = BOOK / f"{chapter}.po"
        if not path.is_file():
            continue
        with path.open("rb") as file:
            book = {m.id: m.string for m in read_po(file) if m.id and isinstance(m.id, str) and m.string
                    and not m.fuzzy}
        headings = {title} | {m.heading for m in MISTAKES.values() if m.chapter == chapter}
        differ += [f"{chapter}: {heading!r}: the book says {book[heading]!r}, the library {ours[heading]!r}"
                   for heading in sorted(headings) if heading in book and book[heading] != ours[heading]]
    assert not differ, "\n".join(differ)


# ---- the language ------------------------------------------------------------------------------------------

def test_english_by_default_and_byte_for_byte():
    assert i18n.language() == "en"
    message = "{what} is wrong in {wrong} of {count} entries."
    assert _(message) is message
    assert ngettext("{count} row", "{count} rows", 1) == "{count} row"
    assert ngettext("{count} row", "{count} rows", 2) == "{count} rows"


@pytest.mark.parametrize("tag", ["zh_CN", "zh", "zh-CN", "zh_CN.UTF-8", "zh-Hans"])
def test_the_environment_variable_chooses_chinese(monkeypatch, tag):
    monkeypatch.setenv(i18n.ENVIRONMENT, tag)
    assert i18n.language() == "zh_CN"
    assert _("the function modifies its input array") == "函数修改了它的输入数组"
    assert ngettext("{count} row", "{count} rows", 3) == "{count} 行"


@pytest.mark.parametrize("tag", ["fr", "de_DE", "zh_TW", "en", ""])
def test_an_unknown_language_falls_back_to_english(monkeypatch, tag):
    monkeypatch.setenv(i18n.ENVIRONMENT, tag)
    assert i18n.language() == "en"
    assert _("the function modifies its input array") == "the function modifies its input array"


def test_an_explicit_choice_wins_over_the_environment_and_can_be_undone(monkeypatch):
    monkeypatch.setenv(i18n.ENVIRONMENT, "en")
    i18n.use("zh-CN")
    assert i18n.language() == "zh_CN"
    i18n.use(None)
    assert i18n.language() == "en"
    with pytest.raises(ValueError, match="zh_CN"):
        i18n.use("fr")


def test_a_message_the_catalogue_lacks_stays_english(monkeypatch):
    monkeypatch.setenv(i18n.ENVIRONMENT, "zh_CN")
    assert _("a message no catalogue has") == "a message no catalogue has"
    assert ngettext("{count} apple", "{count} apples", 2) == "{count} apples"


@pytest.mark.parametrize(("path", "expected"), [
    ("exercises/zh_CN/ps1_softmax/softmax.ipynb", "zh_CN"),  # the Chinese release, and ./course start's copy
    ("work/zh_CN/ps1_softmax/softmax.ipynb", "zh_CN"),
    ("/home/learner/course/exercises/ps2_jacobian/zh-CN/jacobian.ipynb", "zh_CN"),
    ("exercises/ps1_softmax/softmax.ipynb", "en"),
    ("exercises/ps1_softmax/notes_2026/softmax.ipynb", "en"),  # a folder's name is not a language
])
def test_jupyter_tells_the_kernel_the_notebook_s_folder(monkeypatch, path, expected):
    monkeypatch.setenv("JPY_SESSION_NAME", path)
    assert i18n.language() == expected


def test_the_notebook_s_own_metadata_wins_over_its_folder(monkeypatch, tmp_path):
    """A notebook the kernel can read says its language itself (the Chinese release's metadata)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["softgrad"] = {"language": "zh_CN"}
    path = tmp_path / "anywhere" / "softmax.ipynb"
    path.parent.mkdir()
    nbformat.write(notebook, path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    assert i18n.language() == "zh_CN"
    notebook.metadata["softgrad"] = {"language": "en"}
    nbformat.write(notebook, path)
    assert i18n.language() == "en"


def test_the_variable_wins_over_the_notebook_s_folder(monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "exercises/ps1_softmax/zh_CN/softmax.ipynb")
    monkeypatch.setenv(i18n.ENVIRONMENT, "en")
    assert i18n.language() == "en"


def test_a_notebook_s_metadata_declares_its_language():
    assert i18n.notebook_language({"softgrad": {"language": "zh_CN"}}) == "zh_CN"
    assert i18n.notebook_language({"softgrad": {"findings": []}}) is None
    assert i18n.notebook_language({}) is None
    with i18n.notebook_language_is("zh_CN"):
        assert i18n.language() == "zh_CN"
        with i18n.notebook_language_is(None):
            assert i18n.language() == "en"
    assert i18n.language() == "en"


# ---- what a student reads ---------------------------------------------------------------------------------

def _softmax_without_the_shift(z, axis=-1):
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _failure() -> str:
    from softgrad.testing import check_against_reference

    with pytest.raises(AssertionError) as failure:
        check_against_reference(_softmax_without_the_shift, reference.softmax,
                                np.array([[1000.0, 999.0, 0.0], [1.0, 2.0, 3.0]]), case="large logits")
    return str(failure.value)


def test_a_failing_check_speaks_chinese_when_the_variable_says_so(monkeypatch):
    english = " ".join(_failure().split())
    monkeypatch.setenv(i18n.ENVIRONMENT, "zh_CN")
    chinese = _failure()
    assert english.startswith("softmax(z) with z of shape (2, 3), dtype float64, values in [0, 1000]")
    assert "This matches a known mistake: softmax without subtracting the maximum [softmax-no-max-shift]." in english
    for words in ("softmax(z)，输入为 z（形状 (2, 3)，dtype float64，取值范围 [0, 1000]）（较大的 logit）",
                  "这与一个已知错误相符：softmax 没有减去最大值 [softmax-no-max-shift]。",
                  "参见：第 1 章《softmax 函数》中的“" + _("The max trick") + "”一节。"):
        assert words in " ".join(chinese.split()).replace("\n", ""), chinese
    assert "This matches" not in chinese and "See:" not in chinese


def test_every_known_mistake_reads_in_chinese(monkeypatch):
    from softgrad.mistakes import CATALOGUE as MISTAKES

    monkeypatch.setenv(i18n.ENVIRONMENT, "zh_CN")
    for mistake in MISTAKES.values():
        text = mistake.describe()
        assert text.startswith("这与一个已知错误相符：") and f"[{mistake.id}]" in text, text
        assert re.search(f"[{CJK}]", _(mistake.explanation)), f"{mistake.id}: explanation not translated"
        assert mistake.section.startswith("第 ") and "章《" in mistake.section, mistake.section


# ---- wrapping -----------------------------------------------------------------------------------------------

def test_english_lines_wrap_as_textwrap_wraps_them():
    import textwrap

    line = "  This matches a known mistake: softmax without subtracting the maximum [softmax-no-max-shift]." * 2
    assert i18n.wrap(line, 80, "    ") == textwrap.fill(line, width=80, subsequent_indent="    ",
                                                        break_long_words=False, break_on_hyphens=False)


def test_chinese_lines_wrap_at_their_display_width_and_never_start_with_closing_punctuation(monkeypatch):
    monkeypatch.setenv(i18n.ENVIRONMENT, "zh_CN")
    from softgrad.mistakes import CATALOGUE as MISTAKES

    for mistake in MISTAKES.values():
        text = "  " + _(mistake.explanation)
        lines = i18n.wrap(text, 80, "    ").splitlines()
        assert "".join(line.strip() for line in lines).replace(" ", "") == text.replace(" ", ""), mistake.id
        for line in lines:
            assert i18n._columns(line) <= 82, line  # 80, and a closing 。 kept on its line
            assert line.strip()[:1] not in "，。、：；！？）》”", line
            assert line[-1:] not in "（《“", line
