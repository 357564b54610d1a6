"""A variational autoencoder on the bundled 8x8 digits: ELBO, sampling and interpolation.

The lecture notes' stochastic autoencoder (23.1) has an encoder p(h|x) and a decoder p(x|h)
trained on -log p(x|h): binary cross-entropy for a Bernoulli decoder, squared error for a
Gaussian one. A VAE (``pydl.models.VAE``) adds a prior p(z) = N(0, I) and a Gaussian encoder
q(z|x), and maximises the evidence lower bound

    ELBO = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))

(reconstruction by reparameterised draws z = mu + sigma * eps, ``Normal.rsample``; the KL in
closed form, ``pydl.distributions.kl_divergence``). This script trains one VAE with each
decoder, prints per epoch the training ELBO with its two terms (reconstruction = -E_q[log
p(x|z)], the KL) and the test ELBO, all in nats per image, and writes to ``--out``
(``runs/vae``):

* ``samples.png``: decoder means of z ~ p(z), for both decoders, next to real test digits;
* ``interpolation.png``: decoder means along straight lines between the codes of pairs of
  test digits (left and right columns: the digits themselves);
* ``latent.png`` (a 2-D code only): the test set's posterior means coloured by digit, and the
  decoder's means over a grid of z.

The figures need matplotlib (``pip install pydl[plot]``); without it the tables still print.
Run: ``python examples/vae.py`` (about 30 s on 2 cores) or with ``--quick`` (300 training
images, 3 epochs, a few seconds; what tests/test_example_vae.py runs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import pydl
from pydl.data.datasets import Digits
from pydl.models import VAE


def load(quick: bool):
    """Training and test images as (N, 64) float32 in [0, 1], and the test labels."""
    train, test = Digits(train=True), Digits(train=False)
    Xtr, Xte = train.data.reshape(len(train.data), -1), test.data.reshape(len(test.data), -1)
    yte = np.asarray(test.targets)
    if quick:
        Xtr = Xtr[:300]
    return (np.ascontiguousarray(Xtr, dtype=np.float32),
            np.ascontiguousarray(Xte, dtype=np.float32), yte)


@pydl.no_grad()
def evaluate(model: VAE, X: np.ndarray, n_samples: int = 4) -> dict:
    """ELBO terms on X (per image, nats), with ``n_samples`` draws of z per image."""
    terms = model.elbo(pydl.tensor(X), n_samples=n_samples)
    return dict(elbo=float(terms.elbo), reconstruction=float(terms.reconstruction),
                kl=float(terms.kl))


def train(likelihood: str, Xtr, Xte, epochs: int, latent_dim: int, hidden, batch_size: int,
          lr: float, seed: int):
    """Train one VAE; return it and its per-epoch history (epoch 0: before training)."""
    pydl.manual_seed(seed)
    # the Gaussian decoder's per-pixel sigma starts at 0.25 (pixel values are in [0, 1]) so that
    # learning it does not dominate the first epochs
    extra = dict(init_scale=0.25) if likelihood == "gaussian" else {}
    model = VAE(Xtr.shape[1], latent_dim=latent_dim, hidden=hidden, likelihood=likelihood,
                **extra)
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    history = [dict(epoch=0, **{f"train_{k}": v for k, v in evaluate(model, Xtr).items()},
                    **{f"test_{k}": v for k, v in evaluate(model, Xte).items()}, seconds=0.0)]
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(Xtr))
        sums, count = dict(elbo=0.0, reconstruction=0.0, kl=0.0), 0
        for i in range(0, len(order), batch_size):
            xb = pydl.tensor(Xtr[order[i:i + batch_size]])
            terms = model.elbo(xb)
            opt.zero_grad()
            terms.loss.backward()
            opt.step()
            n = len(xb)
            for k in sums:
                sums[k] += float(getattr(terms, k)) * n
            count += n
        model.eval()
        # training terms: the running means over the epoch's minibatches (as usually logged)
        row = dict(epoch=epoch, **{f"train_{k}": v / count for k, v in sums.items()},
                   **{f"test_{k}": v for k, v in evaluate(model, Xte).items()},
                   seconds=time.perf_counter() - start)
        history.append(row)
    return model, history


def print_table(name: str, history) -> None:
    print(f"\n{name}: nats per image (ELBO = -(reconstruction + KL); higher is better)")
    print(f"{'epoch':>5}{'train ELBO':>12}{'recon':>10}{'KL':>8}{'test ELBO':>12}"
          f"{'test recon':>12}{'test KL':>9}{'time (s)':>10}")
    for r in history:
        print(f"{r['epoch']:>5}{r['train_elbo']:>12.2f}{r['train_reconstruction']:>10.2f}"
              f"{r['train_kl']:>8.2f}{r['test_elbo']:>12.2f}{r['test_reconstruction']:>12.2f}"
              f"{r['test_kl']:>9.2f}{r['seconds']:>10.1f}")


def _pairs(yte, n: int):
    """Indices of test digit pairs (a, b) with different labels: 0-1, 2-3, ..."""
    firsts = {int(c): int(np.flatnonzero(yte == c)[0]) for c in np.unique(yte)}
    labels = sorted(firsts)
    pairs = [(firsts[labels[2 * i % len(labels)]], firsts[labels[(2 * i + 1) % len(labels)]])
             for i in range(n)]
    return pairs


def figures(models: dict, Xte, yte, out: str, quick: bool) -> list:
    """Write the figures; return their paths ([] without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("\nmatplotlib is not installed (pip install pydl[plot]): no figures written")
        return []
    os.makedirs(out, exist_ok=True)
    written = []

    def grid(images, rows, cols):
        images = np.asarray(images).reshape(rows, cols, 8, 8)
        pad = np.full((rows, cols, 10, 10), 0.2)  # light grey frames
        pad[:, :, 1:9, 1:9] = images
        return pad.transpose(0, 2, 1, 3).reshape(rows * 10, cols * 10)

    rows, cols = 6, 10
    pydl.manual_seed(123)
    panels = [("test digits", Xte[:rows * cols])]
    for name, model in models.items():
        panels.append((f"{name} VAE: samples", model.sample(rows * cols).numpy()))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 2.9))
    for ax, (title, imgs) in zip(axes, panels):
        ax.imshow(grid(imgs, rows, cols), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    path = os.path.join(out, "samples.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    steps, pairs = 8, _pairs(yte, 5)
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 3.2))
    axes = np.atleast_1d(axes)
    for ax, (name, model) in zip(axes, models.items()):
        rows_img = []
        for a, b in pairs:
            xa, xb = pydl.tensor(Xte[a]), pydl.tensor(Xte[b])
            path_imgs = model.interpolate(xa, xb, steps).numpy()
            rows_img.append(np.concatenate([Xte[a][None], path_imgs, Xte[b][None]]))
        ax.imshow(grid(np.stack(rows_img), len(pairs), steps + 2), cmap="gray_r", vmin=0,
                  vmax=1)
        ends = ", ".join(f"{yte[a]}-{yte[b]}" for a, b in pairs)
        ax.set_title(f"{name} VAE: interpolation\n(ends: the test digits {ends})", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    path = os.path.join(out, "interpolation.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    model = models.get("Bernoulli")
    if model is not None and model.latent_dim == 2:
        with pydl.no_grad():
            mu = model.encode(pydl.tensor(Xte)).mean.numpy()
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.6))
        sc = ax1.scatter(mu[:, 0], mu[:, 1], c=yte, cmap="tab10", s=9)
        fig.colorbar(sc, ax=ax1, ticks=range(10))
        ax1.set_title("Bernoulli VAE: test posterior means")
        ax1.set_xlabel("z1")
        ax1.set_ylabel("z2")
        n = 12
        # grid of z at the standard normal's quantiles, so it covers the prior evenly
        from pydl.distributions import Normal
        q = Normal(0.0, 1.0).icdf(pydl.linspace(0.03, 0.97, n, dtype=pydl.float32)).numpy()
        zz = np.stack(np.meshgrid(q, q[::-1]), -1).reshape(-1, 2).astype(np.float32)
        with pydl.no_grad():
            imgs = model.decode(pydl.tensor(zz)).mean.numpy()
        ax2.imshow(grid(imgs, n, n), cmap="gray_r", vmin=0, vmax=1)
        ax2.set_title("decoder means over a grid of z (prior quantiles)")
        ax2.axis("off")
        fig.tight_layout()
        path = os.path.join(out, "latent.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="small subset (what the test runs; also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--epochs", type=int, default=None, help="default 40 (quick: 3)")
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "vae"),
                        help="folder for the figures and results.json")
    parser.add_argument("--no-figures", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Print both tables, write the figures; return the histories and figure paths."""
    args = parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 40)
    Xtr, Xte, yte = load(args.quick)
    print(f"Digits: {len(Xtr)} training and {len(Xte)} test images of 64 pixels in [0, 1]"
          f"{' (quick mode)' if args.quick else ''}; VAE 64-{'-'.join(map(str, args.hidden))}"
          f"-{args.latent_dim}, Adam lr {args.lr}, batch {args.batch_size}, {epochs} epochs")
    results, models = {}, {}
    for name, likelihood in (("Bernoulli", "bernoulli"), ("Gaussian", "gaussian")):
        model, history = train(likelihood, Xtr, Xte, epochs, args.latent_dim, args.hidden,
                               args.batch_size, args.lr, args.seed)
        label = ("Bernoulli decoder (reconstruction = binary cross-entropy)"
                 if likelihood == "bernoulli" else
                 "Gaussian decoder (reconstruction = squared error / 2 sigma^2 + log sigma + "
                 "log sqrt(2 pi), sigma learned per pixel >= 0.05)")
        print_table(label, history)
        results[name] = history
        models[name] = model
    written = [] if args.no_figures else figures(models, Xte, yte, args.out, args.quick)
    if written:
        print("\nfigures: " + ", ".join(written))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    results["figures"] = written
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
