"""Sphinx extension of the book: the claims scoreboard, ``claims.json``, the ``result-records`` table,
and de-duplicated page scripts.

The ``claims-scoreboard`` directive (one row per claim of every chapter, from the chapters' PROTOCOL
cells and committed paper-scale records, statuses derived by :mod:`flatbias.claims`) and the
``status-rule`` directive (the rule itself) are used on the intro page. At the end of an HTML build
``claims.json`` (every claim and check with its numbers) is written next to the pages.

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

from . import chapter_record, claims, records

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


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _chapter_link(nb: Path, label_exists: bool) -> str:
    num = nb.stem[:2]
    if label_exists:
        return f"{{ref}}`{num} <verdict-{num}>`"
    return f"{{doc}}`{num} <../notebooks/{nb.stem}>`"


def scoreboard_markdown(root: Path) -> str:
    """The scoreboard as a MyST table: one row per claim (paper-scale status, key number, scale)."""
    rows = ["| status | claim (source) | key number (criterion) | rests on | this build |",
            "|---|---|---|---|---|"]
    for nb, protocol in chapter_record.chapters(root):
        paper = chapter_record.load(protocol, root)
        ev = paper.evaluation
        if paper.record is None:
            scale = "not yet run at paper scale"
        else:
            date = str(paper.record["provenance"]["date_utc"])[:10]
            scale = f"paper scale, {date}" + (", **record stale**" if paper.stale else "")
        has_label = f"(verdict-{nb.stem[:2]})=" in nb.read_text(encoding="utf-8")
        link = _chapter_link(nb, has_label)
        live = f"{{glue:text}}`../notebooks/{nb.name}::live:s`"
        for cl in protocol.claims:
            status = ev.status(cl.key)
            number = ev.key_number(cl.key) if cl.testable else _cell(cl.why)
            rows.append(f"| {claims.MARKS[status]} {status} | {_cell(cl.statement)} ({_cell(cl.source)}) "
                        f"| {_cell(number)} | ch. {link}, {scale} | {live} |")
    return "\n".join(rows)


def claims_json(root: Path) -> dict:
    """Every chapter's protocol, paper-scale record provenance, checks and derived statuses."""
    out = {"rule": claims.RULE, "statuses": list(claims.STATUSES), "chapters": []}
    for nb, protocol in chapter_record.chapters(root):
        paper = chapter_record.load(protocol, root)
        out["chapters"].append({
            "chapter": protocol.chapter, "record": str(paper.path.relative_to(root)),
            "provenance": None if paper.record is None else paper.record["provenance"],
            "stale": paper.stale, "protocol": protocol.as_dict(),
            "paper_scale": paper.evaluation.to_json()})
    return out


class _MystDirective(Directive):
    has_content = False

    def markdown(self, root: Path) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self):
        from docutils.statemachine import StringList

        env = self.state.document.settings.env
        root = Path(env.srcdir)
        for nb, _ in chapter_record.chapters(root):
            env.note_dependency(str(nb))
            env.note_dependency(str(chapter_record.record_path(nb.stem, root)))
        container = nodes.container(classes=[self.name])
        self.state.nested_parse(StringList(self.markdown(root).splitlines()), self.content_offset, container)
        return [container]


class ClaimsScoreboard(_MystDirective):
    def markdown(self, root: Path) -> str:
        return scoreboard_markdown(root)


class StatusRule(_MystDirective):
    def markdown(self, root: Path) -> str:
        return claims.RULE


def write_claims_json(app, exception):
    """Write ``claims.json`` at the root of the HTML output (the intro page links to it)."""
    if exception is not None or app.builder.format != "html":
        return
    import json

    data = claims_json(Path(app.srcdir))
    records.atomic_write_text(Path(app.outdir) / "claims.json", json.dumps(data, indent=1, default=str) + "\n")


def setup(app):
    app.add_directive("claims-scoreboard", ClaimsScoreboard)
    app.add_directive("status-rule", StatusRule)
    app.connect("build-finished", write_claims_json)
    app.add_directive("result-records", ResultRecords)
    app.connect("env-updated", dedupe_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
