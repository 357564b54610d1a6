"""Autoencoder regularisers (pydl.models.autoencoders), masking noise, the extended
Autoencoder and greedy layer-wise pre-training, each against a float64 NumPy reference."""
import numpy as np
import pytest

import pydl
from pydl import models, nn
from pydl.autograd import gradcheck
from pydl.models import autoencoders as ae_mod


def t64(a, requires_grad=False):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- penalties against NumPy ----------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (7, 2, 3), (4, 13)])
def test_l1_sparsity_matches_numpy(rng, shape):
    h = rng.standard_normal(shape)
    ref = np.abs(h).reshape(shape[0], -1).sum(1).mean()
    got = float(models.l1_sparsity(t64(h)))
    assert got == pytest.approx(ref, rel=1e-12)


def test_l1_sparsity_zero_batch_and_gradient(rng):
    assert float(models.l1_sparsity(pydl.zeros(0, 4))) == 0.0
    h = rng.standard_normal((4, 5))
    h[np.abs(h) < 0.1] = 0.5  # |h| is not differentiable at 0: keep away from it
    assert gradcheck(models.l1_sparsity, (t64(h, True),))


def kl_reference(h, rho):
    rho_hat = h.reshape(len(h), -1).mean(0)
    return float(np.sum(rho * np.log(rho / rho_hat)
                        + (1 - rho) * np.log((1 - rho) / (1 - rho_hat))))


@pytest.mark.parametrize("shape,rho", [((1, 1), 0.5), ((6, 4), 0.05), ((11, 2, 3), 0.2)])
def test_kl_sparsity_matches_numpy(rng, shape, rho):
    h = sigmoid(rng.standard_normal(shape))
    assert float(models.kl_sparsity(t64(h), rho)) == pytest.approx(kl_reference(h, rho),
                                                                   rel=1e-10)
    assert gradcheck(lambda x: models.kl_sparsity(x, rho), (t64(h, True),))


def test_kl_sparsity_is_zero_at_the_target_rate():
    h = np.array([[0.1, 0.3], [0.3, 0.1]])  # both units average 0.2
    assert float(models.kl_sparsity(t64(h), 0.2)) == pytest.approx(0.0, abs=1e-12)
    assert float(models.kl_sparsity(t64(h), 0.05)) > 0.0


def test_kl_sparsity_errors():
    with pytest.raises(ValueError, match="rho"):
        models.kl_sparsity(pydl.rand(3, 2), 1.0)
    with pytest.raises(ValueError, match="rho"):
        models.kl_sparsity(pydl.rand(3, 2), 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        models.kl_sparsity(pydl.randn(3, 2) * 5, 0.1)
    with pytest.raises(ValueError, match="empty batch"):
        models.kl_sparsity(pydl.zeros(0, 2), 0.1)
    with pytest.raises(TypeError, match="Tensor"):
        models.l1_sparsity(np.zeros((2, 2)))
    # a dead unit gives a large finite penalty (rho_hat clamped), not inf
    assert np.isfinite(float(models.kl_sparsity(pydl.zeros(4, 3), 0.05)))


def sigmoid_encoder(rng, n, d, k):
    x, w, b = rng.standard_normal((n, d)), rng.standard_normal((k, d)), rng.standard_normal(k)
    return x, w, b


@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (5, 7, 3), (3, 4, 6)])
def test_sigmoid_contractive_closed_form_matches_numpy(rng, n, d, k):
    x, w, b = sigmoid_encoder(rng, n, d, k)
    h = sigmoid(x @ w.T + b)
    # the Jacobian of each sample, written out: J = diag(h (1 - h)) W
    ref = np.mean([np.sum((np.diag(hi * (1 - hi)) @ w) ** 2) for hi in h])
    got = float(models.sigmoid_contractive_penalty(t64(h), t64(w)))
    assert got == pytest.approx(ref, rel=1e-12)
    assert gradcheck(models.sigmoid_contractive_penalty, (t64(h, True), t64(w, True)))


@pytest.mark.parametrize("n,d,k", [(1, 1, 1), (5, 7, 3), (2, 3, 5)])
def test_contractive_penalty_autograd_equals_sigmoid_closed_form(rng, n, d, k):
    """The higher-order autograd path (one create_graph backward per code unit) gives the
    closed form ||diag(h(1-h)) W||_F^2 and its gradient with respect to W and b."""
    x, w, b = sigmoid_encoder(rng, n, d, k)
    xt, wt, bt = t64(x, True), t64(w, True), t64(b, True)
    h = pydl.sigmoid(xt @ wt.T + bt)
    auto = models.contractive_penalty(h, xt)
    closed = models.sigmoid_contractive_penalty(h, wt)
    assert float(auto) == pytest.approx(float(closed), rel=1e-10)
    ga = pydl.autograd.grad(auto, (wt, bt), retain_graph=True)
    gc = pydl.autograd.grad(closed, (wt, bt))
    for a, c in zip(ga, gc):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-9, atol=1e-12)


def test_contractive_penalty_two_layer_tanh_matches_numpy_jacobian(rng):
    n, d, m, k = 4, 6, 5, 3
    x = rng.standard_normal((n, d))
    w1, b1 = rng.standard_normal((m, d)) * 0.5, rng.standard_normal(m)
    w2, b2 = rng.standard_normal((k, m)) * 0.5, rng.standard_normal(k)
    ref = 0.0
    for xi in x:
        h1 = np.tanh(w1 @ xi + b1)
        h2 = np.tanh(w2 @ h1 + b2)
        jac = np.diag(1 - h2 ** 2) @ w2 @ np.diag(1 - h1 ** 2) @ w1
        ref += np.sum(jac ** 2) / n
    xt = t64(x, True)
    w1t, w2t = t64(w1, True), t64(w2, True)

    def penalty(w1v, w2v):  # gradcheck's differences run under no_grad; the penalty needs grad
        with pydl.enable_grad():
            return penalty_with_grad(w1v, w2v)

    def penalty_with_grad(w1v, w2v):
        h = pydl.tanh(pydl.tanh(xt @ w1v.T + t64(b1)) @ w2v.T + t64(b2))
        return models.contractive_penalty(h, xt)

    assert float(penalty(w1t, w2t)) == pytest.approx(ref, rel=1e-10)
    with pydl.no_grad(), pytest.raises(ValueError, match="no_grad"):
        penalty_with_grad(w1t, w2t)
    # its gradient goes through a double backward: checked by central differences
    assert gradcheck(penalty, (w1t, w2t))


def test_contractive_penalty_errors_and_edge_cases():
    x = pydl.rand(3, 4)
    with pytest.raises(ValueError, match="requires grad"):
        models.contractive_penalty(x * 2, x)
    xg = pydl.rand(3, 4, requires_grad=True)
    with pytest.raises(ValueError, match="batch size"):
        models.contractive_penalty(xg[:2] * 2, xg)
    zero = pydl.zeros(0, 4, requires_grad=True)
    assert float(models.contractive_penalty(zero * 2, zero)) == 0.0
    with pytest.raises(ValueError, match=r"\(k, d\)"):
        models.sigmoid_contractive_penalty(pydl.rand(3, 2), pydl.rand(3, 4))


# -- masking noise, straight-through binarisation ---------------------------------------------

def test_masking_noise_zeroes_a_fraction_without_rescaling():
    x = pydl.rand(200, 100) + 0.5
    layer = nn.MaskingNoise(0.3)
    y = layer(x).numpy()
    kept = y != 0
    assert abs(1 - kept.mean() - 0.3) < 0.02  # 20,000 draws: sd of the fraction ~0.003
    np.testing.assert_array_equal(y[kept], x.numpy()[kept])  # survivors not rescaled
    layer.eval()
    assert layer(x) is x
    assert float(nn.MaskingNoise(1.0)(x).abs().sum()) == 0.0
    assert nn.MaskingNoise(0.0)(x) is x
    assert repr(layer) == "MaskingNoise(p=0.3)"


def test_masking_noise_gradient_is_the_mask():
    x = pydl.rand(6, 7, dtype=pydl.float64, requires_grad=True)
    pydl.manual_seed(3)
    y = nn.MaskingNoise(0.5)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (y.detach().numpy() != 0).astype(np.float64))


def test_masking_noise_errors():
    with pytest.raises(ValueError, match="probability"):
        nn.MaskingNoise(1.5)
    with pytest.raises(ValueError, match="probability"):
        nn.MaskingNoise(True)
    with pytest.raises(TypeError, match="Tensor"):
        nn.MaskingNoise(0.5)(np.ones(3))


def test_straight_through_binarize():
    p = t64([[0.2, 0.7], [0.5, 0.9]], requires_grad=True)
    y = models.StraightThroughBinarize()(p)
    np.testing.assert_array_equal(y.detach().numpy(), [[0, 1], [0, 1]])
    (y * t64([[1, 2], [3, 4]])).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [[1, 2], [3, 4]])  # identity gradient


# -- the Autoencoder ----------------------------------------------------------------------------

def test_autoencoder_kinds_and_code_activation():
    assert models.Autoencoder([64, 16]).kind == "undercomplete"
    assert models.Autoencoder([8, 8]).kind == "complete"
    over = models.Autoencoder([8, 20], code_activation="sigmoid")
    assert over.kind == "overcomplete"
    z = over.encode(pydl.randn(5, 8) * 10).detach().numpy()
    assert z.shape == (5, 20) and z.min() >= 0 and z.max() <= 1
    # state_dict keys unchanged by the extensions (no parameters in noise and activations)
    plain = models.Autoencoder([8, 20])
    noisy = models.Autoencoder([8, 20], code_activation="sigmoid", code_noise=2.0,
                               corruption=nn.GaussianNoise(0.1))
    assert list(plain.state_dict()) == list(noisy.state_dict())


def test_autoencoder_corruption_in_training_only_and_loss_against_clean_input():
    ae = models.Autoencoder([6, 4, 3], corruption=nn.MaskingNoise(0.5))
    x = pydl.rand(5, 6)
    pydl.manual_seed(7)
    out = ae.loss(x)
    pydl.manual_seed(7)
    corrupted = ae.corruption(x)
    assert not np.array_equal(corrupted.numpy(), x.numpy())
    r = ae.decoder(ae.encoder(corrupted)).detach().numpy().astype(np.float64)
    ref = np.mean((r - x.numpy()) ** 2)  # against the clean x
    assert float(out.reconstruction) == pytest.approx(ref, rel=1e-5)
    assert float(out.penalty) == 0.0
    ae.eval()
    np.testing.assert_array_equal(ae(x).detach().numpy(),
                                  ae.decoder(ae.encoder(x)).detach().numpy())


def test_autoencoder_loss_adds_the_weighted_penalties(rng):
    ae = models.Autoencoder([5, 4], activation="sigmoid", code_activation="sigmoid",
                            output_activation=None).double()
    x = t64(rng.random((7, 5)))
    out = ae.loss(x, l1=0.3, sparsity=0.7, rho=0.1, contractive=0.2)
    lin = ae.encoder[1]
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    h = sigmoid(x.numpy() @ w.T + b)
    contr = np.mean([np.sum((np.diag(hi * (1 - hi)) @ w) ** 2) for hi in h])
    ref = 0.3 * np.abs(h).sum(1).mean() + 0.7 * kl_reference(h, 0.1) + 0.2 * contr
    assert float(out.penalty) == pytest.approx(ref, rel=1e-10)
    dec = ae.decoder[1]
    r = h @ dec.weight.detach().numpy().T + dec.bias.detach().numpy()
    assert float(out.reconstruction) == pytest.approx(np.mean((r - x.numpy()) ** 2), rel=1e-10)
    assert float(out.total) == pytest.approx(float(out.reconstruction) + ref, rel=1e-10)
    out.total.backward()
    assert all(p.grad is not None for p in ae.parameters())
    bce = ae.loss(pydl.sigmoid(x), criterion=lambda r, t: ((r - t) ** 2).sum())
    assert float(bce.total) > 0


def test_autoencoder_contractive_closed_form_equals_autograd(rng):
    ae = models.Autoencoder([6, 4], code_activation="sigmoid").double()
    x = t64(rng.random((5, 6)))
    auto = ae.loss(x, contractive=0.5)
    closed = ae.loss(x, contractive=0.5, contractive_method="sigmoid")
    assert float(closed.penalty) == pytest.approx(float(auto.penalty), rel=1e-10)
    ga = pydl.autograd.grad(auto.total, list(ae.parameters()))
    gc = pydl.autograd.grad(closed.total, list(ae.parameters()))
    for a, c in zip(ga, gc):
        np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="Flatten - Linear - Sigmoid"):
        models.Autoencoder([6, 4, 2], code_activation="sigmoid").loss(
            pydl.rand(2, 6), contractive=1.0, contractive_method="sigmoid")
    with pytest.raises(ValueError, match="contractive_method"):
        ae.loss(x, contractive=1.0, contractive_method="exact")


def test_autoencoder_bce_criterion_and_return_code(rng):
    ae = models.Autoencoder([6, 3]).double()
    x = t64(rng.random((4, 6)))
    r, code = ae(x, return_code=True)
    assert code.shape == (4, 3)
    np.testing.assert_array_equal(code.detach().numpy(), ae.encode(x).detach().numpy())
    p = r.detach().numpy()
    ref = -np.mean(x.numpy() * np.log(p) + (1 - x.numpy()) * np.log(1 - p))
    assert float(ae.loss(x, criterion="bce").reconstruction) == pytest.approx(ref, rel=1e-10)


def test_autoencoder_loss_errors():
    ae = models.Autoencoder([4, 2])
    with pytest.raises(ValueError, match="l1"):
        ae.loss(pydl.rand(2, 4), l1=-1.0)
    with pytest.raises(ValueError, match="criterion"):
        ae.loss(pydl.rand(2, 4), criterion="l2")
    with pytest.raises(TypeError, match="corruption"):
        models.Autoencoder([4, 2], corruption=0.3)


def test_binary_code_is_deterministic_and_keeps_the_mode():
    ae = models.Autoencoder([6, 5], code_activation="sigmoid", code_noise=4.0,
                            corruption=nn.GaussianNoise(1.0))
    x = pydl.rand(9, 6)
    a, b = ae.binary_code(x), ae.binary_code(x)
    assert a.shape == (9, 5) and a.dtype == pydl.bool
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert ae.training
    lin = ae.encoder[1]
    ref = sigmoid(x.numpy() @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()) > 0.5
    np.testing.assert_array_equal(a.numpy(), ref)


# -- greedy layer-wise pre-training ------------------------------------------------------------

def test_greedy_layerwise_pretrain_trains_hidden_layers_only(rng):
    # data on a 3-dimensional subspace of R^12: each stage can reconstruct it well
    x = (rng.standard_normal((120, 3)) @ rng.standard_normal((3, 12))).astype(np.float32)
    net = models.MLP([12, 8, 6, 4], activation="tanh")
    linears = [m for m in net if isinstance(m, nn.Linear)]
    before = [lin.weight.detach().numpy().copy() for lin in linears]
    losses = models.greedy_layerwise_pretrain(net, x, epochs=30, lr=1e-2, batch_size=32,
                                              corruption=lambda: nn.GaussianNoise(0.05))
    assert len(losses) == 2
    after = [lin.weight.detach().numpy() for lin in linears]
    assert not np.allclose(before[0], after[0]) and not np.allclose(before[1], after[1])
    np.testing.assert_array_equal(before[2], after[2])  # the classifier is left alone
    # the first stage reconstructs its input far better than predicting the mean would
    assert losses[0] < 0.2 * float(np.var(x, 0).mean())
    assert net.training


def test_greedy_layerwise_pretrain_errors():
    with pytest.raises(TypeError, match="Sequential"):
        models.greedy_layerwise_pretrain(models.Autoencoder([4, 2]), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="hidden Linear"):
        models.greedy_layerwise_pretrain(models.MLP([4, 2]), np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="epochs"):
        models.greedy_layerwise_pretrain(models.MLP([4, 3, 2]), np.zeros((3, 4), np.float32),
                                         epochs=-1)


def test_module_exports():
    for name in ae_mod.__all__:
        assert getattr(models, name) is getattr(ae_mod, name)
