"""pydl.models against the same architectures written in PyTorch (weights copied over): outputs
and every parameter gradient in float64. Skipped where torch is not installed."""
import numpy as np
import pytest

import pydl
from pydl import models

torch = pytest.importorskip("torch")
tnn = torch.nn


def torch_twin(module):
    """The torch module tree that mirrors a pydl one, layer by layer (same names)."""
    name = type(module).__name__
    if name == "Sequential" or isinstance(module, pydl.nn.Sequential):
        return tnn.Sequential(*(torch_twin(m) for m in module))
    simple = {"ReLU": tnn.ReLU, "Tanh": tnn.Tanh, "Sigmoid": tnn.Sigmoid, "Flatten": tnn.Flatten}
    if name in simple:
        return simple[name]()
    if name == "Linear":
        return tnn.Linear(module.in_features, module.out_features)
    if name == "Dropout":
        return tnn.Dropout(module.p)
    if name == "MaxPool2d":
        return tnn.MaxPool2d(module.kernel_size)
    if name == "BatchNorm2d":
        return tnn.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum)
    if name in ("Conv2d", "ConvTranspose2d"):
        cls = tnn.Conv2d if name == "Conv2d" else tnn.ConvTranspose2d
        return cls(module.in_channels, module.out_channels, module.kernel_size,
                   stride=module.stride, padding=module.padding, bias=module.bias is not None)
    raise TypeError(f"no torch twin for {name}")


class Twin(tnn.Module):
    def __init__(self, model):
        super().__init__()
        for child_name, child in model.named_children():
            self.add_module(child_name, torch_twin(child))


def make_pair(model):
    twin = Twin(model).double()
    model = model.double()
    sd = model.state_dict()
    tsd = twin.state_dict()
    assert sorted(sd) == sorted(tsd), (sorted(sd), sorted(tsd))
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in sd.items()})
    return model, twin


def run_both(model, twin, forward_t, shape, train):
    model.train(train)
    twin.train(train)
    x = np.random.default_rng(0).random(shape)
    out = model(pydl.tensor(x))
    tout = forward_t(twin, torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    out.square().sum().backward()
    tout.square().sum().backward()
    tparams = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=1e-8,
                                   atol=1e-10, err_msg=name)


def seq_forward(*names):
    def forward(twin, x):
        for n in names:
            x = getattr(twin, n)(x)
        return x
    return forward


@pytest.mark.parametrize("size", [8, 28, 32, 16])
def test_lenet5_matches_torch(size):
    model, twin = make_pair(models.LeNet5(1, 10, input_size=size))
    run_both(model, twin, seq_forward("features", "classifier"), (3, 1, size, size), train=True)


@pytest.mark.parametrize("train", [True, False])
def test_small_vgg_matches_torch(train):
    model, twin = make_pair(models.SmallVGG(2, 5, input_size=8, widths=(4, 6), dropout=0.0))
    run_both(model, twin, seq_forward("features", "classifier"), (3, 2, 8, 8), train=train)


def test_autoencoders_match_torch():
    model, twin = make_pair(models.Autoencoder([16, 7, 3]))
    run_both(model, twin, lambda t, x: t.decoder(t.encoder(x)).reshape(x.shape), (4, 16),
             train=True)
    model, twin = make_pair(models.ConvAutoencoder(2, widths=(3, 5)))
    run_both(model, twin, seq_forward("encoder", "decoder"), (2, 2, 8, 12), train=True)


def test_mlp_matches_torch():
    model = models.MLP([10, 9, 4], "tanh")
    twin = torch_twin(model).double()
    model = model.double()
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                          for k, v in model.state_dict().items()})
    run_both(model, twin, lambda t, x: t(x), (5, 10), train=True)
