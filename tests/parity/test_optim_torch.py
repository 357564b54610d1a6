"""pydl.optim against torch.optim (when PyTorch is installed): the same trajectories for every
optimizer and option, the same learning-rate sequences, the same clipping."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn, optim

torch = pytest.importorskip("torch")

SHAPES = [(3, 5), (7,), (1,), (2, 3, 4)]

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", OPTIMIZERS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_same_trajectory_as_torch(name, kwargs, dtype):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    mine = [nn.Parameter(pydl.tensor(a.copy())) for a in init]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt = getattr(optim, name)(mine, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    for step in range(30):
        for m, t in zip(mine, theirs):
            g = rng.standard_normal(m.shape).astype(dtype)
            m.grad = pydl.tensor(g)
            t.grad = torch.from_numpy(g.copy())
        if step % 7 == 3:  # a parameter without gradient this step
            mine[1].grad = theirs[1].grad = None
        opt.step()
        topt.step()
    tol = dict(rtol=1e-11, atol=1e-13) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m._data, t.detach().numpy(), **tol)
    mine_state = opt.state_dict()["state"]
    torch_state = topt.state_dict()["state"]
    assert sorted(mine_state) == sorted(torch_state)
    for i in torch_state:
        assert sorted(mine_state[i]) == sorted(torch_state[i])
        for key, value in torch_state[i].items():
            if key == "step":
                assert mine_state[i][key] == float(value)
            else:
                np.testing.assert_allclose(mine_state[i][key]._data, value.numpy(), **tol)


SCHEDULERS = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=6)),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01)),
    ("ConstantLR", dict(factor=0.4, total_iters=3)),
]


@pytest.mark.parametrize("name,kwargs", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_same_lr_sequence_as_torch(name, kwargs):
    def sequence(lib, opt_cls, params):
        opt = opt_cls([{"params": [params[0]], "lr": 0.1}, {"params": [params[1]], "lr": 0.02}])
        s = getattr(lib.optim.lr_scheduler, name)(opt, **kwargs)
        seq = [s.get_last_lr()]
        for _ in range(24):
            opt.step()
            s.step()
            seq.append(s.get_last_lr())
        return np.array(seq, dtype=np.float64)

    mine = sequence(pydl, optim.SGD, [nn.Parameter(pydl.zeros(1)) for _ in range(2)])
    theirs = sequence(torch, torch.optim.SGD,
                      [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)])
    np.testing.assert_allclose(mine, theirs, rtol=1e-14)


def test_same_plateau_reductions_as_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.97, 0.5, 0.5, 0.49999, 0.6, 0.6, 0.6, 0.6]

    def sequence(lib, opt):
        s = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=1, cooldown=1,
                                                     min_lr=0.005)
        out = []
        for m in metrics:
            s.step(m)
            out.append(s.get_last_lr()[0])
        return out

    mine = sequence(pydl, optim.SGD([nn.Parameter(pydl.zeros(1))], lr=0.1))
    theirs = sequence(torch, torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1))
    assert mine == pytest.approx(theirs, rel=1e-15)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_same_clipping_as_torch(norm_type):
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(s).astype(np.float32) * 3 for s in SHAPES]
    mine = [nn.Parameter(pydl.zeros(*s)) for s in SHAPES]
    theirs = [torch.nn.Parameter(torch.zeros(s)) for s in SHAPES]
    for m, t, g in zip(mine, theirs, grads):
        m.grad = pydl.tensor(g.copy())
        t.grad = torch.from_numpy(g.copy())
    n1 = pydl.nn.utils.clip_grad_norm_(mine, 2.0, norm_type)
    n2 = torch.nn.utils.clip_grad_norm_(theirs, 2.0, norm_type)
    np.testing.assert_allclose(float(n1), float(n2), rtol=1e-6)
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m.grad._data, t.grad.numpy(), rtol=1e-5, atol=1e-7)
    pydl.nn.utils.clip_grad_value_(mine, 0.1)
    torch.nn.utils.clip_grad_value_(theirs, 0.1)
    for m, t in zip(mine, theirs):  # entries within the bounds keep the norm clip's rounding
        np.testing.assert_allclose(m.grad._data, t.grad.numpy(), rtol=1e-5, atol=1e-7)
        assert np.abs(m.grad._data).max() <= np.float32(0.1)
