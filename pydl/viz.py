"""Looking inside a network (course notes 17, "CNN visualization").

* ``autograd_graph(output)``: the graph autograd recorded for ``output``, as Graphviz DOT text
  (ops, leaves named after the module's parameters, shapes); ``render_dot`` turns it into an SVG
  or PNG when Graphviz's ``dot`` program is installed (and says so, returning None, when not).
* ``feature_maps(model, layer, x)`` / ``plot_feature_maps``: a layer's activations for an
  input; ``plot_filters``: a convolution's kernels.
* ``saliency(model, x, target)``: the gradient of the class score with respect to the input
  (Simonyan et al., 2014), ``|dS_c/dx|`` maximised over channels; ``input_gradient`` gives the
  signed gradient itself.
* ``HistogramLogger`` (a ``pydl.train.fit`` callback) records per-layer histograms of the
  weights and gradients every epoch; ``plot_histograms`` draws them over training.
* ``make_grid`` (torchvision's) and ``save_image_grid`` / ``reconstruction_grid``: images in a
  grid, e.g. an autoencoder's inputs over its reconstructions.

Plotting needs matplotlib (the ``plot`` extra: ``pip install 'pydl-nn[plot]'``); it is imported
only when a plotting function runs, and a clear ``ImportError`` says what to install. Everything
that computes (graph text, maps, saliency, histograms, grids) works without it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from pydl.tensor import Tensor

__all__ = ["autograd_graph", "render_dot", "feature_maps", "plot_feature_maps", "plot_filters",
           "input_gradient", "saliency", "plot_saliency", "HistogramLogger", "plot_histograms",
           "make_grid", "save_image_grid", "reconstruction_grid"]


def _pyplot(what: str):
    """matplotlib.pyplot with the non-interactive Agg backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"pydl.viz.{what} draws with matplotlib, which is not installed: "
                          f"pip install 'pydl-nn[plot]' (or pip install matplotlib)") from None
    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str, plt) -> str:
    """Save atomically: a half-written figure never replaces a good one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    ext = os.path.splitext(path)[1] or ".png"
    fd, tmp = tempfile.mkstemp(suffix=ext, dir=folder)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _array(x) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)


# -- the autograd graph -------------------------------------------------------------------------

def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def autograd_graph(output: Union[Tensor, Sequence[Tensor]], params=None,
                   show_shapes: bool = True, name: str = "autograd") -> str:
    """The backward graph of ``output`` as Graphviz DOT text.

    One box per recorded op (labelled ``<Op>Backward``, grey), one per leaf tensor that
    requires grad (blue; labelled with its name from ``params`` -- a Module's
    ``named_parameters()`` or a dict name -> tensor -- and its shape), and one per output
    (green). Edges point along the forward computation, from each input to the op that used it
    (the reverse of the order ``backward`` walks them), as ``torchviz.make_dot`` draws. A leaf
    used by several ops (a tied weight) is one node with several edges.

    ``output`` must have been computed with grad enabled (it has a ``grad_fn``, or is a leaf that
    requires grad). Walking the graph does not run or free it."""
    outputs = [output] if isinstance(output, Tensor) else list(output)
    if not outputs or not all(isinstance(t, Tensor) for t in outputs):
        raise TypeError("autograd_graph: expected a Tensor or a sequence of Tensors")
    for t in outputs:
        if t.grad_fn is None and not t.requires_grad:
            raise ValueError(f"autograd_graph: a tensor of shape {tuple(t.shape)} has no graph "
                             "(computed without grad, or from inputs that do not require grad)")
    if params is not None and hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    names = {id(p): n for n, p in (params or {}).items()}

    ids: Dict[int, str] = {}
    lines: List[str] = []
    edges: List[str] = []

    def node_id(obj) -> str:
        key = id(obj)
        if key not in ids:
            ids[key] = f"n{len(ids)}"
        return ids[key]

    def shape_text(shape) -> str:
        return "(" + ", ".join(str(int(s)) for s in shape) + ")"

    def leaf(t: Tensor) -> str:
        nid = node_id(t)
        if nid not in declared:
            label = names.get(id(t), "tensor")
            if show_shapes:
                label += "\n" + shape_text(t.shape)
            lines.append(f'  {nid} [label="{_dot_escape(label)}", fillcolor="lightblue"];')
            declared.add(nid)
        return nid

    declared = set()
    stack = []
    for i, t in enumerate(outputs):
        oid = f"out{i}"
        label = "output" if len(outputs) == 1 else f"output {i}"
        if show_shapes:
            label += "\n" + shape_text(t.shape)
        lines.append(f'  {oid} [label="{_dot_escape(label)}", fillcolor="darkolivegreen1"];')
        if t.grad_fn is None:
            edges.append(f"  {leaf(t)} -> {oid};")
        else:
            edges.append(f"  {node_id(t.grad_fn)} -> {oid};")
            stack.append(t.grad_fn)
    seen = set()
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        nid = node_id(fn)
        label = f"{fn.name()}Backward"
        lines.append(f'  {nid} [label="{_dot_escape(label)}", fillcolor="lightgrey"];')
        declared.add(nid)
        for parent in fn.parents or ():
            if parent is None:
                continue
            src = parent[0]
            if isinstance(src, Tensor):
                edges.append(f"  {leaf(src)} -> {nid};")
            else:
                edges.append(f"  {node_id(src)} -> {nid};")
                stack.append(src)
    head = [f"digraph {name} {{",
            '  node [shape=box, style="filled,rounded", fontname="Helvetica", fontsize=10];',
            "  edge [arrowsize=0.6];"]
    return "\n".join(head + lines + edges + ["}"]) + "\n"


def render_dot(dot: str, path: str, format: Optional[str] = None,
               timeout: float = 60.0) -> Optional[str]:
    """Render DOT text to ``path`` with Graphviz's ``dot`` (``format`` from the file name:
    ``svg``, ``png``, ``pdf``). Returns ``path``, or None when ``dot`` is not on ``PATH``
    (install Graphviz: ``apt install graphviz``, ``brew install graphviz``). A failing ``dot``
    raises ``RuntimeError`` with its message; the target is replaced only by a finished file."""
    fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
    exe = shutil.which("dot")
    if exe is None:
        return None
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix="." + fmt, dir=folder)
    os.close(fd)
    try:
        proc = subprocess.run([exe, f"-T{fmt}", "-o", tmp], input=dot.encode(),
                              capture_output=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"render_dot: dot -T{fmt} failed ({proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# -- feature maps and filters ---------------------------------------------------------------------

def _find_layer(model, layer):
    from pydl.nn.module import Module

    if isinstance(layer, Module):
        return layer
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"no submodule named {layer!r} in {type(model).__name__}; it has "
                         f"{[n for n in modules if n]}")
    return modules[layer]


def feature_maps(model, layer, x) -> np.ndarray:
    """The output of ``layer`` (a submodule or its dotted name, e.g. ``"features.1"``) when
    ``model`` runs on ``x``, as an array (e.g. ``(N, C, H, W)`` for a conv layer). Runs in eval
    mode without a graph; the model's mode is restored."""
    from pydl.autograd import grad_mode

    module = _find_layer(model, layer)
    captured = []
    handle = module.register_forward_hook(lambda m, inputs, out: captured.append(_array(out)))
    was_training = model.training
    model.eval()
    try:
        with grad_mode.no_grad():
            model(x if isinstance(x, Tensor) else Tensor(np.asarray(x)))
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise RuntimeError(f"feature_maps: {layer!r} did not run in the forward pass")
    return captured[0]


def _tile(panels: np.ndarray, ncols: int, pad: int = 1) -> np.ndarray:
    """Panels ``(n, h, w)`` tiled ``ncols`` to a row into one 2-D array, NaN between them (drawn
    blank): one ``imshow`` instead of one axes per panel, which matplotlib draws far faster."""
    n, h, w = panels.shape
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), np.nan)
    for k in range(n):
        r, c = divmod(k, ncols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h,
            pad + c * (w + pad):pad + c * (w + pad) + w] = panels[k]
    return out


def _show_tiles(plt, tiled: np.ndarray, labels: Sequence[str], shape, ncols: int, cmap: str,
                title: Optional[str], vmin=None, vmax=None, pad: int = 1):
    h, w = shape
    ncols = max(1, min(ncols, len(labels)))
    nrows = max(1, -(-len(labels) // ncols))
    fig, ax = plt.subplots(figsize=(min(16.0, 1.2 * ncols + 0.6), min(16.0, 1.2 * nrows + 0.6)))
    cm = plt.get_cmap(cmap).with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(tiled), cmap=cm, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    for k, label in enumerate(labels):
        r, c = divmod(k, ncols)
        ax.text(pad + c * (w + pad), pad + r * (h + pad) - 0.25, label, fontsize=7, va="bottom")
    ax.axis("off")
    if title:
        ax.set_title(title)
    return fig, im


def plot_feature_maps(maps, path: str, sample: int = 0, ncols: int = 8,
                      title: Optional[str] = None, cmap: str = "viridis") -> str:
    """One panel per channel of ``maps[sample]`` (``(N, C, H, W)``, e.g. from
    ``feature_maps``), each scaled to its own range [0, 1]; saved to ``path``."""
    plt = _pyplot("plot_feature_maps")
    maps = _array(maps)
    if maps.ndim != 4:
        raise ValueError(f"plot_feature_maps: expected maps (N, C, H, W), got shape {maps.shape}")
    chans = maps[sample].astype(np.float64)
    lo = chans.min(axis=(1, 2), keepdims=True)
    span = chans.max(axis=(1, 2), keepdims=True) - lo
    scaled = (chans - lo) / np.where(span > 0, span, 1.0)
    fig, _ = _show_tiles(plt, _tile(scaled, ncols), [f"ch {i}" for i in range(len(chans))],
                         chans.shape[1:], ncols, cmap, title, 0.0, 1.0)
    return _save(fig, path, plt)


def plot_filters(weight, path: str, ncols: int = 8, title: Optional[str] = None,
                 cmap: str = "RdBu_r") -> str:
    """A convolution's kernels (``conv.weight`` or the layer itself, ``(out, in, kh, kw)``):
    one panel per (output, input) channel pair, labelled ``out/in``, on one symmetric colour
    scale so that signs and magnitudes compare across filters (white: 0, red: positive, blue:
    negative)."""
    plt = _pyplot("plot_filters")
    w = _array(getattr(weight, "weight", weight))
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a conv weight (out, in, kh, kw), got shape "
                         f"{w.shape}")
    kernels = w.reshape(-1, *w.shape[2:]).astype(np.float64)
    lim = float(np.abs(kernels).max()) or 1.0
    labels = [f"{o}" if w.shape[1] == 1 else f"{o}/{c}"
              for o in range(w.shape[0]) for c in range(w.shape[1])]
    fig, im = _show_tiles(plt, _tile(kernels, ncols), labels, kernels.shape[1:], ncols, cmap,
                          title, -lim, lim)
    fig.colorbar(im, ax=fig.axes[0], fraction=0.03)
    return _save(fig, path, plt)


# -- saliency -----------------------------------------------------------------------------------

def input_gradient(model, x, target=None) -> Tuple[np.ndarray, np.ndarray]:
    """``(d S_c / d x, c)``: the gradient of each sample's class score ``S_c`` (the model's
    output before softmax) with respect to its input, and the classes ``c`` used -- ``target``
    (an int or one per sample) or, by default, the predicted class. Eval mode; the model's mode
    and its parameters' gradients are left as they were."""
    from pydl.autograd import grad as _grad
    from pydl.autograd import grad_mode

    arr = _array(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    xt = Tensor(np.array(arr, copy=True), requires_grad=True)
    was_training = model.training
    model.eval()
    try:
        with grad_mode.enable_grad():
            scores = model(xt)
            if scores.ndim != 2 or scores.shape[0] != arr.shape[0]:
                raise ValueError(f"input_gradient: the model's output must be class scores (N, "
                                 f"C) for N = {arr.shape[0]} inputs, got {tuple(scores.shape)}")
            n, c = scores.shape
            if target is None:
                cls = _array(scores).argmax(axis=1)
            else:
                cls = np.broadcast_to(np.asarray(target, dtype=np.int64), (n,)).copy()
                if cls.size and (cls.min() < 0 or cls.max() >= c):
                    raise ValueError(f"input_gradient: target classes must lie in [0, {c}), "
                                     f"got {sorted(set(cls.tolist()))}")
            # sum_i S_{c_i}(x_i): sample i's score depends on x_i only, so one backward pass
            # gives every sample's own gradient.
            onehot = np.zeros((n, c), dtype=_array(scores).dtype)
            onehot[np.arange(n), cls] = 1
            total = (scores * Tensor(onehot)).sum()
            (g,) = _grad(total, [xt])
    finally:
        model.train(was_training)
    return _array(g), cls


def saliency(model, x, target=None) -> np.ndarray:
    """Saliency maps ``(N, H, W)``: ``max over channels |d S_c / d x|`` (Simonyan, Vedaldi and
    Zisserman, 2014) for inputs ``(N, C, H, W)``; for other input shapes, ``|d S_c / d x|`` in
    the input's shape. ``target`` as in ``input_gradient``."""
    g, _ = input_gradient(model, x, target)
    a = np.abs(g)
    return a.max(axis=1) if a.ndim == 4 else a


def plot_saliency(images, maps, path: str, labels: Optional[Sequence[str]] = None,
                  cmap: str = "hot") -> str:
    """Each image (top row) over its saliency map (bottom row)."""
    plt = _pyplot("plot_saliency")
    imgs, maps = _array(images), _array(maps)
    if imgs.ndim == 4:
        imgs = imgs[:, 0] if imgs.shape[1] == 1 else imgs.transpose(0, 2, 3, 1)
    n = len(imgs)
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.2), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(imgs[i], cmap="gray")
        axes[1, i].imshow(maps[i], cmap=cmap)
        if labels is not None:
            axes[0, i].set_title(str(labels[i]), fontsize=8)
        for ax in axes[:, i]:
            ax.axis("off")
    return _save(fig, path, plt)


# -- histograms over training ---------------------------------------------------------------------

class HistogramLogger:
    """A ``pydl.train.fit`` callback: at the end of every epoch, a histogram of each layer's
    weights and of their gradients (``fit`` leaves the last batch's gradient in ``p.grad``).

    Histograms use ``bins`` equal bins over each tensor's own range that epoch
    (``numpy.histogram``); ``records[name]`` is a list, one entry per epoch, of dicts with
    ``epoch``, ``weight`` and ``grad`` (each ``(counts, edges)`` or None), ``grad_log10`` (the
    histogram of ``log10 |g|`` over the non-zero gradients, on fixed bins over ``log10_range``,
    the same every epoch, so that the magnitudes compare across training) and the summary
    numbers ``weight_mean``, ``weight_std``, ``grad_norm``. ``names`` picks the parameters
    (default: every one whose name does not end in ``bias``). ``plot_histograms`` draws them.

    Example::

        logger = HistogramLogger()
        fit(model, loss_fn, opt, loader, epochs=5, callbacks=[logger])
        plot_histograms(logger, "runs/histograms.png")
    """

    def __init__(self, bins: int = 30, names: Optional[Sequence[str]] = None,
                 include_bias: bool = False, log10_range: Tuple[float, float] = (-9.0, 1.0)):
        if not isinstance(bins, int) or bins < 1:
            raise ValueError(f"HistogramLogger: bins must be a positive int, got {bins!r}")
        self.bins = bins
        self.names = list(names) if names is not None else None
        self.include_bias = include_bias
        self.log10_range = (float(log10_range[0]), float(log10_range[1]))
        self.records: Dict[str, List[dict]] = {}

    def _selected(self, model):
        params = dict(model.named_parameters())
        if self.names is not None:
            unknown = [n for n in self.names if n not in params]
            if unknown:
                raise ValueError(f"HistogramLogger: no parameters named {unknown}; the model "
                                 f"has {list(params)}")
            return [(n, params[n]) for n in self.names]
        return [(n, p) for n, p in params.items()
                if self.include_bias or n.rsplit(".", 1)[-1] != "bias"]

    def record(self, epoch: int, model) -> None:
        """Record one histogram per selected parameter (and its gradient, when it has one)."""
        for name, p in self._selected(model):
            w = _array(p).astype(np.float64).ravel()
            g = None if p.grad is None else _array(p.grad).astype(np.float64).ravel()
            self.records.setdefault(name, []).append({
                "epoch": int(epoch),
                "weight": np.histogram(w, bins=self.bins) if w.size else None,
                "grad": np.histogram(g, bins=self.bins) if g is not None and g.size else None,
                "grad_log10": None if g is None else np.histogram(
                    np.log10(np.abs(g[g != 0])), bins=self.bins, range=self.log10_range),
                "weight_mean": float(w.mean()) if w.size else float("nan"),
                "weight_std": float(w.std()) if w.size else float("nan"),
                "grad_norm": float(np.linalg.norm(g)) if g is not None else float("nan"),
            })

    def on_epoch_end(self, epoch: int, logs, model) -> bool:
        self.record(epoch, model)
        return False

    def state_dict(self) -> dict:
        return {"bins": self.bins, "records": self.records}


def plot_histograms(logger: HistogramLogger, path: str, title: Optional[str] = None) -> str:
    """One row per layer: the density of its weights (left) and the histogram of its gradients'
    magnitudes, ``log10 |g|`` (right), one line per epoch, coloured from dark (first epoch) to
    light (last)."""
    plt = _pyplot("plot_histograms")
    if not logger.records:
        raise ValueError("plot_histograms: the logger has recorded nothing (was it passed to "
                         "fit's callbacks?)")
    names = list(logger.records)
    fig, axes = plt.subplots(len(names), 2, figsize=(9, 2.0 * len(names) + 0.5), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for row, name in enumerate(names):
        recs = logger.records[name]
        for col, key in enumerate(("weight", "grad_log10")):
            ax = axes[row, col]
            for k, rec in enumerate(recs):
                if rec[key] is None:
                    continue
                counts, edges = rec[key]
                centres = 0.5 * (edges[1:] + edges[:-1])
                if key == "weight":
                    # densities: each epoch's bins span that epoch's range, so raw counts of
                    # different epochs would not compare
                    counts = counts / max(1, counts.sum()) / np.maximum(np.diff(edges), 1e-300)
                ax.plot(centres, counts, color=cmap(k / max(1, len(recs) - 1)), linewidth=1,
                        label=f"epoch {rec['epoch'] + 1}" if k in (0, len(recs) - 1) else None)
            ax.set_title(f"{name}: " + ("weights (density)" if key == "weight" else
                                        "gradients, count per log10 |g|"), fontsize=9)
            ax.tick_params(labelsize=7)
            if row == 0 and col == 0:
                ax.legend(fontsize=7)
    fig.suptitle(title or "weights and gradient magnitudes per epoch (last batch's gradient)")
    fig.tight_layout()
    return _save(fig, path, plt)


# -- image grids ----------------------------------------------------------------------------------

def make_grid(images, nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range: Optional[Tuple[float, float]] = None, scale_each: bool = False,
              pad_value: float = 0.0) -> Tensor:
    """torchvision.utils.make_grid: images ``(N, C, H, W)`` (or ``(N, H, W)``) tiled ``nrow``
    to a row with ``padding`` pixels of ``pad_value`` around each, as one ``(3, H', W')`` Tensor
    (one-channel images are repeated to three channels, as torchvision does). ``normalize``
    rescales to [0, 1] by ``value_range`` (default: the min and max of all images, or of each
    with ``scale_each``)."""
    x = _array(images)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"make_grid: expected images (N, C, H, W) or (N, H, W), got shape "
                         f"{x.shape}")
    x = x.astype(np.float32 if x.dtype.kind != "f" else x.dtype, copy=True)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    if normalize:
        def norm(a, lo, hi):
            np.clip(a, lo, hi, out=a)
            a -= lo
            a /= max(hi - lo, 1e-5)

        if scale_each:
            for a in x:
                lo, hi = value_range if value_range is not None else (a.min(), a.max())
                norm(a, float(lo), float(hi))
        else:
            lo, hi = value_range if value_range is not None else (x.min(), x.max())
            norm(x, float(lo), float(hi))
    n, c, h, w = x.shape
    if n == 1:
        return Tensor(x[0])
    xmaps = min(nrow, n)
    ymaps = -(-n // xmaps)
    H, W = h + padding, w + padding
    grid = np.full((c, H * ymaps + padding, W * xmaps + padding), pad_value, dtype=x.dtype)
    for k in range(n):
        yy, xx = divmod(k, xmaps)
        grid[:, yy * H + padding:yy * H + padding + h, xx * W + padding:xx * W + padding + w] = x[k]
    return Tensor(grid)


def save_image_grid(images, path: str, nrow: int = 8, padding: int = 2,
                    normalize: bool = True, value_range: Optional[Tuple[float, float]] = None,
                    title: Optional[str] = None, cmap: str = "gray",
                    row_labels: Optional[Sequence[str]] = None) -> str:
    """Tile images (``(N, C, H, W)`` or ``(N, H, W)``) ``nrow`` to a row (``make_grid``) and
    save the picture to ``path`` (any matplotlib format). ``row_labels`` names each row of
    tiles at its left. Returns ``path``."""
    plt = _pyplot("save_image_grid")
    grid = make_grid(images, nrow=nrow, padding=padding, normalize=normalize,
                     value_range=value_range, pad_value=1.0 if normalize else 0.0).numpy()
    x = _array(images)
    gray = x.ndim == 3 or (x.ndim == 4 and x.shape[1] == 1)
    picture = grid[0] if gray else np.clip(grid.transpose(1, 2, 0), 0, 1)
    height, width = picture.shape[:2]
    # about 0.08 inch per pixel (an 8x8 digit ~ 0.6 inch), within 3..14 inches across
    fig_w = float(np.clip(width * 0.08, 3.0, 14.0))
    fig_h = fig_w * height / width
    fig, ax = plt.subplots(figsize=(fig_w + (1.2 if row_labels is not None else 0.2),
                                    fig_h + (0.6 if title else 0.2)))
    ax.imshow(picture, cmap=cmap if gray else None, vmin=0 if normalize else None,
              vmax=1 if normalize else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if row_labels is not None:
        h = x.shape[-2] + padding
        ax.set_yticks([padding + h * i + (h - padding) / 2 for i in range(len(row_labels))])
        ax.set_yticklabels(list(row_labels), fontsize=9)
        ax.tick_params(left=False)
    if title:
        ax.set_title(title)
    return _save(fig, path, plt)


def reconstruction_grid(originals, reconstructions, path: str, n: int = 10,
                        title: Optional[str] = None, image_shape: Optional[Tuple] = None,
                        extra_rows: Optional[Dict[str, object]] = None,
                        labels: Tuple[str, str] = ("input", "reconstruction")) -> str:
    """The first ``n`` inputs (top row) over their reconstructions (second row), and any
    ``extra_rows`` (label -> images, e.g. a noisy input or another model's reconstruction) below;
    flat vectors are reshaped to ``image_shape`` (default: square). All rows share one grey
    scale, the originals' range; ``labels`` names the first two rows. Returns ``path``."""
    rows = {labels[0]: originals, labels[1]: reconstructions}
    rows.update(extra_rows or {})
    arrays = []
    for label, imgs in rows.items():
        a = _array(imgs)[:n]
        if a.ndim == 2:  # (N, D) vectors
            shape = image_shape
            if shape is None:
                side = int(round(np.sqrt(a.shape[1])))
                if side * side != a.shape[1]:
                    raise ValueError(f"reconstruction_grid: {label} rows have {a.shape[1]} "
                                     "values, not a square image; pass image_shape")
                shape = (side, side)
            a = a.reshape(len(a), *shape)
        if a.ndim == 4 and a.shape[1] == 1:
            a = a[:, 0]
        arrays.append(a)
    count = min(len(a) for a in arrays)
    if count == 0:
        raise ValueError("reconstruction_grid: no images")
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"reconstruction_grid: the rows' images differ in shape: {shapes}")
    stacked = np.concatenate([a[:count] for a in arrays])
    lo, hi = float(arrays[0][:count].min()), float(arrays[0][:count].max())
    return save_image_grid(stacked, path, nrow=count, normalize=True, value_range=(lo, hi),
                           title=title, row_labels=list(rows))
