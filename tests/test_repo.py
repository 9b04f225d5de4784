"""Repository invariants: notebook pairs in sync and executed, pins that agree, linted workflows, a sane TOC."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PY = sorted((ROOT / "notebooks").glob("*.py"))


def _code_cells(nb):
    return [c.source.strip() for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_there_are_notebooks():
    assert NOTEBOOK_PY, "no notebooks/*.py found"


@pytest.mark.parametrize("py", NOTEBOOK_PY, ids=lambda p: p.stem)
def test_notebook_pair_in_sync_and_executed(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run `jupytext --sync {py.relative_to(ROOT)}` and execute it"
    src, stored = jupytext.read(py), jupytext.read(ipynb)
    assert _code_cells(src) == _code_cells(stored), (
        f"{py.name} and {ipynb.name} hold different code: run `make notebooks` (sync + re-execute at smoke scale)")
    raw = json.loads(ipynb.read_text())
    unexecuted = [i for i, c in enumerate(raw["cells"])
                  if c["cell_type"] == "code" and "".join(c["source"]).strip() and c.get("execution_count") is None]
    assert not unexecuted, f"{ipynb.name}: code cells {unexecuted} were never executed, so nbval would compare nothing"
    checked = [c for c in raw["cells"] if c["cell_type"] == "code" and "NBVAL_CHECK_OUTPUT" in "".join(c["source"])]
    assert checked, f"{ipynb.name} has no `# NBVAL_CHECK_OUTPUT` cell: mark its verdict cells"
    assert all(c.get("outputs") for c in checked), f"{ipynb.name}: a NBVAL_CHECK_OUTPUT cell has no stored output"
    errors = [o for c in raw["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{ipynb.name} stores an error output"


@pytest.mark.parametrize("py", NOTEBOOK_PY, ids=lambda p: p.stem)
def test_notebook_conventions(py):
    nb = jupytext.read(py)
    code = [c for c in nb.cells if c.cell_type == "code"]
    repo_url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    colab = code[0].source
    assert "google.colab" in colab and repo_url in colab, f"{py.name}: the first code cell must install the package on Colab"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and re.search(r"^scale = None", params[0].source, re.M), \
        f"{py.name}: needs one `parameters` cell with `scale = None`"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "ipynb,py:percent" in nb.metadata["jupytext"]["formats"]


def _toc_files(node):
    for key, value in (node.items() if isinstance(node, dict) else []):
        if key in ("file", "root"):
            yield value
        elif isinstance(value, list):
            for item in value:
                yield from _toc_files(item)


def test_toc_lists_existing_files_and_every_notebook():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = list(_toc_files(toc))
    for f in files:
        stem = ROOT / f
        assert stem.exists() or stem.with_suffix(".md").exists() or stem.with_suffix(".ipynb").exists(), f"_toc.yml: {f} missing"
    listed = {Path(f).stem for f in files if f.startswith("notebooks/")}
    assert {p.stem for p in NOTEBOOK_PY} == listed, "every notebook must be in _toc.yml, and only existing ones"


def _pins_requirements():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return {l.split("==")[0].lower(): l.split("==")[1].strip() for l in lines if "==" in l and not l.startswith("#")}


def test_environment_yml_agrees_with_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = {p.split("==")[0].lower(): p.split("==")[1] for p in pip}
    assert conda_pins == _pins_requirements()


def test_torch_pinned_exactly():
    assert _pins_requirements()["torch"] == "2.13.0", "a looser torch pin pulls gigabytes of CUDA packages"


def test_workflows_pass_actionlint():
    exe = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    assert Path(exe).exists(), "actionlint is missing: pip install -r requirements.txt"
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) >= 2
    run = subprocess.run([exe, *workflows], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_no_data_or_weights_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    bad = [f for f in tracked if re.search(r"\.(pt|pth|ckpt|npy|npz|tar\.gz|jpg|jpeg)$", f)
           or re.search(r"(^|/)(train|test)/[a-z]+/\d+\.(jpg|png)$", f)]
    assert not bad, f"data sets, archives or weights must not be committed: {bad[:5]}"


def test_readme_has_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme


STATUS_WORDS = re.compile(r"\b(reproduced|reproduce|not yet run|not testable)\b", re.I)
TYPED_VERDICT = re.compile(r"\*\*\s*(partly |not )?reproduced\b|\b(is|are|was|were) (partly |not )?reproduced\b"
                           r"|\b(status|verdict)\s*[:=]\s*(partly |not )?reproduced", re.I)


@pytest.mark.parametrize("py", NOTEBOOK_PY, ids=lambda p: p.stem)
def test_no_status_word_is_typed(py):
    """Statuses come from flatbias.claims' rule: no code string and no verdict phrase in prose types one."""
    import ast

    nb = jupytext.read(py)
    for cell in nb.cells:
        if cell.cell_type == "code":
            src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(src)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and STATUS_WORDS.search(node.value):
                    pytest.fail(f"{py.name}: a code cell types a status word: {node.value!r}; derive statuses "
                                "with flatbias.claims and print them with flatbias.verdict")
        elif cell.cell_type == "markdown":
            hit = TYPED_VERDICT.search(cell.source)
            assert not hit, (f"{py.name}: prose types a verdict ({hit.group(0)!r}); glue the derived "
                             "status ({glue:text}`status`) instead")


@pytest.mark.parametrize("py", NOTEBOOK_PY, ids=lambda p: p.stem)
def test_notebook_code_lines_fit_the_page(py):
    nb = jupytext.read(py)
    long = [(i, line) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for line in c.source.splitlines() if len(line.encode()) > 88]
    # counted in UTF-8 bytes: ∇, 𝒯 or ₁ can fall back to a wider font than the code box's, so a line of
    # 88 characters with symbols in it can still scroll; a byte per ASCII character leaves that margin
    assert not long, f"{py.name}: {len(long)} code lines over 88 bytes (the page scrolls), e.g. {long[0]}"


@pytest.mark.parametrize("py", NOTEBOOK_PY, ids=lambda p: p.stem)
def test_notebook_cells_stay_short_and_the_protocol_reads_as_tables(py):
    """A chapter reads like a paper section: no code cell past 20 non-blank lines (longer logic lives in
    flatbias), except the protocol, which is collapsed (hide-input) and renders as tables (ends with PROTOCOL)."""
    nb = jupytext.read(py)
    long = [(i, n) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and "protocol" not in c.metadata.get("tags", [])
            and (n := sum(1 for line in c.source.splitlines() if line.strip())) > 20]
    assert not long, f"{py.name}: code cells over 20 non-blank lines (cell index, lines): {long}"
    protocol = [c for c in nb.cells if c.cell_type == "code" and "protocol" in c.metadata.get("tags", [])]
    if protocol:
        assert "hide-input" in protocol[0].metadata["tags"], f"{py.name}: the protocol cell is not collapsed"
        last = [line for line in protocol[0].source.splitlines() if line.strip()][-1]
        assert last.strip() == "PROTOCOL", f"{py.name}: the protocol cell must end with PROTOCOL (rendered as tables)"
