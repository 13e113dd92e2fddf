"""Person segmentation: MediaPipe Selfie Segmentation's pipeline in JAX.

    mask = zoo.segment.person(image)               # (H, W) float32 in [0, 1]
    masks = zoo.segment.person([im1, im2])         # a list, one mask per image
    mask = zoo.segment.person(image, model="selfie_segmentation_landscape")

The steps follow MediaPipe's graph ``selfie_segmentation_cpu.binarypb``
(mediapipe==0.10.21, ``mediapipe/modules/selfie_segmentation/``):

1. ImageToTensorCalculator, options ``output_tensor_width: 256,
   output_tensor_height: 256`` (144 high for the landscape model),
   ``keep_aspect_ratio: false``, ``output_tensor_float_range {min: 0 max:
   1}``, ``border_mode: BORDER_ZERO``: the whole image is *stretched* to
   the tensor (no letterbox). Its OpenCV converter maps the image's corners
   onto the tensor's and calls ``cv::warpPerspective(..., INTER_LINEAR,
   BORDER_CONSTANT)`` on the uint8 image: tensor pixel (x, y) reads the
   image at (x W / w, y H / h), coordinates rounded to 1/32 pixel (OpenCV's
   INTER_TAB_SIZE), neighbours outside the image are 0, the result rounded
   to uint8, then scaled to [0, 1]. All of that is reproduced here (float
   inputs in [0, 1] skip the uint8 rounding).
2. The network (``zoo.models.selfie_segmentation``); its last op is a
   sigmoid, so the output is already a probability.
3. TensorsToSegmentationCalculator (activation NONE) resizes the mask to
   the image's size with ``cv::resize`` (INTER_LINEAR: half-pixel centres,
   border replicated, no antialiasing).

Both resamplings are two-tap gathers along each axis, jitted apart from
the network: they compile once per image size (a fraction of a second),
the network once per model and batch size, and the images of a list go
through the network together whatever their sizes.
"""

from __future__ import annotations

import functools
from typing import Optional

import numpy as np

DEFAULT_MODEL = "selfie_segmentation"
MAX_BATCH = 8  # images per forward pass (batches are padded to powers of two)
TAB = 32  # OpenCV's INTER_TAB_SIZE: warp coordinates are rounded to 1/32 pixel


# ------------------------------------------------------------- resampling


def warp_taps(n_in: int, n_out: int):
    """Two-tap bilinear weights along one axis of MediaPipe's stretch to the tensor.

    Output i reads the input at ``round(i * n_in / n_out * 32) / 32``; a
    neighbour outside the input gets weight 0 (zero border).

    Args:
        n_in: input length (image side).
        n_out: output length (tensor side).

    Returns:
        tuple: ``(index0, index1, weight0, weight1)``, each (n_out,): int64
        indices clamped into the input, float32 weights;
        ``out[i] = w0[i] * x[i0[i]] + w1[i] * x[i1[i]]``.
    """
    u = np.round(np.arange(n_out) * (n_in / n_out) * TAB) / TAB
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    w0 = np.where((i0 >= 0) & (i0 < n_in), 1.0 - f, 0.0)
    w1 = np.where((i0 + 1 >= 0) & (i0 + 1 < n_in), f, 0.0)
    return (np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1),
            w0.astype(np.float32), w1.astype(np.float32))


def resize_taps(n_in: int, n_out: int):
    """Two-tap weights of ``cv::resize`` INTER_LINEAR along one axis.

    Output i reads the input at ``(i + 0.5) n_in / n_out - 0.5``, clamped to
    the first and last pixel (border replicated, no antialiasing).

    Args:
        n_in: input length.
        n_out: output length.

    Returns:
        tuple: ``(index0, index1, weight0, weight1)``, each (n_out,): int64
        indices, float32 weights summing to 1.
    """
    u = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    u = np.clip(u, 0.0, n_in - 1)
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    return i0, np.minimum(i0 + 1, n_in - 1), (1.0 - f).astype(np.float32), f.astype(np.float32)


def _resample(x, rows, cols):
    """Two-tap resampling of axes 1 and 2 of ``x`` (N, H, W, ...)."""
    import jax.numpy as jnp

    for axis, (i0, i1, w0, w1) in ((1, rows), (2, cols)):
        shape = [1] * x.ndim
        shape[axis] = len(w0)
        x = (jnp.take(x, i0, axis=axis) * w0.reshape(shape)
             + jnp.take(x, i1, axis=axis) * w1.reshape(shape))
    return x


def _to_tensor(images, size, quantised: bool, mean, std):
    """Step 1 on a batch (N, H, W, 3) of 0-255 values -> (N, h, w, 3) network input."""
    import jax.numpy as jnp

    _, height, width, _ = images.shape
    x = _resample(images, warp_taps(height, size[0]), warp_taps(width, size[1]))
    if quantised:  # OpenCV's uint8 warp rounds half up
        x = jnp.floor(x + 0.5)
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def _to_image(prob, height: int, width: int):
    """Step 3 on a batch (N, h, w) of probabilities -> (N, height, width)."""
    return _resample(prob, resize_taps(prob.shape[1], height), resize_taps(prob.shape[2], width))


# ---------------------------------------------------------------- networks


@functools.lru_cache(maxsize=None)
def _segmentation_spec(name: str):
    from zoo.registry import spec_for_task

    return spec_for_task(name, "segmentation")


def input_shape(model: str = DEFAULT_MODEL) -> tuple[int, int]:
    """Size of ``model``'s input tensor.

    Args:
        model: a registered segmentation model.

    Returns:
        tuple[int, int]: ``(height, width)``: (256, 256) for
        ``"selfie_segmentation"``, (144, 256) for the landscape model.

    Raises:
        ValueError: when ``model`` is not a segmentation model.
        KeyError: when ``model`` is not registered.
    """
    return _segmentation_spec(model).input_hw


@functools.lru_cache(maxsize=None)
def _stages(name: str):
    """The jitted steps for ``model``: image batch -> tensors (compiled per
    image shape) and tensors -> probabilities (the network, compiled once
    per batch size); ``_upsample_fn`` is the third."""
    import jax

    from zoo.registry import build

    spec, size, net = _segmentation_spec(name), input_shape(name), build(name)
    to_tensor = jax.jit(lambda images, quantised: _to_tensor(images, size, quantised,
                                                             spec.mean, spec.std),
                        static_argnames="quantised")
    network = jax.jit(lambda variables, x: net.apply(variables, x)[..., 0])
    return to_tensor, network


def _variables(name: str) -> dict:
    import jax

    from zoo.models.selfie_segmentation import pretrained_variables

    return jax.device_put(pretrained_variables(name))


# ------------------------------------------------------------------ inputs


def _checked(images, single: bool) -> list[tuple[np.ndarray, bool]]:
    """(RGB float32 0-255 array, whether it came as uint8) per image; errors
    name the image (``zoo.face.as_rgb``'s rules: uint8 0-255 or float 0-1,
    grey, RGB or RGBA, at least 16 pixels a side)."""
    from zoo.face import as_rgb

    out = []
    for i, image in enumerate(images):
        is_pil = hasattr(image, "mode") and hasattr(image, "convert")
        quantised = is_pil or getattr(image, "dtype", None) == np.uint8
        out.append((as_rgb(image, "image" if single else f"image {i}"), quantised))
    return out


def network_input(image, model: str = DEFAULT_MODEL) -> np.ndarray:
    """The tensor ``model`` sees for ``image`` (step 1 of the module docstring):
    what to feed an exported copy of the network to reproduce ``person``.

    Args:
        image: uint8 (0-255) or float (0-1) image, grey, RGB or RGBA, or a
            PIL image (``zoo.face.as_rgb``'s rules).
        model: a registered segmentation model.

    Returns:
        np.ndarray: (1, h, w, 3) float32 network input, (h, w) =
        ``input_shape(model)``.

    Raises:
        ValueError: for a bad image or a model that is not a segmentation
            model.
        KeyError: when ``model`` is not registered.
    """
    ((a, quantised),) = _checked([image], True)
    return np.asarray(_stages(model)[0](a[None], quantised=quantised))


def probabilities(tensors, model: str = DEFAULT_MODEL) -> np.ndarray:
    """Step 2 of the module docstring: the network with MediaPipe's weights on a
    batch of network inputs.

    Args:
        tensors: (N, h, w, 3) inputs as ``network_input`` makes them, (h, w) =
            ``input_shape(model)``.
        model: a registered segmentation model.

    Returns:
        np.ndarray: (N, h, w) float32 person probabilities at the network's
        resolution.

    Raises:
        ValueError: when ``tensors`` do not have the model's input shape.
    """
    x = np.asarray(tensors, np.float32)
    if x.ndim != 4 or x.shape[1:] != input_shape(model) + (3,):
        raise ValueError(f"tensors: expected shape (N, {', '.join(map(str, input_shape(model)))}"
                         f", 3) for {model}, got {x.shape}; make them with network_input")
    return np.asarray(_stages(model)[1](_variables(model), x))


def upsample(prob, height: int, width: int) -> np.ndarray:
    """Step 3 of the module docstring: a probability map resized as MediaPipe does
    (``cv::resize``, INTER_LINEAR).

    Args:
        prob: (h, w) probability map.
        height: output height in pixels.
        width: output width in pixels.

    Returns:
        np.ndarray: (height, width) float32 map.

    Raises:
        ValueError: when ``prob`` is not 2-D.
    """
    p = np.asarray(prob, np.float32)
    if p.ndim != 2:
        raise ValueError(f"prob: expected a (h, w) map, got shape {p.shape}")
    return np.asarray(_upsample_fn()(p[None], int(height), int(width))[0])


@functools.lru_cache(maxsize=None)
def _upsample_fn():
    """Step 3, jitted (compiled per mask and image shape)."""
    import jax

    return jax.jit(_to_image, static_argnums=(1, 2))


# ------------------------------------------------------------------ person


def person(image, model: str = DEFAULT_MODEL, *, batch_size: int = MAX_BATCH):
    """Probability that each pixel shows a person, at the image's own size.

    Images of a list go through the network together, ``batch_size`` at a
    time, whatever their sizes. MediaPipe's weights load once per process
    (from the pinned wheel, see ``zoo info``); the network compiles once per
    batch size, the resampling once per image size.

    Args:
        image: one image or a list (or tuple) of them: uint8 (0-255) or float
            (0-1) pixels, grey (H, W) or (H, W, 1), RGB, or RGBA (alpha
            ignored), or PIL images; at least 16 pixels a side.
        model: ``"selfie_segmentation"`` (256x256, any framing) or
            ``"selfie_segmentation_landscape"`` (144x256, faster, for wide
            frames).
        batch_size: most images per forward pass, at least 1.

    Returns:
        np.ndarray or list[np.ndarray]: for one image, an (H, W) float32 map
        in [0, 1] (threshold at 0.5 for a binary mask); for a list, a list of
        such maps in the same order.

    Raises:
        ValueError: for an empty list, ``batch_size`` below 1, a bad image, or
            a model that is not a segmentation model.
        TypeError: for an image dtype other than uint8 or floating point.
        KeyError: when ``model`` is not registered.

    Example:
        ::

            mask = zoo.segment.person(image)              # (H, W) in [0, 1]
            masks = zoo.segment.person([im1, im2])        # one per image
    """
    import jax.numpy as jnp

    single = not isinstance(image, (list, tuple))
    images = [image] if single else list(image)
    if not images:
        raise ValueError("person: no images given (an empty list)")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1")
    arrays = _checked(images, single)
    to_tensor, network = _stages(model)
    to_image = _upsample_fn()
    variables = _variables(model)
    groups: dict[tuple, list[int]] = {}
    for i, (a, quantised) in enumerate(arrays):
        groups.setdefault((a.shape, quantised), []).append(i)
    tensors: list = [None] * len(arrays)
    for (_, quantised), members in groups.items():
        x = to_tensor(np.stack([arrays[i][0] for i in members]), quantised=quantised)
        for k, i in enumerate(members):
            tensors[i] = x[k]
    probs: list = []  # the network sees images of all sizes together
    for start in range(0, len(tensors), batch_size):
        x = jnp.stack(tensors[start:start + batch_size])
        n = x.shape[0]
        padded = 1 << (n - 1).bit_length()  # few batch shapes to compile
        if padded != n:
            x = jnp.concatenate([x, jnp.repeat(x[-1:], padded - n, axis=0)])
        probs.extend(network(variables, x)[:n])
    out: list[Optional[np.ndarray]] = [None] * len(arrays)
    for (shape, _), members in groups.items():
        masks = np.asarray(to_image(jnp.stack([probs[i] for i in members]), shape[0], shape[1]))
        for i, mask in zip(members, masks):
            out[i] = np.ascontiguousarray(np.clip(mask, 0.0, 1.0), dtype=np.float32)
    return out[0] if single else out
