"""Weight averaging: ExponentialMovingAverage and AveragedModel (SWA running mean, EMA through
the fused multi-tensor lerp) against NumPy recurrences."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.optim import swa_utils


class Net(nn.Module):
    def __init__(self, dtype=np.float32):
        super().__init__()
        rng = np.random.default_rng(0)
        self.weight = nn.Parameter(pydl.tensor(rng.standard_normal((4, 3)).astype(dtype)))
        self.bias = nn.Parameter(pydl.tensor(rng.standard_normal(4).astype(dtype)))
        self.register_buffer("count", pydl.tensor(np.array(0, np.int64)))

    def forward(self, x):
        return x @ self.weight.T + self.bias


def perturb(model, rng, t):
    with pydl.no_grad():
        for p in model.parameters():
            p._data[...] = rng.standard_normal(p.shape).astype(p.dtype) * (1 + t)
        model.count._data[...] = t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ema_matches_recurrence_and_evaluates_with_averages(dtype):
    model = Net(dtype)
    ema = swa_utils.ExponentialMovingAverage(model, decay=0.9)
    expected = [p._data.astype(np.float64) for p in model.parameters()]
    rng = np.random.default_rng(1)
    for t in range(25):
        perturb(model, rng, t)
        ema.update()
        expected = [0.9 * e + 0.1 * p._data for e, p in zip(expected, model.parameters())]
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for s, e in zip(ema.shadow_params, expected):
        np.testing.assert_allclose(s._data, e, rtol=rtol, atol=rtol)
    current = [p._data.copy() for p in model.parameters()]
    x = pydl.tensor(np.ones((2, 3), dtype))
    with ema.average_parameters():
        for p, e in zip(model.parameters(), expected):
            np.testing.assert_allclose(p._data, e, rtol=rtol, atol=rtol)
        y_avg = model(x)._data.copy()
    for p, c in zip(model.parameters(), current):
        np.testing.assert_array_equal(p._data, c)
    np.testing.assert_allclose(y_avg, np.ones((2, 3)) @ expected[0].T + expected[1], rtol=1e-4)


def test_ema_warmup_copy_to_and_state_dict():
    model = Net(np.float64)
    ema = swa_utils.ExponentialMovingAverage(model.parameters(), decay=0.99,
                                             use_num_updates=True)
    expected = [p._data.copy() for p in model.parameters()]
    rng = np.random.default_rng(2)
    for t in range(5):
        perturb(model, rng, t)
        d = min(0.99, (1 + (t + 1)) / (10 + (t + 1)))
        assert ema.current_decay() == d
        ema.update()
        expected = [d * e + (1 - d) * p._data for e, p in zip(expected, model.parameters())]
    state = ema.state_dict()
    other = swa_utils.ExponentialMovingAverage(Net(np.float64), decay=0.5)
    other.load_state_dict(state)
    assert other.decay == 0.99 and other.num_updates == 5
    other.copy_to(model)
    for p, e in zip(model.parameters(), expected):
        np.testing.assert_allclose(p._data, e, rtol=1e-12)


def test_ema_errors():
    with pytest.raises(ValueError, match="Invalid decay value 1.5"):
        swa_utils.ExponentialMovingAverage(Net(), decay=1.5)
    ema = swa_utils.ExponentialMovingAverage(Net())
    with pytest.raises(RuntimeError, match="without store"):
        ema.restore()
    with pytest.raises(ValueError, match="got 1 parameters, the average holds 2"):
        ema.update([nn.Parameter(pydl.zeros(3))])


def test_averaged_model_swa_is_the_running_mean():
    model = Net(np.float64)
    swa = swa_utils.AveragedModel(model)
    snapshots = []
    rng = np.random.default_rng(3)
    for t in range(21):
        perturb(model, rng, t)
        swa.update_parameters(model)
        snapshots.append([p._data.copy() for p in model.parameters()])
    assert int(swa.n_averaged.item()) == 21
    for i, p in enumerate(swa.module.parameters()):
        np.testing.assert_allclose(p._data, np.mean([s[i] for s in snapshots], axis=0),
                                   rtol=1e-12)
    assert int(swa.module.count.item()) == 20  # buffers copied, not averaged
    x = pydl.tensor(np.ones((1, 3)))
    np.testing.assert_allclose(swa(x)._data, swa.module(x)._data)


@pytest.mark.parametrize("use_multi", [True, False])
def test_averaged_model_ema(use_multi):
    model = Net(np.float32)
    fn = dict(multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.8)) if use_multi else \
        dict(avg_fn=swa_utils.get_ema_avg_fn(0.8))
    ema = swa_utils.AveragedModel(model, use_buffers=True, **fn)
    rng = np.random.default_rng(4)
    expected = None
    for t in range(20):
        perturb(model, rng, t)
        ema.update_parameters(model)
        params = [p._data.astype(np.float64) for p in model.parameters()]
        expected = params if expected is None else \
            [0.8 * e + 0.2 * p for e, p in zip(expected, params)]
    for p, e in zip(ema.module.parameters(), expected):
        np.testing.assert_allclose(p._data, e, rtol=1e-5, atol=1e-5)
    # use_buffers=True averages the integer buffer too (through NumPy, rounded toward zero).
    assert ema.module.count.dtype == np.int64


def test_averaged_model_rejects_two_rules():
    with pytest.raises(ValueError, match="Only one of avg_fn and multi_avg_fn"):
        swa_utils.AveragedModel(Net(), avg_fn=swa_utils.get_swa_avg_fn(),
                                multi_avg_fn=swa_utils.get_swa_multi_avg_fn())


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swalr_anneals_to_swa_lr(strategy):
    p = nn.Parameter(pydl.zeros(1))
    opt = pydl.optim.SGD([p], lr=1.0)
    s = swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=4, anneal_strategy=strategy)
    lrs = [s.get_last_lr()[0]]
    for _ in range(7):
        opt.step()
        s.step()
        lrs.append(s.get_last_lr()[0])

    def alpha(t):
        return (1 - np.cos(np.pi * t)) / 2 if strategy == "cos" else t

    # Closed form: lr_k = swa_lr * alpha(k / E) + lr_0 * (1 - alpha(k / E)), held after E.
    want = [0.1 * alpha(min(k, 4) / 4) + 1.0 * (1 - alpha(min(k, 4) / 4)) for k in range(8)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_strategy="step")


class FakeBatchNorm(nn.Module):
    """Just enough of a batch-norm layer for update_bn: running stats, momentum (None means a
    cumulative average), reset_running_stats."""

    def __init__(self):
        super().__init__()
        self.momentum = 0.1
        self.register_buffer("running_mean", pydl.tensor(np.zeros(2)))
        self.register_buffer("num_batches_tracked", pydl.tensor(np.array(0, np.int64)))

    def reset_running_stats(self):
        self.running_mean._data[...] = 0
        self.num_batches_tracked._data[...] = 0

    def forward(self, x):
        if self.training:
            n = int(self.num_batches_tracked.item()) + 1
            m = 1.0 / n if self.momentum is None else self.momentum
            self.running_mean._data[...] = (1 - m) * self.running_mean._data + \
                m * x._data.mean(axis=0)
            self.num_batches_tracked._data[...] = n
        return x


def test_update_bn_recomputes_running_statistics():
    model = nn.Sequential(FakeBatchNorm())
    model.eval()
    model[0].running_mean._data[...] = 99.0
    batches = [(pydl.tensor(np.full((3, 2), float(v))), None) for v in (1.0, 2.0, 6.0)]
    swa_utils.update_bn(batches, model)
    np.testing.assert_allclose(model[0].running_mean._data, 3.0)  # the mean over all batches
    assert model[0].momentum == 0.1 and not model.training
