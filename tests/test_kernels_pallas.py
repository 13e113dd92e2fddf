"""Pallas kernels (kernels/depthwise_conv.py, pointwise_conv.py,
squeeze_excite.py) against their plain-JAX references.

* Interpret mode (the only way Pallas runs on CPU) at the configurations the
  zoo's models use -- enumerated by tracing every registered model
  (``benchmarks.kernels.model_kernel_shapes``), one case per distinct kernel
  configuration (kernel size, stride, padding, activation, channel blocking)
  at a reduced spatial size so the interpreted grid stays small -- plus
  random shapes, float32 and bfloat16, for both block plans (Mosaic TPU and
  Triton GPU).
* Lowering: ``jax.export`` for ``tpu`` and ``cuda`` of every kernel at every
  model shape at the models' real resolution; shapes a plan rejects fall back
  to the reference and are listed.
* Gradients (custom_vjp through the reference) and whole models: logits of
  ``implementation="pallas"`` equal the reference's.

Tolerances, relative to max |reference| (at least 1):
  float32: 2e-5 (same float32 arithmetic, different summation order);
  bfloat16: 2e-2 (inputs are the same bfloat16 values; the kernel rounds its
  float32 result to bfloat16 once (2**-8) and the 1x1 conv multiplies in
  bfloat16 weights, error growing like sqrt(K) * 2**-9).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import kernels
import zoo
from benchmarks.kernels import (DepthwiseShape, PointwiseShape, SEShape, make_case,
                                model_kernel_shapes)
from kernels.depthwise_conv import depthwise_plan

TOL = {"float32": 2e-5, "bfloat16": 2e-2}
PLATFORM = {"tpu": "tpu", "triton": "cuda"}
DISABLED = [export.DisabledSafetyCheck.custom_call("tpu_custom_call"),
            export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")]


def _close(out, ref, dtype):
    out = np.asarray(jnp.asarray(out, jnp.float32))
    ref = np.asarray(jnp.asarray(ref, jnp.float32))
    assert out.shape == ref.shape
    err = float(np.abs(out - ref).max())
    bound = TOL[jnp.dtype(dtype).name] * max(1.0, float(np.abs(ref).max()))
    return err, bound


def _reference_f32(fn, args):
    """The reference on float32 copies of the same (possibly bfloat16) inputs."""
    return fn("reference", *[jnp.asarray(a, jnp.float32) for a in args])


def _check_batch(cases, target, dtype):
    """Run every (op, shape) in one jitted program: pallas (interpret) and
    the reference; return [(case, err, bound)] for those over tolerance."""
    built = [(op, s) + make_case(op, s, dtype, batch=2, seed=i) for i, (op, s) in enumerate(cases)]

    def run(argss):
        return [(fn("pallas", *a, target=target), _reference_f32(fn, a))
                for (_, _, fn, _), a in zip(built, argss)]

    outs = jax.jit(run)([b[3] for b in built])
    bad = []
    for (op, s, _, _), (o, r) in zip(built, outs):
        err, bound = _close(o, r, dtype)
        if not err <= bound:
            bad.append(((op, s), err, bound))
    return bad


# ----------------------------------------------------------- model shapes


@functools.lru_cache(maxsize=None)
def shapes():
    return model_kernel_shapes()


def _small(n: int) -> int:
    """A small spatial size with the parity of ``n`` (SAME padding at stride
    2 differs between odd and even sizes)."""
    return n if n <= 9 else 8 + n % 2


def model_configs():
    """One reduced-size case per distinct kernel configuration in the models:
    depthwise per (kernel, stride, padding, activation), 1x1 per (activation,
    residual), squeeze-excite per (activation, gate), each at the smallest
    channel count the models use with it; plus, per op, the smallest model
    shape whose channels split into several 128-lane blocks."""
    out, seen = [], set()
    keys = {"depthwise": lambda s: (s.k, s.stride, s.padding, s.act),
            "pointwise": lambda s: (s.act, s.residual),
            "squeeze_excite": lambda s: (s.act, s.gate)}
    chans = {"depthwise": lambda s: s.c, "pointwise": lambda s: s.n,
             "squeeze_excite": lambda s: s.c}
    for op in ("depthwise", "pointwise", "squeeze_excite"):
        by_c = sorted(shapes()[op], key=lambda s: (chans[op](s), s.h))
        for s in by_c:
            if (op, keys[op](s)) not in seen:
                seen.add((op, keys[op](s)))
                out.append((op, dataclasses.replace(s, h=_small(s.h), w=_small(s.w))))
        multi = next(s for s in by_c if chans[op](s) % 128 == 0 and chans[op](s) > 128)
        out.append((op, dataclasses.replace(multi, h=_small(multi.h), w=_small(multi.w))))
    return out


def test_model_shapes_are_enumerated_from_the_models():
    s = shapes()
    dw = s["depthwise"]
    assert {x.k for x in dw} == {3, 5} and {x.stride for x in dw} == {1, 2}
    assert {x.padding for x in dw} == {"same", "symmetric"}
    assert {x.act for x in dw} >= {"relu", "relu6", "swish", "hard_swish"}
    assert any(x.residual for x in s["pointwise"])
    assert {(x.act, x.gate) for x in s["squeeze_excite"]} == {
        ("swish", "sigmoid"), ("relu", "hard_sigmoid"),
        ("relu", "sigmoid")}  # the last: MediaPipe's selfie segmentation
    assert len(dw) > 100 and len(s["pointwise"]) > 100 and len(s["squeeze_excite"]) > 50


def test_interpret_tpu_plan_every_model_configuration_float32():
    cases = model_configs()
    assert len(cases) >= 30
    assert _check_batch(cases, "tpu", jnp.float32) == []


@pytest.mark.slow
def test_interpret_triton_plan_every_model_configuration_float32():
    assert _check_batch(model_configs(), "triton", jnp.float32) == []


def test_interpret_bfloat16_model_configurations():
    cases = model_configs()[::3]  # every 3rd configuration: all three ops
    assert {op for op, _ in cases} == {"depthwise", "pointwise", "squeeze_excite"}
    assert _check_batch(cases, "tpu", jnp.bfloat16) == []


def _random_cases(seed, n):
    rng = np.random.default_rng(seed)
    acts = [None, "relu", "relu6", "swish", "hard_swish"]
    out = []
    for i in range(n):
        op = ("depthwise", "pointwise", "squeeze_excite")[i % 3]
        h, w = (int(v) for v in rng.integers(1, 14, size=2))
        c = int(rng.integers(1, 200))
        if op == "depthwise":
            k = int(rng.choice([3, 5]))
            s = int(rng.choice([1, 2]))
            h, w = max(h, 2), max(w, 2)
            out.append((op, DepthwiseShape(h, w, c, k, s, str(rng.choice(["same", "symmetric"])),
                                           acts[int(rng.integers(len(acts)))])))
        elif op == "pointwise":
            out.append((op, PointwiseShape(h, w, c, int(rng.integers(1, 300)),
                                           acts[int(rng.integers(len(acts)))],
                                           bool(rng.integers(2)))))
        else:
            out.append((op, SEShape(h, w, c, int(rng.integers(1, 48)),
                                    str(rng.choice(["relu", "swish", "relu6", "hard_swish"])),
                                    str(rng.choice(["sigmoid", "hard_sigmoid"])))))
    return out


@pytest.mark.parametrize("target,dtype", [("tpu", "float32"), ("triton", "float32"),
                                          ("triton", "bfloat16")])
def test_interpret_random_shapes(target, dtype):
    cases = _random_cases({"tpu": 0, "triton": 1}[target] + (2 if dtype == "bfloat16" else 0), 6)
    assert _check_batch(cases, target, jnp.dtype(dtype)) == []


def test_a_wrong_kernel_is_caught():
    # The comparison can fail: a kernel fed the wrong weights is out of tolerance.
    fn, args = make_case("depthwise", DepthwiseShape(6, 6, 8, 3, 1, "same", "relu"), batch=2)
    bad = fn("pallas", args[0], args[1] * 1.01, *args[2:])
    err, bound = _close(bad, fn("reference", *args), jnp.float32)
    assert err > bound


# -------------------------------------------------------------- lowering


def _lower(op, shape_list, target, dtype=jnp.float32):
    """Export the pallas form of ``op`` at every shape for ``target``'s
    platform in one program; on failure, find the shapes that fail."""

    def export_all(ss):
        cases = [make_case(op, s, dtype, abstract=True) for s in ss]
        sds = [[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args] for _, args in cases]

        def f(argss):  # a fresh function: the trace cache must not reuse another target
            return [fn("pallas", *a) for (fn, _), a in zip(cases, argss)]

        with kernels.lowering_target(target):
            exp = export.export(jax.jit(f), platforms=[PLATFORM[target]],
                                disabled_checks=DISABLED)(sds)
        return exp.mlir_module()

    try:
        return export_all(shape_list), []
    except Exception:  # noqa: BLE001 - locate the failing shapes
        failures = []
        for s in shape_list:
            try:
                export_all([s])
            except Exception as e:  # noqa: BLE001
                failures.append((s, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"))
        return None, failures


def _planned_fallbacks(op, shape_list, target, dtype=jnp.float32):
    """Model shapes whose plan rejects them (these run the reference)."""
    from kernels.pointwise_conv import pointwise_plan
    from kernels.squeeze_excite import squeeze_excite_plan

    out = []
    for s in shape_list:
        if op == "depthwise":
            p = depthwise_plan((1, s.h, s.w, s.c), s.k, s.stride, s.padding, dtype, target)
        elif op == "pointwise":
            p = pointwise_plan(s.h * s.w, s.k, s.n, dtype, s.residual, target)
        else:
            p = squeeze_excite_plan((1, s.h, s.w, s.c), s.r, dtype, target)
        if p.reason:
            out.append((s, p.reason))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tpu", "triton"])
@pytest.mark.parametrize("op", ["depthwise", "pointwise", "squeeze_excite"])
def test_lowers_for_every_model_shape(op, target):
    shape_list = shapes()[op]
    text, failures = _lower(op, shape_list, target)
    assert failures == [], failures
    planned = _planned_fallbacks(op, shape_list, target)
    marker = "tpu_custom_call" if target == "tpu" else "__gpu$xla.gpu.triton"
    # One kernel per shape, except the shapes that fall back to the reference.
    assert text.count(marker) == len(shape_list) - len(planned)
    print(f"\n{op}/{target}: {len(shape_list)} model shapes lowered, "
          f"{len(planned)} fall back to the reference")
    for s, reason in planned:
        print(f"  fallback {s}: {reason}")


@pytest.mark.parametrize("target", ["tpu", "triton"])
def test_lowers_in_bfloat16_for_every_model_configuration(target):
    # bfloat16 changes the TPU tiling rule ((16, 128) instead of (8, 128)):
    # lower each model configuration at its largest real model shape.
    for op in ("depthwise", "pointwise", "squeeze_excite"):
        real = []
        for o, small in model_configs():
            if o != op:
                continue
            same = [s for s in shapes()[op] if dataclasses.replace(s, h=0, w=0)
                    == dataclasses.replace(small, h=0, w=0)]
            real.append(max(same, key=lambda s: s.h))
        text, failures = _lower(op, real, target, jnp.bfloat16)
        assert failures == [], failures


def test_fallback_is_recorded_with_its_reason():
    # A depthwise 5x5 over 4096x4096x128 does not fit TPU VMEM even at 8 rows.
    x = jax.ShapeDtypeStruct((1, 4096, 4096, 128), jnp.float32)
    w = jax.ShapeDtypeStruct((5, 5, 1, 128), jnp.float32)
    with kernels.lowering_target("tpu"):
        out = jax.eval_shape(functools.partial(kernels.depthwise_conv_bn_act_pallas, act="relu"),
                             x, w)
    assert out.shape == (1, 4096, 4096, 128)
    recorded = [f for f in kernels.fallbacks() if f.op == "depthwise_conv_bn_act"
                and f.shape[0] == (1, 4096, 4096, 128)]
    assert recorded and "VMEM" in recorded[0].reason


# -------------------------------------------------------------- gradients


@pytest.mark.parametrize("op,shape", [
    ("depthwise", DepthwiseShape(7, 6, 24, 5, 2, "same", "swish")),
    ("pointwise", PointwiseShape(5, 5, 40, 24, None, True)),
    ("squeeze_excite", SEShape(6, 6, 40, 10, "swish", "sigmoid")),
])
def test_gradients_match_reference(op, shape):
    fn, args = make_case(op, shape, batch=2)
    cot = jnp.asarray(np.random.default_rng(1).standard_normal(fn("reference", *args).shape),
                      jnp.float32)

    def loss(impl, *a):
        return jnp.sum(fn(impl, *a) * cot)

    argnums = tuple(range(len(args)))
    gp = jax.jit(jax.grad(functools.partial(loss, "pallas"), argnums))(*args)
    gr = jax.jit(jax.grad(functools.partial(loss, "reference"), argnums))(*args)
    for a, b in zip(gp, gr):
        err, bound = _close(a, b, jnp.float32)
        assert err <= bound


# ------------------------------------------------------------------ models


def _random_batch_stats(variables, seed=0):
    rng = np.random.default_rng(seed)

    def f(path, a):
        key = jax.tree_util.keystr(path)
        if "'var'" in key:
            return jnp.asarray(rng.uniform(0.5, 1.5, a.shape), a.dtype)
        if "'mean'" in key or "'bias'" in key:
            return jnp.asarray(rng.normal(0, 0.2, a.shape), a.dtype)
        return a

    return jax.tree_util.tree_map_with_path(f, variables)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0"])
def test_model_logits_equal_across_implementations(name):
    model, variables = zoo.create(name, seed=0)
    if name == "mobilenet_v2":
        # zoo.create(..., implementation="pallas") builds the same variables
        # (names, shapes, values): the fused layers declare what they replace.
        _, pallas_vars = zoo.create(name, seed=0, implementation="pallas")
        assert jax.tree.structure(variables) == jax.tree.structure(pallas_vars)
        assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), variables,
                                         pallas_vars))
    variables = _random_batch_stats(variables)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 64, 64, 3)), jnp.float32)
    ref = jax.jit(zoo.build(name, implementation="reference").apply)(variables, x)
    traced = jax.jit(zoo.build(name, implementation="pallas").apply).trace(variables, x)
    # The pallas model really runs Pallas kernels (interpret mode here): one
    # per depthwise conv, per 1x1 conv and per squeeze-excite.
    n_blocks = len(zoo.build(name).layout().blocks)
    assert str(traced.jaxpr).count("pallas_call") >= 2 * n_blocks
    out = traced.lower().compile()(variables, x)
    scale = float(jnp.abs(ref).max())
    err = float(jnp.abs(out - ref).max())
    assert err <= 1e-5 * max(1.0, scale), (err, scale)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blazeface_short_range", "face_mesh"])
def test_face_model_outputs_equal_across_implementations(name):
    """The face models (MediaPipe's real weights) through the Pallas kernels.
    Compared with xla_fast: XLA:CPU miscompiles BlazeFace's jitted grouped
    convolutions (tests/test_face_models.py), and xla_fast equals the
    op-by-op reference there."""
    spec = zoo.get_spec(name)
    variables = zoo.load_pretrained(name)
    x = jnp.asarray(np.random.default_rng(0).uniform(
        -1, 1, (1, spec.input_size, spec.input_size, 3)), jnp.float32)
    ref = jax.jit(zoo.build(name, implementation="xla_fast").apply)(variables, x)
    traced = jax.jit(zoo.build(name, implementation="pallas").apply).trace(variables, x)
    assert str(traced.jaxpr).count("pallas_call") >= 10
    out = traced.lower().compile()(variables, x)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref), strict=True):
        scale = float(jnp.abs(b).max())
        assert float(jnp.abs(a - b).max()) <= 1e-5 * max(1.0, scale)


def test_block_trains_with_kernels():
    """Gradients of a training step (batch statistics, dropout off) through
    an MBConv block with squeeze-excite: pallas kernels vs the reference."""
    from zoo.layers import ConvSettings, InvertedResidual

    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 8, 8, 16)), jnp.float32)
    block = {impl: InvertedResidual(out=16, expanded=48, kernel=5, act="hard_swish",
                                    se_reduced=8, se_act="relu", se_gate="hard_sigmoid",
                                    settings=ConvSettings(implementation=impl))
             for impl in ("reference", "pallas")}
    variables = block["reference"].init(jax.random.PRNGKey(0), x)

    def loss(params, impl):
        y, _ = block[impl].apply({**variables, "params": params}, x, train=True,
                                 mutable=["batch_stats"])
        return jnp.mean(y ** 2)

    gp = jax.jit(jax.grad(functools.partial(loss, impl="pallas")))(variables["params"])
    gr = jax.jit(jax.grad(functools.partial(loss, impl="reference")))(variables["params"])
    flat_p, flat_r = jax.tree.leaves(gp), jax.tree.leaves(gr)
    assert len(flat_p) == len(flat_r) == 13  # 3 convs, 3 BatchNorms x 2, SE 2 x 2
    for a, b in zip(flat_p, flat_r):
        scale = float(jnp.abs(b).max())
        assert scale > 0 and float(jnp.abs(a - b).max()) <= 1e-4 * scale


def test_mbconv_gpu_tile_budget_numbers():
    # The numbers kernels/mbconv.py gives for not writing a one-kernel MBConv on GPU.
    from kernels.mbconv import PROGRAM_REGISTER_BYTES, expand_recompute_factor, halo_tile_bytes

    assert halo_tile_bytes(16, 3, 1) == 16 * 16 * 16 * 4 == 16 * 1024
    assert halo_tile_bytes(1056, 5, 2) == 32 * 32 * 2048 * 4 == 8 * 2**20
    assert halo_tile_bytes(1056, 5, 2, chunk=32) == 128 * 1024
    assert expand_recompute_factor(3, 1) == expand_recompute_factor(5, 2) == 4.0
    fits = [s for s in shapes()["depthwise"]
            if halo_tile_bytes(s.c, s.k, s.stride) <= PROGRAM_REGISTER_BYTES]
    assert len(shapes()["depthwise"]) == 291 and len(fits) == 53
