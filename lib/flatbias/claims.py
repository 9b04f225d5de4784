"""Claims, checks, validity conditions and the one rule that turns measured values into a status.

A chapter declares its :class:`Protocol` before anything runs: the settings and horizons (each
tagged as the paper's or ours), the claims it tests, the criterion of every check and the validity
conditions under which a check is a test of its claim at all. After the run each check and each
validity condition gets a measured value; :func:`claim_status` derives each claim's status from
them. No chapter types a status word: it prints what :meth:`Protocol.evaluate` returns.

Three kinds of claim (:data:`KINDS`):

- ``paper``: the paper's own statement, quoted verbatim (``quote``) with its ``locator`` (section,
  theorem, figure, table, or "rebuttal, para. N");
- ``reading``: our formalization of a paper statement that is vague or whose formula was lost;
  ``ours_part`` says what is ours (a constant, a range, a threshold) and ``source`` names the source;
- ``ours``: a hypothesis, inference or extension of ours. It **holds**, **does not hold** or is
  **inconclusive**; it is never "not reproduced".

Three roles of a check:

- ``primary``: decides whether the claim reproduces (or holds);
- ``secondary``: a further prediction of the claim (a failure makes it "partly reproduced");
- ``guard``: a regression test of the book's own computation (a closed form against autograd, a
  simulator against the exact operator). A failing guard is a bug: :meth:`Evaluation.assert_guards`
  stops the build. A paper claim that does not reproduce never stops the build; it is a finding.

A :class:`Validity` condition (power, reached, regime, positive control) is measured like a check;
if one fails, its claim is **inconclusive**. It must never read the check's own outcome (the code
cannot enforce this; its key must differ from every check key, which it can).

A :class:`Criterion` is tagged ``paper`` only when its number is the paper's; a constant we chose is
``ours``, and a claim whose primary criterion is ours is judged "under our reading".

The old form ``Claim(key, statement, source, reading="paper"|"ours")`` is still accepted (as kind
``paper`` without a quote, or ``reading`` without ``ours_part``); :meth:`Protocol.legacy_claims` lists
such claims, and their declaration (hence the protocol's fingerprint) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

SOURCES = ("paper", "ours")
ROLES = ("primary", "secondary", "guard")
KINDS = ("paper", "reading", "ours")
VALIDITY_KINDS = ("power", "reached", "regime", "positive control")

REPRODUCED = "reproduced"
UNDER_OUR_READING = "reproduced under our reading"
PARTLY = "partly reproduced"
PARTLY_UNDER_OUR_READING = "partly reproduced under our reading"
NOT_REPRODUCED = "not reproduced"
NOT_REPRODUCED_UNDER_OUR_READING = "not reproduced under our reading"
HOLDS = "holds"
HOLDS_IN_PART = "holds in part"
DOES_NOT_HOLD = "does not hold"
INCONCLUSIVE = "inconclusive"
NOT_TESTABLE = "not testable here"
NOT_YET_RUN = "not yet run"
#: the statuses a ``paper`` or ``reading`` claim can have
PAPER_STATUSES = (REPRODUCED, UNDER_OUR_READING, PARTLY, PARTLY_UNDER_OUR_READING, NOT_REPRODUCED,
                  NOT_REPRODUCED_UNDER_OUR_READING, INCONCLUSIVE, NOT_TESTABLE, NOT_YET_RUN)
#: the statuses an ``ours`` claim can have (never "not reproduced")
OURS_STATUSES = (HOLDS, HOLDS_IN_PART, DOES_NOT_HOLD, INCONCLUSIVE, NOT_TESTABLE, NOT_YET_RUN)
STATUSES = PAPER_STATUSES[:-3] + OURS_STATUSES[:3] + (INCONCLUSIVE, NOT_TESTABLE, NOT_YET_RUN)
MARKS = {REPRODUCED: "✓", UNDER_OUR_READING: "(✓)", PARTLY: "◐", PARTLY_UNDER_OUR_READING: "(◐)",
         NOT_REPRODUCED: "✗", NOT_REPRODUCED_UNDER_OUR_READING: "(✗)", HOLDS: "+", HOLDS_IN_PART: "±",
         DOES_NOT_HOLD: "−", INCONCLUSIVE: "?", NOT_TESTABLE: "⊘", NOT_YET_RUN: "…"}
# outcome of the primary and secondary checks -> status, by whether the claim is judged as the paper
# states it ("paper"), under our reading ("reading") or as a hypothesis of ours ("ours")
_OUTCOME = {"paper": {"pass": REPRODUCED, "part": PARTLY, "fail": NOT_REPRODUCED},
            "reading": {"pass": UNDER_OUR_READING, "part": PARTLY_UNDER_OUR_READING,
                        "fail": NOT_REPRODUCED_UNDER_OUR_READING},
            "ours": {"pass": HOLDS, "part": HOLDS_IN_PART, "fail": DOES_NOT_HOLD}}

RULE = """\
Each claim is of one of three kinds, shown apart: **paper** (the paper's own statement, quoted
verbatim with its locator: section, theorem, figure, table, or the rebuttal's paragraph),
**reading** (our formalization of a vague statement or of a lost formula; it says which parts are
ours), and **ours** (a hypothesis, inference or extension of ours). Every check has a criterion
fixed before the run, tagged *paper* only when its number is the paper's. A check may declare
**validity conditions**, also fixed before the run, under which it tests its claim at all:
*power* (enough runs fit the data), *reached* (the slowest run reached the regime the claim is
about), *regime* (the setting lies where the theorem applies), *positive control* (the check passes
on a case built to satisfy the claim). A validity condition never reads the check's own outcome.

1. A claim the book cannot test with what it has (data, hardware, a missing formula) is
   **not testable here**.
2. A claim with a check or validity condition that has no measured value (no paper-scale record
   yet) is **not yet run**.
3. A claim with a failed validity condition is **inconclusive**; the failed conditions are named.
4. Every primary and every secondary check passes: a `paper` claim whose primary criteria are all
   the paper's is **reproduced**; a `reading` claim, or a `paper` claim judged by a constant of ours,
   is **reproduced under our reading**; an `ours` claim **holds**.
5. Every primary check passes but a secondary one fails, or some primary checks pass and others
   fail: **partly reproduced** (under our reading, as in 4); an `ours` claim **holds in part**.
6. Every primary check fails: **not reproduced** (under our reading, as in 4); an `ours` claim
   **does not hold**. An `ours` claim is never "not reproduced": the papers did not state it.

Guards (regression tests of the book's own code) never enter a status: a failing guard stops the
build. A chapter's headline combines the statuses of its `paper` and `reading` claims (of its
`ours` claims where it has no other)."""

_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
_SHOW = {"<=": "≤", "<": "<", ">=": "≥", ">": ">", "==": "=", "in": "in"}


class ProtocolError(ValueError):
    """A protocol, claim or check that is declared wrongly, or measured values that do not match it."""


def _source(value: str, what: str) -> str:
    if value not in SOURCES:
        raise ProtocolError(f"{what}: source must be one of {SOURCES}; got {value!r}")
    return value


@dataclass(frozen=True)
class Setting:
    """One setting or horizon, at each scale, tagged as the paper's or ours."""

    smoke: Any
    full: Any
    source: str
    note: str = ""

    def __post_init__(self):
        _source(self.source, f"setting {self.note or self.full!r}")


def same(value: Any, source: str, note: str = "") -> Setting:
    """A setting with one value at both scales."""
    return Setting(value, value, source, note)


@dataclass(frozen=True)
class Criterion:
    """A pre-registered pass rule ``measured <op> bound`` (``op="in"``: ``bound[0] <= x <= bound[1]``)."""

    op: str
    bound: Any
    source: str
    note: str = ""

    def __post_init__(self):
        if self.op not in _SHOW:
            raise ProtocolError(f"criterion op must be one of {tuple(_SHOW)}; got {self.op!r}")
        if self.op == "in" and not (isinstance(self.bound, (tuple, list)) and len(self.bound) == 2):
            raise ProtocolError(f"criterion 'in' needs bound=(low, high); got {self.bound!r}")
        _source(self.source, f"criterion {self.op} {self.bound!r}")

    def passes(self, value: Any) -> bool:
        if isinstance(value, bool) or isinstance(self.bound, bool):
            if self.op != "==":
                raise ProtocolError(f"a boolean check needs op '=='; got {self.op!r}")
            return bool(value) == bool(self.bound)
        x = float(value)
        if math.isnan(x):
            return False
        if self.op == "in":
            return float(self.bound[0]) <= x <= float(self.bound[1])
        return bool(_OPS[self.op](x, float(self.bound)))

    def text(self, fmt: str = ".3g") -> str:
        if isinstance(self.bound, bool):
            return "true" if self.bound else "false"
        if self.op == "in":
            return f"in [{self.bound[0]:{fmt}}, {self.bound[1]:{fmt}}]"
        return f"{_SHOW[self.op]} {self.bound:{fmt}}"


_LEGACY_FIELDS = ("key", "statement", "source", "reading", "testable", "why")


@dataclass(frozen=True)
class Claim:
    """A statement the chapter tests, of one :data:`KINDS` (``kind``):

    - ``Claim(key, statement, source, kind="paper", quote="…", locator="Theorem 3.5")``: ``quote`` is
      verbatim text of the source, ``locator`` where it stands;
    - ``Claim(key, statement, source, kind="reading", ours_part="the constant 10")``: ``source`` names
      what it reads (e.g. "Paper 2, Theorem 3.3 as reconstructed in SPEC.md §B.6");
    - ``Claim(key, statement, source, kind="ours")``: a hypothesis of ours (``quote``/``locator`` may
      cite a reviewer's or the rebuttal's sentence, quoted as such).

    The old form (no ``kind``; ``reading="paper"`` or ``"ours"``) is read as kind ``paper`` without a
    quote or ``reading`` without ``ours_part``; :meth:`legacy` is then true. ``testable=False`` needs
    ``why``."""

    key: str
    statement: str
    source: str
    reading: str = "paper"
    testable: bool = True
    why: str = ""
    kind: str | None = None
    quote: str | None = None
    locator: str | None = None
    ours_part: str | None = None

    def __post_init__(self):
        _source(self.reading, f"claim {self.key!r} reading")
        if not self.testable and not self.why:
            raise ProtocolError(f"claim {self.key!r} is not testable: say why")
        if not str(self.source).strip():
            raise ProtocolError(f"claim {self.key!r}: name its source")
        if self.kind is None:  # the old form
            if self.quote is not None or self.locator is not None or self.ours_part is not None:
                raise ProtocolError(f"claim {self.key!r}: quote, locator and ours_part need kind= "
                                    f"(one of {KINDS})")
            object.__setattr__(self, "_legacy", True)
            object.__setattr__(self, "kind", "paper" if self.reading == "paper" else "reading")
            return
        object.__setattr__(self, "_legacy", False)
        if self.kind not in KINDS:
            raise ProtocolError(f"claim {self.key!r}: kind must be one of {KINDS}; got {self.kind!r}")
        if self.reading != "paper":
            raise ProtocolError(f"claim {self.key!r}: give kind= only (reading= is the old form)")
        if self.kind == "paper" and not (_text(self.quote) and _text(self.locator)):
            raise ProtocolError(f"paper claim {self.key!r} needs quote= (the paper's verbatim text) and "
                                "locator= (section, theorem, figure, table or 'rebuttal, para. N')")
        if self.quote is not None and not _text(self.locator):
            raise ProtocolError(f"claim {self.key!r}: a quote needs its locator=")
        if self.kind == "reading" and not _text(self.ours_part):
            raise ProtocolError(f"reading claim {self.key!r} needs ours_part= (what is ours: a constant, "
                                "a range, a threshold)")
        if self.kind != "reading" and self.ours_part is not None:
            raise ProtocolError(f"claim {self.key!r}: ours_part= belongs to kind 'reading', not {self.kind!r}")

    @property
    def legacy(self) -> bool:
        """Declared in the old form (``reading=``, no quote or ``ours_part``)."""
        return self._legacy

    def as_dict(self) -> dict:
        """The declaration: the old form's six fields exactly as before, else every field but ``reading``."""
        d = asdict(self)
        if self.legacy:
            return {k: d[k] for k in _LEGACY_FIELDS}
        return {k: v for k, v in d.items() if k != "reading"}


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


TOLERANCES = ("exact", "round-off", "error")


def _tolerance(value: Any, what: str) -> Any:
    """A check's reproducibility between two runs on different CPUs: 'exact' (the same value: counts, booleans,
    closed forms), 'round-off' (relative 1e-9: deterministic floating point whose order of operations may differ),
    'error' (the value is itself an error: a residual, a difference between two computations of one quantity, a
    finite-difference or truncation error; its leading digit is all two CPUs share, so they agree within a factor
    of 10) or a positive number, a relative tolerance stated for chaotic runs (long simulations, where round-off
    grows)."""
    ok = value in TOLERANCES if isinstance(value, str) else (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0)
    if not ok:
        raise ProtocolError(f"{what}: tolerance must be one of {TOLERANCES} or a positive relative tolerance; "
                            f"got {value!r}")
    return value


def _declared(item: Any) -> dict:
    """A check's or validity condition's fields; ``tolerance`` only when it is not the default 'round-off'."""
    d = asdict(item)
    if d.get("tolerance") == "round-off":
        del d["tolerance"]
    return d


def _tolerance_text(value: Any) -> str:
    if value == "error":
        return "error: within a factor of 10"
    return value if isinstance(value, str) else f"±{value:g} (relative)"


@dataclass(frozen=True)
class Check:
    """A named check: what is measured, its criterion, its role, and the claim it belongs to."""

    key: str
    what: str
    criterion: Criterion
    role: str = "primary"
    claim: str | None = None
    fmt: str = ".3g"
    tolerance: Any = "round-off"  # how far two runs on different CPUs may differ: see TOLERANCES

    def __post_init__(self):
        _tolerance(self.tolerance, f"check {self.key!r}")
        if self.role not in ROLES:
            raise ProtocolError(f"check {self.key!r}: role must be one of {ROLES}; got {self.role!r}")
        if (self.role == "guard") != (self.claim is None):
            raise ProtocolError(f"check {self.key!r}: a guard has no claim, every other check has one")

    def show(self, value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, bool):
            return "true" if value else "false"
        return f"{float(value):{self.fmt}}"


@dataclass(frozen=True)
class Validity:
    """A condition, fixed before the run, under which the checks of ``claim`` test it at all.

    ``kind``: ``power`` (at least k runs fit the data), ``reached`` (the slowest run, by a declared
    rule, reached the regime the claim is about), ``regime`` (the setting lies where the theorem
    applies) or ``positive control`` (the check passes on a case built to satisfy the claim). It is
    measured like a check (a value under ``key`` in ``measured``) and judged by its ``criterion``; if
    it fails, the claim is **inconclusive**. It must never read the outcome of the claim's own checks."""

    key: str
    what: str
    criterion: Criterion
    kind: str
    claim: str
    fmt: str = ".3g"
    tolerance: Any = "round-off"  # as Check.tolerance

    def __post_init__(self):
        _tolerance(self.tolerance, f"validity {self.key!r}")
        if self.kind not in VALIDITY_KINDS:
            raise ProtocolError(f"validity {self.key!r}: kind must be one of {VALIDITY_KINDS}; got {self.kind!r}")
        if not isinstance(self.criterion, Criterion):
            raise ProtocolError(f"validity {self.key!r}: criterion must be a Criterion(...)")

    def show(self, value: Any) -> str:
        return Check.show(self, value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Change:
    """A change to the protocol after data were seen: what changed, from what, to what, and why."""

    what: str
    before: str
    after: str
    why: str


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=repr, separators=(",", ":"))


def anchor(claim_id: str) -> str:
    """The HTML anchor of a claim id: ``"13.fig1c"`` -> ``"claim-13-fig1c"``."""
    return "claim-" + re.sub(r"[^A-Za-z0-9]+", "-", claim_id).strip("-").lower()


class Protocol:
    """The chapter's pre-registered protocol: settings, claims, checks (with criteria), validity
    conditions and changes. ``validity`` is optional (a protocol without it declares what it always did)."""

    def __init__(self, chapter: str, settings: Mapping[str, Setting], claims: Iterable[Claim],
                 checks: Iterable[Check], changes: Iterable[Change] = (), validity: Iterable[Validity] = ()):
        self.chapter = chapter
        self.settings = MappingProxyType(dict(settings))
        self.claims = tuple(claims)
        self.checks = tuple(checks)
        self.changes = tuple(changes)
        self.validity = tuple(validity)
        bad = [k for k, s in self.settings.items() if not isinstance(s, Setting)]
        if bad:
            raise ProtocolError(f"settings {bad} must be Setting(...) values (smoke, full, source)")
        for what, items, cls in (("claims", self.claims, Claim), ("checks", self.checks, Check),
                                 ("validity", self.validity, Validity), ("changes", self.changes, Change)):
            wrong = [x for x in items if not isinstance(x, cls)]
            if wrong:
                raise ProtocolError(f"{chapter}: {what} must be {cls.__name__}(...) values; got {wrong[0]!r}")
        keys = [c.key for c in self.claims]
        check_keys = [c.key for c in self.checks]
        for what, ks in (("claim", keys), ("check", check_keys), ("validity", [v.key for v in self.validity])):
            dup = sorted({k for k in ks if ks.count(k) > 1})
            if dup:
                raise ProtocolError(f"{chapter}: duplicate {what} keys {dup}")
        for chk in self.checks:
            if chk.claim is not None and chk.claim not in keys:
                raise ProtocolError(f"check {chk.key!r} names claim {chk.claim!r}, which is not declared")
        for v in self.validity:
            if v.key in check_keys:
                raise ProtocolError(f"validity {v.key!r} has the key of a check: a validity condition is measured "
                                    "apart from the checks and never reads their outcome")
            if v.claim not in keys:
                raise ProtocolError(f"validity {v.key!r} names claim {v.claim!r}, which is not declared")
        for cl in self.claims:
            mine = [c for c in self.checks if c.claim == cl.key and c.role == "primary"]
            if cl.testable and not mine:
                raise ProtocolError(f"claim {cl.key!r} has no primary check")

    @property
    def number(self) -> str:
        """The chapter's number (``"05_convergence_rate"`` -> ``"05"``), or its name if it has none."""
        m = re.match(r"(\d+)_", self.chapter)
        return m.group(1) if m else self.chapter

    def claim_id(self, key: str) -> str:
        """The claim's stable id across the book, ``"NN.key"`` (e.g. ``"13.fig1c"``)."""
        if key not in {c.key for c in self.claims}:
            raise ProtocolError(f"{self.chapter}: no claim {key!r}")
        return f"{self.number}.{key}"

    def claim(self, key: str) -> Claim:
        for c in self.claims:
            if c.key == key:
                return c
        raise ProtocolError(f"{self.chapter}: no claim {key!r}; claims: {[c.key for c in self.claims]}")

    def measured_keys(self) -> list[str]:
        """Every key a run must measure: each check's, then each validity condition's."""
        return [c.key for c in self.checks] + [v.key for v in self.validity]

    def legacy_claims(self) -> list[str]:
        """Ids of the claims still in the old form (a ``paper`` claim without its quote and locator, a
        ``reading`` without ``ours_part``)."""
        return [self.claim_id(c.key) for c in self.claims if c.legacy]

    def at(self, scale: str) -> Mapping[str, Any]:
        """The settings at ``scale`` ('smoke' or 'full') as a read-only mapping."""
        if scale not in ("smoke", "full"):
            raise ProtocolError(f"scale must be 'smoke' or 'full'; got {scale!r}")
        return MappingProxyType({k: getattr(s, scale) for k, s in self.settings.items()})

    def as_dict(self, ids: bool = False) -> dict:
        """The declaration (what :meth:`fingerprint` hashes). ``validity`` appears only when declared, so a
        protocol in the old form hashes as it always did. ``ids=True`` adds each claim's ``id`` and ``kind``
        (derived, so not part of the fingerprint; for ``claims.json``)."""
        out = {"chapter": self.chapter,
               "settings": {k: asdict(s) for k, s in self.settings.items()},
               "claims": [c.as_dict() for c in self.claims],
               "checks": [_declared(c) for c in self.checks],
               "changes": [asdict(c) for c in self.changes]}
        if self.validity:
            out["validity"] = [_declared(v) for v in self.validity]
        if ids:
            for c, d in zip(self.claims, out["claims"]):
                d.update(id=self.claim_id(c.key), kind=c.kind, legacy=c.legacy)
        return out

    def fingerprint(self) -> str:
        """sha256 of the declaration: any change to a setting, claim, check, criterion or validity condition
        changes it."""
        return hashlib.sha256(_canonical(self.as_dict()).encode()).hexdigest()[:16]

    def evaluate(self, measured: Mapping[str, Any] | None, scale: str) -> "Evaluation":
        """Judge ``measured`` (check or validity key -> value; None: not run) against the criteria."""
        return Evaluation(self, None if measured is None else dict(measured), scale)

    # -- display -----------------------------------------------------------------------------------
    def markdown(self) -> str:
        """The protocol as Markdown tables (settings; checks with criteria; validity), then any changes."""
        def row(*cells: Any) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        rows = [row("setting", "smoke", "full (paper scale)", "source"), "|---|---|---|---|"]
        for k, s in self.settings.items():
            note = f" ({s.note})" if s.note else ""
            rows.append(row(f"`{k}`{note}", repr(s.smoke), repr(s.full), s.source))
        rows += ["", row("claim", "kind", "statement", "the paper's words, or what is ours"), "|---|---|---|---|"]
        for cl in self.claims:
            parts = [f"“{cl.quote}” ({cl.locator})"] if cl.quote else []
            if cl.ours_part:
                parts.append(f"ours: {cl.ours_part} ({cl.source})")
            words = "; ".join(parts) or cl.source
            rows.append(row(f"`{self.claim_id(cl.key)}`", cl.kind, cl.statement, words))
        rows += ["", row("check", "claim", "role", "criterion", "source", "two runs agree to"),
                 "|---|---|---|---|---|---|"]
        for c in self.checks:
            note = f" ({c.criterion.note})" if c.criterion.note else ""
            rows.append(row(c.what, c.claim or "—", c.role, c.criterion.text(c.fmt) + note, c.criterion.source,
                            _tolerance_text(c.tolerance)))
        if self.validity:
            rows += ["", row("validity condition", "claim", "kind", "criterion", "source"), "|---|---|---|---|---|"]
            for v in self.validity:
                note = f" ({v.criterion.note})" if v.criterion.note else ""
                rows.append(row(v.what, v.claim, v.kind, v.criterion.text(v.fmt) + note, v.criterion.source))
        out = "\n".join(rows)
        if self.changes:
            out += "\n\n**Changes to the protocol** (made after data were seen):\n\n" + "\n".join(
                f"- {c.what}: {c.before} → {c.after}. Why: {c.why}" for c in self.changes)
        return out

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return (f"Protocol({self.chapter!r}: {len(self.settings)} settings, {len(self.claims)} claims, "
                f"{len(self.checks)} checks, {len(self.validity)} validity conditions, "
                f"fingerprint {self.fingerprint()})")


def judged_as(claim: Claim, checks: Iterable[Check] = ()) -> str:
    """How a claim's outcome is worded: ``"paper"`` (a paper claim whose primary criteria are all the paper's),
    ``"reading"`` (a reading claim, or a paper claim judged by a constant of ours: rule 4) or ``"ours"``."""
    if claim.kind == "ours":
        return "ours"
    if claim.kind == "reading":
        return "reading"
    primary = [c for c in checks if c.claim == claim.key and c.role == "primary"]
    return "reading" if any(c.criterion.source != "paper" for c in primary) else "paper"


def claim_status(claim: Claim, results: Iterable[tuple[Check, bool | None]],
                 validity: Iterable[tuple[Validity, bool | None]] = ()) -> str:
    """The one rule (:data:`RULE`): a claim's status from its checks' and validity conditions' pass/fail
    (None: not measured)."""
    if not claim.testable:
        return NOT_TESTABLE
    results = [(c, ok) for c, ok in results if c.role != "guard"]
    validity = list(validity)
    if not results or any(ok is None for _, ok in results) or any(ok is None for _, ok in validity):
        return NOT_YET_RUN
    if not all(ok for _, ok in validity):
        return INCONCLUSIVE
    words = _OUTCOME[judged_as(claim, [c for c, _ in results])]
    primary = [ok for c, ok in results if c.role == "primary"]
    secondary = [ok for c, ok in results if c.role == "secondary"]
    if all(primary):
        return words["pass"] if all(secondary) else words["part"]
    return words["part"] if any(primary) else words["fail"]


_POSITIVE = {REPRODUCED, UNDER_OUR_READING, HOLDS}
_NEGATIVE = {NOT_REPRODUCED, NOT_REPRODUCED_UNDER_OUR_READING, DOES_NOT_HOLD}


def combine(statuses: Iterable[str]) -> str:
    """A chapter's headline status from its claims' statuses (of one family: paper/reading, or ours)."""
    s = set(statuses)
    unknown = s - set(STATUSES)
    if unknown:
        raise ProtocolError(f"unknown statuses {sorted(unknown)}; known: {STATUSES}")
    if len(s) > 1:
        s.discard(NOT_TESTABLE)
    if len(s) == 1:
        return s.pop()
    ours = bool(s & set(OURS_STATUSES[:3]))
    reading = bool(s & {UNDER_OUR_READING, PARTLY_UNDER_OUR_READING, NOT_REPRODUCED_UNDER_OUR_READING})
    words = _OUTCOME["ours" if ours else "reading" if reading else "paper"]
    if s <= _POSITIVE:
        return words["pass"]
    if s <= _NEGATIVE | {NOT_YET_RUN}:
        return words["fail"]
    if s <= {INCONCLUSIVE, NOT_YET_RUN}:
        return INCONCLUSIVE
    return words["part"]


@dataclass
class Evaluation:
    """Measured checks and validity conditions against a protocol, with derived statuses."""

    protocol: Protocol
    measured: dict | None
    scale: str
    results: dict = field(init=False)
    validity: dict = field(init=False)

    def __post_init__(self):
        known = set(self.protocol.measured_keys())
        if self.measured is not None:
            extra = sorted(set(self.measured) - known)
            if extra:
                raise ProtocolError(f"measured values for undeclared checks {extra}; declare them in PROTOCOL")
        self.results, self.validity = {}, {}
        for items, out in ((self.protocol.checks, self.results), (self.protocol.validity, self.validity)):
            for c in items:
                value = None if self.measured is None else self.measured.get(c.key)
                out[c.key] = (value, None if value is None else c.criterion.passes(value))

    def passed(self, key: str) -> bool | None:
        return (self.results[key] if key in self.results else self.validity[key])[1]

    def value(self, key: str) -> Any:
        return (self.results[key] if key in self.results else self.validity[key])[0]

    def status(self, claim_key: str) -> str:
        claim = self.protocol.claim(claim_key)
        mine = [(c, self.results[c.key][1]) for c in self.protocol.checks if c.claim == claim_key]
        valid = [(v, self.validity[v.key][1]) for v in self.protocol.validity if v.claim == claim_key]
        return claim_status(claim, mine, valid)

    def statuses(self) -> dict[str, str]:
        return {c.key: self.status(c.key) for c in self.protocol.claims}

    def failed_validity(self, claim_key: str) -> list[str]:
        """Keys of the claim's validity conditions that were measured and failed."""
        return [v.key for v in self.protocol.validity if v.claim == claim_key and self.validity[v.key][1] is False]

    def headline(self) -> str:
        """The chapter's status: its paper and reading claims combined (its ours claims where it has no other)."""
        st = self.statuses()
        paper = [st[c.key] for c in self.protocol.claims if c.kind != "ours"]
        return combine(paper or st.values())

    def failed_guards(self) -> list[str]:
        return [c.key for c in self.protocol.checks if c.role == "guard" and self.results[c.key][1] is False]

    def assert_guards(self) -> None:
        """Stop the build when a guard fails (a bug in the book's code, not a finding)."""
        failed = self.failed_guards()
        if failed:
            lines = [f"{k}: {self.line(k)}" for k in failed]
            raise AssertionError("guard checks failed (a bug in the book's computation):\n" + "\n".join(lines))

    def line(self, key: str, values: bool = True) -> str:
        """``what = value (criterion ≤ bound, source): pass``; ``values=False`` leaves the value out.
        ``key`` is a check's or a validity condition's."""
        c = next((c for c in self.protocol.checks + self.protocol.validity if c.key == key), None)
        if c is None:
            raise ProtocolError(f"{self.protocol.chapter}: no check or validity condition {key!r}")
        value, ok = self.results[key] if key in self.results else self.validity[key]
        mark = "—" if ok is None else ("pass" if ok else "FAIL")
        shown = f" = {c.show(value)}" if values else ""
        return f"{c.what}{shown} (criterion {c.criterion.text(c.fmt)}, {c.criterion.source}): {mark}"

    def why_inconclusive(self, claim_key: str, values: bool = True) -> str:
        """The failed validity conditions of a claim, named: ``"power: runs that fit = 2 (criterion ≥ 3)"``."""
        parts = []
        for k in self.failed_validity(claim_key):
            v = next(v for v in self.protocol.validity if v.key == k)
            shown = f" = {v.show(self.validity[k][0])}" if values else ""
            parts.append(f"{v.kind}: {v.what}{shown} (criterion {v.criterion.text(v.fmt)})")
        return "; ".join(parts)

    def key_number(self, claim_key: str) -> str:
        """The claim's first primary check, measured against its criterion (and, for an inconclusive claim,
        its failed validity conditions)."""
        c = next(c for c in self.protocol.checks if c.claim == claim_key and c.role == "primary")
        value = self.results[c.key][0]
        out = f"{c.what} {c.show(value)} (criterion {c.criterion.text(c.fmt)})"
        failed = self.why_inconclusive(claim_key)
        return out + (f"; failed validity: {failed}" if failed else "")

    def report(self, roles: Iterable[str] = ("primary", "secondary"), values: bool = True) -> str:
        """Plain text: each claim with its status, every check's value against its criterion, and every
        validity condition's.

        ``values=False`` prints pass/fail only (for outputs compared by nbval: round-off-sized values
        differ between CPUs)."""
        roles = tuple(roles)
        out = []
        for cl in self.protocol.claims:
            status = self.status(cl.key)
            kind = "" if cl.legacy else f" [{cl.kind}]"
            out.append(f"[{cl.key}] {status}{kind} ({self.scale} scale)")
            if not cl.testable:
                out.append(f"  not testable here: {cl.why}")
            if status == INCONCLUSIVE:
                out.append(f"  failed validity: {self.why_inconclusive(cl.key, values)}")
            for c in self.protocol.checks:
                if c.claim == cl.key and c.role in roles:
                    out.append(f"  {c.role[:3]} {self.line(c.key, values)}")
            for v in self.protocol.validity:
                if v.claim == cl.key:
                    out.append(f"  val {self.line(v.key, values)}")
        if "guard" in roles:
            out += [f"guard {self.line(c.key, values)}" for c in self.protocol.checks if c.role == "guard"]
        return "\n".join(out)

    def verdict_text(self) -> str:
        """One line for the chapter: its headline status and the key number of each claim."""
        parts = [self.key_number(c.key) for c in self.protocol.claims if c.testable]
        return f"{self.headline()}: " + "; ".join(parts) if parts else self.headline()

    def to_json(self) -> dict:
        """Scale, headline, statuses (by claim key), checks; validity, ids and failed validity when declared."""
        out = {"scale": self.scale, "headline": self.headline(), "statuses": self.statuses(),
               "checks": {k: {"value": v, "passed": ok} for k, (v, ok) in self.results.items()}}
        if self.protocol.validity:
            out["validity"] = {k: {"value": v, "passed": ok} for k, (v, ok) in self.validity.items()}
            out["inconclusive"] = {c.key: self.failed_validity(c.key) for c in self.protocol.claims
                                   if self.status(c.key) == INCONCLUSIVE}
        return out


def flip_validity(protocol: Protocol, measured: Mapping[str, Any], key: str) -> dict:
    """A copy of ``measured`` in which validity condition ``key`` fails its criterion (the rest unchanged).

    Each chapter's test: ``protocol.evaluate(flip_validity(protocol, measured, key), "full").status(claim)``
    must be ``INCONCLUSIVE``; :func:`assert_validity_decides` does this for every condition."""
    v = next((v for v in protocol.validity if v.key == key), None)
    if v is None:
        raise ProtocolError(f"{protocol.chapter}: no validity condition {key!r}; declared: "
                            f"{[v.key for v in protocol.validity]}")
    out = dict(measured)
    out[key] = failing_value(v.criterion)
    return out


def failing_value(criterion: Criterion) -> Any:
    """A value that fails ``criterion`` (a finite number where the criterion is numeric)."""
    b = criterion.bound
    if isinstance(b, bool):
        value: Any = not b
    elif criterion.op == "in":
        lo, hi = float(b[0]), float(b[1])
        value = hi + max(1.0, abs(hi - lo), abs(hi))
    else:
        x, step = float(b), max(1.0, abs(float(b)))
        value = {"<=": x + step, "<": x, ">=": x - step, ">": x, "==": x + step}[criterion.op]
    if criterion.passes(value):  # pragma: no cover - the table above is exhaustive
        raise ProtocolError(f"no failing value found for criterion {criterion.text()}")
    return value


def assert_validity_decides(protocol: Protocol, measured: Mapping[str, Any]) -> dict[str, str]:
    """For every validity condition: flip it alone and require its claim to read **inconclusive**.

    Returns ``{validity key: status after the flip}``; raises ``AssertionError`` naming any condition whose
    flip does not give inconclusive (e.g. a claim that is not testable)."""
    out, wrong = {}, []
    for v in protocol.validity:
        out[v.key] = protocol.evaluate(flip_validity(protocol, measured, v.key), "full").status(v.claim)
        if out[v.key] != INCONCLUSIVE:
            wrong.append(f"{v.key} (claim {v.claim}): {out[v.key]}")
    if wrong:
        raise AssertionError(f"{protocol.chapter}: flipping a validity condition did not give "
                             f"'{INCONCLUSIVE}': " + "; ".join(wrong))
    return out
