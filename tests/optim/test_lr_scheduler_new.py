"""PolynomialLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR, SequentialLR and
ChainedScheduler against closed forms written here from the papers / PyTorch docs; momentum
cycling; state_dict round trips; argument errors."""
import math

import pytest

import pydl
from pydl import nn, optim
from pydl.optim import lr_scheduler as S


def make_opt(kind="sgd", lr=0.1, groups=1):
    params = [{"params": [nn.Parameter(pydl.zeros(2))]} for _ in range(groups)]
    if kind == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9)
    return optim.Adam(params, lr=lr)


def run(opt, sched, n):
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(n):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("total,power", [(5, 1.0), (7, 2.0), (1, 0.5)])
def test_polynomial_lr(total, power):
    opt = make_opt(lr=0.2)
    lrs = run(opt, S.PolynomialLR(opt, total_iters=total, power=power), 12)
    ref = [0.2 * (1 - min(t, total) / total) ** power for t in range(13)]
    assert lrs == pytest.approx(ref, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("T_0,T_mult,eta_min", [(3, 1, 0.0), (2, 2, 0.01), (5, 3, 0.0)])
def test_cosine_warm_restarts(T_0, T_mult, eta_min):
    opt = make_opt(lr=0.1)
    lrs = run(opt, S.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min), 30)
    ref = []
    t_i, t_cur = T_0, 0
    for _ in range(31):
        ref.append(eta_min + (0.1 - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
        t_cur += 1
        if t_cur >= t_i:
            t_cur -= t_i
            t_i *= T_mult
    assert lrs == pytest.approx(ref, rel=1e-12)


def test_cosine_warm_restarts_fractional_epochs():
    opt = make_opt(lr=1.0)
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    sched.step(2.5)  # T_i = 4, T_cur = 0.5
    assert opt.param_groups[0]["lr"] == pytest.approx((1 + math.cos(math.pi * 0.5 / 4)) / 2)
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)


def triangle(t, up, down):
    total = up + down
    x = t % total
    return x / up if x <= up else 1 - (x - up) / down


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_and_momentum(mode):
    opt = make_opt("sgd", lr=99.0)
    sched = S.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=5,
                       mode=mode, gamma=0.9)
    lrs, moms = [opt.param_groups[0]["lr"]], [opt.param_groups[0]["momentum"]]
    for _ in range(25):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
    for t, (lr, mom) in enumerate(zip(lrs, moms)):
        cycle = t // 8 + 1
        scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": 0.9 ** t}[mode]
        h = triangle(t, 3, 5) * scale
        assert lr == pytest.approx(0.01 + 0.09 * h, rel=1e-9)
        assert mom == pytest.approx(0.9 - 0.1 * h, rel=1e-9)


def test_cyclic_lr_adam_beta1_and_errors():
    opt = make_opt("adam")
    S.CyclicLR(opt, 0.001, 0.01, step_size_up=2)
    assert opt.param_groups[0]["betas"][0] == 0.9
    with pytest.raises(ValueError, match="mode is invalid"):
        S.CyclicLR(make_opt(), 0.1, 1.0, mode="nope")
    with pytest.raises(ValueError, match="must support momentum"):
        S.CyclicLR(optim.Adagrad([nn.Parameter(pydl.zeros(1))]), 0.1, 1.0)
    with pytest.raises(ValueError, match="base_lr must have the same length"):
        S.CyclicLR(make_opt(groups=2), [0.1], 1.0)


@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle(three_phase, anneal):
    total, max_lr, div, final = 20, 1.0, 25.0, 1e4
    opt = make_opt("adam")
    sched = S.OneCycleLR(opt, max_lr, total_steps=total, anneal_strategy=anneal,
                         three_phase=three_phase, div_factor=div, final_div_factor=final)
    lrs, b1 = [opt.param_groups[0]["lr"]], [opt.param_groups[0]["betas"][0]]
    for _ in range(total - 1):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        b1.append(opt.param_groups[0]["betas"][0])

    def ann(a, b, pct):
        if anneal == "cos":
            return b + (a - b) / 2 * (math.cos(math.pi * pct) + 1)
        return a + (b - a) * pct

    init, low = max_lr / div, max_lr / div / final
    if three_phase:
        phases = [(0.3 * total - 1, init, max_lr, 0.95, 0.85),
                  (0.6 * total - 2, max_lr, init, 0.85, 0.95),
                  (total - 1, init, low, 0.95, 0.95)]
    else:
        phases = [(0.3 * total - 1, init, max_lr, 0.95, 0.85), (total - 1, max_lr, low, 0.85, 0.95)]
    for t in range(total):
        start = 0.0
        for i, (end, a, b, ma, mb) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start)
                assert lrs[t] == pytest.approx(ann(a, b, pct), rel=1e-9, abs=1e-15)
                assert b1[t] == pytest.approx(ann(ma, mb, pct), rel=1e-9)
                break
            start = end
    opt.step()
    sched.step()  # step total: allowed
    with pytest.raises(ValueError, match="Tried to step 21 times"):
        sched.step()


def test_one_cycle_errors_and_epochs():
    opt = make_opt()
    s = S.OneCycleLR(opt, 0.5, epochs=2, steps_per_epoch=5)
    assert s.total_steps == 10
    with pytest.raises(ValueError, match="either total_steps OR"):
        S.OneCycleLR(make_opt(), 0.5)
    with pytest.raises(ValueError, match="positive integer total_steps"):
        S.OneCycleLR(make_opt(), 0.5, total_steps=0)
    with pytest.raises(ValueError, match="pct_start"):
        S.OneCycleLR(make_opt(), 0.5, total_steps=10, pct_start=1.5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        S.OneCycleLR(make_opt(), 0.5, total_steps=10, anneal_strategy="exp")


def test_sequential_lr_warmup_then_decay():
    opt = make_opt(lr=1.0)
    warm = S.LinearLR(opt, start_factor=0.1, total_iters=3)
    decay = S.ExponentialLR(opt, gamma=0.5)
    seq = S.SequentialLR(opt, [warm, decay], milestones=[4])
    lrs = run(opt, seq, 8)
    ref = [0.1 + 0.9 * min(t, 3) / 3 for t in range(4)] + [0.5 ** (t - 4) for t in range(4, 9)]
    assert lrs == pytest.approx(ref, rel=1e-12)
    assert seq.get_last_lr() == [lrs[-1]]
    with pytest.raises(ValueError, match="one more than the number of milestone"):
        S.SequentialLR(opt, [warm, decay], milestones=[1, 2])
    with pytest.raises(ValueError, match="same optimizer"):
        S.SequentialLR(make_opt(), [warm], milestones=[])


def test_chained_scheduler():
    opt = make_opt(lr=1.0)
    a = S.ConstantLR(opt, factor=0.5, total_iters=2)
    b = S.ExponentialLR(opt, gamma=0.9)
    chain = S.ChainedScheduler([a, b])
    lrs = run(opt, chain, 5)
    ref = [(0.5 if t < 2 else 1.0) * 0.9 ** t for t in range(6)]
    assert lrs == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.ChainedScheduler([S.ReduceLROnPlateau(opt)])


def test_state_dict_round_trips():
    opt = make_opt(lr=1.0)
    seq = S.SequentialLR(opt, [S.LinearLR(opt, 0.1, total_iters=3),
                               S.CosineAnnealingWarmRestarts(opt, 3)], milestones=[2])
    run(opt, seq, 3)
    state = seq.state_dict()
    assert len(state["_schedulers"]) == 2 and "optimizer" not in state
    opt2 = make_opt(lr=1.0)
    seq2 = S.SequentialLR(opt2, [S.LinearLR(opt2, 0.1, total_iters=3),
                                 S.CosineAnnealingWarmRestarts(opt2, 3)], milestones=[2])
    seq2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    assert run(opt, seq, 4) == pytest.approx(run(opt2, seq2, 4))
    c = S.CyclicLR(make_opt(), 0.1, 1.0, mode="exp_range", gamma=0.5)
    st = c.state_dict()
    assert "_scale_fn_ref" not in st
    c.load_state_dict(st)
    assert c.scale_fn(2) == 0.25
