"""Looking inside a CNN trained on the bundled 8x8 digits (course notes 17, "CNN
visualization"), with ``pydl.viz``.

LeNet-5 is trained with a ``HistogramLogger`` callback; then the script writes, to
``runs/visualise_cnn/``:

* ``graph.dot`` (and ``graph.svg``/``graph.png`` when Graphviz's ``dot`` is installed): the
  autograd graph of one forward pass, parameters named;
* ``filters_conv1.png``, ``filters_conv2.png``: the learned 5x5 kernels;
* ``feature_maps.png``: the six maps of the first convolution (after ReLU) for one test digit;
* ``saliency.png``: one test digit per class over its saliency map, |dS_c/dx| (Simonyan et al.,
  2014: which pixels the class score is most sensitive to);
* ``histograms.png``: each layer's weight and gradient histograms, epoch by epoch.

The table checks that the saliency maps point at pixels that matter: for each correctly
classified test digit, the k most salient pixels are blanked (set to the background value 0)
and the drop of the class probability is compared with blanking k random ink pixels
(non-zero pixels), averaged over the test set. It also lists, per layer, the weights' spread and
the last batch's gradient norm after the first and the last epoch.

Run: ``python examples/visualise_cnn.py`` (about 15 s on 2 cores) or with ``--quick`` (3 epochs;
what tests/test_example_visualise_cnn.py runs).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pydl
from pydl import nn, viz
from pydl.data import DataLoader, TensorDataset
from pydl.data.datasets import Digits


def class_probabilities(model, X) -> np.ndarray:
    model.eval()
    with pydl.no_grad():
        z = model(pydl.tensor(X)).numpy().astype(np.float64)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def occlusion_test(model, X, y, k: int, seed: int):
    """Mean drop of the true class's probability when the k most salient pixels are set to 0,
    and when k random ink pixels are; over the correctly classified images."""
    p = class_probabilities(model, X)
    right = np.flatnonzero(p.argmax(1) == y)
    X, y, p0 = X[right], y[right], p[right, y[right]]
    sal = viz.saliency(model, X, y).reshape(len(X), -1)
    rng = np.random.default_rng(seed)
    flat = X.reshape(len(X), -1)
    by_saliency, at_random = flat.copy(), flat.copy()
    for i in range(len(X)):
        by_saliency[i, np.argsort(-sal[i])[:k]] = 0.0
        ink = np.flatnonzero(flat[i] > 0)
        at_random[i, rng.choice(ink, size=min(k, len(ink)), replace=False)] = 0.0
    drop_s = p0 - class_probabilities(model, by_saliency.reshape(X.shape))[np.arange(len(y)), y]
    drop_r = p0 - class_probabilities(model, at_random.reshape(X.shape))[np.arange(len(y)), y]
    return float(drop_s.mean()), float(drop_r.mean()), len(right)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="3 epochs (what the test runs; also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--epochs", type=int, default=None, help="default 15 (quick 3)")
    parser.add_argument("--pixels", type=int, default=6, help="k pixels blanked per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "visualise_cnn"))
    parser.add_argument("--no-figures", action="store_true",
                        help="compute only (the DOT text is still written)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    epochs = args.epochs or (3 if args.quick else 15)
    train, test = Digits(train=True), Digits(train=False)
    Xtr, ytr = np.asarray(train.data), np.asarray(train.targets)
    Xte, yte = np.asarray(test.data), np.asarray(test.targets)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()

    pydl.manual_seed(args.seed)
    model = pydl.models.LeNet5(1, 10, input_size=8)
    logger = viz.HistogramLogger(bins=40)
    loader = DataLoader(TensorDataset(Xtr, ytr), batch_size=32, shuffle=True,
                        generator=pydl.Generator().manual_seed(args.seed))
    pydl.train.fit(model, nn.CrossEntropyLoss(), pydl.optim.Adam(model.parameters(), lr=3e-3),
                   loader, epochs=epochs, metrics=[], callbacks=[logger], progress=False)
    acc = float((class_probabilities(model, Xte).argmax(1) == yte).mean())
    drop_s, drop_r, n_right = occlusion_test(model, Xte, yte, args.pixels, args.seed)
    wall = time.perf_counter() - start

    print(f"LeNet-5 on the digits, {epochs} epochs{' (quick mode)' if args.quick else ''}: "
          f"test accuracy {acc:.4f} ({len(Xte)} images); wall time {wall:.1f} s")
    print(f"\nblanking k={args.pixels} of 64 pixels in the {n_right} correctly classified test "
          f"digits")
    print(f"{'pixels blanked':<34}{'mean drop of p(true class)':>28}")
    print(f"{'the k most salient (|dS_c/dx|)':<34}{drop_s:>28.4f}")
    print(f"{'k random ink pixels':<34}{drop_r:>28.4f}")
    print(f"\n{'layer':<22}{'weight std':>12}{'':>12}{'grad norm':>12}{'':>12}")
    print(f"{'':<22}{'epoch 1':>12}{f'epoch {epochs}':>12}{'epoch 1':>12}{f'epoch {epochs}':>12}")
    layers = {}
    for name, recs in logger.records.items():
        first, last = recs[0], recs[-1]
        layers[name] = dict(weight_std=(first["weight_std"], last["weight_std"]),
                            grad_norm=(first["grad_norm"], last["grad_norm"]))
        print(f"{name:<22}{first['weight_std']:>12.4f}{last['weight_std']:>12.4f}"
              f"{first['grad_norm']:>12.4f}{last['grad_norm']:>12.4f}")

    # the autograd graph of one forward pass (the input made a named leaf too)
    x = pydl.tensor(Xte[:1], requires_grad=True)
    model.eval()
    names = dict(model.named_parameters())
    names["input"] = x
    dot = viz.autograd_graph(model(x), names)
    written = []
    with open(os.path.join(args.out, "graph.dot"), "w") as f:
        f.write(dot)
    written.append(os.path.join(args.out, "graph.dot"))
    for ext in ("svg", "png"):
        path = viz.render_dot(dot, os.path.join(args.out, f"graph.{ext}"))
        if path is None:
            print("note: Graphviz's dot is not installed; graph.dot written, not rendered")
            break
        written.append(path)

    if not args.no_figures:
        try:
            one_per_class = np.array([np.flatnonzero(yte == c)[0] for c in range(10)])
            written += [
                viz.plot_filters(model.features[0], os.path.join(args.out, "filters_conv1.png"),
                                 ncols=6, title="conv1 filters (6 x 1 x 5 x 5)"),
                viz.plot_filters(model.features[2], os.path.join(args.out, "filters_conv2.png"),
                                 ncols=12, title="conv2 filters (16 x 6 x 5 x 5), out/in"),
                viz.plot_feature_maps(viz.feature_maps(model, "features.1",
                                                       Xte[one_per_class[3:4]]),
                                      os.path.join(args.out, "feature_maps.png"), ncols=6,
                                      title="conv1 + ReLU feature maps of a test '3'"),
                viz.plot_saliency(Xte[one_per_class],
                                  viz.saliency(model, Xte[one_per_class], yte[one_per_class]),
                                  os.path.join(args.out, "saliency.png"),
                                  labels=[str(c) for c in range(10)]),
                viz.plot_histograms(logger, os.path.join(args.out, "histograms.png")),
            ]
        except ImportError as e:
            print(f"note: {e}; figures skipped")
    for path in written:
        print(f"wrote {path}")
    return {"accuracy": acc, "drop_salient": drop_s, "drop_random": drop_r,
            "n_correct": n_right, "layers": layers, "files": written, "dot": dot}


if __name__ == "__main__":
    main(sys.argv[1:])
