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

Untrusted files. Any file, however malformed, ends in ``WeightFileError``
(or its ``WeightBudgetError``, when reading it would cost more than a file
of its size can justify) with one line naming the file and, where known,
the HDF5 path, zip member or attribute; nothing it declares is allocated
before it is checked against the budgets below (module constants):

- zip: the central directory is at most ``MAX_ZIP_DIRECTORY`` bytes; only
  stored or deflated, unencrypted members are read; the members read
  declare at most ``MAX_ZIP_RATIO`` x the archive's size (+ ``ZIP_SLACK``)
  and are extracted with that byte cap (the weights to a temporary file).
- JSON (``config.json``, ``model_config``): at most ``MAX_JSON_BYTES``,
  ``MAX_JSON_VALUES`` values and ``MAX_JSON_DEPTH`` levels, checked before
  parsing; the layer configs must be objects.
- HDF5 groups: walked iteratively, at most ``MAX_GROUP_DEPTH`` deep and
  ``MAX_H5_OBJECTS`` objects (groups, links, attributes, datasets) in all;
  a group reached twice (hard links can make cycles) is refused, and so are
  soft and external links (an external link opens another file).
- HDF5 attributes (layer, weight names): at most ``MAX_ATTR_BYTES`` and
  ``MAX_ATTR_STRINGS`` strings each (also when split into chunks), text
  only, names at most ``MAX_NAME_BYTES`` bytes of UTF-8. HDF5 allocates and
  clears the length a variable-length string declares before comparing it
  with the string stored, so those lengths are read from the object
  header's bytes and checked first (such attributes shared or in dense
  storage, which Keras never writes, are refused); many strings are read
  cut to ``MAX_NAME_BYTES`` + 1 bytes each.
- HDF5 datasets: integer or float (bfloat16 marked as Keras marks it), at
  most ``MAX_NDIM`` dimensions of at most ``MAX_DIM``; contiguous, compact
  or chunked, without external raw data, virtual sources or compression
  filters (Keras writes none; HDF5 inflates a deflated chunk without a
  bound); the bytes declared may exceed the bytes the file stores for the
  dataset by at most ``UNSTORED_SLACK`` (a dataset declared but never
  written reads as its fill value at no cost in the file), a chunk is at
  most the read budget, and all datasets read from one file total at most
  ``MAX_READ_FACTOR`` x its size (+ ``READ_SLACK``).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import re
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from zoo.weights.conventions import KERAS, Conventions, Weights, declared
from zoo.weights.errors import WeightBudgetError, WeightError, WeightFileError, one_line
from zoo.weights.keras import from_keras_arrays

__all__ = ["WeightBudgetError", "WeightFileError", "from_keras_file", "read_keras_file"]

# ------------------------------------------------------------------ budgets

# Datasets read from one HDF5 file total at most MAX_READ_FACTOR x its size
# (+ READ_SLACK for the fill values of tiny unwritten datasets). Keras stores
# every weight uncompressed (and compressed datasets are refused), so a file
# holds at least the bytes of its arrays: 1x would do but for the float32
# copies of bfloat16 weights, which double them. Every read is charged, so a
# dataset hard-linked under many names cannot multiply what one file yields.
MAX_READ_FACTOR = 2
READ_SLACK = 1 << 20
# A dataset may declare at most this many bytes more than the file stores for
# it (its fill value is free in the file: 16384x16384 float32 never written
# is a few hundred bytes of HDF5 that would read as 1 GiB).
UNSTORED_SLACK = 64 << 10
MAX_NDIM = 8  # Keras weights have at most 5 dimensions (Conv3D kernels)
MAX_DIM = 1 << 32
# A .keras member may declare at most MAX_ZIP_RATIO x the archive's size
# (+ ZIP_SLACK, for tiny archives whose HDF5 padding deflates well). Keras
# stores its members uncompressed (ZIP_STORED) and float weights deflate by
# about 1.1x, so a member that inflates 4x is a decompression bomb, not
# weights; the cap also bounds the bytes actually extracted.
MAX_ZIP_RATIO = 4
ZIP_SLACK = 1 << 20
MAX_ZIP_DIRECTORY = 1 << 20  # central directory bytes (a .keras: about 200)
# JSON: EfficientNetB7's config.json is 0.76 MB, 48k values, 4x its size
# once parsed; 20x that is allowed. The depth is checked before parsing.
MAX_JSON_BYTES = 16 << 20
MAX_JSON_VALUES = 1_000_000
MAX_JSON_DEPTH = 100  # Keras configs nest about 10 levels per nested model
# HDF5 structure: Keras nests two groups per nested model; EfficientNetB7's
# files have about 3,000 groups and datasets.
MAX_GROUP_DEPTH = 32
MAX_H5_OBJECTS = 100_000
MAX_ATTR_BYTES = 16 << 20  # one attribute (Keras splits its own at 64 KB)
MAX_ATTR_STRINGS = 100_000  # names in one attribute (EfficientNetB7: 816 layers)
MAX_NAME_BYTES = 1024  # one layer or weight name

# What the libraries raise on a malformed file (h5py alone raises most of
# these); each becomes a WeightFileError naming the file and the HDF5 path.
_LIBRARY_ERRORS = (OSError, RuntimeError, LookupError, ValueError, TypeError,
                   NotImplementedError, EOFError, ArithmeticError, RecursionError,
                   zipfile.BadZipFile, zlib.error, struct.error)

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


def _require_h5py():
    try:
        import h5py
    except ImportError as e:
        raise ImportError("reading Keras .h5/.keras files needs h5py: "
                          "pip install 'zoo[keras]' (or pip install h5py)") from e
    return h5py


# --------------------------------------------------------------------- JSON

# A JSON string (the closing quote optional, so that an unterminated string
# is consumed in one linear match), and what is neither bracket nor comma.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_JSON_OTHER = re.compile(r"[^\[\]{},]+")


def _parse_json(raw, label: str, where: str):
    """``raw`` (bytes or str) parsed, within the JSON budgets."""
    if len(raw) > MAX_JSON_BYTES:
        raise WeightBudgetError(one_line(label, f"{len(raw)} bytes of JSON, more than the "
                                                f"{MAX_JSON_BYTES} allowed", where))
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WeightFileError(one_line(label, f"not UTF-8 text ({e})", where)) from e
    # Brackets and commas outside strings give the number of values and the
    # depth before parsing (json recurses; a running count does not).
    marks = np.frombuffer(_JSON_OTHER.sub("", _JSON_STRING.sub("", raw)).encode("ascii"),
                          np.uint8)
    opens = np.isin(marks, (ord("["), ord("{")))
    values = int(opens.sum()) + int((marks == ord(",")).sum())
    if values > MAX_JSON_VALUES:
        raise WeightBudgetError(one_line(label, f"about {values} JSON values, more than the "
                                                f"{MAX_JSON_VALUES} allowed", where))
    steps = opens.astype(np.int32) - np.isin(marks, (ord("]"), ord("}")))
    if steps.size and int(np.cumsum(steps).max()) > MAX_JSON_DEPTH:
        raise WeightFileError(one_line(label, f"JSON nested more than {MAX_JSON_DEPTH} "
                                              "levels deep", where))
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise WeightFileError(one_line(label, f"not valid JSON ({e})", where)) from e


def _check_config(config, label: str, where: str) -> dict:
    if not isinstance(config, dict):
        raise WeightFileError(one_line(label, f"a model config must be a JSON object, not "
                                              f"{type(config).__name__}", where))
    inner = config.get("config")
    if inner is not None and not isinstance(inner, dict):
        raise WeightFileError(one_line(label, f"'config' must be a JSON object, not "
                                              f"{type(inner).__name__}", where))
    _config_layers(config, label=label, where=where)  # validates every layer entry
    return config


def _config_layers(config, prefix: str = "layers", by_name=None, by_path=None, *,
                   label: str = "", where: str = "config", trail: str = "config"):
    """``(by_name, by_path)``: layer name -> (class, config), and the path
    Keras 3 saves a layer's variables under -> (class, config), for every
    layer of a model config, nested models included. Paths are numbered as
    Keras's saving_lib does: snake-case class name, then ``_1``, ``_2``, ...
    per class, in layer order. (Recursion is bounded by the JSON depth.)"""
    by_name = {} if by_name is None else by_name
    by_path = {} if by_path is None else by_path
    inner = config.get("config") if isinstance(config, dict) else None
    layers = inner.get("layers") if isinstance(inner, dict) else None
    if not isinstance(layers, list):
        return by_name, by_path
    used: dict[str, int] = {}
    for i, layer in enumerate(layers):
        at = f"{trail}.layers[{i}]"
        if not isinstance(layer, dict):
            raise WeightFileError(one_line(label, f"{at} must be a JSON object, not "
                                                  f"{type(layer).__name__}", where))
        cfg = layer.get("config")
        cfg = {} if cfg is None else cfg
        if not isinstance(cfg, dict):
            raise WeightFileError(one_line(label, f"{at}.config must be a JSON object, not "
                                                  f"{type(cfg).__name__}", where))
        cls = layer.get("class_name")
        cls = cls if isinstance(cls, str) else ""
        name = cfg.get("name", layer.get("name"))
        snake = _snake(cls)
        if snake in used:
            used[snake] += 1
            snake = f"{snake}_{used[snake]}"
        else:
            used[snake] = 0
        path = f"{prefix}/{snake}"
        if isinstance(name, str):
            by_name[name] = (cls, cfg)
        by_path[path] = (cls, cfg)
        _config_layers(layer, f"{path}/layers", by_name, by_path, label=label, where=where,
                       trail=f"{at}.config")
    return by_name, by_path


def _config_name(cfg: dict):
    name = cfg.get("name")
    return name if isinstance(name, str) else None


# --------------------------------------------------------------------- HDF5

class _H5:
    """One HDF5 file being read: its label for messages, where we are in it,
    and what reading it may still cost."""

    def __init__(self, h5py, label: str, size: int, fd: int):
        self.h5py, self.label, self.size, self.fd = h5py, label, size, fd
        self.limit = MAX_READ_FACTOR * size + READ_SLACK
        self.left = self.limit
        self.objects = 0
        self.where = None
        self.base, self.sizeof_addr, self.sizeof_size = 0, 8, 8
        self.headers: dict[int, list] = {}
        self.heaps: dict[int, dict[int, int]] = {}

    def attach(self, f) -> None:
        """Note where the file's addresses start and how wide they are."""
        fcpl = f.id.get_create_plist()
        self.base = fcpl.get_userblock()
        self.sizeof_addr, self.sizeof_size = fcpl.get_sizes()

    def fail(self, what: str, where=None, cls=WeightFileError) -> WeightFileError:
        return cls(one_line(self.label, what, self.where if where is None else where))

    def tick(self, where: str) -> None:
        self.where = where
        self.objects += 1
        if self.objects > MAX_H5_OBJECTS:
            raise self.fail(f"more than {MAX_H5_OBJECTS} HDF5 objects (groups, links, "
                            "attributes, datasets) to visit", cls=WeightBudgetError)

    # --- links and objects

    def child(self, group, key: str, where: str):
        """``group[key]`` through a hard link, None when there is no such link."""
        h5py = self.h5py
        self.tick(where)
        link = group.get(key, getlink=True)  # the link itself: nothing is opened
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise self.fail(f"an external link to {link.filename}:{link.path} (refused: it "
                            "would open another file; Keras writes none)", where)
        if isinstance(link, h5py.SoftLink):
            raise self.fail(f"a soft link to {link.path} (Keras writes none)", where)
        if not isinstance(link, h5py.HardLink):
            raise self.fail(f"a link of an unknown kind ({type(link).__name__})", where)
        return group[key]

    def path(self, group, path: str, where: str, kind: str):
        """The object at ``path`` under ``group`` (component by component,
        hard links only), which must be a ``kind`` ("group"/"dataset")."""
        h5py = self.h5py
        parts = [p for p in path.split("/") if p and p != "."]
        if len(parts) > MAX_GROUP_DEPTH:
            raise self.fail(f"a path of {len(parts)} components, more than the "
                            f"{MAX_GROUP_DEPTH} allowed", where)
        obj, walked = group, _h5name(group)
        for part in parts:
            walked = f"{walked}/{part}" if walked else part
            if not isinstance(obj, h5py.Group):
                raise self.fail(f"{_kind(h5py, obj)} where a group belongs", _h5name(obj))
            found = self.child(obj, part, walked)
            if found is None:
                raise self.fail(f"no {kind} here (the file names {path!r} but does not "
                                "hold it)", walked)
            obj = found
        want = h5py.Group if kind == "group" else h5py.Dataset
        if not isinstance(obj, want):
            raise self.fail(f"{_kind(h5py, obj)} where a {kind} belongs", walked)
        return obj

    def members(self, group, where: str) -> list[str]:
        names = []
        for key in group:
            self.tick(f"{where}/{key}")
            names.append(key)
        return names

    # --- attributes

    def strings(self, obj, name: str, where: str, max_len: int = MAX_NAME_BYTES):
        """A text attribute as a list of str (None when absent); its size,
        type and encoding checked before and after reading."""
        h5py = self.h5py
        if name not in obj.attrs:
            return None
        at = f"{where}@{name}"
        self.tick(at)
        aid = obj.attrs.get_id(name)
        if aid.get_space().get_simple_extent_type() == h5py.h5s.NULL:
            return []
        shape = tuple(aid.shape or ())
        count = math.prod(shape)
        if count == 0:
            return []  # Keras writes an empty float64 array for "no weights"
        if count > MAX_ATTR_STRINGS:
            raise self.fail(f"an attribute of {count} values, more than the "
                            f"{MAX_ATTR_STRINGS} allowed", at, WeightBudgetError)
        try:
            dtype = aid.dtype
        except TypeError as e:
            raise self.fail(f"an attribute of a type numpy cannot hold ({e})", at) from e
        nbytes = max(aid.get_storage_size(), count * dtype.itemsize)
        if nbytes > MAX_ATTR_BYTES:
            raise self.fail(f"an attribute of {nbytes} bytes, more than the "
                            f"{MAX_ATTR_BYTES} allowed", at, WeightBudgetError)
        info = h5py.check_string_dtype(dtype)
        if info is None:
            raise self.fail(f"an attribute of {dtype}, not text", at)
        if info.length is not None:  # fixed-length strings: read as stored
            out = np.empty(shape, dtype)
            aid.read(out)
            values = [bytes(v) for v in out.ravel()]
        else:
            # Variable-length strings: HDF5 allocates and clears the length
            # each element declares before it compares it with the string it
            # points at (a corrupt 2**31 costs 2 GiB), so the lengths are
            # read from the object header's bytes and checked first.
            if count > 1 and count * (max_len + 1) > MAX_ATTR_BYTES:
                raise self.fail(f"{count} variable-length strings, more than the "
                                f"{MAX_ATTR_BYTES // (max_len + 1)} allowed", at,
                                WeightBudgetError)
            longest = max(self.vlen_lengths(obj, name, count, at))
            if longest > min(max_len, self.size):
                raise self.fail(f"a string of {longest} bytes, longer than the "
                                f"{min(max_len, self.size)} allowed", at, WeightBudgetError)
            if count == 1:
                out = np.zeros(shape, h5py.string_dtype("ascii"))
                aid.read(out, mtype=h5py.h5t.py_create(out.dtype))
                values = [out.ravel()[0]]
            else:  # converted to fixed length: at most max_len + 1 bytes each
                out = np.zeros(shape, f"S{max_len + 1}")
                aid.read(out, mtype=h5py.h5t.py_create(out.dtype))
                values = [bytes(v) for v in out.ravel()]
        texts = []
        for v in values:
            if not isinstance(v, bytes):
                raise self.fail(f"an attribute holding {type(v).__name__}, not text", at)
            if len(v) > max_len:
                raise self.fail(f"a string of {len(v)} or more bytes, longer than the "
                                f"{max_len} allowed", at, WeightBudgetError)
            try:
                texts.append(v.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise self.fail(f"text that is not UTF-8 ({e})", at) from e
        return texts

    # --- raw object headers (only to check variable-length attributes)

    def raw(self, addr: int, n: int, at: str) -> bytes:
        if addr < 0 or n < 0 or self.base + addr + n > self.size:
            raise self.fail(f"an object header at {addr} (+{n} bytes) beyond the end of the "
                            f"{self.size} byte file", at)
        data = os.pread(self.fd, n, self.base + addr)
        if len(data) != n:
            raise self.fail(f"an object header at {addr} cut short", at)
        return data

    def messages(self, addr: int, at: str) -> list[tuple[int, int, bytes]]:
        """``(type, flags, data)`` of the messages of the object header at
        ``addr`` (version 1 or 2), continuation chunks included."""
        if addr in self.headers:
            return self.headers[addr]
        head = self.raw(addr, min(16 + 20, self.size - self.base - addr), at)
        creation_order = False
        if head[:4] == b"OHDR" and len(head) >= 7 and head[4] == 2:
            flags, p = head[5], 6
            p += (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 3)
            if len(head) < p + width:
                raise self.fail("a truncated object header", at)
            size0 = int.from_bytes(head[p:p + width], "little")
            chunks, version = [(addr + p + width, size0, False)], 2
            creation_order = bool(flags & 0x04)
        elif len(head) >= 16 and head[0] == 1:
            (size0,) = struct.unpack_from("<I", head, 8)
            chunks, version = [(addr + 16, size0, False)], 1
        else:
            raise self.fail("an object header of unknown version", at)
        found, seen = [], set()
        while chunks:
            start, length, continued = chunks.pop(0)
            if start in seen or len(seen) > 1024:
                raise self.fail("object header continuations that loop", at)
            seen.add(start)
            data = self.raw(start, length, at)
            p, end = 0, length
            if version == 2 and continued:
                if data[:4] != b"OCHK":
                    raise self.fail("an object header continuation without its signature", at)
                p, end = 4, length - 4
            width = 8 if version == 1 else 4 + (2 if creation_order else 0)
            while p + width <= end:
                if version == 1:
                    kind, size, mflags = struct.unpack_from("<HHB", data, p)
                else:
                    kind, size, mflags = struct.unpack_from("<BHB", data, p)
                p += width
                if p + size > end:
                    raise self.fail("an object header message that runs past its chunk", at)
                body = data[p:p + size]
                p += size
                if kind == 0x10:  # continuation: address, length
                    if size < self.sizeof_addr + 8:
                        raise self.fail("a short object header continuation message", at)
                    where_to = int.from_bytes(body[:self.sizeof_addr], "little")
                    how_long = int.from_bytes(body[self.sizeof_addr:self.sizeof_addr + 8],
                                              "little")
                    chunks.append((where_to, how_long, True))
                found.append((kind, mflags, body))
        self.headers[addr] = found
        return found

    def heap(self, addr: int, at: str) -> dict[int, int]:
        """Object index -> size of the global heap collection at ``addr``,
        walked as HDF5 walks it (HDF5 loops forever on an object that does
        not advance the walk)."""
        if addr in self.heaps:
            return self.heaps[addr]
        if len(self.heaps) > 1024:
            raise self.fail("more than 1024 global heap collections", at, WeightBudgetError)
        start = 8 + self.sizeof_size
        head = self.raw(addr, start, at)
        if head[:4] != b"GCOL":
            raise self.fail(f"no global heap collection at {addr}", at)
        size = int.from_bytes(head[8:start], "little")
        data = self.raw(addr, size, at)
        header = 8 + self.sizeof_size  # index, references, reserved, size
        objects, p = {}, start
        while p + header <= size:
            index, = struct.unpack_from("<H", data, p)
            length = int.from_bytes(data[p + 8:p + header], "little")
            step = header + ((length + 7) & ~7) if index else length
            if step <= 0 or p + step > size:
                raise self.fail(f"a corrupt global heap collection at {addr} (object {index} "
                                f"of {length} bytes at {p})", at)
            if index:
                objects[index] = length
            p += step
        self.heaps[addr] = objects
        return objects

    def vlen_lengths(self, obj, name: str, count: int, at: str) -> list[int]:
        """The lengths the ``count`` variable-length elements of attribute
        ``name`` declare, from every attribute message of that name in
        ``obj``'s object header (refused when it is elsewhere: shared or in
        dense storage, neither of which Keras writes)."""
        addr = self.h5py.h5o.get_info(obj.id).addr
        messages = self.messages(addr, at)
        element = 4 + self.sizeof_addr + 4  # length, heap collection address, index
        wanted = name.encode("utf-8")
        lengths, matched = [], False
        for kind, mflags, body in messages:
            if kind != 0x0C or len(body) < 8:
                continue
            version = body[0]
            name_size, type_size, space_size = struct.unpack_from("<HHH", body, 2)
            if version == 1:
                pad = lambda n: (n + 7) & ~7  # noqa: E731
                p = 8
            elif version in (2, 3):
                pad = lambda n: n  # noqa: E731
                p = 8 if version == 2 else 9
            else:
                continue
            if body[p:p + name_size].rstrip(b"\0") != wanted:
                continue
            if mflags & 0x02:
                raise self.fail("a shared attribute message (Keras writes none)", at)
            p += pad(name_size) + pad(type_size) + pad(space_size)
            data = body[p:]
            if len(data) < count * element:
                raise self.fail(f"an attribute message of {len(data)} bytes for {count} "
                                "variable-length strings", at)
            for i in range(count):
                length, = struct.unpack_from("<I", data, i * element)
                heap = int.from_bytes(data[i * element + 4:i * element + 4 + self.sizeof_addr],
                                      "little")
                index, = struct.unpack_from("<I", data, i * element + 4 + self.sizeof_addr)
                if length and length <= MAX_ATTR_BYTES:
                    stored = self.heap(heap, at).get(index)
                    if stored != length:
                        raise self.fail(f"a string declaring {length} bytes where the global "
                                        f"heap holds {stored}", at)
                lengths.append(length)
            matched = True
        if not matched:
            dense = any(kind == 0x15 for kind, _, _ in messages)
            raise self.fail("variable-length strings stored " + (
                "in dense attribute storage" if dense else "outside the object header") +
                " (refused: their lengths cannot be checked before HDF5 allocates them; "
                "Keras writes none)", at)
        return lengths

    def string(self, obj, name: str, where: str, max_len: int = MAX_NAME_BYTES):
        values = self.strings(obj, name, where, max_len)
        if values is None:
            return None
        if len(values) != 1:
            raise self.fail(f"{len(values)} strings where one belongs", f"{where}@{name}")
        return values[0]

    def chunked(self, obj, name: str, where: str):
        """keras' load_attributes_from_hdf5_group: ``name`` or its chunks
        ``name0``, ``name1``, ... (None when absent)."""
        if name in obj.attrs:
            return self.strings(obj, name, where)
        if f"{name}0" not in obj.attrs:
            return None
        values, total, i = [], 0, 0
        while f"{name}{i}" in obj.attrs:
            chunk = self.strings(obj, f"{name}{i}", where)
            total += sum(len(v) for v in chunk)
            if total > MAX_ATTR_BYTES or len(values) + len(chunk) > MAX_ATTR_STRINGS:
                raise self.fail(f"attribute {name} split in chunks holds more than "
                                f"{MAX_ATTR_BYTES} bytes or {MAX_ATTR_STRINGS} strings",
                                f"{where}@{name}{i}", WeightBudgetError)
            values += chunk
            i += 1
        return values

    # --- datasets

    def dataset(self, ds, where: str) -> np.ndarray:
        """A dataset's array, once its type, shape, layout and storage are
        known to be what Keras writes and within the read budget."""
        h5py = self.h5py
        self.tick(where)
        if not isinstance(ds, h5py.Dataset):
            raise self.fail(f"{_kind(h5py, ds)} where a dataset of weights belongs", where)
        bfloat16 = self.string(ds, "dtype", where, max_len=64) == "bfloat16"
        try:
            dtype = ds.dtype
        except TypeError as e:
            raise self.fail(f"a dataset of a type numpy cannot hold ({e})", where) from e
        enum = h5py.check_enum_dtype(dtype) is not None
        if bfloat16:
            ok = dtype.itemsize == 2 and dtype.kind in "Vui" and dtype.fields is None
        else:
            ok = (dtype.kind in "iuf" and dtype.fields is None and dtype.subdtype is None
                  and not enum)
        if not ok:
            what = "bfloat16 (two bytes)" if bfloat16 else "integers or floats"
            raise self.fail(f"a dataset of {_describe(h5py, dtype)}, not {what}", where)
        dcpl = ds.id.get_create_plist()
        layout = dcpl.get_layout()
        if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED):
            raise self.fail("a virtual dataset (its data would come from other files; "
                            "Keras writes none)", where)
        if dcpl.get_external_count():
            raise self.fail("a dataset whose data lies in external files (refused: Keras "
                            "writes none)", where)
        filters = [dcpl.get_filter(i) for i in range(dcpl.get_nfilters())]
        bad = [f[3].decode("latin-1", "replace") or str(f[0]) for f in filters
               if f[0] not in (h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32)]
        if bad:
            raise self.fail(f"a compressed dataset ({', '.join(bad)}); Keras writes weights "
                            "uncompressed and compressed chunks inflate without a bound",
                            where)
        shape = ds.shape
        if shape is None:
            raise self.fail("a dataset without a dataspace (no data)", where)
        if len(shape) > MAX_NDIM or any(d > MAX_DIM for d in shape):
            raise self.fail(f"a dataset of shape {shape}: more than {MAX_NDIM} dimensions "
                            f"or one over {MAX_DIM}", where)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        stored = ds.id.get_storage_size()
        if nbytes > stored + UNSTORED_SLACK:
            raise self.fail(f"declares {'x'.join(map(str, shape))} {dtype} ({nbytes} bytes) "
                            f"but the file stores {stored} bytes of it (never written?)",
                            where, WeightBudgetError)
        if layout == h5py.h5d.CHUNKED and ds.chunks is not None:
            chunk = math.prod(ds.chunks) * dtype.itemsize
            if chunk > self.limit:
                raise self.fail(f"chunks of {chunk} bytes, more than the {self.limit} this "
                                "file may read", where, WeightBudgetError)
        cost = 2 * nbytes if bfloat16 else nbytes  # float32 copies of bfloat16
        if cost > self.left:
            raise self.fail(f"reading {nbytes} more bytes would exceed the {self.limit} "
                            f"({MAX_READ_FACTOR}x its size) this file may read", where,
                            WeightBudgetError)
        self.left -= cost
        out = np.empty(shape, dtype if dtype.kind == "V" else dtype.newbyteorder("="))
        if count:
            ds.read_direct(out)
        if bfloat16:
            import ml_dtypes

            return out.view(ml_dtypes.bfloat16).astype(np.float32)
        return out


def _describe(h5py, dtype) -> str:
    """A dataset's type in words: h5py maps several HDF5 types onto one
    numpy dtype (an enum onto its integer, references and variable-length
    data onto object)."""
    if h5py.check_enum_dtype(dtype) is not None:
        return f"an enumeration ({dtype})"
    if h5py.check_string_dtype(dtype) is not None:
        return f"strings ({dtype})"
    if h5py.check_vlen_dtype(dtype) is not None:
        return "variable-length sequences"
    if h5py.check_ref_dtype(dtype) is not None:
        return "object references"
    return str(dtype)


def _h5name(obj) -> str:
    return (obj.name or "").strip("/")


def _kind(h5py, obj) -> str:
    if isinstance(obj, h5py.Dataset):
        return "a scalar dataset" if obj.shape == () else "a dataset"
    if isinstance(obj, h5py.Group):
        return "a group"
    return f"a {type(obj).__name__.lower()}"


# ---------------------------------------------------------------- legacy .h5

def _legacy_classes(r: _H5, f) -> dict[str, str]:
    """Layer name -> class from a full-model save's ``model_config``."""
    raw = r.string(f, "model_config", "", max_len=MAX_JSON_BYTES)
    if raw is None:
        return {}
    config = _check_config(_parse_json(raw, r.label, "@model_config"), r.label,
                           "@model_config")
    return {name: cls for name, (cls, _) in _config_layers(config)[0].items()}


def _read_legacy(r: _H5, f, root):
    classes = _legacy_classes(r, f)
    source, skip = {}, set()
    base = _h5name(root)
    for layer in r.chunked(root, "layer_names", base) or []:
        group = r.path(root, layer, f"{base}/{layer}".strip("/"), "group")
        where = _h5name(group)
        weight_names = r.chunked(group, "weight_names", where) or []
        keys = []
        for weight_name in weight_names:
            parts = re.sub(r":\d+$", "", weight_name).split("/")
            prefix, leaf = "/".join(parts[:-1]), parts[-1]
            # Normally "<layer>/<leaf>" (possibly under an outer scope); the
            # weights of a nested model are named after its inner layers.
            if not prefix or prefix == layer or prefix.endswith("/" + layer):
                prefix = layer
            key = f"{prefix}/{leaf}"
            at = f"{where}/{weight_name}"
            if key in source:
                raise r.fail(f"weight {key} appears twice", at)
            source[key] = r.dataset(r.path(group, weight_name, at, "dataset"), at)
            keys.append(key)
        leaves = {k.rsplit("/", 1)[1] for k in keys}
        if classes.get(layer) in _PREPROCESSING or (
                classes.get(layer) is None and leaves and leaves <= _NORMALIZATION_LEAVES):
            skip.update(keys)
    return source, skip


# ------------------------------------------------------- Keras 3 .weights.h5

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


def _layer_groups(r: _H5, top, path: str):
    """``(path, vars group)`` of every layer under ``top``, depth first in
    file order, without recursion; a group reached twice is refused."""
    h5py = r.h5py
    stack, seen = [(path, top, 0)], set()
    while stack:
        path, group, depth = stack.pop()
        if group.id in seen:
            raise r.fail("a group reached twice (hard links make a cycle or share it; "
                         "Keras writes a tree)", path)
        seen.add(group.id)
        variables, children = None, []
        for key in r.members(group, path):
            at = f"{path}/{key}"
            child = r.child(group, key, at)
            if key == "vars":
                if not isinstance(child, h5py.Group):
                    raise r.fail(f"{_kind(h5py, child)} where a group of weights belongs", at)
                variables = child
            elif isinstance(child, h5py.Group):
                children.append((at, child, depth + 1))
        if variables is not None and len(variables):
            yield path, variables
        if children and depth + 1 > MAX_GROUP_DEPTH:
            raise r.fail(f"groups nested more than {MAX_GROUP_DEPTH} deep", children[0][0])
        stack.extend(reversed(children))


def _index_order(key: str):
    return (0, len(key), key) if key.isascii() and key.isdigit() else (1, 0, key)


def _read_keras3(r: _H5, f, config=None):
    by_name, by_path = _config_layers(config) if config else ({}, {})
    source, skip = {}, set()
    nameless = []
    top = r.path(f, "layers", "layers", "group")
    for path, variables in _layer_groups(r, top, "layers"):
        at_vars = f"{path}/vars"
        name = r.string(variables, "name", at_vars)
        at_path = by_path.get(path)
        if name is None:
            name = _config_name(at_path[1]) if at_path else None
            if name is None:
                nameless.append(path)
                continue
        if at_path is None or _config_name(at_path[1]) != name:
            at_path = by_name.get(name)
        cls, cfg = at_path or (None, {})
        if not cls:  # no config: the class from the saved path
            cls = _CLASS_OF_SNAKE.get(re.sub(r"_\d+$", "", path.rsplit("/", 1)[-1]))
        indices = sorted(r.members(variables, at_vars), key=_index_order)
        leaves = _variable_names(cls, cfg, len(indices)) or [f"vars/{i}" for i in indices]
        for index, leaf in zip(indices, leaves):
            key = f"{name}/{leaf}"
            at = f"{at_vars}/{index}"
            if key in source:
                raise r.fail(f"weight {key} appears twice", at)
            source[key] = r.dataset(r.path(variables, index, at, "dataset"), at)
            if cls in _PREPROCESSING:
                skip.add(key)
    if nameless:
        raise r.fail(
            f"a Keras 3 weights file without layer names (written by Keras < 3.6: "
            f"{len(nameless)} layers such as {nameless[0]!r} are known only by their position "
            "in the Keras model). Load it with keras (model.load_weights(path)) and use "
            "zoo.weights.from_keras(model, name), or save the model as .keras", "")
    return source, skip


# ------------------------------------------------------------------- entry

def _has_layer_names(group) -> bool:
    return "layer_names" in group.attrs or "layer_names0" in group.attrs


def _read_h5(r: _H5, f, config=None):
    h5py = r.h5py
    if _has_layer_names(f):
        return _read_legacy(r, f, f)
    weights = r.child(f, "model_weights", "model_weights")
    if weights is not None:
        if not isinstance(weights, h5py.Group):
            raise r.fail(f"{_kind(h5py, weights)} where a group of weights belongs")
        if _has_layer_names(weights):
            return _read_legacy(r, f, weights)
    if f.get("layers", getlink=True) is not None:
        return _read_keras3(r, f, config)
    top = list(itertools.islice(iter(f), 10))
    raise r.fail("an HDF5 file but not Keras weights (no 'layer_names' attribute, "
                 f"'model_weights' group or 'layers' group; top level: {top})", "")


def _read_h5_file(h5py, source, label: str, size: int, config=None):
    """Read an HDF5 file (a path or an open file) of ``size`` bytes; every
    library error becomes a WeightFileError naming the HDF5 path reached."""
    with contextlib.ExitStack() as stack:
        fd = source.fileno() if hasattr(source, "fileno") else \
            stack.enter_context(open(source, "rb")).fileno()
        r = _H5(h5py, label, size, fd)
        try:
            with h5py.File(source, "r") as f:
                r.attach(f)
                return _read_h5(r, f, config)
        except WeightError:
            raise
        except _LIBRARY_ERRORS as e:
            raise WeightFileError(one_line(
                label, f"cannot read this Keras weight file, is it truncated or corrupted? "
                       f"({type(e).__name__}: {e})", r.where)) from e


def read_keras_file(path):
    """``(arrays, skip)`` from a Keras weight file: ``arrays`` maps
    ``"<keras layer>/<weight>"`` to numpy arrays (``stem_conv/kernel``,
    ``stem_bn/moving_mean``); ``skip`` holds the keys of preprocessing
    layers. The format is recognised by content (see the module docstring).

    Args:
        path: a legacy ``.h5``, Keras 3 ``.weights.h5`` or ``.keras`` file.

    Returns:
        ``(arrays, skip)``: ``dict[str, numpy.ndarray]`` in Keras layouts,
        and the set of keys no model variable should read.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        WeightFileError: not a readable Keras weight file (one line naming
            it); its subclass ``WeightBudgetError`` when the file declares
            more than its size allows.
        ImportError: h5py is not installed (the message names the extra).
    """
    path = Path(path)
    label = str(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Keras weight file at {path}")
    h5py = _require_h5py()
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            directory = None if head == _HDF5_MAGIC else _zip_directory_size(fh, size)
        if directory is not None:
            return _read_archive(path, label, size, directory, h5py)
        if head != _HDF5_MAGIC and not h5py.is_hdf5(os.fspath(path)):
            raise WeightFileError(one_line(label, "not a Keras weight file (neither HDF5 .h5 "
                                                  "nor a .keras zip archive; starts with "
                                                  f"{head!r})"))
        return _read_h5_file(h5py, path, label, size)
    except WeightError:
        raise
    except _LIBRARY_ERRORS as e:
        raise WeightFileError(one_line(label, f"cannot read this Keras weight file, is it "
                                              f"truncated or corrupted? ({type(e).__name__}: "
                                              f"{e})")) from e


# --------------------------------------------------------------------- zip

def _zip_directory_size(fh, size: int):
    """The central directory's size declared by a zip's end record (zip64
    aware), or None when the file has no end record (not a zip)."""
    tail_len = min(size, 22 + 0xFFFF + 20 + 56)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    (directory,) = struct.unpack_from("<I", tail, at + 12)
    locator = at - 20
    if locator >= 0 and tail[locator:locator + 4] == b"PK\x06\x07":
        record = locator - 56
        if record >= 0 and tail[record:record + 4] == b"PK\x06\x06":
            (directory,) = struct.unpack_from("<Q", tail, record + 40)
    return directory


_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_ZIP_ENCRYPTED = 0x1 | 0x40 | 0x2000  # traditional, strong, central-directory encryption


def _extract(z, info, out, cap: int, label: str) -> int:
    """Copy member ``info`` to ``out``, refusing before reading what
    declares more than ``cap`` bytes, and stopping at the cap whatever the
    compressed stream holds. Returns the bytes copied."""
    where = info.filename
    if info.flag_bits & _ZIP_ENCRYPTED:
        raise WeightFileError(one_line(label, "an encrypted member (Keras writes none)", where))
    if info.compress_type not in _ZIP_METHODS:
        raise WeightFileError(one_line(label, f"compression method {info.compress_type} is "
                                              "not supported (Keras stores members; deflate "
                                              "is read too)", where))
    if info.file_size > cap:
        raise WeightBudgetError(one_line(
            label, f"declares {info.file_size} bytes uncompressed, more than the {cap} "
                   f"allowed for an archive of this size ({MAX_ZIP_RATIO}x + {ZIP_SLACK})",
            where))
    total = 0
    try:
        with z.open(info) as src:
            while True:
                chunk = src.read(min(1 << 20, cap + 1 - total))
                if not chunk:
                    break
                total += len(chunk)
                if total > cap or total > info.file_size:
                    raise WeightBudgetError(one_line(
                        label, f"inflates beyond the {info.file_size} bytes it declares", where))
                out.write(chunk)
    except WeightError:
        raise
    except _LIBRARY_ERRORS as e:
        raise WeightFileError(one_line(label, f"cannot extract this member, is the archive "
                                              f"truncated or corrupted? ({type(e).__name__}: "
                                              f"{e})", where)) from e
    return total


def _read_archive(path, label: str, size: int, directory: int, h5py):
    if directory > MAX_ZIP_DIRECTORY:
        raise WeightBudgetError(one_line(label, f"a zip central directory of {directory} "
                                                f"bytes, more than the {MAX_ZIP_DIRECTORY} "
                                                "allowed"))
    cap = MAX_ZIP_RATIO * size + ZIP_SLACK
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as z:
        infos = {}
        for info in z.infolist():
            if info.filename in ("config.json", "model.weights.h5") and info.filename in infos:
                raise WeightFileError(one_line(label, "the archive holds two members of this "
                                                      "name", info.filename))
            infos[info.filename] = info
        if "model.weights.h5" not in infos:
            sharded = " (sharded weights are not supported)" if any(
                n.endswith(".weights.json") for n in infos) else ""
            raise WeightFileError(one_line(
                label, f"a zip archive without model.weights.h5, not a .keras model{sharded}; "
                       f"it holds {sorted(itertools.islice(infos, 10))}"))
        config = None
        if "config.json" in infos:
            buffer = io.BytesIO()
            cap -= _extract(z, infos["config.json"], buffer,
                            min(cap, MAX_JSON_BYTES), label)
            config = _check_config(_parse_json(buffer.getvalue(), label, "config.json"),
                                   label, "config.json")
        with tempfile.TemporaryFile(prefix="zoo-keras-") as tmp:
            n = _extract(z, infos["model.weights.h5"], tmp, cap, label)
            tmp.seek(0)
            return _read_h5_file(h5py, tmp, f"{label}:model.weights.h5", n, config)


# ----------------------------------------------------------------- mapping

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


def from_keras_file(path, name: str, *, conventions: Optional[Conventions] = None,
                    **options) -> Weights:
    """Variables for zoo model ``name`` from a Keras weight file: legacy
    HDF5 (Keras Applications downloads, ``model.save("x.h5")``), Keras 3
    ``.weights.h5`` or a ``.keras`` archive (see the module docstring), as
    ``Weights`` carrying Keras's conventions (TF "same" padding, BatchNorm
    epsilon 1e-3): ``zoo.create(name, weights=...)`` builds the model that
    runs them.

    ``options`` are ``zoo.create``'s (``width``, ``num_classes``, ...);
    ``conventions`` (or ``padding``/``bn_eps``) overrides what is recorded.

    Args:
        path: the Keras weight file.
        name: the zoo model the weights are for.
        conventions: the conventions to record instead of Keras's.
        **options: ``zoo.create``'s options for building the target model.

    Returns:
        ``Weights``: ``{"params": ..., "batch_stats": ...}`` numpy arrays
        carrying their conventions.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        WeightFileError: not a readable Keras file (naming it);
            ``WeightBudgetError`` when it declares more than its size allows.
        WeightMismatchError: the file is for another model (every missing,
            unexpected or mis-shaped key named).
        ValueError: ``conventions`` given together with ``padding``/``bn_eps``.

    Example:
        ::

            w = from_keras_file("efficientnetb0.h5", "efficientnet_b0")
            model, variables = zoo.create("efficientnet_b0", weights=w)
    """
    from zoo.registry import build

    need = declared(KERAS, conventions, options.get("padding"), options.get("bn_eps"))
    source, skip = read_keras_file(path)
    model = build(name, **options)
    if hasattr(model, "keras_names"):
        source, skip = _rename_legacy(source, skip, model.keras_names().values())
    return from_keras_arrays(source, name, source_label=f"Keras file {os.fspath(path)}",
                             skip=skip, conventions=need, **options)
