"""Model behaviour: implementations agree, options, training mode, dtypes,
and clear errors on bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from helpers import images, randomize_batch_stats
from test_registry import DEPTH_NAMES, NAMES

SMALL = 64  # the networks are fully convolutional up to the pooling


@pytest.fixture(scope="module")
def b0():
    model, variables = zoo.create("efficientnet_b0")
    return model, randomize_batch_stats(variables)


# midas_small runs the same modules as midas_small_lite0 (decoder) and
# efficientnet_lite3 (encoder), both checked here; it would add 45 s of compiling.
@pytest.mark.parametrize("name", NAMES + [n for n in DEPTH_NAMES if n != "midas_small"])
def test_every_implementation_gives_the_same_logits(name):
    _, variables = zoo.create(name)
    variables = randomize_batch_stats(variables)
    x = images(2, SMALL)
    out = {impl: np.asarray(jax.jit(zoo.build(name, implementation=impl).apply)(variables, x))
           for impl in ("reference", "xla_fast")}  # "auto" is "xla_fast" on CPU (test_kernels)
    scale = np.abs(out["reference"]).max()
    assert scale > 1e-3  # a real signal, not a vanishing one
    # Same arithmetic, different float32 summation order: differences grow
    # with depth (about 1e-5 of the largest logit for Lite4); 1e-4 is the
    # bound the Keras parity tests use too.
    assert np.abs(out["xla_fast"] - out["reference"]).max() <= 1e-4 * scale


def test_features_only_strides():
    model = zoo.build("efficientnet_b0", features_only=True)
    _, variables = zoo.create("efficientnet_b0")
    feats = jax.jit(model.apply)(variables, images(1, 224))
    assert [f.shape[1] for f in feats] == [112, 56, 28, 14, 7]
    assert [f.shape[3] for f in feats] == [16, 24, 40, 112, 320]
    for name, channels in (("mobilenet_v2", [16, 24, 32, 96, 320]),
                           ("mobilenet_v1", [64, 128, 256, 512, 1024]),
                           ("mobilenet_v3_large", [16, 24, 40, 112, 160])):
        m = zoo.build(name, features_only=True)
        shapes = jax.eval_shape(lambda x: m.init(jax.random.PRNGKey(0), x),
                                jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
        feats = jax.eval_shape(m.apply, shapes, jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
        assert [f.shape[3] for f in feats] == channels, name
        assert [f.shape[1] for f in feats] == [112, 56, 28, 14, 7], name


def test_include_top_and_num_classes(b0):
    _, variables = b0
    fmap = jax.jit(zoo.build("efficientnet_b0", include_top=False).apply)(variables, images(1, 96))
    assert fmap.shape == (1, 3, 3, 1280)
    m10, v10 = zoo.create("efficientnet_b0", num_classes=10)
    assert jax.eval_shape(m10.apply, v10, images(3, 64)).shape == (3, 10)
    assert v10["params"]["classifier"]["kernel"].shape == (1280, 10)


def test_eval_is_default_and_pure(b0):
    model, variables = b0
    x = images(2, SMALL)
    apply = jax.jit(model.apply)
    a, b = apply(variables, x), apply(variables, x)
    np.testing.assert_array_equal(a, b)


def test_training_mode(b0):
    model, variables = b0
    x = images(4, SMALL)
    with pytest.raises(Exception):  # BatchNorm must be told it may update
        jax.eval_shape(lambda v: model.apply(v, x, train=True,
                                             rngs={"dropout": jax.random.PRNGKey(0)}), variables)

    @jax.jit
    def train_step(params, key):
        def loss(p):
            out, upd = model.apply({**variables, "params": p}, x, train=True,
                                   mutable=["batch_stats"], rngs={"dropout": key})
            return out.sum(), (out, upd)
        return jax.grad(loss, has_aux=True)(params)

    grads, (out1, upd) = train_step(variables["params"], jax.random.PRNGKey(1))
    _, (out2, _) = train_step(variables["params"], jax.random.PRNGKey(2))
    old = variables["batch_stats"]["stem"]["bn"]["mean"]
    new = upd["batch_stats"]["stem"]["bn"]["mean"]
    assert not np.allclose(old, new)  # statistics moved toward the batch's
    assert not np.allclose(out1, out2)  # dropout / stochastic depth differ by key
    assert np.isfinite(np.asarray(grads["stem"]["conv"]["kernel"])).all()
    assert np.abs(np.asarray(grads["stem"]["conv"]["kernel"])).max() > 0


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_compute_dtype(b0, dtype):
    _, variables = b0
    x = images(2, SMALL)
    ref = np.asarray(jax.jit(zoo.build("efficientnet_b0").apply)(variables, x))
    low = jax.jit(zoo.build("efficientnet_b0", dtype=dtype).apply)(variables, x)
    assert low.dtype == jnp.float32  # logits come back in float32
    low = np.asarray(low)
    cos = (ref * low).sum() / np.linalg.norm(ref) / np.linalg.norm(low)
    assert cos > 0.99
    assert jax.tree_util.tree_leaves(variables["params"])[0].dtype == jnp.float32


@pytest.mark.parametrize("bad,error,match", [
    (np.zeros((224, 224, 3), np.float32), ValueError, r"rank 4.*add a batch axis"),
    (np.zeros((1, 3, 224, 224), np.float32), ValueError, r"3 channels.*NCHW"),
    (np.zeros((1, 224, 224, 1), np.float32), ValueError, r"3 channels"),
    (np.zeros((1, 224, 224, 3), np.uint8), TypeError, r"floating-point.*zoo.preprocess"),
    (np.zeros((1, 16, 16, 3), np.float32), ValueError, r"16x16 is too small.*32x32"),
    ([[1.0, 2.0]], TypeError, r"expected an array"),
])
def test_bad_input_is_named(b0, bad, error, match):
    model, variables = b0
    # The checks run at trace time: the same error eagerly, jitted, abstractly.
    with pytest.raises(error, match=match):
        jax.jit(model.apply)(variables, bad)
    if isinstance(bad, np.ndarray):
        with pytest.raises(error, match=match):
            jax.eval_shape(model.apply, variables, bad)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="padding='reflect'"):
        zoo.create("mobilenet_v2", padding="reflect")
    with pytest.raises(ValueError, match="implementation='cuda'"):
        zoo.build("mobilenet_v2", implementation="cuda")
    with pytest.raises(ValueError, match="dtype=int8"):
        zoo.build("mobilenet_v2", dtype="int8")
    with pytest.raises(TypeError, match=r"unknown option\(s\) resolution.*zoo.get_spec"):
        zoo.create("mobilenet_v2", resolution=160)


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0"])
def test_cpu_inference_runs_convolutions_as_dots(name):
    """xla_fast inference has no convolution op left (1x1 convs are dots,
    the 3-channel stem is im2col + a dot, depthwise convs are multiply-adds),
    and its logits equal those of the same form with the dot forms off."""
    from zoo import layers

    _, variables = zoo.create(name)
    variables = randomize_batch_stats(variables)
    x = images(2, SMALL)
    fast = jax.jit(zoo.build(name, implementation="xla_fast").apply)
    assert "convolution" not in fast.lower(variables, x).as_text()
    layers.XLA_DOT_FORMS = False
    try:
        convs = jax.jit(zoo.build(name, implementation="xla_fast").apply)
        lowered = convs.lower(variables, x)
    finally:
        layers.XLA_DOT_FORMS = True
    assert "convolution" in lowered.as_text()
    a, b = np.asarray(fast(variables, x)), np.asarray(lowered.compile()(variables, x))
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()
