"""Browser test of the rendered book: every page loads in headless Chromium, with no Sphinx error boxes,
no broken local links, no broken images, typeset math (from the local MathJax copy), and download/launch
buttons on the notebook pages. Saves a screenshot of the intro page under _build/screenshots/.

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
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ERROR_BOXES = ".system-message, .problematic, div.admonition.error, .cell_output .traceback, .output.error"


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


def test_every_page(site, server, browser):
    pages = _pages(site)
    assert any(p.startswith("notebooks/") for p in pages), "no notebook pages in the site"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    external: list[str] = []

    def only_local(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # the site must work offline: record and block anything else
            external.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.goto(f"{server}/index.html")  # the root is a redirect to the intro
    page.wait_for_url("**/book/intro.html", timeout=10_000)
    console_errors: list[str] = []
    page.on("pageerror", lambda exc: console_errors.append(str(exc)))
    links: set[str] = set()
    problems: list[str] = []
    math_pages = 0
    for rel in pages:
        response = page.goto(f"{server}/{rel}", wait_until="load")
        if response is None or response.status != 200:
            problems.append(f"{rel}: HTTP {None if response is None else response.status}")
            continue
        boxes = page.locator(ERROR_BOXES).all_inner_texts()
        if boxes:
            problems.append(f"{rel}: error/warning boxes: {[b[:80] for b in boxes]}")
        broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                               ".map(i => i.getAttribute('src'))")
        if broken:
            problems.append(f"{rel}: broken images {broken}")
        n_math = page.locator(".math").count()
        if n_math:
            math_pages += 1
            try:
                page.wait_for_function("Array.from(document.querySelectorAll('.math'))"
                                       ".every(e => e.querySelector('mjx-container'))", timeout=20_000)
            except Exception:
                problems.append(f"{rel}: {n_math} math elements not typeset by MathJax")
            if page.locator("mjx-merror").count():
                problems.append(f"{rel}: MathJax reports TeX errors")
        if rel.startswith("notebooks/"):
            if not page.locator(".dropdown-download-buttons a[href$='.ipynb']").count():
                problems.append(f"{rel}: no .ipynb download button")
            if not page.locator(".dropdown-launch-buttons a[href*='colab.research.google.com']").count():
                problems.append(f"{rel}: no Colab launch button")
        hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
        links.update(urldefrag(h)[0] for h in hrefs if h.startswith(server))
        if rel == "book/intro.html":
            shots = ROOT / "_build" / "screenshots"
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "intro.png"), full_page=True)
    context.close()
    for url in sorted(links):
        if _status(url) != 200:
            problems.append(f"broken local link: {url[len(server):]}")
    assert math_pages >= 2, "MathJax content expected on several pages"
    assert not external, f"pages requested external resources (the site must read offline): {sorted(set(external))[:5]}"
    assert not console_errors, f"JavaScript errors: {console_errors[:5]}"
    assert not problems, "\n".join(problems)
