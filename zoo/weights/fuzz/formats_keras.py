"""Fuzz targets for the Keras weight-file readers (``zoo.weights.keras_files``):

    keras_h5          legacy HDF5 (Keras 2 ``save_weights``, Keras 3's legacy
                      writer, full-model ``model.save("x.h5")``)
    keras_weights_h5  Keras 3 ``.weights.h5`` (``layers/<path>/vars/<i>``)
    keras_zip         Keras 3 ``.keras`` archives (config.json + model.weights.h5)

Seeds are small files laid out as Keras writes them, built here with h5py
and zipfile (no Keras import: it would pull TensorFlow in). Crafted cases
are the known attacks; the structured mutators edit HDF5 objects (a scalar
where a group belongs, string/compound/enum dtypes, nested groups, huge
unwritten datasets, hard-link cycles, soft/external links, compression,
external raw data), JSON (a config that is not an object, deep nesting, bad
UTF-8, huge numbers) and zip records (compression method, encryption
flags, declared sizes, CRCs, duplicate or missing members).
"""

from __future__ import annotations

import functools
import io
import json
import random
import struct
import zipfile
import zlib

import numpy as np

from zoo.weights.fuzz import Target

# The seeds, crafted cases and mutators are reached through TARGETS.
__all__ = ["READ", "TARGETS", "build_zip", "edit_h5", "heap_object_size", "keras_zip",
           "legacy_h5", "weights_h5", "zip_members"]

READ = "zoo.weights.keras_files:read_keras_file"

_RNG_SEED = 20240611


def _h5py():
    import h5py

    return h5py


def _arrays():
    rng = np.random.default_rng(_RNG_SEED)
    f32 = lambda *s: rng.standard_normal(s).astype("f4")  # noqa: E731
    return {
        "conv": {"kernel": f32(3, 3, 2, 4), "bias": f32(4)},
        "bn": {"gamma": f32(4), "beta": f32(4), "moving_mean": f32(4),
               "moving_variance": np.abs(f32(4)) + 0.5},
        "dw": {"kernel": f32(3, 3, 4, 1)},
        "d1": {"kernel": f32(4, 3), "bias": f32(3)},
    }


def _h5_bytes(build, libver=None) -> bytes:
    h5py = _h5py()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=libver) as f:
        build(f)
    return buffer.getvalue()


# ----------------------------------------------------------------- configs

def _config(nested: bool = True) -> dict:
    """A Keras 3 Functional config (trimmed to what the reader uses)."""
    layer = lambda cls, name, **cfg: {"module": "keras.layers", "class_name": cls,  # noqa: E731
                                      "config": {"name": name, "trainable": True, **cfg},
                                      "name": name, "inbound_nodes": []}
    head = {"module": "keras", "class_name": "Sequential", "name": "head",
            "config": {"name": "head", "layers": [layer("Dense", "d1", units=3)]}}
    layers = [layer("InputLayer", "input_layer", batch_shape=[None, 8, 8, 2]),
              layer("Conv2D", "conv", filters=4, kernel_size=[3, 3], use_bias=True),
              layer("BatchNormalization", "bn", center=True, scale=True, epsilon=0.001),
              layer("DepthwiseConv2D", "dw", kernel_size=[3, 3], use_bias=False),
              layer("GlobalAveragePooling2D", "pool")]
    if nested:
        layers.append(head)
    return {"module": "keras.src.models.functional", "class_name": "Functional",
            "config": {"name": "tiny", "trainable": True, "layers": layers},
            "registered_name": "Functional"}


# ------------------------------------------------------------------- seeds

def legacy_h5(style: str = "keras3", full_model: bool = False) -> bytes:
    """Keras's legacy HDF5 weights. ``keras3``: Keras 3's writer
    (variable-length names, ``conv/conv/kernel``); ``keras2``: fixed-length
    byte names with ``:0``, name scopes (``Conv/BatchNorm``) and
    ``layer_names`` split into ``layer_names0``, ``layer_names1``.

    The layers are a small conv / batch-norm / depthwise / dense model with
    seeded random float32 weights (needs h5py).

    Args:
        style: "keras2" for Keras 2's layout; anything else gives Keras 3's.
        full_model: as ``model.save("x.h5")`` writes it: a ``model_config``
            attribute (JSON) and the weights under ``model_weights``.

    Returns:
        The HDF5 file's bytes.
    """
    arrays = _arrays()
    keras2 = style == "keras2"
    h5py = _h5py()

    def build(f):
        f.attrs["backend"] = "tensorflow" if keras2 else "jax"
        f.attrs["keras_version"] = "2.4.0" if keras2 else "3.15.1"
        root = f
        if full_model:
            f.attrs["model_config"] = json.dumps(_config(nested=False))
            root = f.create_group("model_weights")
        names = []
        for layer, weights in [("input_layer", {}), *arrays.items()]:
            name = {"bn": "Conv/BatchNorm"}.get(layer, layer) if keras2 else layer
            names.append(name)
            g = root.require_group(name)
            weight_names = []
            for leaf, value in weights.items():
                if keras2:
                    if layer == "dw":
                        leaf = "depthwise_kernel"
                    wname = f"{name}/{leaf}:0"
                    g.create_dataset(wname, data=value)
                else:
                    wname = f"{name}/{leaf}"
                    g.create_dataset(f"{name}/{leaf}", data=value)
                weight_names.append(wname)
            if keras2:
                g.attrs["weight_names"] = np.asarray([w.encode() for w in weight_names],
                                                     dtype="S") if weight_names else \
                    np.zeros(0, "f8")
            else:
                g.attrs["weight_names"] = (np.asarray(weight_names, dtype=h5py.string_dtype())
                                           if weight_names else np.zeros(0, "f8"))
        if keras2:
            half = len(names) // 2
            root.attrs["layer_names0"] = np.asarray([n.encode() for n in names[:half]])
            root.attrs["layer_names1"] = np.asarray([n.encode() for n in names[half:]])
        else:
            root.attrs["layer_names"] = np.asarray(names, dtype=h5py.string_dtype())
    return _h5_bytes(build)


def weights_h5(names: bool = True, bfloat16: bool = False) -> bytes:
    """Keras 3 ``model.save_weights("x.weights.h5")``: ``layers/<snake
    path>/vars/<i>``, the layer's name as the ``name`` attribute (Keras >=
    3.6; ``names=False`` as older Keras wrote them), a nested Sequential
    under ``layers/sequential/layers``.

    Args:
        names: write each layer's ``name`` attribute (Keras 3.6 and later).
        bfloat16: store the 1-D weights (biases, batch-norm vectors) as
            bfloat16, the way Keras does: 2-byte opaque data with a
            ``dtype="bfloat16"`` attribute (needs ml_dtypes).

    Returns:
        The HDF5 file's bytes.
    """
    arrays = _arrays()

    def build(f):
        def layer(parent, path, name, values):
            v = parent.create_group(path).create_group("vars")
            if names:
                v.attrs["name"] = name
            for i, value in enumerate(values):
                if bfloat16 and value.ndim == 1:
                    import ml_dtypes

                    raw = value.astype(ml_dtypes.bfloat16).view("u2")
                    ds = v.create_dataset(str(i), data=raw.view("V2"))
                    ds.attrs["dtype"] = "bfloat16"
                else:
                    v.create_dataset(str(i), data=value)
            return v

        top = f.create_group("layers")
        layer(top, "input_layer", "input_layer", [])
        layer(top, "conv2d", "conv", arrays["conv"].values())
        layer(top, "batch_normalization", "bn", arrays["bn"].values())
        layer(top, "depthwise_conv2d", "dw", arrays["dw"].values())
        seq = top.create_group("sequential")
        layer(seq.create_group("layers"), "dense", "d1", arrays["d1"].values())
        seq.create_group("vars").attrs["name"] = "head"
        f.create_group("vars").attrs["name"] = "tiny"
    return _h5_bytes(build)


def keras_zip(weights: bytes | None = None, config: dict | None = None,
              compression: int = zipfile.ZIP_STORED) -> bytes:
    """A ``.keras`` archive as ``model.save`` writes it (members stored).

    Args:
        weights: the ``model.weights.h5`` member; default ``weights_h5()``.
        config: the ``config.json`` member as a dict; default a small Keras 3
            Functional config matching the seed weights.
        compression: the ``zipfile`` method of every member.

    Returns:
        The archive's bytes (``metadata.json``, ``config.json``,
        ``model.weights.h5``).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1",
                                                "date_saved": "2026-01-01@00:00:00"}))
        z.writestr("config.json", json.dumps(_config() if config is None else config))
        z.writestr("model.weights.h5", weights_h5() if weights is None else weights)
    return buffer.getvalue()


@functools.cache
def _seeds(target: str) -> tuple[bytes, ...]:
    if target == "keras_h5":
        return (legacy_h5("keras3"), legacy_h5("keras2"), legacy_h5("keras3", full_model=True))
    if target == "keras_weights_h5":
        return (weights_h5(), weights_h5(bfloat16=True))
    return (keras_zip(), keras_zip(weights_h5(names=False)),
            keras_zip(compression=zipfile.ZIP_DEFLATED))


# ----------------------------------------------------------- HDF5 editing

def edit_h5(data: bytes, edit, latest: bool = False) -> bytes:
    """``data`` with ``edit(f)`` applied to it opened read-write (new
    objects in the latest HDF5 format when ``latest``: attributes over 64 KB
    need its dense storage).

    Args:
        data: an HDF5 file's bytes.
        edit: ``edit(f)``, given the open ``h5py.File``; its return value is
            ignored.
        latest: open with ``libver="latest"``.

    Returns:
        The edited file's bytes (``data`` itself is not changed).
    """
    h5py = _h5py()
    buffer = io.BytesIO(data)
    with h5py.File(buffer, "r+", libver="latest" if latest else None) as f:
        edit(f)
    return buffer.getvalue()


def _objects(f):
    """(groups, datasets) of a valid seed, by path."""
    h5py = _h5py()
    groups, datasets = [], []

    def visit(name, obj):
        (groups if isinstance(obj, h5py.Group) else datasets).append(name)
    f.visititems(visit)
    return groups, datasets


def _replace(f, path: str, make) -> None:
    """Replace the object at ``path`` by ``make(parent, name)``."""
    parent, _, name = path.rpartition("/")
    group = f[parent] if parent else f
    del group[name]
    make(group, name)


def _weight_paths(f) -> list[str]:
    _, datasets = _objects(f)
    return datasets


# Dtypes that are not weights, each as (name, make(group, name, shape)).
def _bad_datasets():
    h5py = _h5py()
    compound = np.dtype([("a", "f4"), ("b", "i4")])
    return [
        ("string", lambda g, n, s: g.create_dataset(n, data=np.asarray([b"abc", b"de"]))),
        ("vlen_string", lambda g, n, s: g.create_dataset(
            n, data=np.asarray(["abc", "de"], dtype=h5py.string_dtype()))),
        ("compound", lambda g, n, s: g.create_dataset(n, shape=s, dtype=compound)),
        ("enum", lambda g, n, s: g.create_dataset(
            n, shape=s, dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1"))),
        ("bool", lambda g, n, s: g.create_dataset(n, data=np.ones(s, bool))),
        ("complex", lambda g, n, s: g.create_dataset(n, data=np.ones(s, "c8"))),
        ("opaque", lambda g, n, s: g.create_dataset(n, data=np.zeros(s, "V4"))),
        ("vlen_int", lambda g, n, s: g.create_dataset(
            n, shape=(2,), dtype=h5py.vlen_dtype(np.int32))),
        ("reference", lambda g, n, s: g.create_dataset(n, shape=(2,),
                                                       dtype=h5py.ref_dtype)),
        ("array_type", lambda g, n, s: g.create_dataset(n, shape=(2,),
                                                        dtype=np.dtype(("f4", (3,))))),
        ("null", lambda g, n, s: g.create_dataset(n, data=h5py.Empty("f4"))),
        ("ndim_10", lambda g, n, s: g.create_dataset(n, data=np.ones((1,) * 10, "f4"))),
        ("bf16_marked_f4", lambda g, n, s: g.create_dataset(n, data=np.ones(s, "f4"))
         .attrs.__setitem__("dtype", "bfloat16")),
    ]


# Datasets that are fine (the reader must accept them, or refuse them cleanly).
def _odd_datasets():
    return [
        ("scalar", lambda g, n, s: g.create_dataset(n, data=np.float32(1.5))),
        ("big_endian", lambda g, n, s: g.create_dataset(n, data=np.ones(s, ">f4"))),
        ("float16", lambda g, n, s: g.create_dataset(n, data=np.ones(s, "f2"))),
        ("int8", lambda g, n, s: g.create_dataset(n, data=np.ones(s, "i1"))),
        ("empty", lambda g, n, s: g.create_dataset(n, shape=(0, 3), dtype="f4")),
        ("fill_small", lambda g, n, s: g.create_dataset(n, shape=s, dtype="f4",
                                                        fillvalue=3.0)),
        ("shuffle_fletcher", lambda g, n, s: g.create_dataset(
            n, data=np.ones(s, "f4"), shuffle=True, fletcher32=True)),
        ("chunked", lambda g, n, s: g.create_dataset(n, data=np.ones(s, "f4"),
                                                     chunks=True)),
        ("bf16_u2", lambda g, n, s: g.create_dataset(n, data=np.zeros(s, "u2"))
         .attrs.__setitem__("dtype", "bfloat16")),
    ]


def _huge_dataset(shape, chunked: bool = True, fill=0.0):
    def make(g, n, s=None):
        g.create_dataset(n, shape=shape, dtype="f4", fillvalue=fill,
                         chunks=(min(shape[0], 256),) + tuple(min(d, 256) for d in shape[1:])
                         if chunked else None)
    return make


def _compressed(kind: str):
    def make(g, n, s=(2,)):
        if kind == "gzip":
            g.create_dataset(n, data=np.ones(s, "f4"), compression="gzip")
        elif kind == "lzf":
            g.create_dataset(n, data=np.ones(s, "f4"), compression="lzf")
        elif kind == "scaleoffset":
            g.create_dataset(n, data=np.ones(s, "f4"), scaleoffset=2)
        elif kind == "bigchunk":
            g.create_dataset(n, shape=(10,), maxshape=(None,), chunks=(1 << 28,), dtype="f4")
        elif kind == "external":
            g.create_dataset(n, shape=(4,), dtype="f4",
                             external=[("/dev/zero", 0, 16)])
    return make


def _gzip_bomb(g, n, s, inflated: int = 64 << 20):
    """A 4 KB dataset whose one deflated chunk inflates to ``inflated`` bytes
    (HDF5 grows its buffer until the stream ends)."""
    ds = g.create_dataset(n, shape=(1024,), dtype="f4", chunks=(1024,), compression="gzip")
    ds.id.write_direct_chunk((0,), zlib.compress(bytes(inflated), 9))


def _virtual(g, n, s):
    h5py = _h5py()
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource("/nonexistent/source.h5", "data", shape=(4,))
    g.create_virtual_dataset(n, layout, fillvalue=0)


def _nest(f, parent: str, depth: int, leaf_vars: bool = True) -> None:
    group = f[parent] if parent else f
    for i in range(depth):
        group = group.create_group(f"n{i % 10}")
    if leaf_vars:
        v = group.create_group("vars")
        v.attrs["name"] = "deep"
        v.create_dataset("0", data=np.ones(2, "f4"))


def _chain_names(depth: int) -> str:
    return "/".join(["g"] * depth)


# --------------------------------------------------------- h5 mutators

def _pick(rng, items):
    return items[rng.randrange(len(items))]


def m_h5_retype(data: bytes, rng: random.Random) -> bytes:
    """A weight dataset replaced by one of a type the reader must refuse or
    accept cleanly."""
    def edit(f):
        path = _pick(rng, _weight_paths(f))
        shape = f[path].shape or (2,)
        _, make = _pick(rng, _bad_datasets() + _odd_datasets())
        _replace(f, path, lambda g, n: make(g, n, shape))
    return edit_h5(data, edit)


def m_h5_scalar_for_group(data: bytes, rng: random.Random) -> bytes:
    """A group (a layer, its vars, ``layers``, ``model_weights``) replaced
    by a scalar (or 1-d) dataset."""
    def edit(f):
        groups, _ = _objects(f)
        path = _pick(rng, groups)
        value = np.float32(1) if rng.random() < 0.7 else np.ones(3, "f4")
        _replace(f, path, lambda g, n: g.create_dataset(n, data=value))
    return edit_h5(data, edit)


def m_h5_dataset_for_group(data: bytes, rng: random.Random) -> bytes:
    """A weight dataset replaced by a group (empty, or holding datasets)."""
    def edit(f):
        path = _pick(rng, _weight_paths(f))

        def make(g, n):
            sub = g.create_group(n)
            if rng.random() < 0.5:
                sub.create_dataset("0", data=np.ones(2, "f4"))
        _replace(f, path, make)
    return edit_h5(data, edit)


def m_h5_huge(data: bytes, rng: random.Random) -> bytes:
    """A weight dataset replaced by one declaring a huge shape it never
    writes (chunked or contiguous, with a fill value or not)."""
    shapes = [(16384, 16384), (65536, 65536), (1 << 31,), (4096, 4096, 64), (20000,),
              (1 << 20, 1 << 20)]

    def edit(f):
        path = _pick(rng, _weight_paths(f))
        shape = _pick(rng, shapes)
        chunked = rng.random() < 0.7 or np.prod(shape, dtype=object) * 4 >= 1 << 40
        _replace(f, path, _huge_dataset(shape, chunked, fill=_pick(rng, [0.0, 1.0])))
    return edit_h5(data, edit)


def m_h5_storage(data: bytes, rng: random.Random) -> bytes:
    """A weight dataset stored compressed, with giant chunks, external raw
    data or as a virtual dataset."""
    kinds = ["gzip", "lzf", "scaleoffset", "bigchunk", "external", "virtual"]

    def edit(f):
        path = _pick(rng, _weight_paths(f))
        shape = f[path].shape or (2,)
        kind = _pick(rng, kinds)
        make = _virtual if kind == "virtual" else _compressed(kind)
        _replace(f, path, lambda g, n: make(g, n, shape))
    return edit_h5(data, edit)


def m_h5_nest(data: bytes, rng: random.Random) -> bytes:
    """Groups nested under a random group, shallow or far deeper than
    Keras nests."""
    def edit(f):
        groups, _ = _objects(f)
        _nest(f, _pick(rng, groups), _pick(rng, [3, 33, 60, 150]), rng.random() < 0.7)
    return edit_h5(data, edit)


def m_h5_links(data: bytes, rng: random.Random) -> bytes:
    """Hard links making cycles or sharing objects; soft, dangling and
    external links where groups or datasets belong."""
    h5py = _h5py()

    def edit(f):
        groups, datasets = _objects(f)
        kind = rng.randrange(6)
        if kind == 0:  # a cycle: a group holds a hard link to an ancestor
            path = _pick(rng, groups)
            ancestors = [""] + [path[:i] for i in range(len(path)) if path[i] == "/"]
            target = _pick(rng, ancestors)
            f[path][f"loop{rng.randrange(3)}"] = f[target] if target else f
        elif kind == 1:  # one dataset under two names
            a, b = _pick(rng, datasets), _pick(rng, datasets)
            _replace(f, b, lambda g, n: g.__setitem__(n, f[a]))
        elif kind == 2:  # the same layer group twice
            a = _pick(rng, groups)
            parent = a.rpartition("/")[0]
            (f[parent] if parent else f)[f"copy{rng.randrange(3)}"] = f[a]
        else:
            path = _pick(rng, groups + datasets)
            link = [h5py.SoftLink("/nowhere"), h5py.SoftLink("/" + _pick(rng, groups)),
                    h5py.ExternalLink("/dev/zero", "/x"),
                    h5py.ExternalLink("other.h5", "/layers")][kind - 3 + rng.randrange(2)]
            _replace(f, path, lambda g, n: g.__setitem__(n, link))
    return edit_h5(data, edit)


_BAD_TEXTS = [
    np.asarray([b"\xff\xfe\x80"]), np.asarray([1, 2, 3]), np.float64(3.0),
    np.asarray(["x" * 5000], dtype=object), np.asarray([b"y" * 3000]),
    np.asarray(["missing_layer"], dtype=object), np.asarray([b""]),
    np.asarray(["conv", "conv"], dtype=object), np.asarray(["."], dtype=object),
    np.asarray(["a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3/4/5/6/7"],
               dtype=object),
    np.asarray([["conv"], ["bn"]], dtype=object),
    np.asarray([str(i) for i in range(3500)], dtype=object),
]


def m_h5_attrs(data: bytes, rng: random.Random) -> bytes:
    """A text attribute (layer_names, weight_names, name, model_config,
    dtype) replaced by numbers, bad UTF-8, over-long or missing names, ..."""
    h5py = _h5py()

    def edit(f):
        owners = [""] + _objects(f)[0] + _objects(f)[1]
        with_attrs = [(p, k) for p in owners for k in (f[p] if p else f).attrs]
        path, key = _pick(rng, with_attrs) if with_attrs and rng.random() < 0.8 else \
            (_pick(rng, owners), _pick(rng, ["layer_names", "name", "weight_names", "dtype",
                                             "model_config", "layer_names0"]))
        obj = f[path] if path else f
        choice = rng.randrange(len(_BAD_TEXTS) + 3)
        if choice < len(_BAD_TEXTS):
            value = _BAD_TEXTS[choice]
            if value.dtype == object:
                value = np.asarray(value, dtype=h5py.string_dtype())
            obj.attrs[key] = value
        elif choice == len(_BAD_TEXTS):
            obj.attrs[key] = h5py.Empty("f4")
        elif choice == len(_BAD_TEXTS) + 1 and key in obj.attrs:
            del obj.attrs[key]
        else:
            obj.attrs[key] = _pick(rng, _JSON_TEXTS)
    return edit_h5(data, edit, latest=True)


def m_h5_keys(data: bytes, rng: random.Random) -> bytes:
    """Variable indices that are not small integers, many sibling groups,
    an empty vars group."""
    def edit(f):
        groups, datasets = _objects(f)
        kind = rng.randrange(4)
        if kind == 0:
            path = _pick(rng, datasets)
            parent = path.rpartition("/")[0]
            name = _pick(rng, ["9" * 5000, "\u00b2", "-1", "a", "1e9", " 1",
                               "99999999999999999999"])
            (f[parent] if parent else f).move(path.rpartition("/")[2], name)
        elif kind == 1:
            parent = f[_pick(rng, groups)]
            for i in range(rng.choice([50, 500, 3000])):
                parent.create_group(f"g{i}")
        elif kind == 2:
            path = _pick(rng, groups)
            _replace(f, path, lambda g, n: g.create_group(n).create_group("vars"))
        else:
            path = _pick(rng, datasets)
            del f[path]
    return edit_h5(data, edit)


def _vlen_elements(data: bytes) -> list[int]:
    """Offsets of the variable-length elements (a 4-byte length, then the
    address of a global heap collection) in an HDF5 file's bytes."""
    heaps = set()
    at = data.find(b"GCOL")
    while at >= 0:
        heaps.add(at)
        at = data.find(b"GCOL", at + 1)
    return [i for i in range(len(data) - 12)
            if int.from_bytes(data[i + 4:i + 12], "little") in heaps
            and data[i:i + 4] != b"GCOL"]


def m_h5_vlen_length(data: bytes, rng: random.Random) -> bytes:
    """The length a variable-length string (a name, model_config) declares,
    changed: HDF5 allocates what it says before checking it."""
    found = _vlen_elements(data)
    b = bytearray(data)
    for i in rng.sample(found, min(len(found), 1 + rng.randrange(3))):
        value = _pick(rng, [0, 1, 7, 1025, 1 << 16, 1 << 24, 2**31 - 16, 2**32 - 1])
        struct.pack_into("<I", b, i, value)
    return bytes(b)


def _heap_objects(data: bytes) -> list[tuple[int, int]]:
    """(offset of the object header, object index) of every object of every
    global heap collection in an HDF5 file's bytes (8-byte lengths)."""
    found, at = [], data.find(b"GCOL")
    while at >= 0:
        size = int.from_bytes(data[at + 8:at + 16], "little")
        p = 16
        while p + 16 <= min(size, len(data) - at):
            index = int.from_bytes(data[at + p:at + p + 2], "little")
            length = int.from_bytes(data[at + p + 8:at + p + 16], "little")
            found.append((at + p, index))
            step = 16 + ((length + 7) & ~7) if index else length
            if step <= 0:
                break
            p += step
        at = data.find(b"GCOL", at + 1)
    return found


def heap_object_size(data: bytes, size: int, index: int | None = 0,
                     rng: random.Random | None = None) -> bytes:
    """The size of a global heap object (the free space, index 0, by
    default; a random one with ``rng``) set to ``size``: HDF5 walks a
    collection by these sizes, and loops forever on a free space of 0.

    Args:
        data: an HDF5 file's bytes holding at least one global heap
            collection (variable-length strings put one there).
        size: the new size, written as a little-endian uint64.
        index: the heap object index to edit (0 is the free space); None for
            any object.
        rng: pick one of the matching objects at random; None for the first.

    Returns:
        The edited bytes.
    """
    objects = _heap_objects(data)
    chosen = [o for o in objects if index is None or o[1] == index]
    at, _ = chosen[0] if rng is None else _pick(rng, chosen)
    b = bytearray(data)
    struct.pack_into("<Q", b, at + 8, size)
    return bytes(b)


def m_h5_global_heap(data: bytes, rng: random.Random) -> bytes:
    """A global heap object's size (or index) changed: where the strings
    of names and configs live, and what HDF5 walks without bounds."""
    if rng.random() < 0.8:
        return heap_object_size(data, _pick(rng, [0, 1, 8, 15, 16, 4096, 2**31, 2**64 - 1]),
                                index=None, rng=rng)
    at, _ = _pick(rng, _heap_objects(data))
    b = bytearray(data)
    struct.pack_into("<H", b, at, _pick(rng, [0, 1, 0xFFFF]))
    return bytes(b)


H5_MUTATORS = (m_h5_vlen_length, m_h5_global_heap, m_h5_retype, m_h5_scalar_for_group, m_h5_dataset_for_group, m_h5_huge,
               m_h5_storage, m_h5_nest, m_h5_links, m_h5_attrs, m_h5_keys)


# ------------------------------------------------------------ JSON edits

_JSON_TEXTS = [
    '{"class_name": "Functional", "config": [1, 2]}',
    '{"class_name": "Functional", "config": "tiny"}',
    '{"config": {"layers": 7}}',
    '{"config": {"layers": [1, "a", null]}}',
    '{"config": {"layers": [{"class_name": "Dense", "config": [1]}]}}',
    '{"config": {"layers": [{"class_name": 5, "config": {"name": {"a": 1}}}]}}',
    "[1, 2, 3]", '"a string"', "null", "1e999", "{", '{"a": "\\ud800"}',
    '{"config": {"layers": [' + "1" * 5000 + "]}}",
    "[" * 150 + "]" * 150, "[" * 100_000, '{"a": [' + "{}," * 2000 + "{}]}",
]


def _json_variants(rng: random.Random, original: bytes) -> bytes:
    kind = rng.randrange(8)
    if kind < 3:
        return _pick(rng, _JSON_TEXTS).encode()
    if kind == 3:  # bad UTF-8 inside the text
        i = rng.randrange(len(original) + 1)
        return original[:i] + _pick(rng, [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]) + \
            original[i:]
    if kind == 4:  # truncated
        return original[:rng.randrange(len(original) + 1)]
    config = json.loads(original)
    if kind == 5:  # a layer's config replaced by a non-object
        layers = config["config"]["layers"]
        layers[rng.randrange(len(layers))]["config"] = _pick(rng, [[1], "x", 3, None, True])
    elif kind == 6:  # deep nesting inside a layer's config
        depth = _pick(rng, [50, 99, 101, 500, 5000])
        config["config"]["layers"][0]["config"]["deep"] = json.loads("[" * min(depth, 900)
                                                                     + "]" * min(depth, 900))
        if depth > 900:
            return json.dumps(config).replace('"deep": [', '"deep": ' + "[" * depth + "]" * (
                depth - 900), 1).encode()
    else:  # names and classes of the wrong type, duplicated names
        layers = config["config"]["layers"]
        layer = layers[rng.randrange(len(layers))]
        layer[_pick(rng, ["class_name", "name"])] = _pick(rng, [None, 5, [], {"a": 1}, "bn"])
        layer["config"]["name"] = _pick(rng, [None, 5, [], "conv", "bn", "d1"])
    return json.dumps(config).encode()


def m_h5_model_config(data: bytes, rng: random.Random) -> bytes:
    """A legacy full-model file's ``model_config`` edited as JSON."""
    def edit(f):
        raw = f.attrs.get("model_config")
        raw = raw.encode() if isinstance(raw, str) else raw or json.dumps(_config()).encode()
        new = _json_variants(rng, raw)
        try:
            if b"\x00" in new:
                raise UnicodeDecodeError("utf-8", new, 0, 1, "NUL")  # vlen strings hold none
            f.attrs["model_config"] = new.decode("utf-8")
        except UnicodeDecodeError:
            f.attrs["model_config"] = np.void(new) if rng.random() < 0.3 else np.bytes_(new)
    return edit_h5(data, edit)


# ------------------------------------------------------------- zip edits

def zip_members(data: bytes) -> list[dict]:
    """The members of a valid archive: name, payload and method.

    Args:
        data: a zip archive's bytes (``zipfile`` must be able to read it).

    Returns:
        One dict per member, in archive order, with ``name`` (str),
        ``payload`` (the uncompressed bytes) and ``method`` (the ``zipfile``
        compression constant): input for ``build_zip``.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [{"name": i.filename, "payload": z.read(i), "method": i.compress_type}
                for i in z.infolist()]


def build_zip(members: list[dict], comment: bytes = b"") -> bytes:
    """A zip written field by field, so that any field can lie. A member:
    name, payload, method (0 stored, 8 deflated: compressed here), and
    optional overrides raw (the bytes stored), crc, csize, usize, flags,
    method_field, central (dict of central-directory overrides).

    Args:
        members: the member dicts (as ``zip_members`` returns, then edited):
            ``name`` (str or bytes), ``payload`` (default empty), ``method``
            (0 or 8), and the optional overrides above; ``method_field`` is
            the method written in the headers, ``method`` the one used to
            compress.
        comment: the archive comment, after the end record.

    Returns:
        The archive's bytes.
    """
    out, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode("utf-8") if isinstance(m["name"], str) else m["name"]
        payload = m.get("payload", b"")
        method = m.get("method", 0)
        if "raw" in m:
            raw = m["raw"]
        elif method == zipfile.ZIP_DEFLATED:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            raw = c.compress(payload) + c.flush()
        else:
            raw = payload
        fields = {"flags": m.get("flags", 0), "method": m.get("method_field", method),
                  "crc": m.get("crc", zlib.crc32(payload)), "csize": m.get("csize", len(raw)),
                  "usize": m.get("usize", len(payload))}
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, fields["flags"], fields["method"],
                           0, 0x21, fields["crc"] & 0xFFFFFFFF,
                           min(fields["csize"], 0xFFFFFFFF), min(fields["usize"], 0xFFFFFFFF),
                           len(name), 0) + name + raw
        c = {**fields, **m.get("central", {})}
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, c["flags"], c["method"],
                               0, 0x21, c["crc"] & 0xFFFFFFFF, min(c["csize"], 0xFFFFFFFF),
                               min(c["usize"], 0xFFFFFFFF), len(name), 0, 0, 0, 0, 0,
                               offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(central), len(out), len(comment))
    return bytes(out + central + end + comment)


def _weights_member(members):
    return next(m for m in members if m["name"] == "model.weights.h5")


def m_zip_fields(data: bytes, rng: random.Random) -> bytes:
    """A member's compression method, flags (encryption), declared sizes
    or CRC changed, in the local header, the central directory or both."""
    members = zip_members(data)
    m = _pick(rng, members)
    field = rng.randrange(4)
    value = {0: lambda: _pick(rng, [1, 6, 9, 12, 14, 19, 93, 95, 98, 99, 0xFFFF]),
             1: lambda: _pick(rng, [0x1, 0x41, 0x2000, 0x8, 0x800, 0x1 | 0x8]),
             2: lambda: _pick(rng, [0, 1, 100, 1 << 20, 1 << 30, 0xFFFFFFFF]),
             3: lambda: rng.randrange(1 << 32)}[field]()
    key = ["method_field", "flags", _pick(rng, ["usize", "csize"]), "crc"][field]
    where = rng.randrange(3)
    if where in (0, 2):
        m[key] = value
    if where in (1, 2):
        m.setdefault("central", {})[key if key != "method_field" else "method"] = value
    if key == "flags" and value & 0x800:
        m["name"] = m["name"].encode() + b"\xff"
    return build_zip(members)


def m_zip_members(data: bytes, rng: random.Random) -> bytes:
    """Members missing, duplicated, renamed, many, or the weights replaced
    by something that is not HDF5."""
    members = zip_members(data)
    kind = rng.randrange(6)
    if kind == 0:
        members.pop(rng.randrange(len(members)))
    elif kind == 1:
        members.append(dict(_pick(rng, members)))
    elif kind == 2:
        _pick(rng, members)["name"] = _pick(rng, ["../model.weights.h5", "model.weights.h5/",
                                                  "/config.json", "MODEL.WEIGHTS.H5", ""])
    elif kind == 3:
        members += [{"name": f"assets/{i}", "payload": b"x"} for i in range(rng.choice(
            [10, 300, 2000]))]
    elif kind == 4:
        _weights_member(members)["payload"] = _pick(rng, [b"", b"not hdf5", data])
    else:
        _weights_member(members)["payload"] = _pick(rng, _seeds("keras_h5"))
    return build_zip(members)


def m_zip_deflate(data: bytes, rng: random.Random) -> bytes:
    """The weights deflated, honestly or claiming fewer bytes than they
    inflate to, or a deflated run of zeros (a small bomb)."""
    members = zip_members(data)
    m = _weights_member(members)
    kind = rng.randrange(3)
    m["method"] = zipfile.ZIP_DEFLATED
    if kind == 1:
        m["usize"] = rng.randrange(1, len(m["payload"]) + 1)
    elif kind == 2:
        size = _pick(rng, [1 << 20, 16 << 20, 64 << 20])
        m["raw"], m["crc"] = _zeros_bomb(size)
        m["payload"], m["usize"] = b"", _pick(rng, [size, len(m["payload"])])
    return build_zip(members)


def m_zip_config(data: bytes, rng: random.Random) -> bytes:
    """config.json edited as JSON."""
    members = zip_members(data)
    m = next(m for m in members if m["name"] == "config.json")
    m["payload"] = _json_variants(rng, m["payload"])
    return build_zip(members)


def m_zip_inner(data: bytes, rng: random.Random) -> bytes:
    """model.weights.h5 edited by one of the HDF5 mutators."""
    members = zip_members(data)
    m = _weights_member(members)
    m["payload"] = _pick(rng, H5_MUTATORS)(m["payload"], rng)
    return build_zip(members)


ZIP_MUTATORS = (m_zip_fields, m_zip_members, m_zip_deflate, m_zip_config, m_zip_inner,
                m_zip_inner)


# --------------------------------------------------------------- crafted

def _bad_heap_free_list(data: bytes) -> bytes:
    """The first local heap's free-list offset pointed past its data
    (h5py: RuntimeError "bad heap free list")."""
    at = data.index(b"HEAP")
    b = bytearray(data)
    struct.pack_into("<Q", b, at + 16, 0xFFFFFFF0)
    return bytes(b)


def _vlen_length_2gib(data: bytes, path: str, key: str, length: int = 333) -> bytes:
    """Attribute ``key`` of ``path`` set to variable-length strings of
    ``length`` bytes, then the length each element declares changed to
    2**31 - 16 (HDF5 allocates and clears that much before it compares it
    with the string in the global heap)."""
    h5py = _h5py()

    def edit(f):
        obj = f[path] if path else f
        old = obj.attrs[key]
        value = "s" * length if np.ndim(old) == 0 else \
            np.asarray(["s" * length] * np.size(old), dtype=h5py.string_dtype())
        obj.attrs[key] = value
    b = bytearray(edit_h5(data, edit))
    heaps = {i for i in range(len(b)) if b[i:i + 4] == b"GCOL"}
    marker = struct.pack("<I", length)
    hits = [i for i in range(len(b) - 12) if b[i:i + 4] == marker
            and int.from_bytes(b[i + 4:i + 12], "little") in heaps]
    assert hits, "no variable-length element found"
    for i in hits:
        struct.pack_into("<I", b, i, 2**31 - 16)
    return bytes(b)


def _replace_in(data: bytes, path: str, make) -> bytes:
    return edit_h5(data, lambda f: _replace(f, path, make))


def _zeros_bomb(inflated: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``inflated`` zero bytes built from one
    compressed MiB repeated (each ends in a full flush, so the blocks are
    byte-aligned and independent), and its CRC-32."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    stream = block * (inflated >> 20) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    zero = bytes(1 << 20)
    crc = 0
    for _ in range(inflated >> 20):
        crc = zlib.crc32(zero, crc)
    return stream, crc


def _crafted_h5_common(seed: bytes, weight: str, group: str) -> list[tuple[str, bytes]]:
    """Cases shared by both HDF5 layouts: ``weight`` is a weight dataset's
    path, ``group`` the group holding a layer's weights."""
    h5py = _h5py()
    cases = [
        ("bad_heap_free_list", _bad_heap_free_list(seed)),
        ("scalar_dataset_for_weights_group",
         _replace_in(seed, group, lambda g, n: g.create_dataset(n, data=np.float32(1)))),
        ("global_heap_free_space_0", heap_object_size(seed, 0)),
        ("unwritten_16384x16384", _replace_in(seed, weight, _huge_dataset((16384, 16384)))),
        ("unwritten_65536x65536", _replace_in(seed, weight, _huge_dataset((65536, 65536)))),
        ("unwritten_contiguous_1gib",
         _replace_in(seed, weight, _huge_dataset((16384, 16384), chunked=False))),
        ("gzip_chunk_bomb", _replace_in(seed, weight, lambda g, n: _gzip_bomb(g, n, None))),
        ("external_raw_data_dev_zero",
         _replace_in(seed, weight, lambda g, n: g.create_dataset(
             n, shape=(1 << 18,), dtype="f4", external=[("/dev/zero", 0, 1 << 20)]))),
        ("external_raw_data_small",
         _replace_in(seed, weight, _compressed("external"))),
        ("external_link", _replace_in(seed, weight, lambda g, n: g.__setitem__(
            n, h5py.ExternalLink("/etc/hostname", "/x")))),
        ("soft_link_to_itself", _replace_in(seed, weight, lambda g, n: g.__setitem__(
            n, h5py.SoftLink(f"/{weight}")))),
        ("virtual_dataset", _replace_in(seed, weight, lambda g, n: _virtual(g, n, None))),
        ("giant_chunk", _replace_in(seed, weight, _compressed("bigchunk"))),
    ]
    for name, make in _bad_datasets():
        cases.append((f"dtype_{name}", _replace_in(seed, weight,
                                                   lambda g, n, make=make: make(g, n, (3,)))))
    return cases


def crafted_keras_h5() -> list[tuple[str, bytes]]:
    h5py = _h5py()
    seed, keras2, full = _seeds("keras_h5")
    cases = _crafted_h5_common(seed, "conv/conv/kernel", "conv")

    def attr(data, path, key, value):
        def edit(f):
            (f[path] if path else f).attrs[key] = value
        return edit_h5(data, edit, latest=True)
    vlen = h5py.string_dtype()
    cases += [
        ("layer_names_not_utf8", attr(keras2, "", "layer_names0", np.asarray([b"\xff\xfe"]))),
        ("layer_names_numbers", attr(seed, "", "layer_names", np.arange(3))),
        ("layer_names_missing_layer",
         attr(seed, "", "layer_names", np.asarray(["conv", "nope"], dtype=vlen))),
        ("layer_names_too_many", _h5_bytes(lambda f: f.attrs.__setitem__(
            "layer_names", np.asarray([f"l{i}" for i in range(20000)], dtype=vlen)),
            libver="latest")),
        ("layer_names_fixed_too_many", _h5_bytes(lambda f: f.attrs.__setitem__(
            "layer_names", np.full(200_000, b"a", dtype="S1")), libver="latest")),
        ("layer_name_too_long", attr(seed, "", "layer_names", np.asarray(["x" * 5000], vlen))),
        ("weight_names_deep_path", attr(seed, "conv", "weight_names", np.asarray(
            [_chain_names(400) + "/kernel"], dtype=vlen))),
        ("weight_listed_twice", attr(seed, "conv", "weight_names", np.asarray(
            ["conv/kernel", "conv/kernel"], dtype=vlen))),
        ("weight_is_group", attr(seed, "conv", "weight_names", np.asarray(["conv"], vlen))),
        ("model_config_not_object", attr(full, "", "model_config",
                                         '{"class_name": "Functional", "config": [1]}')),
        ("model_config_deep", attr(full, "", "model_config", "[" * 100_000 + "]" * 100_000)),
        ("model_config_not_utf8", attr(full, "", "model_config",
                                       np.void(b'{"config": "\xff"}'))),
        ("model_config_huge_int", attr(full, "", "model_config", "1" * 5000)),
        ("layer_names_length_2gib", _vlen_length_2gib(seed, "", "layer_names")),
        ("model_config_length_2gib", _vlen_length_2gib(full, "", "model_config")),
        ("model_weights_is_scalar", _replace_in(
            full, "model_weights", lambda g, n: g.create_dataset(n, data=np.float32(1)))),
    ]
    return cases


def crafted_keras_weights_h5() -> list[tuple[str, bytes]]:
    h5py = _h5py()
    seed = _seeds("keras_weights_h5")[0]
    cases = _crafted_h5_common(seed, "layers/conv2d/vars/0", "layers/conv2d/vars")

    def edit(fn):
        return edit_h5(seed, fn)

    def cycle(f):
        f["layers/conv2d/loop"] = f["layers"]

    def deep(f):
        _nest(f, "layers", 1100)

    def name_attr(value):
        def fn(f):
            f["layers/conv2d/vars"].attrs["name"] = value
        return fn

    def nameless(f):
        def strip(_, obj):
            if "name" in obj.attrs:
                del obj.attrs["name"]
        f.visititems(strip)
    cases += [
        ("hard_link_cycle", edit(cycle)),
        ("groups_nested_1100_deep", edit(deep)),
        ("name_not_utf8", edit(name_attr(np.void(b"\xff\xfe")))),
        ("name_not_utf8_bytes", edit(name_attr(np.asarray(b"\xff\xfe", dtype=h5py.string_dtype(
            "ascii"))))),
        ("name_is_a_number", edit(name_attr(np.int64(7)))),
        ("name_too_long", edit(name_attr("n" * 5000))),
        ("name_length_2gib", _vlen_length_2gib(seed, "layers/conv2d/vars", "name")),
        ("layers_is_scalar", _replace_in(seed, "layers", lambda g, n: g.create_dataset(
            n, data=np.float32(1)))),
        ("layers_external_link", _replace_in(seed, "layers", lambda g, n: g.__setitem__(
            n, h5py.ExternalLink("/dev/zero", "/layers")))),
        ("nameless_keras_3_5", edit(nameless)),
    ]
    return cases


def crafted_keras_zip() -> list[tuple[str, bytes]]:
    seed = _seeds("keras_zip")[0]
    members = zip_members(seed)

    def with_member(name, **changes):
        ms = [dict(m) for m in members]
        for m in ms:
            if m["name"] == name:
                m.update(changes)
        return build_zip(ms)

    def config(text):
        return with_member("config.json", payload=text if isinstance(text, bytes)
                           else text.encode())
    bomb, crc = _zeros_bomb(1 << 30)
    small_bomb, small_crc = _zeros_bomb(64 << 20)
    weights = _weights_member(members)["payload"]
    huge_end = bytearray(seed)
    at = huge_end.rindex(b"PK\x05\x06")
    struct.pack_into("<L", huge_end, at + 12, 0x7FFFFFFF)
    cases = [
        ("config_not_object", config('{"class_name": "Functional", "config": [1, 2]}')),
        ("config_is_string", config('{"class_name": "Functional", "config": "tiny"}')),
        ("config_top_level_list", config("[1, 2, 3]")),
        ("config_layer_not_object", config('{"config": {"layers": [1]}}')),
        ("config_layer_config_not_object",
         config('{"config": {"layers": [{"class_name": "Dense", "config": [1]}]}}')),
        ("config_deep_json", config("[" * 100_000 + "]" * 100_000)),
        ("config_deep_unterminated", config('{"a": ' + "[" * 100_000)),
        ("config_not_utf8", config(b'{"config": {"name": "\xff\xfe"}}')),
        ("config_huge_int", config('{"config": {"layers": [' + "1" * 5000 + "]}}")),
        ("config_not_json", config("{not json")),
        ("config_too_many_values", config("[" + "{}," * 1_100_000 + "{}]")),
        ("unsupported_compression_method", with_member("model.weights.h5", method_field=9,
                                                       central={"method": 9})),
        ("bzip2_member", with_member("model.weights.h5", method_field=12,
                                     central={"method": 12})),
        ("encrypted_member", with_member("model.weights.h5", flags=0x1,
                                         central={"flags": 0x1})),
        ("deflate_bomb_1gib", with_member("model.weights.h5", method=8, raw=bomb,
                                          payload=b"", crc=crc, usize=1 << 30)),
        ("deflate_bomb_declared_small", with_member("model.weights.h5", method=8,
                                                    raw=small_bomb, payload=b"",
                                                    crc=small_crc, usize=len(weights))),
        ("stored_declares_1gib", with_member("model.weights.h5", usize=1 << 30,
                                             central={"usize": 1 << 30})),
        ("central_directory_2gib", bytes(huge_end)),
        ("no_weights_member", build_zip([m for m in members
                                         if m["name"] != "model.weights.h5"])),
        ("weights_not_hdf5", with_member("model.weights.h5", payload=b"not hdf5 at all")),
        ("weights_member_is_a_zip", with_member("model.weights.h5", payload=seed)),
        ("weights_twice", build_zip(members + [_weights_member(members)])),
        ("crc_mismatch", with_member("model.weights.h5", crc=1, central={"crc": 1})),
        ("inner_unwritten_65536x65536", with_member("model.weights.h5", payload=_replace_in(
            weights, "layers/conv2d/vars/0", _huge_dataset((65536, 65536))))),
        ("inner_name_length_2gib", with_member("model.weights.h5", payload=_vlen_length_2gib(
            weights, "layers/conv2d/vars", "name"))),
        ("inner_global_heap_free_space_0", with_member("model.weights.h5", payload=(
            heap_object_size(weights, 0)))),
        ("inner_hard_link_cycle", with_member("model.weights.h5", payload=edit_h5(
            weights, lambda f: f["layers/conv2d"].__setitem__("loop", f["layers"])))),
    ]
    return cases


def crafted_common() -> list[tuple[str, bytes]]:
    return [("empty", b""), ("text", b"these are not weights\n"),
            ("hdf5_magic_only", b"\x89HDF\r\n\x1a\n"),
            ("hdf5_truncated", _seeds("keras_weights_h5")[0][:700]),
            ("zip_end_record_only", b"PK\x05\x06" + bytes(18))]


# ---------------------------------------------------------------- targets

def _mutators_h5(legacy: bool):
    extra = (m_h5_model_config,) if legacy else ()
    return H5_MUTATORS + extra


TARGETS = [
    Target(name="keras_h5", read=READ, suffix=".h5",
           seeds=lambda: list(_seeds("keras_h5")),
           crafted=lambda: crafted_common() + crafted_keras_h5(),
           mutators=_mutators_h5(legacy=True),
           description="legacy Keras HDF5 weights (Keras 2/3 save_weights, model.save .h5)"),
    Target(name="keras_weights_h5", read=READ, suffix=".weights.h5",
           seeds=lambda: list(_seeds("keras_weights_h5")),
           crafted=lambda: crafted_common() + crafted_keras_weights_h5(),
           mutators=_mutators_h5(legacy=False),
           description="Keras 3 .weights.h5"),
    Target(name="keras_zip", read=READ, suffix=".keras",
           seeds=lambda: list(_seeds("keras_zip")),
           crafted=lambda: crafted_common() + crafted_keras_zip(),
           mutators=ZIP_MUTATORS,
           description="Keras 3 .keras archives (config.json + model.weights.h5)"),
]
