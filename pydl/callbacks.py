"""Training callbacks: ``EarlyStopping`` (re-exported as ``pydl.train.EarlyStopping``).

Course notes 11.1: stop training when the validation error stops improving (the model starts to
overfit) and keep the weights from the best epoch.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np


class EarlyStopping:
    """Track a validation metric; say when to stop, and keep the best weights.

    Call ``step(metric, model)`` once per epoch; it returns True once the metric has not
    improved for ``patience`` consecutive epochs. An epoch improves when ``metric < best -
    min_delta`` (``mode='min'``, e.g. a loss) or ``metric > best + min_delta`` (``mode='max'``,
    e.g. an accuracy); a NaN metric never improves. With ``restore_best_weights`` the model's
    state at the best epoch is copied, and ``restore(model)`` loads it back.

    Args:
        patience: epochs without improvement to tolerate before stopping (>= 0).
        min_delta: smallest change that counts as an improvement (>= 0).
        mode: ``'min'`` or ``'max'``.
        restore_best_weights: keep a copy of the best epoch's ``state_dict``.

    Example::

        stopper = EarlyStopping(patience=5)
        for epoch in range(100):
            train_one_epoch(model)
            if stopper.step(evaluate(model), model):
                break
        stopper.restore(model)
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min",
                 restore_best_weights: bool = True):
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best_weights = restore_best_weights
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.num_bad_epochs = 0
        self.epoch = 0
        self.should_stop = False
        self.best_state: Optional[Dict[str, np.ndarray]] = None

    def is_improvement(self, metric: float) -> bool:
        """Whether ``metric`` beats the best so far by more than ``min_delta``."""
        if math.isnan(metric):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def step(self, metric, model=None) -> bool:
        """Record this epoch's ``metric`` (a number or 1-element tensor); snapshot ``model``'s
        weights when it is the best so far. Returns True when training should stop."""
        metric = float(metric)
        improved = self.is_improvement(metric)
        if improved:
            self.best = metric
            self.best_epoch = self.epoch
            self.num_bad_epochs = 0
            if self.restore_best_weights and model is not None:
                self.best_state = {k: np.array(v._data, copy=True)
                                   for k, v in model.state_dict().items()}
        else:
            self.num_bad_epochs += 1
        self.epoch += 1
        # Judged on non-improving epochs only (as Keras): patience=0 stops at the first one.
        self.should_stop = not improved and self.num_bad_epochs >= self.patience
        return self.should_stop

    def restore(self, model) -> None:
        """Load the best epoch's weights into ``model``."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping.restore: no weights were recorded (step() was "
                               "never given a model at an improving epoch, or "
                               "restore_best_weights=False)")
        model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
