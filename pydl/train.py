"""Training workflow over pydl's PyTorch-style pieces: ``fit`` (the epoch loop with validation,
metrics, a learning-rate schedule, early stopping and a progress bar), ``evaluate``, and
hyperparameter search with k-fold cross-validation: ``grid_search`` and ``evolutionary_search``.

``fit`` is the loop every PyTorch tutorial writes by hand (course notes, chapter 11)::

    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        ...evaluate on val_loader, step the scheduler, ask the callbacks whether to stop...
"""
from __future__ import annotations

import itertools
import json
import math
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from pydl import random as _random
from pydl.autograd import grad_mode
from pydl.callbacks import EarlyStopping
from pydl.tensor import Tensor


# -- metrics ------------------------------------------------------------------------------------

def accuracy(output: np.ndarray, target: np.ndarray) -> float:
    """Fraction of rows whose largest logit is the target class. ``output`` is ``(N, C)`` (or
    ``(N, C, ...)``, classes in dimension 1); ``target`` holds class indices ``(N, ...)`` or
    class probabilities of ``output``'s shape."""
    if output.ndim < 2:
        raise ValueError(f"accuracy: expected outputs (N, C, ...), got shape {output.shape}")
    pred = output.argmax(axis=1)
    if target.shape == output.shape:
        target = target.argmax(axis=1)
    if pred.shape != target.shape:
        raise ValueError(f"accuracy: predictions of shape {pred.shape} (from outputs "
                         f"{output.shape}) do not match targets of shape {target.shape}")
    return float((pred == target).mean()) if pred.size else 0.0


_METRICS = {"accuracy": accuracy, "acc": accuracy}


def _resolve_metrics(metrics) -> Dict[str, Callable]:
    out = {}
    for m in metrics or ():
        if isinstance(m, str):
            if m not in _METRICS:
                raise ValueError(f"unknown metric {m!r}; built in: {sorted(set(_METRICS))}, or "
                                 "pass a function (output, target) -> float")
            out["accuracy" if m == "acc" else m] = _METRICS[m]
        elif callable(m):
            out[getattr(m, "__name__", "metric")] = m
        else:
            raise TypeError(f"a metric is a name or a function, got {type(m).__name__}")
    return out


def _array(t) -> np.ndarray:
    return t.numpy_view() if isinstance(t, Tensor) else np.asarray(t)


# -- history ------------------------------------------------------------------------------------

class History:
    """What ``fit`` records per epoch: ``history["train_loss"]``, ``history["val_accuracy"]``,
    ``history["lr"]``, ``history["time"]``... (lists, one entry per epoch; ``history.epoch``
    lists the epoch numbers, from 0). ``to_dict``/``from_dict`` and ``save_json`` keep it."""

    def __init__(self, history: Optional[Mapping[str, List[float]]] = None,
                 epoch: Optional[List[int]] = None):
        self.history: Dict[str, List[float]] = {k: list(v) for k, v in (history or {}).items()}
        self.epoch: List[int] = list(epoch or [])

    def append(self, epoch: int, logs: Mapping[str, float]) -> None:
        n = len(self.epoch)
        for key, value in logs.items():
            self.history.setdefault(key, [math.nan] * n).append(float(value))
        for values in self.history.values():
            if len(values) == n:  # a key this epoch did not log
                values.append(math.nan)
        self.epoch.append(int(epoch))

    def __getitem__(self, key: str) -> List[float]:
        return self.history[key]

    def __contains__(self, key: str) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epoch)

    def keys(self):
        return self.history.keys()

    def best(self, key: str, mode: str = "min") -> Tuple[int, float]:
        """``(epoch, value)`` of the best value of ``key`` (NaNs ignored)."""
        values = np.asarray(self.history[key], dtype=np.float64)
        if np.all(np.isnan(values)):
            raise ValueError(f"History.best: {key!r} has no recorded values")
        i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        return self.epoch[i], float(values[i])

    def to_dict(self) -> Dict[str, Any]:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        return cls(d.get("history", {}), d.get("epoch", []))

    def save_json(self, path: str) -> None:
        # NaN is not JSON: write null instead (a metric missing for an epoch)
        clean = {k: [None if isinstance(x, float) and math.isnan(x) else x for x in v]
                 for k, v in self.history.items()}
        with open(path, "w") as f:
            json.dump({"epoch": self.epoch, "history": clean}, f, indent=1)

    @classmethod
    def load_json(cls, path: str) -> "History":
        with open(path) as f:
            d = json.load(f)
        hist = {k: [math.nan if x is None else x for x in v] for k, v in d["history"].items()}
        return cls(hist, d["epoch"])

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={sorted(self.history)})"


# -- fit / evaluate -----------------------------------------------------------------------------

def _split_batch(batch, device):
    if not isinstance(batch, (list, tuple)) or len(batch) != 2:
        raise ValueError("fit/evaluate: each batch must be a pair (inputs, targets); got "
                         f"{type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (list, tuple)) else "")
                         + " (for an autoencoder use TensorDataset(x, x))")
    x, y = batch
    if device is not None:
        x = x.to(device) if isinstance(x, Tensor) else x
        y = y.to(device) if isinstance(y, Tensor) else y
    return x, y


def _batch_size(x) -> int:
    return int(x.shape[0]) if hasattr(x, "shape") and len(x.shape) else 1


def _progress_bar(desc: str, enabled: bool, total: Optional[int]):
    """A tqdm bar updated by hand (iterating through tqdm would close it before the epoch's
    validation results can be shown on it), or None."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(desc=desc, total=total, unit="batch", leave=True, dynamic_ncols=True)


def evaluate(model, loader, loss_fn: Optional[Callable] = None,
             metrics: Sequence[Union[str, Callable]] = ("accuracy",),
             device=None) -> Dict[str, float]:
    """Mean loss (when ``loss_fn`` is given) and metrics of ``model`` over ``loader``, in eval
    mode and without recording a graph; the model's train/eval mode is restored afterwards.
    Means are over samples (batches weighted by their size). Returns e.g.
    ``{"loss": 0.12, "accuracy": 0.97}``.

    Under ``pydl.distributed`` with a loader whose sampler is a ``DistributedSampler`` (each rank
    sees its share), the sums are added over the ranks, so every rank gets the global means."""
    totals, count = _evaluate_sums(model, loader, loss_fn, _resolve_metrics(metrics), device)
    if _distributed_world() is not None and _is_distributed_loader(loader):
        totals, count = _sum_over_ranks(totals, count)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no samples")
    if loss_fn is None:
        totals.pop("loss")
    return {k: v / count for k, v in totals.items()}


def _evaluate_sums(model, loader, loss_fn, fns, device):
    was_training = model.training
    model.eval()
    totals = {"loss": 0.0, **{name: 0.0 for name in fns}}
    count = 0
    try:
        with grad_mode.no_grad():
            for batch in loader:
                x, y = _split_batch(batch, device)
                out = model(x)
                n = _batch_size(x)
                if loss_fn is not None:
                    totals["loss"] += float(loss_fn(out, y).item()) * n
                out_arr, y_arr = _array(out), _array(y)
                for name, fn in fns.items():
                    totals[name] += float(fn(out_arr, y_arr)) * n
                count += n
    finally:
        model.train(was_training)
    return totals, count


# -- data-parallel runs (pydl.distributed) -------------------------------------------------------

def _distributed_world():
    """(rank, world size) when a pydl.distributed process group of more than one rank is up."""
    from pydl import distributed as dist

    if not dist.is_initialized() or dist.get_world_size() == 1:
        return None
    return dist.get_rank(), dist.get_world_size()


def _is_distributed_loader(loader) -> bool:
    from pydl.data.distributed import DistributedSampler

    return isinstance(getattr(loader, "sampler", None), DistributedSampler)


def _sum_over_ranks(totals: Dict[str, float], count: int):
    """Per-rank sums -> sums over all ranks (one all-reduce of float64s)."""
    from pydl import distributed as dist

    keys = sorted(totals)
    buf = Tensor._wrap(np.array([totals[k] for k in keys] + [count], dtype=np.float64))
    dist.all_reduce(buf)
    return {k: float(v) for k, v in zip(keys, buf._data[:-1])}, int(round(buf._data[-1]))


def _any_rank(flag: bool) -> bool:
    from pydl import distributed as dist

    buf = Tensor._wrap(np.array([int(flag)], dtype=np.int64))
    dist.all_reduce(buf, op=dist.ReduceOp.MAX)
    return bool(buf._data[0])


def _is_plateau_scheduler(scheduler) -> bool:
    try:
        from pydl.optim.lr_scheduler import ReduceLROnPlateau
    except ImportError:  # pragma: no cover
        return type(scheduler).__name__ == "ReduceLROnPlateau"
    return isinstance(scheduler, ReduceLROnPlateau)


def fit(model, loss_fn: Callable, optimizer, train_loader, val_loader=None, epochs: int = 1,
        scheduler=None, callbacks: Iterable = (),
        metrics: Sequence[Union[str, Callable]] = ("accuracy",), monitor: Optional[str] = None,
        device=None, progress: bool = True, initial_epoch: int = 0,
        history: Optional[History] = None) -> History:
    """Train ``model`` for epochs ``initial_epoch .. epochs - 1``; returns the ``History``.

    Each epoch: one pass over ``train_loader`` (batches ``(inputs, targets)``; zero_grad,
    forward, ``loss_fn(outputs, targets)``, backward, ``optimizer.step()``), with a tqdm bar
    showing the running loss; then ``evaluate`` on ``val_loader`` (when given); then
    ``scheduler.step()`` (``scheduler.step(logs[monitor])`` for ``ReduceLROnPlateau``); then the
    callbacks. Logged per epoch: ``train_loss``, ``train_<metric>`` (over the epoch's batches,
    as the weights changed), ``val_loss``, ``val_<metric>``, ``lr`` (the epoch's learning rate
    of the first parameter group) and ``time`` (seconds).

    Callbacks: an object with ``step(metric, model) -> bool`` (``EarlyStopping``, re-exported
    here from ``pydl.callbacks``) gets
    ``logs[monitor]`` and stops training when it returns True; at the end, one that has
    ``restore_best_weights`` set and recorded a best state restores it into the model. Any
    object with ``on_epoch_end(epoch, logs, model)`` is called with the epoch's logs (a True
    return stops training) -- e.g. to save a checkpoint every epoch.

    ``monitor`` defaults to ``"val_loss"`` with a ``val_loader``, else ``"train_loss"``.
    ``initial_epoch`` and ``history`` continue an earlier run (``pydl train --resume``).

    Data-parallel (``pydl.distributed`` initialised, ``model`` a ``DistributedDataParallel``,
    loaders with ``DistributedSampler``): every rank runs this loop on its share; each epoch
    starts with ``sampler.set_epoch(epoch)``; the logged losses and metrics are sums over all
    ranks (so every rank logs the same global values, and early stopping decides the same
    everywhere); the progress bar and the ``on_epoch_end`` callbacks (checkpointing, logging) run
    on rank 0 only, unless a callback sets ``all_ranks = True``; a stop requested on any rank
    stops all of them.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if not 0 <= initial_epoch <= epochs:
        raise ValueError(f"fit: initial_epoch ({initial_epoch}) must lie in [0, epochs={epochs}]")
    fns = _resolve_metrics(metrics)
    callbacks = list(callbacks or ())
    monitor = monitor or ("val_loss" if val_loader is not None else "train_loss")
    uses_monitor = _is_plateau_scheduler(scheduler) or any(
        hasattr(cb, "step") and not hasattr(cb, "on_epoch_end") for cb in callbacks)
    if uses_monitor and monitor.startswith("val_") and val_loader is None:
        raise ValueError(f"fit: monitor={monitor!r} needs a val_loader")
    if device is not None:
        model.to(device)
    history = history if history is not None else History()
    world = _distributed_world()
    is_rank0 = world is None or world[0] == 0
    progress = progress and is_rank0
    try:
        n_batches = len(train_loader)
    except TypeError:
        n_batches = None

    for epoch in range(initial_epoch, epochs):
        start = time.perf_counter()
        model.train()
        lr = float(optimizer.param_groups[0]["lr"]) if hasattr(optimizer, "param_groups") else \
            math.nan
        totals = {name: 0.0 for name in fns}
        loss_sum, count = 0.0, 0
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        bar = _progress_bar(f"epoch {epoch + 1}/{epochs}", progress, n_batches)
        for batch in train_loader:
            x, y = _split_batch(batch, device)
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            n = _batch_size(x)
            loss_value = float(loss.item())
            loss_sum += loss_value * n
            count += n
            if fns:
                out_arr, y_arr = _array(out.detach()), _array(y)
                for name, fn in fns.items():
                    totals[name] += float(fn(out_arr, y_arr)) * n
            if bar is not None:
                bar.set_postfix(loss=f"{loss_sum / count:.4f}", refresh=False)
                bar.update(1)
        if world is not None:
            summed, count = _sum_over_ranks({"loss": loss_sum, **totals}, count)
            loss_sum = summed.pop("loss")
            totals = summed
        if count == 0:
            if bar is not None:
                bar.close()
            raise ValueError("fit: train_loader yielded no samples")
        logs = {"train_loss": loss_sum / count}
        logs.update({f"train_{name}": v / count for name, v in totals.items()})
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn, list(fns.values()), device)
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs["lr"] = lr
        if scheduler is not None:
            if _is_plateau_scheduler(scheduler):
                scheduler.step(logs[monitor])
            else:
                scheduler.step()
        logs["time"] = time.perf_counter() - start
        if bar is not None:
            shown = {"loss": logs["train_loss"]}
            shown.update({k.replace("train_", ""): v for k, v in logs.items()
                          if k.startswith("train_") and k != "train_loss"})
            shown.update({k: v for k, v in logs.items() if k.startswith("val_")})
            bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()}, refresh=False)
            bar.close()
        history.append(epoch, logs)

        stop = False
        for cb in callbacks:
            if hasattr(cb, "on_epoch_end"):
                if is_rank0 or getattr(cb, "all_ranks", False):
                    stop = bool(cb.on_epoch_end(epoch, logs, model)) or stop
            elif hasattr(cb, "step"):
                if monitor not in logs:
                    raise ValueError(f"fit: callback monitors {monitor!r}, but the logs only "
                                     f"have {sorted(logs)}")
                stop = bool(cb.step(logs[monitor], model)) or stop
        if world is not None:
            stop = _any_rank(stop)
        if stop:
            break

    for cb in callbacks:
        if getattr(cb, "restore_best_weights", False) and getattr(cb, "best_state", None) \
                is not None and hasattr(cb, "restore"):
            cb.restore(model)
    return history


# -- hyperparameter search ------------------------------------------------------------------------

class Uniform:
    """A float hyperparameter drawn uniformly from ``[low, high]`` (for ``evolutionary_search``)."""

    def __init__(self, low: float, high: float):
        if not low < high:
            raise ValueError(f"{type(self).__name__}: need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def mutate(self, value: float, rng: np.random.Generator, scale: float) -> float:
        return float(np.clip(value + rng.normal(0.0, scale * (self.high - self.low)), self.low,
                             self.high))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.low}, {self.high})"


class LogUniform(Uniform):
    """A positive float hyperparameter whose logarithm is uniform on ``[log low, log high]``
    (learning rates, weight decay); mutation is multiplicative."""

    def __init__(self, low: float, high: float):
        super().__init__(low, high)
        if low <= 0:
            raise ValueError(f"LogUniform: low must be positive, got {low}")

    def sample(self, rng: np.random.Generator) -> float:
        return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))

    def mutate(self, value: float, rng: np.random.Generator, scale: float) -> float:
        span = np.log(self.high) - np.log(self.low)
        return float(np.clip(np.exp(np.log(value) + rng.normal(0.0, scale * span)), self.low,
                             self.high))


class IntUniform(Uniform):
    """An int hyperparameter drawn uniformly from ``low..high`` (inclusive)."""

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(int(self.low), int(self.high) + 1))

    def mutate(self, value: int, rng: np.random.Generator, scale: float) -> int:
        step = max(1.0, scale * (self.high - self.low))
        return int(np.clip(round(value + rng.normal(0.0, step)), self.low, self.high))


class SearchResult:
    """Outcome of a search: ``results`` (one dict per configuration evaluated, best first, with
    ``params``, ``fold_scores``, ``mean`` and ``std``), ``best_params``, ``best_score``; for
    ``evolutionary_search`` also ``generations`` (best and mean score per generation)."""

    def __init__(self, results: List[Dict[str, Any]], metric: str, mode: str,
                 generations: Optional[List[Dict[str, float]]] = None):
        sign = -1.0 if mode == "max" else 1.0
        self.results = sorted(results, key=lambda r: sign * r["mean"]
                              if not math.isnan(r["mean"]) else math.inf)
        self.metric = metric
        self.mode = mode
        self.generations = generations or []

    @property
    def best_params(self) -> Dict[str, Any]:
        return dict(self.results[0]["params"])

    @property
    def best_score(self) -> float:
        return self.results[0]["mean"]

    def __repr__(self) -> str:
        return (f"SearchResult(best_params={self.best_params}, best_{self.metric}="
                f"{self.best_score:.4f}, configs={len(self.results)})")


def _unpack_build(built):
    if isinstance(built, tuple) and len(built) in (2, 3):
        return built if len(built) == 3 else (built[0], built[1], None)
    raise TypeError("build(params) must return (model, optimizer) or (model, optimizer, "
                    f"scheduler), got {type(built).__name__}")


def cross_validate(build: Callable[[Dict[str, Any]], tuple], params: Mapping[str, Any], dataset,
                   loss_fn: Callable, k: int = 5, epochs: int = 10, batch_size: int = 32,
                   metric: str = "accuracy", seed: int = 0,
                   make_callbacks: Optional[Callable[[], list]] = None) -> List[float]:
    """K-fold cross-validation of one configuration: for each fold, ``pydl.manual_seed(seed +
    fold)``, ``build(params)`` a fresh model and optimizer, ``fit`` on the other folds, and score
    ``metric`` (``"loss"`` or a metric name) on the held-out fold. ``params`` may set
    ``epochs`` and ``batch_size`` too. Returns the k fold scores. Seeding per fold makes every
    configuration start from the same initial weights and batch order, a fair comparison."""
    from pydl.data import DataLoader, KFold, Subset

    epochs = int(params.get("epochs", epochs))
    batch_size = int(params.get("batch_size", batch_size))
    scores = []
    for fold, (train_idx, val_idx) in enumerate(
            KFold(k, shuffle=True, random_state=seed).split(dataset)):
        _random.manual_seed(seed + fold)
        model, optimizer, scheduler = _unpack_build(build(dict(params)))
        gen = _random.Generator().manual_seed(seed + fold)
        train_loader = DataLoader(Subset(dataset, train_idx), batch_size=batch_size, shuffle=True,
                                  generator=gen)
        val_loader = DataLoader(Subset(dataset, val_idx), batch_size=max(batch_size, 256))
        metrics = [] if metric == "loss" else [metric]
        callbacks = make_callbacks() if make_callbacks is not None else ()
        fit(model, loss_fn, optimizer, train_loader, val_loader, epochs=epochs,
            scheduler=scheduler, callbacks=callbacks, metrics=metrics, progress=False)
        result = evaluate(model, val_loader, loss_fn, metrics)
        scores.append(result[metric])
    return scores


def _summarise(params, scores) -> Dict[str, Any]:
    return {"params": dict(params), "fold_scores": [float(s) for s in scores],
            "mean": float(np.mean(scores)), "std": float(np.std(scores))}


def _mode_for(metric: str, mode: Optional[str]) -> str:
    mode = mode or ("min" if metric == "loss" else "max")
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    return mode


def grid_search(build: Callable[[Dict[str, Any]], tuple],
                param_grid: Union[Mapping[str, Sequence], Sequence[Mapping[str, Sequence]]],
                dataset, loss_fn: Callable, k: int = 5, epochs: int = 10, batch_size: int = 32,
                metric: str = "accuracy", mode: Optional[str] = None, seed: int = 0,
                make_callbacks: Optional[Callable[[], list]] = None,
                verbose: bool = False) -> SearchResult:
    """Exhaustive search: every combination in ``param_grid`` (a dict of name -> list of values,
    or a list of such dicts, as scikit-learn's ``ParameterGrid``), each scored by ``k``-fold
    ``cross_validate`` (``build(params)`` returns ``(model, optimizer[, scheduler])``). ``mode``
    is ``"max"`` for metrics and ``"min"`` for ``metric="loss"`` unless given.

    Example::

        def build(p):
            model = MLP([64, p["hidden"], 10])
            return model, pydl.optim.Adam(model.parameters(), lr=p["lr"])
        res = grid_search(build, {"hidden": [32, 128], "lr": [1e-3, 1e-2]}, train_set,
                          nn.CrossEntropyLoss(), k=3, epochs=5)
        res.best_params
    """
    mode = _mode_for(metric, mode)
    grids = [param_grid] if isinstance(param_grid, Mapping) else list(param_grid)
    configs = []
    for grid in grids:
        for name, values in grid.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
                raise TypeError(f"grid_search: the values of {name!r} must be a list, got "
                                f"{values!r}")
        names = list(grid)
        for combo in itertools.product(*(list(grid[n]) for n in names)):
            configs.append(dict(zip(names, combo)))
    if not configs:
        raise ValueError("grid_search: the grid is empty")
    results = []
    for params in configs:
        scores = cross_validate(build, params, dataset, loss_fn, k, epochs, batch_size, metric,
                                seed, make_callbacks)
        results.append(_summarise(params, scores))
        if verbose:
            print(f"{params}: {metric} {np.mean(scores):.4f} +- {np.std(scores):.4f}")
    return SearchResult(results, metric, mode)


def evolutionary_search(build: Callable[[Dict[str, Any]], tuple], space: Mapping[str, Any],
                        dataset, loss_fn: Callable, population: int = 8, generations: int = 5,
                        mutation_rate: float = 0.3, mutation_scale: float = 0.15,
                        elite: int = 2, tournament: int = 2, k: int = 3, epochs: int = 10,
                        batch_size: int = 32, metric: str = "accuracy", mode: Optional[str] = None,
                        seed: int = 0, make_callbacks: Optional[Callable[[], list]] = None,
                        verbose: bool = False) -> SearchResult:
    """A simple genetic algorithm over hyperparameters, each configuration scored by ``k``-fold
    ``cross_validate``.

    ``space`` maps a name to a list of choices, or to ``Uniform``, ``LogUniform`` or
    ``IntUniform`` ranges. Generation 0 is ``population`` random configurations. Each next
    generation keeps the ``elite`` best unchanged (elitism) and fills the rest with children:
    two parents picked by tournament selection (the best of ``tournament`` random members),
    uniform crossover (each gene from either parent), then mutation of each gene with
    probability ``mutation_rate`` (a choice: another value; a range: a Gaussian step of
    ``mutation_scale`` times its width, in log space for ``LogUniform``). Configurations already
    scored are not trained again. All randomness comes from ``seed``.
    """
    mode = _mode_for(metric, mode)
    if population < 2 or generations < 1 or not 0 <= elite < population or tournament < 1:
        raise ValueError(f"evolutionary_search: need population >= 2, generations >= 1, "
                         f"0 <= elite < population and tournament >= 1; got population="
                         f"{population}, generations={generations}, elite={elite}, "
                         f"tournament={tournament}")
    genes = {}
    for name, dist in space.items():
        if isinstance(dist, Uniform):
            genes[name] = dist
        elif isinstance(dist, (list, tuple)) and len(dist) > 0:
            genes[name] = list(dist)
        else:
            raise TypeError(f"evolutionary_search: {name!r} must be a non-empty list of choices "
                            f"or a Uniform/LogUniform/IntUniform range, got {dist!r}")
    rng = np.random.default_rng(seed)
    sign = 1.0 if mode == "max" else -1.0

    def sample() -> Dict[str, Any]:
        return {n: (g.sample(rng) if isinstance(g, Uniform) else g[int(rng.integers(len(g)))])
                for n, g in genes.items()}

    def mutate(params: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(params)
        for n, g in genes.items():
            if rng.random() >= mutation_rate:
                continue
            if isinstance(g, Uniform):
                out[n] = g.mutate(out[n], rng, mutation_scale)
            elif len(g) > 1:
                others = [v for v in g if v != out[n]]
                out[n] = others[int(rng.integers(len(others)))]
        return out

    cache: Dict[str, Dict[str, Any]] = {}

    def score(params: Dict[str, Any]) -> float:
        key = repr(sorted(params.items()))
        if key not in cache:
            scores = cross_validate(build, params, dataset, loss_fn, k, epochs, batch_size,
                                    metric, seed, make_callbacks)
            cache[key] = _summarise(params, scores)
            if verbose:
                print(f"{params}: {metric} {np.mean(scores):.4f} +- {np.std(scores):.4f}")
        return cache[key]["mean"]

    def fitness(params) -> float:
        s = score(params)
        return -math.inf if math.isnan(s) else sign * s

    pop = [sample() for _ in range(population)]
    history = []
    for gen in range(generations):
        ranked = sorted(pop, key=fitness, reverse=True)
        values = [score(p) for p in ranked]
        history.append({"generation": gen, "best": values[0], "mean": float(np.mean(values))})
        if gen == generations - 1:
            break

        def pick(ranked=ranked) -> Dict[str, Any]:
            """Tournament selection: the fittest of ``tournament`` random members."""
            contenders = [ranked[int(i)] for i in rng.integers(len(ranked), size=tournament)]
            return max(contenders, key=fitness)

        children = ranked[:elite]
        while len(children) < population:
            a, b = pick(), pick()
            child = {n: (a[n] if rng.random() < 0.5 else b[n]) for n in genes}
            children.append(mutate(child))
        pop = children
    return SearchResult(list(cache.values()), metric, mode, history)


__all__ = ["fit", "evaluate", "History", "accuracy", "cross_validate", "grid_search",
           "evolutionary_search", "Uniform", "LogUniform", "IntUniform", "SearchResult",
           "EarlyStopping"]
