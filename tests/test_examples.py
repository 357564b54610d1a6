"""The examples under examples/ run (in their reduced mode) and show what they claim."""
import importlib.util
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_newton_vs_gd_quick(capsys):
    results = load_example("newton_vs_gd").main(["--quick"])
    out = capsys.readouterr().out
    for row in ("gradient descent", "Newton (damped)", "L-BFGS (strong Wolfe)",
                "closed form (linalg.lstsq)", "Newton (one step)"):
        assert row in out
    newton, lbfgs, gd = (results[m]["iterations"] for m in ("newton", "lbfgs", "gd"))
    # Newton reaches the tolerance in a handful of iterations; L-BFGS in more; gradient
    # descent (tuned step) not within its 300.
    assert newton is not None and newton <= 8
    assert lbfgs is not None and newton < lbfgs
    assert gd is None or gd > 10 * newton
    ls = results["least_squares"]
    # Newton's one step on the quadratic is the closed form; gradient descent is still above.
    assert ls["newton"] == pytest.approx(ls["closed_form"], rel=1e-9)
    assert ls["gd"] > ls["closed_form"]


def test_newton_vs_gd_quick_from_the_environment(monkeypatch):
    module = load_example("newton_vs_gd")
    assert not module.parse_args([]).quick
    monkeypatch.setenv("PYDL_EXAMPLE_QUICK", "1")
    assert module.parse_args([]).quick
