"""Packaging: ``pyproject.toml`` declares every third-party module the package imports (issue 13).

Every ``import`` of ``lib/flatbias/*.py`` (read with ``ast``, at any depth) whose top-level name is neither the
standard library nor flatbias must come from a distribution in ``[project] dependencies``, unless it is optional:

* guarded: inside ``try: ... except ImportError: raise ImportError("... pip install ...")``, and the distribution
  is in an extra of ``[project.optional-dependencies]``;
* book-only: the module (or the function holding the import) is only used while the book is built, listed in
  :data:`BOOK_ONLY` below, and the distribution is in the ``book`` extra (``pip install .[book]``).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lib" / "flatbias"

#: import name -> distribution name where they differ (the rest are looked up in the installed metadata)
DISTRIBUTION = {"PIL": "pillow", "yaml": "PyYAML", "sklearn": "scikit-learn", "skimage": "scikit-image",
                "cv2": "opencv-python", "bs4": "beautifulsoup4", "myst_nb": "myst-nb", "dateutil": "python-dateutil",
                "attr": "attrs", "google": "protobuf", "jupyter_book": "jupyter-book"}

#: imports that only run while the book is built: Sphinx loads flatbias.sphinxext (all of it), the chapters call
#: flatbias.verdict.glue_verdict (imports myst_nb inside), and flatbias.chapter_record executes the chapters
#: (nbformat, nbclient inside execute_at_full; ``make records``). (module, import name) pairs.
#: chapter_record.chapter_code_hash reads a chapter's code cells (jupytext) as the kernel runs them (IPython).
BOOK_ONLY = {("sphinxext", "docutils"), ("sphinxext", "sphinx"), ("sphinxext", "myst_nb"), ("verdict", "myst_nb"),
             ("chapter_record", "nbformat"), ("chapter_record", "nbclient"), ("chapter_record", "jupytext"),
             ("chapter_record", "IPython")}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(req: str) -> str:
    return _norm(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req).group(1))


def _pyproject() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {_requirement_name(r) for r in project.get("dependencies", [])}
    extras = {k: {_requirement_name(r) for r in v} for k, v in project.get("optional-dependencies", {}).items()}
    return deps, extras


def distribution(top: str) -> str:
    """The distribution that provides import name ``top``."""
    if top in DISTRIBUTION:
        return _norm(DISTRIBUTION[top])
    found = _installed().get(top)
    return _norm(found[0] if found else top)


@functools.lru_cache(maxsize=1)
def _installed() -> dict:
    return metadata.packages_distributions()  # scans site-packages: once


def _guarded(node: ast.AST, parents: dict) -> bool:
    """Inside a ``try`` whose ``except ImportError`` handler raises an ImportError that says what to install."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            for h in node.handlers:
                names = [n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)] if h.type else []
                if not {"ImportError", "ModuleNotFoundError"} & set(names):
                    continue
                for r in (n for stmt in h.body for n in ast.walk(stmt) if isinstance(n, ast.Raise) and n.exc):
                    text = " ".join(c.value for c in ast.walk(r.exc) if isinstance(c, ast.Constant)
                                    and isinstance(c.value, str))
                    call = r.exc.func if isinstance(r.exc, ast.Call) else r.exc
                    if getattr(call, "id", "") in ("ImportError", "ModuleNotFoundError") and "pip install" in text:
                        return True
    return False


def third_party_imports(source: str) -> list[tuple[str, int, bool]]:
    """(top-level import name, line, guarded) for every non-stdlib, non-relative import of a module's source."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in ("__future__", "flatbias"):
                continue
            out.append((top, node.lineno, _guarded(node, parents)))
    return out


def problems(module: str, source: str, deps: set[str], extras: dict[str, set[str]]) -> list[str]:
    """Why each import of ``source`` is not declared (empty: all are)."""
    out = []
    for top, line, guarded in third_party_imports(source):
        dist = distribution(top)
        if dist in deps:
            continue
        in_extra = [k for k, v in extras.items() if dist in v]
        if in_extra and guarded:
            continue
        if (module, top) in BOOK_ONLY and "book" in in_extra:
            continue
        why = (f"in extra {in_extra} but not guarded by an ImportError that says 'pip install ...'" if in_extra
               else "not declared in pyproject.toml")
        out.append(f"{module}.py:{line}: import {top} (distribution {dist}) is {why}")
    return out


def test_every_third_party_import_is_declared():
    deps, extras = _pyproject()
    bad = [p for f in sorted(PKG.glob("*.py")) for p in problems(f.stem, f.read_text(encoding="utf-8"), deps, extras)]
    assert not bad, "\n".join(bad)


def test_the_runtime_dependencies_are_declared():
    deps, extras = _pyproject()
    assert {"torch", "numpy", "scipy", "numba", "pillow", "tqdm", "matplotlib", "seaborn"} <= deps
    assert {"docutils", "myst-nb", "nbclient", "nbformat"} <= extras["book"]


@pytest.mark.parametrize("source, ok", [
    ("import numba", True),
    ("from PIL import Image", True),
    ("import os, json\nfrom . import records", True),
    ("def f():\n    import sklearn.decomposition", False),  # lazy imports count too
    ("import yaml", False),  # PyYAML: only a pin in requirements.txt, not a dependency of the package
    ("try:\n    import docutils\nexcept ImportError:\n    raise ImportError('pip install .[book]')", True),
    ("try:\n    import docutils\nexcept ImportError:\n    docutils = None", False),  # silently ignored
    ("import docutils", False),  # an extra, unguarded, outside the book-only modules
])
def test_the_checker_itself(source, ok):
    deps, extras = _pyproject()
    assert (problems("example", source, deps, extras) == []) == ok


# --- citable: licenses, CITATION.cff, changelog, one version everywhere, claims.json's schema (issue 22) ---------

CFF_SCHEMA = ROOT / "docs" / "schemas" / "cff-1.2.0.schema.json"
CLAIMS_SCHEMA = ROOT / "book" / "claims.schema.json"
RELEASED = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})\s*$", re.M)


def _yaml(path: Path):
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _stringify_dates(node):
    """CFF's schema wants dates as strings; YAML reads an unquoted 2024-01-31 as a date (as cffconvert does)."""
    import datetime

    if isinstance(node, dict):
        return {k: _stringify_dates(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_stringify_dates(v) for v in node]
    return node.isoformat() if isinstance(node, datetime.date) else node


def cff_errors(cff: dict) -> list[str]:
    """Why ``cff`` is not valid Citation File Format 1.2.0 (empty: it is), by the vendored official schema."""
    jsonschema = pytest.importorskip("jsonschema")
    import json

    schema = json.loads(CFF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in validator.iter_errors(_stringify_dates(cff))]


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def changelog_newest_release() -> str:
    found = RELEASED.findall((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    assert found, "CHANGELOG.md has no released section `## [X.Y.Z] - YYYY-MM-DD`"
    return found[0][0]


def test_the_vendored_cff_schema_is_the_official_1_2_0():
    import json

    schema = json.loads(CFF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"
    assert {"authors", "cff-version", "message", "title"} <= set(schema["required"])


def test_citation_cff_is_valid():
    cff = _yaml(ROOT / "CITATION.cff")
    assert cff["cff-version"] == "1.2.0"
    errors = cff_errors(cff)
    assert not errors, "CITATION.cff is not valid CFF 1.2.0:\n" + "\n".join(errors)
    assert cff["repository-code"] == _yaml(ROOT / "_config.yml")["repository"]["url"]


@pytest.mark.parametrize("broken", [
    {"title": None},  # a required key missing
    {"version": None, "license": "MIT-ish"},  # not an SPDX identifier
    {"authors": [{"nickname": "flatbias"}]},  # a person or entity the schema does not know
    {"preferred-citation": {"type": "book", "title": "x"}},  # a reference without authors
])
def test_the_cff_validator_rejects_broken_files(broken):
    cff = _yaml(ROOT / "CITATION.cff")
    for key, value in broken.items():
        if value is None:
            cff.pop(key)
        else:
            cff[key] = value
    assert cff_errors(cff)


def test_licenses_agree():
    cff = _yaml(ROOT / "CITATION.cff")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == cff["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "Attribution 4.0 International" in (ROOT / "LICENSE-CONTENT").read_text()
    assert cff["preferred-citation"]["license"] == "CC-BY-4.0"


def test_licenses_md_names_every_top_level_folder():
    """Licenses are stated per folder: a new top-level folder must say which license it is under."""
    import subprocess

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    folders = {f.split("/")[0] for f in tracked if "/" in f} | {"docs"}
    text = (ROOT / "LICENSES.md").read_text(encoding="utf-8")
    missing = sorted(d for d in folders if f"`{d}/" not in text)
    assert not missing, f"LICENSES.md does not say which license covers {missing}"


def test_one_version_everywhere():
    """pyproject.toml == CITATION.cff == CHANGELOG.md's newest release == the version the book shows."""
    version = pyproject_version()
    cff = _yaml(ROOT / "CITATION.cff")
    config = _yaml(ROOT / "_config.yml")
    shown = {
        "CITATION.cff version": cff["version"],
        "CITATION.cff preferred-citation version": cff["preferred-citation"]["version"],
        "CHANGELOG.md newest release": changelog_newest_release(),
        "_config.yml parse.myst_substitutions.version": config["parse"]["myst_substitutions"]["version"],
    }
    wrong = {k: v for k, v in shown.items() if str(v) != version}
    assert not wrong, f"pyproject.toml says {version}, but {wrong}"
    footer = config["html"]["extra_footer"]
    assert f"Book version {version}." in footer, f"the page footer must say 'Book version {version}.'"


def test_the_intro_page_shows_the_version():
    head = (ROOT / "book" / "intro.md").read_text(encoding="utf-8").splitlines()[:6]
    assert any("Book version {{ version }}" in line for line in head), \
        "book/intro.md must show 'Book version {{ version }}' near its top"
    assert "substitution" in _yaml(ROOT / "_config.yml")["parse"]["myst_enable_extensions"]


def test_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    unreleased = text.index("## [Unreleased]")
    assert unreleased < RELEASED.search(text).start(), "the Unreleased section comes first"
    assert "### Verdicts changed" in text[unreleased:RELEASED.search(text).start()]
    versions = [tuple(map(int, v.split("."))) for v, _ in RELEASED.findall(text)]
    dates = [d for _, d in RELEASED.findall(text)]
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions), "newest first"
    assert dates == sorted(dates, reverse=True)
    for v, _ in RELEASED.findall(text):
        assert f"[{v}]: https://github.com/flatbias/flatbias-book/" in text, f"no link for [{v}]"


def test_readme_says_how_to_release():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Releasing" in readme
    section = readme.split("## Releasing", 1)[1].split("\n## ", 1)[0]
    for word in ("pyproject.toml", "CITATION.cff", "CHANGELOG.md", "_config.yml", "git tag", "git push"):
        assert word in section, f"README's Releasing section does not mention {word}"


def _claims_validator():
    jsonschema = pytest.importorskip("jsonschema")
    import json

    schema = json.loads(CLAIMS_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_claims_json_validates_against_its_schema():
    import json

    from flatbias.sphinxext import claims_json

    data = json.loads(json.dumps(claims_json(ROOT), default=str))  # what write_claims_json writes
    errors = sorted({f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                     for e in _claims_validator().iter_errors(data)})
    assert not errors, f"claims.json does not match book/claims.schema.json ({len(errors)} errors):\n" + \
        "\n".join(errors[:20])
    assert data["version"] == pyproject_version()
    ids = [c["id"] for ch in data["chapters"] for c in ch["protocol"]["claims"]]
    assert len(ids) == len(set(ids)), "claim ids must be unique across the book"
    for ch in data["chapters"]:
        for c in ch["protocol"]["claims"]:
            assert c["id"] == f"{ch['chapter'][:2]}.{c['key']}"


def test_the_claims_schema_rejects_what_it_should():
    good = {"version": "0.1.0", "rule": "r", "statuses": ["reproduced"], "chapters": [{
        "chapter": "13_sam_stability", "record": "results/chapters/13_sam_stability.json", "provenance": None,
        "stale": [], "paper_scale": {"scale": "full", "headline": "reproduced", "statuses": {"fig1c": "reproduced"},
                                     "checks": {"c": {"value": 1.0, "passed": True}}},
        "protocol": {"chapter": "13_sam_stability", "settings": {}, "checks": [], "changes": [], "claims": [
            {"id": "13.fig1c", "key": "fig1c", "statement": "s", "kind": "paper", "extra": 1}]}}]}
    validator = _claims_validator()
    assert not list(validator.iter_errors(good))
    claim = good["chapters"][0]["protocol"]["claims"][0]
    for key, bad in [("id", "fig1c"), ("kind", "mine"), ("id", None), ("statement", None)]:
        saved = dict(claim)
        if bad is None:
            claim.pop(key)
        else:
            claim[key] = bad
        assert list(validator.iter_errors(good)), f"accepted a claim with {key}={bad!r}"
        claim.clear()
        claim.update(saved)
    for key in ("version", "rule", "statuses", "chapters"):
        assert list(validator.iter_errors({k: v for k, v in good.items() if k != key})), f"accepted no {key}"
