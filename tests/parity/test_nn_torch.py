"""PyTorch as a second reference for pydl.nn: activations, losses (every option), layers with
copied weights, state_dict keys and loading, reprs, default initialisations and gains.
Skipped where torch is not installed (it is never a pydl dependency)."""
import math
import warnings

import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
from pydl.testing import assert_close

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def both(x, grad=True):
    x = np.asarray(x, dtype=np.float64)
    return (pydl.tensor(x.copy(), requires_grad=grad), torch.tensor(x.copy(),
                                                                    requires_grad=grad))


def check_pair(fn_pydl, fn_torch, arrays, grads=None, rtol=1e-10, atol=1e-12):
    """Same forward values and same gradients for the inputs listed in ``grads``."""
    grads = range(len(arrays)) if grads is None else grads
    pairs = [both(a, i in grads) if a is not None else (None, None)
             for i, a in enumerate(arrays)]
    out = fn_pydl(*[p for p, _ in pairs])
    tout = fn_torch(*[t for _, t in pairs])
    assert_close(out, tout.detach().numpy(), rtol=rtol, atol=atol)
    if not grads:
        return
    rng = np.random.default_rng(0)
    g = rng.standard_normal(tout.shape)
    (out * pydl.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    for i in grads:
        p, t = pairs[i]
        assert_close(p.grad, t.grad.numpy(), rtol=rtol, atol=atol, msg=f"input {i}")


ACTIVATIONS = {
    "relu": (F.relu, TF.relu), "sigmoid": (F.sigmoid, torch.sigmoid), "tanh": (F.tanh, torch.tanh),
    "hardtanh": (lambda x: F.hardtanh(x, -0.7, 1.3), lambda x: TF.hardtanh(x, -0.7, 1.3)),
    "softplus": (lambda x: F.softplus(x, 1.5, 2.0), lambda x: TF.softplus(x, 1.5, 2.0)),
    "softplus_neg_beta": (lambda x: F.softplus(x, -1.0), lambda x: TF.softplus(x, -1.0)),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    "elu": (lambda x: F.elu(x, 0.8), lambda x: TF.elu(x, 0.8)),
    "gelu": (F.gelu, TF.gelu),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda x: TF.gelu(x, approximate="tanh")),
    "silu": (F.silu, TF.silu),
    "softmax0": (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0)),
    "softmax1": (lambda x: F.softmax(x, dim=1), lambda x: TF.softmax(x, dim=1)),
    "log_softmax": (lambda x: F.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_match_torch(name):
    x = np.random.default_rng(1).uniform(-4, 4, (5, 7))
    check_pair(*ACTIVATIONS[name], [x])


def test_activations_at_kinks_match_torch():
    x = np.array([0.0, -1.0, 1.0, 20.0, -0.7, 1.3])
    for name in ("relu", "hardtanh", "leaky_relu", "elu", "softplus"):
        check_pair(*ACTIVATIONS[name], [x])


# -- losses ---------------------------------------------------------------------------------------
CE_CASES = [dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
            dict(ignore_index=1), dict(weight=True), dict(weight=True, label_smoothing=0.3,
                                                          ignore_index=0, reduction="mean"),
            dict(weight=True, reduction="none", label_smoothing=0.1)]


@pytest.mark.parametrize("kw", CE_CASES, ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (4,), (2, 4, 3, 2)], ids=str)
def test_cross_entropy_indices_matches_torch(shape, kw):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) * 3
    c = shape[1] if len(shape) > 1 else shape[0]
    tshape = shape[:1] + shape[2:] if len(shape) > 1 else ()
    target = rng.integers(0, c, tshape)
    w = rng.uniform(0.3, 2.0, c)
    kw = dict(kw)
    use_w = kw.pop("weight", False)
    check_pair(lambda a: F.cross_entropy(a, pydl.tensor(target),
                                         weight=pydl.tensor(w) if use_w else None, **kw),
               lambda a: TF.cross_entropy(a, torch.tensor(target),
                                          weight=torch.tensor(w) if use_w else None, **kw), [x])


@pytest.mark.parametrize("kw", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                dict(label_smoothing=0.25), dict(weight=True)], ids=str)
def test_cross_entropy_probabilities_matches_torch(kw):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 4))
    p = rng.dirichlet(np.ones(4), 5)
    w = rng.uniform(0.3, 2.0, 4)
    kw = dict(kw)
    use_w = kw.pop("weight", False)
    check_pair(lambda a, b: F.cross_entropy(a, b, weight=pydl.tensor(w) if use_w else None, **kw),
               lambda a, b: TF.cross_entropy(a, b, weight=torch.tensor(w) if use_w else None,
                                             **kw), [x, p])


def test_cross_entropy_float32_kernel_matches_torch():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((64, 100)) * 5).astype(np.float32)
    t = rng.integers(0, 100, 64)
    a = pydl.tensor(x, requires_grad=True)
    ta = torch.tensor(x, requires_grad=True)
    out = F.cross_entropy(a, pydl.tensor(t), label_smoothing=0.1)
    tout = TF.cross_entropy(ta, torch.tensor(t), label_smoothing=0.1)
    assert_close(out, tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.backward()
    tout.backward()
    assert_close(a.grad, ta.grad.numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_matches_torch(reduction, weighted):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 4))
    t = rng.integers(0, 3, (2, 4))
    t[0, 0] = -100
    w = rng.uniform(0.3, 2.0, 3)
    check_pair(lambda a: F.nll_loss(a, pydl.tensor(t), weight=pydl.tensor(w) if weighted else None,
                                    reduction=reduction),
               lambda a: TF.nll_loss(a, torch.tensor(t),
                                     weight=torch.tensor(w) if weighted else None,
                                     reduction=reduction), [x])


REGRESSION = {
    "mse": (F.mse_loss, TF.mse_loss, {}),
    "l1": (F.l1_loss, TF.l1_loss, {}),
    "smooth_l1": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.4}),
    "huber": (F.huber_loss, TF.huber_loss, {"delta": 0.4}),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", sorted(REGRESSION))
def test_regression_losses_match_torch(name, reduction):
    fp, ft, kw = REGRESSION[name]
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    check_pair(lambda x, y: fp(x, y, reduction=reduction, **kw),
               lambda x, y: ft(x, y, reduction=reduction, **kw), [a, b])
    if name != "smooth_l1":
        w = rng.uniform(0.1, 2.0, (4, 5))
        check_pair(lambda x, y, z: fp(x, y, reduction=reduction, weight=z, **kw),
                   lambda x, y, z: ft(x, y, reduction=reduction, weight=z, **kw), [a, b, w])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_losses_match_torch(reduction):
    rng = np.random.default_rng(7)
    p, t = rng.uniform(0.02, 0.98, (4, 3)), rng.random((4, 3))
    w, pw = rng.uniform(0.2, 2.0, (3,)), rng.uniform(0.5, 3.0, (3,))
    x = rng.standard_normal((4, 3)) * 4
    wp, wt = pydl.tensor(w), torch.tensor(w)
    check_pair(lambda a, b: F.binary_cross_entropy(a, b, weight=wp, reduction=reduction),
               lambda a, b: TF.binary_cross_entropy(a, b, weight=wt, reduction=reduction),
               [p, t])
    check_pair(lambda a, b: F.binary_cross_entropy_with_logits(
                   a, b, weight=wp, reduction=reduction, pos_weight=pydl.tensor(pw)),
               lambda a, b: TF.binary_cross_entropy_with_logits(
                   a, b, weight=wt, reduction=reduction, pos_weight=torch.tensor(pw)), [x, t])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    rng = np.random.default_rng(8)
    x = np.log(rng.dirichlet(np.ones(5), 3))
    p = rng.dirichlet(np.ones(5), 3)
    t = np.log(p) if log_target else p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_pair(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
                   lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target),
                   [x, t])


# -- layers with copied weights -------------------------------------------------------------------
def copy_params(torch_module, pydl_module):
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in torch_module.state_dict().items()}
    pydl_module.double().load_state_dict(sd)
    torch_module.double()


def test_linear_bilinear_embedding_match_torch():
    rng = np.random.default_rng(9)
    for tm, pm, inputs in [
        (torch.nn.Linear(5, 3), nn.Linear(5, 3), [rng.standard_normal((4, 5))]),
        (torch.nn.Bilinear(3, 2, 4), nn.Bilinear(3, 2, 4),
         [rng.standard_normal((6, 3)), rng.standard_normal((6, 2))]),
    ]:
        copy_params(tm, pm)
        pins = [pydl.tensor(a, requires_grad=True) for a in inputs]
        tins = [torch.tensor(a, requires_grad=True) for a in inputs]
        out, tout = pm(*pins), tm(*tins)
        assert_close(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
        out.sum().backward()
        tout.sum().backward()
        for p, t in zip(pins, tins):
            assert_close(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)
        for (name, p), (_, t) in zip(pm.named_parameters(), tm.named_parameters()):
            assert_close(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("kw", [dict(), dict(padding_idx=1), dict(scale_grad_by_freq=True),
                                dict(max_norm=1.5), dict(max_norm=1.0, norm_type=1.0)], ids=str)
def test_embedding_matches_torch(kw):
    tm, pm = torch.nn.Embedding(6, 3, **kw), nn.Embedding(6, 3, **kw)
    copy_params(tm, pm)
    idx = np.array([[1, 4, 1], [0, 1, 5]])
    out, tout = pm(pydl.tensor(idx)), tm(torch.tensor(idx))
    assert_close(out, tout.detach().numpy(), rtol=1e-12)
    g = np.random.default_rng(10).standard_normal(out.shape)
    (out * pydl.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    assert_close(pm.weight.grad, tm.weight.grad.numpy(), rtol=1e-12)
    assert_close(pm.weight, tm.weight.detach().numpy(), rtol=1e-12)  # after max_norm renorm


def test_state_dict_keys_and_loading_match_torch():
    def build(lib):
        return lib.nn.Sequential(lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6), lib.nn.ReLU(),
                                 lib.nn.Dropout(0.2), lib.nn.Linear(6, 3), lib.nn.LogSoftmax(1))

    tm, pm = build(torch), build(pydl)
    assert list(pm.state_dict()) == list(tm.state_dict())
    tm.train()(torch.randn(8, 4))  # non-trivial running statistics
    copy_params(tm, pm)
    x = np.random.default_rng(11).standard_normal((5, 4))
    assert_close(pm.eval()(pydl.tensor(x)), tm.eval()(torch.tensor(x)).detach().numpy(),
                 rtol=1e-10, atol=1e-12)
    # (BatchNorm's own repr is the batch-norm module's business; compare the rest.)
    assert repr(pm[2:]) == repr(tm[2:])


@pytest.mark.parametrize("name", ["Linear(4, 3)", "Linear(4, 3, bias=False)",
                                  "Bilinear(2, 3, 4)", "Identity()", "Flatten()",
                                  "Flatten(0, 2)", "Unflatten(1, (2, 3))", "Embedding(10, 3)",
                                  "Embedding(10, 3, padding_idx=0, max_norm=1.0)", "ReLU()",
                                  "ReLU(inplace=True)", "Sigmoid()", "Tanh()", "Hardtanh()",
                                  "Hardtanh(-2.0, 2.0, True)", "Softplus()",
                                  "Softplus(2.0, 10.0)", "Softmax(dim=1)", "LogSoftmax(dim=1)",
                                  "LeakyReLU()", "LeakyReLU(0.2, True)", "ELU()",
                                  "ELU(0.5, True)", "GELU()", "GELU('tanh')", "SiLU()",
                                  "Dropout()", "Dropout(0.3, True)", "Dropout2d(0.1)",
                                  "CrossEntropyLoss()", "MSELoss()", "BCEWithLogitsLoss()"])
def test_reprs_match_torch(name):
    assert repr(eval("nn." + name)) == repr(eval("torch.nn." + name))


# -- initialisation -------------------------------------------------------------------------------
def test_calculate_gain_matches_torch():
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                 "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert nn.init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    for slope in (0.0, 0.2, math.sqrt(5)):
        assert nn.init.calculate_gain("leaky_relu", slope) == \
            pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope))


@pytest.mark.parametrize("case", [
    ("xavier_uniform_", {}), ("xavier_uniform_", {"gain": 2.0}), ("xavier_normal_", {}),
    ("kaiming_uniform_", {}), ("kaiming_uniform_", {"a": math.sqrt(5)}),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}),
    ("kaiming_normal_", {"nonlinearity": "relu"}), ("orthogonal_", {"gain": 1.5}),
], ids=str)
def test_init_distributions_match_torch(case):
    """Same distribution: the two samples' ranges and standard deviations agree."""
    name, kw = case
    shape = (120, 40, 3)
    pw = getattr(nn.init, name)(pydl.empty(*shape, dtype=pydl.float64), **kw)._data
    tw = getattr(torch.nn.init, name)(torch.empty(*shape, dtype=torch.float64), **kw).numpy()
    n = pw.size
    assert abs(pw.std() / tw.std() - 1) < 8 / math.sqrt(n)
    if "uniform" in name:
        assert abs(np.abs(pw).max() / np.abs(tw).max() - 1) < 0.01


def test_default_layer_init_matches_torch():
    torch.manual_seed(0)
    for pm, tm in [(nn.Linear(80, 300), torch.nn.Linear(80, 300)),
                   (nn.Bilinear(20, 7, 300), torch.nn.Bilinear(20, 7, 300)),
                   (nn.Embedding(300, 50), torch.nn.Embedding(300, 50))]:
        for (name, p), (_, t) in zip(pm.named_parameters(), tm.named_parameters()):
            pv, tv = p._data.astype(np.float64), t.detach().numpy().astype(np.float64)
            assert abs(pv.std() / tv.std() - 1) < 8 / math.sqrt(pv.size), name
            assert abs(pv.mean() - tv.mean()) < 8 * tv.std() / math.sqrt(pv.size), name
            if not isinstance(pm, nn.Embedding):
                assert abs(np.abs(pv).max() / np.abs(tv).max() - 1) < 0.05, name
