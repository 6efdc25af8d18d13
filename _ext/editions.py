"""The book's two editions, English and its translation (see ``softgrad.book``).

* Every page links to the same page in the other edition (``_templates/language-link.html``,
  in the theme's article header). Links are relative, so both editions work from any address
  and offline: the translation is published in a folder of the English HTML
  (``_build/html/zh_CN/``).
* What the code cells print and display (outputs) is shared by both editions, not text to
  translate: it is kept out of the catalogues. A figure's caption, written with its cell, is text.
* The table of contents' captions (``_toc.yml``) are translated too: sphinx-external-toc adds
  them after Sphinx has applied the catalogues.
"""

from __future__ import annotations

from os import path

from docutils import nodes
from sphinx import addnodes
from sphinx.locale import init as init_locale
from sphinx.transforms import SphinxTransform
from sphinx.util.i18n import docname_to_domain

from softgrad.book import SECOND_LANGUAGE

_NAMES = {"en": "English", SECOND_LANGUAGE: "中文"}


def _add_the_link_to_the_header(app, config):
    config.templates_path = [*config.templates_path, "_templates"]
    options = dict(config.html_theme_options or {})
    # the link and sphinx-book-theme's buttons (its default article_header_end) in one header item
    options["article_header_end"] = ["language-link.html"]
    config.html_theme_options = options


def _link_to_the_other_edition(app, pagename, templatename, context, doctree):
    up = "../" * pagename.count("/")
    if (app.config.language or "en") == "en":
        other, href = SECOND_LANGUAGE, f"{up}{SECOND_LANGUAGE}/{pagename}.html"
    else:
        other, href = "en", f"{up}../{pagename}.html"
    context["edition_link"] = {"href": href, "label": _NAMES[other], "lang": other.replace("_", "-")}


class OutputsAreNotText(SphinxTransform):
    """Mark the text inside cell outputs (tables, printed Markdown) as not translatable, captions aside."""

    default_priority = 15  # before Sphinx applies the translations (20)

    def apply(self, **kwargs):
        for output in self.document.findall(nodes.container):
            if "cell_output" not in output.get("classes", []):
                continue
            for node in output.findall(nodes.TextElement):
                if not any(isinstance(parent, nodes.figure) for parent in _ancestors(node, output)):
                    node["translatable"] = False


class TranslateTocCaptions(SphinxTransform):
    """Translate the captions of the toctrees that sphinx-external-toc inserts (after Sphinx's own pass)."""

    default_priority = 101  # sphinx_external_toc.events.InsertToctrees runs at 100

    def apply(self, **kwargs):
        if (self.config.language or "en") == "en":
            return
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        folders = [path.join(self.env.srcdir, folder) for folder in self.config.locale_dirs]
        catalogue, found = init_locale(folders, self.config.language, domain)
        if not found:
            return
        for toctree in self.document.findall(addnodes.toctree):
            caption = toctree.get("caption")
            if caption and catalogue.gettext(caption) != caption:
                toctree["caption"] = toctree["rawcaption"] = catalogue.gettext(caption)


def _ancestors(node, stop):
    while node is not None and node is not stop:
        yield node
        node = node.parent


def setup(app):
    app.connect("config-inited", _add_the_link_to_the_header, priority=600)  # after course_settings
    app.connect("html-page-context", _link_to_the_other_edition)
    app.add_transform(OutputsAreNotText)
    app.add_transform(TranslateTocCaptions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
