"""``Adadelta``, ``Adamax``, ``NAdam`` and ``RAdam``, fused like Adam (one C++ call per group,
csrc/optim.cpp), with ``torch.optim``'s names, defaults, state keys and update formulas."""
from __future__ import annotations

from pydl import _C
from pydl.optim.optimizer import Optimizer, _as_float, _check_hyper


def _check_betas(betas):
    _check_hyper(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
    _check_hyper(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")


def _check_common(name, lr, eps, weight_decay, differentiable, capturable):
    _check_hyper(_as_float(lr) >= 0.0, f"Invalid learning rate: {lr}")
    _check_hyper(eps >= 0.0, f"Invalid epsilon value: {eps}")
    _check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
    if differentiable or capturable:
        raise ValueError(f"{name}: differentiable and capturable are not supported by pydl")


def _cpu_only(name, batch):
    if batch.kernels is not None:
        raise NotImplementedError(f"{name}: pydl has no CUDA kernel for this optimizer yet; "
                                  "its fused step runs on CPU parameters")


def _group_states(opt, name, batch, buffers, **scalars):
    """The per-parameter state of one fused step (CPU only), made on first use as torch makes
    it: ``step`` 0, the named scalars, and a zero buffer for each name in ``buffers``."""
    _cpu_only(name, batch)
    states = []
    for p in batch.params:
        state = opt.state[p]
        if len(state) == 0:
            state["step"] = 0.0
            state.update(scalars)
            for key in buffers:
                state[key] = opt._zeros_state(p)
        states.append(state)
    return states


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``::

        g     <- g + weight_decay * theta                 (maximize negates g first)
        s     <- rho * s + (1 - rho) * g * g              (state 'square_avg')
        delta =  sqrt(u + eps) / sqrt(s + eps) * g        (u: state 'acc_delta')
        u     <- rho * u + (1 - rho) * delta * delta
        theta <- theta - lr * delta

    The step is in the units of theta: the ratio of RMS[delta] to RMS[g] rescales g. PyTorch
    defaults lr=1.0, rho=0.9, eps=1e-6.
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        _check_common("Adadelta", lr, eps, weight_decay, differentiable, capturable)
        _check_hyper(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=False, foreach=foreach, differentiable=False)
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        states = _group_states(self, "Adadelta", batch, ("square_avg", "acc_delta"))
        _C.adadelta_step(batch.arrays, batch.grads, [s["square_avg"]._data for s in states],
                         [s["acc_delta"]._data for s in states], lr=_as_float(group["lr"]),
                         rho=float(group["rho"]), eps=float(group["eps"]),
                         weight_decay=_as_float(group["weight_decay"]),
                         maximize=bool(group["maximize"]))
        for s in states:
            s["step"] += 1


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, section 7.1: Adam with the infinity norm), as
    ``torch.optim.Adamax``::

        g     <- g + weight_decay * theta                 (maximize negates g first)
        m     <- beta1 * m + (1 - beta1) * g              (state 'exp_avg', as a lerp)
        u     <- max(beta2 * u, |g| + eps)                (state 'exp_inf')
        theta <- theta - lr / (1 - beta1^t) * m / u

    Defaults lr=2e-3, betas=(0.9, 0.999), eps=1e-8.
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        _check_common("Adamax", lr, eps, weight_decay, differentiable, capturable)
        _check_betas(betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=False,
                        capturable=False)
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        beta1, beta2 = group["betas"]
        states = _group_states(self, "Adamax", batch, ("exp_avg", "exp_inf"))
        steps = [s["step"] + 1 for s in states]
        _C.adamax_step(batch.arrays, batch.grads, [s["exp_avg"]._data for s in states],
                       [s["exp_inf"]._data for s in states], steps, lr=_as_float(group["lr"]),
                       beta1=_as_float(beta1), beta2=_as_float(beta2), eps=float(group["eps"]),
                       weight_decay=_as_float(group["weight_decay"]),
                       maximize=bool(group["maximize"]))
        for s, t in zip(states, steps):
            s["step"] = t


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016: Adam with Nesterov momentum), as ``torch.optim.NAdam``, with the
    momentum schedule :math:`\mu_t = \beta_1 (1 - \tfrac12 0.96^{t\psi})`,
    :math:`\psi` = ``momentum_decay``::

        g     <- g + weight_decay * theta   (theta <- theta (1 - lr wd) if decoupled_weight_decay)
        P     <- P * mu_t                   (state 'mu_product', starts at 1)
        m     <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g * g
        d     =  sqrt(v / (1 - beta2^t)) + eps
        theta <- theta - lr (1 - mu_t) / (1 - P) * g / d - lr mu_{t+1} / (1 - P mu_{t+1}) * m / d

    Defaults lr=2e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3. ``mu_product`` is kept
    as a Python float (PyTorch keeps a float32 0-d tensor unless the default dtype is float64).
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        _check_common("NAdam", lr, eps, weight_decay, differentiable, capturable)
        _check_betas(betas)
        _check_hyper(momentum_decay >= 0.0, f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=False, differentiable=False)
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        beta1, beta2 = group["betas"]
        psi = float(group["momentum_decay"])
        states = _group_states(self, "NAdam", batch, ("exp_avg", "exp_avg_sq"), mu_product=1.0)
        steps = [s["step"] + 1 for s in states]
        b1 = _as_float(beta1)
        mu_products = [float(s["mu_product"]) * b1 * (1.0 - 0.5 * 0.96 ** (t * psi))
                       for s, t in zip(states, steps)]
        _C.nadam_step(batch.arrays, batch.grads, [s["exp_avg"]._data for s in states],
                      [s["exp_avg_sq"]._data for s in states], steps, mu_products,
                      lr=_as_float(group["lr"]), beta1=b1, beta2=_as_float(beta2),
                      eps=float(group["eps"]), weight_decay=_as_float(group["weight_decay"]),
                      momentum_decay=psi, maximize=bool(group["maximize"]),
                      decoupled_weight_decay=bool(group["decoupled_weight_decay"]))
        for s, t, mp in zip(states, steps, mu_products):
            s["step"] = t
            s["mu_product"] = mp


class RAdam(Optimizer):
    r"""RAdam (Liu et al., 2020: Adam with the variance of the adaptive rate rectified), as
    ``torch.optim.RAdam``::

        g     <- g + weight_decay * theta   (theta <- theta (1 - lr wd) if decoupled_weight_decay)
        m     <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5:  theta <- theta - lr m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps)
                             * r_t,
                    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        else:       theta <- theta - lr m / (1 - beta1^t)     (the variance is not yet tractable)

    Defaults lr=1e-3, betas=(0.9, 0.999), eps=1e-8.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        _check_common("RAdam", lr, eps, weight_decay, differentiable, capturable)
        _check_betas(betas)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, capturable=False,
                        decoupled_weight_decay=decoupled_weight_decay, differentiable=False)
        super().__init__(params, defaults)

    def _step_group(self, group, batch):
        beta1, beta2 = group["betas"]
        states = _group_states(self, "RAdam", batch, ("exp_avg", "exp_avg_sq"))
        steps = [s["step"] + 1 for s in states]
        _C.radam_step(batch.arrays, batch.grads, [s["exp_avg"]._data for s in states],
                      [s["exp_avg_sq"]._data for s in states], steps,
                      lr=_as_float(group["lr"]), beta1=_as_float(beta1), beta2=_as_float(beta2),
                      eps=float(group["eps"]), weight_decay=_as_float(group["weight_decay"]),
                      maximize=bool(group["maximize"]),
                      decoupled_weight_decay=bool(group["decoupled_weight_decay"]))
        for s, t in zip(states, steps):
            s["step"] = t
