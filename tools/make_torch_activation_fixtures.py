#!/usr/bin/env python3
"""Generate activation and norm fixtures with PyTorch (Debian's python3-torch) for
tests/autodiff/activations_test.cpp.

PyTorch is an independent implementation; where TF and PyTorch differ, the values below follow
TF and say so:
  * leaky_relu: alpha 0.2 (tf.nn.leaky_relu's default; PyTorch's default slope is 0.01).
  * l2_normalize: TF computes x * rsqrt(max(sum(x^2), epsilon)), PyTorch x / max(||x||, eps); the
    two agree for rows whose squared norm exceeds epsilon, which all rows here do.
  * gradients are left out at x == 0, where TF's and PyTorch's one-sided conventions differ (selu).
  * norm over two axes with ord 1 / inf is the matrix norm (max column / row sum), as tf.norm.

Run: /usr/bin/python3 tools/make_torch_activation_fixtures.py > tests/fixtures/torch_activations.txt
Format: one array per line: name rank dims... values... (values printed with 17 significant digits).
"""
import torch
import torch.nn.functional as F

torch.manual_seed(20261207)
torch.set_default_dtype(torch.float64)


def dump(name, tensor):
    tensor = tensor.detach().to(torch.float64)
    dims = list(tensor.shape)
    values = " ".join("%.17g" % v for v in tensor.reshape(-1).tolist())
    print(f"{name} {len(dims)} {' '.join(str(d) for d in dims)} {values}".replace("  ", " "))


# Values: a spread in [-6, 6] plus points where the formulas switch or saturate.
special = torch.tensor([-30.0, -3.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 3.0, 30.0])
x = torch.cat([special, torch.rand(15) * 12 - 6]).reshape(4, 6)
dump("x", x)
ACTIVATIONS = {
    "leaky_relu": lambda v: F.leaky_relu(v, 0.2),
    "elu": F.elu,
    "selu": F.selu,
    "gelu": lambda v: F.gelu(v, approximate="none"),
    "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"),
    "swish": F.silu,
    "softsign": F.softsign,
}
for name, f in ACTIVATIONS.items():
    dump(name + ".y", f(x))

# First derivatives, away from 0.
xg = (torch.rand(4, 6) * 8 - 4).clamp_min(-4)
xg[xg.abs() < 1e-2] = 0.5
dump("xg", xg)
for name, f in ACTIVATIONS.items():
    v = xg.clone().requires_grad_(True)
    (dx,) = torch.autograd.grad(f(v).sum(), v)
    dump(name + ".dx", dx)

# Norms and l2_normalize on a [3, 5] matrix.
m = torch.randn(3, 5)
dump("m", m)
dump("l2_normalize.axis1", F.normalize(m, p=2.0, dim=1))
dump("l2_normalize.axis0", F.normalize(m, p=2.0, dim=0))
dump("norm.euclidean.all", torch.linalg.norm(m.reshape(-1), 2))
dump("norm.euclidean.axis1", torch.linalg.norm(m, 2, dim=1))
dump("norm.1.axis0", torch.linalg.norm(m, 1, dim=0))
dump("norm.inf.axis1.keepdims", torch.linalg.norm(m, float("inf"), dim=1, keepdim=True))
dump("norm.1.matrix", torch.linalg.matrix_norm(m, 1))
dump("norm.inf.matrix", torch.linalg.matrix_norm(m, float("inf")))
v = m.clone().requires_grad_(True)
(dm,) = torch.autograd.grad(torch.linalg.norm(v, 2, dim=1).sum(), v)
dump("norm.euclidean.axis1.dx", dm)
v = m.clone().requires_grad_(True)
w = torch.randn(3, 5)
dump("w", w)
(dm,) = torch.autograd.grad((F.normalize(v, p=2.0, dim=1) * w).sum(), v)
dump("l2_normalize.axis1.dx", dm)
