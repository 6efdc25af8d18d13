"""Glued words in the translated edition: a glued text reads in the edition's language.

Chapters glue numbers, and a few texts with words (a verdict computed from the measurements,
"no GPU"). A text with words is glued with :func:`softgrad.book.glue_text`: in English under its
key, and translated under :func:`softgrad.book.translated_key` (``gpu_found__zh_CN``). The
prose, and so the catalogues, name the English key in both editions; in the translated edition
this extension points every glue reference whose key has a translation at the translation.
The English edition is not touched.

MyST-NB resolves a glue reference in one of two ways, and both are covered:

* ``page.md::key`` (the form the book writes: a translated paragraph is parsed without a notebook)
  becomes a ``PendingGlueReference`` node, which MyST-NB's post-transform
  ``ReplacePendingGlueReferences`` (priority 5) fills in from the page's ``.glue.json`` as the
  page is written. :class:`PointGlueAtTheTranslation` runs just before it and changes the key.
* a plain ``key`` (a role or directive of the page that glued it) is filled in by the role or
  directive itself, as the page is parsed, from the notebook's glue data: no node keeps the key
  for a transform to change, so in the translated edition the glue roles and directives are
  replaced by subclasses that change the key before they read it.
"""

from __future__ import annotations

from myst_nb.core.variables import RetrievalError
from myst_nb.ext.glue.crossref import read_glue_cache
from myst_nb.ext.glue.directives import PasteAnyDirective, PasteMarkdownDirective
from myst_nb.ext.glue.roles import PasteMarkdownRole, PasteRoleAny, PasteTextRole
from myst_nb.ext.glue.utils import PendingGlueReference, retrieve_glue_data
from sphinx.transforms.post_transforms import SphinxPostTransform

from softgrad.book import LANGUAGES, translated_key


def _translation(config) -> str | None:
    """The language of the edition being built, when it is a translation; None for English."""
    language = config.language or "en"
    return language if language in LANGUAGES and language != "en" else None


class PointGlueAtTheTranslation(SphinxPostTransform):
    """In a translated edition, point each ``page.md::key`` glue reference at ``key``'s translation, if glued."""

    default_priority = 4  # before MyST-NB's ReplacePendingGlueReferences (5) reads the key

    def apply(self, **kwargs):
        language = _translation(self.config)
        if language is None:
            return
        folder = self.env.mystnb_config.output_folder
        for node in self.document.findall(PendingGlueReference):
            translated = translated_key(node.key, language)
            if translated in read_glue_cache(folder, node.refdoc):
                node["key"] = translated


def _glued(document, key: str) -> bool:
    try:
        retrieve_glue_data(document, key)
    except RetrievalError:
        return False
    return True


def _in_the_language(role_class, *, formatted: bool):
    """``role_class`` reading the translation of a plain key (``formatted``: its text is ``key:format``)."""

    class Role(role_class):
        language: str

        def run(self):
            if "::" not in self.text:  # not a pending reference (PointGlueAtTheTranslation's)
                key, form = self.text, ""
                if formatted and ":" in key:
                    key, form = key.rsplit(":", 1)
                    form = ":" + form
                translated = translated_key(key, self.language)
                if _glued(self.document, translated):
                    self.text = translated + form
            return super().run()

    Role.__name__ = Role.__qualname__ = f"{role_class.__name__}InTheLanguage"
    return Role


def _directive_in_the_language(directive_class):
    """``directive_class`` reading the translation of its key when it names no other page (``:doc:``)."""

    class Directive(directive_class):
        language: str

        def run(self):
            if "doc" not in self.options:
                translated = translated_key(self.arguments[0], self.language)
                if _glued(self.document, translated):
                    self.arguments[0] = translated
            return super().run()

    Directive.__name__ = Directive.__qualname__ = f"{directive_class.__name__}InTheLanguage"
    return Directive


def _replace_the_plain_glue_roles(app, config):
    language = _translation(config)
    if language is None:
        return
    roles = {"": (PasteRoleAny, False), "any": (PasteRoleAny, False), "text": (PasteTextRole, True),
             "md": (PasteMarkdownRole, True)}
    for name, (role_class, formatted) in roles.items():
        role = _in_the_language(role_class, formatted=formatted)
        role.language = language
        app.add_role_to_domain("glue", name, role(), override=True)
        if name == "":
            app.add_role("glue", role(), override=True)
    for name, directive_class in {"": PasteAnyDirective, "any": PasteAnyDirective,
                                  "md": PasteMarkdownDirective}.items():
        directive = _directive_in_the_language(directive_class)
        directive.language = language
        app.add_directive_to_domain("glue", name, directive, override=True)
        if name == "":
            app.add_directive("glue", directive, override=True)


def setup(app):
    app.add_post_transform(PointGlueAtTheTranslation)
    app.connect("config-inited", _replace_the_plain_glue_roles)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
