"""``einsum``: Einstein summation over any equation NumPy's einsum accepts (torch.einsum).

``einsum("bij,bjk->bik", a, b)`` sums the product of its operands over every letter that is
not in the output. Implicit output (no ``->``): the letters that appear once, in alphabetical
order, after the ellipsis dims. ``...`` stands for broadcast dims (right-aligned, size 1
stretches); a letter repeated in one operand takes its diagonal (``"ii->i"``).

Gradient (the textbook rule for multilinear maps): d operand_k is the einsum of the output
gradient with every other operand, giving operand k's letters. A letter of operand k that no
other operand and not the output has was summed out of k alone, so its gradient is broadcast
along it; a letter repeated in operand k puts its gradient on that diagonal (``DiagEmbed``, whose
gradient takes the diagonal again). Both are ops, so einsum differentiates to any order.

Two-operand contractions that are GEMMs (no repeated letter in an operand) run through pydl's
matmul kernel: batch letters, then the free letters of each side, then the contracted ones,
reshaped to one batched matrix product.
"""
from __future__ import annotations

import string

import numpy as np

from pydl.autograd.function import Function
from pydl.device import array_module
from pydl.ops.shape import Expand, Reshape
from pydl.tensor import Tensor

_LETTERS = string.ascii_letters


def _parse(equation: str, shapes):
    """(input subscripts, output subscripts): letters only, ellipsis replaced by fresh letters;
    the size of each letter; which operand dims must be broadcast (size 1 to the full size)."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a string, got "
                        f"{type(equation).__name__}")
    eq = equation.replace(" ", "")
    if "->" in eq:
        lhs, out = eq.split("->", 1)
        if "->" in out:
            raise ValueError(f"einsum(): more than one '->' in equation {equation!r}")
        explicit = True
    else:
        lhs, out, explicit = eq, "", False
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum(): the equation {equation!r} has {len(terms)} operand(s) but "
                         f"{len(shapes)} were given")
    for t in terms + [out]:
        rest = t.replace("...", "")
        bad = [c for c in rest if c not in _LETTERS]
        if bad or t.count("...") > 1:
            raise ValueError(f"einsum(): invalid subscript {bad[0] if bad else '...'!r} in "
                             f"equation {equation!r}: subscripts are letters [a-zA-Z] and at "
                             f"most one '...' per operand")
    used = set(c for c in eq if c in _LETTERS)
    free = [c for c in _LETTERS if c not in used]
    # How many dims each ellipsis covers.
    ell_dims = 0
    for t, shape in zip(terms, shapes):
        named = len(t.replace("...", ""))
        if "..." in t:
            if len(shape) < named:
                raise ValueError(f"einsum(): operand of shape {tuple(shape)} has fewer dims "
                                 f"than the {named} subscripts of {t!r}")
            ell_dims = max(ell_dims, len(shape) - named)
        elif len(shape) != named:
            raise ValueError(f"einsum(): operand subscripts {t!r} name {named} dims but the "
                             f"operand has shape {tuple(shape)} ({len(shape)} dims)")
    if ell_dims > len(free):
        raise ValueError("einsum(): too many dims under '...' for the letters left")
    ell = "".join(free[:ell_dims])
    ins = []
    for t, shape in zip(terms, shapes):
        if "..." in t:
            k = len(shape) - len(t.replace("...", ""))
            t = t.replace("...", ell[ell_dims - k:])
        ins.append(t)
    if explicit:
        out = out.replace("...", ell)  # an output without '...' sums the ellipsis dims
        for c in out:
            if out.count(c) > 1:
                raise ValueError(f"einsum(): output subscript {c!r} appears more than once in "
                                 f"{equation!r}")
            if not any(c in t for t in ins):
                raise ValueError(f"einsum(): output subscript {c!r} does not appear in the "
                                 f"operands of {equation!r}")
    else:
        counts = {}
        for t in ins:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    sizes = {}
    for t, shape in zip(ins, shapes):
        for c, n in zip(t, shape):
            m = sizes.get(c)
            if m is None or m == 1:
                sizes[c] = n
            elif n != m and n != 1:
                raise ValueError(f"einsum(): subscript {c!r} has size {n} in one operand and "
                                 f"{m} in another (shapes {[tuple(s) for s in shapes]}, "
                                 f"equation {equation!r})")
    for t, shape in zip(ins, shapes):
        for c, n in zip(t, shape):
            if n != sizes[c] and c not in ell:
                raise ValueError(f"einsum(): subscript {c!r} has size {n} in one operand and "
                                 f"{sizes[c]} in another (shapes {[tuple(s) for s in shapes]}, "
                                 f"equation {equation!r})")
    return ins, out, sizes


def _gemm_plan(sa: str, sb: str, so: str):
    """Letter groups of a two-operand contraction that is a batched GEMM, or None."""
    if len(set(sa)) != len(sa) or len(set(sb)) != len(sb):
        return None
    batch = [c for c in so if c in sa and c in sb]
    m = [c for c in so if c in sa and c not in sb]
    n = [c for c in so if c in sb and c not in sa]
    k = [c for c in sa if c in sb and c not in so]
    a_only = [c for c in sa if c not in sb and c not in so]
    b_only = [c for c in sb if c not in sa and c not in so]
    return batch, m, n, k, a_only, b_only


def _contract2(a, b, sa, sb, so, sizes):
    """Two arrays contracted as a batched GEMM (pydl's matmul kernel); None if not a GEMM."""
    from pydl.ops.matmul import matmul_kernel

    plan = _gemm_plan(sa, sb, so)
    if plan is None:
        return None
    batch, m, n, k, a_only, b_only = plan
    xp = array_module(a)
    if a_only:
        a = a.sum(axis=tuple(sa.index(c) for c in a_only))
        sa = "".join(c for c in sa if c not in a_only)
    if b_only:
        b = b.sum(axis=tuple(sb.index(c) for c in b_only))
        sb = "".join(c for c in sb if c not in b_only)

    def prod(letters):
        p = 1
        for c in letters:
            p *= sizes[c]
        return p

    a = xp.transpose(a, [sa.index(c) for c in batch + m + k])
    b = xp.transpose(b, [sb.index(c) for c in batch + k + n])
    a = a.reshape(prod(batch), prod(m), prod(k))
    b = b.reshape(prod(batch), prod(k), prod(n))
    if a.dtype != b.dtype:
        dtype = np.result_type(a.dtype, b.dtype)
        a, b = a.astype(dtype), b.astype(dtype)
    c = matmul_kernel(a, b)
    c = c.reshape([sizes[x] for x in batch + m + n])
    order = batch + m + n
    c = xp.transpose(c, [order.index(x) for x in so])
    return c if c.flags.c_contiguous else c.copy()  # (ascontiguousarray makes 0-d 1-d)


def _einsum_arrays(ins, out, sizes, arrays):
    if len(arrays) == 2:
        c = _contract2(arrays[0], arrays[1], ins[0], ins[1], out, sizes)
        if c is not None:
            return c
    xp = array_module(arrays[0])
    eq = ",".join(ins) + "->" + out
    res = xp.einsum(eq, *arrays, optimize=len(arrays) > 2)
    return xp.asarray(res)


class Einsum(Function):
    """out = einsum(ins -> out) of the operands, every operand's dims already the letters'
    full sizes. Saves the operands (the gradient of each is an einsum of the others)."""

    def forward(self, spec, *arrays):
        ins, out, sizes = spec
        self.spec = spec
        self.save_for_backward(*arrays)
        return _einsum_arrays(ins, out, sizes, arrays)

    def backward(self, g):
        ins, out, sizes = self.spec
        xs = self.saved_tensors
        grads = [None]
        for k, sk in enumerate(ins):
            if not self.needs_input_grad[k + 1]:
                grads.append(None)
                continue
            others = [(x, s) for j, (x, s) in enumerate(zip(xs, ins)) if j != k]
            unique = "".join(dict.fromkeys(sk))
            present = "".join(c for c in unique if c in out or any(c in s for _, s in others))
            spec = ((out,) + tuple(s for _, s in others), present, sizes)
            gk = Einsum.call(spec, g, *(x for x, _ in others))
            if present != unique:
                # Letters summed out of operand k alone: their gradient is broadcast.
                shape = tuple(sizes[c] if c in present else 1 for c in unique)
                gk = Reshape.call(gk, shape, False)
                gk = Expand.call(gk, tuple(sizes[c] for c in unique))
            if unique != sk:
                gk = DiagEmbed.call(gk, unique, sk, sizes)
            grads.append(gk)
        return tuple(grads)


class DiagEmbed(Function):
    """Zeros of the shape of subscripts ``target`` (a letter repeated: a diagonal) with ``g``
    (subscripts ``unique``) written on that diagonal: the gradient of taking a diagonal. Its
    own gradient takes the diagonal again."""

    def forward(self, g, unique, target, sizes):
        self.meta = (unique, target, sizes)
        xp = array_module(g)
        out = xp.zeros(tuple(sizes[c] for c in target), dtype=g.dtype)
        n = len(unique)
        key = tuple(xp.arange(sizes[c]).reshape([-1 if q == unique.index(c) else 1
                                                 for q in range(n)]) for c in target)
        out[key] = g
        return out

    def backward(self, gg):
        unique, target, sizes = self.meta
        return Einsum.call(((target,), unique, sizes), gg), None, None, None


def einsum(equation: str, *operands):
    """Einstein summation (torch.einsum): ``einsum("ij,jk->ik", a, b)`` is ``a @ b``;
    ``einsum("ii", a)`` the trace; ``einsum("...ij->...ji", a)`` a batched transpose. Operands
    may be given as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    ops = []
    for x in operands:
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum(): operands must be Tensors, got {type(x).__name__}")
        ops.append(x)
    ins, out, sizes = _parse(equation, [x.shape for x in ops])
    if len({x.dtype for x in ops}) > 1:
        raise RuntimeError(f"einsum(): expected all operands to have the same dtype, got "
                           f"{[str(x.dtype) for x in ops]}")
    # Size-1 dims under '...' stretch to the full size (a broadcast, summed back by Expand's
    # gradient).
    for i, (x, s) in enumerate(zip(ops, ins)):
        full = tuple(sizes[c] for c in s)
        if x.shape != full:
            ops[i] = Expand.apply(x, full)
    return Einsum.apply((tuple(ins), out, sizes), *ops)
