"""pydl.viz: autograd graph as DOT, feature maps, saliency (checked against gradients written by
hand and against torch), weight/gradient histograms, image grids, and the plotting wrappers."""
import os
import re
import shutil
import sys

import numpy as np
import pytest

import pydl
from pydl import nn, viz


def _parse_dot(text):
    nodes = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)"', text, re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+);", text, re.M)
    return nodes, edges


def test_autograd_graph_structure():
    lin = nn.Linear(3, 2)
    x = pydl.randn(4, 3)
    y = lin(x).relu().sum()
    text = viz.autograd_graph(y, lin)
    assert text.startswith("digraph autograd {") and text.rstrip().endswith("}")
    nodes, edges = _parse_dot(text)
    by_label = {v: k for k, v in nodes.items()}
    assert sorted(nodes.values()) == sorted([
        "output\\n()", "SumBackward", "ReluBackward", "LinearBackward",
        "weight\\n(2, 3)", "bias\\n(2)"])
    e = set(edges)
    assert (by_label["SumBackward"], by_label["output\\n()"]) in e
    assert (by_label["ReluBackward"], by_label["SumBackward"]) in e
    assert (by_label["LinearBackward"], by_label["ReluBackward"]) in e
    assert (by_label["weight\\n(2, 3)"], by_label["LinearBackward"]) in e
    assert (by_label["bias\\n(2)"], by_label["LinearBackward"]) in e
    assert len(edges) == 5  # x does not require grad: not in the graph


def test_autograd_graph_shared_leaf_is_one_node_with_two_edges():
    enc = nn.Linear(4, 2)
    dec = nn.TiedLinear(enc)
    model = nn.Sequential(enc, dec)
    out = model(pydl.randn(3, 4))
    nodes, edges = _parse_dot(viz.autograd_graph(out, model, show_shapes=False))
    weights = [k for k, v in nodes.items() if v == "0.weight"]
    assert len(weights) == 1
    assert sum(1 for a, _ in edges if a == weights[0]) == 2
    # unnamed leaves and several outputs
    a = pydl.randn(2, requires_grad=True)
    text = viz.autograd_graph([a * 2, a + 1, a])
    nodes, edges = _parse_dot(text)
    assert sum(v.startswith("output") for v in nodes.values()) == 3
    assert list(nodes.values()).count("tensor\\n(2)") == 1


def test_autograd_graph_counts_ops_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    w = rng.normal(size=(4, 5))
    ours = pydl.tensor(w, requires_grad=True)
    out = ((pydl.tensor(x) @ ours).tanh() * 2 + 1).exp().mean()
    nodes, edges = _parse_dot(viz.autograd_graph(out, {"w": ours}))
    n_ops = sum(v.endswith("Backward") for v in nodes.values())
    tw = torch.tensor(w, requires_grad=True)
    tout = ((torch.tensor(x) @ tw).tanh() * 2 + 1).exp().mean()
    seen, stack = set(), [tout.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        stack.extend(f for f, _ in fn.next_functions)
    torch_ops = [f for f in seen if type(f).__name__ != "AccumulateGrad"]
    assert n_ops == len(torch_ops) == 6  # mm, tanh, mul, add, exp, mean


def test_autograd_graph_errors():
    with pytest.raises(ValueError, match="no graph"):
        viz.autograd_graph(pydl.randn(2) * 2)
    with pytest.raises(TypeError):
        viz.autograd_graph("x")


def test_render_dot(tmp_path, monkeypatch):
    a = pydl.randn(2, requires_grad=True)
    text = viz.autograd_graph((a * a).sum(), {"a": a})
    if shutil.which("dot") is not None:
        svg = viz.render_dot(text, str(tmp_path / "g.svg"))
        with open(svg) as f:
            content = f.read()
        assert "<svg" in content and "MulBackward" in content
        png = viz.render_dot(text, str(tmp_path / "g.png"))
        with open(png, "rb") as f:
            assert f.read(4) == b"\x89PNG"
        with pytest.raises(RuntimeError, match="dot -Tsvg failed"):
            viz.render_dot("digraph { a -> }", str(tmp_path / "bad.svg"))
        assert not os.path.exists(tmp_path / "bad.svg")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert viz.render_dot(text, str(tmp_path / "none.svg")) is None
    assert not os.path.exists(tmp_path / "none.svg")


# -- feature maps and saliency ------------------------------------------------------------------

def test_feature_maps_equal_the_layers_applied_in_turn():
    model = pydl.models.LeNet5(1, 10, input_size=8)
    model.train()
    x = pydl.randn(3, 1, 8, 8)
    maps = viz.feature_maps(model, "features.1", x)
    with pydl.no_grad():
        ref = model.features[1](model.features[0](x)).numpy()
    np.testing.assert_array_equal(maps, ref)
    assert model.training
    assert viz.feature_maps(model, model.features[0], x).shape == (3, 6, 8, 8)
    with pytest.raises(ValueError, match="no submodule named 'nope'"):
        viz.feature_maps(model, "nope", x)


def test_saliency_of_a_linear_model_is_the_weight_row():
    rng = np.random.default_rng(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).double()
    x = rng.normal(size=(5, 1, 3, 4))
    target = np.array([0, 3, 1, 1, 2])
    g, cls = viz.input_gradient(model, x, target)
    W = model[1].weight.detach().numpy()
    np.testing.assert_allclose(g, W[target].reshape(5, 1, 3, 4), rtol=1e-12)
    np.testing.assert_array_equal(cls, target)
    np.testing.assert_allclose(viz.saliency(model, x, target), np.abs(W[target]).reshape(5, 3, 4),
                               rtol=1e-12)
    assert all(p.grad is None for p in model.parameters())  # parameters untouched


def test_saliency_of_a_tanh_mlp_against_the_chain_rule_by_hand():
    rng = np.random.default_rng(2)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    x = rng.normal(size=(7, 6))
    W1, b1 = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    W2, b2 = model[2].weight.detach().numpy(), model[2].bias.detach().numpy()
    h = np.tanh(x @ W1.T + b1)
    scores = h @ W2.T + b2
    pred = scores.argmax(1)
    # dS_c/dx = W1^T diag(1 - h^2) W2[c]
    ref = np.stack([W1.T @ ((1 - h[i] ** 2) * W2[pred[i]]) for i in range(7)])
    g, cls = viz.input_gradient(model, x)  # default: the predicted class
    np.testing.assert_array_equal(cls, pred)
    np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(viz.saliency(model, x), np.abs(ref), rtol=1e-10, atol=1e-14)
    g1, _ = viz.input_gradient(model, x[:1], 2)  # an int target
    np.testing.assert_allclose(g1[0], W1.T @ ((1 - h[0] ** 2) * W2[2]), rtol=1e-10)
    with pytest.raises(ValueError, match=r"target classes must lie in \[0, 3\)"):
        viz.input_gradient(model, x, 3)


def test_saliency_of_lenet_against_torch():
    torch = pytest.importorskip("torch")
    model = pydl.models.LeNet5(1, 10, input_size=8).double()
    x = np.random.default_rng(3).normal(size=(4, 1, 8, 8))
    ours = viz.saliency(model, x)
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(256, 120), torch.nn.ReLU(),
        torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10)).double()
    sd = model.state_dict()
    names = ["features.0", "features.2", "classifier.1", "classifier.3", "classifier.5"]
    layers = [tm[0], tm[2], tm[6], tm[8], tm[10]]
    with torch.no_grad():
        for name, layer in zip(names, layers):
            layer.weight.copy_(torch.tensor(sd[name + ".weight"].numpy()))
            layer.bias.copy_(torch.tensor(sd[name + ".bias"].numpy()))
    xt = torch.tensor(x, requires_grad=True)
    scores = tm(xt)
    scores.gather(1, scores.argmax(1, keepdim=True)).sum().backward()
    np.testing.assert_allclose(ours, xt.grad.abs().amax(1).numpy(), rtol=1e-9, atol=1e-13)


# -- histograms -----------------------------------------------------------------------------------

def test_histogram_logger_records_numpy_histograms_through_fit():
    from pydl.data import DataLoader, TensorDataset
    from pydl.train import fit

    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=40)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    snapshots = []

    class Snap:
        def on_epoch_end(self, epoch, logs, m):
            snapshots.append({n: (p.detach().numpy().copy(), p.grad.numpy().copy())
                              for n, p in m.named_parameters()})

    logger = viz.HistogramLogger(bins=7)
    fit(model, nn.CrossEntropyLoss(), pydl.optim.SGD(model.parameters(), lr=0.1),
        DataLoader(TensorDataset(X, y), batch_size=16), epochs=3, callbacks=[logger, Snap()],
        progress=False)
    assert list(logger.records) == ["0.weight", "2.weight"]  # biases left out by default
    for name, recs in logger.records.items():
        assert [r["epoch"] for r in recs] == [0, 1, 2]
        for rec, snap in zip(recs, snapshots):
            w, g = snap[name]
            for key, ref in (("weight", w), ("grad", g)):
                counts, edges = rec[key]
                rc, re_ = np.histogram(ref.astype(np.float64).ravel(), bins=7)
                np.testing.assert_array_equal(counts, rc)
                np.testing.assert_allclose(edges, re_)
                assert counts.sum() == ref.size
            counts, edges = rec["grad_log10"]
            g64 = g.astype(np.float64).ravel()
            rc, re_ = np.histogram(np.log10(np.abs(g64[g64 != 0])), bins=7, range=(-9, 1))
            np.testing.assert_array_equal(counts, rc)
            np.testing.assert_allclose(edges, re_)
            assert rec["grad_norm"] == pytest.approx(float(np.linalg.norm(g)), rel=1e-6)
            assert rec["weight_std"] == pytest.approx(float(w.std()), rel=1e-5)
    with pytest.raises(ValueError, match="no parameters named"):
        viz.HistogramLogger(names=["x"]).record(0, model)


# -- grids ----------------------------------------------------------------------------------------

def test_make_grid_against_numpy_layout():
    rng = np.random.default_rng(5)
    imgs = rng.random((5, 1, 3, 4)).astype(np.float32)
    grid = viz.make_grid(imgs, nrow=3, padding=2, pad_value=0.5).numpy()
    # torchvision: rows = ceil(5 / 3) = 2; height 2 * (3 + 2) + 2, width 3 * (4 + 2) + 2
    assert grid.shape == (3, 12, 20)
    ref = np.full((12, 20), 0.5, np.float32)
    for k in range(5):
        r, c = divmod(k, 3)
        ref[2 + 5 * r:2 + 5 * r + 3, 2 + 6 * c:2 + 6 * c + 4] = imgs[k, 0]
    for ch in range(3):
        np.testing.assert_array_equal(grid[ch], ref)
    norm = viz.make_grid(imgs * 4 - 1, nrow=3, normalize=True).numpy()
    lo, hi = (imgs * 4 - 1).min(), (imgs * 4 - 1).max()
    np.testing.assert_allclose(norm[0, 2:5, 2:6], (imgs[0, 0] * 4 - 1 - lo) / (hi - lo),
                               rtol=1e-5)
    assert viz.make_grid(imgs[:1]).shape == (3, 3, 4)  # one image: no padding, as torchvision
    with pytest.raises(ValueError, match="expected images"):
        viz.make_grid(np.zeros((2, 2, 2, 2, 2)))


def test_make_grid_against_torchvision():
    torch = pytest.importorskip("torch")
    tv_utils = pytest.importorskip("torchvision.utils")
    imgs = np.random.default_rng(6).random((7, 3, 5, 6)).astype(np.float32)
    for kw in ({}, {"nrow": 3, "padding": 1}, {"normalize": True, "scale_each": True}):
        ref = tv_utils.make_grid(torch.tensor(imgs), **kw).numpy()
        np.testing.assert_allclose(viz.make_grid(imgs, **kw).numpy(), ref, rtol=1e-6)


# -- plotting (needs matplotlib) ------------------------------------------------------------------

def _is_png(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x89PNG"


def test_plots_write_png_files(tmp_path):
    pytest.importorskip("matplotlib")
    model = pydl.models.LeNet5(1, 10, input_size=8)
    x = pydl.randn(4, 1, 8, 8)
    paths = [
        viz.plot_filters(model.features[0], str(tmp_path / "f.png")),
        viz.plot_filters(model.features[2].weight, str(tmp_path / "f2.png"), ncols=12),
        viz.plot_feature_maps(viz.feature_maps(model, "features.1", x), str(tmp_path / "m.png")),
        viz.plot_saliency(x, viz.saliency(model, x), str(tmp_path / "s.png"), labels="abcd"),
        viz.save_image_grid(x, str(tmp_path / "g.png"), nrow=2),
        viz.reconstruction_grid(x.reshape(4, 64), x.reshape(4, 64) * 0.5,
                                str(tmp_path / "sub" / "r.png"),
                                extra_rows={"noisy": x.reshape(4, 64) + 1}),
    ]
    logger = viz.HistogramLogger()
    logger.record(0, model)
    paths.append(viz.plot_histograms(logger, str(tmp_path / "h.png")))
    for p in paths:
        assert _is_png(p), p
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["f.png", "f2.png", "m.png", "s.png", "g.png", "h.png", "sub"])  # no temporary files
    with pytest.raises(ValueError, match="not a square image"):
        viz.reconstruction_grid(np.zeros((2, 10)), np.zeros((2, 10)), str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="recorded nothing"):
        viz.plot_histograms(viz.HistogramLogger(), str(tmp_path / "x.png"))


def test_plotting_without_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"plot_filters .*pip install 'pydl-nn\[plot\]'"):
        viz.plot_filters(np.zeros((2, 1, 3, 3)), str(tmp_path / "x.png"))
    # the computing parts need no matplotlib
    assert viz.make_grid(np.zeros((2, 1, 2, 2))).shape == (3, 6, 10)


def test_import_pydl_does_not_load_matplotlib(tmp_path):
    import subprocess

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pydl.__file__)))  # the pydl under test
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    code = ("import sys, pydl; pydl.viz.make_grid([[0.0]]); pydl.ensemble.Bagging; "
            "print('matplotlib' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
