"""Second derivatives of whole models against PyTorch, float64, rtol 1e-7: the Hessian of an MLP
loss w.r.t. a weight matrix, Hessian-vector products over every parameter, and a gradient
penalty's gradient, for an MLP and for a small CNN with batch norm (train mode) and pooling.
Skipped where torch is not installed."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

RNG = np.random.default_rng(1234)


def pair(shape, scale=1.0):
    a = RNG.standard_normal(shape) * scale
    return (pydl.tensor(a, dtype=pydl.float64, requires_grad=True),
            torch.tensor(a, dtype=torch.float64, requires_grad=True))


def close(p, t, rtol=1e-7, atol=1e-10):
    np.testing.assert_allclose(np.asarray(p.detach().numpy()), t.detach().numpy(), rtol=rtol,
                               atol=atol)


def mlp_params():
    return [pair((7, 5), 0.5), pair((7,), 0.1), pair((3, 7), 0.5), pair((3,), 0.1)]


def mlp_loss(lib, x, y, ps, act):
    f = F if lib is pydl else TF
    w1, b1, w2, b2 = ps
    h = act(f.linear(x, w1, b1))
    return f.cross_entropy(f.linear(h, w2, b2), y, label_smoothing=0.1)


ACTS = {
    "tanh": (lambda t: t.tanh(), lambda t: t.tanh()),
    "gelu": (lambda t: F.gelu(t), lambda t: TF.gelu(t)),
    "softplus": (lambda t: F.softplus(t), lambda t: TF.softplus(t)),
}


@pytest.mark.parametrize("act", sorted(ACTS))
def test_mlp_hessian_and_hvp_match_torch(act):
    pact, tact = ACTS[act]
    xp, xt = pair((6, 5))
    yv = RNG.integers(0, 3, 6)
    yp, yt = pydl.tensor(yv), torch.tensor(yv)
    ps = mlp_params()
    pp, tp = [p for p, _ in ps], [t for _, t in ps]

    # Full Hessian w.r.t. the first weight matrix (35 x 35).
    def pf(w):
        return mlp_loss(pydl, xp, yp, [w] + pp[1:], pact)

    def tf(w):
        return mlp_loss(torch, xt, yt, [w] + tp[1:], tact)

    hp = pydl.autograd.functional.hessian(pf, pp[0])
    ht = torch.autograd.functional.hessian(tf, tp[0])
    close(hp, ht)

    # Hessian-vector product over every parameter at once (grad of grad . v).
    vs = [RNG.standard_normal(p.shape) for p in pp]
    gp = pydl.autograd.grad(mlp_loss(pydl, xp, yp, pp, pact), pp, create_graph=True)
    gt = torch.autograd.grad(mlp_loss(torch, xt, yt, tp, tact), tp, create_graph=True)
    dot_p = sum((g * pydl.tensor(v, dtype=pydl.float64)).sum() for g, v in zip(gp, vs))
    dot_t = sum((g * torch.tensor(v)).sum() for g, v in zip(gt, vs))
    for a, b in zip(pydl.autograd.grad(dot_p, pp), torch.autograd.grad(dot_t, tp)):
        close(a, b)


def cnn_loss(lib, x, ps):
    f = F if lib is pydl else TF
    w1, b1, gamma, beta, w2 = ps
    h = f.conv2d(x, w1, b1, padding=1)
    rm, rv = (pydl.zeros(4, dtype=pydl.float64), pydl.ones(4, dtype=pydl.float64)) \
        if lib is pydl else (torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64))
    h = f.batch_norm(h, rm, rv, gamma, beta, training=True)
    h = f.max_pool2d(f.softplus(h), 2)
    h = f.avg_pool2d(h, 2)
    return (f.linear(h.reshape(h.shape[0], -1), w2) ** 2).sum()


def test_small_cnn_with_batch_norm_double_backward_matches_torch():
    xp, xt = pair((3, 2, 8, 8))
    ps = [pair((4, 2, 3, 3), 0.4), pair((4,), 0.1), pair((4,), 0.3), pair((4,), 0.1),
          pair((2, 16), 0.5)]
    ps[2] = (ps[2][0] + 1).detach().requires_grad_(), (ps[2][1] + 1).detach().requires_grad_()
    pp, tp = [p for p, _ in ps], [t for _, t in ps]
    # Gradient penalty: || d loss / d x ||^2, differentiated w.r.t. every parameter and x.
    (gx_p,) = pydl.autograd.grad(cnn_loss(pydl, xp, pp), xp, create_graph=True)
    (gx_t,) = torch.autograd.grad(cnn_loss(torch, xt, tp), xt, create_graph=True)
    close(gx_p, gx_t)
    pen_p, pen_t = (gx_p ** 2).sum(), (gx_t ** 2).sum()
    for a, b in zip(pydl.autograd.grad(pen_p, pp + [xp]), torch.autograd.grad(pen_t, tp + [xt])):
        close(a, b)
    # Hessian-vector product w.r.t. the conv weight.
    v = RNG.standard_normal((4, 2, 3, 3))
    _, hv_p = pydl.autograd.functional.hvp(
        lambda w: cnn_loss(pydl, xp.detach(), [w] + [p.detach() for p in pp[1:]]),
        pp[0].detach(), pydl.tensor(v, dtype=pydl.float64))
    _, hv_t = torch.autograd.functional.hvp(
        lambda w: cnn_loss(torch, xt.detach(), [w] + [t.detach() for t in tp[1:]]),
        tp[0].detach(), torch.tensor(v))
    close(hv_p, hv_t)
