"""Bagging, dropout with the weight-scaling inference rule, and Monte-Carlo dropout on the
bundled 8x8 digits (course notes 12: "Bagging and Dropout").

Bagging trains k networks independently, each on its own bootstrap resample of the training set
(n draws with replacement), and averages their predicted class probabilities,
p_bagging(y|x) = 1/k sum_i p_i(y|x) (12.1). When the members' errors are not all the same, the
ensemble's error is below the typical member's (12.2). Dropout trains one network whose random
sub-networks share parameters (12.4-12.6); at test time either every unit is kept and the
weights scaled (the weight-scaling inference rule, 12.5.1: with inverted dropout this is just
``model.eval()``), or the sub-networks are sampled and their probabilities averaged (12.5,
Monte-Carlo dropout).

The table gives held-out accuracy and negative log-likelihood of:

* one MLP 64-H-10 without dropout (the members' architecture),
* each bagging member alone (mean and range over the k),
* bagging with soft voting (averaged probabilities) and hard voting (majority),
* one MLP 64-H'-10 with dropout p on the hidden layer, evaluated by weight scaling and by
  Monte-Carlo dropout with T samples.

Figure ``runs/bagging_vs_dropout/bagging_vs_dropout.png``: test accuracy against the number of
members averaged, and Monte-Carlo dropout's accuracy against the number of samples T.

Run: ``python examples/bagging_vs_dropout.py`` (about 30 s on 2 cores) or with ``--quick`` (600
training images, fewer members, epochs and samples; a few seconds; what
tests/test_example_bagging_vs_dropout.py runs).
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
from pydl.ensemble import Bagging, mc_dropout_proba


def load(quick: bool):
    """Flattened digits in [0, 1]: (N, 64) float32 and labels; quick: 600 training images."""
    train, test = Digits(train=True), Digits(train=False)
    Xtr, ytr = np.asarray(train.data).reshape(len(train), -1), np.asarray(train.targets)
    Xte, yte = np.asarray(test.data).reshape(len(test), -1), np.asarray(test.targets)
    if quick:
        Xtr, ytr = Xtr[:600], ytr[:600]
    return Xtr, ytr, Xte, yte


def train_one(model, X, y, epochs: int, lr: float, seed: int):
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True,
                        generator=pydl.Generator().manual_seed(seed))
    pydl.train.fit(model, nn.CrossEntropyLoss(), pydl.optim.Adam(model.parameters(), lr=lr),
                   loader, epochs=epochs, metrics=[], progress=False)
    return model


def scores(proba: np.ndarray, y: np.ndarray):
    """(accuracy, mean negative log-likelihood) of class probabilities (N, C)."""
    acc = float((proba.argmax(1) == y).mean())
    nll = float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None)).mean())
    return acc, nll


def softmax_of(model, X) -> np.ndarray:
    model.eval()
    with pydl.no_grad():
        z = model(pydl.tensor(X)).numpy().astype(np.float64)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def figure(curve_k, curve_t, wsr_acc, single_acc, member_mean, path: str):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install 'pydl-nn[plot]'); figure skipped")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    ks, accs = zip(*curve_k)
    axes[0].plot(ks, accs, "o-", label="bagging (soft vote of the first k members)")
    axes[0].axhline(single_acc, color="grey", ls="--", label="one MLP on all the data")
    axes[0].axhline(member_mean, color="C3", ls=":", label="a member alone (mean)")
    axes[0].set_xlabel("members k")
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(fontsize=8)
    ts, accs = zip(*curve_t)
    axes[1].plot(ts, accs, "o-", color="C2", label="Monte-Carlo dropout")
    axes[1].axhline(wsr_acc, color="C1", ls="--", label="weight scaling (eval mode)")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("dropout samples T")
    axes[1].set_ylabel("test accuracy")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle("bagging vs dropout on the 8x8 digits")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="small subset (what the test runs; also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--members", type=int, default=None, help="k (default 10; quick 5)")
    parser.add_argument("--hidden", type=int, default=64, help="members' hidden width")
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--dropout-hidden", type=int, default=256,
                        help="hidden width of the dropout network (dropout needs a wider one)")
    parser.add_argument("--samples", type=int, default=None,
                        help="Monte-Carlo dropout samples T (default 100; quick 30)")
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join("runs", "bagging_vs_dropout"))
    parser.add_argument("--no-figures", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Print the table; return the numbers per method."""
    args = parse_args(argv)
    quick = args.quick
    k = args.members or (5 if quick else 10)
    T = args.samples or (30 if quick else 100)
    epochs = 12 if quick else 30
    Xtr, ytr, Xte, yte = load(quick)
    start = time.perf_counter()

    pydl.manual_seed(args.seed)
    single = train_one(pydl.models.MLP([64, args.hidden, 10]), Xtr, ytr, epochs, args.lr,
                       args.seed)
    single_p = softmax_of(single, Xte)

    bag = Bagging(lambda: pydl.models.MLP([64, args.hidden, 10]), n_estimators=k,
                  random_state=args.seed)
    bag.fit(Xtr, ytr, epochs=epochs, batch_size=32,
            optimizer_fn=lambda p: pydl.optim.Adam(p, lr=args.lr))
    member_p = bag.member_probabilities(Xte)
    member_acc = [scores(p, yte)[0] for p in member_p]
    soft_p = member_p.mean(0)
    bag.voting = "hard"
    hard_p = bag.predict_proba(Xte)
    bag.voting = "soft"
    oob = bag.oob_score(Xtr, ytr)

    # The dropout network and its control: the same wider MLP trained the same way without
    # dropout, so the difference between them is dropout's alone.
    pydl.manual_seed(args.seed + 100)
    wide = train_one(pydl.models.MLP([64, args.dropout_hidden, 10]), Xtr, ytr, 2 * epochs,
                     args.lr, args.seed + 100)
    wide_p = softmax_of(wide, Xte)
    pydl.manual_seed(args.seed + 100)
    drop = train_one(pydl.models.MLP([64, args.dropout_hidden, 10], dropout=args.dropout),
                     Xtr, ytr, 2 * epochs, args.lr, args.seed + 100)
    wsr_p = softmax_of(drop, Xte)  # eval(): every unit kept, inverted dropout = weight scaling
    mc_p = mc_dropout_proba(drop, Xte, n_samples=T, seed=args.seed)
    wall = time.perf_counter() - start

    rows = [
        ("one MLP, no dropout", scores(single_p, yte), f"1 x {epochs} epochs"),
        (f"bagging member (mean of {k})", (float(np.mean(member_acc)), float(np.mean(
            [scores(p, yte)[1] for p in member_p]))), f"1 x {epochs} epochs"),
        (f"bagging, soft vote (k={k})", scores(soft_p, yte), f"{k} x {epochs} epochs"),
        (f"bagging, hard vote (k={k})", scores(hard_p, yte), f"{k} x {epochs} epochs"),
        (f"MLP 64-{args.dropout_hidden}-10, no dropout", scores(wide_p, yte),
         f"1 x {2 * epochs} epochs"),
        (f"dropout p={args.dropout}, weight scaling", scores(wsr_p, yte),
         f"1 x {2 * epochs} epochs"),
        (f"dropout p={args.dropout}, MC (T={T})", scores(mc_p, yte), f"1 x {2 * epochs} epochs"),
    ]
    print(f"Digits: {len(Xtr)} training, {len(Xte)} test images{' (quick mode)' if quick else ''};"
          f" members MLP 64-{args.hidden}-10, dropout net 64-{args.dropout_hidden}-10, Adam lr "
          f"{args.lr:g}, batch 32")
    print(f"{'method':<36}{'test acc':>9}{'test NLL':>10}  training")
    for name, (acc, nll), cost in rows:
        shown_nll = "-" if "hard" in name else f"{nll:.4f}"
        print(f"{name:<36}{acc:>9.4f}{shown_nll:>10}  {cost}")
    print(f"members' test accuracy range {min(member_acc):.4f} .. {max(member_acc):.4f}; "
          f"bagging out-of-bag accuracy {oob:.4f}; wall time {wall:.1f} s")

    curve_k = [(j, scores(member_p[:j].mean(0), yte)[0]) for j in range(1, k + 1)]
    curve_t = []
    for t in sorted({1, 2, 5, 10, 20, 50, T} & set(range(1, T + 1))):
        curve_t.append((t, scores(mc_dropout_proba(drop, Xte, n_samples=t, seed=args.seed),
                                  yte)[0]))
    results = {
        "single": scores(single_p, yte)[0], "member_mean": float(np.mean(member_acc)),
        "member_min": min(member_acc), "member_max": max(member_acc),
        "soft": scores(soft_p, yte)[0], "hard": scores(hard_p, yte)[0],
        "soft_nll": scores(soft_p, yte)[1], "member_nll": float(np.mean(
            [scores(p, yte)[1] for p in member_p])),
        "wide_no_dropout": scores(wide_p, yte)[0], "weight_scaling": scores(wsr_p, yte)[0], "mc_dropout": scores(mc_p, yte)[0],
        "oob": oob, "curve_k": curve_k, "curve_t": curve_t, "figures": [],
    }
    if not args.no_figures:
        path = figure(curve_k, curve_t, results["weight_scaling"], results["single"],
                      results["member_mean"],
                      os.path.join(args.out, "bagging_vs_dropout.png"))
        if path:
            print(f"wrote {path}")
            results["figures"].append(path)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
