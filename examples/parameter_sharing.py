"""Parameter sharing on the bundled 8x8 digits (course notes 11.3): hard sharing (tied weights)
and soft sharing (the penalty Omega(theta_A, theta_B) = ||theta_A - theta_B||_2^2).

1. **Tied weights.** An autoencoder 64-16-64 whose decoder applies the encoder's weight
   transposed (``nn.TiedLinear``: x_hat = W^T sigmoid(W x + b) + c) against the same
   autoencoder with a decoder of its own. The tied one has one weight matrix, counted once by
   ``parameters()``, stepped once by the optimizer; the table gives the parameter counts and
   the test reconstruction error (mean squared error per pixel) after the same training.
2. **Soft sharing.** Two classifiers (MLP 64-32-10) trained together: A on every training
   image, B on the same digits shifted one pixel to the right with only a few images per
   class. The loss is L_A(theta_A) + L_B(theta_B) + alpha ||theta_A - theta_B||^2
   (``nn.utils.soft_sharing_penalty``). At alpha = 0 B learns from its few images alone; as alpha
   grows B is pulled towards A (which saw far more data on a related task), and at large
   alpha the two become one network, also for B's task where A's weights do not quite fit.
   The table gives, per alpha, B's test accuracy (on shifted test digits), A's, and the final
   squared distance ||theta_A - theta_B||^2.

Figures in ``runs/parameter_sharing/``: ``tied_reconstructions.png`` (test digits, the tied and
the untied reconstructions) and ``soft_sharing.png`` (accuracy and distance against alpha).

Run: ``python examples/parameter_sharing.py`` (about 20 s on 2 cores) or ``--quick`` (fewer
epochs, steps and alphas; what tests/test_example_parameter_sharing.py runs).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pydl
from pydl import nn
from pydl.data import DataLoader, TensorDataset
from pydl.data.datasets import Digits
from pydl.nn.utils import soft_sharing_penalty


class TiedAutoencoder(nn.Module):
    def __init__(self, d: int = 64, code: int = 16):
        super().__init__()
        self.encoder = nn.Linear(d, code)
        self.decoder = nn.TiedLinear(self.encoder)

    def forward(self, x):
        return self.decoder(self.encoder(x).sigmoid())


class UntiedAutoencoder(nn.Module):
    def __init__(self, d: int = 64, code: int = 16):
        super().__init__()
        self.encoder = nn.Linear(d, code)
        self.decoder = nn.Linear(code, d)

    def forward(self, x):
        return self.decoder(self.encoder(x).sigmoid())


def load():
    train, test = Digits(train=True), Digits(train=False)
    return (np.asarray(train.data).reshape(len(train), -1), np.asarray(train.targets),
            np.asarray(test.data).reshape(len(test), -1), np.asarray(test.targets))


def shift_right(X):
    """Digits (N, 64) shifted one pixel to the right (the left column becomes background)."""
    img = X.reshape(-1, 8, 8)
    out = np.zeros_like(img)
    out[:, :, 1:] = img[:, :, :-1]
    return out.reshape(len(X), 64)


def train_autoencoder(model, X, epochs: int, seed: int):
    loader = DataLoader(TensorDataset(X, X), batch_size=32, shuffle=True,
                        generator=pydl.Generator().manual_seed(seed))
    pydl.train.fit(model, nn.MSELoss(), pydl.optim.Adam(model.parameters(), lr=3e-3), loader,
                   epochs=epochs, metrics=[], progress=False)
    return model


def mse(model, X) -> float:
    model.eval()
    with pydl.no_grad():
        return float(((model(pydl.tensor(X)).numpy() - X) ** 2).mean())


def accuracy(model, X, y) -> float:
    model.eval()
    with pydl.no_grad():
        return float((model(pydl.tensor(X)).numpy().argmax(1) == y).mean())


def soft_sharing_run(alpha, XA, yA, XB, yB, steps: int, seed: int):
    """Train A and B together for ``steps`` Adam steps (A: batches of 32; B: its whole small
    set each step) on L_A + L_B + alpha ||theta_A - theta_B||^2."""
    pydl.manual_seed(seed)
    a = pydl.models.MLP([64, 32, 10])
    b = pydl.models.MLP([64, 32, 10])
    b.load_state_dict(a.state_dict())  # the same start: only the training pulls them apart
    opt = pydl.optim.Adam(list(a.parameters()) + list(b.parameters()), lr=3e-3)
    rng = np.random.default_rng(seed)
    xb, yb = pydl.tensor(XB), pydl.tensor(yB)
    loss_fn = nn.CrossEntropyLoss()
    a.train()
    b.train()
    for _ in range(steps):
        idx = rng.integers(0, len(XA), size=32)
        opt.zero_grad()
        loss = loss_fn(a(pydl.tensor(XA[idx])), pydl.tensor(yA[idx])) + loss_fn(b(xb), yb)
        if alpha > 0:
            loss = loss + soft_sharing_penalty(a, b, alpha)
        loss.backward()
        opt.step()
    with pydl.no_grad():
        distance = float(soft_sharing_penalty(a, b))
    return a, b, distance


def figures(out, tied, untied, Xte, alphas, rows):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install 'pydl-nn[plot]'); figures skipped")
        return []
    from pydl import viz

    written = []
    tied.eval()
    untied.eval()
    with pydl.no_grad():
        rec_t = tied(pydl.tensor(Xte[:12])).numpy()
        rec_u = untied(pydl.tensor(Xte[:12])).numpy()
    written.append(viz.reconstruction_grid(
        Xte[:12], rec_t, os.path.join(out, "tied_reconstructions.png"), n=12,
        extra_rows={"untied": rec_u}, labels=("test digit", "tied"),
        title="autoencoder 64-16-64 reconstructions"))
    fig, ax1 = plt.subplots(figsize=(6.5, 4))
    xs = [max(a, alphas[1] / 10) for a in alphas]  # alpha = 0 drawn at the left end of the log axis
    ax1.plot(xs, [r["acc_b"] for r in rows], "o-", label="B (few shifted digits)")
    ax1.plot(xs, [r["acc_a"] for r in rows], "s-", label="A (all digits)")
    ax1.set_xscale("log")
    ax1.set_xlabel("alpha (leftmost point: alpha = 0)")
    ax1.set_ylabel("test accuracy")
    ax2 = ax1.twinx()
    ax2.plot(xs, [r["distance"] for r in rows], "k--", label="||theta_A - theta_B||^2")
    ax2.set_yscale("log")
    ax2.set_ylabel("||theta_A - theta_B||^2")
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=8, loc="center left")
    ax1.grid(True, alpha=0.3)
    ax1.set_title("soft parameter sharing: L_A + L_B + alpha ||theta_A - theta_B||^2")
    fig.tight_layout()
    path = os.path.join(out, "soft_sharing.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="fewer epochs, steps and alphas (what the test runs; also "
                             "PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--per-class", type=int, default=3,
                        help="B's training images per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "parameter_sharing"))
    parser.add_argument("--no-figures", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    quick = args.quick
    epochs = 15 if quick else 40
    steps = 300 if quick else 600
    alphas = [0.0, 1e-3, 1e-2, 1e-1, 1.0] if quick else [0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2,
                                                        1e-1, 1.0]
    Xtr, ytr, Xte, yte = load()
    start = time.perf_counter()

    # -- 1. tied weights ------------------------------------------------------------------------
    pydl.manual_seed(args.seed)
    tied = train_autoencoder(TiedAutoencoder(), Xtr, epochs, args.seed)
    pydl.manual_seed(args.seed)
    untied = train_autoencoder(UntiedAutoencoder(), Xtr, epochs, args.seed)
    baseline = float(((Xte - Xtr.mean(0)) ** 2).mean())  # predicting the mean image
    ae_rows = []
    for name, model in (("tied (decoder = W^T)", tied), ("untied", untied)):
        n_params = sum(p.numel() for p in model.parameters())
        n_state = sum(v.numel() for v in model.state_dict().values())
        ae_rows.append((name, n_params, n_state, mse(model, Xtr), mse(model, Xte)))
    print(f"1. Autoencoder 64-16-64 (sigmoid code), {epochs} epochs of Adam, "
          f"{len(Xtr)} training digits{' (quick mode)' if quick else ''}")
    print(f"{'decoder':<22}{'parameters()':>13}{'state_dict':>12}{'train MSE':>11}"
          f"{'test MSE':>10}")
    for name, n_params, n_state, tr, te in ae_rows:
        print(f"{name:<22}{n_params:>13,}{n_state:>12,}{tr:>11.4f}{te:>10.4f}")
    print(f"(state_dict lists the tied weight under both names, as torch does; predicting the "
          f"mean image gives test MSE {baseline:.4f})")

    # -- 2. soft sharing ------------------------------------------------------------------------
    rng = np.random.default_rng(args.seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(ytr == c), args.per_class, replace=False)
                          for c in range(10)])
    XB, yB = shift_right(Xtr[idx]), ytr[idx]
    XB_test = shift_right(Xte)
    rows = []
    for alpha in alphas:
        a, b, distance = soft_sharing_run(alpha, Xtr, ytr, XB, yB, steps, args.seed)
        rows.append({"alpha": alpha, "acc_b": accuracy(b, XB_test, yte),
                     "acc_a": accuracy(a, Xte, yte), "acc_a_on_b": accuracy(a, XB_test, yte),
                     "distance": distance})
    print(f"\n2. Soft sharing: A on all {len(Xtr)} digits, B on {len(XB)} digits shifted one "
          f"pixel right ({args.per_class} per class), MLP 64-32-10 each, {steps} joint Adam "
          f"steps")
    print(f"{'alpha':>8}{'B test acc':>12}{'A test acc':>12}{'A on B task':>13}"
          f"{'||tA - tB||^2':>15}")
    for r in rows:
        print(f"{r['alpha']:>8g}{r['acc_b']:>12.4f}{r['acc_a']:>12.4f}{r['acc_a_on_b']:>13.4f}"
              f"{r['distance']:>15.4g}")
    best = max(rows, key=lambda r: r["acc_b"])
    print(f"best alpha for B: {best['alpha']:g} ({best['acc_b']:.4f} against "
          f"{rows[0]['acc_b']:.4f} without sharing); wall time "
          f"{time.perf_counter() - start:.1f} s")

    written = [] if args.no_figures else figures(args.out, tied, untied, Xte, alphas, rows)
    for path in written:
        print(f"wrote {path}")
    return {"autoencoders": {name: dict(parameters=p, state=s, train_mse=tr, test_mse=te)
                             for name, p, s, tr, te in ae_rows},
            "mean_image_mse": baseline, "soft": rows, "figures": written}


if __name__ == "__main__":
    main(sys.argv[1:])
