"""Launch buttons for chapters open the chapter's notebook in notebooks/, not its Markdown source.

sphinx-book-theme points Colab, Binder and JupyterHub at the page's source file. A chapter's
source is MyST Markdown (``chapters/NN_topic.md``), which Colab cannot open; the same chapter
as a notebook without outputs is ``notebooks/NN_topic.ipynb`` (written by ``./course
notebooks``). This extension rewrites the launch links of chapter pages to that notebook.
Exercise pages are notebooks already and keep their links.
"""

from __future__ import annotations

from pathlib import PurePosixPath


def _point_launch_buttons_at_notebooks(app, pagename, templatename, context, doctree):
    if not pagename.startswith("chapters/"):
        return
    source = f"{pagename}.md"
    notebook = f"notebooks/{PurePosixPath(pagename).name}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if "url" in button:
                button["url"] = button["url"].replace(source, notebook)


def setup(app):
    # sphinx-book-theme adds its launch buttons at priority 501; rewrite them afterwards.
    app.connect("html-page-context", _point_launch_buttons_at_notebooks, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
