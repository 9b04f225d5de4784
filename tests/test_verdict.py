import pytest

from flatbias.verdict import PlainText, verdict_text


def test_verdict_text_is_plain():
    v = verdict_text("reproduced", "max. rel. error 1e-14")
    assert isinstance(v, PlainText) and repr(v) == "reproduced: max. rel. error 1e-14"
    assert verdict_text("not reproduced") == "not reproduced"
    assert verdict_text("not yet run", "needs a GPU") == "not yet run: needs a GPU"


def test_unknown_status():
    with pytest.raises(ValueError, match="use one of: reproduced"):
        verdict_text("sort of")
