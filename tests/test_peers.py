"""Benchmark peers build and run the same architecture; missing ones say why."""

import numpy as np
import pytest

from benchmarks.peers import PeerUnavailable, build_peer, run_child
from benchmarks.runner import measure_peer


@pytest.mark.parametrize("peer,name,classes", [
    ("keras", "mobilenet_v3_small", 1000),
    ("torch", "efficientnet_lite0", 1000),
    ("torch", "efficientnet_b0", 1000),
    ("torch", "mobilenet_v2", 1000),
])
def test_peer_runs_the_model(peer, name, classes):
    pytest.importorskip(peer)
    run = build_peer(peer, name, batch=2, resolution=64)
    out = np.asarray(run())
    assert out.shape == (2, classes) and np.isfinite(out).all()


@pytest.mark.parametrize("peer,module", [("litert", "ai_edge_litert"),
                                         ("onnxruntime", "onnxruntime")])
def test_export_peers_run_the_zoo_export(peer, module):
    """The zoo's own TFLite / ONNX file, run by its runtime, gives the JAX logits."""
    pytest.importorskip(module)
    pytest.importorskip("tensorflow")
    import zoo
    from benchmarks.peers import _images

    run = build_peer(peer, "mobilenet_v3_small", batch=2, resolution=64)
    (out,) = run().values()
    model, variables = zoo.create("mobilenet_v3_small")  # seed 0, like the export
    want = np.asarray(model.apply(variables, _images(2, 64)))
    assert out.shape == (2, 1000)
    assert np.abs(out - want).max() <= 1e-4 * np.abs(want).max()


@pytest.mark.slow
def test_keras_tensorflow_peer_runs_in_a_child_process():
    pytest.importorskip("tensorflow")
    r = run_child("keras_tf", "mobilenet_v3_small", 1, 96, runs=3, warmup=1)
    assert r["p50_ms"] > 0 and r["min_ms"] <= r["p50_ms"]
    out = measure_peer("keras_tf", "efficientnet_lite0", batch=1, runs=1, warmup=0)
    assert out["status"] == "skipped" and "Keras Applications has no" in out["message"]


@pytest.mark.parametrize("peer,name,reason", [
    ("keras", "efficientnet_lite0", "Keras Applications has no efficientnet_lite0"),
    ("torch", "mobilenet_v3_large", "no PyTorch definition of mobilenet_v3_large"),
])
def test_unavailable_peer_says_why(peer, name, reason):
    with pytest.raises(PeerUnavailable, match=reason):
        build_peer(peer, name, batch=1, resolution=64)


def test_unknown_peer():
    with pytest.raises(ValueError, match="unknown peer 'tvm'"):
        build_peer("tvm", "mobilenet_v2", batch=1, resolution=64)
