"""pydl.ensemble: bootstrap resamples, soft and hard voting, out-of-bag score, MC dropout --
each against a NumPy reference written here."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.ensemble import Bagging, bootstrap_indices, mc_dropout_proba


def test_bootstrap_indices_match_numpy_draws():
    got = bootstrap_indices(97, 4, random_state=7)
    rng = np.random.default_rng(7)
    for idx in got:
        np.testing.assert_array_equal(idx, rng.integers(0, 97, size=97))
    assert len({tuple(i) for i in got}) == 4  # different resamples


def test_bootstrap_fraction_of_distinct_samples_is_about_1_minus_1_over_e():
    (idx,) = bootstrap_indices(20000, 1, random_state=0)
    distinct = len(np.unique(idx)) / 20000
    # E = 1 - (1 - 1/n)^n -> 1 - 1/e = 0.632; sd ~ 0.003 at n = 20000
    assert abs(distinct - (1 - np.exp(-1))) < 0.015
    assert idx.min() >= 0 and idx.max() < 20000


@pytest.mark.parametrize("max_samples,m", [(0.5, 50), (1.0, 100), (1, 1), (37, 37)])
def test_bootstrap_sizes(max_samples, m):
    assert all(len(i) == m for i in bootstrap_indices(100, 3, max_samples, 0))


@pytest.mark.parametrize("bad", [0.0, 1.5, 0, 101, "a"])
def test_bootstrap_rejects_bad_sizes(bad):
    with pytest.raises((ValueError, TypeError), match="max_samples"):
        bootstrap_indices(100, 2, bad)


def test_each_member_trains_on_its_resample_and_oob_mask():
    X = np.arange(30, dtype=np.float32).reshape(15, 2)
    y = np.arange(15) % 3
    seen = []

    def record(model, subset):
        seen.append(np.array([int(subset[i][0][0].item()) // 2 for i in range(len(subset))]))

    bag = Bagging(lambda: nn.Linear(2, 3), n_estimators=3, random_state=5)
    bag.fit(X, y, train_fn=record)
    ref = bootstrap_indices(15, 3, 1.0, 5)
    for got, idx, oob in zip(seen, ref, bag.oob_mask_):
        np.testing.assert_array_equal(got, idx)  # row r of X starts with 2r
        expect = np.ones(15, bool)
        expect[idx] = False
        np.testing.assert_array_equal(oob, expect)
    assert len(bag.estimators) == 3


def _fixed_members(weights):
    """A Bagging whose members are Linear layers with the given (C, d) weights, no bias."""
    bag = Bagging(lambda: nn.Linear(1, 1), n_estimators=len(weights))
    members = []
    for w in weights:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with pydl.no_grad():
            lin.weight.copy_(pydl.tensor(w.astype(np.float32)))
        members.append(lin)
    bag.estimators = nn.ModuleList(members)
    return bag


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("k,n,c", [(1, 5, 3), (3, 17, 4), (4, 1, 2), (5, 31, 7)])
def test_soft_and_hard_voting_against_numpy(rng, k, n, c):
    d = 6
    weights = [rng.normal(size=(c, d)) for _ in range(k)]
    X = rng.normal(size=(n, d)).astype(np.float32)
    bag = _fixed_members(weights)
    probs = np.stack([_softmax(X.astype(np.float64) @ w.astype(np.float32).T.astype(np.float64))
                      for w in weights])
    np.testing.assert_allclose(bag.member_probabilities(X), probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bag.predict_proba(X), probs.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bag.predict(X), probs.mean(0).argmax(1))

    bag.voting = "hard"
    votes = probs.argmax(2)  # (k, n)
    counts = np.stack([np.bincount(votes[:, i], minlength=c) for i in range(n)])
    np.testing.assert_allclose(bag.predict_proba(X), counts / k)
    np.testing.assert_array_equal(bag.predict(X), counts.argmax(1))  # ties: lowest class
    y = rng.integers(0, c, size=n)
    assert bag.score(X, y) == pytest.approx(float((counts.argmax(1) == y).mean()))


def test_hard_vote_tie_goes_to_lowest_class():
    # member 0 says class 2, member 1 says class 1: a tie, numpy's argmax of counts picks 1
    w0 = np.array([[0.0], [0.0], [5.0]])
    w1 = np.array([[0.0], [5.0], [0.0]])
    bag = _fixed_members([w0, w1])
    bag.voting = "hard"
    assert bag.predict(np.ones((1, 1), np.float32)).tolist() == [1]


def test_oob_score_against_numpy(rng):
    n, c, d, k = 23, 3, 4, 4
    weights = [rng.normal(size=(c, d)) for _ in range(k)]
    bag = _fixed_members(weights)
    bag.oob_mask_ = [rng.random(n) < 0.4 for _ in range(k)]
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, c, size=n)
    probs = bag.member_probabilities(X)
    masks = np.stack(bag.oob_mask_)
    agg = (probs * masks[:, :, None]).sum(0)
    seen = masks.any(0)
    assert bag.oob_score(X, y) == pytest.approx(float((agg[seen].argmax(1) == y[seen]).mean()))


def test_forward_is_log_probabilities_and_works_with_evaluate(rng):
    from pydl.data import DataLoader, TensorDataset
    from pydl.train import evaluate

    weights = [rng.normal(size=(3, 4)) for _ in range(3)]
    bag = _fixed_members(weights)
    X = rng.normal(size=(10, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=10)
    p = bag.predict_proba(X)
    np.testing.assert_allclose(bag(pydl.tensor(X)).numpy(), np.log(p), rtol=1e-5)
    res = evaluate(bag, DataLoader(TensorDataset(X, y), batch_size=4), nn.NLLLoss())
    assert res["accuracy"] == pytest.approx(float((p.argmax(1) == y).mean()))
    assert res["loss"] == pytest.approx(float(-np.log(p[np.arange(10), y]).mean()), rel=1e-5)


def test_fit_trains_members_that_beat_chance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    bag = Bagging(lambda: nn.Linear(2, 2), n_estimators=3, random_state=1)
    bag.fit(X, y, epochs=15, batch_size=16,
            optimizer_fn=lambda p: pydl.optim.SGD(p, lr=0.5))
    assert len(bag.estimators) == 3
    assert bag.score(X, y) > 0.9
    # the members differ: different resamples and initialisations
    w = [m.weight.detach().numpy() for m in bag.estimators]
    assert not np.allclose(w[0], w[1])
    # parameters() of the ensemble are its members'
    assert len(list(bag.parameters())) == 6


def test_errors():
    with pytest.raises(ValueError, match="voting"):
        Bagging(lambda: nn.Linear(2, 2), voting="mean")
    with pytest.raises(ValueError, match="n_estimators"):
        Bagging(lambda: nn.Linear(2, 2), n_estimators=0)
    with pytest.raises(RuntimeError, match="fit"):
        Bagging(lambda: nn.Linear(2, 2)).predict(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"X has 3 samples .* y has 2"):
        Bagging(lambda: nn.Linear(2, 2)).fit(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="nn.Module"):
        Bagging(lambda: 3, n_estimators=1).fit(np.zeros((3, 2)), np.zeros(3))


def test_mc_dropout_against_numpy_masks():
    """The MC estimate equals the mean over the same dropout masks drawn by hand."""
    p = 0.5
    lin = nn.Linear(5, 3)
    model = nn.Sequential(nn.Dropout(p), lin)
    X = np.random.default_rng(3).normal(size=(7, 5)).astype(np.float32)
    got = mc_dropout_proba(model, X, n_samples=6, seed=11)
    assert model.training  # mode restored
    # replay: the same seed gives the same masks through Dropout in train mode
    pydl.manual_seed(11)
    drop = nn.Dropout(p).train()
    W, b = lin.weight.detach().numpy().astype(np.float64), lin.bias.detach().numpy()
    ref = np.zeros((7, 3))
    for _ in range(6):
        xd = drop(pydl.tensor(X)).numpy().astype(np.float64)
        mask = xd != 0
        np.testing.assert_allclose(xd[mask], X[mask] / (1 - p), rtol=1e-6)
        ref += _softmax(xd @ W.T + b)
    np.testing.assert_allclose(got, ref / 6, rtol=1e-5, atol=1e-6)
    # with dropout off (eval) every pass is the same: weight scaling
    ev = mc_dropout_proba(nn.Sequential(nn.Dropout(0.0), lin), X, n_samples=3)
    np.testing.assert_allclose(ev, _softmax(X.astype(np.float64) @ W.T + b), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="no Dropout"):
        mc_dropout_proba(lin, X)
