"""examples/visualise_cnn.py in its quick mode shows what it states."""
import importlib.util
import os
import re

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "visualise_cnn.py")
pytestmark = pytest.mark.skipif(not os.path.isfile(EXAMPLE),
                                reason="examples/ is not installed with the wheel")


def _load():
    spec = importlib.util.spec_from_file_location("example_visualise_cnn", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_visualise_cnn_quick(tmp_path, capsys):
    res = _load().main(["--quick", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "the k most salient (|dS_c/dx|)" in out and "k random ink pixels" in out
    assert res["accuracy"] > 0.8
    # the saliency maps point at pixels the class score depends on: blanking the most salient
    # pixels costs far more probability than blanking as many random ink pixels
    assert res["drop_salient"] > 2 * res["drop_random"]
    assert set(res["layers"]) == {"features.0.weight", "features.2.weight",
                                  "classifier.1.weight", "classifier.3.weight",
                                  "classifier.5.weight"}
    # the graph names every parameter and the input, and has one op node per recorded op
    labels = re.findall(r'\[label="([^"\\]*)', res["dot"])
    for name in ("input", "features.0.weight", "classifier.5.bias", "ConvNdBackward",
                 "LinearBackward", "output"):
        assert name in labels, name
    assert os.path.isfile(os.path.join(str(tmp_path), "graph.dot"))
    for path in res["files"]:
        assert os.path.getsize(path) > 0, path
        if path.endswith(".png"):
            with open(path, "rb") as f:
                assert f.read(4) == b"\x89PNG"
