"""pydl.callbacks.EarlyStopping: when it says stop, and the weights it restores."""
import math

import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.callbacks import EarlyStopping


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(pydl.tensor(np.zeros(3)))
        self.register_buffer("steps", pydl.tensor(np.array(0, np.int64)))


def set_weights(model, value):
    with pydl.no_grad():
        model.weight._data[...] = value
        model.steps._data[...] = int(value)


def run(stopper, metrics, model=None):
    """Index of the epoch at which step() first returned True (None if never)."""
    for epoch, m in enumerate(metrics):
        if model is not None:
            set_weights(model, epoch)
        if stopper.step(m, model):
            return epoch
    return None


def test_min_mode_stops_after_patience_bad_epochs():
    s = EarlyStopping(patience=2)
    assert run(s, [1.0, 0.8, 0.9, 0.85, 0.7]) == 3
    assert s.best == 0.8 and s.best_epoch == 1 and s.num_bad_epochs == 2


def test_improvement_resets_the_count():
    s = EarlyStopping(patience=2)
    assert run(s, [1.0, 1.1, 0.9, 1.0, 0.8, 0.85, 0.9]) == 6
    assert s.best_epoch == 4


def test_max_mode_and_min_delta():
    s = EarlyStopping(patience=2, min_delta=0.05, mode="max")
    # 0.52 is not better than 0.5 by more than 0.05, nor 0.64 and 0.62 than 0.6.
    assert run(s, [0.5, 0.52, 0.6, 0.64, 0.62]) == 4
    assert s.best == 0.6
    s = EarlyStopping(patience=1, min_delta=0.05, mode="max")
    assert run(s, [0.5, 0.52]) == 1


def test_patience_zero_stops_at_the_first_bad_epoch():
    s = EarlyStopping(patience=0)
    assert run(s, [3.0, 2.0, 1.0, 1.5]) == 3


def test_nan_metric_is_never_an_improvement():
    s = EarlyStopping(patience=1)
    assert run(s, [1.0, math.nan]) == 1
    s = EarlyStopping(patience=3)
    assert run(s, [math.nan, math.nan, 1.0, 2.0]) is None
    assert s.best == 1.0


def test_restores_the_best_weights():
    model = Tiny()
    s = EarlyStopping(patience=2)
    assert run(s, [5.0, 3.0, 4.0, 4.0], model) == 3
    np.testing.assert_array_equal(model.weight._data, 3.0)
    s.restore(model)
    np.testing.assert_array_equal(model.weight._data, 1.0)
    assert int(model.steps.item()) == 1


def test_metric_may_be_a_tensor_and_state_round_trips():
    s = EarlyStopping(patience=3, mode="max")
    s.step(pydl.tensor(0.25))
    s2 = EarlyStopping()
    s2.load_state_dict(s.state_dict())
    assert s2.best == 0.25 and s2.mode == "max" and s2.patience == 3


def test_restore_without_snapshot_and_bad_arguments():
    s = EarlyStopping(restore_best_weights=False)
    s.step(1.0, Tiny())
    with pytest.raises(RuntimeError, match="no weights were recorded"):
        s.restore(Tiny())
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="min_delta must be >= 0"):
        EarlyStopping(min_delta=-0.1)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        EarlyStopping(mode="up")
