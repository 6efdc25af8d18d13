"""Glued words in the translated edition: a glued text with words has a translation, and the edition shows it.

A chapter glues a text with words (a verdict, "no GPU") with ``softgrad.book.glue_text``: English under its
key, the translation under ``translated_key(key)``; ``_ext/glue_language.py`` points the translated
edition's glue references at the translation. The chapters' glued values are read from the execution
cache, for the chapters as they are now (a chapter not executed since it changed is built first).
"""

from __future__ import annotations

import ast
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from conftest import REPO, ZH_HTML, chapter_sources

from softgrad import about
from softgrad.book import BUILD, SECOND_LANGUAGE, glue_text, translated_key

CACHE = REPO / BUILD / ".jupyter_cache"  # the execution cache every build of the book shares
SUFFIX = translated_key("", SECOND_LANGUAGE)  # "__zh_CN"

# Tokens that read the same in every language: code names (np.exp, F.cross_entropy, copy_) and units.
_CODE = re.compile(r"\S*[A-Za-z]\S*[._]\S*")
_UNITS = {"ms", "GB", "TB", "KiB", "MiB", "GiB", "ulp", "ulps"}
_WORD = re.compile(r"[A-Za-z]{2,}")


def has_words(text: str) -> bool:
    """Whether ``text`` holds words a reader of the translation would read as English."""
    return any(word not in _UNITS for word in _WORD.findall(_CODE.sub(" ", text)))


@pytest.mark.parametrize(("text", "words"), [
    ("no GPU", True), ("1.4 to 2.0", True), ("cpu (2 threads)", True),
    ("softgrad.kernels.exp", False), ("-", False), ("7.3 × 10⁻⁹", False), ("35.2 ms", False),
    ("1,048,576", False),
])
def test_words_are_told_from_numbers_and_names(text, words):
    assert has_words(text) is words


# ---- the helper -----------------------------------------------------------------------------------

def test_glue_text_glues_the_english_under_the_key_and_the_translation_beside_it(monkeypatch):
    import myst_nb

    glued = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: glued.append((name, value, display)))
    glue_text("gpu_found", en="no GPU", **{SECOND_LANGUAGE: "没有 GPU"})
    assert glued == [("gpu_found", "no GPU", False), (f"gpu_found{SUFFIX}", "没有 GPU", False)]


@pytest.mark.parametrize("translations", [{}, {"fr": "pas de GPU"}, {SECOND_LANGUAGE: "没有 GPU", "fr": "pas de GPU"}])
def test_glue_text_wants_exactly_the_translated_editions(translations):
    with pytest.raises(TypeError, match=SECOND_LANGUAGE):
        glue_text("gpu_found", en="no GPU", **translations)


def test_glue_text_is_a_no_op_without_myst_nb(monkeypatch):
    """Chapters run on Colab, where MyST-NB is usually missing."""
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    assert glue_text("gpu_found", en="no GPU", **{SECOND_LANGUAGE: "没有 GPU"}) is None


# ---- the extension, on a tiny book ------------------------------------------------------------

def _glue_output(name: str, value: str) -> dict:
    """What ``glue(name, value, display=False)`` leaves in a notebook."""
    prefix = "application/papermill.record/"
    return {"output_type": "display_data", "metadata": {"scrapbook": {"name": name, "mime_prefix": prefix}},
            "data": {f"{prefix}text/plain": repr(value)}}


TINY_CONF = f"""
import sys
sys.path.insert(0, {str(REPO / "_ext")!r})
extensions = ["myst_nb", "glue_language"]
nb_execution_mode = "off"
html_search_language = "en"  # no jieba: the test is about glue, not search
"""


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """A notebook that glues a text and its translation; a page and the notebook itself quote it."""
    source = tmp_path_factory.mktemp("tiny_book")
    (source / "conf.py").write_text(TINY_CONF)
    notebook = {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# Measured\n"},
            {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": 1, "source": "glue_text(...)",
             "outputs": [_glue_output("found", "no GPU"), _glue_output(f"found{SUFFIX}", "没有 GPU"),
                         _glue_output("number", "1.5")]},
            {"cell_type": "markdown", "id": "c", "metadata": {},
             "source": "Plain: {glue:text}`found:s`, {glue:}`found`, {glue:text}`number:s`.\n"},
        ],
    }
    (source / "measured.ipynb").write_text(json.dumps(notebook))
    (source / "index.md").write_text(
        "# Index\n\n```{toctree}\nmeasured\n```\n\n"
        "Pending: {glue:text}`measured.ipynb::found:s`, {glue}`measured.ipynb::found`, "
        "{glue:text}`measured.ipynb::number:s`.\n")
    return source


def _pasted(tiny_book: Path, language: str, tmp_path: Path) -> dict[str, list[str]]:
    """Build the tiny book in ``language``; the glued texts of each page, in order."""
    done = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-W", "-D", f"language={language}",
                           str(tiny_book), str(tmp_path / language)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    pages = {}
    for page in ("index", "measured"):
        text = (tmp_path / language / f"{page}.html").read_text()
        # {glue:text} pastes a text; {glue} a value's text/plain: as code (pending) or output (plain)
        spans = re.findall(r'<span class="(?:pasted-text|output text_plain)">(.*?)</span>'
                           r'|<code class="[^"]*">(.*?)</code>', text)
        pages[page] = [html.unescape(re.sub(r"<[^>]+>", "", a or b)).strip("'‘’") for a, b in spans]
    return pages


def test_the_translated_edition_reads_the_translation_of_every_glue_reference(tiny_book, tmp_path):
    """`page::key` (pending, resolved as the page is written) and plain keys (resolved by the role) alike."""
    english, translated = _pasted(tiny_book, "en", tmp_path), _pasted(tiny_book, SECOND_LANGUAGE, tmp_path)
    assert english == {"index": ["no GPU", "no GPU", "1.5"], "measured": ["no GPU", "no GPU", "1.5"]}
    assert translated == {"index": ["没有 GPU", "没有 GPU", "1.5"], "measured": ["没有 GPU", "没有 GPU", "1.5"]}


# ---- the chapters ---------------------------------------------------------------------------------

def _cached_glue(source: Path) -> dict[str, str | None] | None:
    """The keys a chapter glues, as its current code ran in the execution cache, each with its text (None: a
    value that is not a text, a number for instance); None when the cache does not hold the chapter as it is."""
    from jupyter_cache import get_cache

    if not (CACHE / "global.db").exists():
        return None
    # the book reads a chapter with the course's address filled in (_ext/course_settings.py)
    notebook = jupytext.reads(about.fill(source.read_text()), fmt="md:myst")
    cache = get_cache(str(CACHE))
    try:
        record = cache.match_cache_notebook(notebook)
    except KeyError:
        return None
    glued = {}
    for cell in cache.get_cache_bundle(record.pk).nb.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook")
            if scrapbook:
                plain = output["data"].get(scrapbook.get("mime_prefix", "") + "text/plain", "")
                # a str shows as its repr ('no GPU'); a number as itself (-inf)
                glued[scrapbook["name"]] = ast.literal_eval(plain) if plain[:1] in "'\"" else None
    return glued


@pytest.fixture
def chapter_glue(request):
    """``chapter_glue(source)``: the chapter's glued values; the book is built first if the cache lacks them."""

    def get(source: Path) -> dict[str, str | None]:
        glued = _cached_glue(source)
        if glued is None:
            request.getfixturevalue("built_book")  # executes every chapter that changed, into the cache
            glued = _cached_glue(source)
        assert glued is not None, f"{source.name} is not in the execution cache even after building the book"
        return glued

    return get


@pytest.mark.slow
@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_every_glued_text_with_words_has_a_translation(chapter_glue, source):
    glued = chapter_glue(source)
    texts = {key: value for key, value in glued.items() if isinstance(value, str) and not key.endswith(SUFFIX)}
    missing = sorted(f"{key}={value!r}" for key, value in texts.items()
                     if has_words(value) and translated_key(key) not in glued)
    assert not missing, (f"{source.name} glues English words that the {SECOND_LANGUAGE} edition would show in "
                         f"English: glue them with softgrad.book.glue_text(KEY, en=..., {SECOND_LANGUAGE}=...): "
                         f"{missing}")
    untranslated = sorted(key for key, value in texts.items()
                          if has_words(value) and glued[translated_key(key)] == value)
    assert not untranslated, f"{source.name}: the translation repeats the English: {untranslated}"
    orphans = sorted(key for key in glued if key.endswith(SUFFIX) and key[: -len(SUFFIX)] not in glued)
    assert not orphans, f"{source.name}: translations of keys that are not glued: {orphans}"


GLUE_TEXT = re.compile(r"\{glue:text\}`([^`:]+)::([^`:]+)(?::[^`]*)?`")


@pytest.mark.slow
@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("source", [s for s in chapter_sources() if "glue_text(" in s.read_text()],
                         ids=lambda p: p.stem)
def test_the_chinese_pages_show_the_translated_words(built_book, chapter_glue, source):
    """Every glued text with words that the prose quotes: translated in the Chinese page, English in the English."""
    page = source.relative_to(REPO).with_suffix(".html")
    if not (ZH_HTML / page).exists():
        pytest.skip(f"{ZH_HTML / page} was not built (python -m softgrad.book build)")
    glued = chapter_glue(source)
    quoted = {key for doc, key in GLUE_TEXT.findall(source.read_text()) if doc == source.name}
    worded = sorted(key for key in quoted if translated_key(key) in glued)
    assert worded, f"{source.name} calls glue_text but its prose quotes none of its texts"

    def pasted(html_page: Path) -> set[str]:
        spans = re.findall(r'<span class="pasted-text">(.*?)</span>', html_page.read_text(), re.S)
        return {html.unescape(re.sub(r"<[^>]+>", "", span)) for span in spans}

    english, chinese = pasted(built_book / page), pasted(ZH_HTML / page)
    for key in worded:
        en, zh = glued[key], glued[translated_key(key)]
        assert en in english, f"{page}: the English page does not show {key} = {en!r}"
        assert zh in chinese, f"{ZH_HTML.name}/{page}: the Chinese page does not show {translated_key(key)} = {zh!r}"
        assert en == zh or en not in chinese, f"{ZH_HTML.name}/{page}: the Chinese page shows {key} in English: {en!r}"
