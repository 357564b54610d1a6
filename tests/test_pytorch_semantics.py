"""PyTorch behaviours that pydl got silently wrong (issue #20's first list): each test fails on
the code before the fix."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.testing import assert_close


def test_clip_grad_norm_clips_parameters_given_as_a_generator():
    model = nn.Linear(4, 3)
    for p in model.parameters():
        p.grad = pydl.ones(*p.shape) * 10
    total = nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # a generator, as scripts pass it
    assert_close(total, 10 * np.sqrt(15), rtol=1e-6)
    after = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in model.parameters()))
    assert after == pytest.approx(1.0, rel=1e-4)


def test_clip_grad_value_accepts_a_generator():
    model = nn.Linear(2, 2)
    for p in model.parameters():
        p.grad = pydl.ones(*p.shape) * 5
    nn.utils.clip_grad_value_((p for p in model.parameters()), 0.5)
    assert all(float(p.grad.numpy().max()) == 0.5 for p in model.parameters())


@pytest.mark.parametrize("make", [
    lambda x: x.sum() > 0,
    lambda x: x.sum() == x.sum(),
    lambda x: pydl.isnan(x.sum()),
    lambda x: pydl.isinf(x.sum()),
    lambda x: pydl.isfinite(x.sum()),
    lambda x: (x > 0).all(),
    lambda x: (x > 0).any(),
    lambda x: ~(x.sum() > 0),
])
def test_zero_dim_results_are_cpu_tensors(make):
    x = pydl.tensor([1.0, -2.0, 3.0])
    r = make(x)
    assert r.shape == () and r.device == "cpu"
    assert isinstance(r.numpy(), np.ndarray)
    assert isinstance(r.item(), bool)
    repr(r)
    assert pydl.where(r, x, 0.0).shape == (3,)


def test_zero_dim_tensor_used_twice_backpropagates():
    x = pydl.tensor([1.0, 2.0, 4.0], requires_grad=True)
    y = x.mean()
    (y * y).backward()
    assert_close(x.grad, np.full(3, 2 * 7 / 3 / 3), rtol=1e-6)
    x.grad = None
    s = x.sum()
    (s + s).backward()
    assert_close(x.grad, np.full(3, 2.0))


def test_pow_zero_exponent_gradient_is_zero_at_zero():
    x = pydl.tensor([0.0, 2.0], requires_grad=True)
    (x ** 0).sum().backward()
    assert_close(x.grad, [0.0, 0.0])
    e = pydl.tensor([0.0, 1.0])
    x.grad = None
    (x ** e).sum().backward()
    assert_close(x.grad, [0.0, 1.0])


def test_user_defined_optimizer_then_scheduler_gives_no_false_warning():
    import warnings

    class PlainSGD(pydl.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, dict(lr=lr))

        def step(self, closure=None):
            with pydl.no_grad():
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            p.sub_(p.grad * group["lr"])

    w = pydl.tensor([1.0, 2.0], requires_grad=True)
    opt = PlainSGD([w])
    sched = pydl.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    (w * w).sum().backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        sched.step()
    assert_close(w, [0.8, 1.6])
    assert opt.param_groups[0]["lr"] == 0.05
    opt2 = PlainSGD([pydl.tensor([1.0], requires_grad=True)])
    sched2 = pydl.optim.lr_scheduler.StepLR(opt2, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        sched2.step()  # the genuine mistake is still reported


def test_gradient_of_a_zero_dim_input_reached_twice_is_an_array():
    x = pydl.tensor(2.0, dtype=pydl.float64, requires_grad=True)
    (g,) = pydl.autograd.grad(x * x, x)  # two paths into x: the engine adds 0-d gradients
    assert isinstance(g.numpy(), np.ndarray) and float(g) == 4.0


def test_numpy_scalars_keep_their_dtype():
    assert pydl.tensor(np.float64(1.5)).dtype == pydl.float64
    assert pydl.tensor(np.int32(3)).dtype == pydl.int32
    assert pydl.tensor(1.5).dtype == pydl.float32


def test_tensor_from_a_list_with_a_dtype_converts_once():
    assert pydl.tensor([1e-17], dtype=pydl.float64).item() == 1e-17  # not via float32
    assert pydl.tensor([[0.1, 0.2]], dtype=pydl.float64).tolist() == [[0.1, 0.2]]
    assert pydl.tensor([1.5]).dtype == pydl.float32
