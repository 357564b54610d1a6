"""Semantic hashing on the bundled 8x8 digits: retrieval by binary codes in a hash table.

The course (lecture notes 20.2): force the autoencoder's code to be binary, store every item in
a hash table keyed by its code, and answer a query by looking up its code's bucket and the
buckets a few bit flips away (Salakhutdinov & Hinton, 2009). Here the code layer is a sigmoid
with Gaussian noise (std ``--noise``) added before it during training: to get information
through the noise the encoder pushes its pre-activations far from 0, so the code units end
near 0 or 1 and thresholding them at 0.5 loses little. A second autoencoder uses the
straight-through estimator instead (binary codes in the forward pass, identity gradient).

Database: the 1,438 training digits; queries: the 359 test digits; an item is relevant when
its label is the query's. precision@10 is the fraction of the 10 retrieved items that are
relevant. Baselines at the same number of bits: random-hyperplane hashing of the raw pixels
(LSH, sign of b random projections) and the signs of the first b PCA coefficients; and, with
far more bits, Euclidean k-NN on the raw pixels (64 float32 = 2,048 bits) and on b PCA
coefficients (32 b bits). Every Hamming method is searched with ``pydl.retrieval.HammingIndex``
(ties broken by id), the float ones by brute force.

Run: ``python examples/semantic_hashing.py`` (16 and 32 bits; about 15 s of CPU time) or
``--quick`` (16 bits, fewer epochs). Figure: ``runs/semantic_hashing.png`` (precision@k
against k, and the code activations' histogram; needs matplotlib).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pydl
from pydl import models, nn
from pydl.data.datasets import Digits
from pydl.decomposition import PCA
from pydl.retrieval import HammingIndex, knn_search, precision_at_k


def load():
    train, test = Digits(train=True), Digits(train=False)
    flat = lambda d: np.ascontiguousarray(d.data.reshape(len(d), -1), dtype=np.float32)  # noqa
    return flat(train), np.asarray(train.targets), flat(test), np.asarray(test.targets)


def hash_retrieve(db_codes, query_codes, k):
    """(Q, k) ids from a HammingIndex over ``db_codes``, and the mean radius searched."""
    ids, dist = HammingIndex(db_codes).query(query_codes, k)
    return ids, float(dist[:, -1].mean())


def train_hashing_autoencoder(Xtr, bits, epochs, noise, straight_through, seed):
    pydl.manual_seed(seed)
    if straight_through:
        code = lambda: nn.Sequential(nn.Sigmoid(), models.StraightThroughBinarize())  # noqa
        ae = models.Autoencoder([64, 256, bits], code_activation=code)
    else:
        ae = models.Autoencoder([64, 256, bits], code_activation="sigmoid", code_noise=noise)
    models.fit_autoencoder(ae, Xtr, epochs=epochs, lr=3e-3, seed=seed)
    return ae


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="16 bits only, fewer epochs (also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--noise", type=float, default=4.0,
                        help="std of the noise before the sigmoid code during training")
    parser.add_argument("--k", type=int, default=10, help="precision@k")
    parser.add_argument("--out", default="runs", help="folder for the figure")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    Xtr, ytr, Xte, yte = load()
    k = args.k
    bit_sizes = (16,) if args.quick else (16, 32)
    epochs = 50 if args.quick else 100
    start_cpu, start = time.process_time(), time.perf_counter()
    rows, curves, activations = [], {}, None
    raw_ids = knn_search(Xtr, Xte, 50)
    rows.append(dict(method="raw pixels, Euclidean k-NN", bits=64 * 32,
                     precision=precision_at_k(ytr[raw_ids[:, :k]], yte), radius=None))
    curves["raw pixels, Euclidean k-NN"] = raw_ids
    mean = Xtr.mean(0)
    for bits in bit_sizes:
        pca = PCA(bits).fit(Xtr)
        ztr, zte = pca.transform(Xtr), pca.transform(Xte)
        ids = knn_search(ztr, zte, k)
        rows.append(dict(method=f"PCA {bits} coefficients, Euclidean k-NN", bits=bits * 32,
                         precision=precision_at_k(ytr[ids], yte), radius=None))

        projection = np.random.default_rng(bits).standard_normal((64, bits))
        ids, radius = hash_retrieve((Xtr - mean) @ projection > 0, (Xte - mean) @ projection > 0,
                                    k)
        rows.append(dict(method="raw pixels, random hyperplanes (LSH)", bits=bits,
                         precision=precision_at_k(ytr[ids], yte), radius=radius))

        ids, radius = hash_retrieve(ztr > 0, zte > 0, k)
        rows.append(dict(method="PCA signs", bits=bits, precision=precision_at_k(ytr[ids], yte),
                         radius=radius))

        for straight_through in (False, True):
            ae = train_hashing_autoencoder(Xtr, bits, epochs, args.noise, straight_through,
                                           seed=bits)
            ctr = ae.binary_code(pydl.from_numpy(Xtr)).numpy()
            cte = ae.binary_code(pydl.from_numpy(Xte)).numpy()
            ids, radius = hash_retrieve(ctr, cte, 50 if bits == bit_sizes[0] else k)
            name = ("autoencoder, straight-through codes" if straight_through
                    else f"autoencoder, sigmoid + noise {args.noise:g}")
            rows.append(dict(method=name, bits=bits,
                             precision=precision_at_k(ytr[ids[:, :k]], yte), radius=radius,
                             distinct=len(np.unique(ctr, axis=0))))
            if bits == bit_sizes[0]:
                curves[f"{name} ({bits} bits)"] = ids
                if not straight_through:
                    with pydl.no_grad():
                        activations = ae.encode(pydl.from_numpy(Xte)).numpy().ravel()
        if bits == bit_sizes[0]:
            for name, (dtr, dte) in ((f"LSH ({bits} bits)", ((Xtr - mean) @ projection > 0,
                                                              (Xte - mean) @ projection > 0)),
                                     (f"PCA signs ({bits} bits)", (ztr > 0, zte > 0))):
                curves[name] = HammingIndex(dtr).query(dte, 50)[0]
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start

    print(f"Digits: {len(Xte)} test queries against {len(Xtr)} training items; precision@{k} "
          f"(same label){' (quick mode)' if args.quick else ''}")
    print(f"{'method':<42}{'bits':>6}{f'P@{k}':>8}{'mean radius':>13}")
    for r in rows:
        radius = f"{r['radius']:.2f}" if r["radius"] is not None else "-"
        print(f"{r['method']:<42}{r['bits']:>6}{r['precision']:>8.3f}{radius:>13}")
    print(f"(mean radius: Hamming distance of the {k}th item found by the bit-flip search; "
          f"autoencoders 64-256-b-256-64, {epochs} epochs; {cpu:.1f} s CPU, {wall:.1f} s wall)")
    figure = plot(curves, ytr, yte, activations, args.out, args.noise)
    return dict(rows=rows, figure=figure)


def plot(curves, ytr, yte, activations, out, noise):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'pydl-nn[plot]'): no figure")
        return None
    os.makedirs(out, exist_ok=True)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    ks = np.arange(1, 51)
    for name, ids in curves.items():
        hits = (ytr[ids] == yte[:, None]).astype(np.float64)
        left.plot(ks, np.cumsum(hits, axis=1).mean(0) / ks, label=name)
    left.set_xlabel("k")
    left.set_ylabel("precision@k")
    left.set_title("Retrieval on the digits (test queries)")
    left.legend(fontsize=7)
    if activations is not None:
        right.hist(activations, bins=40, color="tab:green")
        right.set_xlabel("code activation (sigmoid), test digits")
        right.set_ylabel("count")
        right.set_title(f"Codes trained with noise std {noise:g} before the sigmoid")
    fig.tight_layout()
    path = os.path.join(out, "semantic_hashing.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
