"""What chapter 19 reports from a record of its runs (our extension): the per-setting table and the numbers its
prose quotes, computed from the record's ``data`` only, so the text always says what the record says.

A record's ``data`` holds ``radii``, ``steps`` (the runs' horizon T), ``directions``, ``far`` (the far factors
η/η*) and ``settings``: one dict per setting with ``net``, ``B``, ``ra`` (ρ/α), ``f`` (η/η*), ``rad`` (ρ(𝒯)),
``agree`` (per radius), ``lin_agree``, ``rstar``, and per minibatch scheme ``s`` in :data:`SCHEMES` the
Lyapunov exponent of the linearized map ``lyap_<s>`` = {mean, lo, hi} and ``decided_<s>`` (whether T decides it,
:func:`flatbias.linearization.decided`).
"""

from __future__ import annotations

import math

SCHEMES = ("reshuffled", "iid")


def optimizer_label(B: int, ra: float) -> str:
    """``"SGD, B=10"`` or ``"SAM ρ/α=1, B=10"``."""
    return ("SGD" if not ra else f"SAM ρ/α={ra:g}") + f", B={B}"


def name(s: dict) -> str:
    """``"C=2, SGD, B=10, η=1.1η*"``: a setting in words."""
    return f"{s['net']}, {optimizer_label(s['B'], s['ra'])}, η={s['f']:g}η*"


def table(data: dict) -> str:
    """One line per setting: ρ(𝒯), the Lyapunov exponent of the linearized map under each scheme (mean [lo, hi],
    * where the horizon does not decide it), the linearized map's agreement, the agreement per radius and r*."""
    radii = data["radii"]
    head = (f"{'net':>10} {'B':>3} {'ρ/α':>4} {'η/η*':>5} {'ρ(𝒯)':>8} {'λ reshuffled':>27} {'λ i.i.d.':>27} "
            f"{'lin.':>5}  agreement at r = {', '.join(f'{r:.2g}' for r in radii)} → r*")
    rows = [head]
    for s in data["settings"]:
        lam = " ".join(f"{_interval(s['lyap_' + k])}{' ' if s['decided_' + k] else '*'}" for k in SCHEMES)
        rows.append(f"{s['net']:>10} {s['B']:>3} {s['ra']:>4g} {s['f']:>5g} {s['rad']:8.4f} {lam} "
                    f"{s['lin_agree']:5.2f}  " + " ".join(f"{a:4.2f}" for a in s["agree"])
                    + f" → {s['rstar']:.3g}")
    return "\n".join(rows)


def _interval(iv: dict) -> str:
    return f"{iv['mean']:+.1e} [{iv['lo']:+.1e}, {iv['hi']:+.1e}]"


def prose_numbers(data: dict) -> dict:
    """The numbers (and short lists in words) the chapter's text quotes, from the record's ``data``."""
    sets, radii, T = data["settings"], data["radii"], data["steps"]
    far = [s for s in sets if s["f"] in data["far"]]
    near = [s for s in sets if s["f"] not in data["far"]] or far
    below = [s for s in far if s["rstar"] < radii[-1]]
    nu = [s for s in near if s["f"] > 1]
    out = {"n_settings": len(sets), "n_runs": len(radii) * data["directions"], "T_steps": T,
           "r_min": float(radii[0]), "r_max": float(radii[-1]), "n_far": len(far), "n_far_top": len(far) - len(below),
           "far_below_top": "; ".join(f"{name(s)} (r* = {s['rstar']:.3g})" for s in below) or "none",
           "rstar_near_med": _median([s["rstar"] for s in near]),
           "rstar_stable_near_min": min([s["rstar"] for s in near if s["f"] < 1] or [math.nan]),
           "n_near_unst": len(nu), "rad_near_unst": min([s["rad"] for s in nu] or [math.nan]),
           "n_lin_stuck": sum(s["lin_agree"] < 0.9 for s in nu)}
    shrink = [s for s in nu if s["lyap_reshuffled"]["hi"] < 0]
    slow = [s for s in nu if not s["decided_reshuffled"]]
    grow_iid = [s for s in nu if s["lyap_iid"]["lo"] > 0]
    shrink_iid = [s for s in nu if s["lyap_iid"]["hi"] < 0]
    out.update(n_shrink_resh=len(shrink), shrink_resh=_names(shrink), n_undecided=len(slow),
               undecided=_names(slow), n_grow_iid=len(grow_iid), n_shrink_iid=len(shrink_iid),
               shrink_iid=_names(shrink_iid))
    out["steps_needed"] = (", ".join(f"{math.log(data['escape_factor']) / s['lyap_reshuffled']['mean']:.0f}"
                                     for s in slow if s["lyap_reshuffled"]["mean"] > 0) or "none")
    ex = next((s for s in nu if (s["net"], s["B"], s["ra"]) == ("C=2", 10, 0.0)), nu[0] if nu else None)
    if ex is not None:
        out.update(ex_rad=ex["rad"], ex_half=0.5 * math.log(ex["rad"]), ex_resh=ex["lyap_reshuffled"]["mean"],
                   ex_resh_lo=ex["lyap_reshuffled"]["lo"], ex_resh_hi=ex["lyap_reshuffled"]["hi"],
                   ex_iid=ex["lyap_iid"]["mean"], ex_iid_lo=ex["lyap_iid"]["lo"], ex_iid_hi=ex["lyap_iid"]["hi"],
                   ex_ratio=0.5 * math.log(ex["rad"]) / ex["lyap_iid"]["mean"])
    esc = [s for s in nu if s["lin_agree"] >= 0.9]
    out["esc_settings"] = _names(esc)
    out["esc_rstar"] = max([s["rstar"] for s in esc] or [math.nan])
    return out


def _names(ss) -> str:
    return "; ".join(name(s) for s in ss) or "none"


def _median(xs) -> float:
    xs = sorted(xs)
    if not xs:
        return math.nan
    m = len(xs) // 2
    return float(xs[m]) if len(xs) % 2 else 0.5 * (xs[m - 1] + xs[m])


__all__ = ["SCHEMES", "optimizer_label", "name", "table", "prose_numbers"]
