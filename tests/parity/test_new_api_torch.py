"""Issue #20's new API against PyTorch: sort/topk/unique, scatter, one_hot, einsum, erfinv,
addcmul/addcdiv, bitwise ops (values and first/second derivatives, float64, rtol 1e-7)."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F

torch = pytest.importorskip("torch")

rng = np.random.default_rng(2020)


def both(a, grad=True):
    a = np.asarray(a)
    p = pydl.tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f")
    t = torch.tensor(a.copy(), requires_grad=grad and a.dtype.kind == "f")
    return p, t


def close(p, t, rtol=1e-7, atol=1e-9):
    tv = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    np.testing.assert_allclose(np.asarray(p.detach().numpy() if hasattr(p, "numpy") else p), tv,
                               rtol=rtol, atol=atol)


def double_backward(fp, ft, arrays):
    """Values and d/dx of (d f/dx . v): the same in pydl and torch."""
    ps, ts = zip(*(both(a) for a in arrays))
    yp, yt = fp(*ps), ft(*ts)
    close(yp, yt)
    v = rng.standard_normal(tuple(yt.shape))
    gp = pydl.autograd.grad(yp, ps, pydl.tensor(v), create_graph=True)
    gt = torch.autograd.grad(yt, ts, torch.tensor(v), create_graph=True)
    for a, b in zip(gp, gt):
        close(a, b)
    w = [rng.standard_normal(a.shape) for a in arrays]
    sp = sum((g * pydl.tensor(wi)).sum() for g, wi in zip(gp, w))
    st = sum((g * torch.tensor(wi)).sum() for g, wi in zip(gt, w))
    assert sp.requires_grad == st.requires_grad
    if not st.requires_grad:  # f linear: no second derivative in either
        return
    hp = pydl.autograd.grad(sp, ps, allow_unused=True)
    ht = torch.autograd.grad(st, ts, allow_unused=True)
    for a, b, x in zip(hp, ht, arrays):
        close(a if a is not None else np.zeros(x.shape), b if b is not None else np.zeros(x.shape))


@pytest.mark.parametrize("dim,descending", [(0, False), (1, True), (-1, False)])
def test_sort_argsort_topk(dim, descending):
    a = rng.standard_normal((4, 6))
    p, t = both(a)
    vp, ip = pydl.sort(p, dim, descending)
    vt, it = torch.sort(t, dim, descending)
    close(vp, vt)
    assert ip.tolist() == it.tolist()
    assert pydl.argsort(p, dim, descending).tolist() == torch.argsort(t, dim, descending).tolist()
    tp, tt = p.topk(3, dim=1, largest=not descending), t.topk(3, dim=1, largest=not descending)
    close(tp.values, tt.values)
    assert tp.indices.tolist() == tt.indices.tolist()
    double_backward(lambda x: pydl.sort(x, dim, descending).values ** 3,
                    lambda x: torch.sort(x, dim, descending).values ** 3, [a])
    ties = np.array([[1.0, 0.0, 1.0, 0.0, 2.0, np.nan]])
    p, t = both(ties, False)
    r_p = pydl.sort(p, 1, descending, stable=True)
    r_t = torch.sort(t, dim=1, descending=descending, stable=True)
    assert r_p.indices.tolist() == r_t.indices.tolist()


def test_unique():
    a = rng.integers(0, 5, (3, 7))
    p, t = both(a)
    for kw in ({}, {"return_inverse": True}, {"return_counts": True},
               {"return_inverse": True, "return_counts": True}):
        rp, rt = pydl.unique(p, **kw), torch.unique(t, **kw)
        rp = rp if isinstance(rp, tuple) else (rp,)
        rt = rt if isinstance(rt, tuple) else (rt,)
        assert len(rp) == len(rt)
        for x, y in zip(rp, rt):
            assert x.tolist() == y.tolist()
    rows = np.array([[1, 2], [0, 1], [1, 2]])
    p, t = both(rows)
    for x, y in zip(pydl.unique(p, dim=0, return_inverse=True, return_counts=True),
                    torch.unique(t, dim=0, return_inverse=True, return_counts=True)):
        assert x.tolist() == y.tolist()


def test_scatter_scatter_add_one_hot():
    # src the shape of index: torch's own double backward refuses a larger src
    x, src = rng.standard_normal((3, 5)), rng.standard_normal((3, 2))
    idx = np.stack([rng.permutation(5)[:2] for _ in range(3)])
    double_backward(lambda a, s: a.scatter(1, pydl.tensor(idx), s) ** 2,
                    lambda a, s: a.scatter(1, torch.tensor(idx), s) ** 2, [x, src])
    rep = rng.integers(0, 3, (2, 5))
    double_backward(lambda a, s: a.scatter_add(0, pydl.tensor(rep), s) ** 2,
                    lambda a, s: a.scatter_add(0, torch.tensor(rep), s) ** 2,
                    [x, rng.standard_normal((2, 5))])
    close(pydl.tensor(x).scatter(1, pydl.tensor(idx), 3.5),
          torch.tensor(x).scatter(1, torch.tensor(idx), 3.5))
    labels = rng.integers(0, 4, (2, 3))
    assert F.one_hot(pydl.tensor(labels)).tolist() == \
        torch.nn.functional.one_hot(torch.tensor(labels)).tolist()
    assert F.one_hot(pydl.tensor(labels), 6).tolist() == \
        torch.nn.functional.one_hot(torch.tensor(labels), 6).tolist()


def test_masked_fill_inplace():
    a = rng.standard_normal((3, 4))
    mask = rng.random((3, 4)) > 0.5
    p, t = both(a, False)
    p.masked_fill_(pydl.tensor(mask), -1.5)
    t.masked_fill_(torch.tensor(mask), -1.5)
    close(p, t)


@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(3, 4), (4, 2)]), ("bij,bkj->bik", [(2, 3, 4), (2, 5, 4)]),
    ("ii->i", [(3, 3)]), ("...ij,...jk", [(2, 3, 4), (4, 5)]), ("i,j->ij", [(3,), (4,)]),
    ("ijk,jl,kl->il", [(2, 3, 4), (3, 5), (4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij->", [(3, 4)]), ("iij,jk->ik", [(3, 3, 2), (2, 4)]),
])
def test_einsum(eq, shapes):
    arrays = [rng.standard_normal(s) for s in shapes]
    double_backward(lambda *xs: pydl.einsum(eq, *xs), lambda *xs: torch.einsum(eq, *xs), arrays)


def test_erfinv_addcmul_addcdiv():
    x = rng.uniform(-0.999, 0.999, 50)
    double_backward(pydl.erfinv, torch.erfinv, [x])
    p, t = both(np.array([-1.0, 1.0, 0.0, 1 - 1e-15, -0.5]), False)
    close(pydl.erfinv(p), torch.erfinv(t), rtol=1e-14)
    a, b, c = rng.standard_normal((3, 1)), rng.standard_normal((4,)), rng.uniform(1, 2, (3, 4))
    double_backward(lambda x, y, z: pydl.addcmul(x, y, z, value=0.3),
                    lambda x, y, z: torch.addcmul(x, y, z, value=0.3), [a, b, c])
    double_backward(lambda x, y, z: pydl.addcdiv(x, y, z, value=-2),
                    lambda x, y, z: torch.addcdiv(x, y, z, value=-2), [a, b, c])


def test_bitwise():
    a, b = rng.integers(-100, 100, (3, 4)), rng.integers(-100, 100, (4,))
    pa, ta = both(a)
    pb, tb = both(b)
    for fp, ft in [(lambda x, y: x & y, lambda x, y: x & y), (lambda x, y: x | y, None),
                   (lambda x, y: x ^ y, None), (lambda x, y: ~x, None),
                   (lambda x, y: x & 7, None), (lambda x, y: x << 3, None),
                   (lambda x, y: x >> 2, None)]:
        ft = ft or fp
        rp, rt = fp(pa, pb), ft(ta, tb)
        assert rp.tolist() == rt.tolist() and str(rt.dtype).endswith(str(rp.dtype))
    bp, bt = both(np.array([True, False, True]))
    assert (~bp).tolist() == (~bt).tolist()
    assert (bp ^ True).tolist() == (bt ^ True).tolist()


# -- optimizers --------------------------------------------------------------------------------
NEW_OPTIMIZERS = [
    ("Adadelta", {}), ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    ("Adamax", {}), ("Adamax", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.05)),
    ("NAdam", {}), ("NAdam", dict(lr=0.01, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", {}), ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.2, decoupled_weight_decay=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", NEW_OPTIMIZERS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(NEW_OPTIMIZERS)])
def test_new_optimizers_same_trajectory_as_torch(name, kwargs, dtype):
    from pydl import nn, optim

    r = np.random.default_rng(0)
    shapes = [(3, 5), (7,), (1,), (2, 3, 4)]
    init = [r.standard_normal(s).astype(dtype) for s in shapes]
    mine = [nn.Parameter(pydl.tensor(a.copy())) for a in init]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
    opt = getattr(optim, name)(mine, **kwargs)
    old = torch.get_default_dtype()
    # torch keeps NAdam's mu_product in the default dtype: float64 for the float64 comparison.
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        topt = getattr(torch.optim, name)(theirs, **kwargs)
        for step in range(30):
            for m, t in zip(mine, theirs):
                g = r.standard_normal(m.shape).astype(dtype)
                m.grad = pydl.tensor(g)
                t.grad = torch.from_numpy(g.copy())
            if step % 7 == 3:
                mine[1].grad = theirs[1].grad = None
            opt.step()
            topt.step()
    finally:
        torch.set_default_dtype(old)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for m, t in zip(mine, theirs):
        np.testing.assert_allclose(m._data, t.detach().numpy(), **tol)
    ms, ts = opt.state_dict()["state"], topt.state_dict()["state"]
    assert sorted(ms) == sorted(ts)
    for i in ts:
        assert sorted(ms[i]) == sorted(ts[i])
        for key, value in ts[i].items():
            if key in ("step", "mu_product"):
                assert float(ms[i][key]) == pytest.approx(float(value), rel=1e-6)
            else:
                np.testing.assert_allclose(ms[i][key]._data, value.numpy(), **tol)


# -- schedulers ---------------------------------------------------------------------------------
def _sched_pair(make, opt_name="SGD", opt_kwargs=None, groups=2, n=40):
    from pydl import nn, optim

    opt_kwargs = opt_kwargs or dict(lr=0.1, momentum=0.9)
    mine = getattr(optim, opt_name)([{"params": [nn.Parameter(pydl.zeros(2))], "lr": 0.1 * (k + 1)}
                                     for k in range(groups)], **opt_kwargs)
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.1 * (k + 1)}
         for k in range(groups)], **opt_kwargs)
    sm, st = make(optim.lr_scheduler, mine), make(torch.optim.lr_scheduler, theirs)
    for _ in range(n):
        for o in (mine, theirs):
            o.step()
        sm.step()
        st.step()
        for gm, gt in zip(mine.param_groups, theirs.param_groups):
            assert gm["lr"] == pytest.approx(gt["lr"], rel=1e-12, abs=1e-15)
            for key in ("momentum", "betas"):
                if key in gt:
                    assert gm[key] == pytest.approx(gt[key], rel=1e-12)
        assert sm.get_last_lr() == pytest.approx(st.get_last_lr(), rel=1e-12, abs=1e-15)


SCHEDULES = [
    ("poly", lambda S, o: S.PolynomialLR(o, total_iters=7, power=2.0)),
    ("sgdr", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001)),
    ("sgdr1", lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=4)),
    ("cyclic", lambda S, o: S.CyclicLR(o, 0.01, [0.2, 0.3], step_size_up=4, step_size_down=3)),
    ("cyclic2", lambda S, o: S.CyclicLR(o, 0.01, 0.2, step_size_up=3, mode="triangular2")),
    ("cyclic_exp", lambda S, o: S.CyclicLR(o, 0.01, 0.2, step_size_up=5, mode="exp_range",
                                           gamma=0.95)),
    ("onecycle", lambda S, o: S.OneCycleLR(o, [1.0, 2.0], total_steps=41)),
    ("onecycle3", lambda S, o: S.OneCycleLR(o, 1.0, epochs=5, steps_per_epoch=9,
                                            anneal_strategy="linear", three_phase=True)),
    ("sequential", lambda S, o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=5),
                                                   S.ExponentialLR(o, 0.9),
                                                   S.CosineAnnealingLR(o, 10)],
                                               milestones=[6, 20])),
    ("chained", lambda S, o: S.ChainedScheduler([S.ConstantLR(o, 0.5, total_iters=4),
                                                 S.ExponentialLR(o, 0.95)])),
]


@pytest.mark.parametrize("name,make", SCHEDULES, ids=[n for n, _ in SCHEDULES])
def test_new_schedulers_same_lr_sequence_as_torch(name, make):
    _sched_pair(make)
    if name.startswith(("cyclic", "onecycle")):
        _sched_pair(make, "Adam", dict(lr=0.1))  # beta1 cycles instead of momentum


# -- layers -------------------------------------------------------------------------------------
def test_layer_norm_group_norm_double_backward():
    x, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 5))
    b = rng.standard_normal((4, 5))
    double_backward(lambda x, w, b: F.layer_norm(x, (4, 5), w, b, eps=1e-3) ** 2,
                    lambda x, w, b: torch.nn.functional.layer_norm(x, (4, 5), w, b, eps=1e-3) ** 2,
                    [x, w, b])
    x, w, b = rng.standard_normal((2, 6, 3, 2)), rng.standard_normal(6), rng.standard_normal(6)
    double_backward(lambda x, w, b: F.group_norm(x, 3, w, b) ** 2,
                    lambda x, w, b: torch.nn.functional.group_norm(x, 3, w, b) ** 2, [x, w, b])
    xf = rng.standard_normal((4, 8, 5)).astype(np.float32)
    close(pydl.nn.GroupNorm(2, 8)(pydl.tensor(xf)), torch.nn.GroupNorm(2, 8)(torch.tensor(xf)),
          rtol=1e-5, atol=1e-5)
    close(pydl.nn.LayerNorm(5)(pydl.tensor(xf)), torch.nn.LayerNorm(5)(torch.tensor(xf)),
          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,kw", [
    ((2, 3, 5, 7), dict(scale_factor=2)), ((1, 2, 4, 3), dict(size=(7, 5))),
    ((2, 1, 9, 6), dict(scale_factor=0.4)), ((1, 2, 5), dict(size=11)),
    ((2, 2, 4, 5), dict(scale_factor=1.7, mode="bilinear")),
    ((1, 3, 5, 4), dict(size=(8, 3), mode="bilinear", align_corners=True)),
    ((2, 2, 7), dict(scale_factor=2.5, mode="linear")),
    ((1, 2, 6, 6), dict(scale_factor=(1.5, 0.7), mode="bilinear", recompute_scale_factor=True)),
])
def test_interpolate(shape, kw):
    x = rng.standard_normal(shape)
    double_backward(lambda t: F.interpolate(t, **kw) ** 2,
                    lambda t: torch.nn.functional.interpolate(t, **kw) ** 2, [x])


def test_parameter_containers_state_dict_names():
    class Mine(pydl.nn.Module):
        def __init__(self):
            super().__init__()
            self.pl = pydl.nn.ParameterList([pydl.nn.Parameter(pydl.ones(2)) for _ in range(2)])
            self.pd = pydl.nn.ParameterDict({"w": pydl.nn.Parameter(pydl.ones(3))})

    class Theirs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pl = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2))
                                              for _ in range(2)])
            self.pd = torch.nn.ParameterDict({"w": torch.nn.Parameter(torch.ones(3))})

    assert list(Mine().state_dict()) == list(Theirs().state_dict())
    assert [n for n, _ in Mine().named_parameters()] == \
        [n for n, _ in Theirs().named_parameters()]


@pytest.mark.parametrize("name", ["log1p", "expm1", "erf"])
def test_log1p_expm1_erf(name):
    x = rng.uniform(-0.9, 2.0, (4, 5))
    double_backward(getattr(pydl, name), getattr(torch, name), [x])
