"""Regularised autoencoders on the bundled 8x8 digits: capacity, denoising, contraction, and
greedy layer-wise pre-training (lecture notes 19.2, 21.3, 21.4).

1. **Under- and overcomplete, denoising, contractive.** One-hidden-layer autoencoders
   64 -> h -> 64 with a sigmoid code and output: undercomplete (h = 16), overcomplete
   (h = 256) without regulariser, denoising with Gaussian noise (std 0.3) or masking noise
   (30% of the pixels zeroed) on the input and the loss against the clean input, and
   contractive (penalty lambda ||J_f(x)||_F^2). On the test digits: the MSE of the
   reconstruction of a clean input, of a Gaussian-corrupted and of a masked input (each against
   the clean image), the MSE on uniform random 8x8 images (how well it copies what is not a
   digit: an autoencoder close to the identity copies everything) and the mean squared
   Frobenius norm of the encoder's Jacobian.
2. **The contractive penalty by autograd and in closed form.** A 64 -> 32 contractive
   autoencoder trained twice from the same initial weights and batches: with the penalty by
   pydl's higher-order autograd (one ``create_graph=True`` backward per code unit) and with
   the sigmoid closed form ||diag(h (1 - h)) W||_F^2. The two runs agree to rounding.
3. **Stacked denoising pre-training.** A sigmoid MLP 64 - 128 - 64 - 10 pre-trained greedily,
   layer by layer, as denoising autoencoders on all 1,438 training images (no labels), then
   fine-tuned with labels, against the same network trained from scratch, when only a few
   labelled images are available; test accuracy, mean and spread over seeds.

Run: ``python examples/autoencoders.py`` (about 40 s of CPU time) or ``--quick`` (fewer epochs,
50 labels only). Figure: ``runs/autoencoders_denoising.png`` (corrupted inputs and their
reconstructions; needs matplotlib).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pydl
import pydl.nn.functional as F
from pydl import models, nn
from pydl.data.datasets import Digits


def load():
    train, test = Digits(train=True), Digits(train=False)
    flat = lambda d: np.ascontiguousarray(d.data.reshape(len(d), -1), dtype=np.float32)  # noqa
    return flat(train), np.asarray(train.targets), flat(test), np.asarray(test.targets)


def corrupt(X, kind: str, seed: int) -> np.ndarray:
    """Fixed corruptions of the test set, the same for every model."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return (X + 0.3 * rng.standard_normal(X.shape)).astype(np.float32)
    return (X * (rng.random(X.shape) >= 0.3)).astype(np.float32)


def reconstruct(ae, X) -> np.ndarray:
    with pydl.no_grad():
        return ae(pydl.from_numpy(X)).numpy().astype(np.float64)


def mse(a, b) -> float:
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


def jacobian_norm(ae, X) -> float:
    """Mean ||J_f(x)||_F^2 over X for a one-layer sigmoid encoder (closed form)."""
    with pydl.no_grad():
        code = ae.encode(pydl.from_numpy(X))
        return float(models.sigmoid_contractive_penalty(code, ae.encoder[1].weight))


def part_capacity(Xtr, Xte, epochs: int, contractive: float):
    settings = [("undercomplete, h = 16", 16, None, {}),
                ("overcomplete, h = 256", 256, None, {}),
                ("denoising (Gaussian 0.3), h = 256", 256, nn.GaussianNoise(0.3), {}),
                ("denoising (masking 30%), h = 256", 256, nn.MaskingNoise(0.3), {}),
                (f"contractive (lambda {contractive:g}), h = 256", 256, None,
                 dict(contractive=contractive, contractive_method="sigmoid"))]
    noisy, masked = corrupt(Xte, "gaussian", 1), corrupt(Xte, "masking", 2)
    random_images = np.random.default_rng(3).random(Xte.shape).astype(np.float32)
    rows, trained = [], {}
    for name, h, corruption, penalty in settings:
        pydl.manual_seed(0)
        ae = models.Autoencoder([64, h], code_activation="sigmoid", corruption=corruption)
        models.fit_autoencoder(ae, Xtr, epochs=epochs, lr=3e-3, **penalty)
        rows.append(dict(name=name, clean=mse(reconstruct(ae, Xte), Xte),
                         gaussian=mse(reconstruct(ae, noisy), Xte),
                         masked=mse(reconstruct(ae, masked), Xte),
                         random=mse(reconstruct(ae, random_images), random_images),
                         jacobian=jacobian_norm(ae, Xte)))
        trained[name] = ae
    return rows, trained, (noisy, masked)


def part_contractive_check(Xtr, epochs: int, contractive: float):
    runs = {}
    for method in ("autograd", "sigmoid"):
        pydl.manual_seed(1)
        ae = models.Autoencoder([64, 32], code_activation="sigmoid").double()
        start = time.process_time()
        history = models.fit_autoencoder(ae, Xtr.astype(np.float64), epochs=epochs, lr=3e-3,
                                         seed=1, contractive=contractive,
                                         contractive_method=method)
        runs[method] = (ae, history, time.process_time() - start)
    (auto, h_auto, t_auto), (closed, h_closed, t_closed) = runs["autograd"], runs["sigmoid"]
    param_diff = max(float(np.abs(a.detach().numpy() - b.detach().numpy()).max())
                     for a, b in zip(auto.parameters(), closed.parameters()))
    x = pydl.from_numpy(Xtr[:200].astype(np.float64)).requires_grad_()
    code = auto.encode(x)
    by_autograd = float(models.contractive_penalty(code, x))
    by_formula = float(models.sigmoid_contractive_penalty(code, auto.encoder[1].weight))
    return dict(loss_autograd=h_auto[-1], loss_closed=h_closed[-1], param_diff=param_diff,
                penalty_autograd=by_autograd, penalty_closed=by_formula,
                cpu_autograd=t_auto, cpu_closed=t_closed)


def fine_tune(net, X, y, Xte, yte, epochs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    opt = pydl.optim.Adam(net.parameters(), lr=3e-3)
    Xt, yt = pydl.from_numpy(X), pydl.from_numpy(y.astype(np.int64))
    net.train()
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(X)), max(1, len(X) // 32)):
            i = pydl.from_numpy(idx)
            loss = F.cross_entropy(net(Xt[i]), yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with pydl.no_grad():
        return float((net(pydl.from_numpy(Xte)).numpy().argmax(1) == yte).mean())


def part_stacked(Xtr, ytr, Xte, yte, label_counts, seeds, pretrain_epochs, tune_epochs):
    rows = []
    for n_labels in label_counts:
        scratch, pretrained = [], []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            if n_labels < len(Xtr):  # the same number of labelled images of each digit
                chosen = np.concatenate([rng.choice(np.flatnonzero(ytr == c), n_labels // 10,
                                                    replace=False) for c in range(10)])
            else:
                chosen = np.arange(len(Xtr))
            pydl.manual_seed(seed)
            net = models.MLP([64, 128, 64, 10], activation="sigmoid")
            scratch.append(fine_tune(net, Xtr[chosen], ytr[chosen], Xte, yte, tune_epochs, seed))
            pydl.manual_seed(seed)
            net = models.MLP([64, 128, 64, 10], activation="sigmoid")
            models.greedy_layerwise_pretrain(net, Xtr, epochs=pretrain_epochs, lr=3e-3,
                                             corruption=lambda: nn.MaskingNoise(0.25), seed=seed)
            pretrained.append(fine_tune(net, Xtr[chosen], ytr[chosen], Xte, yte, tune_epochs,
                                        seed))
        rows.append(dict(labels=n_labels, scratch=scratch, pretrained=pretrained))
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="fewer epochs, 50 labels only (also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--contractive", type=float, default=3e-4,
                        help="weight lambda of the contractive penalty")
    parser.add_argument("--out", default="runs", help="folder for the figure")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    Xtr, ytr, Xte, yte = load()
    quick = args.quick
    start_cpu, start = time.process_time(), time.perf_counter()
    epochs = 30 if quick else 60
    capacity, trained, corrupted = part_capacity(Xtr, Xte, epochs, args.contractive)
    check = part_contractive_check(Xtr, 2 if quick else 5, args.contractive)
    stacked = part_stacked(Xtr, ytr, Xte, yte, (50,) if quick else (50, 200, len(Xtr)),
                           seeds=(0, 1, 2), pretrain_epochs=15, tune_epochs=60)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start

    print(f"1. Autoencoders 64 -> h -> 64 (sigmoid code and output), {epochs} epochs; test "
          f"MSE per pixel against the clean image{' (quick mode)' if quick else ''}")
    print(f"{'model':<38}{'clean':>8}{'Gaussian':>10}{'masked':>8}{'random':>8}"
          f"{'||J||_F^2':>11}")
    for r in capacity:
        print(f"{r['name']:<38}{r['clean']:>8.4f}{r['gaussian']:>10.4f}{r['masked']:>8.4f}"
              f"{r['random']:>8.4f}{r['jacobian']:>11.2f}")
    print("(random: MSE reconstructing uniform random images, which are not digits: low means "
          "the model copies anything)")
    print(f"\n2. Contractive penalty (lambda {args.contractive:g}), 64 -> 32, float64, the same "
          f"initial weights and batches:")
    print(f"{'penalty by':<24}{'final loss':>14}{'CPU s':>8}")
    print(f"{'autograd (create_graph)':<24}{check['loss_autograd']:>14.10f}"
          f"{check['cpu_autograd']:>8.2f}")
    print(f"{'closed form (sigmoid)':<24}{check['loss_closed']:>14.10f}"
          f"{check['cpu_closed']:>8.2f}")
    print(f"largest parameter difference after training: {check['param_diff']:.2e}; penalty on "
          f"200 images: autograd {check['penalty_autograd']:.10f}, closed form "
          f"{check['penalty_closed']:.10f}")
    print("\n3. Sigmoid MLP 64-128-64-10: test accuracy, mean (min - max) over seeds 0, 1, 2")
    print(f"{'labelled images':>15}{'from scratch':>24}{'stacked DAE pre-training':>28}")
    for r in stacked:
        cells = [f"{np.mean(v):.3f} ({min(v):.3f} - {max(v):.3f})"
                 for v in (r["scratch"], r["pretrained"])]
        print(f"{r['labels']:>15}{cells[0]:>24}{cells[1]:>28}")
    print(f"(pre-training: 15 epochs per layer on all {len(Xtr)} training images, masking noise "
          f"25%; fine-tuning: 60 epochs; {cpu:.1f} s CPU, {wall:.1f} s wall)")
    figure = plot(trained, corrupted, Xte, args.out)
    return dict(capacity=capacity, contractive_check=check, stacked=stacked, figure=figure)


def plot(trained, corrupted, Xte, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install 'pydl-nn[plot]'): no figure")
        return None
    os.makedirs(out, exist_ok=True)
    noisy, masked = corrupted
    n = 8
    rows = [("clean", Xte[:n]), ("Gaussian noise", noisy[:n]), ("masked", masked[:n]),
            ("overcomplete AE\n(masked input)",
             reconstruct(trained["overcomplete, h = 256"], masked[:n])),
            ("Gaussian DAE\n(Gaussian input)",
             reconstruct(trained["denoising (Gaussian 0.3), h = 256"], noisy[:n])),
            ("masking DAE\n(masked input)",
             reconstruct(trained["denoising (masking 30%), h = 256"], masked[:n]))]
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9, len(rows) * 0.95))
    for i, (name, images) in enumerate(rows):
        for j in range(n):
            axes[i, j].imshow(np.clip(images[j].reshape(8, 8), 0, 1), cmap="gray_r", vmin=0,
                              vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    path = os.path.join(out, "autoencoders_denoising.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
