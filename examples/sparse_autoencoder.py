"""Sparse autoencoders on the bundled 8x8 digits: L(x, r) + Omega(h) with an L1 penalty and
with the KL-divergence penalty towards a target firing rate rho.

The course (lecture notes 21.1): an overcomplete autoencoder (here 64 pixels -> 128 sigmoid code
units -> 64) can copy its input; a sparsity penalty on the code makes it pick a few units per
image instead. Two penalties, both in ``pydl.models.autoencoders``:

* L1: Omega(h) = lambda sum_j |h_j| (a Laplace prior on the code);
* KL: Omega(h) = beta sum_j KL(rho || rho_hat_j), rho_hat_j the mean activation of unit j over
  the batch: every unit should fire with rate rho.

The table gives, on the 359 test digits: the reconstruction MSE per pixel, the mean code
activation, the fraction of activations below 0.1, and the spread of the units' firing rates
rho_hat_j (min / median / max). The L1 penalty lowers activations overall but lets some units
fire often; the KL penalty pulls every unit's rate to rho. Both cost reconstruction error.

Run: ``python examples/sparse_autoencoder.py`` (80 epochs per model, about 15 s of CPU time)
or ``--quick`` (25 epochs). Figure: ``runs/sparse_autoencoder.png`` (firing rates and the
encoder filters without and with the KL penalty; needs matplotlib).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pydl
from pydl import models
from pydl.data.datasets import Digits

RHO = 0.05


def load():
    flat = lambda d: np.ascontiguousarray(d.data.reshape(len(d), -1), dtype=np.float32)  # noqa
    return flat(Digits(train=True)), flat(Digits(train=False))


def settings():
    return [("no penalty", {}), ("L1, lambda = 3e-4", dict(l1=3e-4)),
            ("L1, lambda = 1e-3", dict(l1=1e-3)),
            (f"KL, rho = {RHO}, beta = 3e-3", dict(sparsity=3e-3, rho=RHO)),
            (f"KL, rho = {RHO}, beta = 1e-2", dict(sparsity=1e-2, rho=RHO))]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="25 epochs per model (also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--code", type=int, default=128, help="code units (overcomplete: > 64)")
    parser.add_argument("--out", default="runs", help="folder for the figure")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    Xtr, Xte = load()
    epochs = 25 if args.quick else 80
    rows, trained = [], {}
    start_cpu, start = time.process_time(), time.perf_counter()
    for name, penalty in settings():
        pydl.manual_seed(0)
        ae = models.Autoencoder([64, args.code], code_activation="sigmoid")
        models.fit_autoencoder(ae, Xtr, epochs=epochs, lr=3e-3, **penalty)
        with pydl.no_grad():
            recon, code = ae(pydl.from_numpy(Xte), return_code=True)
        recon, code = recon.numpy().astype(np.float64), code.numpy().astype(np.float64)
        rates = code.mean(0)
        rows.append(dict(name=name, mse=float(np.mean((recon - Xte) ** 2)),
                         mean=float(code.mean()), below=float(np.mean(code < 0.1)),
                         rate_min=float(rates.min()), rate_median=float(np.median(rates)),
                         rate_max=float(rates.max())))
        trained[name] = (ae, rates)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start

    print(f"Digits: sparse autoencoders 64 -> {args.code} (sigmoid) -> 64, {epochs} epochs; "
          f"test set ({len(Xte)} images){' (quick mode)' if args.quick else ''}")
    print(f"{'penalty':<28}{'test MSE':>10}{'mean h':>8}{'h < 0.1':>9}"
          f"{'unit rates min / median / max':>32}")
    for r in rows:
        rates = f"{r['rate_min']:.3f} / {r['rate_median']:.3f} / {r['rate_max']:.3f}"
        print(f"{r['name']:<28}{r['mse']:>10.5f}{r['mean']:>8.3f}{r['below']:>9.3f}"
              f"{rates:>32}")
    print(f"({cpu:.1f} s CPU, {wall:.1f} s wall)")
    figure = plot(trained, args.out)
    return dict(rows=rows, figure=figure)


def plot(trained, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'pydl-nn[plot]'): no figure")
        return None
    os.makedirs(out, exist_ok=True)
    names = list(trained)
    shown = [names[0], names[-2]]  # no penalty, KL
    fig = plt.figure(figsize=(11, 4.2))
    ax = fig.add_subplot(1, 3, 1)
    for name in names:
        ax.hist(trained[name][1], bins=30, histtype="step", label=name)
    ax.axvline(RHO, color="k", ls=":", lw=1)
    ax.set_xlabel("firing rate rho_hat_j of a code unit (test set)")
    ax.set_ylabel("units")
    ax.legend(fontsize=6)
    for panel, name in enumerate(shown):
        weight = trained[name][0].encoder[1].weight.detach().numpy()[:36]
        tiles = np.zeros((6 * 9, 6 * 9))
        for i, w in enumerate(weight):
            w = (w - w.min()) / (np.ptp(w) + 1e-12)
            r, c = divmod(i, 6)
            tiles[r * 9:r * 9 + 8, c * 9:c * 9 + 8] = w.reshape(8, 8)
        ax = fig.add_subplot(1, 3, 2 + panel)
        ax.imshow(tiles, cmap="gray")
        ax.set_title(f"encoder filters: {name}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    path = os.path.join(out, "sparse_autoencoder.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
