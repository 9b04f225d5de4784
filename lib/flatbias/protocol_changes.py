"""Changes that several chapters made to their protocols for one reason, written once.

Each function returns the :class:`~flatbias.claims.Change` a chapter lists in its ``PROTOCOL``, with what that
chapter saw in its own words. The text becomes part of each protocol (and of its fingerprint), so a chapter's
protocol reads the same as if the change were written out in it.

Both changes below came from the first comparison of the paper-scale records across CPUs: every record made on a
2-core AMD EPYC (AVX2) was regenerated on a 2-core Intel Xeon (AVX-512), at the same commit.
"""

from __future__ import annotations

from .claims import Change

_RUN = ("a run on a 2-core Intel Xeon (AVX-512) beside the records made on an AMD EPYC (AVX2) found values of "
        "this kind that differ beyond round-off between CPUs")


def error_tolerance(keys: list[str], seen: str) -> Change:
    """The checks ``keys`` declare tolerance 'error' (two runs agree within a factor of 10) instead of
    'round-off': their values are errors above the round-off floor. ``seen``: what this chapter's values did."""
    return Change(f"tolerance of {', '.join(keys)}", "round-off (relative 1e-9, absolute 1e-12)",
                  "error (within a factor of 10; both under 1e-12 agree)",
                  "these values are errors (residuals, finite-difference or truncation errors, differences of two "
                  "computations of one quantity) above the round-off floor, so their trailing digits are "
                  f"round-off, amplified; {_RUN}: {seen}. Every error-kind check of the book whose value lies "
                  "above 1e-12 changed together, after that run; criteria unchanged")


def rho_at_one(seen: str) -> Change:
    """The exact stability map counts a radius within round-off of 1 as 1, not stable
    (:func:`flatbias.stability.stable`). ``seen``: what this chapter's values did."""
    return Change("exact map at ρ(𝒯) = 1", "stable iff the computed ρ(𝒯) < 1",
                  "stable iff ρ(𝒯) < 1 − 1e-9 (stability.stable): within round-off of 1 is ρ = 1, not stable "
                  "(Theorem 3.1)",
                  "some cells of the authors' grid sit at ρ = 1 exactly, where the computed radius lands a few "
                  f"ulps above or below 1 by CPU; {seen}; changed after that run, for every chapter that draws "
                  "the exact map")
