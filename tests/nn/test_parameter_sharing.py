"""Hard parameter sharing (nn.TiedLinear: one Parameter in an encoder and its transposed
decoder) and soft sharing (nn.utils.soft_sharing_penalty), against PyTorch and NumPy."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.autograd import gradcheck
from pydl.nn.utils import soft_sharing_penalty


class TiedAE(nn.Module):
    def __init__(self, d=7, h=3):
        super().__init__()
        self.encoder = nn.Linear(d, h)
        self.decoder = nn.TiedLinear(self.encoder)

    def forward(self, x):
        return self.decoder(self.encoder(x).sigmoid())


def test_tied_parameter_is_one_object_counted_once():
    model = TiedAE()
    assert model.decoder.weight is model.encoder.weight
    names = [n for n, _ in model.named_parameters()]
    assert names == ["encoder.weight", "encoder.bias", "decoder.bias"]
    assert len(list(model.parameters())) == 3
    assert sum(p.numel() for p in model.parameters()) == 7 * 3 + 3 + 7
    assert nn.shared_parameters(model) == [["encoder.weight", "decoder.weight"]]
    # state_dict keeps both names (as torch), sharing memory
    sd = model.state_dict()
    assert list(sd) == ["encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias"]
    assert np.shares_memory(sd["encoder.weight"].numpy(), sd["decoder.weight"].numpy())
    assert model.decoder.in_features == 3 and model.decoder.out_features == 7


def test_torch_lists_the_same_names_for_the_same_tying():
    torch = pytest.importorskip("torch")

    class TorchTied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(7, 3)
            self.decoder = torch.nn.Module()
            self.decoder.weight = self.encoder.weight
            self.decoder.bias = torch.nn.Parameter(torch.zeros(7))

    t = TorchTied()
    ours = TiedAE()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert list(ours.state_dict()) == list(t.state_dict())


def test_gradient_is_the_sum_of_both_uses_against_torch(rng):
    torch = pytest.importorskip("torch")
    model = TiedAE().double()
    x = rng.normal(size=(5, 7))
    out = model(pydl.tensor(x))
    loss = ((out - pydl.tensor(x)) ** 2).sum()
    loss.backward()

    W = torch.tensor(model.encoder.weight.detach().numpy(), requires_grad=True)
    b = torch.tensor(model.encoder.bias.detach().numpy(), requires_grad=True)
    c = torch.tensor(model.decoder.bias.detach().numpy(), requires_grad=True)
    xt = torch.tensor(x)
    h = torch.sigmoid(torch.nn.functional.linear(xt, W, b))
    rec = torch.nn.functional.linear(h, W.t(), c)
    ((rec - xt) ** 2).sum().backward()
    np.testing.assert_allclose(model.encoder.weight.grad.numpy(), W.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.encoder.bias.grad.numpy(), b.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(model.decoder.bias.grad.numpy(), c.grad.numpy(), rtol=1e-10)

    # and it is the sum of the two uses' gradients, each taken with the other use frozen
    Wa = torch.tensor(W.detach().numpy(), requires_grad=True)  # encoder use
    Wb = torch.tensor(W.detach().numpy(), requires_grad=True)  # decoder use
    h = torch.sigmoid(torch.nn.functional.linear(xt, Wa, b.detach()))
    rec = torch.nn.functional.linear(h, Wb.t(), c.detach())
    ((rec - xt) ** 2).sum().backward()
    np.testing.assert_allclose(W.grad.numpy(), (Wa.grad + Wb.grad).numpy(), rtol=1e-10)


def test_tied_gradcheck(rng):
    W = pydl.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    c = pydl.tensor(rng.normal(size=4), requires_grad=True)
    x = pydl.tensor(rng.normal(size=(2, 4)), requires_grad=True)

    def f(x, W, c):
        h = pydl.nn.functional.linear(x, W).tanh()
        return pydl.nn.functional.linear(h, W.t(), c)

    assert gradcheck(f, (x, W, c))


def test_optimizer_steps_the_tied_weight_once():
    model = TiedAE().double()
    opt = pydl.optim.SGD(model.parameters(), lr=0.1)
    assert sum(len(g["params"]) for g in opt.param_groups) == 3
    x = pydl.tensor(np.random.default_rng(0).normal(size=(4, 7)))
    before = model.encoder.weight.detach().numpy().copy()
    opt.zero_grad()
    ((model(x) - x) ** 2).mean().backward()
    g = model.encoder.weight.grad.numpy().copy()
    opt.step()
    # one step of -lr * (summed) gradient, not two
    np.testing.assert_allclose(model.encoder.weight.detach().numpy(), before - 0.1 * g,
                               rtol=1e-12)
    assert model.decoder.weight is model.encoder.weight


def test_state_dict_round_trip_keeps_the_tie(tmp_path):
    torch = pytest.importorskip("torch")
    src, dst = TiedAE(), TiedAE()
    for name in ("x.safetensors", "x.pt"):
        path = str(tmp_path / name)
        pydl.save(src.state_dict(), path)
        dst.load_state_dict(pydl.load(path))
        assert dst.decoder.weight is dst.encoder.weight
        for (n, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=n)
    # torch.save's format keeps one storage for the two names (the weight is written once)
    loaded = torch.load(str(tmp_path / "x.pt"), weights_only=True)
    assert loaded["encoder.weight"].untyped_storage().data_ptr() == \
        loaded["decoder.weight"].untyped_storage().data_ptr()
    # the whole module loads into torch's equivalent tying
    t_enc = torch.nn.Linear(7, 3)
    t_enc.load_state_dict({"weight": loaded["encoder.weight"], "bias": loaded["encoder.bias"]})
    np.testing.assert_array_equal(t_enc.weight.detach().numpy(),
                                  src.encoder.weight.detach().numpy())


def test_tied_linear_errors_and_shapes():
    with pytest.raises(TypeError, match="2-D weight"):
        nn.TiedLinear(nn.ReLU())
    lin = nn.Linear(5, 2)
    tied = nn.TiedLinear(lin, bias=False)
    assert tied.bias is None
    out = tied(pydl.randn(3, 2))
    assert out.shape == (3, 5)
    assert tied(pydl.randn(0, 2)).shape == (0, 5)
    with pytest.raises(RuntimeError, match="in_features=2"):
        tied(pydl.randn(3, 5))


# -- soft sharing ---------------------------------------------------------------------------------

def test_soft_sharing_penalty_value_and_gradient_against_numpy(rng):
    a, b = nn.Linear(4, 3).double(), nn.Linear(4, 3).double()
    pen = soft_sharing_penalty(a, b, alpha=0.3)
    ref = 0.3 * sum(((p.detach().numpy() - q.detach().numpy()) ** 2).sum()
                    for p, q in zip(a.parameters(), b.parameters()))
    assert float(pen) == pytest.approx(ref, rel=1e-12)
    pen.backward()
    for p, q in zip(a.parameters(), b.parameters()):
        d = p.detach().numpy() - q.detach().numpy()
        np.testing.assert_allclose(p.grad.numpy(), 0.6 * d, rtol=1e-12)
        np.testing.assert_allclose(q.grad.numpy(), -0.6 * d, rtol=1e-12)
    no_bias = soft_sharing_penalty(a, b, include_bias=False)
    assert float(no_bias) == pytest.approx(
        float(((a.weight.detach().numpy() - b.weight.detach().numpy()) ** 2).sum()), rel=1e-12)


def test_soft_sharing_penalty_on_tensors_gradcheck(rng):
    x = pydl.tensor(rng.normal(size=(2, 3)), requires_grad=True)
    y = pydl.tensor(rng.normal(size=(2, 3)), requires_grad=True)
    z = pydl.tensor(rng.normal(size=(5,)), requires_grad=True)
    w = pydl.tensor(rng.normal(size=(5,)), requires_grad=True)
    assert gradcheck(lambda x, y, z, w: soft_sharing_penalty([x, z], [y, w], 1.7),
                     (x, y, z, w))
    assert float(soft_sharing_penalty(x, x)) == 0.0


def test_soft_sharing_penalty_pulls_models_together():
    pydl.manual_seed(3)
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    opt = pydl.optim.SGD(list(a.parameters()) + list(b.parameters()), lr=0.1)
    start = float(soft_sharing_penalty(a, b))
    for _ in range(20):
        opt.zero_grad()
        soft_sharing_penalty(a, b).backward()
        opt.step()
    # gradient flow on ||d||^2 shrinks d by (1 - 4 lr) per step
    assert float(soft_sharing_penalty(a, b)) == pytest.approx(start * 0.6 ** 40, rel=1e-3)


def test_soft_sharing_penalty_errors():
    with pytest.raises(ValueError, match="only in the first"):
        soft_sharing_penalty(nn.Linear(2, 2), nn.Linear(2, 2, bias=False))
    with pytest.raises(ValueError, match=r"shape \(2, 2\) in the first and \(3, 2\)"):
        soft_sharing_penalty(nn.Linear(2, 2), nn.Linear(2, 3))
    with pytest.raises(TypeError, match="two Modules"):
        soft_sharing_penalty(nn.Linear(2, 2), [pydl.zeros(2)])
    with pytest.raises(ValueError, match="2 tensors against 1"):
        soft_sharing_penalty([pydl.zeros(2), pydl.zeros(2)], [pydl.zeros(2)])
