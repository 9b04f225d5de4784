import runpy
from pathlib import Path

TIMING = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "regeneration_timing.py"))


def test_parse_reads_chapter_times_and_the_elapsed_line():
    log = ("02_stationary_points: 81 s\n 19_linearization: 154 s\nchapter wall time\n"
           "02_stationary_points                     81 s   agrees\nsum 235 s\nelapsed (--jobs 2)    120 s\n")
    assert TIMING["parse"](log) == ({"02_stationary_points": 81, "19_linearization": 154}, 120)
    assert TIMING["parse"]("01_trace_of_hessian: 12 s\n")[1] is None  # a run stopped before its end
