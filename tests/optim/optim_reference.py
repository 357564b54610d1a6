"""Float64 NumPy references of the optimizer updates, written from PyTorch's documented
algorithms (torch.optim docs), one parameter at a time. Never calls pydl."""
import numpy as np


def sgd(p, g, state, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        if "buf" not in state:
            state["buf"] = g.copy()
        else:
            state["buf"] = momentum * state["buf"] + (1 - dampening) * g
        g = g + momentum * state["buf"] if nesterov else state["buf"]
    return p - lr * g


def adagrad(p, g, state, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
            eps=1e-10, maximize=False):
    state.setdefault("step", 0)
    state.setdefault("sum", np.full_like(p, initial_accumulator_value))
    state["step"] += 1
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    clr = lr / (1 + (state["step"] - 1) * lr_decay)
    state["sum"] = state["sum"] + g * g
    return p - clr * g / (np.sqrt(state["sum"]) + eps)


def rmsprop(p, g, state, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
            centered=False, maximize=False):
    state.setdefault("sq", np.zeros_like(p))
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    state["sq"] = alpha * state["sq"] + (1 - alpha) * g * g
    if centered:
        state["ga"] = alpha * state.get("ga", np.zeros_like(p)) + (1 - alpha) * g
        avg = np.sqrt(state["sq"] - state["ga"] ** 2) + eps
    else:
        avg = np.sqrt(state["sq"]) + eps
    if momentum > 0:
        state["buf"] = momentum * state.get("buf", np.zeros_like(p)) + g / avg
        return p - lr * state["buf"]
    return p - lr * g / avg


def adam(p, g, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
         maximize=False, decoupled=False):
    b1, b2 = betas
    state.setdefault("step", 0)
    state.setdefault("m", np.zeros_like(p))
    state.setdefault("v", np.zeros_like(p))
    state["step"] += 1
    t = state["step"]
    g = -g if maximize else g
    if weight_decay:
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    state["m"] = b1 * state["m"] + (1 - b1) * g
    state["v"] = b2 * state["v"] + (1 - b2) * g * g
    v = state["v"]
    if amsgrad:
        state["vmax"] = np.maximum(state.get("vmax", np.zeros_like(p)), v)
        v = state["vmax"]
    m_hat = state["m"] / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    # Kingma & Ba's form; PyTorch rearranges it as
    # p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), the same number.
    return p - lr * m_hat / (np.sqrt(v_hat) + eps)
