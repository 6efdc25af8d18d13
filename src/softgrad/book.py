"""Helpers for the book's chapters that keep them runnable outside a Jupyter Book build.

Chapters insert numbers computed by their code into the prose with MyST-NB's ``glue``. On
Colab or a JupyterHub, where MyST-NB is usually not installed, :func:`glue` does nothing
and the chapter still runs (the numbers are printed by the code cells anyway).

Chapters also show what the graded checks tell a student, without any message handling of
their own: :func:`feedback` runs a check and returns the text a student would read, and
:func:`mistake_table` lays out a chapter's entries of the catalogue of known mistakes. This
module imports nothing from the checks or the catalogue: chapters pass them in. Both speak
every edition's language: what a check prints is an output, shared by the two editions, so
``feedback(..., glue_as=NAME)`` and :func:`glue_mistake_table` glue the text in English and in
Chinese (:func:`glue_text`), and the chapter shows it with a ``glue:md`` directive, which
each edition reads in its own language.

The book itself is built here too, in its two editions, English and Chinese (:func:`build_edition`,
:func:`update_translations`; ``python -m softgrad.book build`` is `./course book`). Those functions
need the ``book`` extra (Jupyter Book, sphinx-intl); chapters never call them.
"""

from __future__ import annotations

import contextlib
import re
import textwrap
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from softgrad import about
from softgrad._failures import MESSAGE_WIDTH

__all__ = ["FEEDBACK_WIDTH", "LANGUAGES", "LOCALES", "SECOND_LANGUAGE", "Markdown", "build_edition",
           "catalogue_counts", "chapter_notebook", "extract_messages", "feedback", "glue", "glue_mistake_table",
           "html_folder", "glue_text", "mistake_table", "translated_key", "update_translations"]

FEEDBACK_WIDTH = MESSAGE_WIDTH
"""Lines of :func:`feedback` are at most this many characters, so that no output scrolls sideways: the
width the checks wrap their messages to, so that a message is never wrapped twice."""


def glue(name: str, value: object, display: bool = False) -> None:
    """Record ``value`` under ``name`` for ``{glue:text}`name``` in the prose (MyST-NB), if available.

    NumPy scalars are converted to Python numbers first: NumPy 2 prints them as
    ``np.float64(...)``, which the prose's number formats (``:.2f``) cannot read.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # not building the book: nothing to record
        return
    if isinstance(value, np.generic):
        value = value.item()
    myst_glue(name, value, display=display)


def glue_text(name: str, *, en: str, **translations: str) -> None:
    """Glue a text with words (a verdict, a sentence) under ``name``, and its translations beside it.

    A number reads the same in both editions; words do not. The prose names ``name`` in both
    (``{glue:text}`page.md::name:s```, the catalogues keep it): the English edition reads ``en``,
    the translated edition the text glued under :func:`translated_key` (``_ext/glue_language.py``
    points it there). Every translated edition needs its text, written to fit the translated
    paragraph it lands in::

        glue_text("gpu_found", en="no GPU", zh_CN="没有 GPU")

    Numbers, and names that read the same in every language (``np.exp``), are glued with :func:`glue`.
    """
    wanted = set(LANGUAGES) - {"en"}
    if set(translations) != wanted:
        raise TypeError(f"glue_text({name!r}) needs one text per translated edition "
                        f"({', '.join(sorted(wanted))}), got: {', '.join(sorted(translations)) or 'none'}")
    glue(name, en)
    for language, text in translations.items():
        glue(translated_key(name, language), text)


def translated_key(name: str, language: str | None = None) -> str:
    """The key under which :func:`glue_text` glues the translation of ``name``: ``name__zh_CN``."""
    return f"{name}__{language or SECOND_LANGUAGE}"


def chapter_notebook(source: Path):
    """The chapter ``source`` (MyST Markdown) as a notebook without outputs, for Colab and JupyterHubs.

    Cell ids are numbered (``cell-0``, ``cell-1``, ...) instead of random, so that writing
    the notebook again from an unchanged chapter gives the same file; the course's address is
    filled in (:func:`softgrad.about.fill`). Needs jupytext.
    """
    import jupytext

    notebook = jupytext.reads(about.fill(Path(source).read_text()), fmt="md:myst")
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"
    return notebook


def _columns(text: str) -> int:
    """How many columns ``text`` takes in a fixed-width font: a Chinese character takes two."""
    return sum(2 if unicodedata.east_asian_width(character) in "WF" else 1 for character in text)


def _wrap(text: str, width: int) -> str:
    """Wrap every line longer than ``width`` columns, keeping its indentation (continuations two deeper).

    A line with Chinese is wrapped as the checks wrap their Chinese messages (:func:`softgrad.i18n.wrap`,
    which may break between two Chinese characters); English as ``textwrap`` wraps it.
    """
    from softgrad import i18n

    lines = []
    for line in text.splitlines():
        if _columns(line) <= width:
            lines.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if len(line) != _columns(line):
            lines.append(i18n.wrap(line, width, indent + "  "))
            continue
        lines.append(textwrap.fill(line.strip(), width=width, initial_indent=indent,
                                   subsequent_indent=indent + "  ", break_long_words=False,
                                   break_on_hyphens=False))
    return "\n".join(lines)


@contextlib.contextmanager
def _messages_in(language: str) -> Iterator[None]:
    """Within the block, the course's messages are in ``language`` (:mod:`softgrad.i18n`), whatever the
    notebook or the environment says; afterwards the language chosen before (or the automatic choice)."""
    from softgrad import i18n

    before = getattr(i18n, "_chosen", None)  # what i18n.use() chose, if anything
    i18n.use(language)
    try:
        yield
    finally:
        i18n.use(before)


def _reader_language() -> str:
    """The language the reader reads the course's messages in now, if it is an edition's; else English."""
    from softgrad import i18n

    chosen = i18n.language()
    return chosen if chosen in LANGUAGES else "en"


def _fenced(text: str, language: str = "text") -> str:
    """``text`` as a fenced code block of Markdown, its fence longer than any run of backticks in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


_PASSED = {"en": "passed", "zh_CN": "通过"}
"""What :func:`feedback` says of a check that passed, in each edition's language."""

_METHODS_ZH_CN = {"full central differences": "完整的中心差分", "directional derivatives": "方向导数"}


def _passed(result: object, language: str) -> str:
    """A passed check's line: ``passed``, and what the check returned, in ``language``.

    A gradient check returns its report (``softgrad.gradcheck.GradientReport``: a name, the relative
    error, the tolerance, the method, the evaluations of f), which prints itself in English; in
    Chinese the line is written here from the report's numbers.
    """
    word = _PASSED.get(language, _PASSED["en"])
    if result is None:
        return word
    fields = ("name", "relative_error", "tolerance", "method", "evaluations")
    if language == "zh_CN" and all(hasattr(result, field) for field in fields):
        method = _METHODS_ZH_CN.get(str(result.method), str(result.method))
        return (f"{word}：{result.name} 的相对误差为 {result.relative_error:.1e}"
                f"（容差 {result.tolerance:.0e}，{method}，对 f 求值 {result.evaluations} 次）")
    return f"{word}: {result}" if language == "en" else f"{word}：{result}"


def _run_check(check: Callable[..., object], args: tuple, kwargs: dict) -> str:
    """What ``check(*args, **kwargs)`` tells a student, in the language of the course's messages now."""
    try:
        result = check(*args, **kwargs)
    except AssertionError as failure:
        return _wrap(str(failure), FEEDBACK_WIDTH)
    return _wrap(_passed(result, _reader_language()), FEEDBACK_WIDTH)


def feedback(check: Callable[..., object], /, *args: object, glue_as: str | None = None,
             **kwargs: object) -> str:
    """Run ``check(*args, **kwargs)`` and return what a student would read.

    A check raises :class:`AssertionError` with its message when a result is wrong: that
    message is returned. When the check passes, the result is ``"passed"``, followed by
    whatever the check returned (a gradient check's report), if anything; both in the language
    of the course's messages (:mod:`softgrad.i18n`; English unless it says another). Any other
    exception is a fault of the check or of its arguments, not feedback, and propagates.
    Lines are wrapped to :data:`FEEDBACK_WIDTH` columns.

    ``glue_as``: also glue the text in the language of every edition (the check runs once per
    edition, English first; :func:`glue_text`), for the chapter to show with MyST-NB's ``glue``
    directive, which each edition reads in its own language: as the cell's printed output would
    look (``glue:md`` pastes it as a block of code). What a cell prints is shared by both editions,
    so such a cell's output is removed from the book::

        print(feedback(check_gradient, f, grad, z, name="p - q", glue_as="p_minus_q_feedback"))

    The text returned is in the reader's language, as without ``glue_as``.
    """
    if glue_as is None:
        return _run_check(check, args, kwargs)
    texts = {}
    for language in LANGUAGES:
        with _messages_in(language):
            texts[language] = _run_check(check, args, kwargs)
    glue_text(glue_as, **{language: _Glued(_fenced(text), _printed_html(text)) for language, text in texts.items()})
    return texts[_reader_language()]


class Markdown:
    """Markdown text that Jupyter (and MyST-NB) displays rendered, and ``print`` shows as source."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


class _Glued(Markdown):
    """A text glued for the book (:func:`glue_text`), as HTML for the ``glue`` directive and as Markdown.

    The ``glue`` directive shows the HTML, which is the markup of a cell's output: the page looks as
    if the cell's own output were there, and the HTML is raw, so the gettext extraction does not
    take the text for prose to translate (a table pasted as Markdown, with ``glue:md``, would be).
    """

    def __init__(self, text: str, html: str) -> None:
        super().__init__(text)
        self.html = html

    def _repr_html_(self) -> str:
        return self.html


def _output_html(inner: str) -> str:
    return f'<div class="cell_output docutils container">{inner}</div>'


def _printed_html(text: str) -> str:
    """The HTML MyST-NB writes for ``print(text)``: a cell's stream output."""
    import html

    return _output_html('<div class="output stream highlight-myst-ansi notranslate"><div class="highlight">'
                        f"<pre><span></span>{html.escape(text)}\n</pre></div></div>")


_SECTION = re.compile(r"Chapter \d+, (?P<title>.+), section '(?P<heading>.+)'")


def _cell(text: str, *, plain: bool = False) -> str:
    """One table cell: on one line, with pipes escaped; ``plain`` text also gets ``<`` escaped.

    The catalogue's texts are plain (``<g, p>`` must not start an HTML tag); the rows a
    chapter writes are Markdown, and may hold math such as ``$a < b$``.
    """
    cell = " ".join(str(text).split()).replace("|", "\\|")
    return cell.replace("<", "&lt;") if plain else cell


_TABLE_WORDS = {
    "en": (("Mistake", "What goes wrong", "Caught by"), "the graded checks", "{title} (`{id}`)"),
    "zh_CN": (("错误", "后果", "由什么发现"), "评分检查", "{title}（`{id}`）"),
}
"""A mistake table's header, the fallback for "caught by", and its first cell, in each edition's language."""


def _row_texts(row: object, language: str, mistake: str) -> tuple[str, str]:
    """A row's two texts in ``language``: ``(what, caught)`` in English, or a mapping from languages to those."""
    if isinstance(row, Mapping):
        if language not in row:
            raise ValueError(f"the row for {mistake!r} has no text in {language!r} (it has "
                             f"{', '.join(sorted(row))})")
        row = row[language]
    elif language != "en":
        raise ValueError(f"the row for {mistake!r} is in English only: write it as "
                         f"{{'en': (what, caught), {language!r}: (what, caught)}}")
    what, caught = row
    return what, caught


def mistake_table(entries: Iterable[object], chapter: str,
                  rows: Mapping[str, tuple[str, str] | Mapping[str, tuple[str, str]]], *,
                  language: str = "en") -> Markdown:
    """A Markdown table of the known mistakes taught in ``chapter``: mistake, what goes wrong, caught by.

    ``entries`` are the catalogue's entries (objects with ``id``, ``title``, ``explanation``
    and ``section``, the last reading ``"Chapter N, <chapter>, section '<heading>'"`` in English);
    only those of ``chapter`` (its English title) are listed, in catalogue order. ``rows`` maps an
    entry's id to two short texts written for the chapter: what goes wrong, and which test input
    catches it; for a table in another language, a row maps each language to its two texts
    (``{"en": (what, caught), "zh_CN": (what, caught)}``). An entry without a row still gets one,
    from the first sentence of its explanation, so the table never hides a mistake of the chapter;
    a row whose id is not an entry of the chapter raises :class:`ValueError` (the table is out of date).

    ``language``: the table's language, an edition's (:data:`LANGUAGES`). The catalogue's titles and
    explanations are shown in it through :mod:`softgrad.i18n`; ids and code stay as they are.
    """
    return Markdown(_table_markdown(_mistake_cells(entries, chapter, rows, language)))


def _mistake_cells(entries: Iterable[object], chapter: str, rows: Mapping[str, object],
                   language: str) -> list[list[str]]:
    """The cells of :func:`mistake_table`, in Markdown: the header's, then a row's per mistake."""
    if language not in _TABLE_WORDS:
        raise ValueError(f"no mistake table in {language!r}: the editions are {', '.join(LANGUAGES)}")
    from softgrad import i18n

    header, fallback, first_cell = _TABLE_WORDS[language]
    chosen = []
    with _messages_in("en"):  # an entry's section names its chapter in the reader's language
        for entry in entries:
            found = _SECTION.fullmatch(str(getattr(entry, "section", "")))
            if found and found.group("title") == chapter:
                chosen.append(entry)
    if not chosen:
        raise ValueError(f"no entry of the catalogue is taught in the chapter {chapter!r}")
    unknown = sorted(set(rows) - {entry.id for entry in chosen})
    if unknown:
        raise ValueError(f"rows for mistakes that the catalogue does not place in {chapter!r}: "
                         f"{', '.join(unknown)}")
    table = [list(header)]
    with _messages_in(language):
        for entry in chosen:
            title = _cell(i18n._(str(entry.title)), plain=True)
            if entry.id in rows:
                what, caught = (_cell(text) for text in _row_texts(rows[entry.id], language, entry.id))
            else:
                explanation = " ".join(i18n._(str(entry.explanation)).split())
                what = _cell(re.split(r"(?<=\.)\s|(?<=。)", explanation, maxsplit=1)[0], plain=True)
                caught = fallback
            table.append([first_cell.format(title=title, id=entry.id), what, caught])
    return table


def _table_markdown(table: list[list[str]]) -> str:
    header, *body = table
    return "\n".join([f"| {' | '.join(header)} |", "|---|---|---|", *(f"| {' | '.join(row)} |" for row in body)])


_CODE_OR_MATH = re.compile(r"(?P<fence>`+)(?P<code>.+?)(?P=fence)|(?<![\\$])\$(?P<math>(?:\\.|[^$\\])+?)\$")


def _inline_html(cell: str, language: str) -> str:
    """One cell of :func:`mistake_table` (Markdown: text, ``code`` and ``$math$``) as the book's HTML shows it."""
    import html

    def text(part: str) -> str:
        part = html.unescape(part.replace("\\|", "|"))
        if language == "en":  # curly quotes and apostrophes, as Sphinx makes them in English prose
            try:
                from docutils.utils.smartquotes import educateQuotes
                part = educateQuotes(part, language="en")
            except ImportError:
                pass
        return html.escape(part, quote=False)

    pieces, end = [], 0
    for found in _CODE_OR_MATH.finditer(cell):
        pieces.append(text(cell[end:found.start()]))
        if found.group("code") is not None:
            code = found.group("code").strip().replace("\\|", "|")
            words = " ".join(f'<span class="pre">{html.escape(word)}</span>' for word in code.split())
            pieces.append(f'<code class="docutils literal notranslate">{words}</code>')
        else:
            math = found.group("math").replace("\\|", "|")
            pieces.append(f'<span class="math notranslate nohighlight">\\({html.escape(math, quote=False)}\\)</span>')
        end = found.end()
    pieces.append(text(cell[end:]))
    return "".join(pieces)


def _table_html(table: list[list[str]], language: str) -> str:
    """A table (header first, cells in Markdown) as the book's theme shows a Markdown table in an output."""
    header, *body = table
    heads = "".join(f'<th class="head"><p>{_inline_html(cell, language)}</p></th>' for cell in header)
    rows = "".join(
        f'<tr class="row-{"even" if number % 2 == 0 else "odd"}">'
        + "".join(f"<td><p>{_inline_html(cell, language)}</p></td>" for cell in row) + "</tr>"
        for number, row in enumerate(body))
    return _output_html(f'<div class="pst-scrollable-table-container"><table class="table"><thead>'
                        f'<tr class="row-odd">{heads}</tr></thead><tbody>{rows}</tbody></table></div>')


def glue_mistake_table(name: str, entries: Iterable[object], chapter: str,
                       rows: Mapping[str, Mapping[str, tuple[str, str]]]) -> Markdown:
    """Glue :func:`mistake_table` in every edition's language under ``name`` (:func:`glue_text`).

    The chapter shows it with MyST-NB's ``glue`` directive, and each edition reads its own language;
    every row needs its texts in each (``{"en": (...), "zh_CN": (...)}``). Returns the
    table in the reader's language, for the cell to display outside the book (Colab), where
    nothing is glued; the book removes that cell's output, which both editions would share.
    """
    entries = list(entries)
    tables = {language: _mistake_cells(entries, chapter, rows, language) for language in LANGUAGES}
    glue_text(name, **{language: _Glued(_table_markdown(table), _table_html(table, language))
                       for language, table in tables.items()})
    return Markdown(_table_markdown(tables[_reader_language()]))


# ---- building the book's editions --------------------------------------------------------------
#
# The book is one source (chapters, pages, code) published in two editions: English, and a
# Chinese translation made with Sphinx's own internationalisation (gettext catalogues of the
# text, one .po file per page; code, outputs and figures are shared). `./course book` builds
# both, `./course translations` extracts the text to translate, and the tests build the book
# through the same functions: every setting of the editions is here, once.

SECOND_LANGUAGE = "zh_CN"
"""Sphinx's name of the translated edition's language; also its folder in the HTML and in :data:`LOCALES`."""

LANGUAGES = ("en", SECOND_LANGUAGE)
"""The editions, the source language first."""

LOCALES = "locales"
"""The catalogues, relative to the book's root: ``locales/zh_CN/LC_MESSAGES/chapters/01_softmax.po``."""

BUILD = "_build"
"""Everything a build writes, relative to the book's root (git-ignored)."""

_CACHE = f"{BUILD}/.jupyter_cache"  # the chapters' executed outputs, shared by every build
_GETTEXT = f"{BUILD}/gettext"  # the extracted text (.pot files, one per page)


def html_folder(root: Path | str, language: str = "en") -> Path:
    """Where the edition in ``language`` is published: ``_build/html/``, the translation in a folder of it."""
    html = Path(root) / BUILD / "html"
    return html if language == "en" else html / language


def _workspace(root: Path, language: str) -> tuple[Path, Path]:
    """The output and doctree folders Sphinx builds an edition in.

    English is built where Jupyter Book builds it. A translation is built in ``_build/<language>/``
    and then copied into the English HTML: MyST-NB writes its executed notebooks next to the
    output folder (``<output>/../jupyter_execute``), which must not land inside the published HTML.
    """
    if language == "en":
        return root / BUILD / "html", root / BUILD / ".doctrees"
    return root / BUILD / language / "html", root / BUILD / language / ".doctrees"


def _overrides(root: Path, language: str | None) -> dict:
    """Sphinx settings on top of ``_config.yml`` for one edition (``None``: the gettext extraction)."""
    settings = {
        # what `jupyter-book build .` sets
        "external_toc_path": (root / "_toc.yml").as_posix(),
        "latex_individualpages": False,
        # one execution cache for every build: the translation executes nothing
        "nb_execution_cache_path": str(root / _CACHE),
        # one catalogue per page, mirroring the source tree
        "gettext_compact": False,
    }
    if language is None:
        # gettext: outputs are read as HTML reads them, so that a figure's alt text is extracted
        from myst_nb.core.render import base_render_priority

        settings["nb_mime_priority_overrides"] = [
            ("gettext", mime, priority) for mime, priority in base_render_priority()["html"].items()]
    elif language != "en":
        settings |= {
            "language": language,
            # Chinese full-text search: Sphinx segments the words with jieba, which learns the
            # course's terms from the glossary (雅可比 is one word, not 雅 and 可比)
            "html_search_language": language.split("_")[0],
            "html_search_options": {"dict": str(_search_dictionary(root, language))},
        }
        # the book's title (_config.yml) is the root page's title: its translation is in a catalogue
        import yaml

        title = yaml.safe_load((root / "_config.yml").read_text()).get("title")
        translated = _translations(root, language).get(title)
        if translated:
            settings["html_title"] = translated
    return settings


GLOSSARY = "GLOSSARY.md"
"""The translation's terms and style rules, in its folder of :data:`LOCALES`: a table English | 中文 | ..."""


def glossary_terms(root: Path | str = ".", language: str = SECOND_LANGUAGE) -> list[str]:
    """The translated terms of the glossary's table (second column), split at its commas; glosses dropped."""
    terms = []
    for line in (Path(root) / LOCALES / language / GLOSSARY).read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or set(cells[1]) <= set("-: "):
            continue
        translated = re.sub(r"（[^）]*）|\([^)]*\)", "", cells[1])
        terms += [term for term in re.split(r"[，、,/\s]+", translated) if term]
    return terms[1:]  # the table's header is not a term


def _search_dictionary(root: Path, language: str) -> Path:
    """jieba's user dictionary for the search index: the glossary's terms written in Chinese characters."""
    cjk = re.compile(r"[\u4e00-\u9fff]")
    words = sorted({term for term in glossary_terms(root, language) if len(cjk.findall(term)) >= 2})
    dictionary = root / BUILD / language / "search-dictionary.txt"
    dictionary.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{word} 100000\n" for word in words)  # frequent enough to stay whole
    if not dictionary.exists() or dictionary.read_text() != text:
        dictionary.write_text(text)
    return dictionary


def _translations(root: Path, language: str) -> dict[str, str]:
    """Every translated entry of the catalogues, msgid to msgstr (fuzzy ones left out)."""
    from babel.messages.pofile import read_po

    found = {}
    for po in sorted((root / LOCALES / language / "LC_MESSAGES").rglob("*.po")):
        with po.open("rb") as handle:
            found |= {m.id: m.string for m in read_po(handle) if m.id and m.string and not m.fuzzy}
    return found


def _sphinx(root: Path, builder: str, outdir: Path, doctreedir: Path, overrides: dict,
            *, strict: bool) -> int:
    from jupyter_book.sphinx import build_sphinx

    result = build_sphinx(root, outdir, doctreedir=doctreedir, noconfig=True,
                          path_config=str(root / "_config.yml"), confoverrides=overrides,
                          builder=builder, warningiserror=strict, keep_going=strict)
    if isinstance(result, Exception):
        return 1
    return int(result or 0)


def build_edition(root: Path | str = ".", language: str = "en", *, strict: bool = True) -> int:
    """Build the edition in ``language`` as `./course book` does; returns Sphinx's exit status.

    Strict as CI builds it (warnings are errors, missing references too, keep going to report
    them all). Chapters execute through the shared cache: the second edition reuses the first's
    outputs. The translation falls back to English for any text its catalogues lack.
    """
    import shutil

    root = Path(root).resolve()
    outdir, doctreedir = _workspace(root, language)
    overrides = _overrides(root, language) | ({"nitpicky": True} if strict else {})
    if language != "en":
        overrides["locale_dirs"] = [str(_filled_catalogues(root, language))]
    status = _sphinx(root, "html", outdir, doctreedir, overrides, strict=strict)
    if status == 0 and language != "en":
        # published by renames, so that a reader (or a test) never finds the folder half copied
        published = html_folder(root, language)
        fresh, stale = published.with_name(f".{language}.new"), published.with_name(f".{language}.old")
        for leftover in (fresh, stale):
            shutil.rmtree(leftover, ignore_errors=True)
        shutil.copytree(outdir, fresh)
        if published.exists():
            published.rename(stale)
        fresh.rename(published)
        shutil.rmtree(stale, ignore_errors=True)
    return status


def _filled_catalogues(root: Path, language: str) -> Path:
    """The catalogues with the course's address filled in, as the pages are (``softgrad.about.fill``).

    The catalogues in ``locales/`` keep ``{{ softgrad.about.NAME }}`` placeholders, like the sources;
    a copy under ``_build/<language>/locales`` is what Sphinx reads (and compiles to .mo files there,
    not in the repository). A file is rewritten only when it changes, so that Sphinx re-reads only
    the pages whose translation changed.
    """
    from babel.messages.pofile import read_po, write_po

    source, copy = root / LOCALES, root / BUILD / language / "locales"
    for po in sorted((source / language).rglob("*.po")):
        with po.open("rb") as handle:
            catalogue = read_po(handle)
        for message in catalogue:
            if message.id:
                message.id, message.string = about.fill(message.id), about.fill(message.string)
        target = copy / po.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = _po_bytes(catalogue, write_po)
        if not target.exists() or target.read_bytes() != text:
            target.write_bytes(text)
    return copy


def _po_bytes(catalogue, write_po) -> bytes:
    import io

    buffer = io.BytesIO()
    write_po(buffer, catalogue, omit_header=False)
    return buffer.getvalue()


def extract_messages(root: Path | str = ".", output: Path | str | None = None) -> Path:
    """Extract the book's text into .pot files (Sphinx's gettext builder); returns their folder.

    Code cells and outputs are not text to translate, but a figure's caption and alt text live
    with its output, so the chapters' outputs are read from the execution cache (filled by any build of
    the book; a chapter that changed since runs once, as `./course book` would run it).
    """
    root = Path(root).resolve()
    output = Path(output) if output is not None else root / _GETTEXT
    status = _sphinx(root, "gettext", output / "pot", output / ".doctrees", _overrides(root, None),
                     strict=False)
    if status:
        raise RuntimeError(f"the gettext builder failed (status {status}): see its messages above")
    return output / "pot"


def catalogue_counts(root: Path | str = ".", language: str = SECOND_LANGUAGE) -> dict[str, dict[str, int]]:
    """Per .po file (relative to ``LC_MESSAGES``): how many entries are translated, fuzzy, untranslated."""
    from babel.messages.pofile import read_po

    folder = Path(root) / LOCALES / language / "LC_MESSAGES"
    counts = {}
    for po in sorted(folder.rglob("*.po")):
        with po.open("rb") as handle:
            catalogue = read_po(handle)
        entries = [m for m in catalogue if m.id]
        fuzzy = sum(1 for m in entries if m.fuzzy)
        untranslated = sum(1 for m in entries if not m.fuzzy and not m.string)
        counts[po.relative_to(folder).as_posix()] = {
            "translated": len(entries) - fuzzy - untranslated, "fuzzy": fuzzy, "untranslated": untranslated}
    return counts


def update_translations(root: Path | str = ".", language: str = SECOND_LANGUAGE) -> dict[str, dict[str, int]]:
    """Extract the text and merge it into the catalogues (sphinx-intl update); returns their counts.

    New paragraphs become untranslated entries, changed ones fuzzy entries (their old translation
    kept as a suggestion); translations of unchanged text are kept.
    """
    from sphinx_intl import basic

    root = Path(root).resolve()
    pot = extract_messages(root)
    basic.update(str(root / LOCALES), str(pot), (language,), jobs=1)
    return catalogue_counts(root, language)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import time

    parser = argparse.ArgumentParser(prog="python -m softgrad.book", description=(
        "Build the book's editions, or update the catalogues of its translation. Run it in the "
        "book's root (./course book and ./course translations do)."))
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build editions (strict); all of them by default")
    build.add_argument("languages", nargs="*", metavar="LANGUAGE", help=f"any of {', '.join(LANGUAGES)}")
    commands.add_parser("translations", help="extract the text, update the catalogues, print their counts")
    arguments = parser.parse_args(argv)

    if arguments.command == "build":
        unknown = sorted(set(arguments.languages) - set(LANGUAGES))
        if unknown:
            parser.error(f"no edition in {', '.join(unknown)}: the editions are {', '.join(LANGUAGES)}")
        for language in arguments.languages or LANGUAGES:
            start = time.perf_counter()
            status = build_edition(".", language)
            if status:
                print(f"the {language} edition failed to build (status {status})")
                return status
            print(f"==> the {language} edition, built in {time.perf_counter() - start:.0f} s: "
                  f"{html_folder('.', language)}/index.html")
        return 0
    counts = update_translations(".")
    width = max(map(len, counts), default=0)
    for name, count in counts.items():
        print(f"{name:{width}}  {count['translated']:4d} translated, {count['fuzzy']:3d} fuzzy, "
              f"{count['untranslated']:4d} untranslated")
    totals = {key: sum(c[key] for c in counts.values()) for key in ("translated", "fuzzy", "untranslated")}
    print(f"{len(counts)} catalogues in {LOCALES}/{SECOND_LANGUAGE}/LC_MESSAGES: {totals['translated']} translated, "
          f"{totals['fuzzy']} fuzzy, {totals['untranslated']} untranslated")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
