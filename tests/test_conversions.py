"""TFLite and ONNX exports: parity with JAX in the independent runtimes
(LiteRT with XNNPACK, onnxruntime), the op audit, metadata, errors.

Every registry model is exported (float32) and checked; EfficientNet-B1..B7
at 224 px, which keeps the run short and changes no layer (the networks are
convolutional up to the global pool), the depth models at 128 px. The quantised files are checked on the
pretrained models with real photos."""

from __future__ import annotations

import concurrent.futures
import functools
import json
import multiprocessing

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import zoo
from zoo.registry import variables_template
from zoo.weights.tflite import read_tflite

conversions = pytest.importorskip("conversions")
pytest.importorskip("tensorflow")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from conversions import (ConversionError, audit_tflite, read_metadata, runner,  # noqa: E402
                         to_onnx, to_tflite)
from conversions.export import _output_dict  # noqa: E402
from conversions.onnx import tflite_to_onnx  # noqa: E402
from conversions.table import TASKS  # noqa: E402
from helpers import memory_heavy  # noqa: E402

MAX_TEST_RESOLUTION = 224
# The depth models' decoder doubles four times back to the input: 128 px
# runs every layer (the stride-32 map is 4x4) at a third of the cost of 224.
DEPTH_TEST_RESOLUTION = 128
# Models above this many parameters export one at a time across test
# workers: conversion peaks at about 180 bytes resident per parameter
# (EfficientNet-B7, 66 M: 7.5 GB for TFLite, 12 GB with ONNX).
LARGE_EXPORT_PARAMS = 15_000_000
PRETRAINED = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenet_v2")


def _relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def _nontrivial_batchnorm(variables, seed=0):
    """Random BatchNorm statistics (init leaves mean 0, var 1, which would
    hide a wrong fold) with each channel's scale set to sqrt(var), so every
    BatchNorm keeps unit gain and a deep random network neither explodes nor
    vanishes: a relative tolerance then means what it says."""
    if "batch_stats" not in variables:  # e.g. MediaPipe's models: BatchNorm folded upstream
        return variables
    rng = np.random.default_rng(seed)
    params = jax.tree_util.tree_map(np.array, variables["params"])
    stats = jax.tree_util.tree_map(np.array, variables["batch_stats"])

    def walk(p, s):
        for k, sub in s.items():
            if "var" in sub:
                sub["var"] = rng.uniform(0.5, 1.5, sub["var"].shape).astype(np.float32)
                sub["mean"] = rng.normal(0, 0.05, sub["mean"].shape).astype(np.float32)
                p[k]["scale"] = np.sqrt(sub["var"])
            else:
                walk(p[k], sub)

    walk(params, stats)
    return {**variables, "params": params, "batch_stats": stats}


def _depthwise_layers(model) -> int:
    """Depthwise kernels are (k, k, 1, C) with k > 1 in every family."""
    shapes = [a.shape for a in jax.tree_util.tree_leaves(variables_template(model)["params"])]
    return sum(1 for s in shapes if len(s) == 4 and s[0] > 1 and s[2] == 1 and s[3] > 1)


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(autouse=True)
def _release_compiled():
    """Each test here converts whole models; their compiled executables are
    not needed by the next one."""
    yield
    jax.clear_caches()


def _export_both(name, variables, shape, lite_path, onnx_path):
    tflite_to_onnx(to_tflite(name, variables, input_shape=shape, out=lite_path), onnx_path)


# EfficientNet-B5 and B6 are B4's and B7's blocks at widths and depths in
# between, exported the same way (in a child process, one at a time); B4 and
# B7 stand for them here, and the conversion table exports all of them at
# full resolution with their pretrained weights.
BRACKETED_SIZES = ("efficientnet_b5", "efficientnet_b6")


# One test worker runs every export in turn (`--dist loadgroup`): the large
# ones take a machine-wide lock, and on two workers one would wait for it.
@pytest.mark.slow
@pytest.mark.early
@pytest.mark.xdist_group("float32_exports")
@pytest.mark.parametrize("name", [n for n in zoo.list_models() if zoo.get_spec(n).task in TASKS
                                  and n not in BRACKETED_SIZES])
def test_float32_export_matches_jax_and_passes_audit(name, out_dir):
    spec = zoo.get_spec(name)
    size = min(spec.input_size,
               DEPTH_TEST_RESOLUTION if spec.task == "depth" else MAX_TEST_RESOLUTION)
    model, variables = zoo.create(name, seed=1)
    variables = _nontrivial_batchnorm(variables)  # a wrong BN fold must show
    x = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype(np.float32)
    want = _output_dict(jax.jit(model.apply)(variables, x))  # the names the export gives
    lite, onnx_path = out_dir / f"{name}.tflite", out_dir / f"{name}.onnx"
    params = sum(a.size for a in jax.tree_util.tree_leaves(variables["params"]))
    if params > LARGE_EXPORT_PARAMS:
        # In a child process, one at a time: the converters' peak and what
        # TensorFlow keeps of each converted function go when it exits.
        with memory_heavy(), concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn")) as child:
            child.submit(_export_both, name, jax.device_get(variables), x.shape, lite,
                         onnx_path).result()
    else:
        _export_both(name, variables, x.shape, lite, onnx_path)
    for path in (lite, onnx_path):
        got = runner(path)(x)
        assert sorted(got) == sorted(want), path
        for k in want:
            assert got[k].shape == want[k].shape
            assert _relative(got[k], np.asarray(want[k])) <= 1e-4, (path.name, k)

    report = audit_tflite(lite)
    assert not report.foreign_ops and not report.stray_ops, report.summary()
    assert not report.unfolded_batchnorm, report.summary()
    assert not report.grouped_convs, report.summary()
    assert report.ops["DEPTHWISE_CONV_2D"] == _depthwise_layers(zoo.build(name)), report.summary()
    assert report.partitions == 1 and report.undelegated_ops == [], report.summary()


def test_talnet_exports_to_tflite_with_its_nms(out_dir):
    """TALNet on a feature sequence, proposal NMS included (a WHILE loop
    over its own subgraph), runs in LiteRT with builtin ops only and gives
    JAX's outputs; the selected proposals are the same ones."""
    model, variables = zoo.create("talnet", feature_dim=16, hidden=16, fc_width=32, pooled=4,
                                  scales=(2, 4, 8, 16), num_proposals=16)
    x = np.random.default_rng(0).standard_normal((1, 96, 32)).astype(np.float32)
    want = _output_dict(jax.jit(model.apply)(variables, x))
    path = to_tflite(model, variables, input_shape=x.shape, out=out_dir / "talnet.tflite")
    got = runner(path)(x)
    assert sorted(got) == sorted(want)
    for k in want:
        w = np.asarray(want[k], np.float32)
        assert got[k].shape == w.shape, k
        if k == "proposal_valid":
            assert (got[k].astype(bool) == w.astype(bool)).all()
        else:
            assert _relative(got[k].astype(np.float32), w) <= 1e-4, k
    report = audit_tflite(path, delegation=False)
    assert not report.foreign_ops and report.ops["WHILE"] == 1, report.summary()
    assert read_metadata(path)["input"]["shape"] == [1, 96, 32]
    with pytest.raises(ValueError, match=r"expected a fixed \(batch, steps, 32\)"):
        to_tflite(model, variables, input_shape=(1, 96, 96, 3), out=out_dir / "bad.tflite")


# Tolerances for the quantised files, as a fraction of the largest float32
# logit on the two photos, from the measured error with margin (measured:
# float16 <= 3e-3, dynamic int8 <= 0.03; int8 0.03-0.06 for the Lite models
# and 0.12-0.15 for MobileNetV2 over calibration seeds 0-3, with or without
# its classifier in float, so the int8 body is where its error comes from).
# float16 stores the weights with 11-bit mantissas (relative error 5e-4 per
# weight, accumulated over ~50 layers); int8 keeps 8 bits of weights
# (dynamic) or of weights and activations (int8), so logits move by a few
# percent while the ranking of the top class holds.
QUANT_TOLERANCE = {"float16": 1e-2, "dynamic_int8": 0.1, "int8": 0.2}


@functools.lru_cache(maxsize=None)
def _pretrained(name):
    """Pretrained variables, the two photos preprocessed, and JAX's float32
    logits on them: computed once per model for all quantisations."""
    import skimage.data

    spec = zoo.get_spec(name)
    model, variables = zoo.create(name, pretrained=True)
    x = np.asarray(zoo.preprocess([skimage.data.chelsea(), skimage.data.coffee()], spec))
    return variables, x, np.asarray(jax.jit(model.apply)(variables, x))


# Post-training full int8 MobileNetV2 does not keep chelsea's top-1: float32
# ranks Egyptian cat (285) 1.6 logits above tiger cat (282) and tabby (281);
# the int8 file's error is ~3 logits and its output step ~0.2, and which cat
# wins depends on the calibration draw (seeds 0-3 with 128 or 300 crops gave
# 282, 285, 285, 281). Not tuned away: the file keeps 285 in its top 3, and
# the mixed-precision export (classifier in float) keeps it first (below).
# With the packages of 2026-11-29 (numpy 2.4.6, Pillow 13.0, scikit-image
# 0.26) the calibration crops change and coffee flips as well (consomme 925
# over espresso 967), under the same rule: the true class stays in the top 3.
KNOWN_TOP1_FLIPS = {("mobilenet_v2", "int8"): (0, 1)}  # chelsea, coffee in the photos


def _check_quantized(path, name, quantization):
    variables, x, want = _pretrained(name)
    run = runner(path)
    got = np.concatenate([run(x[i:i + 1])["output"] for i in range(len(x))])
    flipped = KNOWN_TOP1_FLIPS.get((name, quantization), ())
    keep = [i for i in range(len(x)) if i not in flipped]
    np.testing.assert_array_equal(got[keep].argmax(-1), want[keep].argmax(-1))
    for i in flipped:
        assert want[i].argmax() in np.argsort(-got[i])[:3]
    assert _relative(got, want) <= QUANT_TOLERANCE[quantization]
    report = audit_tflite(path)
    assert not report.foreign_ops, report.summary()
    assert not report.unfolded_batchnorm and not report.stray_ops, report.summary()
    if quantization != "dynamic_int8":  # XNNPACK has no hybrid depthwise kernel
        assert report.partitions == 1 and not report.undelegated_ops, report.summary()
    assert path.stat().st_size < (0.6 if quantization == "float16" else 0.35) * (
        4 * zoo.count_params(variables))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])  # the two draws whose full-int8 file flips chelsea
def test_int8_with_float_classifier_keeps_mobilenet_v2_top1(seed, out_dir):
    from conversions.calibration import calibration_images

    name = "mobilenet_v2"
    variables, x, want = _pretrained(name)
    spec = zoo.get_spec(name)
    path = to_tflite(name, variables, quantization="int8", keep_float=["fully_connected"],
                     representative_data=calibration_images(spec, x[:1].shape, seed=seed),
                     out=out_dir / f"{name}_int8_fc_{seed}.tflite")
    got = np.concatenate([runner(path)(x[i:i + 1])["output"] for i in range(len(x))])
    np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))
    assert _relative(got, want) <= QUANT_TOLERANCE["int8"]
    graph = read_tflite(path)
    kinds = {graph.tensors[op.outputs[0]].dtype for op in graph.ops if op.opcode == "FULLY_CONNECTED"}
    convs = {graph.tensors[op.outputs[0]].dtype for op in graph.ops if op.opcode == "CONV_2D"}
    assert kinds == {"float32"} and convs == {"int8"}, (kinds, convs)
    assert read_metadata(path)["keep_float"] == ["FULLY_CONNECTED"]
    report = audit_tflite(path)
    assert not report.foreign_ops, report.summary()
    assert report.partitions == 1 and not report.undelegated_ops, report.summary()


def test_keep_float_errors(out_dir):
    with pytest.raises(ValueError, match="is for quantization='int8'"):
        to_tflite("mobilenet_v3_small", quantization="float16", keep_float=["FULLY_CONNECTED"])
    with pytest.raises(ValueError, match="DENSE is not a TFLite builtin op type"):
        to_tflite("mobilenet_v3_small", quantization="int8", keep_float=["DENSE"])
    from helpers import zoo_cli
    r = zoo_cli("convert", "mobilenet_v3_small", "--to", "onnx", "--keep-float", "MEAN",
                "--out", str(out_dir))
    assert r.returncode != 0 and "--keep-float is for --to tflite --quantize int8" in r.stderr


# efficientnet_lite0 at int8 is the acceptance command, checked through the CLI below.
@pytest.mark.slow
@pytest.mark.parametrize("name,quantization", [
    (n, q) for n in PRETRAINED for q in sorted(QUANT_TOLERANCE)
    if (n, q) != ("efficientnet_lite0", "int8")])
def test_quantized_pretrained_keeps_top1(name, quantization, out_dir):
    variables, _, _ = _pretrained(name)
    path = to_tflite(name, variables, quantization=quantization,
                     out=out_dir / f"{name}_{quantization}.tflite")
    _check_quantized(path, name, quantization)


def test_metadata_in_file_and_sidecar(out_dir):
    path = to_tflite("mobilenet_v3_small", out=out_dir / "meta.tflite")
    meta = read_metadata(path)
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta == sidecar
    spec = zoo.get_spec("mobilenet_v3_small")
    assert meta["input"]["shape"] == [1, spec.input_size, spec.input_size, 3]
    assert meta["input"]["mean"] == list(spec.mean) and meta["input"]["std"] == list(spec.std)
    assert meta["labels"] == list(zoo.imagenet_labels()) and len(meta["labels"]) == 1000
    assert meta["quantization"] == "float32" and meta["pretrained"] is False

    onnx_path = tflite_to_onnx(path, out_dir / "meta.onnx")
    import onnx
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["zoo_metadata"])["labels"] == meta["labels"]


def test_int8_with_given_representative_data(out_dir):
    spec = zoo.get_spec("mobilenet_v3_small")
    model, variables = zoo.create("mobilenet_v3_small")
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((1, 96, 96, 3)).astype(np.float32) for _ in range(4)]
    path = to_tflite(model, variables, quantization="int8", input_shape=(1, 96, 96, 3),
                     representative_data=data, out=out_dir / "rep.tflite", spec=spec)
    report = audit_tflite(path)
    # int8 in, int8 through: one QUANTIZE at the float input. (XNNPACK leaves
    # int8 HARD_SWISH to the interpreter, so V3 is not one partition.)
    assert report.ops["QUANTIZE"] == 1 and report.ops["DEQUANTIZE"] == 1, report.summary()
    assert report.partitions >= 1
    with pytest.raises(ValueError, match=r"representative_data\[0\] has shape"):
        to_tflite(model, variables, quantization="int8", input_shape=(1, 96, 96, 3),
                  representative_data=[np.zeros((1, 64, 64, 3), np.float32)],
                  out=out_dir / "bad.tflite", spec=spec)
    assert not (out_dir / "bad.tflite").exists()


def test_bad_requests_are_named(out_dir):
    model, variables = zoo.create("mobilenet_v3_small")
    with pytest.raises(ValueError, match="quantization='int4'"):
        to_tflite("mobilenet_v3_small", quantization="int4", out=out_dir / "x.tflite")
    with pytest.raises(ValueError, match="needs its variables"):
        to_tflite(model, out=out_dir / "x.tflite")
    with pytest.raises(ValueError, match=r"fixed NHWC shape"):
        to_tflite("mobilenet_v3_small", input_shape=(1, 3, 224, 224), out=out_dir / "x.tflite")
    with pytest.raises(KeyError, match="unknown model"):
        to_onnx("mobilenet_v9", out=out_dir / "x.onnx")


def test_unsupported_op_names_the_layer(out_dir):
    import flax.linen as nn

    class Odd(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.Conv(4, (3, 3), name="stem")(x)
            return jax.lax.reduce_precision(x, 5, 10).mean((1, 2))

    m = Odd()
    v = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ConversionError, match=r"layer Odd: `reduce_precision` has no TFLite"):
        to_tflite(m, v, input_shape=(1, 8, 8, 3), out=out_dir / "odd.tflite")
    assert not (out_dir / "odd.tflite").exists()


@pytest.mark.slow
def test_cli_convert_pretrained_int8_agrees_on_chelsea(tmp_path):
    """The issue's acceptance command."""
    from helpers import zoo_cli

    r = zoo_cli("convert", "efficientnet_lite0", "--pretrained", "--to", "tflite",
                "--quantize", "int8", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    path = tmp_path / "efficientnet_lite0_224_int8.tflite"
    assert path.exists() and (tmp_path / (path.name + ".json")).exists()
    assert "XNNPACK: 1 partition(s), 0 op(s) outside" in r.stdout
    assert "top-1 agrees on chelsea" in r.stdout, r.stdout
    _check_quantized(path, "efficientnet_lite0", "int8")  # both photos, the tolerance
    assert read_metadata(path)["pretrained"] is True


def test_cli_convert_rejects_quantized_onnx(tmp_path):
    from helpers import zoo_cli

    r = zoo_cli("convert", "mobilenet_v2", "--to", "onnx", "--quantize", "int8",
                "--out", str(tmp_path))
    assert r.returncode == 2 and "ONNX export is float32 only" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_conversion_table_rows_and_files(tmp_path):
    """``python -m conversions.table`` on one classifier and one face model:
    rows judged against JAX, the worker's own peak memory, the files."""
    import subprocess
    import sys

    out = tmp_path / "results"
    r = subprocess.run([sys.executable, "-m", "conversions.table", "--models",
                        "mobilenet_v2,face_mesh", "--formats", "tflite:float32,onnx:float32",
                        "--runs", "2", "--out", str(out)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    [js] = out.glob("conversions-*.json")
    rows = json.loads(js.read_text())["rows"]
    assert [(x["model"], x["format"]) for x in rows] == [
        ("face_mesh", "tflite"), ("face_mesh", "onnx"), ("mobilenet_v2", "tflite"),
        ("mobilenet_v2", "onnx")]
    for x in rows:
        assert x["status"] == "ok" and x["pretrained"] and x["max_rel_diff"] <= 1e-4, x
        # a 14 MB model: the worker's own peak, not the table process's
        assert 0.2 < x["peak_rss_gib"] < 4, x
    assert rows[2]["top1_agree"] == "2/2" and rows[0]["top1_agree"] == ""
    assert rows[2]["partitions"] == 1
    assert js.with_suffix(".md").exists() and not (out / "conversions-partial.json").exists()
