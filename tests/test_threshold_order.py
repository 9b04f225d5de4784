"""Order of thresholds with ties declared (flatbias.threshold_order)."""
import pytest

from flatbias import threshold_order
from flatbias import validate as vd


def test_18_threshold_order_ties_and_reversals():
    c = threshold_order.compare([1.0, 2.0, 3.0], [3.0, 2.0, 1.0 + 1e-9], 1e-6)
    assert c["reversed"] == 3 and c["kept"] == 0.0
    c = threshold_order.compare([1.0, 2.0, 2.0 + 1e-8], [1.0, 2.0 + 1e-8, 2.0], 1e-6)
    assert c["reversed"] == 0 and c["tied_ref"] == 1 and c["tied_new"] == 1 and c["kept"] == 1.0
    rec = {"0.9_0_10": threshold_order.compare([1, 2, 3], [3, 2, 1], 1e-6),
           "0.9_1_10": threshold_order.compare([1, 2, 3], [1, 3, 2], 1e-6),
           "0.5_0_10": threshold_order.compare([1, 2, 3], [1, 2, 3], 1e-6)}
    assert threshold_order.describe(rec) == ("β = 0.5, B = 10: 0 of 3 reversed; "
                                             "β = 0.9, B = 10: 3 of 3 reversed")


def test_compare_rejects_mismatched_lists():
    with pytest.raises(vd.InvalidArgumentError):
        threshold_order.compare([1.0, 2.0], [1.0, 2.0, 3.0], 1e-6)
    with pytest.raises(vd.InvalidArgumentError):
        threshold_order.compare([1.0], [1.0], 1e-6)


def test_worst_keeps_the_ties_of_the_worst_set():
    rec = {"0.9_0_10": threshold_order.compare([1, 2, 3, 4], [4, 3, 2, 2 + 1e-9], 1e-6),  # 5 reversed, 1 tied
           "0.9_1_10": threshold_order.compare([1, 2, 3, 4], [1, 2, 3, 3 + 1e-9], 1e-6)}  # 0 reversed, 1 tied
    assert threshold_order.worst(rec) == {(0.9, 10): (5, 6, 1)}
