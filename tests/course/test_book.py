"""The book builds strictly, every page in the table of contents is there, and the chapters look right."""

from __future__ import annotations

import html
import re
import sys

import pytest
import yaml
from conftest import REPO, _a_kernel_lost_its_port, chapter_sources, toc_files

from softgrad import about
from softgrad.book import SECOND_LANGUAGE

pytestmark = pytest.mark.slow


@pytest.mark.xdist_group("book")
def test_every_toc_entry_is_a_page(built_book):
    for name in toc_files():
        page = built_book / f"{name}.html"
        assert page.exists(), f"{name} is in _toc.yml but {page} was not built"


@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_chapter_page_has_its_figures_and_no_errors(built_book, source):
    page = built_book / source.relative_to(REPO).with_suffix(".html")
    text = page.read_text()
    images = re.findall(r'<img[^>]+src="([^"]+)"', text)
    # figures of executed cells only (a solution's code in a dropdown is not run)
    cells = re.findall(r"^```\{code-cell\}.*?^```$", source.read_text(), flags=re.S | re.M)
    figures_in_source = sum(cell.count("plt.show()") for cell in cells)
    assert len([i for i in images if "_images/" in i]) >= figures_in_source, "a figure is missing from the page"
    for src in images:
        if not src.startswith(("http:", "https:", "data:")):
            assert (page.parent / src).resolve().exists(), f"broken image {src}"
    plain = html.unescape(re.sub(r"<[^>]+>", "", text))
    for marker in ("Traceback (most recent call last)", "NameError", "ExecutionError"):
        assert marker not in plain, f"{marker} in the rendered chapter"


@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("edition", ["en", SECOND_LANGUAGE])
def test_glued_numbers_appear_in_the_prose(built_book, edition):
    """The numbers computed by a chapter reach its prose, in the translation too (where glue needs `page.md::key`)."""
    html_root = built_book if edition == "en" else built_book / SECOND_LANGUAGE
    plain = html.unescape(re.sub(r"<[^>]+>", "", (html_root / "chapters" / "01_softmax.html").read_text()))
    # exp overflows above log(largest float64) = 709.78 and underflows below -745.13
    assert "709.78" in plain and "-745.13" in plain and "88.72" in plain


@pytest.mark.xdist_group("book")
def test_exercise_pages_show_the_release_without_outputs(built_book):
    for name in toc_files():
        if not name.startswith("exercises/"):
            continue
        plain = html.unescape(re.sub(r"<[^>]+>", "", (built_book / f"{name}.html").read_text()))
        assert "raise NotImplementedError()" in plain
        assert "HIDDEN TESTS" not in plain and "BEGIN SOLUTION" not in plain


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_every_figure_has_labelled_axes(source):
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", source.read_text(), flags=re.S)
    plotting = [c for c in cells if "plt.subplots" in c or "plt.figure" in c]
    assert plotting or "plt." not in source.read_text()
    for cell in plotting:
        assert "set_xlabel" in cell and "set_ylabel" in cell, f"a figure without axis labels:\n{cell[:300]}"


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_chapters_are_myst_text_notebooks(source):
    head = source.read_text().split("---")[1]
    meta = yaml.safe_load(head)
    assert meta["jupytext"]["text_representation"]["format_name"] == "myst"
    assert meta["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_every_chapter_has_its_paired_notebook_in_sync(source):
    """Colab opens notebooks/<chapter>.ipynb: it must exist, hold the chapter's cells, and no outputs."""
    import nbformat

    from softgrad.book import chapter_notebook

    paired = REPO / "notebooks" / source.with_suffix(".ipynb").name
    assert paired.exists(), f"{paired.name} is missing: run ./course notebooks"
    expected = chapter_notebook(source)
    committed = nbformat.read(paired, as_version=4)
    assert committed == expected, f"{paired.name} is out of date with {source.name}: run ./course notebooks"
    assert not any(c.get("outputs") for c in committed.cells), f"{paired.name} has outputs"


@pytest.mark.xdist_group("book")
def test_launch_buttons_open_notebooks(built_book):
    """Colab and Binder open an .ipynb: a chapter's notebook in notebooks/, an exercise itself."""
    for name in toc_files():
        text = (built_book / f"{name}.html").read_text()
        if name.startswith("chapters/"):
            notebook = f"notebooks/{name.split('/')[-1]}.ipynb"
        elif name.startswith("exercises/"):
            notebook = f"{name}.ipynb"
        else:
            continue
        assert f"{about.COLAB_URL}{notebook}" in text, f"{name}: no Colab link"
        assert f"urlpath=lab/tree/{notebook}" in text, f"{name}: no Binder link"


def test_every_notebook_installs_the_course_library_when_it_is_missing():
    """Outside a clone (Colab, a hub, a downloaded exercise) the first code cell installs softgrad."""
    import nbformat

    guard = f'except ModuleNotFoundError:\n    %pip install --quiet "{about.INSTALL}"'
    for source in chapter_sources():
        first = re.search(r"```\{code-cell\}[^\n]*\n(.*?)```", about.fill(source.read_text()), flags=re.S).group(1)
        assert guard in first, f"{source.name}: the first code cell must install softgrad when it is missing"
    for notebook in sorted((REPO / "exercises").glob("*/*.ipynb")):
        cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
        assert guard in cells[0].source, f"{notebook.name}: the first code cell must install softgrad"


def test_the_catalogue_knows_the_book_as_it_is():
    """The catalogue's table of chapters (number, title) is the book's: its order in _toc.yml, its headings."""
    from softgrad.mistakes.catalogue import CHAPTERS

    chapters = [f.removeprefix("chapters/") for f in toc_files() if f.startswith("chapters/")]
    assert list(CHAPTERS) == chapters, "CHAPTERS (softgrad/mistakes/catalogue.py) must list the chapters of _toc.yml"
    for number, key in enumerate(chapters, start=1):
        title = re.search(r"^# (.+)$", (REPO / "chapters" / f"{key}.md").read_text(), re.M).group(1).strip()
        assert CHAPTERS[key] == (number, title), f"{key} is chapter {number}, titled {title!r}"


def test_every_mistake_points_at_a_section_that_exists(built_book):
    """A mistake's feedback names "Chapter N, <title>, section '<heading>'" and links to it: all must be real."""
    from softgrad.mistakes import CATALOGUE
    from softgrad.mistakes.catalogue import anchor

    for mistake in CATALOGUE.values():
        source = (REPO / "chapters" / f"{mistake.chapter}.md").read_text()
        headings = {h.strip() for h in re.findall(r"^##+ (.+)$", source, re.M)}
        assert mistake.heading in headings, f"{mistake.id}: {mistake.chapter} has no section {mistake.heading!r}"
        page = (built_book / "chapters" / f"{mistake.chapter}.html").read_text()
        assert f'id="{anchor(mistake.heading)}"' in page, (
            f"{mistake.id}: the built page has no anchor #{anchor(mistake.heading)} (its link in feedback)")
        assert mistake.url.endswith(f"chapters/{mistake.chapter}.html#{anchor(mistake.heading)}")


def test_glue_is_a_no_op_without_myst_nb(monkeypatch):
    """Chapters call softgrad.book.glue; on Colab (no MyST-NB) it must not fail."""
    from softgrad.book import glue

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # makes `import myst_nb` raise ImportError
    assert glue("answer", 42) is None


@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_every_figure_has_alt_text(built_book, source):
    """Screen readers read the alt text: a figure's file name is not a description."""
    page = built_book / source.relative_to(REPO).with_suffix(".html")
    figures = [tag for tag in re.findall(r"<img [^>]*>", page.read_text()) if "_images/" in tag]
    assert figures, f"{source.name}: no figures found on the page"
    for tag in figures:
        alt = re.search(r'alt="([^"]*)"', tag)
        assert alt and len(alt.group(1)) > 30 and "_images/" not in alt.group(1), f"an image without alt text: {tag}"


def test_the_build_is_retried_only_for_a_kernel_that_died_as_it_started(tmp_path):
    """A lost port (a race outside the book) earns a second build; an error in a chapter's code does not."""
    died, failed = tmp_path / "died.err.log", tmp_path / "failed.err.log"
    died.write_text("RuntimeError: Kernel died before replying to kernel_info\n")
    failed.write_text("ValueError: operands could not be broadcast together\n")
    warning = "WARNING: Executing notebook failed: RuntimeError [mystnb.exec]\n" \
              "WARNING: Notebook exception traceback saved in: {} [mystnb.exec]\n"
    assert _a_kernel_lost_its_port(warning.format(died))
    assert not _a_kernel_lost_its_port(warning.format(failed))
    assert not _a_kernel_lost_its_port("build succeeded.")
