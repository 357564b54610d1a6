"""One training step (zero_grad, forward, loss, backward, optimizer step) of the reference models,
pydl against the same model in PyTorch CPU, in one process.

Cases: LeNet-5 on a batch of 64 28x28 images with SGD (momentum 0.9), an MLP 64-128-10 on a
batch of 32 with Adam, and issue #13's dense nets (Adam, batch 256): a GELU MLP 784-1024-1024-10
with cross-entropy and a sigmoid autoencoder 784-256-784 with binary cross-entropy. Both contenders start from the same weights and data; before timing, one
step of each is run and their losses and gradients are compared, so the two sides are known to
compute the same thing.
"""
from __future__ import annotations

import numpy as np

import pydl
from pydl import models, nn, optim

from .harness import optional_torch


def _torch_lenet(torch):
    tnn = torch.nn
    # The same layout as pydl.models.LeNet5(1, 10, input_size=28).
    return tnn.Sequential(
        tnn.Sequential(tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
                       tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2)),
        tnn.Sequential(tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84),
                       tnn.ReLU(), tnn.Linear(84, 10)))


def _torch_mlp(torch):
    tnn = torch.nn
    return tnn.Sequential(tnn.Flatten(), tnn.Linear(64, 128), tnn.ReLU(), tnn.Linear(128, 10))


def _copy_weights(torch, pydl_model, torch_model) -> None:
    """pydl parameters into the torch model, matched in registration order."""
    src = [p.detach().numpy() for p in pydl_model.parameters()]
    dst = list(torch_model.parameters())
    assert len(src) == len(dst), (len(src), len(dst))
    with torch.no_grad():
        for s, d in zip(src, dst):
            assert tuple(s.shape) == tuple(d.shape), (s.shape, d.shape)
            d.copy_(torch.from_numpy(s.copy()))


def _torch_gelu_mlp(torch):
    tnn = torch.nn
    return tnn.Sequential(tnn.Linear(784, 1024), tnn.GELU(), tnn.Linear(1024, 1024), tnn.GELU(),
                          tnn.Linear(1024, 10))


def _gelu_mlp():
    return nn.Sequential(nn.Linear(784, 1024), nn.GELU(), nn.Linear(1024, 1024), nn.GELU(),
                         nn.Linear(1024, 10))


def _torch_autoencoder(torch):
    tnn = torch.nn
    return tnn.Sequential(tnn.Linear(784, 256), tnn.Sigmoid(), tnn.Linear(256, 784), tnn.Sigmoid())


def _autoencoder():
    return nn.Sequential(nn.Linear(784, 256), nn.Sigmoid(), nn.Linear(256, 784), nn.Sigmoid())


def _case(suite, name, model, make_opt, x, y, torch, make_torch_model, make_torch_opt,
          loss="cross_entropy"):
    loss_fn = nn.CrossEntropyLoss() if loss == "cross_entropy" else nn.BCELoss()
    opt = make_opt(model.parameters())
    px, py = pydl.from_numpy(x), pydl.from_numpy(y)

    def pydl_step():
        opt.zero_grad()
        loss = loss_fn(model(px), py)
        loss.backward()
        opt.step()
        return loss

    torch_step = None
    if torch is not None:
        tmodel = make_torch_model(torch)
        _copy_weights(torch, model, tmodel)
        topt = make_torch_opt(torch, tmodel.parameters())
        tloss_fn = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.BCELoss()
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_step():
            topt.zero_grad()
            loss = tloss_fn(tmodel(tx), ty)
            loss.backward()
            topt.step()
            return loss

        # Check before timing: the same loss and gradients from the same weights.
        lp, lt = float(pydl_step().item()), float(torch_step().item())
        if abs(lp - lt) > 1e-4 * max(1.0, abs(lt)):
            raise AssertionError(f"{name}: pydl loss {lp} != torch loss {lt}")
        for p, t in zip(model.parameters(), tmodel.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-5,
                                       err_msg=name)
    suite.add(name, pydl=pydl_step, peers={"torch": torch_step})


def run(suite) -> None:
    torch = optional_torch()
    rng = np.random.default_rng(0)

    pydl.manual_seed(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64).astype(np.int64)
    _case(suite, "lenet5 step b64 28x28 sgd", models.LeNet5(1, 10, input_size=28),
          lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9), x, y, torch, _torch_lenet,
          lambda t, ps: t.optim.SGD(ps, lr=0.01, momentum=0.9))

    x = rng.standard_normal((32, 64)).astype(np.float32)
    y = rng.integers(0, 10, 32).astype(np.int64)
    _case(suite, "mlp 64-128-10 step b32 adam", models.MLP([64, 128, 10]),
          lambda ps: optim.Adam(ps, lr=1e-3), x, y, torch, _torch_mlp,
          lambda t, ps: t.optim.Adam(ps, lr=1e-3))

    # Issue #13's dense-net steps: the elementwise and reduction kernels between the GEMMs.
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = rng.integers(0, 10, 256).astype(np.int64)
    _case(suite, "gelu mlp 784-1024-1024-10 step b256 adam", _gelu_mlp(),
          lambda ps: optim.Adam(ps, lr=1e-3), x, y, torch, _torch_gelu_mlp,
          lambda t, ps: t.optim.Adam(ps, lr=1e-3))

    x = rng.random((256, 784)).astype(np.float32)  # pixel intensities: the BCE target is x
    _case(suite, "sigmoid autoencoder 784-256-784 bce step b256 adam", _autoencoder(),
          lambda ps: optim.Adam(ps, lr=1e-3), x, x, torch, _torch_autoencoder,
          lambda t, ps: t.optim.Adam(ps, lr=1e-3), loss="bce")
