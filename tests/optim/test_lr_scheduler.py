"""Learning-rate schedules: the sequences PyTorch's schedulers produce (their chainable,
recursive forms) against the closed-form formulas written here, plus ReduceLROnPlateau's
bookkeeping, state_dict round trips and the stepping-order warning."""
import math
import warnings

import numpy as np
import pytest

import pydl
from pydl import nn, optim
from pydl.optim import lr_scheduler as sched

BASE_LRS = [0.1, 0.03]


def make_optimizer(lrs=BASE_LRS):
    groups = [{"params": [nn.Parameter(pydl.tensor(np.zeros(2)))], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=lrs[0])


def run(make_scheduler, epochs, lrs=BASE_LRS):
    """lr of every group at epochs 0..epochs-1 (what get_last_lr reports after construction and
    after each scheduler.step())."""
    opt = make_optimizer(lrs)
    s = make_scheduler(opt)
    seq = [list(s.get_last_lr())]
    for _ in range(epochs - 1):
        opt.step()
        s.step()
        seq.append(list(s.get_last_lr()))
        assert seq[-1] == [g["lr"] for g in opt.param_groups]
    return np.array(seq)


def closed(formula, epochs, lrs=BASE_LRS):
    return np.array([[formula(base, t) for base in lrs] for t in range(epochs)])


CASES = {
    "StepLR": (lambda o: sched.StepLR(o, step_size=3, gamma=0.5),
               lambda b, t: b * 0.5 ** (t // 3)),
    "MultiStepLR": (lambda o: sched.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.1),
                    lambda b, t: b * 0.1 ** sum(m <= t for m in [2, 5, 5, 9])),
    "ExponentialLR": (lambda o: sched.ExponentialLR(o, gamma=0.9), lambda b, t: b * 0.9 ** t),
    "LinearLR-warmup": (lambda o: sched.LinearLR(o, start_factor=0.25, total_iters=4),
                        lambda b, t: b * (0.25 + 0.75 * min(t, 4) / 4)),
    "LinearLR-decay": (lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.1,
                                                total_iters=8),
                       lambda b, t: b * (1.0 - 0.9 * min(t, 8) / 8)),
    "CosineAnnealingLR": (lambda o: sched.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
                          lambda b, t: 0.001 + (b - 0.001) * (1 + math.cos(math.pi * t / 6)) / 2),
    "LambdaLR": (lambda o: sched.LambdaLR(o, lambda e: 1.0 / (1 + e)),
                 lambda b, t: b / (1 + t)),
    "MultiplicativeLR": (lambda o: sched.MultiplicativeLR(o, lambda e: 0.95),
                         lambda b, t: b * 0.95 ** t),
    "ConstantLR": (lambda o: sched.ConstantLR(o, factor=0.5, total_iters=3),
                   lambda b, t: b * (0.5 if t < 3 else 1.0)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_sequence_matches_closed_form(name):
    make, formula = CASES[name]
    epochs = 20
    np.testing.assert_allclose(run(make, epochs), closed(formula, epochs), rtol=1e-10,
                               atol=1e-15)


def test_course_linear_decay_schedule():
    """eps_k = (1 - k/tau) eps_0 + (k/tau) eps_tau for k <= tau, then eps_tau."""
    eps0, eps_tau, tau = 0.1, 0.001, 10
    got = run(lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=eps_tau / eps0,
                                       total_iters=tau), 15, lrs=[eps0])
    want = [[(1 - min(k, tau) / tau) * eps0 + min(k, tau) / tau * eps_tau] for k in range(15)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_cosine_keeps_its_period_past_t_max():
    got = run(lambda o: sched.CosineAnnealingLR(o, T_max=4), 17, lrs=[1.0])
    want = [[(1 + math.cos(math.pi * t / 4)) / 2] for t in range(17)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_step_with_epoch_uses_closed_form_and_warns():
    opt = make_optimizer()
    s = sched.StepLR(opt, step_size=2, gamma=0.1)
    opt.step()
    with pytest.warns(UserWarning, match="epoch parameter"):
        s.step(5)
    np.testing.assert_allclose(s.get_last_lr(), [b * 0.01 for b in BASE_LRS])


def test_stepping_scheduler_before_optimizer_warns():
    opt = make_optimizer()
    s = sched.ExponentialLR(opt, gamma=0.5)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        s.step()
    opt2 = make_optimizer()
    s2 = sched.ExponentialLR(opt2, gamma=0.5)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2.step()


def test_schedulers_compose():
    """Chainable forms: two schedulers on one optimizer multiply their effects."""
    opt = make_optimizer([1.0])
    a = sched.ExponentialLR(opt, gamma=0.9)
    b = sched.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(6):
        opt.step()
        a.step()
        b.step()
        lrs.append(opt.param_groups[0]["lr"])
    want = [0.9 ** t * 0.5 ** (t // 2) for t in range(1, 7)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)


def test_initial_lr_and_resuming():
    opt = make_optimizer()
    sched.StepLR(opt, step_size=1)
    assert [g["initial_lr"] for g in opt.param_groups] == BASE_LRS
    with pytest.raises(KeyError, match="initial_lr"):
        sched.StepLR(make_optimizer(), step_size=1, last_epoch=3)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        sched.StepLR(object(), step_size=1)


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "LinearLR-warmup", "LambdaLR"])
def test_state_dict_round_trip(name):
    make, _ = CASES[name]
    opt = make_optimizer()
    s = make(opt)
    for _ in range(4):
        opt.step()
        s.step()
    state = s.state_dict()
    assert "optimizer" not in state
    opt_state = opt.state_dict()
    opt2 = make_optimizer()
    opt2.load_state_dict(opt_state)
    s2 = make(opt2)
    s2.load_state_dict(state)
    for g, lr in zip(opt2.param_groups, s.get_last_lr()):
        g["lr"] = lr
    for _ in range(5):
        opt.step()
        s.step()
        opt2.step()
        s2.step()
        assert s.get_last_lr() == s2.get_last_lr()


def test_lambda_lr_checks_count():
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        sched.LambdaLR(make_optimizer(), [lambda e: 1.0])


def test_linear_lr_checks_factors():
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        sched.LinearLR(make_optimizer(), start_factor=0.0)
    with pytest.raises(ValueError, match="Ending multiplicative factor"):
        sched.LinearLR(make_optimizer(), end_factor=1.5)


# ---- ReduceLROnPlateau -----------------------------------------------------------------------

def test_reduce_on_plateau_min_mode():
    opt = make_optimizer([1.0])
    s = sched.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    lrs = []
    for m in metrics:
        s.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    # 0.9 is best at epoch 1; epochs 2, 3, 4 are bad: the third (> patience) halves the rate.
    # 0.8 improves at 5; 6, 7, 8 bad -> halve at 8; 9, 10, 11 bad -> halve at 11.
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    assert s.get_last_lr() == [0.125]


def test_reduce_on_plateau_max_abs_threshold_cooldown_min_lr():
    opt = make_optimizer([1.0, 0.02])
    s = sched.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, threshold=0.05,
                                threshold_mode="abs", cooldown=1, min_lr=[0.0, 0.01])
    s.step(0.5)   # best 0.5
    s.step(0.52)  # not better by > 0.05: bad -> reduce (patience 0), cooldown 1
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.01])
    s.step(0.52)  # in cooldown: bad epochs ignored
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.01])
    s.step(0.60)  # better than 0.5 + 0.05
    s.step(0.61)  # bad -> reduce; group 1 is at min_lr
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.01])


def test_reduce_on_plateau_rel_threshold_and_state():
    opt = make_optimizer([1.0])
    s = sched.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.1)
    s.step(1.0)
    s.step(0.95)  # needs < 0.9 to improve: bad -> halve
    assert opt.param_groups[0]["lr"] == 0.5
    state = s.state_dict()
    s2 = sched.ReduceLROnPlateau(make_optimizer([1.0]))
    s2.load_state_dict(state)
    assert s2.best == 1.0 and s2.mode == "min" and s2.threshold == 0.1


def test_reduce_on_plateau_bad_arguments():
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        sched.ReduceLROnPlateau(make_optimizer(), factor=1.0)
    with pytest.raises(ValueError, match="mode sideways is unknown"):
        sched.ReduceLROnPlateau(make_optimizer(), mode="sideways")
    with pytest.raises(ValueError, match="expected 2 min_lrs, got 1"):
        sched.ReduceLROnPlateau(make_optimizer(), min_lr=[0.1])
