"""Conventions travel with the weights.

Keras weights need TF "same" padding and BatchNorm eps 1e-3, torchvision's
symmetric padding and 1e-5; both kinds fit the same model shapes, so only
the outputs would tell. Checked against the frameworks that define them: a
randomly initialised Keras MobileNetV2 (JAX backend) and the few-line torch
MobileNetV2 of benchmarks/torch_reference.py (torchvision's layout).
"""

import json

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import zoo
from helpers import numpy_variables
from zoo.weights import (KERAS, Conventions, ConventionsMismatchError, Weights, from_keras,
                         from_keras_file, from_torch)

WIDTH, SIZE = 0.35, 96  # small, fast, every block exercised; even size: "same" pads unevenly


@pytest.fixture(scope="module")
def keras_case():
    """(keras model, images, Keras logits) for a random MobileNetV2 whose
    BatchNorm statistics were calibrated on the images compared."""
    pytest.importorskip("keras")
    from test_keras_parity import keras_model

    x = np.random.default_rng(0).standard_normal((2, SIZE, SIZE, 3)).astype("f4")
    km = keras_model("mobilenet_v2", SIZE, calibration=x, alpha=WIDTH)
    theirs = np.asarray(km.predict(x, verbose=0))
    assert np.abs(theirs).max() > 1e-2
    return km, x, theirs


def relative_error(ours, theirs):
    return float(np.abs(np.asarray(ours) - theirs).max() / np.abs(theirs).max())


def test_conventions_values_and_messages():
    c = Conventions("same", 1e-3, "converted from Keras")
    assert str(c) == "padding='same', bn_eps=1e-3" and c.code() == "zoo.Conventions('same', 1e-3)"
    # The label is for messages only: equal conventions compare (and hash) equal.
    assert c == Conventions("same", 0.001) and hash(c) == hash(Conventions("same", 0.001))
    assert Conventions.from_json(json.loads(json.dumps(c.to_json()))) == c
    for bad, match in ((("valid", 1e-3), "padding='valid'"), (("same", -1.0), "bn_eps=-1.0"),
                       (("same", float("nan")), "bn_eps=nan")):
        with pytest.raises(ValueError, match=match):
            Conventions(*bad)
    with pytest.raises(ValueError, match="ckpt: expected"):
        Conventions.from_json({"padding": "same"}, "ckpt")


def test_weights_keep_conventions_through_jax():
    w = Weights({"params": {"a": np.ones(2, np.float32)}}, KERAS)
    doubled = jax.tree_util.tree_map(lambda a: a * 2, w)
    assert isinstance(doubled, Weights) and doubled.conventions == KERAS
    np.testing.assert_array_equal(doubled["params"]["a"], [2, 2])
    assert jax.device_get(jax.device_put(w)).conventions == KERAS
    # tree paths read like a dict's (merge_pretrained and friends key by them)
    [(path, _)] = jax.tree_util.tree_flatten_with_path(w)[0]
    assert [p.key for p in path] == ["params", "a"]
    assert type(w.variables) is dict and w.variables == {"params": w["params"]}
    exported = jax.export.export(jax.jit(lambda v: v["params"]["a"] + 1))(w)
    back = jax.export.deserialize(exported.serialize())
    np.testing.assert_array_equal(back.call(w), [2, 2])


def test_keras_weights_build_the_keras_model_and_match_keras(keras_case, tmp_path):
    km, x, theirs = keras_case
    w = from_keras(km, "mobilenet_v2", width=WIDTH)
    # Read from the Keras layers, not assumed: every BatchNormalization has eps 1e-3.
    assert w.conventions == Conventions("same", 1e-3)
    model, variables = zoo.create("mobilenet_v2", width=WIDTH, weights=w)
    assert (model.settings.padding, model.settings.bn_eps) == ("same", 1e-3)
    err = relative_error(jax.jit(model.apply)(variables, x), theirs)
    assert err <= 5e-5, err  # measured 2.1e-5 (float32 rounding)
    # Through a checkpoint: restoring builds the Keras model again, although
    # the spec's default is torchvision's.
    restored = zoo.restore(zoo.save(w, tmp_path / "ckpt"))
    model, variables = zoo.create("mobilenet_v2", width=WIDTH, weights=restored)
    assert (model.settings.padding, model.settings.bn_eps) == ("same", 1e-3)
    assert relative_error(jax.jit(model.apply)(variables, x), theirs) <= 5e-5
    # Keras files carry the same conventions.
    km.save_weights(tmp_path / "m.weights.h5")
    assert from_keras_file(tmp_path / "m.weights.h5", "mobilenet_v2",
                           width=WIDTH).conventions == KERAS
    # So do safetensors files the zoo writes, although their PyTorch names
    # alone would say torchvision's.
    from zoo.cli import main
    from zoo.weights.files import load_weight_file

    out = tmp_path / "m.safetensors"
    assert main(["convert-weights", str(tmp_path / "m.weights.h5"), "--model", "mobilenet_v2",
                 "--width", str(WIDTH), "--out", str(out)]) == 0
    back = load_weight_file(out, "mobilenet_v2", width=WIDTH)
    assert back.conventions == KERAS
    model, variables = zoo.create("mobilenet_v2", width=WIDTH, weights=back)
    assert relative_error(jax.jit(model.apply)(variables, x), theirs) <= 5e-5


def test_the_old_silent_path_is_refused_and_the_override_still_runs(keras_case):
    km, x, theirs = keras_case
    w = from_keras(km, "mobilenet_v2", width=WIDTH)
    model = zoo.build("mobilenet_v2", width=WIDTH)  # the spec's torchvision conventions
    expected = ("weights converted from Keras need padding='same', bn_eps=1e-3; the model was "
                "built with padding='symmetric', bn_eps=1e-5")
    for apply in (model.apply, jax.jit(model.apply)):
        with pytest.raises(ConventionsMismatchError, match=expected) as e:
            apply(w, x)
        assert "\n" not in str(e.value) and "zoo.create('mobilenet_v2', weights=" in str(e.value)
    with pytest.raises(ConventionsMismatchError, match="asked for padding='symmetric', "
                                                       "bn_eps=1e-5.*conventions="):
        zoo.create("mobilenet_v2", width=WIDTH, weights=w, padding="symmetric", bn_eps=1e-5)
    # Asking for what the weights need is no contradiction.
    zoo.create("mobilenet_v2", width=WIDTH, weights=w, padding="same")

    # The explicit overrides: apply the plain variables, or relabel in create.
    # Both run the Keras weights under torchvision's conventions, and that
    # is what the refusal protects from: a real difference from Keras.
    silent = np.asarray(jax.jit(model.apply)(w.variables, x))
    # Measured 4.4 with these calibrated statistics.
    assert relative_error(silent, theirs) > 1e-4, relative_error(silent, theirs)
    torch_like = Conventions("symmetric", 1e-5)
    forced, variables = zoo.create("mobilenet_v2", width=WIDTH, weights=w, conventions=torch_like)
    assert variables.conventions == torch_like
    np.testing.assert_allclose(jax.jit(forced.apply)(variables, x), silent, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        zoo.create("mobilenet_v2", weights=w, conventions=torch_like, padding="symmetric")


def torch_mobilenet_v2(num_classes, x):
    """benchmarks' torchvision-layout MobileNetV2 with random weights and
    BatchNorm statistics set from the images ``x`` (random gamma/beta,
    then one training-mode pass that makes the running statistics the
    batch's): activations stay O(1), and the statistics are not the
    defaults (mean 0, variance 1), under which a wrong epsilon hides."""
    torch = pytest.importorskip("torch")
    from benchmarks.torch_reference import MobileNetV2

    torch.manual_seed(0)
    net = MobileNetV2(num_classes=num_classes)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
                m.reset_running_stats()
                m.momentum = None  # a cumulative average: one pass gives the batch's
        net.train()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    return net.eval()


def test_torchvision_weights_round_trip_a_checkpoint_with_their_conventions(tmp_path):
    import torch

    x = np.random.default_rng(2).standard_normal((4, 64, 64, 3)).astype("f4")
    net = torch_mobilenet_v2(10, x)
    with torch.no_grad():
        theirs = net(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    state = {k: v.numpy() for k, v in net.state_dict().items()}
    w = from_torch(state, "mobilenet_v2", num_classes=10)
    assert w.conventions == Conventions("symmetric", 1e-5)

    restored = zoo.restore(zoo.save(w, tmp_path / "ckpt"))
    assert isinstance(restored, Weights) and restored.conventions == w.conventions
    assert str(tmp_path / "ckpt") in restored.conventions.source
    # A model built for Keras weights refuses them...
    keras_model = zoo.build("mobilenet_v2", num_classes=10, padding="same", bn_eps=1e-3)
    with pytest.raises(ConventionsMismatchError, match=f"restored from {tmp_path / 'ckpt'} need "
                                                       "padding='symmetric', bn_eps=1e-5"):
        keras_model.apply(restored, x)
    # ...and create builds the right one from the checkpoint.
    model, variables = zoo.create("mobilenet_v2", num_classes=10, weights=restored)
    err = relative_error(jax.jit(model.apply)(variables, x), theirs)
    assert err <= 1e-4, err  # measured 2.7e-5
    # Under Keras's conventions the same weights are far off (measured 2.1).
    assert relative_error(jax.jit(keras_model.apply)(restored.variables, x), theirs) > 0.1
    # Saving what create returned records its conventions again.
    again = zoo.restore(zoo.save(variables, tmp_path / "again"))
    assert again.conventions == w.conventions


def test_checkpoints_without_conventions_restore_with_the_spec_default(tmp_path):
    """Checkpoints written before conventions were recorded: a plain Orbax
    StandardCheckpointer save of the variables, which is all zoo.save wrote.
    (tests/data holds no zoo checkpoint, so the old format is written here.)"""
    old = ocp.StandardCheckpointer()
    # mobilenet_v3_small's spec has Keras's conventions, mobilenet_v2's torchvision's.
    for name, want in (("mobilenet_v3_small", ("same", 1e-3)),
                       ("mobilenet_v2", ("symmetric", 1e-5))):
        plain = numpy_variables(zoo.build(name))
        old.save(tmp_path / name, plain)
        old.wait_until_finished()
        restored = zoo.restore(tmp_path / name)
        assert type(restored) is dict
        model, variables = zoo.create(name, weights=restored)
        assert (model.settings.padding, model.settings.bn_eps) == want
        assert variables.conventions == Conventions(*want)
        for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(plain)):
            np.testing.assert_array_equal(a, b)


def test_training_checkpoints_record_and_check_conventions(tmp_path):
    from zoo.train.checkpoints import RunDir
    from zoo.train.config import TrainConfig

    config = TrainConfig(model="mobilenet_v2", data="digits", workdir=str(tmp_path / "run"))
    run = RunDir(config.workdir, config)
    assert run.conventions == Conventions("symmetric", 1e-5)
    variables = {"params": {"w": np.ones(3, np.float32)}}
    run.save_best(5, variables, {"top1": 0.5})
    best = zoo.restore(tmp_path / "run" / "best")
    assert best.conventions == run.conventions
    state = {"params": {"w": jax.numpy.ones(3)}, "step": jax.numpy.asarray(5, "int32")}
    run.save(5, state, {"pos": 1})
    run.close()
    assert RunDir(config.workdir, config).recorded_conventions(5) == run.conventions
    # Resuming with a model built under other conventions is refused.
    other = RunDir(config.workdir, config, conventions=KERAS)
    with pytest.raises(ConventionsMismatchError, match="need padding='symmetric', bn_eps=1e-5; "
                                                       "this run builds its model with "
                                                       "padding='same', bn_eps=1e-3"):
        other.restore(state)
    other.close()
    back, data = RunDir(config.workdir, config).restore(state)
    assert data == {"pos": 1} and int(back["step"]) == 5


@pytest.mark.parametrize("name", ["midas_small_lite0", "blazeface_short_range",
                                  "blazeface_full_range", "face_mesh", "selfie_segmentation",
                                  "talnet"])
def test_every_family_refuses_other_conventions_at_apply(name):
    """Not only the classifiers: each family's ``apply`` compares the
    weights' recorded conventions with the ones it was built with."""
    model = zoo.build(name)
    have = Conventions(model.settings.padding, model.settings.bn_eps)
    other = Conventions("symmetric" if have.padding == "same" else "same", 0.5, "made up here")
    inputs = jax.ShapeDtypeStruct((1, 64, 2048) if name == "talnet" else (1, 64, 64, 3),
                                  np.float32)
    with pytest.raises(ConventionsMismatchError, match=f"weights made up here need {other}; the "
                                                       f"model was built with {have}"):
        model.apply(Weights({"params": {}}, other), inputs)
    # Weights carrying the model's own conventions reach Flax (which then
    # finds the empty params wanting, a different error).
    with pytest.raises(Exception) as e:
        model.apply(Weights({"params": {}}, have), inputs)
    assert not isinstance(e.value, ConventionsMismatchError)


def test_a_face_model_runs_weights_with_its_own_conventions():
    model, variables = zoo.create("blazeface_short_range", seed=0)
    assert variables.conventions == Conventions(model.settings.padding, model.settings.bn_eps)
    out = jax.jit(model.apply)(variables, np.zeros((1, 128, 128, 3), np.float32))
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree_util.tree_leaves(out))


def test_recorded_conventions_in_a_safetensors_file_are_checked(tmp_path):
    from safetensors.numpy import save_file

    from zoo.weights.errors import WeightFileError
    from zoo.weights.files import load_weight_file
    from zoo.weights.torch import to_torch

    variables = numpy_variables(zoo.build("mobilenet_v2", width=WIDTH))
    state = to_torch(variables, "mobilenet_v2", width=WIDTH)
    plain, bad = tmp_path / "plain.safetensors", tmp_path / "bad.safetensors"
    save_file(state, plain)  # written elsewhere: no record, the family's PyTorch conventions
    assert load_weight_file(plain, "mobilenet_v2", width=WIDTH).conventions == \
        zoo.get_spec("mobilenet_v2").conventions
    save_file(state, bad, metadata={"zoo_conventions": '{"padding": "valid", "bn_eps": 1}'})
    with pytest.raises(WeightFileError, match="bad.safetensors: __metadata__ zoo_conventions: "
                                              "padding='valid'"):
        load_weight_file(bad, "mobilenet_v2", width=WIDTH)
    # An explicit choice is not second-guessed by the file.
    assert load_weight_file(bad, "mobilenet_v2", width=WIDTH,
                            conventions=KERAS).conventions == KERAS
