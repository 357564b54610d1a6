"""Shape ops against NumPy, with gradcheck, views sharing memory and errors."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck
from pydl.testing import assert_close


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


A = np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7


@pytest.mark.parametrize("fn,ref", [
    (lambda x: x.reshape(4, 6), lambda a: a.reshape(4, 6)),
    (lambda x: x.reshape(-1), lambda a: a.reshape(-1)),
    (lambda x: x.view(2, 12), lambda a: a.reshape(2, 12)),
    (lambda x: x.flatten(), lambda a: a.reshape(-1)),
    (lambda x: x.flatten(1), lambda a: a.reshape(2, 12)),
    (lambda x: x.flatten(0, 1), lambda a: a.reshape(6, 4)),
    (lambda x: x.unsqueeze(1), lambda a: a[:, None]),
    (lambda x: x.unsqueeze(-1), lambda a: a[..., None]),
    (lambda x: x.reshape(2, 1, 3, 4).squeeze(), lambda a: a),
    (lambda x: x.reshape(2, 1, 3, 4).squeeze(1), lambda a: a),
    (lambda x: x.transpose(0, 2), lambda a: a.transpose(2, 1, 0)),
    (lambda x: x.permute(1, 2, 0), lambda a: a.transpose(1, 2, 0)),
    (lambda x: x.T, lambda a: a.T),
    (lambda x: x.mT, lambda a: a.swapaxes(-1, -2)),
    (lambda x: x[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
    (lambda x: x[:1].expand(3, -1, -1, -1), lambda a: np.broadcast_to(a[:1], (3, 1, 3, 4))),
    (lambda x: x.flip(0, ) if False else x.flip((0, 2)), lambda a: a[::-1, :, ::-1]),
    (lambda x: x.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3))),
    (lambda x: x.unflatten(2, (2, 2)), lambda a: a.reshape(2, 3, 2, 2)),
])
def test_shape_op_forward_and_grad(fn, ref):
    assert_close(fn(t64(A, False)), ref(A))
    assert gradcheck(fn, [t64(A)])


def test_views_share_memory_and_version():
    x = pydl.zeros(2, 3)
    v = x.view(6)
    v[0] = 5.0
    assert x[0, 0].item() == 5.0
    assert x._version == v._version == 1
    y = x.transpose(0, 1)
    y.add_(1)
    assert x[0, 0].item() == 6.0


def test_view_on_noncontiguous_raises_and_reshape_copies():
    x = pydl.zeros(3, 4).t()
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.view(12)
    assert x.reshape(12).shape == (12,)


def test_cat_stack_split_chunk():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    assert_close(pydl.cat([t64(a, False), t64(b, False)]), np.concatenate([a, b]))
    assert gradcheck(lambda x, y: pydl.cat([x, y], 0), [t64(a), t64(b)])
    c = rng.standard_normal((2, 3))
    assert_close(pydl.stack([t64(a, False), t64(c, False)], 1), np.stack([a, c], 1))
    assert gradcheck(lambda x, y: pydl.stack([x, y], -1), [t64(a), t64(c)])
    parts = pydl.split(t64(b, False), 3, 0)
    assert [p.shape for p in parts] == [(3, 3), (1, 3)]
    parts = pydl.split(t64(b, False), [1, 3], 0)
    assert [p.shape for p in parts] == [(1, 3), (3, 3)]
    assert [p.shape for p in pydl.chunk(t64(b, False), 3, 0)] == [(2, 3), (2, 3)]
    assert gradcheck(lambda x: pydl.chunk(x, 2, 1)[1] * 2, [t64(b)])
    assert len(pydl.unbind(t64(b, False), 1)) == 3


def test_cat_errors_name_shapes():
    with pytest.raises(RuntimeError, match=r"\(2, 3\).*\(2, 4\)"):
        pydl.cat([pydl.zeros(2, 3), pydl.zeros(2, 4)])
    with pytest.raises(RuntimeError, match="equal size"):
        pydl.stack([pydl.zeros(2), pydl.zeros(3)])
    with pytest.raises(RuntimeError, match="sum to"):
        pydl.split(pydl.zeros(5), [2, 2])


def _np_pad(a, pad, mode, value=0.0):
    width = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        width[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap"}[mode]
    if mode == "constant":
        return np.pad(a, width, mode="constant", constant_values=value)
    return np.pad(a, width, mode=np_mode)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(1, 2), (2, 0, 1, 1), (0, 3)])
def test_pad_modes(mode, pad):
    a = np.random.default_rng(1).standard_normal((2, 4, 5))
    assert_close(pydl.nn.functional.pad(t64(a, False), pad, mode=mode), _np_pad(a, pad, mode))
    assert gradcheck(lambda x: pydl.nn.functional.pad(x, pad, mode=mode), [t64(a)])


def test_pad_constant_value_and_negative_crop():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    out = pydl.nn.functional.pad(t64(a, False), (1, 1), value=-1.0)
    assert_close(out, _np_pad(a, (1, 1), "constant", -1.0))
    crop = pydl.nn.functional.pad(t64(a, False), (-1, 0))
    assert_close(crop, a[:, 1:])
    assert gradcheck(lambda x: pydl.nn.functional.pad(x, (-1, 2, 1, -1)), [t64(a)])


def test_pad_errors():
    x = pydl.zeros(2, 3)
    with pytest.raises(ValueError, match="divisible by 2"):
        pydl.nn.functional.pad(x, (1,))
    with pytest.raises(ValueError, match="reflect padding"):
        pydl.nn.functional.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="unknown mode"):
        pydl.nn.functional.pad(x, (1, 1), mode="mirror")


def test_reshape_errors():
    x = pydl.zeros(2, 3)
    with pytest.raises(RuntimeError, match="invalid for input of size 6"):
        x.reshape(4, 2)
    with pytest.raises(RuntimeError, match="only one dimension"):
        x.reshape(-1, -1)
    with pytest.raises(RuntimeError, match="expanded size"):
        x.expand(3, 3)
    with pytest.raises(RuntimeError, match="repeated dim"):
        x.permute(0, 0)
