"""examples/transfer.py in its quick mode runs and shows what it states."""
import importlib.util
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "transfer.py")
pytestmark = pytest.mark.skipif(not os.path.isfile(EXAMPLE),
                                reason="examples/ is not installed with the wheel")


def _load():
    spec = importlib.util.spec_from_file_location("example_transfer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_transfer_quick(tmp_path, capsys):
    res = _load().main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    methods = ("scratch", "conv frozen, new classifier", "conv tuned, new classifier",
               "all but head, tuned", "new head only")
    for row in methods:
        assert row in out
    assert res["pretrain_accuracy"] > 0.9
    acc = {m: sum(res["accuracy"][m].values()) / 2 for m in methods}  # mean over n = 5, 10
    for m in methods[:4]:
        assert acc[m] > 0.8, m
    # the pre-trained convolutions, with a new classifier, beat training from scratch with few
    # examples; the 0-4-specific linear layers do not help, and alone separate 5-9 poorly
    assert acc["conv frozen, new classifier"] > acc["scratch"]
    assert acc["all but head, tuned"] < acc["conv frozen, new classifier"]
    assert acc["new head only"] < acc["scratch"] - 0.1
    for path in res["figures"]:
        with open(path, "rb") as f:
            assert f.read(4) == b"\x89PNG"
