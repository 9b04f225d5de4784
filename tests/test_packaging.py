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
BOOK_ONLY = {("sphinxext", "docutils"), ("sphinxext", "sphinx"), ("sphinxext", "myst_nb"), ("verdict", "myst_nb"),
             ("chapter_record", "nbformat"), ("chapter_record", "nbclient")}


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
