"""The Chinese edition: catalogues in step with the English text, fully translated, formulas intact, pages built.

The catalogues (``locales/zh_CN/LC_MESSAGES/<page>.po``) are made by ``./course translations``
and translated by hand; ``./course book`` builds the edition at ``_build/html/zh_CN/``. The
gates here read the catalogues (fast) or the book that ``built_book`` built once (no other build
and no execution: the text is re-extracted from the execution cache in a few seconds).
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from conftest import REPO, ZH_HTML, chapter_sources, toc_files

from softgrad import about
from softgrad.book import LOCALES, SECOND_LANGUAGE, catalogue_counts, extract_messages

CATALOGUES = REPO / LOCALES / SECOND_LANGUAGE / "LC_MESSAGES"
HOW = "run ./course translations, then translate the new entries (CONTRIBUTING.md, 'Translating the book')"


def _catalogue(path: Path):
    with path.open("rb") as handle:
        return read_po(handle)


def _entries():
    """(file relative to LC_MESSAGES, message) for every entry of every catalogue."""
    for po in sorted(CATALOGUES.rglob("*.po")):
        for message in _catalogue(po):
            if message.id:
                yield po.relative_to(CATALOGUES).as_posix(), message


# ---- fast: the sources and the catalogues -------------------------------------------------------

GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`]*)`")


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_glued_numbers_name_their_page_and_format(source):
    """In a translated paragraph a glue role has no notebook to read: it must name its page (`page.md::key:fmt`).

    MyST-NB splits the role's text at its last ':' for the format, so a key without one (`page.md::key`)
    would be read as the format of `page.md:`; `:s` formats a value as text.
    """
    for match in GLUE.finditer(source.read_text()):
        content = match.group(1)
        page, separator, key_format = content.partition("::")
        assert separator and page.endswith(".md") and ":" in key_format, (
            f"{source.name}: write {match.group(0)!r} as {{glue:text}}`{source.name}::KEY:FORMAT` "
            f"(e.g. `:.2f`, or `:s` for text): the Chinese edition cannot find a key without its page")


def test_the_catalogues_exist_for_every_page():
    expected = {f"{name}.po" for name in toc_files()}
    present = {po.relative_to(CATALOGUES).as_posix() for po in CATALOGUES.rglob("*.po")}
    assert not expected - present, f"pages without a catalogue: {sorted(expected - present)}: {HOW}"


def test_every_entry_is_translated():
    """`sphinx-intl stat`: nothing untranslated, nothing fuzzy (a fuzzy entry is a guess after the English changed)."""
    counts = catalogue_counts(REPO)
    lacking = {name: c for name, c in counts.items() if c["untranslated"] or c["fuzzy"]}
    report = "\n".join(f"  {name}: {c['untranslated']} untranslated, {c['fuzzy']} fuzzy, {c['translated']} translated"
                       for name, c in lacking.items())
    assert not lacking, (f"the Chinese edition falls back to English for these entries (translate them in "
                         f"{LOCALES}/{SECOND_LANGUAGE}/LC_MESSAGES/; for fuzzy ones check the translation against "
                         f"the new English, then remove the 'fuzzy' flag):\n{report}")


CODE_SPAN = re.compile(r"(`+)(?!\{)(.+?)\1", re.S)
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.S)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)((?:\\.|[^$\\])+?)\$")
ROLE = re.compile(r"\{([\w:.+-]+)\}`([^`]*)`")
LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")
LIST_MARKER = re.compile(r"\s*(\d+[.)]|[-*+])\s")  # a numbered heading's entry starts so; its translation must not
EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)


def _formulas(text: str, opened: str | None = None) -> Counter:
    """The formulas of an entry. An entry can begin or end inside a formula (MyST ends a paragraph at a
    line that starts a list, even inside `$...$`): with an odd number of `$`, the missing one goes
    where ``opened`` says ("start" or "end"; by default where it leaves the fewest words in formulas)."""
    text = CODE_SPAN.sub(" ", ROLE.sub(" ", text))  # a role's content is checked as a whole below
    found = Counter(f"$${m}$$" for m in DISPLAY_MATH.findall(text))
    text = DISPLAY_MATH.sub(" ", text)
    if len(re.findall(r"(?<!\\)\$", text)) % 2:
        text = {"start": "$" + text, "end": text + "$"}[opened or _opening(text)]
    found.update(f"${m}$" for m in INLINE_MATH.findall(text))
    return found


def _opening(text: str) -> str | None:
    """Where an entry with an odd number of `$` has its formula cut ("start" or "end"), else None."""
    text = DISPLAY_MATH.sub(" ", CODE_SPAN.sub(" ", ROLE.sub(" ", text)))
    if not len(re.findall(r"(?<!\\)\$", text)) % 2:
        return None
    ways = {"start": "$" + text, "end": text + "$"}
    return min(ways, key=lambda way: _wordiness(INLINE_MATH.findall(ways[way])))


def _wordiness(formulas: list[str]) -> int:
    return sum(len(re.findall(r"(?<![\\A-Za-z])[A-Za-z]{3,}", f)) + len(CJK.findall(f)) for f in formulas)


def _roles(text: str) -> Counter:
    """Each role with what must not change: the target of `text <target>` roles, else all of its content."""
    found = Counter()
    for name, content in ROLE.findall(text):
        explicit = EXPLICIT.match(content)
        found[f"{{{name}}}`{explicit.group(2) if explicit else content}`"] += 1
    return found


def _display_formulas() -> set[str]:
    """The bodies of the pages' display formulas, which are entries of their own (a formula, no prose)."""
    bodies = set()
    for name in toc_files():
        source = REPO / f"{name}.md"
        if source.exists():
            text = source.read_text()
        else:
            notebook = json.loads((REPO / f"{name}.ipynb").read_text())
            text = "\n\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "markdown")
        bodies |= {body.strip() for body in DISPLAY_MATH.findall(text)}
        bodies |= {m.group(0).strip() for m in re.finditer(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", text, re.S)}
        bodies |= {body.strip() for body in re.findall(r"```\{math\}\n(?::\w+:[^\n]*\n)*(.*?)```", text, re.S)}
    return bodies


def test_translations_keep_formulas_roles_and_links():
    """A translation changes words only: formulas, roles (glue keys, citations, targets) and links stay the English."""
    display = _display_formulas()
    problems = []
    for name, message in _entries():
        if not message.string or message.fuzzy:
            continue
        where = f"{LOCALES}/{SECOND_LANGUAGE}/LC_MESSAGES/{name}:{message.lineno}"
        if message.id.strip() in display:
            if message.string.strip() != message.id.strip():
                problems.append(f"{where}: a display formula must be copied unchanged:\n"
                                f"    English: {message.id.strip()[:200]}\n    Chinese: {message.string.strip()[:200]}")
            continue
        if message.string != message.id and LIST_MARKER.match(message.string):
            problems.append(f"{where}: the translation starts like a Markdown list ({message.string[:20]!r}...), so "
                            f"Sphinx drops it and shows the English: escape the marker, e.g. '1\\. ' for '1. '")
        opened = _opening(message.id)
        for kind, extract in (("formula", functools.partial(_formulas, opened=opened)), ("role", _roles),
                              ("link", lambda text: Counter(LINK_TARGET.findall(text)))):
            english, chinese = extract(message.id), extract(message.string)
            if english != chinese:
                lost, added = sorted((english - chinese).elements()), sorted((chinese - english).elements())
                problems.append(f"{where}: the {kind}s differ from the English: "
                                f"missing {lost or 'nothing'}, not in the English {added or 'nothing'}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("english", "chinese", "kind"), [
    ("where $p_i = e^{z_i}$ holds", "其中 $p_i = e^{z_i}$ 成立", None),
    ("where $p_i = e^{z_i}$ holds", "其中 $p_i = e^{z_j}$ 成立", "formula"),
    ("see {glue:text}`01_softmax.md::x:.2f` and {doc}`the guide <instructors>`",
     "见 {glue:text}`01_softmax.md::x:.2f` 和 {doc}`指南 <instructors>`", None),
    ("see {glue:text}`01_softmax.md::x:.2f`", "见 {glue:text}`01_softmax.md::x:.1f`", "role"),
    ("see {cite}`bishop2006`", "见文献", "role"),
    ("[PyTorch](https://pytorch.org/)", "[PyTorch 官网](https://pytorch.org/)", None),
    ("a cost `$HOME` of $$x$$ and `a $b$`", "代价 `$HOME`，$$x$$，以及 `a $b$`", None),
])
def test_the_formula_check_sees_a_changed_formula_or_role(english, chinese, kind):
    differs = {"formula": _formulas(english) != _formulas(chinese), "role": _roles(english) != _roles(chinese)}
    assert differs == {"formula": kind == "formula", "role": kind == "role"}


# ---- slow: the extracted text and the built edition ---------------------------------------------

@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_the_catalogues_are_up_to_date_with_the_english_text(built_book, tmp_path, capsys):
    """Every paragraph, heading and caption of the book has its entry, and no entry is for text that is gone."""
    pot_folder = extract_messages(REPO, tmp_path / "gettext")
    ran = re.findall(r"(\S+): Executing notebook", capsys.readouterr().out)
    assert not ran, f"the extraction executed {ran} again: its chapters' code differs from the built edition's"
    stale = []
    for pot in sorted(pot_folder.rglob("*.pot")):
        name = pot.relative_to(pot_folder).with_suffix(".po").as_posix()
        # the extracted text keeps the course's {{ softgrad.about.NAME }} placeholders; entries made before
        # it did hold the address itself, which the build fills in just the same
        english = {about.fill(m.id) for m in _catalogue(pot) if m.id}
        po = CATALOGUES / name
        catalogued = {about.fill(m.id) for m in _catalogue(po) if m.id} if po.exists() else set()
        new, gone = english - catalogued, catalogued - english
        if new or gone:
            sample = next(iter(sorted(new or gone)))[:100]
            stale.append(f"  {name}: {len(new)} new or changed English entries, {len(gone)} entries of text that "
                         f"is gone (e.g. {sample!r})")
    assert not stale, f"the catalogues are out of date with the English text: {HOW}:\n" + "\n".join(stale)


# the reading text of a page: not the cells' code and outputs, code, math, anchors, or the
# bibliography's references (shared by both editions)
SKIP = "pre, code, script, style, .cell_input, .cell_output, .highlight, .math, .headerlink, .citation"
BLOCKS = "p, li, h1, h2, h3, h4, figcaption, dt, dd, th, td"


def _blocks(page: Path) -> list[str]:
    """The text of a page's article, one string per block (paragraph, list item, heading, caption, cell)."""
    from bs4 import BeautifulSoup  # nbconvert's dependency

    article = BeautifulSoup(page.read_text(), "html.parser").find("article")
    for element in article.select(SKIP):
        element.decompose()
    blocks = []
    for block in article.select(BLOCKS):
        inner = block.select(BLOCKS)  # a list item holding paragraphs: its paragraphs count, not it
        text = " ".join(block.get_text(" ").split()) if not inner else ""
        if text:
            blocks.append(text)
    return blocks


CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_the_chinese_edition_has_every_page(built_book):
    for name in toc_files():
        assert (ZH_HTML / f"{name}.html").exists(), f"{name} is in _toc.yml but the Chinese edition has no page for it"


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_the_chinese_edition_executed_nothing(built_book):
    """Both editions read the chapters' outputs from one cache: the second edition runs no chapter again."""
    log = (REPO / "_build" / "built_book.log").read_text()
    english, _, chinese = log.partition("==> the en edition")
    assert chinese, "the build log has no line for the English edition"
    ran = re.findall(r"(\S+): Executing notebook", chinese)
    assert not ran, f"the Chinese edition executed {ran}: the execution cache is not shared"


@pytest.mark.slow
@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("name", toc_files())
def test_chinese_pages_are_in_chinese(built_book, name):
    """Mostly Chinese text, and no paragraph left as it is in English (code, formulas and names aside)."""
    chinese, english = _blocks(ZH_HTML / f"{name}.html"), _blocks(built_book / f"{name}.html")
    text = " ".join(chinese)
    cjk, latin = len(CJK.findall(text)), sum(len(w) for w in LATIN_WORD.findall(text))
    assert cjk >= 0.5 * latin, (f"{name}: {cjk} Chinese characters against {latin} letters of Latin words: "
                                f"the page is mostly untranslated ({HOW})")
    left = sorted({b for b in set(chinese) & set(english) if len(LATIN_WORD.findall(b)) >= 4 and not CJK.search(b)})
    assert not left, f"{name}: {len(left)} paragraphs are still in English, e.g. {left[:3]} ({HOW})"
    stray = [b for b in chinese if "**" in b or re.search(r"(?<![\w*])\*[^*\s][^*]*\*(?![\w*])", b)]
    assert not stray, (f"{name}: emphasis markers shown as text (a '**' next to full-width punctuation, see "
                       f"{LOCALES}/{SECOND_LANGUAGE}/GLOSSARY.md): {stray[:3]}")


@pytest.mark.slow
@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("name", toc_files())
def test_every_page_links_to_itself_in_the_other_edition(built_book, name):
    for page, other in ((built_book / f"{name}.html", ZH_HTML / f"{name}.html"),
                        (ZH_HTML / f"{name}.html", built_book / f"{name}.html")):
        link = re.search(r'<a class="[^"]*course-language-link[^"]*" href="([^"]+)"', page.read_text())
        assert link, f"{page.relative_to(REPO)}: no link to the other edition in the page header"
        assert (page.parent / link.group(1)).resolve() == other.resolve(), (
            f"{page.relative_to(REPO)}: the language link leads to {link.group(1)}, not to {other.relative_to(REPO)}")
