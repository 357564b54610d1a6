"""The ``pydl`` command.

    pydl train [--model lenet] [--data digits] [--epochs N] [--optimizer adam] [--lr LR]
               [--batch-size B] [--seed S] [--device cpu] [--out runs/NAME]
    pydl train --resume runs/NAME [--epochs N]
    pydl train --init-from runs/NAME [--freeze features] [--classes 5-9] ...
    mpirun -n 2 pydl train --distributed ...
    pydl info
    pydl bench [suite ...] [--quick] ...

``pydl train`` trains a reference model (``pydl.models``) with ``pydl.train.fit``, showing a
progress bar per epoch, then prints the test accuracy and writes to the ``--out`` folder:
``checkpoint.safetensors`` (model, optimizer, scheduler, early stopping and RNG states, history,
configuration; saved atomically after every epoch, so an interrupted run can be resumed
exactly), ``model.safetensors`` (the evaluated weights: ``model.load_state_dict(pydl.load(p))``),
``history.json``, ``results.json`` and ``curves.png`` (loss and accuracy per epoch; needs
matplotlib, the ``plot`` extra). The defaults train LeNet-5 on the bundled 8x8 digits to about
98% test accuracy.

Transfer learning (``pydl.transfer``): ``--init-from runs/NAME`` starts from that run's
``model.safetensors``, loading every tensor whose name and shape match (a head for a different
number of classes stays newly initialised); ``--reinit classifier.5`` leaves those modules out
of the loading (a new head of the same shape); ``--freeze features`` keeps the parameters under
that module-name prefix fixed (``requires_grad_(False)``; the optimizer gets only the trainable
ones); ``--classes 0-4`` (or ``5,6,7,8,9``) trains and tests on those classes only, relabelled
0..k-1 in the order given. ``examples/transfer.py`` pre-trains on digits 0-4 and fine-tunes on
5-9 this way.

Data-parallel (``pydl.distributed``, the ``distributed`` extra): ``mpirun -n N pydl train
--distributed`` runs N ranks; the global ``--batch-size`` is split over them (each rank takes
batch_size // N of its ``DistributedSampler`` share per step), the model is wrapped in
``DistributedDataParallel`` (backend ``mpi``, or ``nccl`` with ``--device cuda``), each rank uses
cores / ranks-per-node kernel threads (unless PYDL_NUM_THREADS says otherwise), and rank 0 alone
prints, checkpoints and writes the output folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

CHECKPOINT = "checkpoint.safetensors"

# Every option of ``pydl train`` with its default. The defaults were chosen on the digits: with
# them LeNet-5 reaches 97.5-98.5% test accuracy across seeds (see the tests and the report).
DEFAULTS: Dict[str, Any] = {
    "model": "lenet", "data": "digits", "data_dir": None, "epochs": 30, "optimizer": "adam",
    "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 64, "scheduler": "cosine",
    "label_smoothing": 0.1,
    "val_fraction": 0.1, "patience": None, "dropout": 0.0, "hidden": 128, "subset": None,
    "seed": 0, "device": "cpu", "out": None,
    "init_from": None, "reinit": None, "freeze": None, "classes": None,
}
# Options that may change when resuming (the rest must match the checkpoint's run).
RESUMABLE = {"epochs", "device", "out"}

MODELS = ("lenet", "mlp", "vgg")
DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "cosine", "step", "plateau")


# -- building the run ---------------------------------------------------------------------------

def load_data(cfg: Dict[str, Any]):
    """Train and test datasets named by ``cfg["data"]``."""
    from pydl.data import datasets

    name = cfg["data"]
    if name == "digits":
        return datasets.Digits(train=True), datasets.Digits(train=False)
    if cfg["data_dir"] is None:
        raise SystemExit(f"pydl train: --data {name} needs --data-dir (pydl does not download "
                         "data sets)")
    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST,
           "cifar10": datasets.CIFAR10}[name]
    return cls(cfg["data_dir"], train=True), cls(cfg["data_dir"], train=False)


def build_model(cfg: Dict[str, Any], image_shape, num_classes: int):
    from pydl import models

    c, h, w = image_shape
    if cfg["model"] == "lenet":
        return models.LeNet5(c, num_classes, input_size=(h, w))
    if cfg["model"] == "mlp":
        return models.MLP([c * h * w, cfg["hidden"], num_classes], dropout=cfg["dropout"])
    # As many VGG blocks (up to 3) as halve the image evenly down to at least 2x2.
    blocks = next((k for k in (3, 2, 1) if h % 2 ** k == 0 and w % 2 ** k == 0
                   and min(h, w) // 2 ** k >= 2), 0)
    if blocks == 0:
        raise SystemExit(f"pydl train: --model vgg needs even image sizes, got {h}x{w}")
    widths = (32, 64, 128)[:blocks]
    return models.SmallVGG(c, num_classes, input_size=(h, w), widths=widths,
                           dropout=cfg["dropout"])


def build_optimizer(cfg: Dict[str, Any], params):
    from pydl import optim

    name, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=cfg["momentum"], weight_decay=wd)
    cls = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop,
           "adagrad": optim.Adagrad}[name]
    return cls(params, lr=lr, weight_decay=wd)


def build_scheduler(cfg: Dict[str, Any], optimizer):
    from pydl.optim import lr_scheduler

    name, epochs = cfg["scheduler"], cfg["epochs"]
    if name == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "plateau":
        return lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=2)
    return None


def parse_classes(text: str) -> List[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"5,7,9"`` -> [5, 7, 9]; ranges and lists mix."""
    out: List[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise SystemExit(f"pydl train: --classes takes class numbers and ranges such as 0-4 or "
                         f"5,6,7, got {text!r}") from None
    if len(set(out)) != len(out) or len(out) < 2 or min(out) < 0:
        raise SystemExit(f"pydl train: --classes needs at least two distinct non-negative "
                         f"classes, got {text!r}")
    return out


def keep_classes(ds, classes: List[int]) -> None:
    """Keep only the samples of ``classes`` in an in-memory image dataset, relabelled
    0..k-1 in the order given."""
    targets = np.asarray(ds.targets)
    missing = [c for c in classes if not np.any(targets == c)]
    if missing:
        raise SystemExit(f"pydl train: --classes {missing} do not occur in the data set")
    keep = np.isin(targets, classes)
    relabel = np.full(int(max(targets.max(), max(classes))) + 1, -1, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))
    ds.data = ds.data[keep]
    ds.targets = relabel[targets[keep]]


def init_from_run(model, source: str, reinit=()):
    """Load the weights of the run in folder ``source`` (its ``model.safetensors``; or a weights
    file given directly) into ``model``, wherever name and shape match and the name is not under
    a ``reinit`` prefix; print what happened."""
    import pydl
    from pydl.transfer import load_matching

    path = os.path.join(source, "model.safetensors") if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise SystemExit(f"pydl train: --init-from: no weights at {path} (give a `pydl train` "
                         f"output folder or a state-dict file)")
    try:
        state = pydl.load(path)
    except ValueError as e:
        raise SystemExit(f"pydl train: --init-from: cannot read {path}: {e}") from None
    if isinstance(state, dict) and state.get("format") == "pydl-train-run":
        state = state["model"]
    if not isinstance(state, dict):
        raise SystemExit(f"pydl train: --init-from: {path} does not hold a state dict")
    report = load_matching(model, state, exclude=reinit)
    if not report.loaded:
        raise SystemExit(f"pydl train: --init-from: no tensor of {path} matches the model "
                         f"(different --model?)")
    new = report.missing  # (shape-mismatched and reinit keys are among them)
    print(f"initialised from {path}: {len(report.loaded)} tensors loaded"
          + (f"; newly initialised: {', '.join(new)}" if new else ""), flush=True)
    return report


class _Run:
    """Everything a training run needs, built deterministically from its configuration."""

    def __init__(self, cfg: Dict[str, Any], init_weights: bool = True, world=None):
        import pydl
        from pydl import nn
        from pydl.data import DataLoader, Subset, random_split
        from pydl.data.transforms import Normalize

        self.cfg = cfg
        pydl.manual_seed(cfg["seed"])
        train_set, test_set = load_data(cfg)
        if cfg["classes"] is not None:
            for ds in (train_set, test_set):
                keep_classes(ds, cfg["classes"])
        if cfg["subset"] is not None:
            train_set = Subset(train_set, range(min(cfg["subset"], len(train_set))))
            test_set = Subset(test_set, range(min(cfg["subset"], len(test_set))))
        split_gen = pydl.Generator().manual_seed(cfg["seed"])
        val_set = None
        if cfg["val_fraction"] > 0:
            n_val = max(1, int(round(cfg["val_fraction"] * len(train_set))))
            train_set, val_set = random_split(train_set, [len(train_set) - n_val, n_val],
                                              generator=split_gen)
        # Standardise with statistics of the training part only (no leak from val/test).
        base = _base_dataset(train_set)
        train_idx = np.asarray(_indices(train_set))
        self.normalize = Normalize.fit(base.data[train_idx])
        for ds in {id(_base_dataset(d)): _base_dataset(d)
                   for d in (train_set, val_set, test_set) if d is not None}.values():
            ds.data = self.normalize(ds.data)
        image_shape = base.data.shape[1:]
        num_classes = int(max(base.targets.max(), _base_dataset(test_set).targets.max())) + 1

        self.loader_gen = pydl.Generator().manual_seed(cfg["seed"] + 1)
        bs = cfg["batch_size"]
        if world is None:
            self.train_loader = DataLoader(train_set, batch_size=bs, shuffle=True,
                                           generator=self.loader_gen)
        else:
            # --distributed: the global batch split over the ranks; the sampler gives each rank
            # its share of a permutation (seed + epoch) that all ranks agree on.
            from pydl.data import DistributedSampler

            rank, size = world
            sampler = DistributedSampler(train_set, num_replicas=size, rank=rank, shuffle=True,
                                         seed=cfg["seed"])
            self.train_loader = DataLoader(train_set, batch_size=bs // size, sampler=sampler)
        self.val_loader = DataLoader(val_set, batch_size=512) if val_set is not None else None
        self.test_loader = DataLoader(test_set, batch_size=512)
        self.sizes = (len(train_set), len(val_set) if val_set is not None else 0, len(test_set))

        self.model = build_model(cfg, image_shape, num_classes)
        self.init_report = None
        if cfg["init_from"] is not None and init_weights:  # (a resumed run has its own weights)
            self.init_report = init_from_run(self.model, cfg["init_from"], cfg["reinit"] or ())
        self.frozen = []
        if cfg["freeze"]:
            from pydl.transfer import freeze

            try:
                self.frozen = freeze(self.model, cfg["freeze"])
            except ValueError as e:
                raise SystemExit(f"pydl train: --freeze: {e}") from None
        if cfg["device"] != "cpu":  # before the optimizer sees the parameters
            self.model.to(cfg["device"])
        # Only trainable parameters reach the optimizer: frozen ones get no step and no decay.
        self.optimizer = build_optimizer(
            cfg, [p for p in self.model.parameters() if p.requires_grad])
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["label_smoothing"])
        self.stopper = None
        if cfg["patience"] is not None:
            from pydl.callbacks import EarlyStopping

            self.stopper = EarlyStopping(patience=cfg["patience"])

    def state(self, epochs_done: int, history, stopped: bool) -> Dict[str, Any]:
        from pydl import random

        return {
            "format": "pydl-train-run",
            "config": self.cfg,
            "epochs_done": epochs_done,
            "stopped_early": stopped,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "early_stopping": self.stopper.state_dict() if self.stopper is not None else None,
            "history": history.to_dict(),
            "rng": {"global": random.get_rng_state(), "loader": self.loader_gen.get_state()},
            "normalize": {"mean": self.normalize.mean.tolist(),
                          "std": self.normalize.std.tolist()},
        }

    def load_state(self, ckpt: Dict[str, Any]) -> None:
        from pydl import random

        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.stopper is not None and ckpt.get("early_stopping") is not None:
            self.stopper.load_state_dict(ckpt["early_stopping"])
        random.set_rng_state(ckpt["rng"]["global"])
        self.loader_gen.set_state(ckpt["rng"]["loader"])


def _base_dataset(ds):
    while hasattr(ds, "dataset") and hasattr(ds, "indices"):
        ds = ds.dataset
    return ds


def _indices(ds) -> List[int]:
    """Indices of a (possibly nested) Subset into its base dataset."""
    if hasattr(ds, "dataset") and hasattr(ds, "indices"):
        inner = _indices(ds.dataset)
        return [inner[i] for i in ds.indices]
    return list(range(len(ds)))


class _SaveEachEpoch:
    """fit callback: checkpoint after every epoch (atomically), so a run can be resumed. It runs
    after the early-stopping callback, so the saved state includes that epoch's decision."""

    def __init__(self, run: _Run, path: str, history):
        self.run, self.path, self.history = run, path, history

    @property
    def stopped(self) -> bool:
        return self.run.stopper is not None and bool(self.run.stopper.should_stop)

    def on_epoch_end(self, epoch: int, logs, model) -> bool:
        import pydl

        pydl.save(self.run.state(epoch + 1, self.history, self.stopped), self.path)
        return False


# -- output -------------------------------------------------------------------------------------

def save_plot(history, path: str) -> bool:
    """Loss and accuracy curves (train and validation) per epoch; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed (pip install 'pydl-nn[plot]'); plot skipped")
        return False
    epochs = [e + 1 for e in history.epoch]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        for split, style in (("train", "-"), ("val", "--")):
            key = f"{split}_{metric}"
            if key in history:
                ax.plot(epochs, history[key], style, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- commands -----------------------------------------------------------------------------------

def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a reference model",
                       description="Train a reference model; see `pydl train --help`.")
    d = DEFAULTS
    p.add_argument("--model", choices=MODELS, help=f"model (default {d['model']})")
    p.add_argument("--data", choices=DATASETS, help=f"data set (default {d['data']}, bundled)")
    p.add_argument("--data-dir", help="folder with the MNIST/Fashion-MNIST IDX files or the "
                                      "CIFAR-10 binary batches")
    p.add_argument("--epochs", type=int, help=f"total epochs (default {d['epochs']})")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d['optimizer']}")
    p.add_argument("--lr", type=float, help=f"learning rate (default {d['lr']})")
    p.add_argument("--momentum", type=float, help=f"SGD momentum (default {d['momentum']})")
    p.add_argument("--weight-decay", type=float, help=f"default {d['weight_decay']}")
    p.add_argument("--batch-size", type=int, help=f"default {d['batch_size']}")
    p.add_argument("--scheduler", choices=SCHEDULERS, help=f"default {d['scheduler']}")
    p.add_argument("--label-smoothing", type=float,
                   help=f"cross-entropy label smoothing (default {d['label_smoothing']})")
    p.add_argument("--val-fraction", type=float,
                   help=f"part of the training set held out for validation "
                        f"(default {d['val_fraction']})")
    p.add_argument("--patience", type=int, help="early stopping on validation loss after this "
                                                "many epochs without improvement (default off)")
    p.add_argument("--dropout", type=float, help=f"dropout of mlp/vgg (default {d['dropout']})")
    p.add_argument("--hidden", type=int, help=f"mlp hidden width (default {d['hidden']})")
    p.add_argument("--subset", type=int, help="use only the first N training and test samples "
                                              "(quick checks)")
    p.add_argument("--seed", type=int, help=f"random seed (default {d['seed']})")
    p.add_argument("--device", help=f"cpu or cuda (default {d['device']})")
    p.add_argument("--out", help="output folder (default runs/<model>-<data>-seed<seed>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    p.add_argument("--init-from", metavar="RUN_DIR",
                   help="start from the weights of an earlier run (transfer learning): tensors "
                        "whose name and shape match are loaded, the rest (a new head) stay "
                        "initialised")
    p.add_argument("--reinit", metavar="PREFIX[,PREFIX]",
                   help="with --init-from: do not load these modules, e.g. classifier.5 for a "
                        "new head of the same shape")
    p.add_argument("--freeze", metavar="PREFIX[,PREFIX]",
                   help="keep the parameters under these module names fixed, e.g. features")
    p.add_argument("--classes", metavar="LIST",
                   help="train and test on these classes only, e.g. 0-4 or 5,6,7,8,9 "
                        "(relabelled 0..k-1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over the ranks of `mpirun -n N pydl train --distributed` "
                        "(the global batch split over the ranks; rank 0 prints and saves)")
    return p


def _check_config(cfg: Dict[str, Any]) -> None:
    problems = []
    for key in ("epochs", "batch_size"):
        if not isinstance(cfg[key], int) or cfg[key] < (0 if key == "epochs" else 1):
            problems.append(f"--{key.replace('_', '-')} must be a "
                            f"{'non-negative' if key == 'epochs' else 'positive'} int")
    if not cfg["lr"] > 0:
        problems.append("--lr must be positive")
    if not 0 <= cfg["val_fraction"] < 1:
        problems.append("--val-fraction must lie in [0, 1)")
    if cfg["patience"] is not None and cfg["patience"] < 0:
        problems.append("--patience must be >= 0")
    if cfg["subset"] is not None and cfg["subset"] < 2:
        problems.append("--subset must be >= 2")
    if not 0 <= cfg["label_smoothing"] < 1:
        problems.append("--label-smoothing must lie in [0, 1)")
    if not 0 <= cfg["dropout"] < 1:
        problems.append("--dropout must lie in [0, 1)")
    if problems:
        raise SystemExit("pydl train: " + "; ".join(problems))


def cmd_train(args: argparse.Namespace) -> int:
    import pydl
    from pydl.train import History, evaluate, fit

    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k, None) is not None}
    if "classes" in given:
        given["classes"] = parse_classes(given["classes"])
    for key in ("freeze", "reinit"):
        if key in given:
            given[key] = [p.strip() for p in given[key].split(",") if p.strip()]
    ckpt = None
    if args.resume:
        path = os.path.join(args.resume, CHECKPOINT)
        if not os.path.isfile(path):
            raise SystemExit(f"pydl train: no checkpoint to resume at {path}")
        try:
            ckpt = pydl.load(path, map_location=given.get("device"))
        except ValueError as e:  # CheckpointError: corrupt, truncated or foreign
            raise SystemExit(f"pydl train: cannot resume from {path}: {e}") from None
        if not isinstance(ckpt, dict) or ckpt.get("format") != "pydl-train-run":
            raise SystemExit(f"pydl train: {path} is not a `pydl train` checkpoint")
        cfg = dict(DEFAULTS)
        cfg.update(ckpt["config"])
        changed = [k for k, v in given.items() if k not in RESUMABLE and v != cfg[k]]
        if changed:
            raise SystemExit("pydl train: --resume continues a run with its own settings; "
                             f"only --epochs, --device and --out may change, not "
                             f"{', '.join('--' + k.replace('_', '-') for k in changed)}")
        cfg.update(given)
        cfg["out"] = given.get("out", args.resume)
    else:
        cfg = dict(DEFAULTS)
        cfg.update(given)
        if cfg["out"] is None:
            cfg["out"] = os.path.join("runs", f"{cfg['model']}-{cfg['data']}-seed{cfg['seed']}")
    _check_config(cfg)
    out = cfg["out"]
    world = _start_distributed(cfg) if getattr(args, "distributed", False) else None
    is_rank0 = world is None or world[0] == 0
    if not is_rank0:  # rank 0 alone prints and writes files
        sys.stdout = open(os.devnull, "w")
    os.makedirs(out, exist_ok=True)

    start = time.perf_counter()
    run = _Run(cfg, init_weights=ckpt is None, world=world)
    history = History()
    epochs_done = 0
    if ckpt is not None:
        run.load_state(ckpt)
        history = History.from_dict(ckpt["history"])
        epochs_done = int(ckpt["epochs_done"])
        if ckpt.get("stopped_early"):
            print(f"the run in {args.resume} stopped early after {epochs_done} epochs; "
                  "nothing to train")
            cfg["epochs"] = epochs_done
        elif epochs_done >= cfg["epochs"]:
            print(f"the run in {args.resume} has trained {epochs_done} epochs already; pass "
                  "--epochs to train further")
        else:
            print(f"resuming {args.resume} at epoch {epochs_done + 1} of {cfg['epochs']}")

    n_train, n_val, n_test = run.sizes
    n_params = sum(p.numel() for p in run.model.parameters())
    if run.frozen:
        n_frozen = sum(p.numel() for p in run.model.parameters() if not p.requires_grad)
        print(f"frozen: {len(run.frozen)} tensors under {', '.join(cfg['freeze'])} "
              f"({n_frozen:,} of {n_params:,} parameters)", flush=True)
    print(f"pydl train: {cfg['model']} ({n_params:,} parameters) on {cfg['data']} "
          f"({n_train} train, {n_val} val, {n_test} test), {cfg['optimizer']} lr {cfg['lr']}, "
          f"batch {cfg['batch_size']}, {cfg['epochs']} epochs, seed {cfg['seed']}, "
          f"device {cfg['device']}", flush=True)
    train_model = run.model
    if world is not None:
        from pydl.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(run.model)
        per_rank = cfg["batch_size"] // world[1]
        print(f"distributed: {world[1]} ranks, {per_rank} samples per rank per step (global "
              f"batch {per_rank * world[1]}), {pydl.get_num_threads()} kernel threads per rank",
              flush=True)

    ckpt_path = os.path.join(out, CHECKPOINT)
    saver = _SaveEachEpoch(run, ckpt_path, history)
    callbacks = ([run.stopper] if run.stopper is not None else []) + [saver]
    device = None if cfg["device"] == "cpu" else cfg["device"]
    if epochs_done < cfg["epochs"]:
        fit(train_model, run.loss_fn, run.optimizer, run.train_loader, run.val_loader,
            epochs=cfg["epochs"], scheduler=run.scheduler, callbacks=callbacks,
            metrics=["accuracy"], device=device, progress=not args.no_progress,
            initial_epoch=epochs_done, history=history)
        epochs_done = history.epoch[-1] + 1 if len(history) else epochs_done
        if saver.stopped:
            print(f"early stopping after epoch {epochs_done}: restored the weights of epoch "
                  f"{run.stopper.best_epoch + 1} (best validation loss)")
    elif run.stopper is not None and run.stopper.best_state is not None:
        run.stopper.restore(run.model)
    # checkpoint.safetensors holds the last epoch's training state (for --resume);
    # model.safetensors the weights evaluated below (the best epoch's under early stopping).
    model_path = os.path.join(out, "model.safetensors")
    if not is_rank0:
        _finish_distributed()
        return 0
    pydl.save(run.model.state_dict(), model_path)

    test = evaluate(run.model, run.test_loader, run.loss_fn, ["accuracy"], device)
    wall = time.perf_counter() - start
    correct = int(round(test["accuracy"] * n_test))
    smoothing = f" (label smoothing {cfg['label_smoothing']})" if cfg["label_smoothing"] else ""
    print(f"test accuracy: {test['accuracy']:.4f} ({correct}/{n_test}), test loss "
          f"{test['loss']:.4f}{smoothing}, wall time {wall:.1f} s")
    history.save_json(os.path.join(out, "history.json"))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"test_accuracy": test["accuracy"], "test_loss": test["loss"],
                   "epochs": epochs_done, "wall_time_s": wall, "parameters": n_params,
                   "config": cfg}, f, indent=1)
    if len(history) and save_plot(history, os.path.join(out, "curves.png")):
        print(f"wrote {out}/curves.png")
    print(f"wrote {ckpt_path}, {model_path}, {out}/history.json, {out}/results.json")
    if world is not None:
        _finish_distributed()
    return 0


def _start_distributed(cfg: Dict[str, Any]):
    """Join the mpirun job: (rank, world size). One GPU per rank with --device cuda (NCCL);
    on CPU the node's cores are shared among its ranks."""
    import pydl
    import pydl.distributed as dist

    try:
        dist.init_process_group("nccl" if str(cfg["device"]).startswith("cuda") else "mpi")
    except ImportError as e:
        raise SystemExit(f"pydl train --distributed: {e}") from None
    if "PYDL_NUM_THREADS" not in os.environ:
        per_node = max(1, dist._launcher.world().local_size)
        pydl.set_num_threads(max(1, (os.cpu_count() or 1) // per_node))
    world = (dist.get_rank(), dist.get_world_size())
    if cfg["batch_size"] < world[1]:
        raise SystemExit(f"pydl train --distributed: --batch-size {cfg['batch_size']} is smaller "
                         f"than the number of ranks ({world[1]})")
    return world


def _finish_distributed() -> None:
    import pydl.distributed as dist

    dist.barrier()
    dist.destroy_process_group()


def cmd_info(args: argparse.Namespace) -> int:
    import pydl

    pydl.show_config()
    return 0


def cmd_bench(argv: List[str]) -> int:
    """``pydl bench ARGS``: ARGS go to the benchmark runner untouched (its own parser knows
    --json FILE and the rest; parsing them here would take FILE for a suite name)."""
    from pydl import bench

    return bench.main(list(argv), prog="pydl bench")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pydl", description="pydl: train reference models, "
                                     "show the build configuration, run benchmarks.")
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    sub.add_parser("info", help="print pydl.show_config()")
    bench = sub.add_parser("bench", help="run the kernel benchmark suites (python -m pydl.bench); "
                                         "other options (--quick, --json, --plot, ...) are "
                                         "passed on")
    bench.add_argument("suites", nargs="*", help="suites to run (default: all)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        return cmd_bench(argv[1:])
    args, rest = parser.parse_known_args(argv)
    if args.command != "bench" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "train":
        return cmd_train(args)
    if args.command == "info":
        return cmd_info(args)
    return cmd_bench(list(args.suites) + rest)  # not reached: handled above


if __name__ == "__main__":
    sys.exit(main())
