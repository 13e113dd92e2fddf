"""Other runtimes measured in the same run as the zoo's JAX path.

Each peer runs the same architecture with random weights (latency does not
depend on the values) on the same batch of images:

* ``keras``: Keras 3 Applications on the JAX backend, ``predict_on_batch``
  (Keras jit-compiles it). This is how a Keras user runs the model; its
  depthwise convolutions go through XLA's grouped convolution.
* ``torch``: PyTorch eager on CPU under ``inference_mode``, with existing
  definitions: ``efficientnet-pytorch`` for B0-B7, ``efficientnet-lite-pytorch``
  for Lite0-4, and for MobileNetV2 torchvision's architecture as written out
  in ``benchmarks/torch_reference.py`` (torchvision from the package index
  does not import beside the pinned torch). MobileNetV1/V3 have no torch
  definition here and are skipped with a note.
* ``keras_tf``: Keras 3 Applications on the TensorFlow backend without XLA
  (``jit_compile=False``), the way most Keras users run it. Keras fixes its
  backend per process, so this peer is timed in a child process
  (``python -m benchmarks.peers``) with the same timing loop.
* ``litert`` and ``onnxruntime``: the zoo's own exports of the same network
  (``conversions``: float32 TFLite with XNNPACK; ONNX from it through
  tf2onnx), with as many threads as cores.

``build_peer`` returns a function that runs one synchronous inference, or
raises ``PeerUnavailable`` with the reason (package missing, no definition),
which the suite reports as a note instead of failing.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

# The peer names ``build_peer`` and ``zoo bench --peers`` accept.
PEERS = ("keras", "keras_tf", "torch", "litert", "onnxruntime")
# Peers that must run in their own process (Keras's backend is per process).
CHILD_PEERS = ("keras_tf",)


class PeerUnavailable(RuntimeError):
    """This peer cannot run this model here; the message says why."""


def build_peer(peer: str, name: str, batch: int, resolution: int) -> Callable[[], object]:
    """A no-argument function that runs one synchronous inference of ``name`` on ``peer``.

    The model has random weights; the input is a fixed batch of float32
    normal noise (NHWC, or NCHW for torch), built once. Building may take
    long: ``litert`` and ``onnxruntime`` export the model first.

    Args:
        peer: one of ``PEERS``. ``keras_tf`` needs Keras on the TensorFlow
            backend in this process; use ``run_child`` for it.
        name: a registered model name.
        batch: images per call.
        resolution: square image side in pixels.

    Returns:
        Callable[[], object]: each call runs the model once and returns its
        output on the host (numpy array or torch tensor).

    Raises:
        ValueError: if ``peer`` is not one of ``PEERS``.
        PeerUnavailable: if the peer cannot run ``name`` here (package
            missing, no definition of the model, Keras on another backend).

    Example:
        ::

            from benchmarks.peers import build_peer
            from zoo.timing import time_calls
            time_calls(build_peer("torch", "mobilenet_v2", 1, 224), runs=10, warmup=2)
    """
    if peer == "keras":
        return _keras(name, batch, resolution)
    if peer == "torch":
        return _torch(name, batch, resolution)
    if peer in ("litert", "onnxruntime"):
        return _export(peer, name, batch, resolution)
    if peer == "keras_tf":
        return _keras(name, batch, resolution, backend="tensorflow")
    raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")


def _images(batch: int, resolution: int, channels_last: bool = True) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((batch, resolution, resolution, 3))
    x = x.astype(np.float32)
    return x if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _keras(name: str, batch: int, resolution: int, backend: str = "jax"):
    """Keras 3 Applications on ``backend``: jax (``keras``), or tensorflow
    without XLA (``keras_tf``, run in the child process ``run_child`` starts,
    which sets KERAS_BACKEND before keras is imported)."""
    model, scale = keras_model(name, resolution, backend)
    if backend == "tensorflow":
        model.compile(jit_compile=False)  # plain TensorFlow graph execution, no XLA
    x = _images(batch, resolution) * scale
    return lambda: model.predict_on_batch(x)  # returns numpy: synchronised


def keras_model(name: str, resolution: int, backend: str = "jax"):
    """``(model, scale)``: the Keras 3 Application of ``name`` with random
    weights and logits out (no softmax), and the factor its inputs take
    (255 for EfficientNet, whose first layers rescale 0-255 pixels itself).
    Raises PeerUnavailable when Keras has no such model, is not installed, or
    already runs on another backend.

    Sets ``KERAS_BACKEND`` to ``backend`` unless it is already set, so call
    it before anything else imports keras.

    Args:
        name: a registered model name that Keras Applications also has
            (``zoo.weights.keras.KERAS_APPLICATIONS``).
        resolution: square input side in pixels.
        backend: ``"jax"`` or ``"tensorflow"``.

    Returns:
        tuple: ``(model, scale)``: an uncompiled ``keras.Model`` taking
        (N, resolution, resolution, 3) float images, and a float (1 or 255).

    Raises:
        PeerUnavailable: if Keras Applications has no ``name``, keras (or
            tensorflow for that backend) is not installed, or keras already
            runs on another backend.
    """
    from zoo.weights.keras import KERAS_APPLICATIONS

    if name not in KERAS_APPLICATIONS:
        raise PeerUnavailable(f"Keras Applications has no {name}")
    os.environ.setdefault("KERAS_BACKEND", backend)
    extra = "keras" if backend == "jax" else "keras,convert"
    try:
        import keras
        if backend == "tensorflow":
            import tensorflow  # noqa: F401
    except ImportError as e:
        raise PeerUnavailable(f"{e.name} is not installed (pip install -e '.[{extra}]')") \
            from None
    if keras.backend.backend() != backend:
        raise PeerUnavailable(f"keras runs on its {keras.backend.backend()} backend, not "
                              f"{backend} (set KERAS_BACKEND={backend} before anything "
                              "imports keras)")
    ctor, kwargs, scale = KERAS_APPLICATIONS[name]
    model = getattr(keras.applications, ctor)(
        weights=None, input_shape=(resolution, resolution, 3), classifier_activation=None,
        **kwargs)
    return model, scale


def _torch(name: str, batch: int, resolution: int):
    model = torch_model(name)  # PeerUnavailable, not ImportError, without torch
    import torch

    model.eval()
    x = torch.from_numpy(_images(batch, resolution, channels_last=False))

    def run():
        with torch.inference_mode():
            return model(x)  # eager CPU: synchronous
    return run


def torch_model(name: str):
    """The PyTorch module of ``name`` with random weights (see the module
    docstring for which definition), with torch set to as many threads as
    cores. Raises PeerUnavailable when there is none here.

    Args:
        name: ``"efficientnet_b0"`` ... ``"efficientnet_b7"``,
            ``"efficientnet_lite0"`` ... ``"efficientnet_lite4"`` or
            ``"mobilenet_v2"``.

    Returns:
        torch.nn.Module: in training mode as constructed; takes (N, 3, H, W)
        float tensors and returns (N, 1000) logits.

    Raises:
        PeerUnavailable: if torch or the model's package is not installed,
            or no PyTorch definition of ``name`` is available here.
    """
    try:
        import torch
    except ImportError:
        raise PeerUnavailable("torch is not installed (pip install -e '.[torch]')") from None
    try:
        if name.startswith("efficientnet_lite"):
            from efficientnet_lite_pytorch import EfficientNet
            model = EfficientNet.from_name(name.replace("_", "-"))
        elif name.startswith("efficientnet_b"):
            from efficientnet_pytorch import EfficientNet
            model = EfficientNet.from_name(name.replace("_", "-"))
        elif name == "mobilenet_v2":
            from benchmarks.torch_reference import MobileNetV2
            model = MobileNetV2()
        else:
            # timm and torchvision need a torch build other than the pinned CPU one.
            raise PeerUnavailable(f"no PyTorch definition of {name} installable here")
    except ImportError as e:
        raise PeerUnavailable(f"{e.name} is not installed (pip install -e '.[torch]')") from None
    torch.set_num_threads(os.cpu_count() or 1)
    return model


def _export(peer: str, name: str, batch: int, resolution: int):
    import tempfile
    from pathlib import Path

    try:
        from conversions import runner, tflite
        from conversions.onnx import tflite_to_onnx
    except ImportError as e:
        raise PeerUnavailable(f"{e.name} is not installed (pip install -e '.[convert]')") \
            from None
    x = _images(batch, resolution)
    with tempfile.TemporaryDirectory() as tmp:
        path = tflite.to_tflite(name, input_shape=x.shape, out=Path(tmp) / "m.tflite",
                                audit=False)
        if peer == "onnxruntime":
            path = tflite_to_onnx(path, Path(tmp) / "m.onnx")
        try:
            run = runner(path, num_threads=os.cpu_count() or 1)
        except ImportError as e:
            raise PeerUnavailable(str(e)) from None
    return lambda: run(x)  # both runtimes return host arrays: synchronised


def run_child(peer: str, name: str, batch: int, resolution: int, runs: int,
              warmup: int, max_seconds=None, timeout: float = 3600) -> dict:
    """Time ``peer`` in a fresh Python process; returns ``zoo.timing.time_calls``'s dict
    or raises PeerUnavailable / RuntimeError with the child's reason.

    The child (``python -m benchmarks.peers``) runs with
    ``KERAS_BACKEND=tensorflow``, builds the peer with ``build_peer`` and
    prints its timings as one JSON line.

    Args:
        peer: one of ``PEERS`` (meant for ``CHILD_PEERS``).
        name: a registered model name.
        batch: images per call.
        resolution: square image side in pixels.
        runs: most timed calls.
        warmup: untimed calls first.
        max_seconds: stop timing once the timed calls took this many
            seconds (after at least ``zoo.timing.MIN_TIMED_RUNS``); None
            times all ``runs``.
        timeout: seconds before the child is killed.

    Returns:
        dict: ``p50_ms``, ``p90_ms``, ``min_ms``, ``mean_ms``, ``std_ms``
        (milliseconds) and ``timed_runs``.

    Raises:
        PeerUnavailable: if the child found the peer unavailable.
        RuntimeError: if the child failed (the message is its error, or
            the last line of its stderr when it printed nothing).
        subprocess.TimeoutExpired: if the child runs past ``timeout``.
    """
    import json
    import subprocess
    import sys

    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "benchmarks.peers", peer, name, str(batch), str(resolution),
           str(runs), str(warmup), str(max_seconds or "")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"{peer} child failed: {r.stderr.strip().splitlines()[-1:]}")
    result = json.loads(lines[-1])
    if "unavailable" in result:
        raise PeerUnavailable(result["unavailable"])
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def _child_main(argv) -> int:
    import json

    from zoo.timing import time_calls

    peer, name, batch, resolution, runs, warmup, max_seconds = argv
    try:
        run = build_peer(peer, name, int(batch), int(resolution))
        print(json.dumps(time_calls(run, int(runs), int(warmup),
                                  max_seconds=float(max_seconds) if max_seconds else None)))
    except PeerUnavailable as e:
        print(json.dumps({"unavailable": str(e)}))
    except Exception as e:  # noqa: BLE001 - reported by the parent as this peer's result
        print(json.dumps({"error": f"{type(e).__name__}: {e}".splitlines()[0][:500]}))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_child_main(sys.argv[1:]))
