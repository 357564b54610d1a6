"""pydl.optim optimizers against float64 NumPy implementations of their formulas
(tests/optim/optim_reference.py) over 20+ steps with random gradients; parameter groups, skipped
parameters, state_dict round trips, zero_grad, argument checks, and the textbook forms the
docstrings cite."""
import copy
import importlib.util
import math
import pathlib

import numpy as np
import pytest

import pydl
from pydl import nn, optim

# The float64 NumPy references live beside this file (pytest runs with --import-mode=importlib,
# which puts no test folder on sys.path).
_spec = importlib.util.spec_from_file_location(
    "optim_reference", pathlib.Path(__file__).with_name("optim_reference.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

SHAPES = [(3, 5), (7,), (), (1,), (2, 3, 4), (0, 3)]


def make_params(rng, dtype, shapes=SHAPES):
    return [nn.Parameter(pydl.tensor(np.asarray(rng.standard_normal(s), dtype=dtype)))
            for s in shapes]


def tol(dtype):
    return dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)


CASES = [
    # (optimizer class, kwargs, reference function, reference kwargs)
    (optim.SGD, dict(lr=0.1), ref.sgd, dict(lr=0.1)),
    (optim.SGD, dict(lr=0.05, momentum=0.9), ref.sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01, maximize=True),
     ref.sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01, maximize=True)),
    (optim.SGD, dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1), ref.sgd,
     dict(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.1)),
    (optim.Adagrad, dict(), ref.adagrad, dict()),
    (optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.2,
                         eps=1e-6, maximize=True), ref.adagrad,
     dict(lr=0.1, lr_decay=0.01, weight_decay=0.05, initial_accumulator_value=0.2, eps=1e-6,
          maximize=True)),
    (optim.RMSprop, dict(), ref.rmsprop, dict()),
    (optim.RMSprop, dict(lr=0.01, alpha=0.9, centered=True), ref.rmsprop,
     dict(lr=0.01, alpha=0.9, centered=True)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.9, weight_decay=0.01, maximize=True), ref.rmsprop,
     dict(lr=0.01, momentum=0.9, weight_decay=0.01, maximize=True)),
    (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True, eps=1e-4), ref.rmsprop,
     dict(lr=0.01, momentum=0.5, centered=True, eps=1e-4)),
    (optim.Adam, dict(), ref.adam, dict()),
    (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True), ref.adam,
     dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1, amsgrad=True)),
    (optim.Adam, dict(lr=0.01, eps=1e-6, maximize=True, decoupled_weight_decay=True,
                      weight_decay=0.1), ref.adam,
     dict(lr=0.01, eps=1e-6, maximize=True, decoupled=True, weight_decay=0.1)),
    (optim.AdamW, dict(lr=0.01), ref.adam, dict(lr=0.01, weight_decay=1e-2, decoupled=True)),
    (optim.AdamW, dict(lr=0.01, weight_decay=0.5, amsgrad=True, betas=(0.5, 0.9)), ref.adam,
     dict(lr=0.01, weight_decay=0.5, amsgrad=True, betas=(0.5, 0.9), decoupled=True)),
]
CASE_IDS = [f"{c[0].__name__}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'defaults'}"
            for c in CASES]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,kwargs,ref_fn,ref_kwargs", CASES, ids=CASE_IDS)
def test_trajectory_matches_numpy_reference(cls, kwargs, ref_fn, ref_kwargs, dtype):
    rng = np.random.default_rng(hash(cls.__name__) % 1000)
    params = make_params(rng, dtype)
    expected = [p._data.astype(np.float64) for p in params]
    states = [dict() for _ in params]
    opt = cls(params, **kwargs)
    for _ in range(25):
        grads = [np.asarray(rng.standard_normal(p.shape), dtype=dtype) for p in params]
        for p, g in zip(params, grads):
            p.grad = pydl.tensor(g)
        opt.step()
        expected = [ref_fn(e, g.astype(np.float64), s, **ref_kwargs)
                    for e, g, s in zip(expected, grads, states)]
    for p, e in zip(params, expected):
        assert p.dtype == dtype
        np.testing.assert_allclose(p._data, e, **tol(dtype))


def test_trains_a_model_through_autograd():
    pydl.manual_seed(0)
    rng = np.random.default_rng(0)
    x = pydl.tensor(rng.standard_normal((64, 3)))
    w_true = np.array([[1.5], [-2.0], [0.5]])
    y = pydl.tensor(x._data @ w_true)
    w = nn.Parameter(pydl.zeros(3, 1, dtype=pydl.float64))
    opt = optim.Adam([w], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        opt.step()
    np.testing.assert_allclose(w._data, w_true, atol=1e-3)


# ---- textbook forms the docstrings cite -----------------------------------------------------

def test_sgd_momentum_equals_velocity_form():
    """v <- a v - lr g, theta <- theta + v (course notes, Algorithm 2) with dampening 0."""
    rng = np.random.default_rng(1)
    p = nn.Parameter(pydl.tensor(rng.standard_normal(6)))
    theta, v = p._data.copy(), np.zeros(6)
    opt = optim.SGD([p], lr=0.03, momentum=0.9)
    for _ in range(20):
        g = rng.standard_normal(6)
        p.grad = pydl.tensor(g)
        opt.step()
        v = 0.9 * v - 0.03 * g
        theta = theta + v
    np.testing.assert_allclose(p._data, theta, rtol=1e-12, atol=1e-14)


def test_adagrad_equals_course_algorithm_3():
    """r <- r + g*g, theta <- theta - eps / (delta + sqrt(r)) * g."""
    rng = np.random.default_rng(2)
    p = nn.Parameter(pydl.tensor(rng.standard_normal(6)))
    theta, r = p._data.copy(), np.zeros(6)
    opt = optim.Adagrad([p], lr=0.2, eps=1e-7)
    for _ in range(20):
        g = rng.standard_normal(6)
        p.grad = pydl.tensor(g)
        opt.step()
        r = r + g * g
        theta = theta - 0.2 / (1e-7 + np.sqrt(r)) * g
    np.testing.assert_allclose(p._data, theta, rtol=1e-12, atol=1e-14)


# ---- groups, skipped parameters, non-contiguous parameters ---------------------------------

def test_param_groups_use_their_own_options():
    rng = np.random.default_rng(3)
    a, b = make_params(rng, np.float64, [(4,), (3, 2)])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.9
    ea, eb, sa, sb = a._data.copy(), b._data.copy(), {}, {}
    for _ in range(20):
        ga, gb = rng.standard_normal(4), rng.standard_normal((3, 2))
        a.grad, b.grad = pydl.tensor(ga), pydl.tensor(gb)
        opt.step()
        ea = ref.sgd(ea, ga, sa, lr=0.1)
        eb = ref.sgd(eb, gb, sb, lr=0.5, momentum=0.9)
    np.testing.assert_allclose(a._data, ea, rtol=1e-12)
    np.testing.assert_allclose(b._data, eb, rtol=1e-12)
    assert "momentum_buffer" not in opt.state[a] and "momentum_buffer" in opt.state[b]


def test_mixed_dtypes_in_one_group():
    rng = np.random.default_rng(4)
    a = make_params(rng, np.float32, [(5,)])[0]
    b = make_params(rng, np.float64, [(5,)])[0]
    ea, eb, sa, sb = a._data.astype(np.float64), b._data.copy(), {}, {}
    opt = optim.Adam([a, b], lr=0.01)
    for _ in range(20):
        ga, gb = rng.standard_normal(5).astype(np.float32), rng.standard_normal(5)
        a.grad, b.grad = pydl.tensor(ga), pydl.tensor(gb)
        opt.step()
        ea = ref.adam(ea, ga.astype(np.float64), sa, lr=0.01)
        eb = ref.adam(eb, gb, sb, lr=0.01)
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a._data, ea, **tol(np.float32))
    np.testing.assert_allclose(b._data, eb, **tol(np.float64))


@pytest.mark.parametrize("cls,kwargs,ref_fn,ref_kwargs", CASES, ids=CASE_IDS)
def test_parameters_without_grad_are_skipped(cls, kwargs, ref_fn, ref_kwargs):
    """A parameter whose grad is None neither moves nor advances its state (its own step count
    drives Adam's bias correction)."""
    rng = np.random.default_rng(5)
    a, b = make_params(rng, np.float64, [(4,), (4,)])
    opt = cls([a, b], **kwargs)
    ea, eb, sa, sb = a._data.copy(), b._data.copy(), {}, {}
    for step in range(24):
        ga = rng.standard_normal(4)
        a.grad = pydl.tensor(ga)
        ea = ref_fn(ea, ga, sa, **ref_kwargs)
        if step % 3 == 0:
            gb = rng.standard_normal(4)
            b.grad = pydl.tensor(gb)
            eb = ref_fn(eb, gb, sb, **ref_kwargs)
        else:
            b.grad = None
        before = b._data.copy()
        opt.step()
        if b.grad is None:
            np.testing.assert_array_equal(b._data, before)
    np.testing.assert_allclose(a._data, ea, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b._data, eb, rtol=1e-10, atol=1e-12)
    if "step" in opt.state[b]:
        assert opt.state[b]["step"] == 8 and opt.state[a]["step"] == 24


def test_non_contiguous_parameter_is_updated_in_place():
    base = np.arange(12.0).reshape(3, 4)
    p = nn.Parameter(pydl.tensor(np.zeros(1)))
    p._data = base.T  # a view: updates must land in `base`
    g = np.ones((4, 3))
    p.grad = pydl.tensor(g)
    version = p._version
    optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(base, np.arange(12.0).reshape(3, 4) - 0.5)
    assert p._data.base is base or np.shares_memory(p._data, base)
    assert p._version == version + 1


def test_step_bumps_version_so_saved_tensors_are_protected():
    w = nn.Parameter(pydl.tensor([1.0, 2.0]))
    y = (w * w).sum()  # saves w for backward
    w.grad = pydl.tensor([1.0, 1.0])
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_closure_is_evaluated_with_grad():
    w = nn.Parameter(pydl.tensor([3.0]))
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with pydl.no_grad():
        loss = opt.step(closure)
    assert float(loss) == 9.0
    np.testing.assert_allclose(w._data, [3.0 - 0.25 * 6.0])


# ---- zero_grad, add_param_group --------------------------------------------------------------

def test_zero_grad():
    a, b = make_params(np.random.default_rng(6), np.float64, [(3,), (2,)])
    a.grad, b.grad = pydl.tensor([1.0, 2.0, 3.0]), pydl.tensor([4.0, 5.0])
    opt = optim.SGD([a, b], lr=0.1)
    grad_array = a.grad._data
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(grad_array, 0.0)
    assert a.grad._data is grad_array
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_add_param_group_takes_defaults_and_rejects_overlap():
    a, b, c = make_params(np.random.default_rng(7), np.float64, [(3,), (2,), (1,)])
    opt = optim.Adam([a], lr=0.01, betas=(0.8, 0.9))
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.8, 0.9)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [c, a]})
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {c}})
    c.grad = pydl.tensor(np.ones(1))
    opt.add_param_group({"params": [c]})
    opt.step()
    assert opt.state[c]["step"] == 1


def test_named_parameters_are_accepted():
    model = nn.Sequential(nn.Module())
    a, b = make_params(np.random.default_rng(8), np.float64, [(3,), (2,)])
    opt = optim.SGD([("a", a), ("b", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["a", "b"]
    del model


# ---- state_dict ------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kwargs,ref_fn,ref_kwargs", CASES, ids=CASE_IDS)
def test_state_dict_round_trip_continues_bit_for_bit(cls, kwargs, ref_fn, ref_kwargs):
    rng = np.random.default_rng(9)
    params = make_params(rng, np.float32, [(5, 3), (4,), (2,)])
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.003}]
    opt = cls(groups, **kwargs)
    for _ in range(7):
        for p in params:
            p.grad = pydl.tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    saved = copy.deepcopy(opt.state_dict())
    stateless = cls is optim.SGD and not kwargs.get("momentum")  # plain SGD keeps no state
    assert sorted(saved["state"]) == ([] if stateless else [0, 1, 2])
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2]]

    clones = [nn.Parameter(pydl.tensor(p._data.copy())) for p in params]
    restored = cls([{"params": clones[:2]}, {"params": clones[2:]}], **kwargs)
    restored.load_state_dict(saved)
    assert restored.param_groups[1]["lr"] == 0.003
    for _ in range(6):
        grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
        for p, c, g in zip(params, clones, grads):
            p.grad, c.grad = pydl.tensor(g), pydl.tensor(g.copy())
        opt.step()
        restored.step()
    for p, c in zip(params, clones):
        np.testing.assert_array_equal(p._data, c._data)
    # The loaded state is a copy: changing the saved dict afterwards changes nothing.
    for s in saved["state"].values():
        for v in s.values():
            if isinstance(v, pydl.Tensor):
                v._data[...] = 1e9
    for p, c in zip(params, clones):
        np.testing.assert_array_equal(p._data, c._data)


def test_state_dict_shares_state_and_load_casts_dtype():
    p = nn.Parameter(pydl.tensor(np.zeros(3)))
    p.grad = pydl.tensor(np.ones(3))
    opt = optim.Adam([p], lr=0.1)
    opt.step()
    sd = opt.state_dict()
    assert sd["state"][0]["exp_avg"]._data is opt.state[p]["exp_avg"]._data
    q = nn.Parameter(pydl.tensor(np.zeros(3, np.float32)))
    other = optim.Adam([q], lr=0.1)
    other.load_state_dict({"state": {0: {"step": 1.0, "exp_avg": np.ones(3),
                                         "exp_avg_sq": pydl.tensor(np.ones(3))}},
                           "param_groups": sd["param_groups"]})
    assert other.state[q]["exp_avg"].dtype == np.float32
    assert other.state[q]["step"] == 1.0


def test_load_state_dict_checks_group_sizes():
    a, b = make_params(np.random.default_rng(10), np.float64, [(3,), (2,)])
    opt = optim.SGD([a, b], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="with 1 parameters but this optimizer's group has 2"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0], "lr": 0.1}]})


# ---- argument checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("make,error,match", [
    (lambda p: optim.SGD(p, lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    (lambda p: optim.SGD(p, momentum=-0.5), ValueError, "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda p: optim.SGD(p, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.9)), ValueError, "beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    (lambda p: optim.Adam(p, eps=-1e-8), ValueError, "Invalid epsilon value"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), ValueError, "Invalid lr_decay value"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), ValueError,
     "Invalid initial_accumulator_value"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), ValueError, "Invalid alpha value"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda p: optim.SGD(p[0], lr=0.1), TypeError, "iterable of Tensors or dicts"),
    (lambda p: optim.SGD([np.zeros(3)], lr=0.1), TypeError, "can only optimize Tensors"),
])
def test_bad_arguments(make, error, match):
    params = make_params(np.random.default_rng(11), np.float64, [(3,)])
    with pytest.raises(error, match=match):
        make(params)


def test_non_leaf_and_bad_grads_are_rejected():
    w = nn.Parameter(pydl.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    opt = optim.SGD([w], lr=0.1)
    w.grad = pydl.tensor([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"shape \(2,\) has a gradient of shape \(3,\)"):
        opt.step()
    i = nn.Parameter(pydl.tensor(np.zeros(2, np.float16)))
    i.grad = pydl.tensor(np.zeros(2, np.float16))
    with pytest.raises(TypeError, match="float32 or float64, got one of dtype float16"):
        optim.Adam([i]).step()


def test_duplicate_parameter_warns_like_pytorch_and_is_updated_once():
    w = nn.Parameter(pydl.tensor([1.0]))
    with pytest.warns(UserWarning, match="duplicate parameters"):
        opt = optim.SGD([w, w], lr=0.1)
    w.grad = pydl.tensor([1.0])
    opt.step()
    np.testing.assert_allclose(w._data, [0.9], rtol=1e-6)


def test_repr_lists_groups():
    w = nn.Parameter(pydl.tensor([1.0]))
    text = repr(optim.AdamW([w]))
    assert text.startswith("AdamW (") and "weight_decay: 0.01" in text and \
        "decoupled_weight_decay: True" in text


def test_learning_rate_may_be_a_tensor():
    w = nn.Parameter(pydl.tensor([1.0]))
    w.grad = pydl.tensor([1.0])
    optim.SGD([w], lr=pydl.tensor(0.5)).step()
    assert math.isclose(float(w._data[0]), 0.5)


@pytest.mark.parametrize("cls,kernel", [(optim.SGD, "sgd_step"), (optim.Adagrad, "adagrad_step"),
                                        (optim.RMSprop, "rmsprop_step"),
                                        (optim.Adam, "adam_step"), (optim.AdamW, "adam_step")])
def test_one_fused_kernel_call_per_group(monkeypatch, cls, kernel):
    from pydl import _C

    calls = []
    real = getattr(_C, kernel)

    def counting(params, *args, **kwargs):
        calls.append(len(params))
        return real(params, *args, **kwargs)

    monkeypatch.setattr(_C, kernel, counting)
    params = make_params(np.random.default_rng(12), np.float64, [(3,)] * 5 + [(2, 2)] * 2)
    for p in params:
        p.grad = pydl.tensor(np.ones(p.shape))
    params[1].grad = None
    opt = cls([{"params": params[:5]}, {"params": params[5:], "lr": 0.1}])
    opt.step()
    assert calls == [4, 2]
