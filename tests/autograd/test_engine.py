"""The backward engine: long chains, accumulation, errors, grad modes, hooks, in-place
version checks, retain_graph."""
import numpy as np
import pytest

import pydl
from pydl.autograd import Function, gradcheck
from pydl.testing import assert_close


def test_chain_of_10000_ops_backpropagates_without_recursion():
    x = pydl.tensor([1.0, 2.0], dtype=pydl.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert_close(x.grad, np.full(2, 1.0001 ** 10_000), rtol=1e-4)


def test_gradients_accumulate_across_backward_calls_and_paths():
    x = pydl.tensor([3.0], requires_grad=True)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1 = 7
    assert_close(x.grad, [7.0])
    (x * 2).sum().backward()
    assert_close(x.grad, [9.0])


def test_shared_subexpression_and_diamond():
    x = pydl.tensor([2.0], dtype=pydl.float64, requires_grad=True)
    a = x * 3
    b = a * a + a.exp()
    b.backward()
    assert_close(x.grad, [2 * 9 * 2.0 + 3 * np.exp(6.0)])


def test_nonscalar_backward_needs_gradient():
    x = pydl.ones(3, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(3,\)"):
        y.backward()
    y.backward(pydl.tensor([1.0, 2.0, 3.0]))
    assert_close(x.grad, [2, 4, 6])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(pydl.ones(2))


def test_second_backward_through_freed_graph_raises():
    x = pydl.ones(2, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = pydl.ones(2, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    assert_close(x.grad, 2 * g1)


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        pydl.ones(2).sum().backward()


def test_no_grad_enable_grad_set_grad_enabled():
    x = pydl.ones(2, requires_grad=True)
    with pydl.no_grad():
        y = x * 2
        with pydl.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    with pydl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert pydl.is_grad_enabled()

    @pydl.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    pydl.set_grad_enabled(False)
    assert not pydl.is_grad_enabled()
    pydl.set_grad_enabled(True)
    assert pydl.is_grad_enabled()


def test_detach_cuts_graph_and_shares_memory():
    x = pydl.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * 1
    yd = y.detach()
    yd._data[0] = 5
    assert y[0].item() == 5


def test_tensor_hooks_modify_gradients():
    x = pydl.ones(3, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    y = x * 2
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert seen == [[20.0, 20.0, 20.0]]
    assert_close(x.grad, [20, 20, 20])


def test_retain_grad_on_intermediate():
    x = pydl.ones(2, requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    assert_close(y.grad, [6, 6])


def test_inplace_modification_of_saved_tensor_is_detected():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    w = pydl.tensor([3.0, 4.0])
    y = x * w  # Mul saves w
    w.add_(1)  # w does not require grad: a true in-place write bumps its version
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_inplace_under_no_grad_on_saved_output_is_detected():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()  # Exp saves its output
    z = y.sum()
    with pydl.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="version"):
        z.backward()


def test_inplace_on_leaf_requiring_grad_raises():
    w = pydl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w.add_(1)
    with pydl.no_grad():
        w.add_(1)
        w.mul_(2).sub_(1).div_(3).clamp_(0, 1).zero_().fill_(2)
    assert w.tolist() == [2, 2]
    assert w._version == 7  # one bump per in-place op that ran


def test_inplace_on_nonleaf_is_differentiable():
    x = pydl.tensor([1.0, -2.0], dtype=pydl.float64, requires_grad=True)
    y = x * 3
    y.relu_()
    y += 1
    y.mul_(x)
    y.sum().backward()
    # y = (relu(3x) + 1) * x: dy/dx = 3 * 1[x>0] * x + relu(3x) + 1
    assert_close(x.grad, [3 * 1 + 3 + 1, 0 + 0 + 1])


def test_copy_and_fill_in_place():
    x = pydl.zeros(2, 3)
    x.copy_(pydl.tensor([1.0, 2.0, 3.0]))
    assert x.tolist() == [[1, 2, 3], [1, 2, 3]]
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        x.copy_(pydl.zeros(4))
    with pytest.raises(RuntimeError, match="read-only"):
        pydl.zeros(1, 3).expand(2, 3).add_(1)


def test_grad_function_leaves_dot_grad_alone():
    x = pydl.tensor([1.0, 2.0], requires_grad=True)
    (g,) = pydl.autograd.grad((x * x).sum(), [x])
    assert_close(g, [2, 4])
    assert x.grad is None


def test_function_returning_wrong_gradient_is_caught_by_gradcheck():
    class BadSquare(Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, g):
            (x,) = self.saved_tensors
            return g * x  # wrong: should be 2x

    x = pydl.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Jacobian mismatch for input 0.*element \(2,\)"):
        gradcheck(BadSquare.apply, [x])
    assert gradcheck(BadSquare.apply, [x], raise_exception=False) is False
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, [pydl.ones(2, requires_grad=True)])


def test_multi_output_function_with_unused_output():
    x = pydl.tensor(np.array([[1.0, 5.0], [7.0, 2.0]]), requires_grad=True)
    values, _ = pydl.max(x, dim=1)
    (values * 2).sum().backward()
    assert_close(x.grad, [[0, 2], [2, 0]])


def test_branch_that_receives_no_gradient_is_released():
    x = pydl.ones(2, requires_grad=True)
    a = x.exp()
    _, idx = pydl.max(a.reshape(1, 2), dim=1)
    y = (a * 2).sum()
    y.backward()
    assert_close(x.grad, 2 * np.exp(np.ones(2)), rtol=1e-6)


def test_jacobian_and_hessian():
    x = pydl.tensor(np.array([1.0, 2.0]), dtype=pydl.float64)
    j = pydl.autograd.functional.jacobian(lambda t: t * t, x)
    assert_close(j, np.diag([2.0, 4.0]))
    h = pydl.autograd.functional.hessian(lambda t: (t ** 3).sum() + t[0] * t[1], x)
    assert_close(h, [[6.0, 1.0], [1.0, 12.0]], rtol=1e-5, atol=1e-5)
