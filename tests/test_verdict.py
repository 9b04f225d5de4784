from flatbias.verdict import PlainText


def test_plain_text_has_no_quotes():
    v = PlainText("reproduced: max. rel. error 1e-14")
    assert repr(v) == "reproduced: max. rel. error 1e-14"
