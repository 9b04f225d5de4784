import numpy as np
import pytest

from flatbias import run_endpoints as ends
from flatbias.validate import InvalidArgumentError

RUNS = {"sgd": {"0": {"s": [9, 5.0]}, "1": {"s": [9, 4.0]}},
        "sam_0.1": {"0": {"s": [9, 4.5]}, "1": {"s": [9, 4.5]}},
        "sam_0.2": {"0": {"s": [9, 3.0]}, "1": {"s": [9, 5.0]}}}


def test_last_and_comparisons():
    np.testing.assert_array_equal(ends.last(RUNS, "s", "sgd"), [5.0, 4.0])
    assert ends.mean_drop(RUNS, "s") == pytest.approx(0.5)
    assert ends.share_lower(RUNS, "s") == 0.5  # seed 0 lower, seed 1 higher
    assert ends.ratio_of_means(RUNS, "s") == pytest.approx(4.0 / 4.5)
    assert ends.share_falling(RUNS, "s", ["sgd", "sam_0.1", "sam_0.2"]) == 0.5  # 4.5 → 4.5, 4.5 → 4


def test_errors_name_the_problem():
    with pytest.raises(InvalidArgumentError, match="no runs of method"):
        ends.last(RUNS, "s", "sam_9")
    with pytest.raises(InvalidArgumentError, match="missing"):
        ends.last(RUNS, "t", "sgd")
    with pytest.raises(InvalidArgumentError, match="same seeds"):
        ends.mean_drop({"sgd": RUNS["sgd"], "sam_0.2": {"0": RUNS["sam_0.2"]["0"]}}, "s")
    with pytest.raises(InvalidArgumentError, match="two methods"):
        ends.share_falling(RUNS, "s", ["sgd"])
