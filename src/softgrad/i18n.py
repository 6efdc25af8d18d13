"""The course's messages in the reader's language: English, or Chinese (``zh_CN``).

Every message a student reads (a failing check's message, a known mistake's title and
explanation, the report of ``softgrad check``) is written in English in the source and wrapped in
:func:`_` (or :func:`ngettext`, for a count). The translations live in one gettext catalogue per
language, ``softgrad/locale/<language>/LC_MESSAGES/softgrad.po``, read at first use; a message the
catalogue does not have is shown in English.

The language is the first of these that says one:

1. ``softgrad.i18n.use("zh_CN")`` in the notebook (Colab, or any place the others cannot see);
2. the environment variable ``SOFTGRAD_LANG`` (``zh_CN``, ``zh`` or ``zh-CN``; ``en``). The course's
   grader sets it in the kernel of each notebook it runs, from the notebook's metadata
   (``metadata.softgrad.language``): a Chinese notebook gets Chinese feedback;
3. the notebook's language, where the kernel can see it: JupyterLab and Notebook 7 give the kernels
   they start the notebook's path (``JPY_SESSION_NAME``), VS Code gives it to the notebook
   (``__vsc_ipynb_file__``), and the Chinese copies of the exercises live in a folder named
   ``zh_CN``; ``softgrad check`` gives the language of the notebook it checks
   (:func:`notebook_language_is`);
4. English.

Mistake ids in brackets (``[softmax-no-max-shift]``), code, formulas, numbers and function names
are the same in every language. This module is the bottom of the library: it imports nothing of
the course, so the checks, the catalogue of mistakes and the grader can all use it.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import json
import os
import re
import sys
import textwrap
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePath

__all__ = ["CASE_KEYWORDS", "DOMAIN", "ENVIRONMENT", "N_", "_", "available", "extract", "extract_cases", "fold",
           "language", "ngettext", "normalise", "notebook_language", "notebook_language_is", "read_po", "use",
           "wrap"]

DOMAIN = "softgrad"
"""The gettext domain: the catalogues are ``locale/<language>/LC_MESSAGES/softgrad.po``."""

ENVIRONMENT = "SOFTGRAD_LANG"
"""The environment variable that chooses the language of the messages."""

LOCALE = Path(__file__).resolve().parent / "locale"

_chosen: str | None = None
_notebook: list[str] = []


@functools.cache
def available() -> tuple[str, ...]:
    """The languages the messages can be shown in: English, and every language with a catalogue."""
    found = sorted(p.parent.parent.name for p in LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
    return ("en", *found)


def normalise(tag: str | None) -> str | None:
    """A language as the catalogues name it (``zh``, ``zh-CN``, ``zh_CN.UTF-8`` all give ``zh_CN``;
    ``en``, ``en_GB``, ``C`` give ``en``), or None for an empty or unknown one."""
    if not tag:
        return None
    base = re.split(r"[.@]", str(tag).strip())[0].replace("-", "_")
    lower = base.lower()
    if lower in ("en", "c", "posix") or lower.startswith("en_"):
        return "en"
    if lower in ("zh", "zh_cn", "zh_hans", "zh_hans_cn", "zh_sg"):
        return "zh_CN"
    known = {name.lower(): name for name in available()}
    return known.get(lower)


def use(tag: str | None) -> None:
    """Show the course's messages in this language from now on, whatever the environment says;
    ``use(None)`` goes back to the automatic choice (see the module's docstring).

    For Colab, where neither the kernel's environment nor the notebook's path says the language:
    ``import softgrad.i18n; softgrad.i18n.use("zh_CN")`` in the notebook's first cell.
    """
    global _chosen
    if tag is None:
        _chosen = None
        return
    chosen = normalise(tag)
    if chosen is None:
        raise ValueError(f"no messages in the language {tag!r}; the course has {', '.join(available())}")
    _chosen = chosen


def notebook_language(metadata: Mapping[str, object] | None) -> str | None:
    """The language a notebook's metadata declares (``metadata.softgrad.language``), or None."""
    course = (metadata or {}).get("softgrad")
    return normalise(course.get("language")) if isinstance(course, Mapping) else None


@contextlib.contextmanager
def notebook_language_is(tag: str | None) -> Iterator[None]:
    """Within the block, the notebook being worked on is in this language (for a process that is not
    the notebook's kernel, such as ``softgrad check``); :func:`use` and ``SOFTGRAD_LANG`` still win."""
    _notebook.append(normalise(tag) or "")
    try:
        yield
    finally:
        _notebook.pop()


def _language_of_path(path: object) -> str | None:
    """The language of the notebook at ``path``: its ``metadata.softgrad.language`` when the file can
    be read, else a folder of its path named after a language (``exercises/zh_CN/ps1_softmax/...``)."""
    if not isinstance(path, str) or not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            found = notebook_language(json.load(handle).get("metadata"))
        if found is not None:
            return None if found == "en" else found
    except (OSError, ValueError, AttributeError):
        pass
    for part in reversed(PurePath(path).parent.parts):
        found = normalise(part) if "_" in part or "-" in part or part.lower() == "zh" else None
        if found is not None:
            return None if found == "en" else found
    return None


def _running_notebook() -> str | None:
    """The language of the notebook this kernel runs, from what the kernel can see of it."""
    if _notebook:
        return _notebook[-1] or None
    found = _language_of_path(os.environ.get("JPY_SESSION_NAME"))
    if found is None and "IPython" in sys.modules:
        shell = sys.modules["IPython"].get_ipython()
        if shell is not None:
            found = _language_of_path(shell.user_ns.get("__vsc_ipynb_file__"))
    return found


def language() -> str:
    """The language the messages are shown in now (see the module's docstring)."""
    return _chosen or normalise(os.environ.get(ENVIRONMENT)) or _running_notebook() or "en"


def _(message: str) -> str:
    """``message`` (English, as written in the source) in the current language."""
    chosen = language()
    if chosen == "en":
        return message
    return _catalogue(chosen).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or the plural form of a message for ``count`` things, in the current language."""
    chosen = language()
    if chosen == "en":
        return singular if count == 1 else plural
    return _catalogue(chosen).ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it now: it is translated where it is
    shown, with :func:`_` (the catalogue of mistakes is built once, at import, in no language).

    Whitespace in these messages is folded to single spaces, as :func:`softgrad.mistakes.mistake`
    folds the explanations written over several lines of source; :func:`extract` folds them the same.
    """
    return message


# ---- wrapping -----------------------------------------------------------------------------------

_WIDE = re.compile(r"[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6“”‘’]")
_TOKENS = re.compile(r"\s+|" + _WIDE.pattern + r"|[^\s" + _WIDE.pattern[1:-1] + r"]+")
_NO_LINE_START = set("，。、：；！？）》」』”’")
_NO_LINE_END = set("（《「『“‘")


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(line: str, width: int, indent: str) -> str:
    """One line of a message wrapped to ``width`` columns, later lines starting with ``indent``.

    English is wrapped as ``textwrap.fill(line, width, subsequent_indent=indent, break_long_words=False,
    break_on_hyphens=False)`` wraps it. A line with Chinese counts each Chinese character (and full-width
    punctuation) two columns wide, as a terminal or a feedback page shows it, and may break between two
    Chinese characters as well as at a space; no line starts with closing punctuation (，。：）...) or ends
    with opening punctuation (（“...). Words, numbers and code are never split.
    """
    if not _WIDE.search(line):
        return textwrap.fill(line, width=width, subsequent_indent=indent, break_long_words=False,
                             break_on_hyphens=False) or line
    first = line[: len(line) - len(line.lstrip())]
    lines: list[str] = []
    current, columns, space = first, _columns(first), ""
    for token in _TOKENS.findall(line[len(first):]):
        if token.isspace():
            space = token
            continue
        size = _columns(space + token)
        if columns + size > width and current.strip() and token not in _NO_LINE_START:
            carried = ""
            while current and current[-1] in _NO_LINE_END:  # an opening bracket goes to the next line
                carried, current = current[-1] + carried, current[:-1]
            lines.append(current.rstrip())
            current, columns, space = indent + carried, _columns(indent + carried), ""
            size = _columns(token)
        current += space + token
        columns += size
        space = ""
    lines.append(current.rstrip())
    return "\n".join(lines)


# ---- the catalogues ----------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unquote(text: str, where: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise ValueError(f"{where}: expected a quoted string, got {text!r}")
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), text[1:-1])


def read_po(text: str, name: str = "catalogue") -> tuple[dict[str, str], dict[tuple[str, str], list[str]], str]:
    """The translated entries of a gettext ``.po`` file: ``(messages, plurals, plural_forms)``.

    ``messages`` maps a msgid to its msgstr; ``plurals`` maps ``(msgid, msgid_plural)`` to the
    msgstr of each plural form; ``plural_forms`` is the header's ``Plural-Forms`` value. Entries that
    are untranslated, fuzzy or obsolete are left out (their messages stay in English), as ``msgfmt``
    leaves them out. Entries with a ``msgctxt`` are keyed ``context\\x04msgid``, as gettext does.
    """
    messages: dict[str, str] = {}
    plurals: dict[tuple[str, str], list[str]] = {}
    header = ""

    def finish(entry: dict[str, object]) -> None:
        nonlocal header
        if "msgid" not in entry or "fuzzy" in entry.get("flags", ()):
            return
        msgid = str(entry["msgid"])
        if "msgctxt" in entry:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        if msgid == "":
            header = str(entry.get("msgstr", ""))
        elif "msgid_plural" in entry:
            forms = entry.get("forms", {})
            if forms and all(forms.values()):
                plurals[(msgid, str(entry["msgid_plural"]))] = [forms[i] for i in sorted(forms)]
        elif entry.get("msgstr"):
            messages[msgid] = str(entry["msgstr"])

    entry: dict[str, object] = {}
    field: tuple[str, int | None] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{name}, line {number}"
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if "msgid" in entry and field is not None:  # a comment starts the next entry
                finish(entry)
                entry, field = {}, None
            if line.startswith("#,"):
                entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith('"'):
            if field is None:
                raise ValueError(f"{where}: a string outside any msgid or msgstr")
            key, index = field
            if index is None:
                entry[key] = str(entry[key]) + _unquote(line, where)
            else:
                entry["forms"][index] += _unquote(line, where)
            continue
        keyword, _space, rest = line.partition(" ")
        found = re.fullmatch(r"(msgctxt|msgid|msgid_plural|msgstr)(?:\[(\d+)\])?", keyword)
        if not found:
            raise ValueError(f"{where}: unknown keyword {keyword!r}")
        key, index = found.group(1), found.group(2)
        if key in ("msgctxt", "msgid") and any(k in entry for k in ("msgstr", "forms")):
            finish(entry)  # the previous entry had no comment between it and this one
            entry, field = {}, None
        if index is None:
            entry[key] = _unquote(rest, where)
            field = (key, None)
        else:
            entry.setdefault("forms", {})[int(index)] = _unquote(rest, where)
            field = ("forms", int(index))
    finish(entry)
    found = re.search(r"^Plural-Forms:\s*(.*)$", header, re.M)
    return messages, plurals, found.group(1).strip() if found else ""


class _Catalogue:
    """One language's translations, read from its ``.po`` file."""

    def __init__(self, path: Path):
        self.messages, self.plurals, forms = read_po(path.read_text(encoding="utf-8"), str(path))
        rule = re.search(r"plural\s*=\s*([^;]+)", forms)
        self.plural = gettext.c2py(rule.group(1)) if rule else (lambda n: int(n != 1))
        self.by_singular = {singular: strings for (singular, _plural), strings in self.plurals.items()}

    def gettext(self, message: str) -> str:
        return self.messages.get(message, message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        strings = self.plurals.get((singular, plural))
        if not strings:
            return singular if count == 1 else plural
        return strings[min(self.plural(count), len(strings) - 1)]


@functools.cache
def _catalogue(chosen: str) -> _Catalogue | gettext.NullTranslations:
    path = LOCALE / chosen / "LC_MESSAGES" / f"{DOMAIN}.po"
    return _Catalogue(path) if path.is_file() else gettext.NullTranslations()


# ---- extraction (for pybabel, through babel.cfg; needs Babel, which only the course's tools install) ----

CASE_KEYWORDS = ("case", "explanation")
"""The keyword arguments through which the course's test cells describe their inputs to the checks
(``case="large logits"``, ``explanation="16 arrays of the size of z"``): the checks show these words in
the reader's language, so the catalogue holds every one written as a plain string in a source notebook."""

def fold(message: str) -> str:
    """Whitespace folded to single spaces, as the catalogue of mistakes folds its explanations."""
    return " ".join(message.split())


def extract(fileobj, keywords, comment_tags, options):
    """pybabel's extraction method for the library's sources: Babel's own extractor for Python, with
    the messages marked :func:`N_` folded (see :func:`fold`), as they are when they are shown."""
    from babel.messages.extract import extract_python

    for lineno, funcname, messages, comments in extract_python(fileobj, keywords, comment_tags, options):
        if funcname == "N_" and isinstance(messages, str):
            messages = fold(messages)
        yield lineno, funcname, messages, comments


def extract_cases(fileobj, keywords, comment_tags, options):
    """pybabel's extraction method for the source notebooks: the words of their test cells for their inputs
    (the plain strings given as :data:`CASE_KEYWORDS`); a line number counts the code cells' lines."""
    import ast
    import json

    notebook = json.loads(fileobj.read().decode("utf-8"))
    offset = 0
    for cell in notebook.get("cells", []):
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") != "code":
            continue
        # IPython's magics (%pip, !ls) as Python that parses
        code = "\n".join(line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip()[:1] in ("%", "!") else line
                         for line in source.splitlines())
        try:
            tree = ast.parse(code)
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        for node in ast.walk(tree):
            if (isinstance(node, ast.keyword) and node.arg in CASE_KEYWORDS and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str) and node.value.value):
                yield offset + node.value.lineno, None, node.value.value, [
                    "TRANSLATORS: a test's words for its input, shown after the call they describe"]
        offset += len(source.splitlines())
