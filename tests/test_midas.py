"""MiDaS v2.1 small (``midas_small``) and the zoo's ``midas_small_lite0``:
parity with MiDaS's own code, the published weights' key names, the
unpinned weight source, shapes, errors, training mode, counts.

MiDaS is not installable beside the pinned torch here, so its
``MidasNet_small`` ran once in a throwaway venv
(tests/data/midas/make_fixture.py, its commands in the docstring): filled
with reproducible weights, it recorded its state-dict keys and shapes, its
parameter count and its depth on a 256x256 and a 192x320 input. Here the
same weights are rebuilt from the key list, written with ``torch.save`` as
MiDaS's release file is, read back by our reader (no torch involved) and
run by our model. Measured: 2.9e-6 (256x256) and 2.8e-6 (192x320) of the
largest depth, the float32 noise floor of this network (PyTorch's own
float32 against float64 differ by 2.8e-6 and 3.3e-6).
"""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from helpers import images, randomize_batch_stats
from zoo.counting import analytic_counts
from zoo.models.midas import network_size, upsample2x, with_backbone
from zoo.weights.errors import UnpinnedSourceError, WeightsUnavailableError
from zoo.weights.fetch import cache_path
from zoo.weights.files import load_weight_file
from zoo.registry import variables_template
from zoo.weights.mapping import WeightMismatchError, template_leaves
from zoo.weights.torch import from_torch

DATA = Path(__file__).parent / "data" / "midas"
_spec = importlib.util.spec_from_file_location("midas_fixture", DATA / "make_fixture.py")
fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture)
FIXTURE = json.loads((DATA / "midas_small.json").read_text())
KEYS = [(k, tuple(s)) for k, s in FIXTURE["keys"]]


@pytest.fixture(scope="module")
def midas_cache(tmp_path_factory):
    """A weight cache holding, where ``midas_small``'s unpinned release file
    goes, a ``torch.save`` of MidasNet_small with fill()'s weights (with the
    BatchNorm counters, as MiDaS's own file has them)."""
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("midas-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_CACHE", str(root))
        path = cache_path(zoo.get_spec("midas_small").weights[0])
    path.parent.mkdir(parents=True)
    state = {k: torch.from_numpy(v) for k, v in fixture.fill(KEYS).items()}
    for k, _ in KEYS:
        state.setdefault(k, torch.tensor(0))
    torch.save(state, path)
    return root, path


def _offline(monkeypatch, root):
    monkeypatch.setenv("ZOO_CACHE", str(root))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.delenv("ZOO_ALLOW_UNPINNED", raising=False)

    def refuse(*a, **k):
        raise AssertionError("network touched")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ----------------------------------------------------------- interpolation


@pytest.mark.parametrize("align_corners", [True, False])
def test_upsample_equals_torch_interpolate(align_corners):
    """Bilinear x2 against PyTorch's F.interpolate (the op MiDaS calls),
    including the 1-pixel and odd sizes and an axis long enough for float32
    position rounding to show (measured: 4.8e-7 on values up to 5)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (1, 4), (2, 3), (5, 8), (13, 7), (96, 128)]:
        x = rng.standard_normal((2, h, w, 6)).astype(np.float32)
        want = torch.nn.functional.interpolate(
            torch.from_numpy(x).permute(0, 3, 1, 2), scale_factor=2, mode="bilinear",
            align_corners=align_corners).permute(0, 2, 3, 1).numpy()
        got = np.asarray(jax.jit(upsample2x, static_argnums=1)(x, align_corners))
        assert got.shape == want.shape == (2, 2 * h, 2 * w, 6)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=str((h, w)))


# -------------------------------------------------------- MiDaS parity


def test_fixture_is_midas_small():
    """The fixture's network is the one midas_small declares: the same
    parameter count as ours, keys for every module we map."""
    model = zoo.build("midas_small")
    assert analytic_counts(model, 64).params == FIXTURE["params"]
    sources = {k.rsplit(".", 1)[0] for k, _ in KEYS}
    names = model.torch_names()
    modules = {path[1:-1] for path, _ in template_leaves(variables_template(model))}
    assert {names[m] for m in modules} == sources


def test_midas_state_dict_gives_midas_depth(midas_cache, monkeypatch):
    """MiDaS's file layout, read by our reader through the unpinned source
    (offline, with the opt-in), gives MiDaS's depth on both inputs."""
    root, path = midas_cache
    _offline(monkeypatch, root)
    variables = zoo.load_pretrained("midas_small", allow_unpinned=True)
    same = load_weight_file(path, "midas_small")
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(same)):
        np.testing.assert_array_equal(a, b)
    model = zoo.build("midas_small", implementation="reference")
    apply = jax.jit(model.apply)
    step = FIXTURE["subsample"]
    for entry in FIXTURE["outputs"]:
        _, h, w, _ = entry["input"]
        got = np.asarray(apply(variables, fixture.image(h, w)))
        assert got.shape == (1, h, w) and got.dtype == np.float32
        got = got[0]
        want = np.asarray(entry["subsample"], np.float32)
        assert 0.1 < entry["positive"] < 0.95  # a real depth map, not a dead ReLU
        rel = np.abs(got[::step, ::step] - want).max() / np.abs(want).max()
        assert rel <= 1e-4, f"{h}x{w}: {rel:.2e} of max depth"
        d = got.astype(np.float64)
        for stat, value in (("mean", d.mean()), ("rms", np.sqrt((d * d).mean())),
                            ("max", d.max())):
            assert value == pytest.approx(entry[stat], rel=1e-4), (h, w, stat)
    # The check can fail: a plausible mapping slip deep in the encoder (one
    # BatchNorm's mean and variance swapped) moves the depth far past 1e-4.
    stats = variables["batch_stats"]["encoder"]
    last = max(stats, key=lambda k: int(k.split("_")[1]) if k.startswith("blocks_") else -1)
    bn = stats[last]["project"]["bn"]
    slipped = jax.tree_util.tree_map(lambda a: a, variables)
    slipped["batch_stats"]["encoder"][last]["project"]["bn"] = {"mean": bn["var"],
                                                                "var": 0.5 + np.abs(bn["mean"])}
    entry = FIXTURE["outputs"][0]
    off = np.asarray(apply(slipped, fixture.image(*entry["input"][1:3])))[0, ::step, ::step]
    want = np.asarray(entry["subsample"], np.float32)
    assert np.abs(off - want).max() / np.abs(want).max() > 1e-2


def test_wrong_state_dicts_are_refused_by_key():
    state = fixture.fill(KEYS)
    with pytest.raises(WeightMismatchError) as e:
        from_torch(state, "midas_small_lite0")  # Lite3 encoder, 64-wide decoder
    assert "scratch.refinenet4.resConfUnit1.conv1.weight" in e.value.unexpected
    assert any("encoder/blocks_" in m for m in e.value.misshaped)
    assert "mis-shaped" in str(e.value) and "unexpected" in str(e.value)

    missing = {k: v for k, v in state.items() if k != "scratch.output_conv.4.bias"}
    with pytest.raises(WeightMismatchError,
                       match=r"missing .*head/conv3/bias \(looked for scratch.output_conv.4.bias"):
        from_torch(missing, "midas_small")
    extra = dict(state, **{"scratch.refinenet5.out_conv.weight": np.zeros((1, 1, 1, 1))})
    with pytest.raises(WeightMismatchError, match=r"unexpected .*scratch.refinenet5.out_conv"):
        from_torch(extra, "midas_small")


# ------------------------------------------------------- unpinned source


def test_unpinned_source_is_refused_without_opt_in(midas_cache, monkeypatch, tmp_path):
    root, _ = midas_cache
    _offline(monkeypatch, root)
    source = zoo.get_spec("midas_small").weights[0]
    assert source.unpinned and not (source.sha256 or source.md5 or source.sha256_prefix)
    assert source.url.endswith("/v2_1/midas_v21_small_256.pt") and source.license == "MIT"
    for call in (lambda: zoo.load_pretrained("midas_small"),
                 lambda: zoo.create("midas_small", pretrained=True)):
        with pytest.raises(UnpinnedSourceError) as e:  # even though the file is cached
            call()
        message = str(e.value)
        assert "\n" not in message and "midas_v21_small_256.pt has no published hash" in message
        assert "allow_unpinned=True" in message and "ZOO_ALLOW_UNPINNED=1" in message
    _, variables = zoo.create("midas_small", pretrained=True, allow_unpinned=True)
    assert "encoder" in variables["params"]
    monkeypatch.setenv("ZOO_ALLOW_UNPINNED", "1")
    assert "encoder" in zoo.load_pretrained("midas_small")["params"]
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))  # nothing cached, offline
    with pytest.raises(WeightsUnavailableError, match=r"midas_v21_small_256\.pt.*no published hash"):
        zoo.load_pretrained("midas_small")


# ------------------------------------------------------ shapes and errors


@pytest.fixture(scope="module")
def lite0():
    model, variables = zoo.create("midas_small_lite0")
    return model, randomize_batch_stats(variables)


def test_output_shape_and_encoder_tree(lite0):
    model, variables = lite0
    assert model.backbone == "efficientnet_lite0" and model.features == 32 and model.expand
    out = jax.jit(model.apply)(variables, images(2, 64))
    assert out.shape == (2, 64, 64) and out.dtype == jnp.float32
    x = np.zeros((1, 64, 96, 3), np.float32)
    assert jax.eval_shape(model.apply, variables, x).shape == (1, 64, 96)
    # The encoder is the classifier's variable tree without head and
    # classifier: a classifier's (here random) variables merge in by name.
    rng = np.random.default_rng(1)

    def classifier(name):
        return jax.tree_util.tree_map(lambda a: rng.standard_normal(a.shape).astype(a.dtype),
                                      variables_template(zoo.build(name)))

    cls = classifier("efficientnet_lite0")
    for collection in ("params", "batch_stats"):
        trunk = {k: v for k, v in cls[collection].items() if k not in ("head", "classifier")}
        assert (jax.tree_util.tree_structure(variables[collection]["encoder"])
                == jax.tree_util.tree_structure(trunk))
    merged = with_backbone(variables, cls)
    for collection in ("params", "batch_stats"):
        trunk = {k: v for k, v in cls[collection].items() if k not in ("head", "classifier")}
        for a, b in zip(jax.tree_util.tree_leaves(merged[collection]["encoder"]),
                        jax.tree_util.tree_leaves(trunk)):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(merged["params"]["head"]["conv3"]["kernel"],
                                  variables["params"]["head"]["conv3"]["kernel"])
    with pytest.raises(ValueError, match="do not fit this encoder"):
        with_backbone(variables, classifier("efficientnet_lite1"))


@pytest.mark.parametrize("bad,error,match", [
    (np.zeros((1, 100, 96, 3), np.float32), ValueError,
     r"input 100x96 must have both sides multiples of 32 \(e.g. 128x96"),
    (np.zeros((1, 16, 32, 3), np.float32), ValueError, r"16x32 is too small"),
    (np.zeros((64, 64, 3), np.float32), ValueError, r"rank 4.*add a batch axis"),
    (np.zeros((1, 64, 64, 3), np.uint8), TypeError, r"floating-point"),
])
def test_bad_input_is_named(lite0, bad, error, match):
    model, variables = lite0
    with pytest.raises(error, match=match):
        jax.eval_shape(model.apply, variables, bad)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match=r"features_only=True does not apply.*"
                                         r"zoo.build\('efficientnet_lite3', features_only=True\)"):
        zoo.build("midas_small", features_only=True)
    with pytest.raises(ValueError, match="include_top=False does not apply"):
        zoo.build("midas_small", include_top=False)
    with pytest.raises(ValueError, match="has no width multiplier"):
        zoo.build("midas_small", width=0.5)
    with pytest.raises(ValueError, match="no pretrained weights are registered for "
                                         "'talnet'"):
        zoo.create("talnet", pretrained=True)
    assert zoo.build("midas_small", features=32).widths() == (32, 64, 128, 256)


def test_training_mode(lite0):
    """train=True needs only mutable batch_stats (BatchNorm is the
    encoder's) and no rng; the decoder's gradients flow. (Gradients through
    the encoder are the classifiers' training tests': the same modules.
    Differentiating the decoder only keeps this compile short.)"""
    model, variables = lite0
    x = images(2, 64)

    @jax.jit
    def step(decoder):
        def loss(d):
            params = {**d, "encoder": variables["params"]["encoder"]}
            out, upd = model.apply({**variables, "params": params}, x, train=True,
                                   mutable=["batch_stats"])
            return jnp.mean((out - 1.0) ** 2), upd
        return jax.grad(loss, has_aux=True)(decoder)

    decoder = {k: v for k, v in variables["params"].items() if k != "encoder"}
    grads, upd = step(decoder)
    assert list(upd["batch_stats"]) == ["encoder"]
    old = variables["batch_stats"]["encoder"]["stem"]["bn"]["mean"]
    assert not np.allclose(old, upd["batch_stats"]["encoder"]["stem"]["bn"]["mean"])
    for path in (("reduce1", "kernel"), ("fuse4", "unit", "conv1", "kernel"),
                 ("fuse1", "skip_unit", "conv2", "bias"), ("head", "conv3", "kernel")):
        g = grads
        for k in path:
            g = g[k]
        assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0, path


# ---------------------------------------------------------------- counts


def test_counts_against_published_and_budget(lite0):
    """midas_small: exactly MiDaS's own count of its MidasNet_small (the
    fixture), which MiDaS's README rounds to 21 M. midas_small_lite0: at most
    6 M in all, without MiDaS's unused unit. The analytic multiply-adds
    agree with XLA's count of the compiled network within 10 %: XLA counts
    only the taps of a padded 3x3 conv that land inside the map (69 % on
    the 4x4 map at stride 32 here; measured ratio 0.95), and the
    interpolations add elementwise flops the multiply-add count leaves out."""
    spec = zoo.get_spec("midas_small")
    c = analytic_counts(zoo.build("midas_small"), spec.input_size)
    assert c.params == FIXTURE["params"]
    assert round(c.params / 1e6) == spec.published.params / 1e6 == 21
    assert spec.published.macs is None and spec.published.top1 is None
    assert dict(spec.published.metrics)["KITTI delta>1.25 %"] == 29.27
    c0 = analytic_counts(zoo.build("midas_small_lite0"), 256)
    assert c0.params <= 6_000_000
    _, v0 = lite0
    assert zoo.count_params(v0) == c0.params and "skip_unit" not in v0["params"]["fuse4"]
    model = zoo.build("midas_small_lite0", implementation="reference")
    x = jax.ShapeDtypeStruct((1, 128, 128, 3), jnp.float32)
    flops = jax.jit(model.apply).lower(v0, x).compile().cost_analysis()["flops"]
    assert 0.9 <= flops / (2 * zoo.count_macs(model, 128)) <= 1.1


def test_network_size_is_midas_upper_bound():
    # Hand-worked from midas/transforms.py (Resize, "upper_bound", multiple of 32).
    assert network_size(480, 640) == (192, 256)  # scale 0.4: 192 x 256
    assert network_size(500, 741) == (160, 256)  # 172.7 -> 160 (nearest multiple)
    assert network_size(256, 256) == (256, 256)
    assert network_size(1000, 1000) == (256, 256)
    assert network_size(300, 200) == (256, 160)  # 170.7 -> 160
    assert network_size(2000, 100) == (256, 32)  # 12.8 would round to 0


def test_safetensors_in_midas_layout(tmp_path):
    """``to_torch`` writes midas_small's variables under exactly the keys and
    shapes MiDaS's own MidasNet_small has (recorded in the fixture; the unused
    unit's keys included), and reading the file back gives the variables."""
    from safetensors.numpy import load_file, save_file

    from zoo.weights.torch import to_torch

    _, variables = zoo.create("midas_small")
    state = to_torch(variables, "midas_small")
    midas = {k: s for k, s in KEYS if not k.endswith("num_batches_tracked")}
    assert {k: a.shape for k, a in state.items()} == midas
    save_file(state, tmp_path / "m.safetensors")
    assert {k: a.shape for k, a in load_file(tmp_path / "m.safetensors").items()} == midas
    back = load_weight_file(tmp_path / "m.safetensors", "midas_small")
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(
        lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), back, variables))
