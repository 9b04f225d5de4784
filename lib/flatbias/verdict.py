"""A chapter's verdict: its paper-scale statuses and its smoke re-check, printed and glued.

The status words come from :mod:`flatbias.claims` (the one rule), never from the chapter. A chapter
ends with::

    print(verdict.report(paper, smoke))        # in a `# NBVAL_CHECK_OUTPUT` cell
    verdict.glue_verdict(paper, smoke)         # glues "verdict" and "live" for the book's pages

``paper`` is the chapter's :class:`~flatbias.chapter_record.PaperScale` (the committed record) and
``smoke`` the :class:`~flatbias.claims.Evaluation` of this build's own run. The report names each claim's
kind (once declared in the second version's form), its validity conditions, and for an inconclusive claim
the conditions that failed.
"""

from __future__ import annotations

from .chapter_record import PaperScale
from .claims import MARKS, NOT_YET_RUN, Evaluation


class PlainText(str):
    """A string whose text/plain display has no quotes (myst-nb pastes text/plain verbatim)."""

    def __repr__(self) -> str:
        return str(self)


def live_mark(paper: PaperScale, smoke: Evaluation) -> PlainText:
    """What this build re-checked at smoke scale: its guards, and whether its statuses agree."""
    guards = [c for c in smoke.protocol.checks if c.role == "guard"]
    ok = sum(bool(smoke.passed(c.key)) for c in guards)
    text = f"{ok}/{len(guards)} guards pass"
    if paper.record is None:
        return PlainText(text)
    ours, theirs = smoke.statuses(), paper.evaluation.statuses()
    differ = [k for k in ours if ours[k] != theirs[k]]
    return PlainText(text + ("; smoke statuses agree" if not differ
                             else f"; smoke status differs for {', '.join(differ)}"))


def report(paper: PaperScale, smoke: Evaluation | None = None) -> PlainText:
    """Plain text for the verdict cell: provenance, paper-scale checks and statuses, smoke statuses."""
    lines = [paper.provenance()]
    ev = paper.evaluation
    if paper.record is not None:
        lines += ["", "paper scale:", ev.report()]
    if smoke is not None:
        lines += ["", f"this build ({smoke.scale} scale; values in the cell above):",
                  smoke.report(("primary", "secondary", "guard"), values=False)]
    return PlainText("\n".join(lines))


def verdict_line(paper: PaperScale) -> PlainText:
    """The line the claims table shows: paper-scale headline and key numbers, or 'not yet run'."""
    if paper.record is None:
        return PlainText(f"{MARKS[NOT_YET_RUN]} {NOT_YET_RUN} at paper scale")
    ev = paper.evaluation
    stale = " (record STALE)" if paper.stale else ""
    return PlainText(f"{MARKS[ev.headline()]} {ev.verdict_text()} [paper scale{stale}]")


def glue_verdict(paper: PaperScale, smoke: Evaluation | None = None) -> PlainText:
    """Glue ``verdict`` (paper scale), ``status`` and ``live`` (this build's smoke re-check)."""
    from myst_nb import glue

    line = verdict_line(paper)
    glue("verdict", line, display=False)
    glue("status", PlainText(paper.evaluation.headline()), display=False)
    if smoke is not None:
        glue("live", live_mark(paper, smoke), display=False)
    return line
