"""The backward pass: one iterative walk of the graph in reverse topological order.

Nodes are ``Function`` instances; ``node.parents[i]`` says where the gradient for forward
argument i goes: ``(node, output_index)`` for a computed tensor, ``(leaf_tensor, 0)`` for a leaf,
None when that argument needs no gradient. The walk first counts, for every node reachable from
the roots, how many edges lead into it; a node runs its backward once all of them have delivered
(Kahn's algorithm). No recursion, so a chain of any length works.

Two modes, one walk:

* first order: gradients are raw arrays, formulas run under no_grad, nothing is recorded;
* ``create_graph``: gradients are Tensors and formulas run with grad mode on and saved tensors
  wired into the graph (see ``Function``), so the gradients carry a graph of their own.

``capture`` (for ``autograd.grad``) names tensors whose gradient is returned instead of being
accumulated into ``.grad``; only the part of the graph that leads to them runs.
"""
from __future__ import annotations

import weakref
from typing import Dict, List, Optional, Sequence

import numpy as np

from pydl import _C
from pydl.autograd import function as _function
from pydl.autograd import grad_mode
from pydl.autograd.function import Function

# Tensor is read from pydl.autograd.function, which pydl.tensor fills in when it loads: an
# import statement inside a function costs a few microseconds per call on Python 3.11 (it looks
# for the module's __path__ and formats the AttributeError), a hot path's whole budget.
_ndarray, _generic = np.ndarray, np.generic


# Tensor.register_post_accumulate_grad_hook: leaf -> hooks, called as hook(leaf) once per backward
# after the leaf's .grad has received every gradient that backward sends it (data-parallel
# training starts a bucket's all-reduce from there). Kept outside Tensor so that leaves without
# such hooks cost nothing; keyed by id (Tensor's == is elementwise), the entry dropped when the
# leaf dies.
post_accumulate_hooks: Dict[int, list] = {}


def add_post_accumulate_hook(leaf, hook) -> list:
    hooks = post_accumulate_hooks.get(id(leaf))
    if hooks is None:
        hooks = post_accumulate_hooks[id(leaf)] = []
        weakref.finalize(leaf, post_accumulate_hooks.pop, id(leaf), None)
    hooks.append(hook)
    return hooks


def _as_array(r):
    return r._data if isinstance(r, _function.Tensor) else np.asarray(r)


def _add(a, b):
    """Two gradients for one place (arrays, or Tensors under create_graph). NumPy returns a
    scalar for 0-d + 0-d; gradients stay arrays."""
    r = a + b
    return np.asarray(r) if isinstance(r, np.generic) else r


def _accumulate_leaf(leaf, g, owned: set, create_graph: bool) -> None:
    Tensor = _function.Tensor
    if leaf._hooks:
        for hook in leaf._hooks:
            r = hook(g if create_graph else Tensor._wrap(g))
            if r is not None:
                g = r if create_graph else _as_array(r)
    if create_graph:
        _accumulate_leaf_tensor(leaf, g)
        return
    data = leaf._data
    dtype = data.dtype
    if g.dtype is not dtype and g.dtype != dtype:
        g = g.astype(dtype)
    if g.shape != data.shape:
        g = np.broadcast_to(g, data.shape)
    grad = leaf.grad
    if grad is None:
        # The engine may hand the same array to several leaves (an add's two inputs) or it may be
        # a read-only broadcast view: copy unless this array is known to be ours alone (its own
        # memory, or a cached host block that only it uses: see pydl.memory).
        if id(g) in owned or not g.flags.writeable or not (g.base is None
                                                           or _C.owns_host_block(g)):
            g = g.copy()
        owned.add(id(g))
        leaf.grad = Tensor._wrap(g)
        return
    gd = grad._data
    if grad.grad_fn is None and gd.shape == g.shape:
        try:
            gd += g  # np.add(gd, g, out=gd) without the keyword parsing
            return
        except ValueError:  # a read-only .grad (the user's): a new array, as below
            pass
    # A .grad that carries a graph (from create_graph) is never written in place.
    leaf.grad = Tensor._wrap(gd + g)


def _accumulate_leaf_tensor(leaf, g) -> None:
    """create_graph: .grad becomes (or grows by) a Tensor that carries the graph of its making."""
    from pydl.ops.elementwise import Clone
    from pydl.ops.shape import Expand

    if g.dtype != leaf._data.dtype:
        g = g.to(leaf._data.dtype)
    if g.shape != leaf._data.shape:
        g = Expand.apply(g, leaf._data.shape)
    if leaf.grad is None:
        # .grad is the user's to change in place (zero_()): it must own its memory.
        if not g._data.flags.writeable or not g._data.flags.owndata:
            g = Clone.apply(g)
        leaf.grad = g
    else:
        leaf.grad = leaf.grad + g


def run_backward(roots: Sequence, grads: Sequence, retain_graph: bool = False,
                 create_graph: bool = False, capture: Optional[Sequence] = None,
                 accumulate: bool = True):
    """Backpropagate ``grads`` (one per root tensor: arrays, or Tensors with create_graph) to
    every leaf that requires grad.

    With ``capture`` (a sequence of tensors), returns the gradient reaching each of them (None
    where none does); leaves' ``.grad`` are then left alone unless ``accumulate``.
    """
    # Grad mode on and saved tensors as Tensors under create_graph, both off otherwise. A
    # thread-local attribute costs more to write than to read: only what changes is written.
    state = grad_mode._state
    mode = bool(create_graph)
    prev_enabled, prev_tensors = state.enabled, state.backward_tensors
    if prev_enabled is not mode:
        state.enabled = mode
    if prev_tensors is not mode:
        state.backward_tensors = mode
    try:
        return _run(roots, grads, retain_graph, create_graph, capture, accumulate)
    finally:
        if prev_enabled is not mode:
            state.enabled = prev_enabled
        if prev_tensors is not mode:
            state.backward_tensors = prev_tensors


def _zeros(shape, dtype, create_graph, like):
    from pydl.device import array_module

    xp = np if like is None else array_module(like)
    z = xp.zeros(shape, dtype=dtype)
    return _function.Tensor._wrap(z) if create_graph else z


def _run(roots, grads, retain_graph, create_graph, capture, accumulate):
    Tensor = _function.Tensor
    owned: set = set()
    # Leaves with post-accumulate hooks: id -> [edges still to come, leaf, got a gradient].
    post: Optional[Dict[int, list]] = {} if post_accumulate_hooks and accumulate else None
    pending: Dict[Function, List[Optional[np.ndarray]]] = {}
    start_nodes = []
    leaf_slot: Dict[int, int] = {}
    node_slot: Dict[tuple, int] = {}
    captured: list = []
    if capture is not None:
        captured = [None] * len(capture)
        for k, t in enumerate(capture):
            if t.grad_fn is None:
                leaf_slot[id(t)] = k
            else:
                node_slot[(t.grad_fn, t._out_index)] = k

    # A plain backward() (no capture, no post-accumulate hooks) sends a leaf's gradient straight
    # to its .grad; otherwise _deliver_leaf does the per-leaf bookkeeping.
    plain = capture is None and post is None
    leaves = None if plain else _Leaves(leaf_slot, captured, capture, accumulate, owned,
                                        create_graph, post)

    root_leaves = []
    for t, g in zip(roots, grads):
        if t.grad_fn is None:
            g = g if create_graph else g.copy()
            if plain:
                _accumulate_leaf(t, g, owned, create_graph)
            else:
                _deliver_leaf(leaves, t, g)
            root_leaves.append(t)
            continue
        node = t.grad_fn
        slot = pending.get(node)
        if slot is None:
            slot = pending[node] = [None] * node.n_outputs
            start_nodes.append(node)
        i = t._out_index
        slot[i] = g if slot[i] is None else _add(slot[i], g)

    # Count incoming edges of every reachable node (and keep an order for the pruning below).
    deps: Dict[Function, int] = {}
    stack = list(start_nodes)
    seen = set(stack)
    order = []
    while stack:
        node = stack.pop()
        order.append(node)
        for p in node.parents:
            if p is None:
                continue
            parent = p[0]
            if isinstance(parent, Function):
                deps[parent] = deps.get(parent, 0) + 1
                if parent not in seen:  # start nodes are seen, and may have incoming edges
                    seen.add(parent)
                    stack.append(parent)
            elif post is not None and id(parent) in post_accumulate_hooks:
                _post_count(post, parent)
    if post is not None:
        for t in root_leaves:
            if id(t) in post_accumulate_hooks:
                _post_count(post, t)
                _post_edge_done(post, t)

    useful = None
    if capture is not None and not accumulate:
        useful = _nodes_leading_to(order, deps, leaf_slot, node_slot)

    ready = []
    for n in start_nodes:
        if n not in deps:
            ready.append(n)
    while ready:
        node = ready.pop()
        gouts = pending.pop(node)
        if len(gouts) > 1:
            # Outputs that got no gradient (a single-output node always has one: it is only
            # made pending by a gradient).
            for i, g in enumerate(gouts):
                if g is None:
                    shape, dtype = node._out_meta[i]
                    like = next((x for x in gouts if x is not None), None)
                    gouts[i] = _zeros(shape, dtype, create_graph,
                                      None if like is None else _as_array(like))
        if node._hooks:
            for i, hooks in node._hooks.items():
                for hook in hooks:
                    r = hook(gouts[i] if create_graph else Tensor._wrap(gouts[i]))
                    if r is not None:
                        gouts[i] = r if create_graph else _as_array(r)
        if node_slot:
            for i in range(len(gouts)):
                k = node_slot.get((node, i))
                if k is not None:
                    captured[k] = gouts[i]
        if useful is not None and node not in useful:
            _skip(node, deps, pending, ready, retain_graph, post)  # owes its parents edges
            continue
        gins = node.backward(*gouts)
        if type(gins) is not tuple:
            gins = (gins,)
        if not retain_graph:
            node.release()
        parents = node.parents
        if len(gins) < len(parents):
            raise RuntimeError(
                f"{node.name()}.backward returned {len(gins)} gradients for "
                f"{len(parents)} inputs")
        for p, g in zip(parents, gins):
            if p is None:
                continue
            if g is not None and type(g) is not _ndarray:
                if isinstance(g, _generic):  # NumPy reductions to 0-d give scalars
                    g = np.asarray(g)
                elif create_graph and not isinstance(g, Tensor):
                    g = Tensor._wrap(g)  # a formula that gave a constant (zeros) under create_graph
            elif create_graph and g is not None:
                g = Tensor._wrap(g)
            parent, idx = p
            if isinstance(parent, Function):
                if g is not None:
                    slot = pending.get(parent)
                    if slot is None:
                        slot = pending[parent] = [None] * parent.n_outputs
                    slot[idx] = g if slot[idx] is None else _add(slot[idx], g)
                left = deps[parent] - 1
                deps[parent] = left
                if left == 0:
                    if parent in pending:
                        ready.append(parent)
                    else:
                        # Nothing flowed into this node: its subgraph gets no gradient, but the
                        # edges it owes must still be released.
                        _skip(parent, deps, pending, ready, retain_graph, post)
            elif plain:
                if g is not None:
                    _accumulate_leaf(parent, g, owned, create_graph)
            else:
                if g is not None:
                    _deliver_leaf(leaves, parent, g)
                if post is not None and id(parent) in post:
                    _post_edge_done(post, parent)
    return captured if capture is not None else None


class _Leaves:
    """What delivering a gradient to a leaf needs to know in one backward pass."""

    __slots__ = ("slot", "captured", "capture", "accumulate", "owned", "create_graph", "post")

    def __init__(self, slot, captured, capture, accumulate, owned, create_graph, post):
        self.slot, self.captured, self.capture, self.accumulate = (slot, captured, capture,
                                                                   accumulate)
        self.owned, self.create_graph, self.post = owned, create_graph, post


def _deliver_leaf(leaves: _Leaves, leaf, g) -> None:
    """A gradient for ``leaf``: captured (autograd.grad, backward(inputs=...)), accumulated into
    its .grad, and noted for its post-accumulate hooks."""
    k = leaves.slot.get(id(leaf))
    if k is not None:
        captured = leaves.captured
        captured[k] = g if captured[k] is None else _add(captured[k], g)
        if not leaves.accumulate:
            return
    elif leaves.capture is not None and not leaves.accumulate:
        return
    _accumulate_leaf(leaf, g, leaves.owned, leaves.create_graph)
    if leaves.post is not None:
        entry = leaves.post.get(id(leaf))
        if entry is not None:
            entry[2] = True


def _post_count(post: Dict[int, list], leaf) -> None:
    entry = post.get(id(leaf))
    if entry is None:
        post[id(leaf)] = [1, leaf, False]
    else:
        entry[0] += 1


def _post_edge_done(post: Dict[int, list], leaf) -> None:
    """One edge into ``leaf`` is done; after the last, run its post-accumulate hooks (if a
    gradient arrived at all, as torch runs them only when AccumulateGrad runs)."""
    entry = post[id(leaf)]
    entry[0] -= 1
    if entry[0] == 0 and entry[2]:
        for hook in list(post_accumulate_hooks.get(id(leaf), ())):
            hook(leaf)


def _nodes_leading_to(order, deps, leaf_slot, node_slot) -> set:
    """The nodes whose backward must run for a captured tensor to get its gradient."""
    indeg = dict(deps)
    topo = [n for n in order if indeg.get(n, 0) == 0]  # Kahn order: consumers before producers
    k = 0
    while k < len(topo):
        n = topo[k]
        k += 1
        for p in n.parents:
            if p is not None and isinstance(p[0], Function):
                indeg[p[0]] -= 1
                if indeg[p[0]] == 0:
                    topo.append(p[0])
    target_nodes = {node for node, _ in node_slot}
    reaches, useful = set(), set()
    for n in reversed(topo):  # producers first
        if n in target_nodes:
            reaches.add(n)
        for p in n.parents:
            if p is None:
                continue
            parent = p[0]
            if parent in reaches if isinstance(parent, Function) else id(parent) in leaf_slot:
                useful.add(n)
                reaches.add(n)
                break
    return useful


def _skip(node, deps, pending, ready, retain_graph, post=None) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if not retain_graph:
            n.release()
        for p in n.parents:
            if p is None:
                continue
            if not isinstance(p[0], Function):
                if post is not None and id(p[0]) in post:
                    _post_edge_done(post, p[0])
                continue
            parent = p[0]
            deps[parent] -= 1
            if deps[parent] == 0:
                if parent in pending:
                    ready.append(parent)
                else:
                    stack.append(parent)
