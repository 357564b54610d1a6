"""PCA, a linear autoencoder and a non-linear autoencoder on the bundled 8x8 digits.

The course (lecture notes 20.1): PCA finds the k directions of largest variance; an autoencoder
with a k-unit code learns a k-dimensional representation too. With linear encoder and decoder
and the squared error, the autoencoder can do no better than PCA (Eckart-Young: PCA's rank-k
reconstruction is the best of all rank-k affine maps), and at its optimum its decoder spans
PCA's subspace (Baldi & Hornik, 1989): the table shows its error within a few percent of PCA's
and the overlap of the two subspaces (mean squared cosine of their principal angles, 1 when
they coincide). The overlap falls short of 1 where PCA's trailing eigenvalues nearly tie: the
error hardly depends on which mix of those directions the autoencoder picks (Adam does not
finish that part). A non-linear autoencoder (64 - 128 - k - 128 - 64, ReLU, sigmoid output)
is not bound by PCA's optimum and reconstructs better at small k; at k = 32 PCA keeps 97% of
the variance and the non-linear network, trained for a fixed budget, no longer wins.

Errors are mean squared errors per pixel (pixels in [0, 1]) on the 359 held-out test digits;
PCA and the autoencoders are fitted on the 1,438 training digits.

Run: ``python examples/pca_vs_autoencoder.py`` (code sizes 2, 4, 8, 16, 32; about 15 s of CPU
time) or ``--quick`` (code sizes 4 and 16, fewer epochs; what tests/test_examples_autoencoders.py
runs). Figures: ``runs/pca_vs_autoencoder.png`` (error against code size) and
``runs/pca_vs_autoencoder_reconstructions.png`` (needs matplotlib, the ``[plot]`` extra).
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
from pydl.decomposition import PCA


def load():
    """Training and test digits as (N, 64) float32 in [0, 1]."""
    flat = lambda d: np.ascontiguousarray(d.data.reshape(len(d), -1), dtype=np.float32)  # noqa
    return flat(Digits(train=True)), flat(Digits(train=False))


def mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def reconstruct(model, X) -> np.ndarray:
    with pydl.no_grad():
        return model(pydl.from_numpy(X)).numpy()


def subspace_overlap(basis_a: np.ndarray, basis_b: np.ndarray) -> float:
    """||Qa^T Qb||_F^2 / k for orthonormal bases Qa, Qb of the column spaces of (d, k)
    matrices: the mean squared cosine of their principal angles, 1 for the same subspace."""
    qa, _ = np.linalg.qr(basis_a.astype(np.float64))
    qb, _ = np.linalg.qr(basis_b.astype(np.float64))
    return float(np.sum((qa.T @ qb) ** 2) / qa.shape[1])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="code sizes 4 and 16, fewer epochs (also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--out", default="runs", help="folder for the figures")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    Xtr, Xte = load()
    sizes = (4, 16) if args.quick else (2, 4, 8, 16, 32)
    linear_epochs = 80 if args.quick else 120
    nonlinear_epochs = 25 if args.quick else 60
    rows = []
    start_cpu, start = time.process_time(), time.perf_counter()
    fitted = {}
    for k in sizes:
        pca = PCA(k).fit(Xtr)
        pca_err = mse(pca.inverse_transform(pca.transform(Xte)), Xte)

        pydl.manual_seed(k)  # the autoencoders' initial weights
        linear = models.Autoencoder([64, k], output_activation=None)
        models.fit_autoencoder(linear, Xtr, epochs=linear_epochs, lr=1e-2)
        linear_err = mse(reconstruct(linear, Xte), Xte)
        decoder_weight = linear.decoder[1].weight.detach().numpy()  # (64, k)
        overlap = subspace_overlap(decoder_weight, pca.components_.T)

        pydl.manual_seed(k)
        nonlinear = models.Autoencoder([64, 128, k], activation="relu",
                                       output_activation="sigmoid")
        models.fit_autoencoder(nonlinear, Xtr, epochs=nonlinear_epochs, lr=3e-3)
        nonlinear_err = mse(reconstruct(nonlinear, Xte), Xte)
        rows.append(dict(k=k, pca=pca_err, linear=linear_err, ratio=linear_err / pca_err,
                         overlap=overlap, nonlinear=nonlinear_err))
        fitted[k] = (pca, linear, nonlinear)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start

    print(f"Digits: reconstruction MSE per pixel on {len(Xte)} test images "
          f"({len(Xtr)} training){' (quick mode)' if args.quick else ''}")
    print(f"{'code size':>9}{'PCA':>10}{'linear AE':>11}{'AE / PCA':>10}"
          f"{'overlap':>9}{'non-linear AE':>15}")
    for r in rows:
        print(f"{r['k']:>9}{r['pca']:>10.5f}{r['linear']:>11.5f}{r['ratio']:>10.3f}"
              f"{r['overlap']:>9.3f}{r['nonlinear']:>15.5f}")
    print(f"(linear AE: Adam, {linear_epochs} epochs; non-linear AE 64-128-k-128-64: "
          f"{nonlinear_epochs} epochs; {cpu:.1f} s CPU, {wall:.1f} s wall)")
    figures = plot(rows, fitted, Xte, args.out)
    return dict(rows=rows, figures=figures)


def plot(rows, fitted, Xte, out: str) -> list:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'pydl-nn[plot]'): no figures")
        return []
    os.makedirs(out, exist_ok=True)
    ks = [r["k"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for key, label, style in (("pca", "PCA", "o-"), ("linear", "linear autoencoder", "s--"),
                              ("nonlinear", "non-linear autoencoder", "^-")):
        ax.plot(ks, [r[key] for r in rows], style, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel("code size k")
    ax.set_ylabel("test MSE per pixel")
    ax.set_title("Reconstruction error against code size (8x8 digits)")
    ax.legend()
    fig.tight_layout()
    curve = os.path.join(out, "pca_vs_autoencoder.png")
    fig.savefig(curve, dpi=110)
    plt.close(fig)

    k = ks[len(ks) // 2]
    pca, linear, nonlinear = fitted[k]
    shown = Xte[:8]
    images = [shown, pca.inverse_transform(pca.transform(shown)), reconstruct(linear, shown),
              reconstruct(nonlinear, shown)]
    names = ["input", f"PCA k={k}", f"linear AE k={k}", f"non-linear AE k={k}"]
    fig, axes = plt.subplots(len(images), len(shown), figsize=(len(shown) * 0.9, 4.2))
    for i, (row, name) in enumerate(zip(images, names)):
        for j in range(len(shown)):
            axes[i, j].imshow(np.clip(row[j].reshape(8, 8), 0, 1), cmap="gray_r", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    grid = os.path.join(out, "pca_vs_autoencoder_reconstructions.png")
    fig.savefig(grid, dpi=110)
    plt.close(fig)
    print(f"figures: {curve}, {grid}")
    return [curve, grid]


if __name__ == "__main__":
    main(sys.argv[1:])
