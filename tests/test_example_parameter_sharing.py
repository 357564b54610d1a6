"""examples/parameter_sharing.py in its quick mode shows what it states."""
import importlib.util
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "parameter_sharing.py")
pytestmark = pytest.mark.skipif(not os.path.isfile(EXAMPLE),
                                reason="examples/ is not installed with the wheel")


def _load():
    spec = importlib.util.spec_from_file_location("example_parameter_sharing", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parameter_sharing_quick(tmp_path, capsys):
    res = _load().main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "tied (decoder = W^T)" in out and "||tA - tB||^2" in out
    tied, untied = res["autoencoders"]["tied (decoder = W^T)"], res["autoencoders"]["untied"]
    # one weight matrix fewer: 64*16 + 16 + 64 against 64*16 + 16 + 16*64 + 64
    assert tied["parameters"] == 1104 and untied["parameters"] == 2128
    assert tied["state"] == untied["state"] == 2128  # both names kept, as torch
    # with half the weights the tied autoencoder reconstructs about as well
    assert tied["test_mse"] < 1.25 * untied["test_mse"]
    assert tied["test_mse"] < 0.5 * res["mean_image_mse"]
    soft = res["soft"]
    assert [r["alpha"] for r in soft] == [0.0, 1e-3, 1e-2, 1e-1, 1.0]
    distances = [r["distance"] for r in soft]
    assert all(a > b for a, b in zip(distances, distances[1:]))  # the penalty pulls them together
    assert distances[-1] < 1e-3 * distances[0]
    # some sharing helps B, which has few examples of its own
    assert max(r["acc_b"] for r in soft[1:]) > soft[0]["acc_b"]
    # and pulls A towards B's (shifted) task
    assert soft[-1]["acc_a_on_b"] > soft[0]["acc_a_on_b"]
    for path in res["figures"]:
        with open(path, "rb") as f:
            assert f.read(4) == b"\x89PNG"
