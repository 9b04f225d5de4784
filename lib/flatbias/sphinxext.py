"""Sphinx extension of the book: the ``result-records`` directive, and de-duplicated page scripts.

The ``result-records`` directive lists the committed result records.

Usage in a MyST page::

    ```{result-records} results
    ```

It renders one table row per JSON record under the folder (relative to the book root): name, scale,
hardware, date, commit and wall time, so a reader sees where every full-scale number came from.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

from . import records

COLUMNS = ("record (results/)", "scale", "hardware", "date (UTC)", "commit", "wall time")


def _row(path: Path, root: Path) -> tuple[str, ...]:
    try:
        rec = records.read_record(path)
    except (ValueError, OSError) as exc:
        return (str(path.relative_to(root)), "unreadable", str(exc), "", "", "")
    prov = rec["provenance"]
    hw = prov.get("hardware", {})
    cpu = re.sub(r"\(R\)|\(TM\)|CPU|Processor|@.*", "", str(hw.get("cpu", "?"))).split()
    hw_text = hw.get("gpu") or f"{' '.join(cpu)}, {hw.get('torch_threads', '?')} thr."
    wall = prov.get("wall_time_s")
    commit = str(prov.get("commit", ""))
    commit = commit[:8] + ("+dirty" if commit.endswith("+dirty") else "")
    date = str(prov.get("date_utc", ""))[:16].replace("T", " ")
    return (str(path.relative_to(root / "results")) if path.is_relative_to(root / "results") else str(path.relative_to(root)),
            str(rec.get("scale")), hw_text, date, commit, "" if wall is None else f"{wall:.0f} s")


class ResultRecords(Directive):
    required_arguments = 1
    has_content = False

    def run(self):
        env = self.state.document.settings.env
        root = Path(env.srcdir)
        folder = root / self.arguments[0]
        paths = records.find_records(folder) if folder.is_dir() else []
        for p in paths:
            env.note_dependency(str(p))
        if not paths:
            para = nodes.paragraph(text=f"No result records are committed under {self.arguments[0]}/ yet.")
            return [para]
        table = nodes.table(classes=["result-records"])
        group = nodes.tgroup(cols=len(COLUMNS))
        table += group
        group.extend(nodes.colspec(colwidth=1) for _ in COLUMNS)
        head, body = nodes.thead(), nodes.tbody()
        group += head
        group += body
        head += self._tr(COLUMNS)
        for p in paths:
            body += self._tr(_row(p, root))
        return [table]

    @staticmethod
    def _tr(cells) -> nodes.row:
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=text)
            row += entry
        return row


def dedupe_scripts(app, env):
    """Avoid inline <script> tags being written twice on every page.

    Sphinx 7.4 re-adds every script of ``app.registry`` in ``prepare_writing`` as ``filename or ''``; an inline
    script (filename ``None``) added after the builder was created is already in the builder's list under
    ``None``, so it is duplicated. For sphinx-thebe's inline config that second ``const THEBE_JS_URL`` is a
    JavaScript error on every page. Keep the builder's copies (in their order); drop the registry's.
    """
    scripts = getattr(app.builder, "_js_files", None)
    if scripts is None:
        return
    present = {(getattr(js, "attributes", {}) or {}).get("body") for js in scripts if not getattr(js, "filename", "x")}
    app.registry.js_files[:] = [(filename, attrs) for filename, attrs in app.registry.js_files
                                if filename or attrs.get("body") not in present]


def setup(app):
    app.add_directive("result-records", ResultRecords)
    app.connect("env-updated", dedupe_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
