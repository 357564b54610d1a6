"""pydl.train: fit/evaluate against a hand-written loop and NumPy references, callbacks,
schedulers, resuming, History, grid and evolutionary search with k-fold cross-validation.

The models here are tiny (a linear classifier from pydl ops) so the tests run in seconds and do
not depend on other layers; tests/test_cli.py trains the reference models end to end.
"""
import math

import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.data import DataLoader, TensorDataset
from pydl.nn import functional as F
from pydl.train import (History, IntUniform, LogUniform, Uniform, accuracy, cross_validate,
                        evaluate, evolutionary_search, fit, grid_search)


class Logistic(nn.Module):
    def __init__(self, d=2, c=2):
        super().__init__()
        self.weight = nn.Parameter(pydl.randn(c, d) * 0.1)
        self.bias = nn.Parameter(pydl.zeros(c))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


def cross_entropy(logits, target):
    picked = pydl.gather(logits, 1, target.reshape(-1, 1)).reshape(-1)
    return (pydl.logsumexp(logits, 1) - picked).mean()


class PlainSGD:
    """The optimizer protocol fit relies on: param_groups, zero_grad, step."""

    def __init__(self, params, lr):
        self.param_groups = [{"params": list(params), "lr": lr}]

    def zero_grad(self):
        for p in self.param_groups[0]["params"]:
            p.grad = None

    def step(self):
        with pydl.no_grad():
            for p in self.param_groups[0]["params"]:
                p._data -= self.param_groups[0]["lr"] * p.grad._data


class HalveLR:
    def __init__(self, opt):
        self.opt, self.calls = opt, 0

    def step(self):
        self.calls += 1
        self.opt.param_groups[0]["lr"] *= 0.5


def blobs(n=64, seed=0, d=2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, d)).astype(np.float32) * 0.5
    x[:, 0] += np.where(y == 1, 2.0, -2.0)
    return TensorDataset(pydl.from_numpy(x), pydl.from_numpy(y.astype(np.int64)))


def _loader(ds, bs=8, seed=0):
    return DataLoader(ds, batch_size=bs, shuffle=True, generator=pydl.Generator().manual_seed(seed))


def test_fit_equals_hand_written_loop():
    ds = blobs(37)  # 37: the last batch is short
    pydl.manual_seed(0)
    model = Logistic()
    hist = fit(model, cross_entropy, PlainSGD(model.parameters(), 0.1), _loader(ds), epochs=3,
               progress=False)

    pydl.manual_seed(0)
    ref = Logistic()
    opt = PlainSGD(ref.parameters(), 0.1)
    loader = _loader(ds)
    losses, accs = [], []
    for _ in range(3):
        total, correct, n = 0.0, 0, 0
        for x, y in loader:
            opt.zero_grad()
            out = ref(x)
            loss = cross_entropy(out, y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
            correct += int((out.detach().numpy().argmax(1) == y.numpy()).sum())
            n += len(y)
        losses.append(total / n)
        accs.append(correct / n)
    np.testing.assert_array_equal(model.weight.detach().numpy(), ref.weight.detach().numpy())
    np.testing.assert_allclose(hist["train_loss"], losses, rtol=1e-12)
    np.testing.assert_allclose(hist["train_accuracy"], accs, rtol=1e-12)
    assert hist.epoch == [0, 1, 2] and len(hist["time"]) == 3
    assert hist["lr"] == [0.1] * 3


def test_fit_learns_and_evaluates_against_numpy_reference():
    train, val = blobs(64, seed=0), blobs(41, seed=1)
    pydl.manual_seed(0)
    model = Logistic()
    hist = fit(model, cross_entropy, PlainSGD(model.parameters(), 0.5), _loader(train),
               DataLoader(val, batch_size=16), epochs=5, progress=False)
    assert hist["val_accuracy"][-1] > 0.9 and hist["train_loss"][-1] < hist["train_loss"][0]
    # evaluate: float64 reference from the weights
    w = model.weight.detach().numpy().astype(np.float64)
    b = model.bias.detach().numpy().astype(np.float64)
    x, y = val.tensors[0].numpy().astype(np.float64), val.tensors[1].numpy()
    logits = x @ w.T + b
    m = logits.max(1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(1, keepdims=True))
    ref_loss = -np.mean([logp[i, y[i]] for i in range(len(y))])
    ref_acc = np.mean(logits.argmax(1) == y)
    res = evaluate(model, DataLoader(val, batch_size=7), cross_entropy)
    assert res["loss"] == pytest.approx(ref_loss, rel=1e-5)
    assert res["accuracy"] == pytest.approx(ref_acc)
    assert hist["val_loss"][-1] == pytest.approx(ref_loss, rel=1e-5)
    assert evaluate(model, DataLoader(val, batch_size=7)) == {"accuracy": pytest.approx(ref_acc)}


def test_evaluate_restores_mode_and_records_no_graph():
    model = Logistic()
    model.train()
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append((m.training, o.requires_grad)))
    evaluate(model, DataLoader(blobs(8), batch_size=4))
    assert seen == [(False, False), (False, False)] and model.training
    model.eval()
    evaluate(model, DataLoader(blobs(8), batch_size=4))
    assert not model.training


class FakeEarlyStopping:
    """EarlyStopping's protocol: step(metric, model) -> bool, restore(model)."""

    def __init__(self, patience):
        self.patience, self.seen, self.best, self.bad = patience, [], math.inf, 0
        self.restore_best_weights, self.best_state, self.restored = True, None, False

    def step(self, metric, model):
        self.seen.append(metric)
        if metric < self.best:
            self.best, self.bad = metric, 0
            self.best_state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        else:
            self.bad += 1
        return self.bad >= self.patience

    def restore(self, model):
        self.restored = True
        model.load_state_dict(self.best_state)


def test_callbacks_stop_and_restore_and_see_logs():
    ds = blobs(32)
    model = Logistic()
    # lr=0 after the first epoch: the loss stops improving, so patience 2 stops at epoch 3
    opt = PlainSGD(model.parameters(), 0.5)

    class ZeroLR:
        def step(self):
            opt.param_groups[0]["lr"] = 0.0

    stopper = FakeEarlyStopping(patience=2)
    calls = []

    class Recorder:
        def on_epoch_end(self, epoch, logs, model):
            calls.append((epoch, sorted(logs)))

    hist = fit(model, cross_entropy, opt, _loader(ds), DataLoader(ds, batch_size=32), epochs=10,
               scheduler=ZeroLR(), callbacks=[stopper, Recorder()], progress=False)
    assert len(hist) == 3 and [c[0] for c in calls] == [0, 1, 2]
    assert stopper.seen == hist["val_loss"] and stopper.restored
    assert calls[0][1] == ["lr", "time", "train_accuracy", "train_loss", "val_accuracy",
                           "val_loss"]

    class StopNow:
        def on_epoch_end(self, epoch, logs, model):
            return epoch == 1

    other = Logistic()
    assert len(fit(other, cross_entropy, PlainSGD(other.parameters(), 0.1), _loader(ds),
                   epochs=5, callbacks=[StopNow()], progress=False)) == 2


def test_scheduler_steps_once_per_epoch_and_lr_is_logged():
    model = Logistic()
    opt = PlainSGD(model.parameters(), 0.8)
    sched = HalveLR(opt)
    hist = fit(model, cross_entropy, opt, _loader(blobs(16)), epochs=3, scheduler=sched,
               progress=False)
    assert sched.calls == 3 and hist["lr"] == [0.8, 0.4, 0.2]


def test_resume_with_initial_epoch_matches_uninterrupted_run():
    ds = blobs(30)

    def run(split):
        pydl.manual_seed(3)
        model = Logistic()
        opt = PlainSGD(model.parameters(), 0.3)
        loader = _loader(ds, seed=7)
        if split:
            h = fit(model, cross_entropy, opt, loader, epochs=2, progress=False)
            h = fit(model, cross_entropy, opt, loader, epochs=4, initial_epoch=2, history=h,
                    progress=False)
        else:
            h = fit(model, cross_entropy, opt, loader, epochs=4, progress=False)
        return model.weight.detach().numpy(), h

    w1, h1 = run(False)
    w2, h2 = run(True)
    np.testing.assert_array_equal(w1, w2)
    assert h1.epoch == h2.epoch == [0, 1, 2, 3]
    assert h1["train_loss"] == h2["train_loss"]


def test_fit_with_progress_bar_writes_running_loss(capsys):
    model = Logistic()
    fit(model, cross_entropy, PlainSGD(model.parameters(), 0.1), _loader(blobs(16)), epochs=1,
        progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err


def test_fit_errors():
    model = Logistic()
    opt = PlainSGD(model.parameters(), 0.1)
    with pytest.raises(ValueError, match="pair"):
        fit(model, cross_entropy, opt, [pydl.zeros(2, 2)], progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, cross_entropy, opt, _loader(blobs(4)), epochs=-1)
    with pytest.raises(ValueError, match="needs a val_loader"):
        fit(model, cross_entropy, opt, _loader(blobs(4)), callbacks=[FakeEarlyStopping(1)],
            monitor="val_loss")
    with pytest.raises(ValueError, match="no samples"):
        fit(model, cross_entropy, opt, [], progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        fit(model, cross_entropy, opt, _loader(blobs(4)), metrics=["f1"])


def test_custom_metric_and_accuracy_function():
    def mean_logit(output, target):
        return float(output.mean())

    model = Logistic()
    res = evaluate(model, DataLoader(blobs(8), batch_size=3), metrics=[mean_logit, "accuracy"])
    with pydl.no_grad():
        ref = model(blobs(8).tensors[0]).numpy().astype(np.float64).mean()
    assert res["mean_logit"] == pytest.approx(ref, rel=1e-5)
    out = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(out, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(out, np.array([[0, 1], [1, 0], [1, 0]])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="do not match"):
        accuracy(out, np.array([1, 0]))


def test_history_records_and_json(tmp_path):
    h = History()
    h.append(0, {"train_loss": 1.0})
    h.append(1, {"train_loss": 0.5, "val_loss": 0.7})
    h.append(2, {"train_loss": 0.6})
    assert h["train_loss"] == [1.0, 0.5, 0.6]
    assert math.isnan(h["val_loss"][0]) and math.isnan(h["val_loss"][2])
    assert h.best("train_loss") == (1, 0.5) and h.best("train_loss", "max") == (0, 1.0)
    path = str(tmp_path / "h.json")
    h.save_json(path)
    with open(path) as f:
        assert "null" in f.read()  # NaN written as JSON null
    back = History.load_json(path)
    assert back.epoch == [0, 1, 2] and back["val_loss"][1] == 0.7
    assert math.isnan(back["val_loss"][0])
    again = History.from_dict(h.to_dict())
    assert again["train_loss"] == h["train_loss"]


def _build(params):
    model = Logistic()
    return model, PlainSGD(model.parameters(), params["lr"])


def test_cross_validate_folds_and_reproducibility():
    ds = blobs(30)
    s1 = cross_validate(_build, {"lr": 0.5}, ds, cross_entropy, k=3, epochs=2, batch_size=8)
    s2 = cross_validate(_build, {"lr": 0.5}, ds, cross_entropy, k=3, epochs=2, batch_size=8)
    assert len(s1) == 3 and s1 == s2
    assert all(0.0 <= s <= 1.0 for s in s1)
    losses = cross_validate(_build, {"lr": 0.5, "epochs": 1}, ds, cross_entropy, k=2,
                            metric="loss")
    assert len(losses) == 2 and all(v > 0 for v in losses)


def test_grid_search_prefers_learning_over_lr_zero():
    ds = blobs(40)
    res = grid_search(_build, {"lr": [0.0, 0.5], "batch_size": [8, 20]}, ds, cross_entropy, k=2,
                      epochs=2)
    assert len(res.results) == 4
    assert res.best_params["lr"] == 0.5
    means = [r["mean"] for r in res.results]
    assert means == sorted(means, reverse=True)
    assert all(len(r["fold_scores"]) == 2 for r in res.results)
    loss_res = grid_search(_build, [{"lr": [0.0]}, {"lr": [0.5]}], ds, cross_entropy, k=2,
                           epochs=2, metric="loss")
    assert loss_res.mode == "min" and loss_res.best_params == {"lr": 0.5}
    with pytest.raises(TypeError, match="must be a list"):
        grid_search(_build, {"lr": 0.1}, ds, cross_entropy)


def test_evolutionary_search_elitism_bounds_and_reproducibility():
    ds = blobs(30)
    space = {"lr": LogUniform(1e-4, 1.0), "batch_size": [4, 8, 16], "epochs": IntUniform(1, 2),
             "unused": Uniform(-1.0, 1.0)}

    def run():
        return evolutionary_search(_build, space, ds, cross_entropy, population=4, generations=3,
                                   elite=1, k=2, seed=5)

    res = run()
    assert len(res.generations) == 3
    bests = [g["best"] for g in res.generations]
    assert bests == sorted(bests)  # elitism: the best never gets worse
    assert 4 <= len(res.results) <= 4 + 2 * 3
    for r in res.results:
        p = r["params"]
        assert 1e-4 <= p["lr"] <= 1.0 and p["batch_size"] in (4, 8, 16)
        assert p["epochs"] in (1, 2) and isinstance(p["epochs"], int) and -1 <= p["unused"] <= 1
    again = run()
    assert [r["params"] for r in again.results] == [r["params"] for r in res.results]
    assert res.best_score == max(r["mean"] for r in res.results)
    with pytest.raises(ValueError, match="population"):
        evolutionary_search(_build, space, ds, cross_entropy, population=1)
    with pytest.raises(TypeError, match="non-empty list"):
        evolutionary_search(_build, {"lr": 0.1}, ds, cross_entropy)
    with pytest.raises(ValueError, match="positive"):
        LogUniform(0.0, 1.0)


def test_fit_with_early_stopping_restores_best_epoch():
    from pydl.train import EarlyStopping

    train, val = blobs(40, seed=0), blobs(40, seed=3)
    pydl.manual_seed(1)
    model = Logistic()
    opt = pydl.optim.SGD(model.parameters(), lr=2.0)  # large steps: val loss jumps around
    snapshots = {}

    class Snapshot:
        def on_epoch_end(self, epoch, logs, model):
            snapshots[epoch] = model.weight.detach().numpy().copy()

    stopper = EarlyStopping(patience=1)
    hist = fit(model, cross_entropy, opt, _loader(train), DataLoader(val, batch_size=40),
               epochs=12, callbacks=[stopper, Snapshot()], progress=False)
    best_epoch, best_loss = hist.best("val_loss")
    assert stopper.best == pytest.approx(best_loss)
    np.testing.assert_array_equal(model.weight.detach().numpy(), snapshots[best_epoch])
    if len(hist) < 12:  # it stopped: patience 1 means one epoch without improvement
        assert hist.epoch[-1] == best_epoch + 1


def test_fit_steps_plateau_scheduler_with_monitored_metric():
    model = Logistic()
    opt = pydl.optim.SGD(model.parameters(), lr=1e-12)  # no progress: a plateau from epoch 1
    sched = pydl.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    hist = fit(model, cross_entropy, opt, _loader(blobs(16)), DataLoader(blobs(16), 16),
               epochs=4, scheduler=sched, progress=False)
    assert hist["lr"] == pytest.approx([1e-12, 1e-12, 5e-13, 2.5e-13])
    with pytest.raises(ValueError, match="needs a val_loader"):
        fit(model, cross_entropy, opt, _loader(blobs(16)), epochs=1, scheduler=sched,
            monitor="val_loss")
    # without a val_loader the plateau scheduler follows the training loss
    fit(model, cross_entropy, opt, _loader(blobs(16)), epochs=1, scheduler=sched, progress=False)
