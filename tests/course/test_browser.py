"""The built book, as a reader meets it: every page in headless Chromium, with no network.

The HTML is served on localhost; every request to any other address is blocked (and counts
as a failure), so a page that needs a CDN fails here. Chromium is Debian's (`apt install
chromium`), driven by Playwright with `executable_path`: no browser is downloaded. A
screenshot of every page is written to _build/screenshots/ for a person to look at.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
from conftest import REPO, toc_files

from softgrad.book import SECOND_LANGUAGE

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("book")]

SCREENSHOTS = REPO / "_build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# Console errors that every page logs and that harm nothing (listed in CONTRIBUTING.md):
# sphinx-thebe 0.3.1 declares THEBE_JS_URL twice, even with Thebe off; pydata-sphinx-theme
# complains once about the empty saved theme mode of a first visit, then follows the reader's
# light/dark setting (test_dark_mode_follows_the_readers_setting checks that it does).
HARMLESS_CONSOLE_ERRORS = [re.compile(r"Identifier 'THEBE_JS_URL' has already been declared"),
                           re.compile(r"^Got invalid theme mode: \. Resetting to auto\.$")]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Debian's Chromium is not installed: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _harmless(text: str) -> bool:
    return any(pattern.search(text) for pattern in HARMLESS_CONSOLE_ERRORS)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (the signature of the base class)
        pass


@contextlib.contextmanager
def _serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def site(built_book):
    """The built HTML, served for the duration of the module."""
    with _serve(built_book) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One page in a fresh browser context: what failed, what the console said."""

    def __init__(self, browser, site: str, *, color_scheme: str = "light"):
        self.site = site
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1300, "height": 900}, color_scheme=color_scheme)
        self.context.route("**/*", self._only_local)
        self.page = self.context.new_page()
        self.page.on("requestfailed", lambda request: self.failed.append(f"{request.url} ({request.failure})"))
        self.page.on("console", self._console)
        self.page.on("pageerror", self._page_error)

    def _only_local(self, route):
        if route.request.url.startswith(self.site) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            route.abort("blockedbyclient")  # recorded by requestfailed: the page needs the network

    def _console(self, message):
        if message.type == "error" and not _harmless(message.text):
            self.errors.append(f"console error: {message.text}")

    def _page_error(self, error):
        if not _harmless(str(error)):
            self.errors.append(f"page error: {error}")

    def open(self, path: str):
        response = self.page.goto(urljoin(self.site, path), wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP {response.status if response else 'no response'}"
        # MathJax typesets after load; its startup promise resolves when every formula is done.
        self.page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        # a long page under a loaded machine (the suite grades classes beside it) can take a while;
        # the page and its formulas are there already, and every failed request is recorded, so a
        # network that never falls quiet on a starved machine is waited for, not failed on
        try:
            self.page.wait_for_load_state("networkidle", timeout=90_000)
        except Exception as error:  # playwright's TimeoutError (imported only where playwright is)
            if type(error).__name__ != "TimeoutError":
                raise
            self.page.wait_for_load_state("load")
        return self.page

    def close(self):
        self.context.close()


def _local_links(page, site: str) -> set[str]:
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    return {urlparse(h)._replace(fragment="", query="").geturl() for h in hrefs if h.startswith(site)}


@pytest.mark.parametrize("name", toc_files())
def test_every_page_loads_offline_with_math_images_and_links(browser, site, built_book, name):
    _check_page(Visit(browser, site), built_book, name, SCREENSHOTS)


def _check_page(visit: Visit, built_book: Path, name: str, screenshots: Path, edition: str = "", then=None):
    """Open the page ``name`` of an edition (``""``: English, else its folder) and check what a reader meets.

    ``then(page)``, if given, checks more on the open page before the visit ends.
    """
    site = visit.site
    try:
        page = visit.open(f"{edition}{name}.html")
        screenshots.mkdir(parents=True, exist_ok=True)
        screenshot = screenshots / f"{name.replace('/', '__')}.png"
        page.screenshot(path=str(screenshot), full_page=True)
        assert screenshot.stat().st_size > 10_000, f"{name}: the screenshot is (nearly) empty"

        assert not visit.failed, f"{name}: failed or blocked requests (the page needs the network?): {visit.failed}"
        assert not visit.errors, f"{name}: {visit.errors}"

        formulas = page.locator(".math").count()
        if formulas:
            rendered = page.locator("mjx-container").count()
            assert rendered >= formulas, f"{name}: {formulas} formulas but only {rendered} rendered by MathJax"
            too_wide = page.eval_on_selector_all(
                'mjx-container[display="true"]',
                "cs => cs.filter(c => c.scrollWidth > c.clientWidth + 2).map(c => c.textContent.slice(0, 60))")
            assert not too_wide, f"{name}: displayed formulas wider than the page (break them into lines): {too_wide}"
            text = page.inner_text("article")
            for raw in ("$$", "\\(", "\\["):
                assert raw not in text, f"{name}: raw TeX {raw!r} left on the page"

        broken = page.eval_on_selector_all(
            "article img", "images => images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        assert not broken, f"{name}: images that did not load: {broken}"

        for link in sorted(_local_links(page, site)):
            target = built_book / urlparse(link).path.lstrip("/")
            if target.is_dir():
                target = target / "index.html"
            assert target.exists(), f"{name}: the link {link} leads nowhere"
        if then is not None:
            then(page)
    finally:
        visit.close()


def test_a_solution_dropdown_opens(browser, site):
    visit = Visit(browser, site)
    try:
        page = visit.open("chapters/01_softmax.html")
        # sphinx-exercise renders a solution as an admonition that sphinx-togglebutton hides
        dropdown = page.locator("div.solution.dropdown").first
        assert dropdown.count() == 1, "chapter 1 has no solution dropdown"
        body = dropdown.locator("> :not(.admonition-title)").first
        assert not body.is_visible(), "a solution is visible before the reader opens it"
        dropdown.locator("button.toggle-button").click()
        body.wait_for(state="visible", timeout=5000)
        assert "toggle-hidden" not in (dropdown.get_attribute("class") or "")
    finally:
        visit.close()


def test_search_finds_jacobian(browser, site):
    visit = Visit(browser, site)
    try:
        page = visit.open("search.html?q=Jacobian")
        results = page.locator("#search-results li")
        results.first.wait_for(timeout=15000)
        assert results.count() >= 2, "search found fewer than two pages for 'Jacobian'"
        assert "Jacobian" in page.inner_text("#search-results")
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_dark_mode_follows_the_readers_setting(browser, site):
    visit = Visit(browser, site, color_scheme="dark")
    try:
        page = visit.open("chapters/03_jacobian.html")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        channels = [int(c) for c in re.findall(r"\d+", background)[:3]]
        assert sum(channels) < 3 * 80, f"the page background is not dark: {background}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dark__chapters__03_jacobian.png"))
        assert not visit.errors, visit.errors
    finally:
        visit.close()


def test_the_checks_see_a_page_that_needs_the_network(browser, tmp_path):
    """The same checks on a page that loads a script from a CDN and a missing image: both are caught."""
    (tmp_path / "page.html").write_text(
        '<html><body><article><p>x</p><img src="missing.png">'
        '<script src="https://cdn.example.org/mathjax.js"></script></article></body></html>')
    with _serve(tmp_path) as url:
        visit = Visit(browser, url)
        try:
            page = visit.open("page.html")
            assert any("cdn.example.org" in f for f in visit.failed), visit.failed
            broken = page.eval_on_selector_all("article img", "images => images.filter(i => i.naturalWidth === 0)")
            assert len(broken) == 1
        finally:
            visit.close()


# ---- the Chinese edition (built by the same `./course book`, at _build/html/zh_CN/) ----

# A few pages of each kind get the full check above; every page's link to the other edition is
# checked without a browser (test_translations.py).
CHINESE_PAGES = ["intro", "chapters/01_softmax", "chapters/03_jacobian", "exercises/ps2_jacobian/jacobian"]
DRAWS_CHINESE = """() => {
    const draw = text => {
        const canvas = document.createElement("canvas");
        canvas.width = canvas.height = 48;
        const context = canvas.getContext("2d");
        context.font = "40px " + getComputedStyle(document.body).fontFamily;
        context.fillText(text, 2, 42);
        return Array.from(context.getImageData(0, 0, 48, 48).data).join(",");
    };
    return draw("雅") !== draw("比");  // two missing glyphs draw the same empty box
}"""


def _chinese_font():
    """Chromium draws Chinese with a system font: Debian's fonts-wqy-microhei (./course test installs it)."""
    fc_list = shutil.which("fc-list")
    listed = subprocess.run([fc_list, ":lang=zh"], capture_output=True, text=True).stdout if fc_list else ""
    if not listed.strip():
        message = "no font with Chinese characters: apt-get install fonts-wqy-microhei"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("name", CHINESE_PAGES)
def test_chinese_pages_load_offline_in_chinese_with_math(browser, site, built_book, name):
    _chinese_font()

    def in_chinese(page):
        assert page.evaluate("document.documentElement.lang") == SECOND_LANGUAGE.replace("_", "-")
        chinese = len(re.findall(r"[\u4e00-\u9fff]", page.inner_text("article")))
        assert chinese >= 100, f"{name}: only {chinese} Chinese characters on the page: is it translated?"
        assert page.evaluate(DRAWS_CHINESE), f"{name}: Chinese characters are drawn as empty boxes (no font)"

    _check_page(Visit(browser, site), built_book, name, SCREENSHOTS / SECOND_LANGUAGE,
                edition=f"{SECOND_LANGUAGE}/", then=in_chinese)


def test_the_language_link_leads_both_ways(browser, site):
    visit = Visit(browser, site)
    try:
        page = visit.open("chapters/03_jacobian.html")
        for expected_path, lang in ((f"/{SECOND_LANGUAGE}/chapters/03_jacobian.html", "zh-CN"),
                                    ("/chapters/03_jacobian.html", "en")):
            with page.expect_navigation(wait_until="load"):
                page.locator("a.course-language-link").click()
            assert urlparse(page.url).path == expected_path, f"the language link led to {page.url}"
            assert page.evaluate("document.documentElement.lang") == lang
        assert not visit.failed and not visit.errors, visit.failed + visit.errors
    finally:
        visit.close()


def test_chinese_search_finds_the_jacobian_chapter(browser, site):
    """Chinese has no spaces between words: the search index is segmented with jieba."""
    visit = Visit(browser, site)
    try:
        page = visit.open(f"{SECOND_LANGUAGE}/search.html?q=雅可比")
        results = page.locator("#search-results li")
        results.first.wait_for(timeout=15000)
        found = page.eval_on_selector_all("#search-results li a", "links => links.map(a => a.href)")
        assert any("chapters/03_jacobian.html" in href for href in found), f"searching 雅可比 found {found}"
        assert not visit.errors, visit.errors
    finally:
        visit.close()
