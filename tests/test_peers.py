"""Benchmark peers build and run the same architecture; missing ones say why."""

import numpy as np
import pytest

from benchmarks.peers import PeerUnavailable, build_peer


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
