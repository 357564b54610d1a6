"""PyTorch as a second reference for the core ops: same forward values and same gradients.
Skipped where torch is not installed (it is never a pydl dependency)."""
import numpy as np
import pytest

import pydl
from pydl.testing import assert_close

torch = pytest.importorskip("torch")

CASES = {
    "add_broadcast": lambda m, a, b: a + b[0],
    "mul_div": lambda m, a, b: a * b / (b.abs() + 1),
    "pow": lambda m, a, b: (a.abs() + 0.5) ** b,
    "exp_log": lambda m, a, b: (a.exp() + 1).log(),
    "tanh_sigmoid": lambda m, a, b: a.tanh() * b.sigmoid(),
    "relu_clamp": lambda m, a, b: a.relu() + b.clamp(-0.5, 0.5),
    "sum_mean": lambda m, a, b: a.sum(1) + b.mean(1),
    "var_std": lambda m, a, b: a.var(1) + b.std(1),
    "max_dim": lambda m, a, b: a.max(1)[0] + b.min(1)[0],
    "logsumexp": lambda m, a, b: m.logsumexp(a * 3, 1),
    "norm": lambda m, a, b: m.norm(a, dim=1) * b[:, 0].sum(),
    "matmul": lambda m, a, b: a @ b.T,
    "transpose_reshape": lambda m, a, b: a.transpose(0, 1).reshape(-1) * 2,
    "index": lambda m, a, b: a[[0, 2, 2], 1:] * b[1:2, :-1],
    "cat_stack": lambda m, a, b: m.stack([m.cat([a, b], 0), m.cat([b, a], 0)], 1),
    "where": lambda m, a, b: m.where(a > 0, a, b * 2),
    "prod": lambda m, a, b: a.prod(1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_match_torch(name):
    fn = CASES[name]
    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    a, b = (pydl.tensor(v, requires_grad=True) for v in (a_np, b_np))
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a_np, b_np))
    out, tout = fn(pydl, a, b), fn(torch, ta, tb)
    assert_close(out, tout.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(tout.shape)
    out.backward(pydl.tensor(g))
    tout.backward(torch.tensor(g))
    for ours, theirs in ((a, ta), (b, tb)):
        if theirs.grad is None:  # input unused by this case
            assert ours.grad is None
        else:
            assert_close(ours.grad, theirs.grad.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_torch(mode):
    x = np.random.default_rng(1).standard_normal((2, 3, 5, 6))
    pad = (2, 1, 1, 3)
    out = pydl.nn.functional.pad(pydl.tensor(x), pad, mode=mode)
    ref = torch.nn.functional.pad(torch.tensor(x), pad, mode=mode)
    assert_close(out, ref.numpy())
