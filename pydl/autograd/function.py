"""The one base class every differentiable op derives from.

An op is a subclass with ``forward`` and ``backward`` side by side (micrograd's idea, Chainer's
FunctionNode shape)::

    class Exp(Function):
        def forward(self, x):            # Tensor arguments arrive as raw ndarrays
            y = np.exp(x)
            self.save_for_backward(y)    # NB: save the output, not x: backward needs only e^x
            return y
        def backward(self, gy):          # one gradient ndarray per output
            y, = self.saved_tensors
            return gy * y                # one entry per forward argument (None: no gradient)

    Exp.apply(t)  ->  Tensor

``apply`` unwraps Tensors, runs ``forward``, wraps the results and, when grad mode is on and an
input requires grad, makes the instance the outputs' ``grad_fn``: a node of the graph whose
``parents`` name, per argument, where the gradient goes (another node, or a leaf Tensor).
"""
from __future__ import annotations

import numpy as np

from pydl.autograd import grad_mode


class Function:
    # Class-level defaults: a node sets only what differs, which keeps apply() cheap.
    _saved: tuple = ()
    _saved_versions: tuple = ()
    _freed = False
    _non_diff = None
    _hooks = None
    needs_input_grad: tuple = ()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} defines no forward")

    def backward(self, *grad_outputs):
        raise NotImplementedError(f"{type(self).__name__} defines no backward")

    # -- what forward keeps for backward -------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        """Keep arrays for backward. Versions of the tensors they belong to are recorded so that
        an in-place change before backward is caught instead of giving a wrong gradient."""
        self._saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        if self._freed:
            raise RuntimeError(
                f"Trying to backward through the graph a second time (or to read the saved "
                f"tensors of {type(self).__name__} after backward freed them). Pass "
                f"retain_graph=True to the first backward() if you need to backward twice.")
        for tensor, version in self._saved_versions:
            if tensor._vc[0] != version:
                raise RuntimeError(
                    f"one of the tensors needed for gradient computation has been modified by an "
                    f"in-place operation: a tensor of shape {tuple(tensor.shape)} saved by "
                    f"{type(self).__name__} is at version {tensor._vc[0]}, expected version "
                    f"{version}. Modify a clone() instead, or do the in-place change after "
                    f"backward.")
        return self._saved

    def mark_non_differentiable(self, *arrays) -> None:
        """Outputs (such as argmax indices) that never carry a gradient."""
        self._non_diff = {id(a) for a in arrays}

    def release(self) -> None:
        """Free what backward needed (called after backward unless retain_graph=True)."""
        if self._saved:
            self._saved = ()
            self._freed = True

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"

    def register_hook(self, out_index: int, hook) -> None:
        if self._hooks is None:
            self._hooks = {}
        self._hooks.setdefault(out_index, []).append(hook)

    # -- running an op ---------------------------------------------------------------------------
    @classmethod
    def apply(cls, *args, **kwargs):
        node = cls.__new__(cls)
        raw = []
        inputs = []
        requires = False
        for a in args:
            if isinstance(a, Tensor):
                raw.append(a.data)
                inputs.append(a)
                if a.requires_grad:
                    requires = True
            else:
                raw.append(a)
                inputs.append(None)
        _check_one_device(cls.__name__, inputs)
        record = requires and grad_mode._enabled
        if record:
            needs, parents = [], []
            for t in inputs:
                if t is None or not t.requires_grad:
                    needs.append(False)
                    parents.append(None)
                else:
                    needs.append(True)
                    fn = t.grad_fn
                    parents.append((fn, t._out_index) if fn is not None else (t, 0))
            node.needs_input_grad = tuple(needs)
            node.parents = tuple(parents)
        out = node.forward(*raw, **kwargs)
        # NumPy hands back scalars (np.float32) for full reductions; tensors hold arrays.
        multi = type(out) is tuple
        if multi:
            out = tuple(np.asarray(o) if isinstance(o, np.generic) else o for o in out)
        elif isinstance(out, np.generic):
            out = np.asarray(out)

        if not record:
            if multi:
                return tuple(Tensor._wrap(o) for o in out)
            result = Tensor._wrap(out)
            if getattr(node, "is_view", False):
                _share_version(result, inputs)
            return result

        outs = out if multi else (out,)
        node.n_outputs = len(outs)
        node._out_meta = tuple((o.shape, o.dtype) for o in outs) if multi else \
            ((out.shape, out.dtype),)
        non_diff = node._non_diff
        results = []
        for i, o in enumerate(outs):
            if (non_diff is not None and id(o) in non_diff) or o.dtype.kind not in "fc":
                results.append(Tensor._wrap(o))
            else:
                results.append(Tensor._wrap(o, node, i))
        if getattr(node, "is_view", False):
            _share_version(results[0], inputs)
        if node._saved:
            versions = []
            for arr in node._saved:
                for t in inputs:
                    if t is not None and t.data is arr:
                        versions.append((t, t._vc[0]))
                        break
                else:
                    for t in results:
                        if t.data is arr:
                            versions.append((t, t._vc[0]))
                            break
            node._saved_versions = tuple(versions)
        return tuple(results) if multi else results[0]


# pydl.tensor imports this package, so it fills this name in when it loads (an import here
# would be circular); apply() only runs after both modules exist.
Tensor = None


def _share_version(result, inputs) -> None:
    """A view shares its base's version counter, so writes through either are seen by both."""
    base = next(t for t in inputs if t is not None)
    if np.may_share_memory(result.data, base.data):
        result._vc = base._vc


def _check_one_device(op: str, inputs) -> None:
    """Tensors of one op must live on one device (NumPy and CuPy arrays never mix)."""
    first = None
    for t in inputs:
        if t is None:
            continue
        if first is None:
            first = t
        elif type(t.data) is not type(first.data):
            raise RuntimeError(f"{op}: expected all tensors to be on the same device, but found "
                               f"at least two devices, {first.device} and {t.device}")
