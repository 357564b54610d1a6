"""Fused multi-tensor optimizer steps (cuda/optim.cuh) on the emulation harness, against
torch.optim's update formulas written here in float64 NumPy. Tensor sizes span empty, 1, prime
and several chunks, so block-to-tensor mapping and chunk edges are exercised."""
import numpy as np
import pytest

SIZES = [1, 0, 4099, 37, 2 * 4096 + 5]  # around the 4096-element chunk


def make(rng, dtype, nstate):
    params = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    grads = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    states = [[(rng.random(n) + 0.1).astype(dtype) for n in SIZES] for _ in range(nstate)]
    return params, grads, states


def table(kernels, params, grads, states):
    return kernels.tensor_table([(p, g, *[s[i] for s in states]) for i, (p, g) in
                                 enumerate(zip(params, grads))])


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


DT = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


@DT
@pytest.mark.parametrize("momentum,dampening,nesterov", [(0.0, 0.0, False), (0.9, 0.1, False),
                                                         (0.9, 0.0, True)])
@pytest.mark.parametrize("first_step", [True, False])
@pytest.mark.parametrize("maximize", [False, True])
def test_sgd(kernels, rng, dtype, momentum, dampening, nesterov, first_step, maximize):
    params, grads, states = make(rng, dtype, 1 if momentum else 0)
    expect_p, expect_buf = [], []
    lr, wd = 0.1, 0.01
    for i, (p, g) in enumerate(zip(params, grads)):
        p64, d = p.astype(np.float64), g.astype(np.float64) * (-1 if maximize else 1)
        d = d + wd * p64
        if momentum:
            buf = d if first_step else momentum * states[0][i] + (1 - dampening) * d
            expect_buf.append(buf)
            d = d + momentum * buf if nesterov else buf
        expect_p.append(p64 - lr * d)
    kernels.sgd_step(table(kernels, params, grads, states), lr, momentum, dampening, wd,
                     nesterov, maximize, first_step)
    for i in range(len(SIZES)):
        np.testing.assert_allclose(params[i], expect_p[i], **tol(dtype))
        if momentum:
            np.testing.assert_allclose(states[0][i], expect_buf[i], **tol(dtype))


@DT
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("step", [1, 7])
def test_adam(kernels, rng, dtype, decoupled, amsgrad, step):
    params, grads, states = make(rng, dtype, 3 if amsgrad else 2)
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.05
    expect = []
    for i, (p, g) in enumerate(zip(params, grads)):
        p64, g64 = p.astype(np.float64), g.astype(np.float64)
        if decoupled:
            p64 = p64 * (1 - lr * wd)
        else:
            g64 = g64 + wd * p64
        m = b1 * states[0][i] + (1 - b1) * g64
        v = b2 * states[1][i] + (1 - b2) * g64 * g64
        vv = np.maximum(states[2][i], v) if amsgrad else v
        denom = np.sqrt(vv) / np.sqrt(1 - b2 ** step) + eps
        expect.append((p64 - lr / (1 - b1 ** step) * m / denom, m, v, vv))
    kernels.adam_step(table(kernels, params, grads, states), lr, b1, b2, eps, wd, step,
                      decoupled, amsgrad)
    for i in range(len(SIZES)):
        np.testing.assert_allclose(params[i], expect[i][0], **tol(dtype))
        np.testing.assert_allclose(states[0][i], expect[i][1], **tol(dtype))
        np.testing.assert_allclose(states[1][i], expect[i][2], **tol(dtype))
        if amsgrad:
            np.testing.assert_allclose(states[2][i], expect[i][3], **tol(dtype))


@DT
def test_adagrad(kernels, rng, dtype):
    params, grads, states = make(rng, dtype, 1)
    lr, lr_decay, wd, eps, step = 0.1, 0.01, 0.02, 1e-10, 4
    expect = []
    for i, (p, g) in enumerate(zip(params, grads)):
        p64 = p.astype(np.float64)
        g64 = g.astype(np.float64) + wd * p64
        s = states[0][i] + g64 * g64
        clr = lr / (1 + (step - 1) * lr_decay)
        expect.append((p64 - clr * g64 / (np.sqrt(s) + eps), s))
    kernels.adagrad_step(table(kernels, params, grads, states), lr, lr_decay, wd, eps, step)
    for i in range(len(SIZES)):
        np.testing.assert_allclose(params[i], expect[i][0], **tol(dtype))
        np.testing.assert_allclose(states[0][i], expect[i][1], **tol(dtype))


@DT
@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop(kernels, rng, dtype, momentum, centered):
    nstate = 1 + (momentum > 0) + centered
    params, grads, states = make(rng, dtype, nstate)
    if centered:  # keep square_avg - grad_avg^2 positive
        states[-1] = [(s * 0.1).astype(dtype) for s in states[-1]]
    lr, alpha, eps, wd = 0.01, 0.99, 1e-8, 0.1
    expect = []
    for i, (p, g) in enumerate(zip(params, grads)):
        p64 = p.astype(np.float64)
        g64 = g.astype(np.float64) + wd * p64
        sq = alpha * states[0][i] + (1 - alpha) * g64 * g64
        if centered:
            ga = alpha * states[-1][i] + (1 - alpha) * g64
            avg = np.sqrt(sq - ga * ga) + eps
        else:
            avg = np.sqrt(sq) + eps
        if momentum:
            buf = momentum * states[1][i] + g64 / avg
            expect.append(p64 - lr * buf)
        else:
            expect.append(p64 - lr * g64 / avg)
    kernels.rmsprop_step(table(kernels, params, grads, states), lr, alpha, eps, wd, momentum,
                         centered)
    for i in range(len(SIZES)):
        np.testing.assert_allclose(params[i], expect[i], **tol(dtype))


@DT
def test_grad_norm_and_scale(kernels, rng, dtype):
    grads = [rng.standard_normal(n).astype(dtype) for n in SIZES]
    t = kernels.tensor_table([(g,) for g in grads])
    total = kernels.sum_squares(t)
    ref = sum(float((g.astype(np.float64) ** 2).sum()) for g in grads)
    np.testing.assert_allclose(float(total), ref, rtol=1e-10)
    before = [g.astype(np.float64) for g in grads]
    kernels.scale_(t, 0.25)
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, 0.25 * b, **tol(dtype))


def test_bad_hyper_parameters_raise(kernels, rng):
    params, grads, states = make(rng, np.float32, 2)
    t = table(kernels, params, grads, states)
    with pytest.raises(ValueError, match="invalid beta"):
        kernels.adam_step(t, 1e-3, 1.0, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="learning rate"):
        kernels.adam_step(t, -1.0, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match="lists"):
        kernels.sgd_step(t, 0.1)  # 4 arrays per tensor, plain SGD takes 2


def test_table_rejects_mismatched_arrays(kernels):
    with pytest.raises(ValueError, match="equal size"):
        kernels.tensor_table([(np.zeros(3, np.float32), np.zeros(4, np.float32))])
