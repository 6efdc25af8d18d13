"""Feedback: every known mistake a failed test names gets a link to the section of the book that teaches it.

A check's message ends each named mistake with "See: Chapter 1, The softmax function, section
'The max trick'." That is text in an error output, which nbgrader's HTML feedback shows as plain
text. This preprocessor (``c.GenerateFeedback.preprocessors`` in ``nbgrader_config.py``) adds, after
the error of every test cell that names catalogued mistakes, a short HTML output with one link per
mistake to its section of the published book (:attr:`softgrad.mistakes.Mistake.url`, from the
course's one address, :mod:`softgrad.about`).

A notebook that declares its language (``metadata.softgrad.language``, as the Chinese copies of the
exercises do) gets the links in that language: the words, the mistakes' titles and sections, and the
address of the book's edition in that language (published in a folder of the English book,
``BOOK_URL + "zh_CN/"``, with the same pages and anchors).
"""

from __future__ import annotations

import html
import re

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from softgrad import about, i18n
from softgrad.book import LANGUAGES
from softgrad.i18n import _

__all__ = ["LinkMistakeSections", "in_edition"]

_NAMED = re.compile(r"\[([a-z0-9-]+)\]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def in_edition(url: str, language: str) -> str:
    """The address of a page of the book (``url``, in the English edition) in the edition in ``language``:
    the translations are published in a folder of the English book named after their language, with the
    same pages and anchors. English, a language the book has no edition in, and an address outside the
    book are left as they are."""
    if language == LANGUAGES[0] or language not in LANGUAGES or not url.startswith(about.BOOK_URL):
        return url
    return f"{about.BOOK_URL}{language}/{url[len(about.BOOK_URL):]}"


class LinkMistakeSections(NbGraderPreprocessor):
    """Add links to the book's sections for the known mistakes that failed test cells name."""

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        # The feedback is written in the notebook's language, as its checks were.
        with i18n.notebook_language_is(i18n.notebook_language(nb.metadata)):
            return super().preprocess(nb, resources)

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int) -> tuple[NotebookNode, dict]:
        from softgrad.mistakes import CATALOGUE

        if cell.cell_type != "code":
            return cell, resources
        text = " ".join(_ANSI.sub("", "\n".join(o.get("traceback", []) or [o.get("evalue", "")]))
                        for o in cell.get("outputs", []) if o.get("output_type") == "error")
        named = [CATALOGUE[i] for i in dict.fromkeys(_NAMED.findall(text)) if i in CATALOGUE]
        if not named:
            return cell, resources
        language = i18n.language()
        # TRANSLATORS: one link of the feedback's "Read more in the book": {link} is the section (a link), {title}
        # the mistake's title
        items = "".join("<li>" + _("{link}: {title} [{id}]").format(
            link=f'<a href="{html.escape(in_edition(m.url, language))}" target="_blank" rel="noopener">'
                 f"{html.escape(m.section)}</a>",
            title=html.escape(_(m.title)), id=html.escape(m.id)) + "</li>" for m in named)
        # TRANSLATORS: the sections of the book listed in the text version of the feedback's links, with their addresses
        sections = _("; ").join(_("{section} ({url})").format(section=m.section, url=in_edition(m.url, language))
                                for m in named)
        heading = html.escape(_("Read more in the book:"))
        cell.outputs.append(NotebookNode(
            output_type="display_data", metadata={},
            data={"text/html": f'<div class="softgrad-read-more"><p>{heading}</p><ul>{items}</ul></div>',
                  "text/plain": _("Read more in the book: {sections}").format(sections=sections)}))
        return cell, resources
