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

``build_peer`` returns a function that runs one synchronous inference, or
raises ``PeerUnavailable`` with the reason (package missing, no definition),
which the suite reports as a note instead of failing.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

PEERS = ("keras", "torch")


class PeerUnavailable(RuntimeError):
    """This peer cannot run this model here; the message says why."""


def build_peer(peer: str, name: str, batch: int, resolution: int) -> Callable[[], object]:
    if peer == "keras":
        return _keras(name, batch, resolution)
    if peer == "torch":
        return _torch(name, batch, resolution)
    raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")


def _images(batch: int, resolution: int, channels_last: bool = True) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((batch, resolution, resolution, 3))
    x = x.astype(np.float32)
    return x if channels_last else np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _keras(name: str, batch: int, resolution: int):
    from zoo.weights.keras import KERAS_APPLICATIONS

    if name not in KERAS_APPLICATIONS:
        raise PeerUnavailable(f"Keras Applications has no {name}")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        raise PeerUnavailable("keras is not installed (pip install -e '.[keras]')") from None
    if keras.backend.backend() != "jax":
        raise PeerUnavailable(f"keras runs on its {keras.backend.backend()} backend, not jax "
                              "(set KERAS_BACKEND=jax before anything imports keras)")
    ctor, kwargs, scale = KERAS_APPLICATIONS[name]
    model = getattr(keras.applications, ctor)(
        weights=None, input_shape=(resolution, resolution, 3), classifier_activation=None,
        **kwargs)
    x = _images(batch, resolution) * scale
    return lambda: model.predict_on_batch(x)  # returns numpy: synchronised


def _torch(name: str, batch: int, resolution: int):
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
    model.eval()
    torch.set_num_threads(os.cpu_count() or 1)
    x = torch.from_numpy(_images(batch, resolution, channels_last=False))

    def run():
        with torch.inference_mode():
            return model(x)  # eager CPU: synchronous
    return run
