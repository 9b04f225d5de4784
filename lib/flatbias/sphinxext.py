"""Sphinx extension of the book: the claims scoreboard, ``claims.json``, the ``result-records`` table,
and de-duplicated page scripts.

The ``claims-scoreboard`` directive (a summary per part of the book and kind of claim, then one row per
claim of every chapter in two tables, paper and reading claims, then ours; from the chapters' PROTOCOL
cells and committed paper-scale records, statuses derived by :mod:`flatbias.claims`; each row anchored as
``claim-NN-key``, the tables filterable offline) and the ``status-rule`` directive (the rule itself) are
used on the intro page. At the end of an HTML build
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
    commit = commit[:8] + (records.DIRTY if records.is_dirty(commit) else "")
    date = str(prov.get("date_utc", ""))[:16].replace("T", " ")
    name = path.relative_to(root / "results") if path.is_relative_to(root / "results") else path.relative_to(root)
    return (str(name), str(rec.get("scale")), hw_text, date, commit, "" if wall is None else f"{wall:.0f} s")


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


#: the book's parts: chapter numbers (inclusive) -> the part's name on the scoreboard
PARTS = (("Paper 1", 1, 9), ("Paper 2", 10, 17), ("Beyond the papers (our extensions)", 18, 99))
#: colours of the summary bars, one per status
COLOURS = {claims.REPRODUCED: "#2e7d32", claims.UNDER_OUR_READING: "#81c784", claims.PARTLY: "#f9a825",
           claims.PARTLY_UNDER_OUR_READING: "#ffe082", claims.NOT_REPRODUCED: "#c62828",
           claims.NOT_REPRODUCED_UNDER_OUR_READING: "#ef9a9a", claims.HOLDS: "#1565c0",
           claims.HOLDS_IN_PART: "#90caf9", claims.DOES_NOT_HOLD: "#ad1457", claims.INCONCLUSIVE: "#78909c",
           claims.NOT_TESTABLE: "#bdbdbd", claims.NOT_YET_RUN: "#eeeeee"}
KIND_NAMES = {"paper": "the papers' statements", "reading": "our readings of them", "ours": "our hypotheses"}

FILTER = """\
<div class="claims-filter"><label>Filter the claims (id, status, words):
<input type="search" id="claims-filter-input" placeholder="e.g. 13. or inconclusive or SAM" size="32"></label></div>
<script>
(function () {
  var box = document.getElementById("claims-filter-input");
  if (!box) { return; }
  box.addEventListener("input", function () {
    var q = box.value.toLowerCase();
    document.querySelectorAll(".claims-scoreboard table tbody tr").forEach(function (row) {
      row.style.display = row.textContent.toLowerCase().indexOf(q) < 0 ? "none" : "";
    });
  });
})();
</script>"""


def part_of(protocol: claims.Protocol) -> str:
    """The part of the book a chapter belongs to (:data:`PARTS`), from its number."""
    num = int(protocol.number) if protocol.number.isdigit() else 0
    return next((name for name, lo, hi in PARTS if lo <= num <= hi), "other")


def _escape(text: str) -> str:
    import html

    return html.escape(str(text), quote=True)


def _bar(counts: dict[str, int]) -> str:
    """A small HTML bar: one segment per status, its width the status's share, its title the count."""
    total = sum(counts.values()) or 1
    segs = "".join(
        f'<span title="{n} {_escape(st)}" style="display:inline-block;height:0.9em;width:{100 * n / total:.1f}%;'
        f'background:{COLOURS[st]}"></span>' for st, n in counts.items() if n)
    return (f'<span style="display:inline-block;width:12em;border:1px solid #999;vertical-align:middle;'
            f'line-height:0">{segs}</span>')


def _summary(rows: list[dict]) -> str:
    """Per part of the book and per kind of claim: counts of each status, with a bar (a raw HTML block)."""
    lines = ['<div class="claims-summary">']
    for name, _, _ in PARTS:
        for kind in claims.KINDS:
            mine = [r for r in rows if r["part"] == name and r["kind"] == kind]
            if not mine:
                continue
            counts = {st: sum(r["status"] == st for r in mine) for st in claims.STATUSES}
            text = " · ".join(f"{n} {claims.MARKS[st]} {st}" for st, n in counts.items() if n)
            lines.append(f"<div><b>{_escape(name)}</b>, {_escape(KIND_NAMES[kind])} ({len(mine)}): "
                         f"{_bar(counts)} {_escape(text)}</div>")
    lines.append("</div>")
    return "\n".join(lines)


def claim_rows(root: Path) -> list[dict]:
    """One dict per claim of every chapter: id, kind, part, status and the cells of its scoreboard row."""
    rows = []
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
            cid = protocol.claim_id(cl.key)
            number = ev.key_number(cl.key) if cl.testable else cl.why
            said = _cell(cl.statement)
            if cl.quote:
                said += f" — “{_cell(cl.quote)}” ({_cell(cl.locator)})"
            if cl.ours_part:
                said += f" Ours: {_cell(cl.ours_part)}."
            anchor = claims.anchor(cid)
            rows.append({
                "id": cid, "kind": cl.kind, "part": part_of(protocol), "status": status,
                "failed_validity": ev.failed_validity(cl.key),
                "markdown": f'| <a id="{anchor}" href="#{anchor}">{cid}</a> {claims.MARKS[status]} {status} '
                            f"| {said} ({_cell(cl.source)}) | {_cell(number)} | ch. {link}, {scale} | {live} |"})
    return rows


_HEAD = ["| claim · status | statement (source) | key number (criterion) | rests on | this build |",
         "|---|---|---|---|---|"]


def scoreboard_markdown(root: Path) -> str:
    """The scoreboard as MyST: a summary per part of the book and kind of claim (counts and bars), a filter
    box, then table 1 (paper and reading claims) and table 2 (ours). Each row starts with the claim's id
    ("NN.key"), an anchor ``claim-NN-key`` to link to; an inconclusive row names its failed validity
    conditions."""
    rows = claim_rows(root)
    theirs = [r["markdown"] for r in rows if r["kind"] != "ours"]
    ours = [r["markdown"] for r in rows if r["kind"] == "ours"]
    out = [_summary(rows), "", FILTER, "",
           "**Table 1. The papers' claims and our readings of them.**", "", *_HEAD,
           *(theirs or ["| — | none yet | | | |"]), "",
           "**Table 2. What we tested beyond the papers' statements** (hypotheses, inferences and extensions of "
           "ours: they hold, do not hold, or are inconclusive; they are never \"not reproduced\").", "", *_HEAD,
           *(ours or ["| — | none yet | | | |"])]
    return "\n".join(out)


def book_version(root: Path) -> str:
    """``[project].version`` of ``pyproject.toml`` at the repository root (the book's version)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: read the one line
        tomllib = None
    for folder in (Path(root), *Path(root).resolve().parents):
        path = folder / "pyproject.toml"
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if tomllib is not None:
                return str(tomllib.loads(text)["project"]["version"])
            found = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
            if found:
                return found.group(1)
            raise ValueError(f"{path}: no [project] version")
    raise FileNotFoundError(f"no pyproject.toml at or above {root}")


def claims_json(root: Path) -> dict:
    """Every chapter's protocol (each claim with its id and kind), paper-scale record provenance, checks and
    derived statuses, with the book's version, the rule, the statuses and their marks."""
    out = {"version": book_version(root), "rule": claims.RULE, "statuses": list(claims.STATUSES),
           "marks": dict(claims.MARKS), "kinds": list(claims.KINDS), "chapters": []}
    for nb, protocol in chapter_record.chapters(root):
        paper = chapter_record.load(protocol, root)
        out["chapters"].append({
            "chapter": protocol.chapter, "record": str(paper.path.relative_to(root)),
            "provenance": None if paper.record is None else paper.record["provenance"],
            "stale": paper.stale, "protocol": protocol.as_dict(ids=True),
            "legacy_claims": protocol.legacy_claims(),
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
