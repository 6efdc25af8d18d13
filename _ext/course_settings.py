"""The course's address in the book, from its one setting (``softgrad.about``).

The book's repository button, issue button and launch buttons point at
``softgrad.about.REPOSITORY`` (on ``softgrad.about.BRANCH``), and every page's
``{{ softgrad.about.NAME }}`` placeholders are filled in as the page is read, code cells included
(a chapter's install cell, the instructor guide's ``git clone``). A fork of the course changes
the address in ``softgrad.about`` and nowhere else.
"""

from __future__ import annotations

import re

from softgrad import about

# A MyST code cell: its opening fence (three or more backticks or tildes) to the same fence.
_CODE_CELL = re.compile(r"^(`{3,}|~{3,})\{code-cell\}[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def _point_the_theme_at_the_repository(app, config):
    options = dict(config.html_theme_options or {})
    options["repository_url"] = about.REPOSITORY
    options["repository_branch"] = about.BRANCH
    options["path_to_docs"] = ""
    options["use_repository_button"] = True
    options["use_issues_button"] = True
    config.html_theme_options = options


def _fill_placeholders(app, docname, source):
    # The text extracted for translation keeps the placeholders (a fork's address changes no
    # catalogue); softgrad.book fills the catalogues' entries when it builds a translation.
    # Code cells are filled for the extraction too: their code is not extracted, and the execution
    # cache knows a chapter by its code, so the extraction reuses the chapters the build executed
    # (with the placeholder left in, every chapter ran a second time).
    if app.builder.name != "gettext":
        source[0] = about.fill(source[0])
    else:
        source[0] = _CODE_CELL.sub(lambda cell: about.fill(cell.group(0)), source[0])


def setup(app):
    app.connect("config-inited", _point_the_theme_at_the_repository)
    app.connect("source-read", _fill_placeholders)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
