"""Ensembles (course notes 10.x, "bagging"): train k models on bootstrap resamples of the
training set and combine their predictions.

Bagging (Breiman, 1996) draws, for each of ``k`` models, ``n`` training samples *with
replacement* from the ``n`` available (about 1 - 1/e = 63% of them distinct per resample), trains
a fresh model on each resample and averages the models' predicted class probabilities ("soft"
voting) or takes the majority of their predicted classes ("hard" voting). The models make
partly independent errors, so the ensemble's error is lower than the typical member's.

``Bagging`` is a ``pydl.nn.Module`` holding its members in ``estimators`` (a ``ModuleList``):
``forward(x)`` returns the log of the ensemble's class probabilities, so ``pydl.train.evaluate``
with the ``accuracy`` metric (and ``nn.NLLLoss``) scores it like any classifier; ``fit`` trains
the members with ``pydl.train.fit``; ``predict_proba``/``predict`` work on arrays as
scikit-learn's ``BaggingClassifier`` does.
"""
from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

from pydl import nn
from pydl.tensor import Tensor


def bootstrap_indices(n: int, n_estimators: int, max_samples=1.0,
                      random_state: Optional[int] = None) -> List[np.ndarray]:
    """``n_estimators`` bootstrap resamples of ``range(n)``: each ``m`` indices drawn uniformly
    with replacement, ``m = round(max_samples * n)`` for a float ``max_samples`` (a fraction) or
    ``max_samples`` itself for an int. The draws come from
    ``numpy.random.default_rng(random_state).integers(0, n, size=m)``, one call per resample in
    order, so they are reproducible from ``random_state``."""
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"bootstrap_indices: need at least one sample, got n={n!r}")
    if not isinstance(n_estimators, (int, np.integer)) or n_estimators < 1:
        raise ValueError(f"bootstrap_indices: n_estimators must be a positive int, got "
                         f"{n_estimators!r}")
    if isinstance(max_samples, (float, np.floating)):
        if not 0.0 < max_samples <= 1.0:
            raise ValueError(f"bootstrap_indices: a float max_samples is a fraction in (0, 1], "
                             f"got {max_samples}")
        m = max(1, int(round(max_samples * n)))
    elif isinstance(max_samples, (int, np.integer)) and not isinstance(max_samples, bool):
        if not 1 <= max_samples <= n:
            raise ValueError(f"bootstrap_indices: an int max_samples must lie in [1, n={n}], got "
                             f"{max_samples}")
        m = int(max_samples)
    else:
        raise TypeError(f"bootstrap_indices: max_samples must be a float fraction or an int, got "
                        f"{type(max_samples).__name__}")
    rng = np.random.default_rng(random_state)
    return [rng.integers(0, n, size=m) for _ in range(int(n_estimators))]


def _as_array(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)


class Bagging(nn.Module):
    """Bootstrap aggregating of ``n_estimators`` classifiers made by ``model_fn()``.

    Args:
        model_fn: a factory returning a fresh, untrained ``nn.Module`` that maps a batch of
            inputs to class scores (logits) ``(N, C)``; called once per member.
        n_estimators: the number of members ``k``.
        voting: ``"soft"`` averages the members' softmax probabilities; ``"hard"`` counts one
            vote per member for its arg-max class (ties go to the lowest class index, as
            ``numpy.argmax`` of the vote counts).
        max_samples: size of each resample, a fraction of ``n`` (float) or a count (int).
        random_state: seed of the resampling (``bootstrap_indices``) and of each member's
            initialisation and batch order (``pydl.manual_seed(random_state + i)``).

    ``fit(X, y)`` (arrays or Tensors) or ``fit(dataset)`` trains every member on its own
    resample; ``indices_[i]`` holds member ``i``'s resample and ``oob_mask_[i]`` the samples it
    never saw. ``forward(x)`` returns ``log`` of the ensemble probabilities (soft) or of the vote
    fractions (hard), a ``(N, C)`` Tensor without gradient: ``pydl.train.evaluate(bagging,
    loader, nn.NLLLoss(), ["accuracy"])`` works.
    """

    def __init__(self, model_fn: Callable[[], nn.Module], n_estimators: int = 10,
                 voting: str = "soft", max_samples=1.0, random_state: Optional[int] = 0):
        super().__init__()
        if not callable(model_fn):
            raise TypeError(f"Bagging: model_fn must be a callable returning a Module, got "
                            f"{type(model_fn).__name__}")
        if voting not in ("soft", "hard"):
            raise ValueError(f"Bagging: voting must be 'soft' or 'hard', got {voting!r}")
        if not isinstance(n_estimators, int) or isinstance(n_estimators, bool) or n_estimators < 1:
            raise ValueError(f"Bagging: n_estimators must be a positive int, got {n_estimators!r}")
        self.model_fn = model_fn
        self.n_estimators = n_estimators
        self.voting = voting
        self.max_samples = max_samples
        self.random_state = random_state
        self.estimators = nn.ModuleList()
        self.indices_: List[np.ndarray] = []
        self.oob_mask_: List[np.ndarray] = []

    # -- training ---------------------------------------------------------------------------------
    def fit(self, X, y=None, *, epochs: int = 10, batch_size: int = 32,
            optimizer_fn: Optional[Callable] = None, loss_fn: Optional[Callable] = None,
            train_fn: Optional[Callable] = None, **fit_kwargs) -> "Bagging":
        """Train ``n_estimators`` fresh members, member ``i`` on ``Subset(data, indices_[i])``.

        ``X, y``: inputs and integer class labels (arrays or Tensors), or ``X`` a dataset of
        ``(input, label)`` pairs and ``y`` None. Each member is trained by ``pydl.train.fit``
        with ``optimizer_fn(params)`` (default Adam, lr 1e-3) and ``loss_fn`` (default
        cross-entropy) for ``epochs`` epochs of ``batch_size``; extra keyword arguments go to
        ``fit``. ``train_fn(model, dataset)`` replaces that whole training step when given."""
        from pydl import manual_seed, optim
        from pydl.data import DataLoader, Subset, TensorDataset
        from pydl.random import Generator
        from pydl.train import fit as fit_model

        if y is not None:
            X_arr, y_arr = _as_array(X), _as_array(y)
            if X_arr.shape[:1] != y_arr.shape[:1]:
                raise ValueError(f"Bagging.fit: X has {X_arr.shape[0]} samples (shape "
                                 f"{X_arr.shape}) but y has {y_arr.shape[0]} (shape "
                                 f"{y_arr.shape})")
            dataset = TensorDataset(X_arr, y_arr.astype(np.int64))
        else:
            dataset = X
        n = len(dataset)
        seed = 0 if self.random_state is None else int(self.random_state)
        self.indices_ = bootstrap_indices(n, self.n_estimators, self.max_samples,
                                          self.random_state)
        self.oob_mask_ = []
        members = []
        optimizer_fn = optimizer_fn or (lambda params: optim.Adam(params, lr=1e-3))
        loss_fn = loss_fn or nn.CrossEntropyLoss()
        fit_kwargs.setdefault("progress", False)
        fit_kwargs.setdefault("metrics", [])
        for i, idx in enumerate(self.indices_):
            manual_seed(seed + i)  # member i's initialisation and dropout masks
            model = self.model_fn()
            if not isinstance(model, nn.Module):
                raise TypeError(f"Bagging: model_fn() must return an nn.Module, got "
                                f"{type(model).__name__}")
            subset = Subset(dataset, idx)
            if train_fn is not None:
                train_fn(model, subset)
            else:
                loader = DataLoader(subset, batch_size=batch_size, shuffle=True,
                                    generator=Generator().manual_seed(seed + i))
                fit_model(model, loss_fn, optimizer_fn(model.parameters()), loader,
                          epochs=epochs, **fit_kwargs)
            oob = np.ones(n, dtype=bool)
            oob[idx] = False
            self.oob_mask_.append(oob)
            members.append(model)
        self.estimators = nn.ModuleList(members)
        return self

    # -- prediction -------------------------------------------------------------------------------
    def _check_fitted(self, what: str) -> None:
        if len(self.estimators) == 0:
            raise RuntimeError(f"Bagging.{what}: the ensemble has no members; call fit() first")

    def member_probabilities(self, X, batch_size: int = 1024) -> np.ndarray:
        """Each member's softmax probabilities, ``(k, N, C)`` float64 (eval mode, no graph)."""
        from pydl.autograd import grad_mode

        self._check_fitted("member_probabilities")
        x = X if isinstance(X, Tensor) else Tensor(np.asarray(X))
        n = int(x.shape[0])
        out = []
        with grad_mode.no_grad():
            for model in self.estimators:
                was_training = model.training
                model.eval()
                try:
                    parts = [_as_array(model(x[s:s + batch_size])).astype(np.float64)
                             for s in range(0, max(n, 1), batch_size)]
                finally:
                    model.train(was_training)
                logits = np.concatenate(parts) if parts else np.zeros((0, 0))
                if logits.ndim != 2:
                    raise ValueError(f"Bagging: a member returned scores of shape "
                                     f"{logits.shape}; expected (N, C)")
                z = logits - logits.max(axis=1, keepdims=True)
                e = np.exp(z)
                out.append(e / e.sum(axis=1, keepdims=True))
        return np.stack(out)

    def member_predictions(self, X) -> np.ndarray:
        """Each member's predicted classes, ``(k, N)`` int64."""
        return self.member_probabilities(X).argmax(axis=2)

    def predict_proba(self, X) -> np.ndarray:
        """``(N, C)`` float64: the mean of the members' probabilities (soft voting) or the
        fraction of members voting for each class (hard voting)."""
        probs = self.member_probabilities(X)
        if self.voting == "soft":
            return probs.mean(axis=0)
        k, n, c = probs.shape
        votes = probs.argmax(axis=2)
        counts = np.zeros((n, c))
        for member_votes in votes:
            counts[np.arange(n), member_votes] += 1
        return counts / k

    def predict(self, X) -> np.ndarray:
        """``(N,)`` predicted classes: arg-max of ``predict_proba`` (hard voting: the majority
        class, ties to the lowest index)."""
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X, y) -> float:
        """Accuracy of ``predict(X)`` against labels ``y``."""
        y = _as_array(y)
        return float((self.predict(X) == y).mean()) if len(y) else 0.0

    def oob_score(self, X, y) -> float:
        """Out-of-bag accuracy: each training sample predicted by the members whose resample left
        it out (samples every member saw are skipped). ``X, y`` must be the training data
        ``fit`` was given. NaN when no sample is out of bag."""
        self._check_fitted("oob_score")
        probs = self.member_probabilities(X)
        masks = np.stack(self.oob_mask_)  # (k, N)
        if masks.shape[1] != probs.shape[1]:
            raise ValueError(f"Bagging.oob_score: fit saw {masks.shape[1]} samples, X has "
                             f"{probs.shape[1]}")
        if self.voting == "soft":
            agg = (probs * masks[:, :, None]).sum(axis=0)
        else:
            agg = np.zeros(probs.shape[1:])
            votes = probs.argmax(axis=2)
            for m, v in zip(masks, votes):
                agg[np.flatnonzero(m), v[m]] += 1
        seen = masks.any(axis=0)
        if not seen.any():
            return float("nan")
        y = _as_array(y)
        return float((agg[seen].argmax(axis=1) == y[seen]).mean())

    def forward(self, x):
        """log of ``predict_proba(x)`` as a Tensor (0 probabilities give -inf)."""
        with np.errstate(divide="ignore"):
            return Tensor._wrap(np.log(self.predict_proba(x)).astype(np.float32))

    def extra_repr(self) -> str:
        return (f"n_estimators={self.n_estimators}, voting={self.voting!r}, "
                f"max_samples={self.max_samples}, fitted={len(self.estimators)}")


def mc_dropout_proba(model: nn.Module, X, n_samples: int = 20, batch_size: int = 1024,
                     seed: Optional[int] = None) -> np.ndarray:
    """Monte-Carlo dropout (Gal & Ghahramani, 2016): the mean softmax probability over
    ``n_samples`` forward passes with dropout left *on* (only the ``Dropout`` modules are put in
    train mode; batch norm and the rest stay in eval mode). Returns ``(N, C)`` float64.

    The usual alternative, ``model.eval()``, is the weight-scaling inference rule: one pass with
    every unit kept, which with inverted dropout (activations scaled by 1/(1-p) in training) is
    already the scaled network."""
    from pydl import manual_seed
    from pydl.autograd import grad_mode

    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"mc_dropout_proba: n_samples must be a positive int, got {n_samples!r}")
    dropouts = [m for m in model.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
    if not dropouts:
        raise ValueError("mc_dropout_proba: the model has no Dropout layer")
    if seed is not None:
        manual_seed(seed)
    was_training = model.training
    model.eval()
    for m in dropouts:
        m.train()
    x = X if isinstance(X, Tensor) else Tensor(np.asarray(X))
    n = int(x.shape[0])
    total = None
    try:
        with grad_mode.no_grad():
            for _ in range(n_samples):
                logits = np.concatenate([_as_array(model(x[s:s + batch_size])).astype(np.float64)
                                         for s in range(0, max(n, 1), batch_size)])
                z = logits - logits.max(axis=1, keepdims=True)
                e = np.exp(z)
                p = e / e.sum(axis=1, keepdims=True)
                total = p if total is None else total + p
    finally:
        model.train(was_training)
    return total / n_samples


__all__ = ["Bagging", "bootstrap_indices", "mc_dropout_proba"]
