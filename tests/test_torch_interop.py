"""PyTorch tensors through the public API without copies, and fastact.torch's autograd Functions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _interop
from fastact._registry import PRELU, RRELU, SPECS

from _helpers import assert_close, bound_for, make_case, reference_backward, reference_forward, spec_ids

torch = pytest.importorskip("torch")
ft = pytest.importorskip("fastact.torch")


def _ptr(a) -> int:
    return a.data_ptr() if isinstance(a, torch.Tensor) else a.__array_interface__["data"][0]


# -------------------------------------------------------- zero-copy interop


def test_tensor_input_is_viewed_not_copied():
    t = torch.randn(64, 33)[:, ::2]  # strided: still a view
    view = _interop.tensor_to_numpy(t, "f", "x")
    assert _ptr(view) == _ptr(t) and view.strides == tuple(s * 4 for s in t.stride())


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_tensor_in_tensor_out(dtype):
    t = torch.randn(1000, dtype=torch.float64).mul(3).to(dtype)
    y = fastact.gelu(t)
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.shape == t.shape
    x = t.numpy()
    assert_close(y.numpy(), reference_forward("gelu", x), *bound_for(fastact._registry.get_spec("gelu"), "forward", x.dtype), "gelu")
    # the tensor returned shares memory with the NumPy result: writing one shows in the other
    y.numpy()[0] = 42
    assert float(y[0]) == 42


def test_out_tensor_is_written_in_place_and_returned():
    t = torch.randn(4096)
    expected = reference_forward("silu", t.numpy())
    out = torch.empty(4096)
    ptr = out.data_ptr()
    res = fastact.silu(t, out=out)
    assert res is out and out.data_ptr() == ptr
    assert_close(out.numpy(), expected, 1e-6, 1e-38, "silu out=")
    # in-place: input and out the same tensor
    res = fastact.silu(t, out=t)
    assert res is t and t.data_ptr() == _ptr(t)
    assert_close(t.numpy(), expected, 1e-6, 1e-38, "silu in-place")


def test_strided_out_tensor_leaves_the_rest_untouched():
    big = torch.full((8, 20), 7.0)
    view = big[:, ::2]
    x = torch.randn(8, 10)
    res = fastact.softmax(x, out=view)
    assert res is view
    assert_close(view.numpy(), reference_forward("softmax", x.numpy()), 2e-6, 1e-7, "softmax strided out")
    assert torch.all(big[:, 1::2] == 7.0)


def test_mixed_numpy_and_torch_arguments():
    x = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    out = torch.empty(100)
    assert fastact.tanh(x, out=out) is out  # NumPy in, tensor out
    assert_close(out.numpy(), reference_forward("tanh", x), 1e-6, 1e-38, "tanh")
    out_np = np.empty(100, np.float32)
    assert fastact.tanh(torch.from_numpy(x), out=out_np) is out_np  # tensor in, NumPy out
    g = torch.randn(100)
    dx = fastact.tanh_backward(g, y=out_np)  # tensor grad, NumPy y -> tensor
    assert isinstance(dx, torch.Tensor)
    assert_close(dx.numpy(), reference_backward("tanh", g.numpy(), y=out_np), 1e-6, 1e-38, "tanh backward")


def test_backward_and_prelu_with_tensors():
    x = torch.randn(4, 6, 5, dtype=torch.float64)
    g = torch.randn(4, 6, 5, dtype=torch.float64)
    w = torch.rand(6, dtype=torch.float64, requires_grad=True)  # a Parameter-like weight
    gi, gw = fastact.prelu_backward(g, x, w)
    assert isinstance(gi, torch.Tensor) and isinstance(gw, torch.Tensor)
    egi, egw = reference_backward("prelu", g.numpy(), x.numpy(), weight=w.detach().numpy())
    assert_close(gi.numpy(), egi, 1e-12, 0, "prelu grad_input")
    assert_close(gw.numpy(), egw, 1e-12, 1e-13, "prelu grad_weight")
    out = torch.empty_like(g)
    res = fastact.prelu_backward(g, x, w, out=out)
    assert res[0] is out
    y, slopes = fastact.rrelu(x, training=True, rng=3)
    assert isinstance(y, torch.Tensor) and isinstance(slopes, torch.Tensor)


def test_requires_grad_input_is_detached_but_out_is_refused():
    x = torch.randn(10, requires_grad=True)
    y = fastact.relu(x)
    assert not y.requires_grad
    assert_close(y.numpy(), reference_forward("relu", x.detach().numpy()), 0, 0, "relu")
    with pytest.raises(ValueError, match="requires grad"):
        fastact.relu(torch.randn(10), out=torch.zeros(10, requires_grad=True))


def test_unsupported_tensors_raise():
    with pytest.raises(TypeError, match="CPU"):
        fastact.relu(torch.empty(3, device="meta"))
    with pytest.raises(TypeError, match="bfloat16"):
        fastact.relu(torch.ones(3, dtype=torch.bfloat16))
    with pytest.raises(TypeError, match="shape|dtype"):
        fastact.relu(torch.ones(3), out=torch.empty(3, dtype=torch.float64))


def test_fastact_torch_needs_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import fastact, numpy as np\n"
        "fastact.relu(np.ones(2))\n"
        "try:\n    import fastact.torch\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('imported')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------ autograd Functions


def _away_from_kinks(spec, x, params):
    kinks = (0.0,) if spec.kind == PRELU else spec.kinks(spec.with_defaults(params))
    if not kinks:
        return x
    d = np.min(np.abs(x.reshape(-1)[:, None] - np.asarray(kinks)[None, :]), axis=1).reshape(x.shape)
    return np.where(d < 1e-3, x + 0.01, x)  # finite differences across a kink are meaningless


@pytest.mark.parametrize("spec", SPECS, ids=spec_ids(SPECS))
def test_gradcheck_float64(spec):
    rng = np.random.default_rng(1)
    params = {"training": True, "rng": 5} if spec.kind == RRELU else None  # an int seed: same slopes every call
    x, p = make_case(spec, rng, dtype=np.float64, size=60, params=params)
    p.pop("slopes", None)
    xt = torch.tensor(_away_from_kinks(spec, x, p), requires_grad=True)
    if spec.kind == PRELU:
        w = torch.tensor(p.pop("weight"), requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, b: ft.prelu(a, b, **p), (xt, w))
    else:
        f = ft.function(spec.name)
        assert torch.autograd.gradcheck(lambda a: f(a, **p), (xt,))
        # and the values are fastact's
        exp = reference_forward(spec.name, x, **p)
        exp = exp[0] if isinstance(exp, tuple) else exp
        got = f(torch.tensor(x), **p)
        assert_close(got.numpy(), exp, *bound_for(spec, "forward", "float64"), spec.name)


def test_output_is_saved_where_the_backward_allows_it():
    """sigmoid saves its output (y-based backward): modifying it in place must be caught by autograd."""
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    y = ft.sigmoid(x)
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()
    # gelu saves its input instead: its output may be changed
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    y = ft.gelu(x)
    y.mul_(1.0)
    y.sum().backward()
    assert_close(x.grad.numpy(), reference_backward("gelu", np.ones(20), x.detach().numpy()), 1e-12, 1e-300, "gelu grad")


def test_modules_in_a_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 6), ft.PReLU(6, axis=1), torch.nn.Linear(6, 6), ft.Activation("gelu", approximate="tanh"),
        torch.nn.Linear(6, 4), ft.Activation("log_softmax", axis=-1),
    ).double()
    ref = torch.nn.Sequential(
        torch.nn.Linear(8, 6), torch.nn.PReLU(6), torch.nn.Linear(6, 6), torch.nn.GELU(approximate="tanh"),
        torch.nn.Linear(6, 4), torch.nn.LogSoftmax(dim=-1),
    ).double()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(16, 8, dtype=torch.float64)
    for m in (model, ref):
        m.zero_grad()
        m(x)[:, 0].sum().backward()
    for (name, a), b in zip(model.named_parameters(), ref.parameters()):
        assert_close(a.grad.numpy(), b.grad.numpy(), 1e-10, 1e-12, f"grad of {name}")
    assert "gelu" in repr(model)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_lower_precision_gradients(dtype):
    x = torch.randn(300, dtype=dtype, requires_grad=True)
    y = ft.softplus(x, beta=2.0)
    assert y.dtype == dtype
    y.backward(torch.ones_like(y))
    spec = fastact._registry.get_spec("softplus")
    exp = reference_backward("softplus", np.ones(300, x.detach().numpy().dtype), y=y.detach().numpy(), beta=2.0)
    assert x.grad.dtype == dtype
    assert_close(x.grad.numpy(), exp, *bound_for(spec, "backward", x.detach().numpy().dtype), "softplus grad")
