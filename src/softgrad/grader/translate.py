"""The released notebooks in the book's second language, from the same catalogues as the book.

``./course release`` writes ``exercises/<assignment>/<notebook>.ipynb`` with nbgrader; this module
then writes a translated copy, ``exercises/zh_CN/<assignment>/<notebook>.ipynb``:

* the Markdown cells are translated through the book's catalogue of the same page
  (``locales/zh_CN/LC_MESSAGES/exercises/<assignment>/<notebook>.po``, the one the Chinese
  edition of the book uses for the exercise page);
* the code cells' comments through one more catalogue, ``.../exercises/code-comments.po``
  (``python -m softgrad.grader.translate extract`` writes its entries);
* everything nbgrader reads is left as it is: cell ids, cell types, nbgrader metadata, and the
  code itself. So the same gradebook grades both copies: an instructor of a Chinese class
  releases from ``exercises/zh_CN`` (the notebook's name and the assignment are the same), and
  at grading nbgrader restores the test cells from the (English) source as always;
* the notebook says its language in ``metadata.softgrad.language``: the grader gives it to the
  kernel, so that the checks' feedback comes in that language (:mod:`softgrad.i18n`).

A Markdown cell is translated entry by entry: every msgid of the page's catalogue is looked for
in the cell's text (line breaks and indentation free, longest first, never inside a word), and
replaced by its msgstr. An entry of the catalogue that no cell contains is reported, so a cell
whose text changed without a new catalogue fails loudly instead of staying in English.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import nbformat

from softgrad.book import LOCALES, SECOND_LANGUAGE

__all__ = ["COMMENTS", "catalogue", "code_without_comments", "comments", "release", "translate_notebook"]

RELEASE = "exercises"
"""nbgrader's release folder (``nbgrader_config.py``); the translations go in ``exercises/<language>/``."""

COMMENTS = "exercises/code-comments"
"""The catalogue of the released notebooks' code comments (a domain, as Sphinx names page catalogues)."""

# comments that are instructions to tools, not to people
_TOOL_COMMENT = re.compile(r"^#\s*(noqa|type:|pragma|fmt:|pylint|isort)|^###? (BEGIN|END) ")


def _catalogue_path(root: Path, language: str, domain: str) -> Path:
    return root / LOCALES / language / "LC_MESSAGES" / f"{domain}.po"


def catalogue(path: Path) -> dict[str, str]:
    """The translated entries of one ``.po`` file (msgid to msgstr); fuzzy and empty ones are left out."""
    from babel.messages.pofile import read_po

    if not path.exists():
        return {}
    with path.open("rb") as handle:
        return {m.id: m.string for m in read_po(handle) if m.id and m.string and not m.fuzzy}


def comments(notebooks: Iterable[nbformat.NotebookNode]) -> list[str]:
    """The text of every comment a person reads in the code cells, in order, once each.

    Consecutive comment lines with the same indentation are one entry (one sentence may run over
    several lines), their lines joined by spaces; a comment after code on its line is one entry.
    """
    found: dict[str, None] = {}
    for notebook in notebooks:
        for cell in notebook.cells:
            if cell.cell_type == "code":
                for block in _comment_blocks(cell.source):
                    found[block.text] = None
    return list(found)


class _Block(NamedTuple):
    first: int  # index of the block's first line in the cell
    last: int  # index of its last line
    prefix: str  # what comes before "#" on each line (indentation, or the code of an inline comment)
    text: str  # the comment's words, lines joined by spaces


def _comment_blocks(source: str, *, keep_tool_comments: bool = False) -> list[_Block]:
    lines = source.split("\n")
    # IPython's magics (%pip) are not Python: tokenise the cell without them
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(python).readline) if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    blocks: list[_Block] = []
    for token in tokens:
        row, column = token.start[0] - 1, token.start[1]
        prefix, words = lines[row][:column], token.string[1:].strip()
        if (_TOOL_COMMENT.match(token.string) and not keep_tool_comments) or not words:
            continue
        whole_line = not prefix.strip()
        previous = blocks[-1] if blocks else None
        if (whole_line and previous and previous.last == row - 1 and previous.prefix == prefix):
            blocks[-1] = previous._replace(last=row, text=f"{previous.text} {words}")
        else:
            blocks.append(_Block(row, row, prefix if whole_line else prefix.rstrip() + "  ", words))
    return blocks


def code_without_comments(source: str) -> str:
    """A code cell's code, its comments (what a translation changes) and blank lines left out."""
    lines = source.split("\n")
    for block in reversed(_comment_blocks(source, keep_tool_comments=True)):
        for row in range(block.first, block.last + 1):
            lines[row] = block.prefix.rstrip() if block.prefix.strip() else ""
    return "\n".join(line.rstrip() for line in lines if line.strip())


def _pattern(msgid: str) -> re.Pattern:
    """``msgid`` as it may stand in a cell: any run of spaces, line breaks and indentation between words."""
    words = [re.escape(word) for word in msgid.split()]
    return re.compile(r"(?<![\w`*])" + r"\s+".join(words) + r"(?![\w`*])")


def _translate_markdown(text: str, messages: Mapping[str, str], used: set[str]) -> str:
    # longest first, so that an entry inside a longer one (a table cell's word) cannot break it
    for msgid in sorted(messages, key=len, reverse=True):
        translated = " ".join(messages[msgid].split("\n"))
        text, count = _pattern(msgid).subn(lambda _, new=translated: new, text)
        if count:
            used.add(msgid)
    return text


def _translate_comments(source: str, messages: Mapping[str, str]) -> str:
    lines = source.split("\n")
    for block in reversed(_comment_blocks(source)):  # from the end, so that line numbers stay right
        if block.text in messages:
            new = [f"{block.prefix}# {line.strip()}" for line in messages[block.text].split("\n") if line.strip()]
            lines[block.first:block.last + 1] = new
    return "\n".join(lines)


def translate_notebook(notebook: nbformat.NotebookNode, page: Mapping[str, str],
                       code_comments: Mapping[str, str], language: str
                       ) -> tuple[nbformat.NotebookNode, list[str]]:
    """A translated copy of ``notebook`` and the entries of ``page`` that no Markdown cell contains.

    ``page`` maps the Markdown's msgids to their translations, ``code_comments`` the comments'.
    Only the text of Markdown cells and of comments changes: ids, metadata and code stay.
    """
    copy = nbformat.from_dict(notebook)
    used: set[str] = set()
    for cell in copy.cells:
        if cell.cell_type == "markdown":
            cell.source = _translate_markdown(cell.source, page, used)
        elif cell.cell_type == "code":
            cell.source = _translate_comments(cell.source, code_comments)
    copy.metadata.setdefault("softgrad", {})["language"] = language
    unused = [msgid for msgid in page if msgid not in used]
    return copy, unused


def release(root: Path | str = ".", assignments: Iterable[str] | None = None,
            language: str = SECOND_LANGUAGE, into: Path | None = None) -> list[Path]:
    """Write the translated copy of every released notebook of ``assignments`` (default: all).

    The copies go to ``exercises/<language>/<assignment>/`` or, with ``into``, to
    ``into/<assignment>/``.

    Raises ``ValueError`` naming the notebook and the entries when a page's catalogue has
    entries that its notebook no longer contains, or when an entry is not translated yet.
    """
    root = Path(root).resolve()
    release_root = root / RELEASE
    if assignments is None:
        assignments = sorted(p.name for p in release_root.glob("ps*") if p.is_dir())
    code_comments = catalogue(_catalogue_path(root, language, COMMENTS))
    written, problems = [], []
    for assignment in assignments:
        notebooks = sorted((release_root / assignment).glob("*.ipynb"))
        if not notebooks:
            raise ValueError(f"{RELEASE}/{assignment} has no released notebook: run ./course release {assignment}")
        for path in notebooks:
            domain = f"{RELEASE}/{assignment}/{path.stem}"
            page_file = _catalogue_path(root, language, domain)
            page = catalogue(page_file)
            missing = _untranslated(page_file)
            if missing:
                problems.append(f"{page_file.relative_to(root)}: {len(missing)} entries not translated, "
                                f"e.g. {missing[0][:70]!r}")
            notebook = nbformat.read(path, as_version=4)
            absent = [c for c in comments([notebook]) if c not in code_comments]
            if absent:
                problems.append(f"{_catalogue_path(root, language, COMMENTS).relative_to(root)}: no translation "
                                f"of the comment {absent[0]!r} of {path.relative_to(root)}")
            translated, unused = translate_notebook(notebook, page, code_comments, language)
            if unused:
                problems.append(f"{path.relative_to(root)}: {len(unused)} entries of its catalogue are in no "
                                f"Markdown cell, e.g. {unused[0][:70]!r} (run ./course translations)")
            target = (Path(into) if into else release_root / language) / assignment / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(translated, target)
            written.append(target)
    if problems:
        raise ValueError("the translated notebooks are incomplete:\n  " + "\n  ".join(problems))
    return written


def _untranslated(path: Path) -> list[str]:
    from babel.messages.pofile import read_po

    if not path.exists():
        return [f"(no catalogue {path.name})"]
    with path.open("rb") as handle:
        return [m.id for m in read_po(handle) if m.id and (not m.string or m.fuzzy)]


def extract(root: Path | str = ".", language: str = SECOND_LANGUAGE) -> Path:
    """Bring the code comments' catalogue up to date with the released notebooks (translations kept)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    root = Path(root).resolve()
    path = _catalogue_path(root, language, COMMENTS)
    old = Catalog(locale=language)
    if path.exists():
        with path.open("rb") as handle:
            old = read_po(handle)
    notebooks = [nbformat.read(p, as_version=4) for p in sorted((root / RELEASE).glob("ps*/*.ipynb"))]
    new = Catalog(locale=language, project="softgrad", fuzzy=False)
    for text in comments(notebooks):
        previous = old.get(text)
        new.add(text, previous.string if previous is not None else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, new, width=100, omit_header=False)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softgrad.grader.translate",
                                     description="The released notebooks in the book's second language.")
    parser.add_argument("command", choices=("extract", "release"),
                        help="extract: update the code comments' catalogue; release: write exercises/"
                             f"{SECOND_LANGUAGE}/<assignment>/*.ipynb")
    parser.add_argument("assignments", nargs="*", help="assignment ids (default: every released one)")
    options = parser.parse_args(argv)
    try:
        if options.command == "extract":
            print(f"updated {extract().relative_to(Path.cwd().resolve())}")
        else:
            for path in release(".", options.assignments or None):
                print(f"wrote {path.relative_to(Path.cwd().resolve())}")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
