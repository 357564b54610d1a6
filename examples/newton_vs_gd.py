"""Gradient descent, Newton's method and L-BFGS on the bundled 8x8 digits.

The course derives Newton's method from the Hessian (lecture notes 5.9,
theta <- theta - H^-1 grad f) and the closed form of least squares (4.3.1,
argmin ||A theta - y||^2 = (A^T A)^-1 A^T y). This example puts both next to gradient descent:

1. Multinomial logistic regression (softmax over the 10 digits, cross-entropy plus a small L2
   penalty (lambda/2)||W||^2 that keeps the minimum finite: the digits are nearly separable),
   fitted by full-batch gradient descent (step 1/L from the Hessian's bound L, found with
   ``pydl.linalg.eigvalsh``), by ``pydl.optim.Newton`` (exact Hessian from double backward)
   and by ``pydl.optim.LBFGS`` (strong-Wolfe line search). The table gives the iterations each
   needs to come within ``tol`` of the minimum (found by Newton), the final loss, the time to
   tolerance and the test accuracy.
2. Least squares on one-hot targets, the course's closed form by ``pydl.linalg.lstsq``, against
   Newton (one step: the loss is quadratic) and gradient descent on the same objective; and
   the accuracy of that linear classifier next to logistic regression's.

Run: ``python examples/newton_vs_gd.py`` (about 20 s of CPU time) or with ``--quick`` (a
300-image subset at 4x4 resolution, a few seconds; what tests/test_examples.py runs).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import pydl
import pydl.nn.functional as F
from pydl.data.datasets import Digits


def load(quick: bool):
    """Train/test inputs (N, d) float64 in [0, 1] and labels; quick: 300 training images pooled
    to 4x4 (d = 16) so the Hessian is small."""
    train, test = Digits(train=True), Digits(train=False)
    Xtr, ytr, Xte, yte = train.data[:, 0], train.targets, test.data[:, 0], test.targets
    if quick:
        Xtr, ytr = Xtr[:300], ytr[:300]
        Xtr = Xtr.reshape(-1, 4, 2, 4, 2).mean((2, 4))
        Xte = Xte.reshape(-1, 4, 2, 4, 2).mean((2, 4))
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64)  # noqa: E731
    return flat(Xtr), ytr, flat(Xte), yte


def logistic_problem(X, y, l2):
    """Parameters W (d, 10), b (10) at zero and the loss closure."""
    d = X.shape[1]
    W = pydl.zeros(d, 10, dtype=pydl.float64, requires_grad=True)
    b = pydl.zeros(10, dtype=pydl.float64, requires_grad=True)
    Xt, yt = pydl.tensor(X), pydl.tensor(y)

    def loss():
        return F.cross_entropy(Xt @ W + b, yt) + 0.5 * l2 * (W * W).sum()

    return [W, b], loss


def run(method: str, params, loss_fn, iters: int, lr: float):
    """Losses after 0..iters iterations and the time at each."""
    if method == "gd":
        opt = pydl.optim.SGD(params, lr=lr)
    elif method == "newton":
        opt = pydl.optim.Newton(params)
    else:  # one L-BFGS iteration per step, so iterations count like the others'
        opt = pydl.optim.LBFGS(params, line_search_fn="strong_wolfe", max_iter=1, max_eval=25,
                               history_size=20, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():  # Newton differentiates the loss itself; the others want it backpropagated
        if method == "newton":
            return loss_fn()
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    with pydl.no_grad():
        losses = [float(loss_fn())]
    times = [0.0]
    start = time.perf_counter()
    for _ in range(iters):
        opt.step(closure)
        with pydl.no_grad():
            losses.append(float(loss_fn()))
        times.append(time.perf_counter() - start)
        if method == "newton" and abs(losses[-2] - losses[-1]) <= 1e-13:
            break  # converged to rounding: each further step costs a Hessian
    return np.array(losses), np.array(times)


def first_within(losses, target):
    hit = np.flatnonzero(losses <= target)
    return int(hit[0]) if hit.size else None


def accuracy(W, b, X, y) -> float:
    """Test accuracy of the linear scores X W + b (W, b: parameter Tensors)."""
    W, b = W.detach().numpy(), b.detach().numpy()
    return float(((X @ W + b).argmax(1) == y).mean())


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("PYDL_EXAMPLE_QUICK") == "1",
                        help="small subset (what the test runs; also PYDL_EXAMPLE_QUICK=1)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="iterations are counted until loss - min <= tol")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Print both tables; return the numbers (per method: losses, times, iterations, ...)."""
    args = parse_args(argv)
    quick = args.quick
    Xtr, ytr, Xte, yte = load(quick)
    n, d = Xtr.shape
    l2 = 1e-3
    budget = dict(gd=300 if quick else 2000, newton=15, lbfgs=100 if quick else 300)

    # Gradient descent's step: 1/L with L = lambda_max(X1^T X1 / n) / 2 + l2 bounds the
    # Hessian of the mean softmax cross-entropy (its per-sample factor diag(p) - p p^T has
    # eigenvalues <= 1/2), X1 = [X, 1]. The bound is loose, so the step used is the best of
    # 2^k / L, k = 0..7, after a short trial: a tuned gradient descent, not a strawman.
    X1 = np.hstack([Xtr, np.ones((n, 1))])
    lam_max = float(pydl.linalg.eigvalsh(pydl.tensor(X1.T @ X1 / n))[-1])
    safe_lr = 1.0 / (0.5 * lam_max + l2)
    trials = {}
    for k in range(8):
        params, loss_fn = logistic_problem(Xtr, ytr, l2)
        final = run("gd", params, loss_fn, 30, safe_lr * 2 ** k)[0][-1]
        trials[k] = final if np.isfinite(final) else np.inf
    lr = safe_lr * 2 ** min(trials, key=trials.get)

    print(f"Digits: {n} training images, {d} features, 10 classes"
          f"{' (quick mode)' if quick else ''}; loss = cross-entropy + {l2}/2 ||W||^2")
    results = {}
    for method in ("newton", "lbfgs", "gd"):
        params, loss_fn = logistic_problem(Xtr, ytr, l2)
        losses, times = run(method, params, loss_fn, budget[method], lr)
        results[method] = dict(losses=losses, times=times,
                               accuracy=accuracy(params[0], params[1], Xte, yte))
    f_min = min(r["losses"].min() for r in results.values())
    names = dict(gd=f"gradient descent (lr {lr:.3g})", newton="Newton (damped)",
                 lbfgs="L-BFGS (strong Wolfe)")
    print(f"\nLogistic regression: iterations until loss - min <= {args.tol:g} "
          f"(min = {f_min:.10f})")
    print(f"{'method':<28}{'iterations':>11}{'final loss':>15}{'time (s)':>10}{'test acc':>10}")
    for method in ("gd", "newton", "lbfgs"):
        r = results[method]
        k = first_within(r["losses"], f_min + args.tol)
        r["iterations"] = k
        shown = str(k) if k is not None else f">{len(r['losses']) - 1}"
        t = r["times"][k] if k is not None else r["times"][-1]
        print(f"{names[method]:<28}{shown:>11}{r['losses'][-1]:>15.10f}{t:>10.2f}"
              f"{r['accuracy']:>10.3f}")

    # -- least squares on one-hot targets: the course's closed form -------------------------
    Y = np.eye(10)[ytr]
    A, Yt = pydl.tensor(X1), pydl.tensor(Y)
    start = time.perf_counter()
    theta_ls = pydl.linalg.lstsq(A, Yt, driver="gelsd").solution
    t_ls = time.perf_counter() - start
    ls_loss = lambda theta: ((A @ theta - Yt) ** 2).sum() / n  # noqa: E731
    with pydl.no_grad():
        f_ls = float(ls_loss(theta_ls))

    theta = pydl.zeros(d + 1, 10, dtype=pydl.float64, requires_grad=True)
    start = time.perf_counter()
    pydl.optim.Newton([theta], damping=1e-12).step(lambda: ls_loss(theta))
    t_newton = time.perf_counter() - start
    with pydl.no_grad():
        f_newton = float(ls_loss(theta))

    theta_gd = pydl.zeros(d + 1, 10, dtype=pydl.float64, requires_grad=True)
    gd = pydl.optim.SGD([theta_gd], lr=1.0 / (2 * lam_max))  # 1/L, L = 2 lambda_max(X1^T X1/n)
    start = time.perf_counter()
    gd_losses = []
    for _ in range(budget["gd"]):
        gd.zero_grad()
        loss = ls_loss(theta_gd)
        loss.backward()
        gd.step()
        gd_losses.append(float(loss))
    t_gd = time.perf_counter() - start
    with pydl.no_grad():
        gd_losses.append(float(ls_loss(theta_gd)))
    k_gd = first_within(np.array(gd_losses), f_ls + args.tol)
    print(f"\nLeast squares on one-hot targets, ||[X 1] theta - Y||^2 / n (closed form "
          f"(A^T A)^-1 A^T y):")
    print(f"{'method':<28}{'iterations':>11}{'final loss':>15}{'time (s)':>10}{'test acc':>10}")
    acc_ls = accuracy(theta_ls[:-1], theta_ls[-1], Xte, yte)
    print(f"{'closed form (linalg.lstsq)':<28}{'-':>11}{f_ls:>15.10f}{t_ls:>10.2f}{acc_ls:>10.3f}")
    print(f"{'Newton (one step)':<28}{1:>11}{f_newton:>15.10f}{t_newton:>10.2f}"
          f"{accuracy(theta[:-1], theta[-1], Xte, yte):>10.3f}")
    shown = str(k_gd) if k_gd is not None else f">{budget['gd']}"
    print(f"{'gradient descent':<28}{shown:>11}{gd_losses[-1]:>15.10f}{t_gd:>10.2f}"
          f"{accuracy(theta_gd[:-1], theta_gd[-1], Xte, yte):>10.3f}")
    results["least_squares"] = dict(closed_form=f_ls, newton=f_newton, gd=gd_losses[-1],
                                    gd_iterations=k_gd, accuracy=acc_ls)
    results["min_loss"] = f_min
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
