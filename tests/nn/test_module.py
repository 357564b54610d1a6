"""Module API and containers: registration, traversal, state_dict round trips (keys as
PyTorch's), train/eval, zero_grad, apply, requires_grad_, reprs, hooks, Sequential / ModuleList /
ModuleDict, copying."""
import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import pydl
import pydl.nn as nn
from pydl.testing import assert_close


class Block(nn.Module):
    """A module with a parameter, a persistent and a non-persistent buffer, and children."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(pydl.ones(3))
        self.register_buffer("count", pydl.zeros(1))
        self.register_buffer("cache", pydl.zeros(2), persistent=False)
        self.fc = nn.Linear(3, 3)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x * self.scale))


def mlp():
    return nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(5, 2))


# -- registration and traversal -------------------------------------------------------------------
def test_named_parameters_buffers_children_modules():
    b = Block()
    assert [n for n, _ in b.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
    assert [p is q for p, q in zip(b.parameters(), [b.scale, b.fc.weight, b.fc.bias])] == \
        [True] * 3
    assert [n for n, _ in b.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in b.named_buffers()] == ["count", "cache"]
    assert list(b.buffers())[0] is b.count
    assert list(b.children()) == [b.fc, b.act]
    assert [n for n, _ in b.named_modules()] == ["", "fc", "act"]
    assert list(b.modules())[0] is b
    assert [n for n, _ in b.named_parameters(prefix="blk")] == ["blk.scale", "blk.fc.weight",
                                                                 "blk.fc.bias"]


def test_shared_modules_and_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.modules())) == 3  # seq, lin, relu
    assert len(list(seq.children())) == 2


def test_assigning_attributes_registers_and_replaces():
    m = nn.Module()
    m.w = nn.Parameter(pydl.zeros(2))
    m.sub = nn.Linear(1, 1)
    m.plain = 3
    assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
    m.w = None
    assert m.w is None and [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
    del m.sub
    assert list(m.parameters()) == []
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing
    with pytest.raises(TypeError, match="pydl.nn.Parameter or None"):
        m.register_parameter("x", pydl.zeros(2))
    with pytest.raises(KeyError, match="can't contain"):
        m.register_buffer("a.b", pydl.zeros(1))
    with pytest.raises(TypeError, match="Module subclass"):
        m.add_module("bad", 3)
    m.register_buffer("buf", pydl.zeros(2))
    m.buf = pydl.ones(2)  # assigning a tensor to a buffer name keeps it a buffer
    assert [n for n, _ in m.named_buffers()] == ["buf"]
    with pytest.raises(TypeError, match="buffer"):
        m.buf = 5
    m.buf = None
    assert "buf" in m._buffers and m.buf is None


def test_registered_names_only_accept_their_kind():
    """As in PyTorch, a stray assignment cannot silently unregister a parameter or child."""
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'weight'"):
        m.weight = pydl.zeros(2, 2)
    assert isinstance(m.weight, nn.Parameter)
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="as child module '0'"):
        setattr(seq, "0", pydl.zeros(1))
    # A Parameter or Module takes over a name from any other registry.
    m.register_buffer("stat", pydl.zeros(2), persistent=False)
    m.stat = nn.Parameter(pydl.ones(2))
    assert "stat" not in m._buffers and "stat" in m._parameters
    assert "stat" in m.state_dict()
    with pytest.raises(TypeError, match="as parameter 'stat'"):
        m.stat = nn.ReLU()  # PyTorch's order: a parameter name is checked first
    m.stat = None
    m.register_buffer("extra", pydl.zeros(1))
    m.extra = nn.ReLU()
    assert "extra" not in m._buffers and isinstance(m.extra, nn.ReLU)
    m.plain = 1
    m.plain = nn.Tanh()
    assert "plain" not in m.__dict__ and list(m.children())[-1] is m.plain


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(pydl.zeros(1))


# -- state_dict -----------------------------------------------------------------------------------
def test_state_dict_keys_follow_pytorch():
    keys = list(mlp().state_dict())
    assert keys == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                    "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias"]
    assert list(Block().state_dict()) == ["scale", "count", "fc.weight", "fc.bias"]


def test_state_dict_values_are_detached_and_share_memory():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    sd["weight"]._data[0, 0] = 42.0
    assert m.weight._data[0, 0] == 42.0
    assert m.state_dict(keep_vars=True)["weight"] is m.weight


@pytest.mark.parametrize("as_numpy", [False, True])
def test_load_state_dict_round_trip(as_numpy):
    src, dst = mlp(), mlp()
    src(pydl.randn(8, 4))  # updates the batch-norm running statistics
    sd = src.state_dict()
    if as_numpy:
        sd = OrderedDict((k, v.numpy().copy()) for k, v in sd.items())
    result = dst.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (k, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert np.array_equal(a._data, b._data), k
        assert a._data is not b._data  # copied, not aliased
    x = pydl.randn(3, 4)
    assert_close(src.eval()(x), dst.eval()(x))


def test_load_state_dict_keeps_parameter_objects_and_versions():
    m = nn.Linear(2, 2)
    w = m.weight
    v = w._version
    m.load_state_dict({"weight": np.ones((2, 2)), "bias": np.zeros(2)})
    assert m.weight is w and w._version > v and w.dtype == pydl.float32
    assert np.array_equal(w._data, np.ones((2, 2)))


def test_load_state_dict_strictness_and_shape_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        m.load_state_dict({"weight": np.zeros((2, 2))})
    with pytest.raises(RuntimeError, match='Unexpected key\\(s\\) in state_dict: "extra"'):
        m.load_state_dict({"weight": np.zeros((2, 2)), "bias": np.zeros(2), "extra": 1})
    result = m.load_state_dict({"weight": np.full((2, 2), 3.0), "extra": 1}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert np.array_equal(m.weight._data, np.full((2, 2), 3.0))
    with pytest.raises(RuntimeError, match="size mismatch for weight"):
        m.load_state_dict({"weight": np.zeros((3, 2)), "bias": np.zeros(2)})
    with pytest.raises(RuntimeError, match="size mismatch"):
        m.load_state_dict({"weight": np.zeros((3, 2))}, strict=False)


# -- modes and gradients --------------------------------------------------------------------------
def test_train_and_eval_propagate():
    m = mlp()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m[3].eval()
    assert not m[3].training and m.training
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")


def test_eval_mode_disables_dropout_in_a_model():
    m = nn.Sequential(nn.Linear(4, 50), nn.Dropout(0.5))
    x = pydl.randn(2, 4)
    assert not np.array_equal(m(x)._data, m(x)._data)
    m.eval()
    assert np.array_equal(m(x)._data, m(x)._data)


def test_zero_grad_and_requires_grad():
    m = nn.Linear(3, 2)
    m(pydl.randn(4, 3)).sum().backward()
    assert m.weight.grad is not None
    m.zero_grad(set_to_none=False)
    assert np.array_equal(m.weight.grad._data, np.zeros((2, 3)))
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    out = m(pydl.randn(1, 3))
    assert not out.requires_grad
    m.requires_grad_()
    assert all(p.requires_grad for p in m.parameters())


def test_apply_visits_children_before_parents():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    seen = []
    assert m.apply(lambda mod: seen.append(type(mod).__name__)) is m
    assert seen == ["Linear", "Linear", "ReLU", "Sequential", "Sequential"]

    def init_weights(mod):
        if isinstance(mod, nn.Linear):
            nn.init.ones_(mod.weight)

    m.apply(init_weights)
    assert np.array_equal(m[1][0].weight._data, np.ones((2, 2)))


def test_to_dtype_keeps_parameter_identity():
    m = nn.Linear(2, 2)
    w = m.weight
    m.double()
    assert m.weight is w and w.dtype == pydl.float64
    m.to(pydl.float32)
    assert w.dtype == pydl.float32
    bn = nn.BatchNorm1d(2).double()
    assert bn.num_batches_tracked.dtype == pydl.int64  # integer buffers keep their dtype


# -- repr -----------------------------------------------------------------------------------------
def test_repr_nested():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.1)))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.1, inplace=False)\n"
        "  )\n"
        ")")
    assert repr(Block()) == (
        "Block(\n"
        "  (fc): Linear(in_features=3, out_features=3, bias=True)\n"
        "  (act): ReLU()\n"
        ")")
    assert repr(nn.Parameter(pydl.zeros(2))).startswith("Parameter containing:\ntensor(")


# -- hooks ----------------------------------------------------------------------------------------
def test_forward_hooks_observe_replace_and_remove():
    m = nn.Linear(2, 2)
    seen = []
    h1 = m.register_forward_hook(lambda mod, inp, out: seen.append((mod, inp[0].shape,
                                                                   out.shape)))
    x = pydl.randn(3, 2)
    m(x)
    assert seen == [(m, (3, 2), (3, 2))]
    h2 = m.register_forward_hook(lambda mod, inp, out: out * 0)
    assert np.array_equal(m(x)._data, np.zeros((3, 2)))
    h2.remove()
    h1.remove()
    assert m(x)._data.any() and len(seen) == 2


def test_forward_pre_hook_replaces_inputs_and_handle_is_a_context_manager():
    m = nn.Identity()
    with m.register_forward_pre_hook(lambda mod, inp: (inp[0] + 1,)):
        assert_close(m(pydl.zeros(2)), [1.0, 1.0])
    assert_close(m(pydl.zeros(2)), [0.0, 0.0])


# -- containers -----------------------------------------------------------------------------------
def test_sequential_indexing_slicing_and_editing():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    seq = nn.Sequential(*layers)
    assert len(seq) == 3 and seq[0] is layers[0] and seq[-1] is layers[2]
    assert list(seq) == layers
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:]
    assert [n for n, _ in sub.named_children()] == ["1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    seq[1] = nn.Tanh()
    assert isinstance(seq[1], nn.Tanh)
    del seq[0]
    assert [n for n, _ in seq.named_children()] == ["0", "1"]
    seq.append(nn.Sigmoid())
    assert len(seq) == 3 and isinstance(seq[2], nn.Sigmoid)
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named(pydl.randn(1, 2)).shape == (1, 2)


def test_sequential_forward_chains(rng):
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    x = rng.standard_normal((5, 3))
    h = np.maximum(x @ seq[0].weight._data.T + seq[0].bias._data, 0)
    assert_close(seq(pydl.tensor(x)), h @ seq[2].weight._data.T + seq[2].bias._data)


def test_module_list():
    ml = nn.ModuleList([nn.Linear(1, 1), nn.ReLU()])
    ml.append(nn.Tanh())
    ml.extend([nn.Sigmoid()])
    ml.insert(1, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Linear", "Identity", "ReLU", "Tanh", "Sigmoid"]
    assert [n for n, _ in ml.named_children()] == ["0", "1", "2", "3", "4"]
    assert isinstance(ml[-1], nn.Sigmoid) and len(ml[1:3]) == 2
    ml[0] = nn.Linear(2, 2)
    assert list(ml.state_dict()) == ["0.weight", "0.bias"]

    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

    assert len(list(Holder().parameters())) == 6
    assert list(Holder().state_dict())[:2] == ["layers.0.weight", "layers.0.bias"]


def test_module_dict():
    md = nn.ModuleDict({"enc": nn.Linear(2, 3), "act": nn.ReLU()})
    assert list(md.keys()) == ["enc", "act"] and "enc" in md and len(md) == 2
    md["dec"] = nn.Linear(3, 2)
    assert list(md) == ["enc", "act", "dec"]
    assert list(md.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    del md["act"]
    assert [k for k, _ in md.items()] == ["enc", "dec"]
    assert all(isinstance(v, nn.Linear) for v in md.values())
    md.update([("extra", nn.Tanh())])
    assert isinstance(md["extra"], nn.Tanh)


# -- copying --------------------------------------------------------------------------------------
def test_deepcopy_and_pickle_give_independent_equal_models():
    m = mlp()
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert list(clone.state_dict()) == list(m.state_dict())
        for a, b in zip(m.parameters(), clone.parameters()):
            assert a is not b and np.array_equal(a._data, b._data)
            assert isinstance(b, nn.Parameter) and b.requires_grad
        clone[0].weight._data[...] = 0
        assert m[0].weight._data.any()
