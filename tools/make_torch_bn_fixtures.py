#!/usr/bin/env python3
"""Generate batch-normalization fixtures with PyTorch (Debian's python3-torch) for
tests/layers/batch_normalization_torch_test.cpp.

PyTorch is an independent implementation. Conventions are mapped to TF's:
  * TF's momentum m weights the old statistic; PyTorch's momentum is 1 - m.
  * PyTorch feeds the unbiased batch variance into running_var. That is exactly TF r2.4's
    fused-kernel convention (4-D, axis 1 or 3, float32), so case "nchw" compares running_var
    directly. For the non-fused case "dense" (float64), TF feeds the biased variance; the script
    computes that recurrence in Python from torch.var(unbiased=False).

Run: /usr/bin/python3 tools/make_torch_bn_fixtures.py > tests/fixtures/torch_batch_norm.txt
Format: one array per line: name rank dims... values... (values printed with 17 significant digits).
"""
import torch

torch.manual_seed(20261123)
torch.set_default_dtype(torch.float64)
EPS = 1e-3
MOMENTUM = 0.9  # TF convention


def dump(name, tensor):
    tensor = tensor.detach().to(torch.float64)
    dims = list(tensor.shape)
    values = " ".join("%.17g" % v for v in tensor.reshape(-1).tolist())
    print(f"{name} {len(dims)} {' '.join(str(d) for d in dims)} {values}".replace("  ", " "))


def case(prefix, shape, channel_axis, steps, biased_moving):
    channels = shape[channel_axis]
    gamma = torch.rand(channels) + 0.5
    beta = torch.rand(channels) - 0.5
    dump(f"{prefix}.gamma", gamma)
    dump(f"{prefix}.beta", beta)
    perm = None
    if channel_axis != 1:
        # torch batch_norm wants channels on axis 1
        perm = [0, channel_axis] + [d for d in range(1, len(shape)) if d != channel_axis]
    running_mean = torch.zeros(channels)
    running_var = torch.ones(channels)
    tf_moving_var = torch.ones(channels)
    for step in range(steps):
        x = torch.randn(*shape) * (1.0 + step) + 0.5 * step
        dump(f"{prefix}.x{step}", x)
        xt = x.permute(*perm) if perm else x
        reduce_dims = [d for d in range(xt.dim()) if d != 1]
        biased = xt.var(dim=reduce_dims, unbiased=False)
        y = torch.nn.functional.batch_norm(xt, running_mean, running_var, gamma, beta, training=True,
                                           momentum=1 - MOMENTUM, eps=EPS)
        tf_moving_var = tf_moving_var - (tf_moving_var - biased) * (1 - MOMENTUM)
        y = y.permute(*[perm.index(d) for d in range(len(shape))]) if perm else y
        dump(f"{prefix}.y{step}", y)
        dump(f"{prefix}.moving_mean{step}", running_mean)
        dump(f"{prefix}.moving_variance{step}", tf_moving_var if biased_moving else running_var)
    # Gradients and double backward on the last batch, training mode.
    x = x.clone().requires_grad_(True)
    g = gamma.clone().requires_grad_(True)
    b = beta.clone().requires_grad_(True)
    xt = x.permute(*perm) if perm else x
    y = torch.nn.functional.batch_norm(xt, None, None, g, b, training=True, eps=EPS)
    y = y.permute(*[perm.index(d) for d in range(len(shape))]) if perm else y
    dy = torch.randn(*shape)
    dump(f"{prefix}.dy", dy)
    dx, dg, db = torch.autograd.grad(y, (x, g, b), dy, create_graph=True)
    dump(f"{prefix}.dx", dx)
    dump(f"{prefix}.dgamma", dg)
    dump(f"{prefix}.dbeta", db)
    v = torch.randn(*shape)
    dump(f"{prefix}.v", v)
    ddx, ddg = torch.autograd.grad((dx * v).sum(), (x, g))
    dump(f"{prefix}.ddx", ddx)
    dump(f"{prefix}.ddgamma", ddg)
    # Inference with the final running statistics (TF convention for moving_variance).
    mv = tf_moving_var if biased_moving else running_var
    xi = torch.randn(*shape).requires_grad_(True)
    dump(f"{prefix}.x_infer", xi)
    xit = xi.permute(*perm) if perm else xi
    yi = torch.nn.functional.batch_norm(xit, running_mean, mv, g, b, training=False, eps=EPS)
    yi = yi.permute(*[perm.index(d) for d in range(len(shape))]) if perm else yi
    dump(f"{prefix}.y_infer", yi)
    dxi, dgi, dbi = torch.autograd.grad(yi, (xi, g, b), dy)
    dump(f"{prefix}.dx_infer", dxi)
    dump(f"{prefix}.dgamma_infer", dgi)
    dump(f"{prefix}.dbeta_infer", dbi)


case("nchw", [4, 3, 5, 5], 1, 3, biased_moving=False)
case("nhwc", [4, 5, 5, 3], 3, 3, biased_moving=False)
case("dense", [16, 6], 1, 3, biased_moving=True)
