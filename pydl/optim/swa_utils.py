"""Weight averaging: ``AveragedModel`` (SWA or EMA), ``SWALR`` and ``update_bn``, as
``torch.optim.swa_utils``, and ``ExponentialMovingAverage``, a light EMA of a model's parameters
for evaluation. The averages update all tensors in one fused C++ call (``pydl._C.lerp_``) per
dtype.

Course notes 11.2: :math:`\\theta_{EMA} \\leftarrow (1 - \\lambda)\\theta_{EMA} + \\lambda\\theta`,
i.e. ``decay`` :math:`= 1 - \\lambda`.
"""
from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from copy import deepcopy
from typing import Callable, Iterable, List, Optional, Union

import numpy as np

from pydl import _C
from pydl.autograd import grad_mode
from pydl.nn.module import Module
from pydl.optim.lr_scheduler import LRScheduler
from pydl.optim.optimizer import Optimizer
from pydl.tensor import Tensor

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _lerp_(targets: List[Tensor], sources: List[Tensor], weight: float) -> None:
    """targets[i] <- targets[i] + weight * (sources[i] - targets[i]), in place: one fused call
    per float dtype; other dtypes (integer buffers) through NumPy."""
    by_dtype = {}
    for t, s in zip(targets, sources):
        if t.shape != s.shape:
            raise ValueError(f"averaging: a tensor of shape {t.shape} cannot average one of "
                             f"shape {s.shape}")
        by_dtype.setdefault(t._data.dtype, []).append((t, s))
    for dtype, pairs in by_dtype.items():
        if dtype in _KERNEL_DTYPES and all(isinstance(t._data, np.ndarray) for t, _ in pairs):
            dst, copies = [], []
            for i, (t, _) in enumerate(pairs):
                a = t._data
                if not (a.flags.c_contiguous and a.flags.writeable and a.flags.aligned):
                    a = np.array(a, order="C", copy=True)
                    copies.append(i)
                dst.append(a)
            src = [np.asarray(s._data, dtype=dtype, order="C") for _, s in pairs]
            _C.lerp_(dst, src, float(weight))
            for i in copies:
                pairs[i][0]._data[...] = dst[i]
        else:
            for t, s in pairs:
                t._data[...] = (t._data + weight * (s._data - t._data)).astype(t._data.dtype)
        for t, _ in pairs:
            t._bump_version()


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """``multi_avg_fn`` for ``AveragedModel``: ``ema <- decay * ema + (1 - decay) * param``."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] "
                         "range.")

    def ema_update(ema_param_list, current_param_list, _num_averaged):
        _lerp_(list(ema_param_list), list(current_param_list), 1.0 - decay)

    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """``multi_avg_fn`` for ``AveragedModel``: the running mean
    ``avg <- avg + (param - avg) / (n + 1)``."""

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        _lerp_(list(averaged_param_list), list(current_param_list), 1.0 / (n + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """Per-tensor ``avg_fn``: returns ``decay * ema + (1 - decay) * param``."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] "
                         "range.")

    def ema_update(ema_param, current_param, _num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable:
    """Per-tensor ``avg_fn``: returns ``avg + (param - avg) / (n + 1)``."""

    def swa_update(averaged_param, current_param, num_averaged):
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        return averaged_param + (current_param - averaged_param) / (n + 1)

    return swa_update


class AveragedModel(Module):
    """A deep copy of ``model`` whose parameters hold an average of ``model``'s over the calls to
    ``update_parameters(model)``: the first call copies, later ones average with
    ``multi_avg_fn`` (fused, e.g. ``get_ema_multi_avg_fn(0.999)``), ``avg_fn`` (per tensor), or by
    default the running mean (stochastic weight averaging). Calling it runs the averaged copy.

    Args:
        model: the model to average.
        device: where to keep the copy (as ``model.to(device)``).
        avg_fn, multi_avg_fn: the averaging rule (at most one of them).
        use_buffers: average the buffers too (else they are copied from ``model``).
    """

    def __init__(self, model: Module, device=None, avg_fn: Optional[Callable] = None,
                 multi_avg_fn: Optional[Callable] = None, use_buffers: bool = False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", Tensor._wrap(np.asarray(0, dtype=np.int64)))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters into the average."""
        if self.use_buffers:
            own = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            own = list(self.module.parameters())
            theirs = list(model.parameters())
        if len(own) != len(theirs):
            raise ValueError(f"update_parameters: the averaged model has {len(own)} tensors but "
                             f"the model has {len(theirs)}")
        n = int(self.n_averaged.item())
        with grad_mode.no_grad():
            if n == 0:
                for a, p in zip(own, theirs):
                    a._data[...] = p._data
                    a._bump_version()
            elif self.avg_fn is not None:
                for a, p in zip(own, theirs):
                    a._data[...] = _data(self.avg_fn(a.detach(), p.detach(), self.n_averaged))
                    a._bump_version()
            else:
                fn = self.multi_avg_fn or get_swa_multi_avg_fn()
                fn(own, [p.detach() for p in theirs], self.n_averaged)
            if not self.use_buffers:
                for b_avg, b_model in zip(self.module.buffers(), model.buffers()):
                    b_avg._data[...] = b_model._data
                    b_avg._bump_version()
        self.n_averaged._data[...] = n + 1


def _data(x):
    return x._data if isinstance(x, Tensor) else np.asarray(x)


class ExponentialMovingAverage:
    r"""An exponential moving average of parameters, kept beside the model:
    ``shadow <- decay * shadow + (1 - decay) * param`` at each ``update()`` (one fused call).

    Evaluate with the averaged weights inside ``with ema.average_parameters(): ...`` (the
    model's own weights come back afterwards), or write them in for good with ``copy_to()``.

    Args:
        parameters: a Module (its parameters) or an iterable of Tensors.
        decay: the weight of the old average, in [0, 1] (course notes: :math:`1 - \lambda`).
        use_num_updates: warm up with ``decay_t = min(decay, (1 + t) / (10 + t))`` so that the
            first updates are not dominated by the initial weights.
    """

    def __init__(self, parameters: Union[Module, Iterable[Tensor]], decay: float = 0.999,
                 use_num_updates: bool = False):
        if decay < 0.0 or decay > 1.0:
            raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                             "[0,1] range.")
        self.decay = float(decay)
        self.use_num_updates = use_num_updates
        self.num_updates = 0
        self._params = self._param_list(parameters)
        self.shadow_params: List[Tensor] = [
            Tensor._wrap(np.array(p._data, order="C", copy=True)) for p in self._params]
        self._backup: Optional[List[np.ndarray]] = None

    @staticmethod
    def _param_list(parameters) -> List[Tensor]:
        if isinstance(parameters, Module):
            return list(parameters.parameters())
        if isinstance(parameters, Tensor):
            return [parameters]
        return list(parameters)

    def _targets(self, parameters) -> List[Tensor]:
        params = self._params if parameters is None else self._param_list(parameters)
        if len(params) != len(self.shadow_params):
            raise ValueError(f"ExponentialMovingAverage: got {len(params)} parameters, the "
                             f"average holds {len(self.shadow_params)}")
        return params

    def current_decay(self) -> float:
        """The decay the next ``update()`` uses."""
        if self.use_num_updates:
            t = self.num_updates + 1
            return min(self.decay, (1 + t) / (10 + t))
        return self.decay

    def update(self, parameters=None) -> None:
        """Fold the current parameters (those given at construction by default) into the
        average."""
        params = self._targets(parameters)
        decay = self.current_decay()
        self.num_updates += 1
        _lerp_(self.shadow_params, params, 1.0 - decay)

    def copy_to(self, parameters=None) -> None:
        """Write the averaged values into the parameters."""
        for p, s in zip(self._targets(parameters), self.shadow_params):
            p._data[...] = s._data
            p._bump_version()

    def store(self, parameters=None) -> None:
        """Save the parameters' current values, for ``restore()``."""
        self._backup = [np.array(p._data, copy=True) for p in self._targets(parameters)]

    def restore(self, parameters=None) -> None:
        """Put back the values saved by ``store()``."""
        if self._backup is None:
            raise RuntimeError("ExponentialMovingAverage.restore() called without store()")
        for p, b in zip(self._targets(parameters), self._backup):
            p._data[...] = b
            p._bump_version()
        self._backup = None

    @contextmanager
    def average_parameters(self, parameters=None):
        """Within the block, the parameters hold the averaged values (e.g. for evaluation)."""
        self.store(parameters)
        self.copy_to(parameters)
        try:
            yield
        finally:
            self.restore(parameters)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates,
                "use_num_updates": self.use_num_updates,
                "shadow_params": [Tensor._wrap(s._data) for s in self.shadow_params]}

    def load_state_dict(self, state_dict: dict) -> None:
        shadow = state_dict["shadow_params"]
        if len(shadow) != len(self.shadow_params):
            raise ValueError(f"ExponentialMovingAverage.load_state_dict: {len(shadow)} averaged "
                             f"tensors in the state, {len(self.shadow_params)} expected")
        new = []
        for s, own in zip(shadow, self.shadow_params):
            arr = s.numpy_view() if isinstance(s, Tensor) else np.asarray(s)
            if arr.shape != own.shape:
                raise ValueError(f"ExponentialMovingAverage.load_state_dict: shape {arr.shape} "
                                 f"does not match the parameter's {own.shape}")
            new.append(Tensor._wrap(np.array(arr, dtype=own.dtype, order="C", copy=True)))
        self.shadow_params = new
        self.decay = float(state_dict["decay"])
        self.num_updates = int(state_dict["num_updates"])
        self.use_num_updates = bool(state_dict.get("use_num_updates", False))


def update_bn(loader: Iterable, model: Module, device=None) -> None:
    """Recompute the running statistics of ``model``'s batch-norm layers with one pass over
    ``loader`` (after averaging weights, the stored statistics belong to no model). A batch is
    a tensor or a tuple/list whose first entry is the input. Batch-norm layers are the modules
    with ``running_mean``/``running_var``, ``momentum`` and ``reset_running_stats()``."""
    momenta = {}
    for module in model.modules():
        if hasattr(module, "reset_running_stats") and hasattr(module, "momentum") and \
                getattr(module, "running_mean", None) is not None:
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None  # a cumulative average over the whole pass
    with grad_mode.no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate to ``swa_lr`` over ``anneal_epochs`` epochs (cosine or
    linear), then hold it: the schedule of stochastic weight averaging.

    Args:
        optimizer: the optimizer whose rates to set.
        swa_lr: the final rate, one for all groups or one per group.
        anneal_epochs: epochs of the annealing phase (default 10).
        anneal_strategy: ``'cos'`` or ``'linear'``.
        last_epoch: index of the last epoch (default -1).
    """

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1):
        if isinstance(swa_lr, (list, tuple)):
            if len(swa_lr) != len(optimizer.param_groups):
                raise ValueError(f"swa_lr must have the same length as optimizer.param_groups. "
                                 f"swa_lr has {len(swa_lr)} values, param_groups has "
                                 f"{len(optimizer.param_groups)}.")
            swa_lrs = list(swa_lr)
        else:
            swa_lrs = [swa_lr] * len(optimizer.param_groups)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else \
            self._linear_anneal

    def get_lr(self) -> List[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
