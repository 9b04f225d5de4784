"""Claims, checks and the one rule that turns measured checks into a status.

A chapter declares its :class:`Protocol` before anything runs: the settings and horizons (each
tagged as the paper's or ours), the claims it tests and the criterion of every check. After the
run each check gets a measured value; :func:`claim_status` derives each claim's status from them.
No chapter types a status word: it prints what :meth:`Protocol.evaluate` returns.

Three roles of a check:

- ``primary``: decides whether the claim reproduces;
- ``secondary``: a further prediction of the claim (a failure makes it "partly reproduced");
- ``guard``: a regression test of the book's own computation (a closed form against autograd, a
  simulator against the exact operator). A failing guard is a bug: :meth:`Evaluation.assert_guards`
  stops the build. A paper claim that does not reproduce never stops the build; it is a finding.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Mapping

SOURCES = ("paper", "ours")
ROLES = ("primary", "secondary", "guard")

REPRODUCED = "reproduced"
UNDER_OUR_READING = "reproduced under our reading"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_TESTABLE = "not testable here"
NOT_YET_RUN = "not yet run"
STATUSES = (REPRODUCED, UNDER_OUR_READING, PARTLY, NOT_REPRODUCED, NOT_TESTABLE, NOT_YET_RUN)
MARKS = {REPRODUCED: "✓", UNDER_OUR_READING: "(✓)", PARTLY: "◐", NOT_REPRODUCED: "✗",
         NOT_TESTABLE: "⊘", NOT_YET_RUN: "…"}

RULE = """\
1. A claim the book cannot test with what it has (data, hardware, a missing formula) is
   **not testable here**.
2. A claim with a check that has no measured value (no paper-scale record yet) is **not yet run**.
3. Every primary and every secondary check passes: **reproduced** when the statement tested is the
   paper's, **reproduced under our reading** when it is our reconstruction of it.
4. Every primary check passes but a secondary one fails, or some primary checks pass and others
   fail: **partly reproduced**.
5. Every primary check fails: **not reproduced**.

Guards (regression tests of the book's own code) never enter a status: a failing guard stops the
build."""

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


@dataclass(frozen=True)
class Claim:
    """A statement of a paper the chapter tests. ``reading="ours"``: the statement as tested is our
    reconstruction (a formula or setting the paper does not give). ``testable=False`` needs ``why``."""

    key: str
    statement: str
    source: str
    reading: str = "paper"
    testable: bool = True
    why: str = ""

    def __post_init__(self):
        _source(self.reading, f"claim {self.key!r} reading")
        if not self.testable and not self.why:
            raise ProtocolError(f"claim {self.key!r} is not testable: say why")


@dataclass(frozen=True)
class Check:
    """A named check: what is measured, its criterion, its role, and the claim it belongs to."""

    key: str
    what: str
    criterion: Criterion
    role: str = "primary"
    claim: str | None = None
    fmt: str = ".3g"

    def __post_init__(self):
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
class Change:
    """A change to the protocol after data were seen: what changed, from what, to what, and why."""

    what: str
    before: str
    after: str
    why: str


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=repr, separators=(",", ":"))


class Protocol:
    """The chapter's pre-registered protocol: settings, claims, checks (with criteria), changes."""

    def __init__(self, chapter: str, settings: Mapping[str, Setting], claims: Iterable[Claim],
                 checks: Iterable[Check], changes: Iterable[Change] = ()):
        self.chapter = chapter
        self.settings = MappingProxyType(dict(settings))
        self.claims = tuple(claims)
        self.checks = tuple(checks)
        self.changes = tuple(changes)
        bad = [k for k, s in self.settings.items() if not isinstance(s, Setting)]
        if bad:
            raise ProtocolError(f"settings {bad} must be Setting(...) values (smoke, full, source)")
        keys = [c.key for c in self.claims]
        for what, ks in (("claim", keys), ("check", [c.key for c in self.checks])):
            dup = sorted({k for k in ks if ks.count(k) > 1})
            if dup:
                raise ProtocolError(f"{chapter}: duplicate {what} keys {dup}")
        for chk in self.checks:
            if chk.claim is not None and chk.claim not in keys:
                raise ProtocolError(f"check {chk.key!r} names claim {chk.claim!r}, which is not declared")
        for cl in self.claims:
            mine = [c for c in self.checks if c.claim == cl.key and c.role == "primary"]
            if cl.testable and not mine:
                raise ProtocolError(f"claim {cl.key!r} has no primary check")

    def at(self, scale: str) -> Mapping[str, Any]:
        """The settings at ``scale`` ('smoke' or 'full') as a read-only mapping."""
        if scale not in ("smoke", "full"):
            raise ProtocolError(f"scale must be 'smoke' or 'full'; got {scale!r}")
        return MappingProxyType({k: getattr(s, scale) for k, s in self.settings.items()})

    def as_dict(self) -> dict:
        return {"chapter": self.chapter,
                "settings": {k: asdict(s) for k, s in self.settings.items()},
                "claims": [asdict(c) for c in self.claims],
                "checks": [asdict(c) for c in self.checks],
                "changes": [asdict(c) for c in self.changes]}

    def fingerprint(self) -> str:
        """sha256 of the declaration: any change to a setting, claim, check or criterion changes it."""
        return hashlib.sha256(_canonical(self.as_dict()).encode()).hexdigest()[:16]

    def evaluate(self, measured: Mapping[str, Any] | None, scale: str) -> "Evaluation":
        """Judge ``measured`` (check key -> value; None: not run) against the criteria."""
        return Evaluation(self, None if measured is None else dict(measured), scale)

    # -- display -----------------------------------------------------------------------------------
    def markdown(self) -> str:
        """The protocol as Markdown tables (settings; checks with criteria), then any changes."""
        def row(*cells: Any) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        rows = [row("setting", "smoke", "full (paper scale)", "source"), "|---|---|---|---|"]
        for k, s in self.settings.items():
            note = f" ({s.note})" if s.note else ""
            rows.append(row(f"`{k}`{note}", repr(s.smoke), repr(s.full), s.source))
        rows += ["", row("check", "claim", "role", "criterion", "source"), "|---|---|---|---|---|"]
        for c in self.checks:
            note = f" ({c.criterion.note})" if c.criterion.note else ""
            rows.append(row(c.what, c.claim or "—", c.role, c.criterion.text(c.fmt) + note, c.criterion.source))
        out = "\n".join(rows)
        if self.changes:
            out += "\n\n**Changes to the protocol** (made after data were seen):\n\n" + "\n".join(
                f"- {c.what}: {c.before} → {c.after}. Why: {c.why}" for c in self.changes)
        return out

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return (f"Protocol({self.chapter!r}: {len(self.settings)} settings, {len(self.claims)} claims, "
                f"{len(self.checks)} checks, fingerprint {self.fingerprint()})")


def claim_status(claim: Claim, results: Iterable[tuple[Check, bool | None]]) -> str:
    """The one rule (:data:`RULE`): a claim's status from its checks' pass/fail (None: not measured)."""
    if not claim.testable:
        return NOT_TESTABLE
    results = [(c, ok) for c, ok in results if c.role != "guard"]
    if not results or any(ok is None for _, ok in results):
        return NOT_YET_RUN
    primary = [ok for c, ok in results if c.role == "primary"]
    secondary = [ok for c, ok in results if c.role == "secondary"]
    if all(primary):
        if all(secondary):
            return REPRODUCED if claim.reading == "paper" else UNDER_OUR_READING
        return PARTLY
    return PARTLY if any(primary) else NOT_REPRODUCED


def combine(statuses: Iterable[str]) -> str:
    """A chapter's headline status from its claims' statuses."""
    s = set(statuses)
    if len(s) > 1:
        s.discard(NOT_TESTABLE)
    if len(s) == 1:
        return s.pop()
    if s <= {REPRODUCED, UNDER_OUR_READING}:
        return UNDER_OUR_READING
    if s == {NOT_REPRODUCED, NOT_YET_RUN}:
        return NOT_REPRODUCED
    return PARTLY


@dataclass
class Evaluation:
    """Measured checks against a protocol, with derived statuses."""

    protocol: Protocol
    measured: dict | None
    scale: str
    results: dict = field(init=False)

    def __post_init__(self):
        known = {c.key for c in self.protocol.checks}
        if self.measured is not None:
            extra = sorted(set(self.measured) - known)
            if extra:
                raise ProtocolError(f"measured values for undeclared checks {extra}; declare them in PROTOCOL")
        self.results = {}
        for c in self.protocol.checks:
            value = None if self.measured is None else self.measured.get(c.key)
            self.results[c.key] = (value, None if value is None else c.criterion.passes(value))

    def passed(self, key: str) -> bool | None:
        return self.results[key][1]

    def value(self, key: str) -> Any:
        return self.results[key][0]

    def status(self, claim_key: str) -> str:
        claim = next(c for c in self.protocol.claims if c.key == claim_key)
        mine = [(c, self.results[c.key][1]) for c in self.protocol.checks if c.claim == claim_key]
        return claim_status(claim, mine)

    def statuses(self) -> dict[str, str]:
        return {c.key: self.status(c.key) for c in self.protocol.claims}

    def headline(self) -> str:
        return combine(self.statuses().values())

    def failed_guards(self) -> list[str]:
        return [c.key for c in self.protocol.checks if c.role == "guard" and self.results[c.key][1] is False]

    def assert_guards(self) -> None:
        """Stop the build when a guard fails (a bug in the book's code, not a finding)."""
        failed = self.failed_guards()
        if failed:
            lines = [f"{k}: {self.line(k)}" for k in failed]
            raise AssertionError("guard checks failed (a bug in the book's computation):\n" + "\n".join(lines))

    def line(self, key: str, values: bool = True) -> str:
        """``what = value (criterion ≤ bound, source): pass``; ``values=False`` leaves the value out."""
        c = next(c for c in self.protocol.checks if c.key == key)
        value, ok = self.results[key]
        mark = "—" if ok is None else ("pass" if ok else "FAIL")
        shown = f" = {c.show(value)}" if values else ""
        return f"{c.what}{shown} (criterion {c.criterion.text(c.fmt)}, {c.criterion.source}): {mark}"

    def key_number(self, claim_key: str) -> str:
        """The claim's first primary check, measured against its criterion."""
        c = next(c for c in self.protocol.checks if c.claim == claim_key and c.role == "primary")
        value = self.results[c.key][0]
        return f"{c.what} {c.show(value)} (criterion {c.criterion.text(c.fmt)})"

    def report(self, roles: Iterable[str] = ("primary", "secondary"), values: bool = True) -> str:
        """Plain text: each claim with its status and every check's value against its criterion.

        ``values=False`` prints pass/fail only (for outputs compared by nbval: round-off-sized values
        differ between CPUs)."""
        roles = tuple(roles)
        out = []
        for cl in self.protocol.claims:
            out.append(f"[{cl.key}] {self.status(cl.key)} ({self.scale} scale)")
            if not cl.testable:
                out.append(f"  not testable here: {cl.why}")
            for c in self.protocol.checks:
                if c.claim == cl.key and c.role in roles:
                    out.append(f"  {c.role[:3]} {self.line(c.key, values)}")
        if "guard" in roles:
            out += [f"guard {self.line(c.key, values)}" for c in self.protocol.checks if c.role == "guard"]
        return "\n".join(out)

    def verdict_text(self) -> str:
        """One line for the chapter: its headline status and the key number of each claim."""
        parts = [self.key_number(c.key) for c in self.protocol.claims if c.testable]
        return f"{self.headline()}: " + "; ".join(parts) if parts else self.headline()

    def to_json(self) -> dict:
        return {"scale": self.scale, "headline": self.headline(), "statuses": self.statuses(),
                "checks": {k: {"value": v, "passed": ok} for k, (v, ok) in self.results.items()}}
