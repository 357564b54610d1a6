"""pydl.distributions: float64 closed-form references written here, torch.distributions for
the API (shapes, values, errors), gradcheck through log_prob / rsample / entropy / KL."""
import math

import numpy as np
import pytest

import pydl
import pydl.distributions as D
from pydl.autograd import gradcheck


def t64(a, requires_grad=False):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def npy(x):
    return x.detach().numpy()


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


BATCH_SHAPES = [(1,), (7,), (3, 5), (0, 4), (2, 1, 3)]


# -- Normal -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_normal_against_closed_form(rng, shape):
    loc = rng.standard_normal(shape)
    scale = rng.uniform(0.3, 2.0, shape)
    x = rng.standard_normal(shape) * 2
    d = D.Normal(t64(loc), t64(scale))
    assert d.batch_shape == shape and d.event_shape == ()
    ref_lp = -(x - loc) ** 2 / (2 * scale ** 2) - np.log(scale) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(npy(d.log_prob(t64(x))), ref_lp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npy(d.entropy()), 0.5 * np.log(2 * np.pi * np.e * scale ** 2),
                               rtol=1e-12)
    np.testing.assert_allclose(npy(d.mean), loc)
    np.testing.assert_allclose(npy(d.variance), scale ** 2, rtol=1e-12)
    np.testing.assert_allclose(npy(d.stddev), scale)
    erf = np.vectorize(math.erf, otypes=[np.float64])
    np.testing.assert_allclose(npy(d.cdf(t64(x))),
                               0.5 * (1 + erf((x - loc) / (scale * np.sqrt(2)))), atol=1e-12)
    u = rng.uniform(0.01, 0.99, shape)
    np.testing.assert_allclose(npy(d.cdf(d.icdf(t64(u)))), u, atol=1e-9)
    assert d.sample((2,)).shape == (2,) + shape
    assert d.rsample().shape == shape


def test_normal_against_torch_and_non_contiguous(rng):
    torch = pytest.importorskip("torch")
    loc = rng.standard_normal((5, 3))
    scale = rng.uniform(0.5, 2, (3, 5))
    x = rng.standard_normal((2, 5, 3))
    d = D.Normal(t64(loc), t64(scale).T)  # non-contiguous scale
    td = torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale).T)
    assert d.batch_shape == tuple(td.batch_shape)
    np.testing.assert_allclose(npy(d.log_prob(t64(x))), td.log_prob(torch.tensor(x)).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(npy(d.entropy()), td.entropy().numpy(), rtol=1e-12)
    # numbers broadcast against tensors; all numbers give a scalar batch
    assert D.Normal(0.0, t64(scale)).batch_shape == (3, 5)
    s = D.Normal(0.0, 1.0)
    assert s.batch_shape == () and s.sample().shape == () and s.sample((4,)).shape == (4,)
    assert s.loc.dtype == pydl.get_default_dtype()


def test_normal_sampling_moments_and_seed():
    d = D.Normal(t64([1.0, -2.0]), t64([0.5, 3.0]))
    pydl.manual_seed(3)
    a = d.sample((20000,))
    pydl.manual_seed(3)
    b = d.sample((20000,))
    np.testing.assert_array_equal(npy(a), npy(b))
    m, s = npy(a).mean(0), npy(a).std(0)
    # 5 standard errors of the mean and of the standard deviation
    assert np.all(np.abs(m - [1.0, -2.0]) < 5 * np.array([0.5, 3.0]) / np.sqrt(20000))
    assert np.all(np.abs(s - [0.5, 3.0]) < 5 * np.array([0.5, 3.0]) / np.sqrt(2 * 20000))
    assert not a.requires_grad


def test_normal_rsample_is_reparameterised():
    loc = t64([0.5, -1.0], requires_grad=True)
    scale = t64([2.0, 0.3], requires_grad=True)
    pydl.manual_seed(11)
    z = D.Normal(loc, scale).rsample()
    pydl.manual_seed(11)
    eps = pydl.randn((2,), dtype=pydl.float64)
    np.testing.assert_allclose(npy(z), npy(loc) + npy(eps) * npy(scale), rtol=1e-12)
    z.sum().backward()
    np.testing.assert_allclose(npy(loc.grad), [1.0, 1.0])
    np.testing.assert_allclose(npy(scale.grad), npy(eps), rtol=1e-12)
    assert D.Normal(loc, scale).has_rsample and not D.Bernoulli(0.3).has_rsample


def test_normal_gradcheck(rng):
    loc = t64(rng.standard_normal(4), True)
    scale = t64(rng.uniform(0.5, 2, 4), True)
    x = t64(rng.standard_normal(4), True)
    gradcheck(lambda m, s, v: D.Normal(m, s).log_prob(v), (loc, scale, x))
    gradcheck(lambda m, s: D.Normal(m, s).entropy(), (loc, scale))
    gradcheck(lambda m, s, v: D.Normal(m, s).cdf(v), (loc, scale, x))

    def rs(m, s):
        pydl.manual_seed(5)  # the same eps in every evaluation
        return D.Normal(m, s).rsample((3,))

    gradcheck(rs, (loc, scale))


# -- Bernoulli --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", BATCH_SHAPES)
def test_bernoulli_against_closed_form(rng, shape):
    logits = rng.standard_normal(shape) * 3
    p = _sigmoid(logits)
    x = (rng.random(shape) < 0.5).astype(np.float64)
    ref_lp = x * np.log(p) + (1 - x) * np.log1p(-p)
    ref_h = -(p * np.log(p) + (1 - p) * np.log1p(-p))
    for d in (D.Bernoulli(logits=t64(logits)), D.Bernoulli(probs=t64(p))):
        assert d.batch_shape == shape
        np.testing.assert_allclose(npy(d.log_prob(t64(x))), ref_lp, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(npy(d.entropy()), ref_h, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(npy(d.mean), p, rtol=1e-12)
        np.testing.assert_allclose(npy(d.variance), p * (1 - p), rtol=1e-12)
        assert d.sample((3,)).shape == (3,) + shape


def test_bernoulli_against_torch(rng):
    torch = pytest.importorskip("torch")
    probs = np.array([0.0, 1e-3, 0.3, 0.5, 0.999, 1.0])
    x = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    d, td = D.Bernoulli(probs=t64(probs)), torch.distributions.Bernoulli(torch.tensor(probs))
    # atol: at p = 0 torch gives -0.0, pydl -eps (p is clamped to eps = 2.2e-16 in both)
    np.testing.assert_allclose(npy(d.log_prob(t64(x))), td.log_prob(torch.tensor(x)).numpy(),
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(npy(d.entropy()), td.entropy().numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(npy(d.logits), td.logits.numpy(), rtol=1e-12)
    np.testing.assert_array_equal(npy(d.mode), td.mode.numpy())
    np.testing.assert_array_equal(npy(d.enumerate_support()), td.enumerate_support().numpy())
    logits = rng.standard_normal((3, 4)) * 4
    d, td = D.Bernoulli(logits=t64(logits)), torch.distributions.Bernoulli(
        logits=torch.tensor(logits))
    np.testing.assert_allclose(npy(d.probs), td.probs.numpy(), rtol=1e-12)
    np.testing.assert_allclose(npy(d.entropy()), td.entropy().numpy(), rtol=1e-12)


def test_bernoulli_sampling_frequency_and_seed():
    d = D.Bernoulli(probs=t64([0.1, 0.5, 0.9]))
    pydl.manual_seed(1)
    a = d.sample((20000,))
    pydl.manual_seed(1)
    np.testing.assert_array_equal(npy(a), npy(d.sample((20000,))))
    assert set(np.unique(npy(a))) <= {0.0, 1.0} and a.dtype == pydl.float64
    p = np.array([0.1, 0.5, 0.9])
    assert np.all(np.abs(npy(a).mean(0) - p) < 5 * np.sqrt(p * (1 - p) / 20000))
    np.testing.assert_array_equal(npy(D.Bernoulli(probs=t64([0.0, 1.0])).sample((50,))),
                                  np.tile([0.0, 1.0], (50, 1)))


def test_bernoulli_gradcheck(rng):
    logits = t64(rng.standard_normal(5), True)
    probs = t64(rng.uniform(0.1, 0.9, 5), True)
    x = t64([0.0, 1.0, 1.0, 0.0, 1.0])
    gradcheck(lambda lg: D.Bernoulli(logits=lg).log_prob(x), (logits,))
    gradcheck(lambda lg: D.Bernoulli(logits=lg).entropy(), (logits,))
    gradcheck(lambda p: D.Bernoulli(probs=p).log_prob(x), (probs,))
    gradcheck(lambda p: D.Bernoulli(probs=p).entropy(), (probs,))


# -- Categorical ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1,), (7,), (2, 3), (0,), (1, 1)])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_categorical_against_closed_form(rng, shape, k):
    logits = rng.standard_normal(shape + (k,)) * 2
    logp = _log_softmax(logits)
    p = np.exp(logp)
    x = rng.integers(0, k, shape)
    ref_lp = np.take_along_axis(logp, x[..., None], -1)[..., 0]
    for d in (D.Categorical(logits=t64(logits)), D.Categorical(probs=t64(p * 3.0))):
        assert d.batch_shape == shape and d.event_shape == ()
        np.testing.assert_allclose(npy(d.log_prob(pydl.tensor(x))), ref_lp, rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(npy(d.entropy()), -(p * logp).sum(-1), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(npy(d.probs), p, rtol=1e-9)
        assert np.isnan(npy(d.mean)).all() and d.mean.shape == shape
        assert np.isnan(npy(d.variance)).all()
        s = d.sample((4, 3))
        assert s.shape == (4, 3) + shape and s.dtype == pydl.int64
        assert ((npy(s) >= 0) & (npy(s) < k)).all()
        np.testing.assert_array_equal(npy(d.mode), p.argmax(-1))


def test_categorical_against_torch(rng):
    torch = pytest.importorskip("torch")
    probs = np.array([[0.2, 0.0, 0.8], [0.3, 0.3, 0.4]])
    x = np.array([[0, 2], [2, 1], [1, 0]])
    d, td = D.Categorical(probs=t64(probs)), torch.distributions.Categorical(torch.tensor(probs))
    np.testing.assert_allclose(npy(d.log_prob(pydl.tensor(x))),
                               td.log_prob(torch.tensor(x)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(npy(d.entropy()), td.entropy().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(npy(d.enumerate_support()), td.enumerate_support().numpy())
    assert d.sample((5,)).shape == tuple(td.sample((5,)).shape)
    # log_prob broadcasts a value against the batch as torch does
    v = np.array([[1], [2]])
    np.testing.assert_allclose(npy(d.log_prob(pydl.tensor(v))),
                               td.log_prob(torch.tensor(v)).numpy(), rtol=1e-12)


def test_categorical_sampling_frequencies():
    p = np.array([0.1, 0.0, 0.6, 0.3])
    pydl.manual_seed(2)
    s = npy(D.Categorical(probs=t64(p)).sample((30000,)))
    freq = np.bincount(s, minlength=4) / len(s)
    assert freq[1] == 0  # a zero-probability category is never drawn
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / len(s)) + 1e-12)


def test_categorical_gradcheck(rng):
    logits = t64(rng.standard_normal((3, 4)), True)
    probs = t64(rng.uniform(0.1, 1, (3, 4)), True)
    x = pydl.tensor([0, 3, 2])
    gradcheck(lambda lg: D.Categorical(logits=lg).log_prob(x), (logits,))
    gradcheck(lambda lg: D.Categorical(logits=lg).entropy(), (logits,))
    gradcheck(lambda p: D.Categorical(probs=p).log_prob(x), (probs,))
    gradcheck(lambda p: D.Categorical(probs=p).entropy(), (probs,))


# -- Independent ------------------------------------------------------------------------------
def test_independent_shapes_and_sums(rng):
    torch = pytest.importorskip("torch")
    loc, scale = rng.standard_normal((2, 3, 4)), rng.uniform(0.5, 1.5, (2, 3, 4))
    x = rng.standard_normal((5, 2, 3, 4))
    base = D.Normal(t64(loc), t64(scale))
    tbase = torch.distributions.Normal(torch.tensor(loc), torch.tensor(scale))
    for n in (0, 1, 2, 3):
        d, td = D.Independent(base, n), torch.distributions.Independent(tbase, n)
        assert d.batch_shape == tuple(td.batch_shape)
        assert d.event_shape == tuple(td.event_shape)
        np.testing.assert_allclose(npy(d.log_prob(t64(x))), td.log_prob(torch.tensor(x)).numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(npy(d.entropy()), td.entropy().numpy(), rtol=1e-12)
        assert d.rsample((6,)).shape == (6, 2, 3, 4) and d.has_rsample
    d = D.Independent(base, 2)
    np.testing.assert_allclose(npy(d.mean), loc)
    np.testing.assert_allclose(npy(d.variance), scale ** 2, rtol=1e-12)
    assert repr(d).startswith("Independent(Normal(")


def test_expand(rng):
    d = D.Normal(t64(rng.standard_normal(3)), t64([1.0, 2.0, 3.0])).expand((4, 3))
    assert d.batch_shape == (4, 3) and d.sample().shape == (4, 3)
    np.testing.assert_allclose(npy(d.stddev), np.tile([1.0, 2.0, 3.0], (4, 1)))
    b = D.Bernoulli(logits=t64([0.0, 1.0])).expand((3, 2))
    assert b.batch_shape == (3, 2) and b.log_prob(t64(np.ones((3, 2)))).shape == (3, 2)
    c = D.Categorical(logits=t64(rng.standard_normal(5))).expand((2, 3))
    assert c.batch_shape == (2, 3) and c.sample((4,)).shape == (4, 2, 3)
    i = D.Independent(D.Normal(t64(np.zeros((2, 3))), 1.0), 1).expand((5, 2))
    assert i.batch_shape == (5, 2) and i.event_shape == (3,)


# -- KL divergence ----------------------------------------------------------------------------
def test_kl_normal_closed_form_and_torch(rng):
    m1, m2 = rng.standard_normal(6), rng.standard_normal(6)
    s1, s2 = rng.uniform(0.3, 2, 6), rng.uniform(0.3, 2, 6)
    kl = D.kl_divergence(D.Normal(t64(m1), t64(s1)), D.Normal(t64(m2), t64(s2)))
    ref = np.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5
    np.testing.assert_allclose(npy(kl), ref, rtol=1e-12)
    torch = pytest.importorskip("torch")
    tkl = torch.distributions.kl_divergence(
        torch.distributions.Normal(torch.tensor(m1), torch.tensor(s1)),
        torch.distributions.Normal(torch.tensor(m2), torch.tensor(s2)))
    np.testing.assert_allclose(npy(kl), tkl.numpy(), rtol=1e-12)


def test_kl_bernoulli_and_categorical_against_torch_with_zeros():
    torch = pytest.importorskip("torch")
    TD = torch.distributions
    p = np.array([0.0, 0.0, 1.0, 1.0, 0.3, 0.3, 0.7])
    q = np.array([0.0, 0.4, 1.0, 0.4, 0.0, 1.0, 0.2])
    kl = npy(D.kl_divergence(D.Bernoulli(probs=t64(p)), D.Bernoulli(probs=t64(q))))
    tkl = TD.kl_divergence(TD.Bernoulli(torch.tensor(p)), TD.Bernoulli(torch.tensor(q))).numpy()
    np.testing.assert_allclose(kl, tkl, rtol=1e-9)
    assert np.isinf(kl[4]) and np.isinf(kl[5]) and kl[0] == 0
    ref = p[6] * np.log(p[6] / q[6]) + (1 - p[6]) * np.log((1 - p[6]) / (1 - q[6]))
    np.testing.assert_allclose(kl[6], ref, rtol=1e-12)

    P = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.2, 0.3, 0.5]])
    Q = np.array([[0.1, 0.9, 0.0], [0.4, 0.4, 0.2], [0.0, 0.5, 0.5]])
    kl = npy(D.kl_divergence(D.Categorical(probs=t64(P)), D.Categorical(probs=t64(Q))))
    tkl = TD.kl_divergence(TD.Categorical(torch.tensor(P)), TD.Categorical(torch.tensor(Q)))
    np.testing.assert_allclose(kl, tkl.numpy(), rtol=1e-9)
    np.testing.assert_allclose(kl[:2], [(P[i][P[i] > 0] * np.log(P[i][P[i] > 0] / Q[i][P[i] > 0]))
                                        .sum() for i in range(2)], rtol=1e-9)
    assert np.isinf(kl[2])


def test_kl_independent(rng):
    torch = pytest.importorskip("torch")
    TD = torch.distributions
    a = [rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (2, 3))]
    b = [rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (2, 3))]
    p = D.Independent(D.Normal(*map(t64, a)), 1)
    q = D.Independent(D.Normal(*map(t64, b)), 1)
    tp = TD.Independent(TD.Normal(*map(torch.tensor, a)), 1)
    tq = TD.Independent(TD.Normal(*map(torch.tensor, b)), 1)
    kl = D.kl_divergence(p, q)
    assert kl.shape == (2,)
    np.testing.assert_allclose(npy(kl), TD.kl_divergence(tp, tq).numpy(), rtol=1e-12)
    with pytest.raises(NotImplementedError):
        D.kl_divergence(p, D.Independent(D.Normal(*map(t64, b)), 2))
    with pytest.raises(NotImplementedError):
        TD.kl_divergence(tp, TD.Independent(TD.Normal(*map(torch.tensor, b)), 2))


def test_kl_gradcheck(rng):
    m1, m2 = t64(rng.standard_normal(3), True), t64(rng.standard_normal(3), True)
    s1, s2 = t64(rng.uniform(0.5, 2, 3), True), t64(rng.uniform(0.5, 2, 3), True)
    gradcheck(lambda a, b, c, d: D.kl_divergence(D.Normal(a, b), D.Normal(c, d)),
              (m1, s1, m2, s2))
    l1, l2 = t64(rng.standard_normal(4), True), t64(rng.standard_normal(4), True)
    gradcheck(lambda a, b: D.kl_divergence(D.Bernoulli(logits=a), D.Bernoulli(logits=b)),
              (l1, l2))
    c1, c2 = t64(rng.standard_normal((2, 4)), True), t64(rng.standard_normal((2, 4)), True)
    gradcheck(lambda a, b: D.kl_divergence(D.Categorical(logits=a), D.Categorical(logits=b)),
              (c1, c2))
    gradcheck(lambda a, b: D.kl_divergence(D.Independent(D.Normal(a, 1.0), 1),
                                           D.Independent(D.Normal(b, 2.0), 1)), (m1, m2))


def test_kl_unregistered_pair_and_register_kl():
    n, b = D.Normal(0.0, 1.0), D.Bernoulli(0.5)
    with pytest.raises(NotImplementedError, match="No KL\\(p \\|\\| q\\) is implemented for "
                                                  "p type Normal and q type Bernoulli"):
        D.kl_divergence(n, b)

    class MyNormal(D.Normal):
        pass

    # a subclass uses its parent's closed form...
    kl = D.kl_divergence(MyNormal(t64([0.0]), t64([1.0])), D.Normal(t64([1.0]), t64([1.0])))
    np.testing.assert_allclose(npy(kl), [0.5])

    # ...until a more specific pair is registered
    @D.register_kl(MyNormal, D.Normal)
    def _mine(p, q):
        return pydl.full(p.batch_shape, 42.0, dtype=pydl.float64)

    try:
        kl = D.kl_divergence(MyNormal(t64([0.0]), t64([1.0])), D.Normal(t64([1.0]), t64([1.0])))
        np.testing.assert_allclose(npy(kl), [42.0])
    finally:
        from pydl.distributions import kl as kl_module
        del kl_module._KL_REGISTRY[MyNormal, D.Normal]
        kl_module._KL_MEMOIZE.clear()
    with pytest.raises(TypeError):
        D.register_kl(int, D.Normal)


# -- validation and errors, as torch ----------------------------------------------------------
def _both_raise(exc, pydl_call, torch_call):
    with pytest.raises(exc) as ours:
        pydl_call()
    with pytest.raises(exc) as theirs:
        torch_call()
    return str(ours.value), str(theirs.value)


def test_errors_match_torch():
    torch = pytest.importorskip("torch")
    TD = torch.distributions
    ours, theirs = _both_raise(ValueError, lambda: D.Bernoulli(probs=0.5, logits=0.0),
                               lambda: TD.Bernoulli(probs=0.5, logits=0.0))
    assert ours == theirs
    _both_raise(ValueError, lambda: D.Bernoulli(), lambda: TD.Bernoulli())
    _both_raise(ValueError, lambda: D.Categorical(), lambda: TD.Categorical())
    ours, _ = _both_raise(ValueError, lambda: D.Normal(t64([0.0, 1.0]), t64([1.0, -1.0])),
                          lambda: TD.Normal(torch.zeros(2), torch.tensor([1.0, -1.0])))
    assert "Expected parameter scale" in ours and "GreaterThan(lower_bound=0.0)" in ours
    ours, _ = _both_raise(ValueError, lambda: D.Bernoulli(probs=t64([1.5])),
                          lambda: TD.Bernoulli(probs=torch.tensor([1.5])))
    assert "Interval(lower_bound=0.0, upper_bound=1.0)" in ours
    _both_raise(ValueError, lambda: D.Categorical(probs=t64([-0.5, 1.5])),
                lambda: TD.Categorical(probs=torch.tensor([-0.5, 1.5])))
    _both_raise(ValueError, lambda: D.Categorical(logits=t64(1.0)),
                lambda: TD.Categorical(logits=torch.tensor(1.0)))
    _both_raise(ValueError, lambda: D.Normal(t64([float("nan")]), 1.0),
                lambda: TD.Normal(torch.tensor([float("nan")]), 1.0))
    # values: not a tensor, wrong event shape, not broadcastable, outside the support
    n, tn = D.Normal(t64(np.zeros(3)), 1.0), TD.Normal(torch.zeros(3), 1.0)
    ours, theirs = _both_raise(ValueError, lambda: n.log_prob(0.0), lambda: tn.log_prob(0.0))
    assert ours == theirs
    ours, _ = _both_raise(ValueError, lambda: n.log_prob(t64(np.zeros(4))),
                          lambda: tn.log_prob(torch.zeros(4)))
    assert "(4,) vs (3,)" in ours
    i, ti = D.Independent(n, 1), TD.Independent(tn, 1)
    ours, _ = _both_raise(ValueError, lambda: i.log_prob(t64(np.zeros((2, 4)))),
                          lambda: ti.log_prob(torch.zeros(2, 4)))
    assert "(2, 4) vs (3,)" in ours  # Independent passes the value to its base, as torch
    _both_raise(ValueError, lambda: D.Bernoulli(0.3).log_prob(t64(0.5)),
                lambda: TD.Bernoulli(0.3).log_prob(torch.tensor(0.5)))
    c, tc = D.Categorical(logits=t64(np.zeros(3))), TD.Categorical(logits=torch.zeros(3))
    ours, _ = _both_raise(ValueError, lambda: c.log_prob(pydl.tensor(3)),
                          lambda: tc.log_prob(torch.tensor(3)))
    assert "IntegerInterval(lower_bound=0, upper_bound=2)" in ours
    _both_raise(ValueError, lambda: D.Independent(n, 2), lambda: TD.Independent(tn, 2))


def test_validate_args_off():
    d = D.Normal(t64([0.0]), t64([-1.0]), validate_args=False)  # no check
    assert d.batch_shape == (1,)
    b = D.Bernoulli(logits=t64([0.0]), validate_args=False)
    # a probability in [0, 1] as target: the BCE the VAE's Bernoulli decoder uses
    np.testing.assert_allclose(npy(b.log_prob(t64([0.25]))), [np.log(0.5)])
    old = D.Distribution._validate_args
    try:
        D.Distribution.set_default_validate_args(False)
        assert D.Normal(0.0, -1.0).batch_shape == ()
    finally:
        D.Distribution.set_default_validate_args(old)
    with pytest.raises(ValueError):
        D.Distribution.set_default_validate_args("yes")
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)


def test_float32_stays_float32():
    d = D.Normal(pydl.zeros(3), pydl.ones(3))
    assert d.rsample().dtype == pydl.float32 and d.log_prob(pydl.zeros(3)).dtype == pydl.float32
    b = D.Bernoulli(logits=pydl.zeros(2))
    assert b.sample().dtype == pydl.float32 and b.entropy().dtype == pydl.float32


# -- entropy / cross-entropy / KL helpers (lecture notes 2.13-2.15) -----------------------------
def test_information_helpers_closed_form(rng):
    # the notes' coin flip: one bit
    assert float(D.entropy(t64([0.5, 0.5]), base=2)) == pytest.approx(1.0, rel=1e-12)
    p = rng.dirichlet(np.ones(5), size=(3,))
    q = rng.dirichlet(np.ones(5), size=(3,))
    p[0, 1] = 0.0
    p[0] /= p[0].sum()
    H = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1)
    Hpq = -(p * np.log(q)).sum(-1)
    np.testing.assert_allclose(npy(D.entropy(t64(p))), H, rtol=1e-12)
    np.testing.assert_allclose(npy(D.cross_entropy(t64(p), t64(q))), Hpq, rtol=1e-12)
    np.testing.assert_allclose(npy(D.relative_entropy(t64(p), t64(q))), Hpq - H, rtol=1e-10)
    np.testing.assert_allclose(npy(D.relative_entropy(t64(p), t64(q), base=2)),
                               (Hpq - H) / np.log(2), rtol=1e-10)
    # over another dim
    np.testing.assert_allclose(npy(D.entropy(t64(p.T), dim=0)), H, rtol=1e-12)
    # q = 0 where p > 0: infinite
    assert np.isinf(float(D.relative_entropy(t64([0.5, 0.5]), t64([1.0, 0.0]))))
    # distributions: the closed forms, H(p, q) = H(p) + KL(p || q)
    P, Q = D.Categorical(probs=t64(p)), D.Categorical(probs=t64(q))
    np.testing.assert_allclose(npy(D.cross_entropy(P, Q)), Hpq, rtol=1e-10)
    np.testing.assert_allclose(npy(D.entropy(P)), H, rtol=1e-10)
    np.testing.assert_allclose(npy(D.relative_entropy(P, Q)), Hpq - H, rtol=1e-10)
    # Gaussians: H(N1, N2) = E_N1[-log N2(X)], checked by its closed form
    m1, s1, m2, s2 = 0.3, 0.7, -1.0, 1.9
    ce = D.cross_entropy(D.Normal(t64(m1), t64(s1)), D.Normal(t64(m2), t64(s2)))
    ref = 0.5 * np.log(2 * np.pi * s2 ** 2) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2)
    assert float(ce) == pytest.approx(ref, rel=1e-12)


def test_information_helpers_errors_and_grad(rng):
    with pytest.raises(TypeError):
        D.entropy([0.5, 0.5])
    with pytest.raises(ValueError, match="at least one dimension"):
        D.entropy(t64(0.5))
    with pytest.raises(TypeError):
        D.relative_entropy(D.Normal(0.0, 1.0), t64([0.5, 0.5]))
    with pytest.raises(ValueError, match="base"):
        D.entropy(t64([0.5, 0.5]), base=1)
    p = t64(rng.dirichlet(np.ones(4)), True)
    q = t64(rng.dirichlet(np.ones(4)), True)
    gradcheck(lambda a, b: D.relative_entropy(a, b), (p, q))
    gradcheck(lambda a, b: D.cross_entropy(a, b), (p, q))
    gradcheck(lambda a: D.entropy(a), (p,))
    # a zero probability contributes nothing to the gradient through 0 log 0
    z = t64([0.0, 0.5, 0.5], True)
    D.entropy(z).backward()
    assert np.isfinite(npy(z.grad)).all() and npy(z.grad)[0] == 0


def test_information_matches_torch(rng):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((4, 6))
    target = rng.integers(0, 6, 4)
    onehot = np.eye(6)[target]
    q = np.exp(_log_softmax(logits))
    ce = npy(D.cross_entropy(t64(onehot), t64(q))).mean()
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target)).item()
    assert ce == pytest.approx(ref, rel=1e-12)
    p = rng.dirichlet(np.ones(6), size=4)
    ref = torch.nn.functional.kl_div(torch.log(torch.tensor(q)), torch.tensor(p),
                                     reduction="none").sum(-1).numpy()
    np.testing.assert_allclose(npy(D.relative_entropy(t64(p), t64(q))), ref, rtol=1e-10)


def test_moments_and_shapes_against_torch(rng):
    torch = pytest.importorskip("torch")
    TD = torch.distributions
    loc, scale = rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (2, 3))
    logits = rng.standard_normal((2, 3))
    cases = [
        (D.Normal(t64(loc), t64(scale)), TD.Normal(torch.tensor(loc), torch.tensor(scale))),
        (D.Bernoulli(logits=t64(logits)), TD.Bernoulli(logits=torch.tensor(logits))),
        (D.Categorical(logits=t64(logits)), TD.Categorical(logits=torch.tensor(logits))),
        (D.Independent(D.Normal(t64(loc), t64(scale)), 1),
         TD.Independent(TD.Normal(torch.tensor(loc), torch.tensor(scale)), 1)),
    ]
    for d, td in cases:
        assert d.batch_shape == tuple(td.batch_shape), d
        assert d.event_shape == tuple(td.event_shape), d
        for attr in ("mean", "variance", "stddev", "mode"):
            np.testing.assert_allclose(npy(getattr(d, attr)), getattr(td, attr).numpy(),
                                       rtol=1e-12, equal_nan=True, err_msg=f"{d} {attr}")
        np.testing.assert_allclose(npy(d.perplexity()), td.perplexity().numpy(), rtol=1e-12)
        assert d.sample((4, 1)).shape == tuple(td.sample((4, 1)).shape)
        e, te = d.expand((5,) + d.batch_shape), td.expand((5,) + d.batch_shape)
        assert (e.batch_shape, e.event_shape) == (tuple(te.batch_shape), tuple(te.event_shape))
        np.testing.assert_allclose(npy(e.entropy()), te.entropy().numpy(), rtol=1e-12)
        assert d.has_rsample == td.has_rsample
        assert d.has_enumerate_support == td.has_enumerate_support


def test_register_kl_ambiguity_warns():
    class A(D.Normal):
        pass

    class B(D.Normal):
        pass

    from pydl.distributions import kl as kl_module

    D.register_kl(A, D.Normal)(lambda p, q: pydl.zeros(p.batch_shape))
    D.register_kl(D.Normal, B)(lambda p, q: pydl.ones(p.batch_shape))
    try:
        with pytest.warns(RuntimeWarning, match="Ambiguous kl_divergence\\(A, B\\)"):
            D.kl_divergence(A(0.0, 1.0), B(0.0, 1.0))
    finally:
        del kl_module._KL_REGISTRY[A, D.Normal], kl_module._KL_REGISTRY[D.Normal, B]
        kl_module._KL_MEMOIZE.clear()
