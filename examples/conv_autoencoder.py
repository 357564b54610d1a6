"""A convolutional autoencoder (Conv2d down, ConvTranspose2d up) on the bundled 8x8 digits,
next to a fully connected autoencoder and PCA at the same code size.

``pydl.models.ConvAutoencoder(1, widths=(16, c))``: Conv2d(1, 16, 3, stride 2) - ReLU -
Conv2d(16, c, 3, stride 2) - ReLU takes an 8x8 image to a c x 2 x 2 code; ConvTranspose2d
(kernel 4, stride 2, padding 1) layers double it back to 8x8, with a sigmoid at the end. Its
weights are shared over positions, so it has a fraction of a fully connected network's
parameters. The table gives the code size, the parameter count, and the reconstruction MSE per
pixel on the 359 test digits for the convolutional autoencoder, a fully connected one
(64 - 128 - k - 128 - 64, ReLU, sigmoid output) and PCA with the same k.

On images this small (8x8, the code at 2x2 positions) the convolutional network has little
spatial structure to exploit, and the table shows it: with a tenth of the fully connected
network's parameters it trails that network and PCA at both code sizes (PCA, linear, wins
outright at k = 32, where it keeps 97% of the variance). The example shows the layers at work,
not a win for convolution on 8x8 images.

Run: ``python examples/conv_autoencoder.py`` (k = 16 and 32, 40 epochs, about 15 s of CPU
time) or ``--quick`` (k = 16, 15 epochs). Figure: ``runs/conv_autoencoder.png``
(reconstructions; needs matplotlib).
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
    """(N, 1, 8, 8) float32 images in [0, 1], training and test."""
    images = lambda d: np.ascontiguousarray(d.data, dtype=np.float32)  # noqa: E731
    return images(Digits(train=True)), images(Digits(train=False))


def parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def reconstruct(model, X) -> np.ndarray:
    with pydl.no_grad():
        return model(pydl.from_numpy(X)).numpy()


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="k = 16 only, 15 epochs (also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--out", default="runs", help="folder for the figure")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    Xtr, Xte = load()
    flat_tr, flat_te = Xtr.reshape(len(Xtr), -1), Xte.reshape(len(Xte), -1)
    epochs = 15 if args.quick else 40
    rows, shown = [], {}
    start_cpu, start = time.process_time(), time.perf_counter()
    for k in ((16,) if args.quick else (16, 32)):
        channels = k // 4  # the code is channels x 2 x 2
        pydl.manual_seed(0)
        conv = models.ConvAutoencoder(1, widths=(16, channels))
        t = time.process_time()
        models.fit_autoencoder(conv, Xtr, epochs=epochs, lr=3e-3)
        conv_time = time.process_time() - t
        code_shape = tuple(conv.encoder(pydl.from_numpy(Xte[:1])).shape[1:])
        recon = reconstruct(conv, Xte)
        rows.append(dict(model=f"conv AE, code {'x'.join(map(str, code_shape))}", k=k,
                         params=parameters(conv), mse=float(np.mean((recon - Xte) ** 2)),
                         cpu=conv_time))
        shown[f"conv AE k={k}"] = recon[:8]

        pydl.manual_seed(0)
        dense = models.Autoencoder([64, 128, k])
        t = time.process_time()
        models.fit_autoencoder(dense, flat_tr, epochs=epochs, lr=3e-3)
        dense_time = time.process_time() - t
        recon = reconstruct(dense, flat_te)
        rows.append(dict(model="fully connected AE 64-128-k", k=k, params=parameters(dense),
                         mse=float(np.mean((recon - flat_te) ** 2)), cpu=dense_time))
        shown[f"FC AE k={k}"] = recon[:8]

        pca = PCA(k).fit(flat_tr)
        recon = pca.inverse_transform(pca.transform(flat_te))
        rows.append(dict(model="PCA", k=k, params=pca.components_.size + pca.mean_.size,
                         mse=float(np.mean((recon - flat_te) ** 2)), cpu=None))
        shown[f"PCA k={k}"] = recon[:8]
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start

    print(f"Digits: reconstruction MSE per pixel on {len(Xte)} test images, {epochs} epochs"
          f"{' (quick mode)' if args.quick else ''}")
    print(f"{'model':<30}{'k':>4}{'parameters':>12}{'test MSE':>10}{'CPU s':>8}")
    for r in rows:
        cpu_cell = f"{r['cpu']:.1f}" if r["cpu"] is not None else "-"
        print(f"{r['model']:<30}{r['k']:>4}{r['params']:>12}{r['mse']:>10.5f}{cpu_cell:>8}")
    print(f"({cpu:.1f} s CPU, {wall:.1f} s wall)")
    figure = plot(Xte[:8], shown, args.out)
    return dict(rows=rows, figure=figure)


def plot(originals, shown, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'pydl-nn[plot]'): no figure")
        return None
    os.makedirs(out, exist_ok=True)
    rows = [("input", originals)] + list(shown.items())
    fig, axes = plt.subplots(len(rows), 8, figsize=(7.2, len(rows) * 0.95))
    for i, (name, images) in enumerate(rows):
        for j in range(8):
            axes[i, j].imshow(np.clip(images[j].reshape(8, 8), 0, 1), cmap="gray_r", vmin=0,
                              vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    path = os.path.join(out, "conv_autoencoder.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
