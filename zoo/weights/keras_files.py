"""Read Keras weight files into the zoo's variables, without Keras.

``from_keras_file(path, name, **options)`` recognises the format by the
file's contents (not its suffix) and reads it with h5py (and zipfile):

1. Legacy Keras 2 HDF5 -- the Keras Applications downloads
   (``efficientnetb0.h5``, ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5``,
   ``weights_mobilenet_v3_large_224_1.0_float.h5``), ``model.save_weights``
   of Keras 2 and Keras 3's legacy writer. The root (or, in a full-model
   ``model.save("x.h5")``, its ``model_weights`` group) has the attribute
   ``layer_names``; group ``f[layer]`` has ``weight_names`` such as
   ``stem_conv/kernel:0`` and those datasets. A weight's key is its name
   without the ``:0`` and with the layer name in front of the last
   component: ``stem_conv/kernel``, ``Conv/BatchNorm/gamma``. Long attributes
   split into ``layer_names0``, ``layer_names1``, ... are joined, as Keras
   does. Keras 2 MobileNetV3 files name layers ``Conv/BatchNorm``,
   ``expanded_conv_3/squeeze_excite/Conv_1``, ``Logits`` where Keras 3 (and
   ``keras_names()``) say ``conv_bn``, ``expanded_conv_3_squeeze_excite_conv_1``,
   ``logits``; old MobileNetV2 files call the classifier ``Logits`` instead
   of ``predictions``. (Keras itself loads these files by layer order, not
   name.) A source layer that is not one of the model's Keras names is
   renamed when exactly one model name has the same canonical form
   (``/BatchNorm`` -> ``_bn``, ``/`` -> ``_``, lower case; ``logits`` may
   stand for ``predictions``).
2. Keras 3 ``.weights.h5`` (``model.save_weights("x.weights.h5")``): groups
   ``layers/<path>/vars`` hold datasets ``0``, ``1``, ... in the order the
   layer saves its variables. ``<path>`` is not the layer's name but its
   class in snake case with a counter (``batch_normalization_12``,
   ``depthwise_conv2d``); Keras >= 3.6 stores the real layer name as the
   attribute ``name`` of the ``vars`` group, which is what we key by. The
   index becomes a weight name by the layer class (from the config of a
   ``.keras`` archive, else from the snake-case path): Conv*/Dense/
   DepthwiseConv2D ``kernel, bias``; SeparableConv* ``depthwise_kernel,
   pointwise_kernel, bias``; BatchNormalization ``gamma, beta, moving_mean,
   moving_variance`` (minus gamma/beta when the config says ``scale`` /
   ``center`` is off); LayerNormalization ``gamma, beta``. Files written by
   Keras 3.0-3.5 carry no layer names: without a config nothing ties their
   variables to layers except Keras's own layer order, so they are refused
   with a message saying how to load them (into the Keras model, then
   ``from_keras``; or re-save as ``.keras``). We deliberately do not import
   Keras to rebuild the model: the reader then needs neither Keras nor the
   exact constructor arguments the file was written with.
3. Keras 3 ``.keras`` archives (``model.save("x.keras")``): a zip holding
   ``config.json`` and ``model.weights.h5`` (format 2, read in memory). The
   config gives every layer's class and arguments; for files without name
   attributes, the layer paths are recomputed from it exactly as Keras
   numbers them (snake-case class name, ``_1``, ``_2``, ... per class in
   layer order, nested models under ``layers/<path>/layers``).

Preprocessing layers (``Rescaling``, ``Normalization``: their statistics are
``zoo.preprocess``'s job) are skipped; in legacy files, which carry no
classes unless they are full-model saves, a layer whose weights are only
``mean``/``variance``/``count`` counts as Normalization. Everything else is
handed to ``zoo.weights.keras.from_keras_arrays``, shared with the
live-model ``from_keras``, so mismatches raise ``WeightMismatchError``
naming every key. Unreadable files raise ``WeightFileError`` naming the
file; sharded Keras weights (``.weights.json`` + shards) are not supported.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from zoo.weights.keras import from_keras_arrays
from zoo.weights.torch_pickle import WeightFileError

__all__ = ["WeightFileError", "from_keras_file", "read_keras_file"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_PREPROCESSING = ("Normalization", "Rescaling")
_NORMALIZATION_LEAVES = {"mean", "variance", "count"}
# Keras 3 layer class -> names of the variables it saves, in order.
_CONV = ("kernel", "bias")
_VARIABLES = {
    **{c: _CONV for c in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
                          "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D", "Dense",
                          "EinsumDense")},
    **{c: ("depthwise_kernel", "pointwise_kernel", "bias")
       for c in ("SeparableConv1D", "SeparableConv2D")},
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "Normalization": ("mean", "variance", "count"),
    "Embedding": ("embeddings",),
}


def _snake(name: str) -> str:
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_CLASS_OF_SNAKE = {_snake(c): c for c in (*_VARIABLES, "Rescaling")}


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _require_h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading Keras .h5/.keras files needs h5py: "
                          "pip install 'zoo[keras]' (or pip install h5py)") from e
    return h5py


# ---------------------------------------------------------------- legacy .h5

def _attr_list(group, name: str) -> list[str] | None:
    """keras' load_attributes_from_hdf5_group: ``name`` or its chunks
    ``name0``, ``name1``, ... (None when absent)."""
    if name in group.attrs:
        values = list(group.attrs[name])
    elif f"{name}0" in group.attrs:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values += list(group.attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    return [_text(v) for v in values]


def _legacy_classes(f) -> dict[str, str]:
    """Layer name -> class from a full-model save's ``model_config``."""
    raw = f.attrs.get("model_config")
    if raw is None:
        return {}
    try:
        config = json.loads(_text(raw))
    except ValueError:
        return {}
    return {name: cls for name, (cls, _) in _config_layers(config)[0].items()}


def _read_legacy(f, label: str):
    root = f if _has_layer_names(f) else f["model_weights"]
    classes = _legacy_classes(f)
    source, skip = {}, set()
    for layer in _attr_list(root, "layer_names") or []:
        group = root[layer]
        weight_names = _attr_list(group, "weight_names") or []
        keys = []
        for weight_name in weight_names:
            parts = re.sub(r":\d+$", "", weight_name).split("/")
            prefix, leaf = "/".join(parts[:-1]), parts[-1]
            # Normally "<layer>/<leaf>" (possibly under an outer scope); the
            # weights of a nested model are named after its inner layers.
            if not prefix or prefix == layer or prefix.endswith("/" + layer):
                prefix = layer
            key = f"{prefix}/{leaf}"
            if key in source:
                raise WeightFileError(f"{label}: weight {key} appears twice")
            source[key] = np.asarray(group[weight_name])
            keys.append(key)
        leaves = {k.rsplit("/", 1)[1] for k in keys}
        if classes.get(layer) in _PREPROCESSING or (
                classes.get(layer) is None and leaves and leaves <= _NORMALIZATION_LEAVES):
            skip.update(keys)
    return source, skip


# ------------------------------------------------------- Keras 3 .weights.h5

def _config_layers(config, prefix: str = "layers", by_name=None, by_path=None):
    """``(by_name, by_path)``: layer name -> (class, config), and the path
    Keras 3 saves a layer's variables under -> (class, config), for every
    layer of a model config, nested models included. Paths are numbered as
    Keras's saving_lib does: snake-case class name, then ``_1``, ``_2``, ...
    per class, in layer order."""
    by_name = {} if by_name is None else by_name
    by_path = {} if by_path is None else by_path
    layers = (config.get("config") or {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return by_name, by_path
    used: dict[str, int] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", ""))
        cfg = layer.get("config") or {}
        name = cfg.get("name", layer.get("name"))
        snake = _snake(cls)
        if snake in used:
            used[snake] += 1
            snake = f"{snake}_{used[snake]}"
        else:
            used[snake] = 0
        path = f"{prefix}/{snake}"
        if name is not None:
            by_name[str(name)] = (cls, cfg)
        by_path[path] = (cls, cfg)
        _config_layers(layer, f"{path}/layers", by_name, by_path)
    return by_name, by_path


def _variable_names(cls: str | None, cfg: dict, count: int) -> list[str] | None:
    """Names of the ``count`` variables a ``cls`` layer saved, or None when
    they cannot be told apart."""
    names = list(_VARIABLES.get(cls or "", ()))
    if not names:
        return None
    if cls in ("BatchNormalization", "LayerNormalization"):
        if cfg.get("scale") is False:
            names.remove("gamma")
        if cfg.get("center") is False:
            names.remove("beta")
        return names if len(names) == count else None
    if len(names) == count:
        return names
    if names[-1] == "bias" and len(names) - 1 == count:  # use_bias=False
        return names[:-1]
    return None


def _read_keras3(f, label: str, config=None):
    by_name, by_path = _config_layers(config) if config else ({}, {})
    source, skip = {}, set()
    nameless = []

    def visit(path: str, group):
        if "vars" in group:
            variables = group["vars"]
            if len(variables):
                read_layer(path, variables)
        for key, child in group.items():
            if key != "vars" and hasattr(child, "items"):
                visit(f"{path}/{key}", child)

    def read_layer(path: str, variables):
        name = variables.attrs.get("name")
        at_path = by_path.get(path)
        if name is None:
            if at_path is None or at_path[1].get("name") is None:
                nameless.append(path)
                return
            name = at_path[1]["name"]
        name = _text(name)
        if at_path is None or at_path[1].get("name") != name:
            at_path = by_name.get(name)
        cls, cfg = at_path or (None, {})
        if cls is None:  # no config: the class from the saved path
            cls = _CLASS_OF_SNAKE.get(re.sub(r"_\d+$", "", path.rsplit("/", 1)[-1]))
        indices = sorted(variables, key=lambda k: (int(k) if k.isdigit() else 1 << 30, k))
        leaves = _variable_names(cls, cfg, len(indices)) or [f"vars/{i}" for i in indices]
        for index, leaf in zip(indices, leaves):
            key = f"{name}/{leaf}"
            if key in source:
                raise WeightFileError(f"{label}: weight {key} appears twice")
            source[key] = _dataset(variables[index])
            if cls in _PREPROCESSING:
                skip.add(key)

    visit("layers", f["layers"])
    if nameless:
        raise WeightFileError(
            f"{label}: a Keras 3 weights file without layer names (written by Keras < 3.6: "
            f"{len(nameless)} layers such as {nameless[0]!r} are known only by their position "
            "in the Keras model). Load it with keras (model.load_weights(path)) and use "
            "zoo.weights.from_keras(model, name), or save the model as .keras")
    return source, skip


def _dataset(ds) -> np.ndarray:
    if _text(ds.attrs.get("dtype", "")) == "bfloat16":
        import ml_dtypes

        return np.asarray(ds).view(ml_dtypes.bfloat16).astype(np.float32)
    return np.asarray(ds)


# ------------------------------------------------------------------- entry

def _has_layer_names(group) -> bool:
    return "layer_names" in group.attrs or "layer_names0" in group.attrs


def _read_h5(f, label: str, config=None):
    if _has_layer_names(f) or ("model_weights" in f and _has_layer_names(f["model_weights"])):
        return _read_legacy(f, label)
    if "layers" in f:
        return _read_keras3(f, label, config)
    raise WeightFileError(
        f"{label}: an HDF5 file but not Keras weights (no 'layer_names' attribute, "
        f"'model_weights' group or 'layers' group; top level: {sorted(f)[:10]})")


def read_keras_file(path):
    """``(arrays, skip)`` from a Keras weight file: ``arrays`` maps
    ``"<keras layer>/<weight>"`` to numpy arrays (``stem_conv/kernel``,
    ``stem_bn/moving_mean``); ``skip`` holds the keys of preprocessing
    layers. Raises ``FileNotFoundError`` or ``WeightFileError``."""
    path = Path(path)
    label = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Keras weight file at {path}")
    with open(path, "rb") as fh:
        head = fh.read(8)
    is_zip = zipfile.is_zipfile(path)
    if not is_zip and head != _HDF5_MAGIC and not _require_h5py().is_hdf5(os.fspath(path)):
        raise WeightFileError(f"{label}: not a Keras weight file (neither HDF5 .h5 nor a "
                              f".keras zip archive; starts with {head!r})")
    h5py = _require_h5py()
    try:
        if is_zip:
            return _read_archive(path, label, h5py)
        with h5py.File(path, "r") as f:
            return _read_h5(f, label)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise WeightFileError(f"{label}: cannot read this Keras weight file, is it truncated "
                              f"or corrupted? ({type(e).__name__}: {e})") from e


def _read_archive(path, label: str, h5py):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if "model.weights.h5" not in names:
            sharded = " (sharded weights are not supported)" if any(
                n.endswith(".weights.json") for n in names) else ""
            raise WeightFileError(f"{label}: a zip archive without model.weights.h5, not a "
                                  f".keras model{sharded}; it holds {sorted(names)[:10]}")
        config = None
        if "config.json" in names:
            try:
                config = json.loads(z.read("config.json"))
            except ValueError as e:
                raise WeightFileError(f"{label}: config.json is not JSON ({e})") from e
        data = z.read("model.weights.h5")
    with h5py.File(io.BytesIO(data), "r") as f:
        return _read_h5(f, f"{label}:model.weights.h5", config)


def _canonical(name: str) -> str:
    return name.replace("/BatchNorm", "_bn").replace("/", "_").lower()


def _rename_legacy(source, skip, keras_names) -> tuple[dict, set]:
    """Keras 2 layer names -> the model's Keras 3 names, where unambiguous."""
    targets = set(keras_names)
    by_canonical: dict[str, list[str]] = {}
    for t in targets:
        by_canonical.setdefault(_canonical(t), []).append(t)
    layers = {k.rsplit("/", 1)[0] for k in source}
    taken = layers & targets
    rename = {}
    for layer in sorted(layers - targets):
        canon = _canonical(layer)
        found = by_canonical.get(canon, [])
        if not found and canon == "logits":
            found = by_canonical.get("predictions", [])
        if len(found) == 1 and found[0] not in taken:
            rename[layer] = found[0]
            taken.add(found[0])
    if not rename:
        return source, skip

    def new(key):
        layer, leaf = key.rsplit("/", 1)
        return f"{rename.get(layer, layer)}/{leaf}"
    return {new(k): v for k, v in source.items()}, {new(k) for k in skip}


def from_keras_file(path, name: str, **options) -> dict:
    """Variables for zoo model ``name`` from a Keras weight file: legacy
    HDF5 (Keras Applications downloads, ``model.save("x.h5")``), Keras 3
    ``.weights.h5`` or a ``.keras`` archive (see the module docstring).

    ``options`` are ``zoo.create``'s (``width``, ``num_classes``, ...); run
    the result with ``zoo.create(name, padding="same", bn_eps=1e-3)``, the
    conventions Keras checkpoints were trained with. Raises
    ``FileNotFoundError``, ``WeightFileError`` (not a readable Keras file,
    naming it) or ``WeightMismatchError`` (the file is for another model,
    naming every missing, unexpected or mis-shaped key).
    """
    from zoo.registry import build

    source, skip = read_keras_file(path)
    model = build(name, **options)
    if hasattr(model, "keras_names"):
        source, skip = _rename_legacy(source, skip, model.keras_names().values())
    return from_keras_arrays(source, name, source_label=f"Keras file {os.fspath(path)}",
                             skip=skip, **options)
