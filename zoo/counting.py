"""Parameter and multiply-add counts.

``count_params`` sums the trainable arrays of a variables dict.
``count_macs`` is analytic: it traces the model abstractly (no FLOPs run,
no memory allocated) and, at every convolution and fully connected layer,
adds ``out_h * out_w * k * k * (C_in / groups) * C_out`` from the layer's
shapes, the convention of the papers' "multiply-adds" (BatchNorm,
activations, pooling and residual adds are not counted). It also counts the
parameters those layers and the BatchNorms declare, which must equal
``count_params`` of the real variables (tested).
"""

from __future__ import annotations

import dataclasses
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from zoo.layers import Conv, Dense, DepthwiseConv


@dataclasses.dataclass
class Counts:
    """What ``analytic_counts`` found in one trace of a model.

    Attributes:
        macs: multiply-adds per image of the convolutions and fully
            connected layers (the papers' convention, see the module
            docstring).
        params: parameters the counted layers declare, BatchNorm scale and
            offset included (running statistics excluded).
        layers: how many layer calls were counted.
    """

    macs: int = 0
    params: int = 0
    layers: int = 0


def count_params(variables) -> int:
    """Trainable parameters (BatchNorm running statistics are not parameters).

    Args:
        variables: a variables dict; its ``"params"`` collection is counted,
            or, without one, every array in it (a bare params tree).

    Returns:
        The total number of elements of those arrays.
    """
    params = variables.get("params", variables)
    return int(sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(params)))


def _own_params(module) -> dict:
    """Arrays a module declares itself (not its submodules')."""
    params = module.variables.get("params", {}) if module.scope is not None else {}
    return {k: v for k, v in params.items() if hasattr(v, "shape")}


def analytic_counts(model, input_size) -> Counts:
    """Multiply-adds and parameters of ``model`` on ``input_size`` square
    images, or (height, width) ones (or, for a model that declares a
    sequence ``trace_input``, on sequences of ``input_size`` steps).

    The model is traced abstractly on a batch of one, (1, H, W, 3) float32,
    with its reference implementation; nothing is computed or allocated.

    Args:
        model: a zoo Flax module, e.g. from ``zoo.build``.
        input_size: the side in pixels, or ``(height, width)``; for a
            sequence model the number of steps.

    Returns:
        A ``Counts`` with the multiply-adds per example, the parameters and
        the number of layers counted.
    """
    counts = Counts()
    settings = getattr(model, "settings", None)
    if settings is not None:
        # The reference form calls one module per layer (Conv, DepthwiseConv,
        # BatchNorm); the fused inference forms declare the same variables
        # without those modules. The counts are the architecture's either way.
        model = model.clone(settings=dataclasses.replace(settings, implementation="reference"))

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name != "__call__" or not args:
            return out
        m = context.module
        x = args[0]
        if isinstance(m, Conv):
            k, cin, cout = m.kernel, x.shape[-1], out.shape[-1]
            counts.macs += out.shape[1] * out.shape[2] * k * k * cin * cout
            counts.params += k * k * cin * cout + (cout if m.use_bias else 0)
        elif isinstance(m, DepthwiseConv):
            k, c = m.kernel, out.shape[-1]
            counts.macs += out.shape[1] * out.shape[2] * k * k * c
            counts.params += k * k * c + (c if "bias" in _own_params(m) else 0)
        elif isinstance(m, Dense):
            cin, cout = x.shape[-1], out.shape[-1]
            # Once per position: TALNet's classifier runs on (B, proposals, C).
            counts.macs += math.prod(out.shape[1:-1]) * cin * cout
            counts.params += cin * cout + (cout if m.use_bias else 0)
        elif hasattr(m, "macs"):  # a family's own layer that counts itself (TALNet's)
            counts.macs += m.macs(x, out)
            counts.params += sum(math.prod(a.shape) for a in _own_params(m).values())
        elif isinstance(m, nn.BatchNorm):
            counts.params += 2 * x.shape[-1]  # scale and offset
        elif _own_params(m):  # e.g. a PReLU's slopes: parameters, no multiply-adds counted
            counts.params += sum(math.prod(a.shape) for a in _own_params(m).values())
        else:
            return out
        counts.layers += 1
        return out

    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    x = jax.ShapeDtypeStruct((1, h, w, 3), jnp.float32)
    sequence = getattr(model, "trace_input", None)
    if sequence is not None:  # a sequence model: input_size is its length in steps
        x = jax.ShapeDtypeStruct((1, h) + tuple(sequence.shape[2:]), sequence.dtype)
    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    return counts


def count_macs(model, input_size: int) -> int:
    """Analytic multiply-adds per image (see module docstring).

    Args:
        model: a zoo Flax module, e.g. from ``zoo.build``.
        input_size: the image side in pixels (``analytic_counts`` also
            takes ``(height, width)``).

    Returns:
        Multiply-adds for one image, ``analytic_counts(model, input_size).macs``.

    Example:
        ::

            macs = zoo.count_macs(zoo.build("mobilenet_v2"), 224)
            print(f"{macs / 1e6:.0f}M multiply-adds")
    """
    return analytic_counts(model, input_size).macs
