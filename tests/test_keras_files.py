"""Keras weight files -> our variables (zoo.weights.from_keras_file), checked
against Keras 3 Applications (JAX backend) as in test_keras_parity: a Keras
model with random weights is written in every format we read, each file is
read back without Keras, and our logits must match Keras's:
max |ours - Keras| <= 1e-4 * max |Keras logit|, float32.

Formats: Keras's legacy HDF5 writer (what Keras Applications downloads are),
a full-model ``model.save("x.h5")`` (weights under ``model_weights``), a
Keras 2 style file (layer names as Keras 2 spelled them, ``:0`` suffixes,
``depthwise_kernel``), Keras 3 ``.weights.h5``, ``.keras``, and a ``.keras``
whose weights carry no layer names (as Keras < 3.6 wrote them).
"""

import re
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

import jax  # noqa: E402
from test_keras_parity import KERAS, KERAS_CONVENTIONS, keras_model  # noqa: E402

import zoo  # noqa: E402
from zoo.weights import WeightMismatchError, from_keras_file  # noqa: E402
from zoo.weights.keras_files import WeightFileError  # noqa: E402


RESOLUTION = {"mobilenet_v2": 96, "mobilenet_v3_small": 128, "efficientnet_b0": 128}
FORMATS = ["legacy", "legacy_model", "keras2", "weights_h5", "keras", "keras_nameless"]


def _keras2_name(model_name, layer):
    """How Keras 2 Applications (and their .h5 downloads) named the layer."""
    if model_name == "mobilenet_v2":
        return "Logits" if layer == "predictions" else layer
    if model_name.startswith("mobilenet_v3"):
        m = re.fullmatch(r"(expanded_conv(?:_\d+)?)_(expand|depthwise|project|squeeze_excite)(.*)",
                         layer)
        if m:
            block, part, rest = m.groups()
            rest = {"": "", "_bn": "/BatchNorm", "_conv": "/Conv", "_conv_1": "/Conv_1"}[rest]
            return f"{block}/{part}{rest}"
        return {"conv": "Conv", "conv_bn": "Conv/BatchNorm", "conv_1": "Conv_1",
                "conv_1_bn": "Conv_1/BatchNorm", "conv_2": "Conv_2", "logits": "Logits"}[layer]
    return layer


def _write_keras2(km, model_name, path):
    """A Keras 2 ``save_weights`` HDF5 file: root ``layer_names``; a group
    per layer with ``weight_names`` like ``Conv/BatchNorm/gamma:0``, byte
    strings. ``layer_names`` is split into ``layer_names0``, ``layer_names1``,
    ... as Keras 2 does for attributes over 64 KB."""
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.4.0"
        f.attrs["backend"] = b"tensorflow"
        names = []
        for layer in km.layers:
            name = _keras2_name(model_name, layer.name) if layer.weights else layer.name
            names.append(name.encode())
            g = f.require_group(name)
            weight_names = []
            for w, v in zip(layer.weights, layer.get_weights()):
                leaf = w.name.split("/")[-1]
                if type(layer).__name__ == "DepthwiseConv2D" and leaf == "kernel":
                    leaf = "depthwise_kernel"
                weight_names.append(f"{name}/{leaf}:0".encode())
                g.create_dataset(weight_names[-1].decode(), data=v)
            g.attrs["weight_names"] = np.asarray(weight_names)
        for i, chunk in enumerate(np.array_split(np.asarray(names), 3)):
            f.attrs[f"layer_names{i}"] = chunk


def _strip_names(src, dst):
    """Copy a Keras 3 weights file without the ``name`` attributes Keras >=
    3.6 stores on every ``vars`` group."""
    with h5py.File(src, "r") as fi, h5py.File(dst, "w") as fo:
        for key in fi:
            fi.copy(fi[key], fo, name=key)

        def strip(_, obj):
            if "name" in obj.attrs:
                del obj.attrs["name"]
        fo.visititems(strip)


def _write_files(km, model_name, tmp):
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    files = {f: tmp / f"{model_name}.{f}" for f in FORMATS}
    with h5py.File(files["legacy"], "w") as f:
        save_weights_to_hdf5_group(f, km)
    files["legacy_model"] = tmp / f"{model_name}.model.h5"
    km.save(files["legacy_model"])  # Keras 3 writes the legacy full-model format for .h5
    _write_keras2(km, model_name, files["keras2"])
    files["weights_h5"] = tmp / f"{model_name}.weights.h5"
    km.save_weights(files["weights_h5"])
    files["keras"] = tmp / f"{model_name}.keras"
    km.save(files["keras"])
    # The same archive with nameless weights: layers found through config.json.
    nameless = tmp / f"{model_name}.nameless.weights.h5"
    with zipfile.ZipFile(files["keras"]) as z:
        members = {n: z.read(n) for n in z.namelist()}
    (tmp / "inner.h5").write_bytes(members["model.weights.h5"])
    _strip_names(tmp / "inner.h5", nameless)
    members["model.weights.h5"] = nameless.read_bytes()
    files["keras_nameless"] = tmp / f"{model_name}.nameless.keras"
    with zipfile.ZipFile(files["keras_nameless"], "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return files


_BUILT = {}


def _built(name, tmp_path_factory):
    """One Keras model per zoo model, built once: its files, its logits on
    random images, our jitted model."""
    if name not in _BUILT:
        res = RESOLUTION[name]
        km = keras_model(name, res)
        x = np.random.default_rng(0).standard_normal((2, res, res, 3)).astype("f4")
        theirs = np.asarray(km.predict(x * KERAS[name][2], verbose=0))
        files = _write_files(km, name, tmp_path_factory.mktemp(name))
        apply = jax.jit(zoo.build(name, **KERAS_CONVENTIONS).apply)
        _BUILT[name] = name, files, x, theirs, apply
    return _BUILT[name]


@pytest.fixture(scope="module", params=list(RESOLUTION))
def case(request, tmp_path_factory):
    return _built(request.param, tmp_path_factory)


@pytest.mark.parametrize("fmt", FORMATS)
def test_keras_file_parity(case, fmt):
    name, files, x, theirs, apply = case
    variables = from_keras_file(files[fmt], name, **KERAS_CONVENTIONS)
    ours = np.asarray(apply(variables, x))
    scale = np.abs(theirs).max()
    assert scale > 1e-2
    assert np.abs(ours - theirs).max() <= 1e-4 * scale, (name, fmt, np.abs(ours - theirs).max())


@pytest.fixture(scope="module")
def v2_files(tmp_path_factory):
    return _built("mobilenet_v2", tmp_path_factory)[1]


@pytest.mark.parametrize("fmt", ["legacy", "keras"])
def test_file_for_another_model_is_reported_by_name(v2_files, fmt):
    path = v2_files[fmt]
    with pytest.raises(WeightMismatchError) as err:
        from_keras_file(path, "mobilenet_v2", width=0.5)
    msg = str(err.value)
    assert str(path) in msg
    # One line; the first keys of each kind in it, every key on the error.
    assert "\n" not in msg and "mis-shaped" in msg
    assert any(k.startswith("params/blocks_1/expand/conv/kernel") for k in err.value.misshaped)
    with pytest.raises(WeightMismatchError) as err:
        from_keras_file(path, "mobilenet_v3_small")
    msg = str(err.value)
    assert "missing" in msg and "unexpected" in msg and "\n" not in msg
    assert any("expanded_conv_squeeze_excite_conv" in k for k in err.value.missing)
    assert "bn_Conv1/gamma" in err.value.unexpected


def test_unreadable_files_are_named(v2_files, tmp_path):
    missing = tmp_path / "nothing.h5"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        from_keras_file(missing, "mobilenet_v2")

    text = tmp_path / "weights.h5"
    text.write_text("these are not weights\n")
    with pytest.raises(WeightFileError, match=re.escape(str(text)) + ".*not a Keras weight file"):
        from_keras_file(text, "mobilenet_v2")

    for fmt in ("legacy", "weights_h5"):
        data = v2_files[fmt].read_bytes()
        cut = tmp_path / f"cut.{fmt}.h5"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(WeightFileError, match=re.escape(str(cut)) + ".*truncated"):
            from_keras_file(cut, "mobilenet_v2")

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(WeightFileError, match=re.escape(str(other)) + ".*not Keras weights"):
        from_keras_file(other, "mobilenet_v2")

    archive = tmp_path / "other.keras"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(WeightFileError, match=re.escape(str(archive)) + ".*model.weights.h5"):
        from_keras_file(archive, "mobilenet_v2")

    # A .weights.h5 from Keras < 3.6 names no layers and has no config beside it.
    nameless = tmp_path / "old.weights.h5"
    _strip_names(v2_files["weights_h5"], nameless)
    with pytest.raises(WeightFileError, match=re.escape(str(nameless)) + ".*Keras < 3.6"):
        from_keras_file(nameless, "mobilenet_v2")
