"""examples/vae.py in its reduced mode: it prints both tables, the ELBO improves with training
for both decoders, and it writes its figures (with matplotlib) and results.json."""
import importlib.util
import json
import os

import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                       "vae.py")
pytestmark = pytest.mark.skipif(not os.path.exists(EXAMPLE),
                                reason="examples/ is not next to the tests (installed package)")


def load_example():
    spec = importlib.util.spec_from_file_location("example_vae", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vae_quick(tmp_path, capsys):
    out = tmp_path / "runs" / "vae"
    results = load_example().main(["--quick", "--out", str(out)])
    text = capsys.readouterr().out
    assert "Bernoulli decoder" in text and "Gaussian decoder" in text
    assert "train ELBO" in text and "test KL" in text
    for name in ("Bernoulli", "Gaussian"):
        hist = results[name]
        assert [r["epoch"] for r in hist] == [0, 1, 2, 3]
        first, last = hist[0], hist[-1]
        # ELBO = -(reconstruction + KL), reported separately
        for r in hist:
            assert r["test_elbo"] == pytest.approx(-(r["test_reconstruction"] + r["test_kl"]),
                                                   rel=1e-5, abs=1e-4)
            assert r["test_kl"] >= 0
        # the stated result: training improves the bound on held-out images, by several nats
        assert last["test_elbo"] > first["test_elbo"] + 5, (name, first, last)
        assert last["train_elbo"] > hist[1]["train_elbo"]
    saved = json.loads((out / "results.json").read_text())
    assert saved["Bernoulli"][-1]["test_elbo"] == pytest.approx(results["Bernoulli"][-1]
                                                                ["test_elbo"])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert results["figures"] == []
    else:
        names = sorted(os.path.basename(p) for p in results["figures"])
        assert names == ["interpolation.png", "latent.png", "samples.png"]
        for p in results["figures"]:
            with open(p, "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_vae_quick_from_the_environment(monkeypatch):
    module = load_example()
    assert not module.parse_args([]).quick
    monkeypatch.setenv("PYDL_EXAMPLE_QUICK", "1")
    assert module.parse_args([]).quick
