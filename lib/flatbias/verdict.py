"""Verdicts: one line per reproduced claim, glued by the chapter and shown in the book's claims table.

A chapter computes its checks, then calls ``glue_verdict("verdict", status, detail)``; ``book/intro.md``
shows it with ``{glue:text}`../notebooks/NN_name.ipynb::verdict```. The text is glued as plain text (no quotes),
so the table shows exactly what the chapter measured in this build.
"""

from __future__ import annotations

STATUSES = ("reproduced", "reproduced with our reconstruction", "partly reproduced", "not reproduced",
            "not yet run")  # the last: the experiment that decides the claim has not been run (e.g. needs a GPU)


class PlainText(str):
    """A string whose text/plain display has no quotes (myst-nb pastes text/plain verbatim)."""

    def __repr__(self) -> str:
        return str(self)


def verdict_text(status: str, detail: str = "") -> PlainText:
    """``"reproduced: max. rel. error 4e-14 over 18 points"``; an unknown status is a clear error."""
    if status not in STATUSES:
        raise ValueError(f"unknown verdict status {status!r}; use one of: {', '.join(STATUSES)}")
    return PlainText(f"{status}: {detail}" if detail else status)


def glue_verdict(key: str, status: str, detail: str = "") -> PlainText:
    """Glue the verdict under ``key`` (not displayed in place) and return its text."""
    from myst_nb import glue

    text = verdict_text(status, detail)
    glue(key, text, display=False)
    return text
