"""The backward pass: one iterative walk of the graph in reverse topological order.

Nodes are ``Function`` instances; ``node.parents[i]`` says where the gradient for forward
argument i goes: ``(node, output_index)`` for a computed tensor, ``(leaf_tensor, 0)`` for a leaf,
None when that argument needs no gradient. The walk first counts, for every node reachable from
the roots, how many edges lead into it; a node runs its backward once all of them have delivered
(Kahn's algorithm). No recursion, so a chain of any length works.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from pydl import _C
from pydl.autograd.function import Function


def _accumulate_leaf(leaf, g, owned: set) -> None:
    from pydl.tensor import Tensor

    if leaf._hooks:
        for hook in leaf._hooks:
            r = hook(Tensor._wrap(g))
            if r is not None:
                g = r.data if isinstance(r, Tensor) else np.asarray(r)
    if g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if g.shape != leaf.data.shape:
        g = np.broadcast_to(g, leaf.data.shape)
    if leaf.grad is None:
        # The engine may hand the same array to several leaves (an add's two inputs) or it may be
        # a read-only broadcast view: copy unless this array is known to be ours alone (its own
        # memory, or a cached host block that only it uses: see pydl.memory).
        if id(g) in owned or not g.flags.writeable or not (g.flags.owndata
                                                           or _C.owns_host_block(g)):
            g = g.copy()
        owned.add(id(g))
        leaf.grad = Tensor._wrap(g)
    elif leaf.grad.data.flags.writeable and leaf.grad.data.shape == g.shape:
        np.add(leaf.grad.data, g, out=leaf.grad.data)
    else:
        leaf.grad.data = leaf.grad.data + g


def run_backward(roots: Sequence, grads: Sequence[np.ndarray], retain_graph: bool = False) -> None:
    """Backpropagate ``grads`` (one per root tensor) to every leaf that requires grad."""
    owned: set = set()
    pending: Dict[Function, List[Optional[np.ndarray]]] = {}
    start_nodes = []
    for t, g in zip(roots, grads):
        if t.grad_fn is None:
            _accumulate_leaf(t, g.copy(), owned)
            continue
        node = t.grad_fn
        slot = pending.get(node)
        if slot is None:
            slot = pending[node] = [None] * node.n_outputs
            start_nodes.append(node)
        i = t._out_index
        slot[i] = g if slot[i] is None else slot[i] + g

    # Count incoming edges of every reachable node.
    deps: Dict[Function, int] = {}
    seen = set(start_nodes)
    stack = list(start_nodes)
    while stack:
        node = stack.pop()
        for p in node.parents:
            if p is None:
                continue
            parent = p[0]
            if isinstance(parent, Function):
                deps[parent] = deps.get(parent, 0) + 1
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)

    ready = [n for n in start_nodes if deps.get(n, 0) == 0]
    while ready:
        node = ready.pop()
        gouts = pending.pop(node)
        for i, g in enumerate(gouts):
            if g is None:
                shape, dtype = node._out_meta[i]
                gouts[i] = np.zeros(shape, dtype=dtype)
        if node._hooks:
            from pydl.tensor import Tensor

            for i, hooks in node._hooks.items():
                for hook in hooks:
                    r = hook(Tensor._wrap(gouts[i]))
                    if r is not None:
                        gouts[i] = r.data if isinstance(r, Tensor) else np.asarray(r)
        gins = node.backward(*gouts)
        if type(gins) is not tuple:
            gins = (gins,)
        if not retain_graph:
            node.release()
        if len(gins) < len(node.parents):
            raise RuntimeError(
                f"{node.name()}.backward returned {len(gins)} gradients for "
                f"{len(node.parents)} inputs")
        for p, g in zip(node.parents, gins):
            if p is None:
                continue
            if isinstance(g, np.generic):  # NumPy reductions to 0-d give scalars
                g = np.asarray(g)
            parent, idx = p
            if isinstance(parent, Function):
                if g is not None:
                    slot = pending.get(parent)
                    if slot is None:
                        slot = pending[parent] = [None] * parent.n_outputs
                    slot[idx] = g if slot[idx] is None else slot[idx] + g
                deps[parent] -= 1
                if deps[parent] == 0:
                    if parent in pending:
                        ready.append(parent)
                    else:
                        # Nothing flowed into this node: its subgraph gets no gradient, but the
                        # edges it owes must still be released.
                        _skip(parent, deps, pending, ready, retain_graph)
            elif g is not None:
                _accumulate_leaf(parent, g, owned)


def _skip(node, deps, pending, ready, retain_graph) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if not retain_graph:
            n.release()
        for p in n.parents:
            if p is None or not isinstance(p[0], Function):
                continue
            parent = p[0]
            deps[parent] -= 1
            if deps[parent] == 0:
                if parent in pending:
                    ready.append(parent)
                else:
                    stack.append(parent)
