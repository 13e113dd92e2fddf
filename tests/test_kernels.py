"""kernels.depthwise_conv: every implementation against the reference, over
every depthwise shape the zoo's models use (enumerated from the models) plus
random shapes, both paddings, float32 and bfloat16."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.kernels import model_kernel_shapes
from kernels import depthwise_conv, depthwise_conv_reference, depthwise_conv_xla_fast
from kernels.depthwise_conv import resolve_implementation, same_padding


@functools.lru_cache(maxsize=None)
def model_depthwise_shapes():
    """(H, W, C, k, stride) of every depthwise conv in every registry model at
    its spec resolution, found by tracing the models (the same traced
    enumeration the Pallas tests and the kernel benchmark use)."""
    return sorted({(s.h, s.w, s.c, s.k, s.stride)
                   for s in model_kernel_shapes()["depthwise"]})


def _random_case(rng, h, w, c, k, dtype=np.float32):
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((k, k, 1, c)).astype(np.float32)
    return jnp.asarray(x, dtype), jnp.asarray(wt, dtype)


def test_model_shapes_are_enumerated():
    shapes = model_depthwise_shapes()
    kernels = {s[3] for s in shapes}
    strides = {s[4] for s in shapes}
    assert kernels == {3, 5} and strides == {1, 2}
    assert len(shapes) > 50


@pytest.mark.parametrize("padding", ["same", "symmetric"])
def test_xla_fast_matches_reference_at_every_model_shape(padding):
    rng = np.random.default_rng(0)
    fast = jax.jit(depthwise_conv_xla_fast, static_argnames=("stride", "padding"))
    ref = jax.jit(depthwise_conv_reference, static_argnames=("stride", "padding"))
    for h, w, c, k, s in model_depthwise_shapes():
        # Channels do not change the arithmetic per channel: cap them so the
        # sweep stays quick while every spatial size, kernel and stride is run.
        x, wt = _random_case(rng, h, w, min(c, 24), k)
        a, b = fast(x, wt, stride=s, padding=padding), ref(x, wt, stride=s, padding=padding)
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=str((h, w, c, k, s)))


@pytest.mark.parametrize("seed", range(12))
def test_xla_fast_matches_reference_random_shapes(seed):
    rng = np.random.default_rng(100 + seed)
    h, w = rng.integers(3, 40, size=2)
    c = int(rng.integers(1, 70))
    k = int(rng.choice([3, 5, 7]))
    s = int(rng.choice([1, 2]))
    padding = ["same", "symmetric", ((1, 2), (0, 3))][seed % 3]
    x, wt = _random_case(rng, h, w, c, k)
    a = depthwise_conv_xla_fast(x, wt, stride=s, padding=padding)
    b = depthwise_conv_reference(x, wt, stride=s, padding=padding)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s", [(3, 1), (3, 2), (5, 1), (5, 2)])
def test_bfloat16(k, s):
    # bfloat16 has an 8-bit mantissa: sums of k*k products of O(1) values
    # are good to a few units of 2**-8 relative to their magnitude.
    rng = np.random.default_rng(k * 10 + s)
    x, wt = _random_case(rng, 28, 28, 32, k)
    a = depthwise_conv_xla_fast(x.astype(jnp.bfloat16), wt.astype(jnp.bfloat16), stride=s)
    b = depthwise_conv_reference(x, wt, stride=s)
    assert a.dtype == jnp.bfloat16
    err = np.abs(np.asarray(a, np.float32) - np.asarray(b)).max()
    assert err <= 0.05 * np.abs(np.asarray(b)).max()


def test_same_padding_matches_tensorflow_rule():
    # TF SAME: output ceil(n / s); the odd pixel of padding goes after.
    assert same_padding(224, 3, 2) == (0, 1)
    assert same_padding(225, 3, 2) == (1, 1)
    assert same_padding(112, 5, 2) == (1, 2)
    assert same_padding(7, 3, 1) == (1, 1)


def test_auto_never_uses_grouped_conv_on_cpu():
    assert resolve_implementation("auto", "cpu") == "xla_fast"
    assert resolve_implementation("auto", "gpu") == "reference"
    assert resolve_implementation("auto", "tpu") == "reference"
    # And the compiled CPU program of "auto" has no grouped convolution in it.
    x, wt = _random_case(np.random.default_rng(0), 16, 16, 8, 3)
    hlo = jax.jit(lambda x, w: depthwise_conv(x, w)).lower(x, wt).as_text()
    assert "feature_group_count" not in hlo


def test_bad_arguments_are_named():
    x, wt = _random_case(np.random.default_rng(0), 8, 8, 4, 3)
    with pytest.raises(ValueError, match="implementation='gpu'"):
        depthwise_conv(x, wt, implementation="gpu")
    with pytest.raises(ValueError, match="rank 4"):
        depthwise_conv(x[0], wt)
    with pytest.raises(ValueError, match=r"\(kh, kw, 1, C=4\)"):
        depthwise_conv(x, wt[..., :2])
    with pytest.raises(ValueError, match="padding='full'"):
        depthwise_conv(x, wt, padding="full")
    # "pallas" runs (interpret mode on CPU) and agrees with the reference.
    np.testing.assert_allclose(depthwise_conv(x, wt, implementation="pallas"),
                               depthwise_conv_reference(x, wt), rtol=1e-5, atol=1e-5)
