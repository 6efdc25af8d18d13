"""The course's address in the book, from its one setting (``softgrad.about``).

The book's repository button, issue button and launch buttons point at
``softgrad.about.REPOSITORY`` (on ``softgrad.about.BRANCH``), and every page's
``{{ softgrad.about.NAME }}`` placeholders are filled in as the page is read, code cells included
(a chapter's install cell, the instructor guide's ``git clone``). A fork of the course changes
the address in ``softgrad.about`` and nowhere else.
"""

from __future__ import annotations

from softgrad import about


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
    if app.builder.name != "gettext":
        source[0] = about.fill(source[0])


def setup(app):
    app.connect("config-inited", _point_the_theme_at_the_repository)
    app.connect("source-read", _fill_placeholders)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
