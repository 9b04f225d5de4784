import pytest

from flatbias import scale


def test_argument_wins_over_env(monkeypatch):
    monkeypatch.setenv("BOOK_SCALE", "full")
    assert scale.get_scale("smoke") == "smoke"


def test_env_var(monkeypatch):
    monkeypatch.setenv("BOOK_SCALE", " Full ")
    assert scale.get_scale() == "full"


def test_default_follows_gpu(monkeypatch):
    monkeypatch.delenv("BOOK_SCALE", raising=False)
    monkeypatch.setattr(scale, "_cuda_available", lambda: True)
    assert scale.get_scale() == "full"
    monkeypatch.setattr(scale, "_cuda_available", lambda: False)
    assert scale.get_scale() == "smoke"


@pytest.mark.parametrize("bad", ["medium", "", "smok"])
def test_unknown_scale_is_clear_error(monkeypatch, bad):
    monkeypatch.setenv("BOOK_SCALE", "huge")
    with pytest.raises(scale.UnknownScaleError, match="valid scales are smoke, full"):
        scale.get_scale()
    if bad:
        with pytest.raises(scale.UnknownScaleError, match=repr(bad)):
            scale.get_scale(bad)


def test_pick():
    assert scale.pick("smoke", smoke=1, full=2) == 1
    assert scale.pick("full", smoke=1, full=2) == 2
    with pytest.raises(scale.UnknownScaleError):
        scale.pick("tiny", smoke=1, full=2)
