"""Browser test of the rendered book: it opens every page in headless Chromium and *reads* it as a reader would.

Each page must load with no Sphinx error boxes, no broken local links, no broken images, typeset math (from the
local MathJax copy), and download/launch buttons on the notebook pages. Then the reading checks, one test each:

* no raw pipe-table text (``| a | b |`` / ``|---|``): a Markdown table printed by code that was rendered as
  CommonMark (no tables) instead of MyST (``nb_render_markdown_format: myst`` in ``_config.yml``);
* no unresolved glue or cross-reference: raw MyST role text (``{glue:text}`...```, ``{{ version }}``), a Sphinx
  ``.xref`` left without a link, an empty bibliography citation or an empty pasted glue value;
* no figure without an image (a ``figure`` with no ``img``/``svg``, or an image that did not load);
* no code line wider than its box (a ``pre``, code or output, that scrolls sideways), with collapsed cells opened.

The pages are read at 1440 x 900 CSS pixels, the width the book is laid out for (the code box then holds 89
columns; notebook code lines are at most 88 bytes, tests/test_repo.py). Screenshots of the intro page and three
chapters are saved under ``_build/screenshots/`` (CI uploads them as an artifact).

Run after building the site: ``make book-stored && make test-site`` (or ``SITE=... make test-site``).
Needs Debian's Chromium (``apt-get install chromium``); Playwright drives it, no browser is downloaded.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}
ERROR_BOXES = ".system-message, .problematic, div.admonition.error, .cell_output .traceback, .output.error"
#: pages photographed (page -> file under _build/screenshots/): the intro and three chapters
SCREENSHOTS = {"book/intro.html": "intro.png", "notebooks/09_beyond_theory.html": "09_beyond_theory.png",
               "notebooks/13_sam_stability.html": "13_sam_stability.png",
               "notebooks/17_sam_vs_sgd_cifar10.html": "17_sam_vs_sgd_cifar10.png"}
SCREENSHOT_MAX_HEIGHT = 16_000  # CSS pixels: the top of a long chapter (claim, protocol, first figures)

#: What a reader would see as a defect, collected by one pass over the rendered page (run in the page).
READ_PAGE_JS = r"""
() => {
  const SKIP = 'pre, code, kbd, samp, script, style, mjx-container, .math, nav, .highlight, .headerlink';
  const root = document.querySelector('main') || document.body;
  const textOf = (el) => {  // the element's visible prose: code, math and navigation left out
    let t = '';
    const w = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    while (w.nextNode()) { if (!w.currentNode.parentElement.closest(SKIP)) t += w.currentNode.textContent; }
    return t.replace(/\s+/g, ' ').trim();
  };
  const short = (s) => s.length > 100 ? s.slice(0, 100) + '…' : s;
  const SEP = /\|\s*:?(-{3,}|[\u2013\u2014]+):?\s*\|/;  // a separator row: |---|, | --- |, |:--|, |—| (smartquotes)
  const ROW = /(^|\s)\|\s+[^|\s][^|]*?\s+\|\s+[^|\s][^|]*?\s+\|/;  // two cells: | a | b |
  const ROLE = /\{(glue(:[a-z]+)?|ref|numref|doc|eq|prf:ref|cite(:[a-z]+)?|download|term)\}`|\{\{\s*[\w.]+\s*\}\}/;
  const pipes = [], roles = [];
  for (const el of root.querySelectorAll('p, li, dd, dt, td, th, h1, h2, h3, h4, h5, h6, figcaption, caption')) {
    if (el.closest(SKIP)) continue;
    const t = textOf(el);
    if (SEP.test(t) || ROW.test(t)) pipes.push(short(t));
    if (ROLE.test(t)) roles.push(short(t));
  }
  const unresolved = [
    ...roles.map(t => 'raw role: ' + t),
    ...Array.from(root.querySelectorAll('.xref')).filter(e => !e.closest('a[href]'))
      .map(e => 'unresolved reference: ' + short(e.textContent.trim())),
    ...Array.from(root.querySelectorAll('.bibtex-citation')).map(e => e.textContent.trim())
      .filter(t => !t || t === '[]' || t.includes('?')).map(t => 'unresolved citation: ' + (t || '(empty)')),
    ...Array.from(root.querySelectorAll('.pasted-text, .pasted-inline'))
      .filter(e => !e.textContent.trim() && !e.querySelector('img, svg')).map(() => 'empty glue value'),
  ];
  const figures = [
    ...Array.from(root.querySelectorAll('figure, div.figure'))
      .filter(f => !f.querySelector('img, svg, object, canvas, video, iframe'))
      .map(f => 'figure without an image: ' + short(f.id || textOf(f) || '(no caption)')),
    ...Array.from(root.querySelectorAll('img')).filter(i => !i.complete || i.naturalWidth === 0)
      .map(i => 'image that did not load: ' + i.getAttribute('src')),
  ];
  document.querySelectorAll('details').forEach(d => { d.open = true; });  // collapsed cells count when opened
  const wide = Array.from(root.querySelectorAll('pre')).filter(p => p.clientWidth > 0 && p.scrollWidth > p.clientWidth)
    .map(p => {
      const line = p.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
      const where = p.closest('.cell_output, .output') ? 'output' : 'code';
      return `${where} ${p.scrollWidth} px in a ${p.clientWidth} px box: ${short(line.trim())}`;
    });
  document.querySelectorAll('details').forEach(d => { d.open = false; });
  return {pipes, unresolved, figures, wide};
}
"""


@dataclass
class Reading:
    """What one pass over every page found, per kind of defect (``page: what``)."""

    pages: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # load errors, error boxes, math, buttons, links
    pipes: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    wide: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    math_pages: int = 0
    screenshots: list[Path] = field(default_factory=list)


@pytest.fixture(scope="module")
def site() -> Path:
    path = (ROOT / os.environ.get("FLATBIAS_SITE", "_build/stored/_build/html")).resolve()
    if not (path / "index.html").is_file():
        pytest.fail(f"no built site at {path}: run `make book-stored` (or `make book`) first, "
                    "or point FLATBIAS_SITE at a built html folder")
    return path


@pytest.fixture(scope="module")
def server(site):
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        pytest.fail("Chromium is missing: install Debian's package (`apt-get install chromium`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _pages(site: Path) -> list[str]:
    skip = ("_static", "_sources", "_images", "_downloads")
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if p.relative_to(site).parts[0] not in skip and str(p.relative_to(site)) != "index.html")


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _screenshot(page, path: Path) -> None:
    height = page.evaluate("document.documentElement.scrollHeight")
    if height <= SCREENSHOT_MAX_HEIGHT:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.screenshot(path=str(path), full_page=True,
                        clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": SCREENSHOT_MAX_HEIGHT})


@pytest.fixture(scope="module")
def reading(site, server, browser) -> Reading:
    """Open every page once and collect everything the tests below judge."""
    out = Reading(pages=_pages(site))
    context = browser.new_context(viewport=VIEWPORT)

    def only_local(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # the site must work offline: record and block anything else
            out.external.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.goto(f"{server}/index.html")  # the root is a redirect to the intro
    page.wait_for_url("**/book/intro.html", timeout=10_000)
    page.on("pageerror", lambda exc: out.console_errors.append(str(exc)))
    links: set[str] = set()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for rel in out.pages:
        response = page.goto(f"{server}/{rel}", wait_until="load")
        if response is None or response.status != 200:
            out.problems.append(f"{rel}: HTTP {None if response is None else response.status}")
            continue
        boxes = page.locator(ERROR_BOXES).all_inner_texts()
        if boxes:
            out.problems.append(f"{rel}: error/warning boxes: {[b[:80] for b in boxes]}")
        n_math = page.locator(".math").count()
        if n_math:
            out.math_pages += 1
            try:
                page.wait_for_function("Array.from(document.querySelectorAll('.math'))"
                                       ".every(e => e.querySelector('mjx-container'))", timeout=20_000)
            except Exception:
                out.problems.append(f"{rel}: {n_math} math elements not typeset by MathJax")
            if page.locator("mjx-merror").count():
                out.problems.append(f"{rel}: MathJax reports TeX errors")
        if rel.startswith("notebooks/"):
            if not page.locator(".dropdown-download-buttons a[href$='.ipynb']").count():
                out.problems.append(f"{rel}: no .ipynb download button")
            if not page.locator(".dropdown-launch-buttons a[href*='colab.research.google.com']").count():
                out.problems.append(f"{rel}: no Colab launch button")
        hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        links.update(urldefrag(h)[0] for h in hrefs if h.startswith(server))
        page.evaluate("document.fonts.ready.then(() => true)")  # widths are measured in the final font
        found = page.evaluate(READ_PAGE_JS)
        for kind in ("pipes", "unresolved", "figures", "wide"):
            getattr(out, kind).extend(f"{rel}: {what}" for what in found[kind])
        if rel in SCREENSHOTS:
            path = SHOTS / SCREENSHOTS[rel]
            _screenshot(page, path)
            out.screenshots.append(path)
    context.close()
    for url in sorted(links):
        if _status(url) != 200:
            out.problems.append(f"broken local link: {url[len(server):]}")
    return out


def _fail_on(found: list[str], what: str, limit: int = 40) -> None:
    if found:
        more = f"\n... and {len(found) - limit} more" if len(found) > limit else ""
        pytest.fail(f"{len(found)} {what}:\n" + "\n".join(found[:limit]) + more, pytrace=False)


def test_every_page_loads(reading):
    assert any(p.startswith("notebooks/") for p in reading.pages), "no notebook pages in the site"
    assert reading.math_pages >= 2, "MathJax content expected on several pages"
    assert not reading.external, ("pages requested external resources (the site must read offline): "
                                  f"{sorted(set(reading.external))[:5]}")
    assert not reading.console_errors, f"JavaScript errors: {reading.console_errors[:5]}"
    _fail_on(reading.problems, "problems")


def test_no_raw_pipe_tables(reading):
    """A Markdown table printed by code shows as a table, not as ``| a | b |`` text."""
    _fail_on(reading.pipes, "paragraphs of raw pipe-table text (is `nb_render_markdown_format: myst` set "
             "in _config.yml?)")


def test_no_unresolved_glue_or_reference(reading):
    _fail_on(reading.unresolved, "unresolved glue values or references")


def test_every_figure_has_an_image(reading):
    _fail_on(reading.figures, "figures without an image")


def test_code_fits_its_box(reading):
    """Code cells (collapsed ones opened) and code blocks of the prose do not scroll sideways."""
    _fail_on([w for w in reading.wide if w.split(": ", 1)[1].startswith("code ")],
             f"code lines wider than their box at {VIEWPORT['width']} px")


def test_outputs_fit_their_box(reading):
    """What the chapters print does not scroll sideways either."""
    _fail_on([w for w in reading.wide if w.split(": ", 1)[1].startswith("output ")],
             f"printed output lines wider than their box at {VIEWPORT['width']} px")


def test_screenshots_saved(reading):
    missing = sorted(set(SCREENSHOTS) - set(reading.pages))
    assert not missing, f"pages to photograph are not in the site: {missing}"
    for path in reading.screenshots:
        assert path.stat().st_size > 10_000, f"{path} looks empty"
    assert len(reading.screenshots) == len(SCREENSHOTS)


CRAFTED = """<!doctype html><html><head><style>pre { width: 200px; overflow-x: auto; }</style></head><body><main>
<p>| setting | smoke | full | |---|---|---| | `n` | 5 | 10 |</p>
<p>|—|—|</p>
<p>The ratio |r(η/2)/1.6 − 1| / |r(η)/1.6 − 1| is fine; so is a | b.</p>
<table><tr><th>setting</th><th>smoke</th></tr><tr><td>n</td><td>5</td></tr></table>
<p>See <span class="xref std std-ref">nolabel</span> and <a href="#x"><span class="xref std std-ref">ok</span></a>,
   {glue:text}`sigma` and {{ version }}.</p>
<figure id="empty-figure"><figcaption>A figure whose image went missing</figcaption></figure>
<figure id="good-figure"><svg width="10" height="10"></svg></figure>
<pre id="wide">""" + "x" * 300 + """</pre><pre id="narrow">short</pre>
<details><summary>code</summary><pre id="hidden-wide">""" + "y" * 300 + """</pre></details>
</main></body></html>"""


def test_the_reader_catches_each_defect(browser):
    """The page reader itself: each kind of defect on a crafted page is found, and its look-alikes are not."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_content(CRAFTED)
    found = page.evaluate(READ_PAGE_JS)
    page.close()
    assert len(found["pipes"]) == 2 and found["pipes"][0].startswith("| setting | smoke")
    assert [u.split(":")[0] for u in found["unresolved"]] == ["raw role", "unresolved reference"]
    assert "nolabel" in found["unresolved"][1]
    assert found["figures"] == ["figure without an image: empty-figure"]
    assert len(found["wide"]) == 2 and all(w.startswith("code ") for w in found["wide"])
