"""Transfer learning on the bundled 8x8 digits (course notes 18): pre-train LeNet-5 on the digits
0-4, then learn the digits 5-9 from few examples, starting from the pre-trained weights, and
compare with training from scratch.

Steps (the library calls under ``pydl train --init-from RUN --reinit classifier --freeze
features --classes 5-9``):

1. pre-train ``LeNet5(num_classes=5)`` on every training image of 0-4;
2. for the digits 5-9 (relabelled 0-4), with n training images per class, train
   * **scratch**: a fresh network;
   * **conv frozen, new classifier**: the two pre-trained convolutions (``features``) loaded by
     ``pydl.transfer.load_matching`` and frozen (``freeze(model, "features")``), the three
     linear layers (``classifier``) newly initialised and trained;
   * **conv tuned, new classifier**: the same start, everything trained;
   * **all but head, tuned**: every pre-trained layer but the last (``classifier.5``, a new
     head) loaded, everything trained;
   * **new head only**: that start with everything but the new head frozen (a linear probe of
     the pre-trained 84-unit representation).
   Each is trained for the same number of Adam steps at the same learning rate, the optimizer
   over ``trainable_parameters(model)`` only, and scored on the test images of 5-9; the small
   n are averaged over several random draws of the training images.

The table gives test accuracy per method and n; the figure ``runs/transfer/transfer.png`` plots
it against n. The course says a network trained on one task is a good starting point for a
related one. Here that holds for the convolutions, the generic stroke detectors: reused (frozen
or tuned) with a new classifier they beat training from scratch at small n. The linear layers
are specific to 0-4: starting from them (all but head) is no better than scratch, and the
84-unit representation alone (new head only) separates 5-9 poorly.

Run: ``python examples/transfer.py`` (about 40 s of CPU time on 2 cores) or ``--quick`` (n in {5, 20}, fewer
steps and draws; a few seconds; what tests/test_example_transfer.py runs).
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
from pydl.transfer import freeze, load_matching, trainable_parameters

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
METHODS = ("scratch", "conv frozen, new classifier", "conv tuned, new classifier",
           "all but head, tuned", "new head only")
# per method: the prefixes not loaded from the pre-trained network (re-initialised) and those
# frozen. LeNet-5's ``features`` are its two convolutions, ``classifier`` its three linear
# layers, ``classifier.5`` the last (the head).
SETUPS = {
    "conv frozen, new classifier": (["classifier"], ["features"]),
    "conv tuned, new classifier": (["classifier"], []),
    "all but head, tuned": (["classifier.5"], []),
    "new head only": (["classifier.5"], ["features", "classifier.1", "classifier.3"]),
}


def split(ds, classes):
    """Images (N, 1, 8, 8) in [0, 1] and labels of ``classes`` relabelled 0..k-1."""
    X, y = np.asarray(ds.data), np.asarray(ds.targets)
    keep = np.isin(y, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return X[keep], np.array([relabel[int(c)] for c in y[keep]], dtype=np.int64)


def per_class_subset(y, n, rng):
    """Indices of n random training images of each class."""
    return np.concatenate([rng.choice(np.flatnonzero(y == c), size=min(n, int((y == c).sum())),
                                      replace=False) for c in np.unique(y)])


def train(model, X, y, steps: int, lr: float, seed: int):
    """``steps`` Adam steps over the trainable parameters, batches of up to 32."""
    params = list(trainable_parameters(model))
    batch = min(32, len(X))
    per_epoch = -(-len(X) // batch)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch, shuffle=True,
                        generator=pydl.Generator().manual_seed(seed))
    pydl.train.fit(model, nn.CrossEntropyLoss(), pydl.optim.Adam(params, lr=lr), loader,
                   epochs=max(1, steps // per_epoch), metrics=[], progress=False)
    return model


def accuracy(model, X, y) -> float:
    return pydl.train.evaluate(model, DataLoader(TensorDataset(X, y), batch_size=512))["accuracy"]


def make(method: str, pretrained_state):
    model = pydl.models.LeNet5(1, len(TARGET), input_size=8)
    if method == "scratch":
        return model
    reinit, frozen = SETUPS[method]
    report = load_matching(model, pretrained_state, exclude=reinit)
    assert all(any(k.startswith(p) for p in reinit) for k in report.missing)
    if frozen:
        freeze(model, frozen)
    return model


def figure(table, ns, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install 'pydl-nn[plot]'); figure skipped")
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in METHODS:
        means = [np.mean(table[method][n]) for n in ns]
        stds = [np.std(table[method][n]) for n in ns]
        ax.errorbar(ns, means, yerr=stds, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xticks(ns)
    ax.set_xticklabels([str(n) if n < 1000 else "all" for n in ns])
    ax.set_xlabel("training images per class (digits 5-9)")
    ax.set_ylabel("test accuracy on 5-9")
    ax.set_title("LeNet-5 pre-trained on 0-4, transferred to 5-9")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="fewer sizes, steps and draws (what the test runs; also "
                             "PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--finetune-lr-factor", type=float, default=1.0,
                        help="the transferred networks train with lr times this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "transfer"))
    parser.add_argument("--no-figures", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    quick = args.quick
    ns = [5, 10] if quick else [5, 10, 20, 1000]
    draws = 3 if quick else 5
    steps = 100 if quick else 150
    train_set, test_set = Digits(train=True), Digits(train=False)
    Xa, ya = split(train_set, SOURCE)
    Xb, yb = split(train_set, TARGET)
    Xb_test, yb_test = split(test_set, TARGET)
    Xa_test, ya_test = split(test_set, SOURCE)
    start = time.perf_counter()

    pydl.manual_seed(args.seed)
    pre = train(pydl.models.LeNet5(1, len(SOURCE), input_size=8), Xa, ya, 3 * steps, args.lr,
                args.seed)
    pre_acc = accuracy(pre, Xa_test, ya_test)
    state = pre.state_dict()
    print(f"pre-trained LeNet-5 on digits 0-4 ({len(Xa)} images, {3 * steps} steps): test "
          f"accuracy {pre_acc:.4f}")

    table = {m: {} for m in METHODS}
    rng = np.random.default_rng(args.seed)
    sizes = {}
    for n in ns:
        reps = 1 if n >= 1000 else draws
        for r in range(reps):
            idx = per_class_subset(yb, n, rng)
            sizes[n] = len(idx)
            for m in METHODS:
                pydl.manual_seed(args.seed + 1000 * r + n)  # same new head for every method
                model = make(m, state)
                lr = args.lr if m == "scratch" else args.lr * args.finetune_lr_factor
                train(model, Xb[idx], yb[idx], steps, lr, args.seed + r)
                table[m].setdefault(n, []).append(accuracy(model, Xb_test, yb_test))
    wall = time.perf_counter() - start

    lrs = (f"lr {args.lr:g}" if args.finetune_lr_factor == 1 else
           f"lr {args.lr:g} from scratch, {args.lr * args.finetune_lr_factor:.3g} transferred")
    print(f"\nDigits 5-9: test accuracy ({len(Xb_test)} test images) after {steps} Adam steps "
          f"({lrs}); mean over {draws} draws of the training images"
          f"{' (quick mode)' if quick else ''}")
    header = "".join(f"{('n=' + str(n) if n < 1000 else 'all (' + str(sizes[n]) + ')'):>14}"
                     for n in ns)
    print(f"{'method':<30}{header}")
    for m in METHODS:
        print(f"{m:<30}" + "".join(f"{np.mean(table[m][n]):>14.4f}" for n in ns))
    model = make("conv frozen, new classifier", state)
    n_train = sum(p.numel() for p in trainable_parameters(model))
    n_all = sum(p.numel() for p in model.parameters())
    print(f"(n = training images per class; 'conv frozen' trains {n_train:,} of {n_all:,} "
          f"parameters; wall time {wall:.1f} s)")
    print("the same from the command line: pydl train --classes 0-4 --out runs/digits04; "
          "pydl train --classes 5-9 --init-from runs/digits04 --reinit classifier "
          "--freeze features")

    results = {"pretrain_accuracy": pre_acc, "ns": ns,
               "accuracy": {m: {n: float(np.mean(v)) for n, v in table[m].items()}
                            for m in METHODS},
               "figures": []}
    if not args.no_figures:
        path = figure(table, ns, os.path.join(args.out, "transfer.png"))
        if path:
            print(f"wrote {path}")
            results["figures"].append(path)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
