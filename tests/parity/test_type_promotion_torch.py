"""pydl.result_type / promote_types against torch over every pair of pydl's dtypes, 0-d tensors
and Python bool/int/float (issue #20). Skipped where torch is not installed."""
import itertools

import numpy as np
import pytest

import pydl

torch = pytest.importorskip("torch")

DTYPES = {pydl.bool_: torch.bool, pydl.uint8: torch.uint8, np.dtype(np.int8): torch.int8,
          np.dtype(np.int16): torch.int16, pydl.int32: torch.int32, pydl.int64: torch.int64,
          pydl.float16: torch.float16, pydl.float32: torch.float32,
          pydl.float64: torch.float64}
TORCH_TO_PYDL = {v: k for k, v in DTYPES.items()}


def operands():
    """(name, pydl operand, torch operand) for tensors with dims, 0-d tensors, Python numbers."""
    out = []
    for d, td in DTYPES.items():
        out.append((f"{d}[2]", pydl.zeros(2, dtype=d), torch.zeros(2, dtype=td)))
        out.append((f"{d}[]", pydl.zeros((), dtype=d), torch.zeros((), dtype=td)))
    out += [("True", True, True), ("3", 3, 3), ("2.5", 2.5, 2.5)]
    return out


OPS = operands()


@pytest.mark.parametrize("a,b", [(a, b) for a, b in itertools.product(range(len(OPS)), repeat=2)
                                 if not (isinstance(OPS[a][1], (bool, int, float))
                                         and isinstance(OPS[b][1], (bool, int, float)))])
def test_result_type_matches_torch(a, b):
    (na, pa, ta), (nb, pb, tb) = OPS[a], OPS[b]
    assert pydl.result_type(pa, pb) == TORCH_TO_PYDL[torch.result_type(ta, tb)], (na, nb)


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, repeat=2)))
def test_promote_types_matches_torch(a, b):
    assert pydl.promote_types(a, b) == TORCH_TO_PYDL[torch.promote_types(DTYPES[a], DTYPES[b])]


def test_default_dtype_decides_python_floats():
    i = pydl.zeros(2, dtype=pydl.int64)
    assert pydl.result_type(i, 1.5) == pydl.float32
    pydl.set_default_dtype(pydl.float64)
    try:
        assert pydl.get_default_dtype() == pydl.float64
        assert pydl.result_type(i, 1.5) == pydl.float64
    finally:
        pydl.set_default_dtype(pydl.float32)


BINARY = {
    "add": (lambda a, b: pydl.add(a, b), lambda a, b: torch.add(a, b)),
    "sub": (lambda a, b: pydl.sub(a, b), lambda a, b: torch.sub(a, b)),
    "mul": (lambda a, b: pydl.mul(a, b), lambda a, b: torch.mul(a, b)),
    "div": (lambda a, b: pydl.div(a, b), lambda a, b: torch.div(a, b)),
    "maximum": (lambda a, b: pydl.maximum(a, b), lambda a, b: torch.maximum(a, b)),
    "where": (lambda a, b: pydl.where(pydl.tensor(True), a, b),
              lambda a, b: torch.where(torch.tensor(True), a, b)),
}
SMALL = [pydl.bool_, pydl.int32, pydl.int64, pydl.float32, pydl.float64]


def small_operands():
    out = []
    for d in SMALL:
        out.append((f"{d}[2]", pydl.ones(2, dtype=d), torch.ones(2, dtype=DTYPES[d])))
        out.append((f"{d}[]", pydl.ones((), dtype=d), torch.ones((), dtype=DTYPES[d])))
    return out + [("True", True, True), ("3", 3, 3), ("2.5", 2.5, 2.5)]


SMALL_OPS = small_operands()


@pytest.mark.parametrize("op", sorted(BINARY))
def test_binary_ops_compute_in_torchs_dtype(op):
    pf, tf = BINARY[op]
    checked = 0
    for (na, pa, ta), (nb, pb, tb) in itertools.product(SMALL_OPS, repeat=2):
        if not any(isinstance(x, pydl.Tensor) for x in (pa, pb)):
            continue
        if op == "maximum" and not (isinstance(pa, pydl.Tensor) and isinstance(pb, pydl.Tensor)):
            continue  # torch.maximum takes tensors only
        try:
            expect = tf(ta, tb).dtype
        except (RuntimeError, TypeError):
            continue  # torch refuses (bool - bool): not a promotion question
        got = pf(pa, pb)
        assert got.dtype == TORCH_TO_PYDL[expect], (op, na, nb, got.dtype, expect)
        checked += 1
    assert checked >= 90


@pytest.mark.parametrize("fn", ["exp", "log", "sqrt", "sin", "tanh", "sigmoid"])
def test_float_math_of_integers_is_the_default_dtype(fn):
    x = pydl.tensor([1, 2, 3])
    assert getattr(pydl, fn)(x).dtype == TORCH_TO_PYDL[getattr(torch, fn)(torch.tensor([1, 2,
                                                                                        3])).dtype]
    assert (x ** 0.5).dtype == pydl.float32
