"""What chapter 19 quotes from its record (flatbias.linearization_report), on a small synthetic record."""
import math

from flatbias import linearization_report as rep


def _setting(net, B, ra, f, rad, rstar, lin, resh, iid, dec=True):
    iv = lambda m: {"mean": m, "lo": m - 1e-4, "hi": m + 1e-4}  # noqa: E731
    return {"net": net, "B": B, "ra": ra, "f": f, "rad": rad, "rstar": rstar, "lin_agree": lin,
            "agree": [1.0, 1.0], "lyap_reshuffled": iv(resh), "lyap_iid": iv(iid), "decided_reshuffled": dec,
            "decided_iid": True}


DATA = {"radii": [0.01, 1.0], "steps": 500, "directions": 4, "far": [0.5, 2.0], "escape_factor": 10.0,
        "settings": [_setting("C=2", 10, 0.0, 0.5, 0.99, 1.0, 1.0, -1e-3, -1e-3),
                     _setting("C=2", 10, 0.0, 2.0, 6.5, 1.0, 1.0, 0.4, 0.5),
                     _setting("C=4", 10, 1.0, 0.5, 0.99, 0.01, 1.0, -1e-3, -1e-3),
                     _setting("C=2", 10, 0.0, 1.1, 1.2, 0.0, 0.0, -1e-3, 2e-3),
                     _setting("C=2", 1, 0.0, 1.1, 1.007, 0.0, 0.0, 3e-3, 3e-3, dec=False),
                     _setting("memorizing", 10, 0.0, 0.9, 0.96, 1.0, 1.0, -0.02, -0.02)]}


def test_prose_numbers_say_what_the_record_says():
    p = rep.prose_numbers(DATA)
    assert p["n_far"] == 3 and p["n_far_top"] == 2
    assert p["far_below_top"] == "C=4, SAM ρ/α=1, B=10, η=0.5η* (r* = 0.01)"
    assert p["n_near_unst"] == 2 and p["n_lin_stuck"] == 2
    assert p["n_shrink_resh"] == 1 and p["shrink_resh"] == "C=2, SGD, B=10, η=1.1η*"
    assert p["n_undecided"] == 1 and p["undecided"] == "C=2, SGD, B=1, η=1.1η*"
    assert p["steps_needed"] == f"{math.log(10) / 3e-3:.0f}"
    assert p["n_grow_iid"] == 2 and p["ex_rad"] == 1.2 and p["ex_iid"] == 2e-3
    assert p["n_shrink_iid"] == 0 and p["shrink_iid"] == "none"
    assert p["rstar_stable_near_min"] == 1.0 and p["esc_settings"] == "none"


def test_table_marks_undecided_exponents():
    lines = rep.table(DATA).splitlines()
    assert len(lines) == 1 + len(DATA["settings"])
    assert "*" in lines[5] and "*" not in lines[1].split("[")[-1]
