"""examples/bagging_vs_dropout.py in its quick mode shows what it states."""
import importlib.util
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "bagging_vs_dropout.py")
pytestmark = pytest.mark.skipif(not os.path.isfile(EXAMPLE),
                                reason="examples/ is not installed with the wheel")


def _load():
    spec = importlib.util.spec_from_file_location("example_bagging_vs_dropout", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bagging_vs_dropout_quick(tmp_path, capsys):
    res = _load().main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for row in ("one MLP, no dropout", "bagging member (mean of 5)", "bagging, soft vote (k=5)",
                "bagging, hard vote (k=5)", "dropout p=0.5, weight scaling",
                "dropout p=0.5, MC (T=30)"):
        assert row in out, row
    # the course's claim (12.2): the averaged ensemble beats its typical member, in accuracy
    # and in likelihood
    assert res["soft"] > res["member_mean"]
    assert res["soft_nll"] < res["member_nll"]
    # Monte-Carlo averaging and the weight-scaling rule agree closely (12.5)
    assert abs(res["mc_dropout"] - res["weight_scaling"]) <= 0.03
    for key in ("single", "soft", "hard", "weight_scaling", "mc_dropout"):
        assert res[key] > 0.8, key
    assert [k for k, _ in res["curve_k"]] == [1, 2, 3, 4, 5]
    for path in res["figures"]:
        with open(path, "rb") as f:
            assert f.read(4) == b"\x89PNG"
