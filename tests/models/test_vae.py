"""pydl.models.VAE: the ELBO against a float64 NumPy reference of the same network and noise,
gradcheck through the reparameterised ELBO, shapes, generation and errors."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck
from pydl.distributions import Independent
from pydl.models import ELBO, VAE


def npy(x):
    return x.detach().numpy()


def _reference_elbo(model, x, eps):
    """Negative ELBO terms of a one-hidden-layer VAE, in NumPy (float64)."""
    W = {k: npy(v).astype(np.float64) for k, v in model.state_dict().items()}

    def lin(h, name):
        return h @ W[f"{name}.weight"].T + W[f"{name}.bias"]

    h = np.maximum(lin(x, "encoder.0"), 0)
    mu, logvar = lin(h, "to_loc"), lin(h, "to_logvar")
    z = mu + np.exp(0.5 * logvar) * eps  # eps: (S, N, L)
    out = lin(np.maximum(lin(z, "decoder.0"), 0), "decoder.2")  # (S, N, D)
    if model.likelihood == "bernoulli":
        # -log p(x|z) = sum_d BCE(sigmoid(out), x) in the stable form
        nll = (np.maximum(out, 0) - out * x + np.log1p(np.exp(-np.abs(out)))).sum(-1)
    else:
        if model.fixed_scale is not None:
            s = np.full(x.shape[-1], model.fixed_scale)
        else:
            s = np.log1p(np.exp(W["log_scale"])) + model.min_scale
        nll = ((x - out) ** 2 / (2 * s ** 2) + np.log(s) + 0.5 * np.log(2 * np.pi)).sum(-1)
    recon = nll.mean(0).mean()
    kl = (0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar).sum(-1)).mean()
    return recon, kl


@pytest.mark.parametrize("likelihood,scale", [("bernoulli", "learned"), ("gaussian", "learned"),
                                              ("gaussian", 0.3)])
@pytest.mark.parametrize("n,samples", [(1, 1), (7, 3), (13, 2)])
def test_elbo_against_numpy(rng, likelihood, scale, n, samples):
    pydl.manual_seed(0)
    model = VAE(10, latent_dim=3, hidden=(11,), likelihood=likelihood,
                gaussian_scale=scale).double()
    x = rng.random((n, 10))
    pydl.manual_seed(42)
    terms = model.elbo(pydl.tensor(x), n_samples=samples, beta=0.5)
    pydl.manual_seed(42)
    eps = npy(pydl.randn((samples, n, 3), dtype=pydl.float64))
    recon, kl = _reference_elbo(model, x, eps)
    assert isinstance(terms, ELBO)
    assert float(terms.reconstruction) == pytest.approx(recon, rel=1e-10)
    assert float(terms.kl) == pytest.approx(kl, rel=1e-10)
    assert float(terms.elbo) == pytest.approx(-(recon + kl), rel=1e-10)
    assert float(terms.loss) == pytest.approx(recon + 0.5 * kl, rel=1e-10)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_gradcheck(rng, likelihood):
    pydl.manual_seed(0)
    model = VAE(5, latent_dim=2, hidden=(4,), likelihood=likelihood).double()
    x = pydl.tensor(rng.random((3, 5)), requires_grad=True)

    def loss(inp):
        pydl.manual_seed(9)  # the same eps in every evaluation
        return model.elbo(inp, n_samples=2).loss

    gradcheck(loss, (x,))
    # the gradient reaches every parameter (the encoder through rsample and the KL)
    loss(x).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.abs(npy(p.grad)).sum() > 0, name


def test_shapes_and_generation():
    pydl.manual_seed(0)
    model = VAE(64, latent_dim=3, hidden=(16, 8))
    x = pydl.rand(5, 1, 8, 8)
    q = model.encode(x)
    assert isinstance(q, Independent) and q.batch_shape == (5,) and q.event_shape == (3,)
    p = model.decode(q.rsample())
    assert p.batch_shape == (5,) and p.event_shape == (64,)
    assert model(x).shape == (5, 1, 8, 8)
    assert ((npy(model(x)) > 0) & (npy(model(x)) < 1)).all()  # Bernoulli means
    pydl.manual_seed(1)
    s1 = model.sample(4)
    pydl.manual_seed(1)
    assert s1.shape == (4, 64) and np.array_equal(npy(s1), npy(model.sample(4)))
    draws = npy(model.sample(6, mean=False))
    assert set(np.unique(draws)) <= {0.0, 1.0}
    path = model.interpolate(x[0], x[1], steps=5)
    assert path.shape == (5, 1, 8, 8)
    ends = model.decode(model.encode(x[:2]).mean).mean.reshape(2, 1, 8, 8)
    np.testing.assert_allclose(npy(path[0]), npy(ends[0]), rtol=1e-5)
    np.testing.assert_allclose(npy(path[-1]), npy(ends[1]), rtol=1e-5)
    assert not path.requires_grad
    # an empty batch gives empty per-example terms (the means are NaN, as torch's mean of 0)
    assert model.encode(pydl.rand(0, 64)).batch_shape == (0,)


def test_parameters_and_errors():
    model = VAE(64, latent_dim=2, hidden=(32,), likelihood="gaussian")
    names = [n for n, _ in model.named_parameters()]
    assert "log_scale" in names and len(names) == 11
    assert "log_scale" not in dict(VAE(64, likelihood="gaussian", gaussian_scale=0.1)
                                   .named_parameters())
    sigma = npy(model._scale())
    np.testing.assert_allclose(sigma, 1.0, rtol=1e-6)  # init_scale
    with pytest.raises(ValueError, match="likelihood"):
        VAE(64, likelihood="poisson")
    with pytest.raises(ValueError, match="gaussian_scale"):
        VAE(64, likelihood="gaussian", gaussian_scale=-1.0)
    with pytest.raises(ValueError, match="init_scale"):
        VAE(64, likelihood="gaussian", init_scale=0.01)
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(64, latent_dim=0)
    with pytest.raises(ValueError, match="64 features"):
        model.elbo(pydl.rand(3, 65))
    with pytest.raises(ValueError, match="n_samples"):
        model.elbo(pydl.rand(3, 64), n_samples=0)
    with pytest.raises(ValueError, match="steps"):
        model.interpolate(pydl.rand(64), pydl.rand(64), steps=1)
    with pytest.raises(ValueError, match="single examples"):
        model.interpolate(pydl.rand(2, 64), pydl.rand(64))


def test_training_improves_the_elbo():
    from pydl.data.datasets import Digits

    X = pydl.tensor(Digits(train=True).data[:128].reshape(128, -1))
    pydl.manual_seed(0)
    model = VAE(64, latent_dim=2, hidden=(32,))
    opt = pydl.optim.Adam(model.parameters(), lr=1e-2)
    with pydl.no_grad():
        before = float(model.elbo(X, n_samples=8).elbo)
    for _ in range(60):
        opt.zero_grad()
        model.elbo(X).loss.backward()
        opt.step()
    with pydl.no_grad():
        after = model.elbo(X, n_samples=8)
    # the BCE of 64 pixels falls well below its untrained ~44 nats
    assert float(after.elbo) > before + 10
    assert float(after.kl) > 0.1  # the code is used
