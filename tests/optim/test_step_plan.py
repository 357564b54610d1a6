"""Optimizer.step's cached per-group plan (pydl/optim/optimizer.py _StepPlan): reused while the
group's parameters and their arrays stay the same, rebuilt when a parameter's array is replaced
(``p.data = ...``) or the set of parameters with a gradient changes; gradients read afresh at
every step (reallocated, non-contiguous, wrong shape). Every trajectory is checked against a
float64 NumPy reference of the update written here."""
import numpy as np
import pytest

import pydl


def _plan(opt, i=0):
    return opt.__dict__.get("_step_plans", {}).get(id(opt.param_groups[i]))


def _sgd_ref(p, g, buf, lr, momentum):
    """One SGD+momentum step in float64 (PyTorch's formula, dampening 0): returns p, buf."""
    buf = g.copy() if buf is None else momentum * buf + g
    return p - lr * buf, buf


def _adam_ref(p, g, m, v, t, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
    return p - lr / (1 - b1 ** t) * m / denom, m, v


SHAPES = [(1,), (7,), (3, 5), (0,), (2, 1, 13)]


def _params(rng, dtype=np.float64):
    return [pydl.nn.Parameter(pydl.tensor(rng.standard_normal(s).astype(dtype))) for s in SHAPES]


def test_plan_is_reused_and_gradients_are_read_every_step():
    rng = np.random.default_rng(0)
    params = _params(rng)
    ref = [p._data.copy() for p in params]
    bufs = [None] * len(params)
    opt = pydl.optim.SGD(params, lr=0.1, momentum=0.9)
    plans = []
    for step in range(4):
        grads = [rng.standard_normal(p.shape) for p in params]
        for p, g in zip(params, grads):
            p.grad = pydl.tensor(g)  # a new gradient array at every step (zero_grad's None)
        opt.step()
        plans.append(_plan(opt))
        for i, g in enumerate(grads):
            ref[i], bufs[i] = _sgd_ref(ref[i], g, bufs[i], 0.1, 0.9)
        for p, r in zip(params, ref):
            np.testing.assert_allclose(p._data, r, rtol=1e-13, atol=1e-13)
    assert plans[0] is not None and all(p is plans[0] for p in plans)


def test_plan_is_rebuilt_when_a_parameter_array_is_replaced():
    rng = np.random.default_rng(1)
    params = _params(rng)
    opt = pydl.optim.SGD(params, lr=0.05, momentum=0.5)
    g0 = [rng.standard_normal(p.shape) for p in params]
    for p, g in zip(params, g0):
        p.grad = pydl.tensor(g)
    opt.step()
    old_plan = _plan(opt)
    bufs = [g.copy() for g in g0]
    old_array = params[2]._data
    new_value = rng.standard_normal(params[2].shape)
    params[2].data = pydl.tensor(new_value.copy())  # the parameter now lives in a new array
    assert params[2]._data is not old_array
    expected = [p._data.copy() for p in params]
    g1 = [rng.standard_normal(p.shape) for p in params]
    for p, g in zip(params, g1):
        p.grad = pydl.tensor(g)
    snapshot = old_array.copy()
    opt.step()
    assert _plan(opt) is not old_plan
    for i, (p, g) in enumerate(zip(params, g1)):
        want, _ = _sgd_ref(expected[i], g, bufs[i], 0.05, 0.5)
        np.testing.assert_allclose(p._data, want, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(old_array, snapshot)  # the replaced array is left alone


def test_plan_follows_gradients_that_come_and_go():
    rng = np.random.default_rng(2)
    params = _params(rng)
    opt = pydl.optim.Adam(params, lr=1e-2)
    ref = [p._data.copy() for p in params]
    m = [np.zeros(p.shape) for p in params]
    v = [np.zeros(p.shape) for p in params]
    t = [0] * len(params)
    for step, skip in enumerate([None, 1, 1, None, 3]):
        for i, p in enumerate(params):
            p.grad = None if i == skip else pydl.tensor(rng.standard_normal(p.shape))
        grads = [None if p.grad is None else p.grad._data.copy() for p in params]
        opt.step()
        for i, g in enumerate(grads):
            if g is None:  # skipped: parameter and state untouched
                continue
            t[i] += 1
            ref[i], m[i], v[i] = _adam_ref(ref[i], g, m[i], v[i], t[i])
        for i, p in enumerate(params):
            np.testing.assert_allclose(p._data, ref[i], rtol=1e-12, atol=1e-12)
            assert opt.state[p]["step"] == t[i]


def test_non_contiguous_or_wrong_gradient_after_a_plan():
    rng = np.random.default_rng(3)
    params = _params(rng)
    opt = pydl.optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = pydl.tensor(rng.standard_normal(p.shape))
    opt.step()
    assert _plan(opt) is not None
    # A transposed (non-contiguous) gradient: the kernel refuses it, the full path copies it.
    g = rng.standard_normal((5, 3))
    params[2].grad = pydl.tensor(g).t()
    assert not params[2].grad._data.flags.c_contiguous
    before = params[2]._data.copy()
    opt.step()
    np.testing.assert_allclose(params[2]._data, before - 0.1 * g.T, rtol=1e-14)
    # A gradient of the wrong shape: the optimizer's error, and no parameter changes.
    params[2].grad = pydl.tensor(rng.standard_normal((3, 4)))
    snapshot = [p._data.copy() for p in params]
    with pytest.raises(ValueError, match=r"shape \(3, 5\) has a gradient of shape \(3, 4\)"):
        opt.step()
    for p, s in zip(params, snapshot):
        np.testing.assert_array_equal(p._data, s)
    # A float32 gradient for a float64 parameter.
    params[2].grad = pydl.tensor(rng.standard_normal((3, 5)).astype(np.float32))
    with pytest.raises(TypeError, match="gradient of dtype float32"):
        opt.step()


def test_storage_shared_after_a_plan_is_refused():
    rng = np.random.default_rng(4)
    a = pydl.nn.Parameter(pydl.tensor(rng.standard_normal(6)))
    b = pydl.nn.Parameter(pydl.tensor(rng.standard_normal(6)))
    opt = pydl.optim.SGD([a, b], lr=0.1, momentum=0.9)
    for p in (a, b):
        p.grad = pydl.tensor(np.ones(6))
    opt.step()
    assert _plan(opt) is not None
    b.data = a.data  # now two parameters over one storage
    with pytest.raises(ValueError, match="share memory"):
        opt.step()


def test_read_only_parameter_array_after_a_plan_is_refused():
    p = pydl.nn.Parameter(pydl.tensor(np.arange(4.0)))
    opt = pydl.optim.SGD([p], lr=0.1)
    p.grad = pydl.tensor(np.ones(4))
    opt.step()
    frozen = np.arange(4.0)
    frozen.flags.writeable = False
    p._data = frozen
    with pytest.raises(ValueError, match="read-only"):
        opt.step()


def test_load_state_dict_drops_plans_and_continues_like_the_original():
    rng = np.random.default_rng(5)
    params = _params(rng)
    twin = [pydl.nn.Parameter(pydl.tensor(p._data.copy())) for p in params]
    opt = pydl.optim.SGD(params, lr=0.1, momentum=0.9)
    opt2 = pydl.optim.SGD(twin, lr=0.1, momentum=0.9)
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(3)]
    for p, g in zip(params, grads[0]):
        p.grad = pydl.tensor(g)
    opt.step()
    opt2.load_state_dict(opt.state_dict())  # copies the momentum buffers
    for q, p in zip(twin, params):
        q._data[...] = p._data
    assert "_step_plans" not in opt2.__dict__ or not opt2._step_plans
    for gs in grads[1:]:
        for p, q, g in zip(params, twin, gs):
            p.grad, q.grad = pydl.tensor(g), pydl.tensor(g.copy())
        opt.step()
        opt2.step()
    for p, q in zip(params, twin):
        np.testing.assert_array_equal(p._data, q._data)


def test_duplicate_parameter_with_a_plan_is_updated_once():
    p = pydl.nn.Parameter(pydl.tensor(np.zeros(3)))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        opt = pydl.optim.SGD([p, p], lr=1.0)
    for step in range(3):
        p.grad = pydl.tensor(np.ones(3))
        opt.step()
    np.testing.assert_array_equal(p._data, -3.0)
    assert _plan(opt) is not None and _plan(opt).index == [0]


@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_trajectory_matches_torch_with_arrays_swapped_mid_run(impl):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    values = [rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (17,), (1,)]]
    params = [pydl.nn.Parameter(pydl.tensor(v.copy())) for v in values]
    tparams = [torch.nn.Parameter(torch.tensor(v.copy())) for v in values]
    opt = pydl.optim.Adam(params, lr=1e-2, weight_decay=1e-3)
    topt = torch.optim.Adam(tparams, lr=1e-2, weight_decay=1e-3, **{impl: True})
    for step in range(6):
        if step == 3:  # swap one parameter's storage in both
            v = rng.standard_normal((17,)).astype(np.float32)
            params[1].data = pydl.tensor(v.copy())
            tparams[1].data = torch.tensor(v.copy())
        for p, q in zip(params, tparams):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, q.grad = pydl.tensor(g), torch.tensor(g.copy())
        opt.step()
        topt.step()
        for p, q in zip(params, tparams):
            np.testing.assert_allclose(p._data, q.detach().numpy(), rtol=1e-5, atol=1e-6)
