"""The workflows publish what the tests checked (issue 22), as far as that can be tested offline.

* ci.yml has a ``deploy`` job that runs only on a push to main, only after the CPU job (tests, stored-output
  build, browser test) passed, with ``pages: write`` and ``id-token: write`` on that job alone, and that uploads
  with ``actions/upload-pages-artifact`` and deploys with ``actions/deploy-pages``.
* Dry run of the build it would upload: the folder the deploy job uploads is the folder the CPU job keeps,
  which is the folder ``make book-stored`` writes and ``make test-site`` reads (parsed from the Makefile).
* gpu-book.yml no longer deploys: it runs ``make records`` and opens a pull request with the changed
  ``results/``. (actionlint itself runs in tests/test_repo.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    if True in data:  # YAML 1.1 reads the key `on` as True
        data["on"] = data.pop(True)
    return data


def _uses(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).split("@")[0] == action]


def _make_variables() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Z_]+)\s*\??:?=\s*(.*)$", text, re.M)}


def book_stored_html() -> str:
    """The html folder ``make book-stored`` builds: its ``--path-output`` plus Jupyter Book's ``_build/html``."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^book-stored:.*?\n((?:\t.*\n)+)", text, re.M)
    assert recipe, "the Makefile has no book-stored target"
    out = re.search(r"jupyter-book build .*--path-output (\S+)", recipe.group(1))
    assert out, "make book-stored does not pass --path-output to jupyter-book build"
    return f"{out.group(1)}/_build/html"


def test_book_stored_is_what_test_site_reads():
    assert _make_variables()["SITE"] == book_stored_html() == "_build/stored/_build/html"


def test_ci_deploys_the_stored_build_from_main_after_the_tests():
    ci = _workflow("ci.yml")
    assert ci["on"]["push"]["branches"] == ["main"]
    assert ci.get("permissions") == {"contents": "read"}, "pages/id-token rights belong to the deploy job only"
    jobs = ci["jobs"]
    assert "deploy" in jobs, "ci.yml has no deploy job"
    deploy, cpu = jobs["deploy"], jobs["cpu"]
    assert deploy.get("needs") in ("cpu", ["cpu"]), "deploy must wait for the CPU job (tests + build + browser test)"
    assert "github.event_name == 'push'" in deploy["if"] and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"].get("pages") == "write" and deploy["permissions"].get("id-token") == "write"
    assert deploy["environment"]["name"] == "github-pages"
    for name, job in jobs.items():
        if name != "deploy":
            assert "pages" not in job.get("permissions", {}), f"job {name} must not hold pages rights"
    assert len(_uses(deploy, "actions/upload-pages-artifact")) == 1
    assert len(_uses(deploy, "actions/deploy-pages")) == 1
    assert any("bash .ci/run" in str(s.get("run", "")) for s in cpu["steps"]), "the CPU job must run .ci/run"


def test_the_deploy_job_uploads_what_make_book_stored_builds():
    """Dry run: the pages artifact is the site the CPU job built with `make book-stored` and browser-tested."""
    jobs = _workflow("ci.yml")["jobs"]
    site = book_stored_html()
    kept = [s for s in _uses(jobs["cpu"], "actions/upload-artifact") if s["with"]["path"] == site]
    assert len(kept) == 1, f"the CPU job must keep {site} as an artifact"
    name = kept[0]["with"]["name"]
    fetched = _uses(jobs["deploy"], "actions/download-artifact")
    assert [(s["with"]["name"], s["with"]["path"]) for s in fetched] == [(name, site)]
    assert _uses(jobs["deploy"], "actions/upload-pages-artifact")[0]["with"]["path"] == site
    run = (ROOT / ".ci" / "run").read_text()
    assert run.index("make book-stored") < run.index("make test-site"), ".ci/run builds, then browser-tests"


def test_ci_keeps_the_screenshots():
    cpu = _workflow("ci.yml")["jobs"]["cpu"]
    paths = [s["with"]["path"] for s in _uses(cpu, "actions/upload-artifact")]
    assert "_build/screenshots" in paths
    assert '"_build" / "screenshots"' in (ROOT / "tests" / "test_site.py").read_text()


@pytest.mark.parametrize("name", ["gpu-book.yml"])
def test_the_gpu_workflow_does_not_deploy(name):
    text = (WORKFLOWS / name).read_text()
    gpu = _workflow(name)
    steps = [s for job in gpu["jobs"].values() for s in job.get("steps", [])]
    used = {str(s.get("uses", "")).split("@")[0] for s in steps}
    assert not used & {"actions/deploy-pages", "actions/upload-pages-artifact"}, f"{name} deploys"
    rights = [gpu.get("permissions", {})] + [j.get("permissions", {}) for j in gpu["jobs"].values()]
    assert not any("pages" in r or "id-token" in r for r in rights), f"{name} asks for Pages rights"
    assert "github-pages" not in text
    assert any("make records" in str(s.get("run", "")) for s in steps), f"{name} must refresh the records"
    prs = [s for s in steps if str(s.get("uses", "")).split("@")[0] == "peter-evans/create-pull-request"]
    assert len(prs) == 1 and re.fullmatch(r"v\d+", prs[0]["uses"].split("@")[1]), "a PR action pinned to a major"
    assert prs[0]["with"]["add-paths"].startswith("results/")
