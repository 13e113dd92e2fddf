"""``estimate``: relative inverse depth of images, MiDaS's inference in JAX.

The steps follow MiDaS v2.1's ``run.py`` and ``midas/transforms.py``
(isl-org/MiDaS, model type ``midas_v21_small_256``):

1. RGB in 0-255 (MiDaS reads ``/255`` and normalises with ImageNet's mean
   and std in 0-1 units; the same affine map in 0-255 units here).
2. ``Resize(256, 256, keep_aspect_ratio=True, ensure_multiple_of=32,
   resize_method="upper_bound", image_interpolation_method=cv2.INTER_CUBIC)``:
   scale so the image fits in ``size`` x ``size`` keeping its aspect ratio,
   then round each side to a multiple of 32 (down when rounding up would
   exceed ``size``; ``zoo.models.midas.network_size``). MiDaS would give a
   side of 0 for images more than 16 times longer than wide; such sides
   are 32 here (the only departure).
3. The network; its output is resized back to the image's own size with
   ``torch.nn.functional.interpolate(mode="bicubic", align_corners=False)``.

Both resizes are cubic convolution with a = -0.75, half-pixel centres,
border pixels replicated and no antialiasing, which is what ``cv2.resize``
(``INTER_CUBIC``) and ``torch``'s bicubic both compute. They run as two
small matrix products inside the same jitted function as the network, so
one compiled function serves each input shape.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

DEFAULT_MODEL = "midas_small_lite0"
MULTIPLE = 32  # the network's output stride: input sides must be multiples of it
MIN_SIDE = 32  # pixels: a smaller image has less than one pixel of the coarsest feature map
MAX_BATCH = 8  # images per forward pass (bounds memory; batches are padded to powers of two)


# ------------------------------------------------------------------ sizes


def network_input_size(height: int, width: int, size: int = 256) -> tuple[int, int]:
    """Size the network sees for an image of ``height`` x ``width``.

    MiDaS's "upper_bound" resize to ``size`` keeping the aspect ratio, each
    side a multiple of 32 (at least 32); e.g. 500x741 -> (160, 256).

    Args:
        height: image height in pixels, at least 1.
        width: image width in pixels, at least 1.
        size: side of the square the image is fitted into.

    Returns:
        tuple[int, int]: ``(height, width)`` of the network input.

    Raises:
        ValueError: when ``height`` or ``width`` is below 1 (raised by
            ``zoo.models.midas.network_size``).
    """
    from zoo.models.midas import network_size

    return network_size(height, width, bound=size, multiple=MULTIPLE)


def cubic_matrix(n_in: int, n_out: int, a: float = -0.75) -> np.ndarray:
    """Weights of a cubic-convolution resize along one axis, as a matrix.

    Output sample i reads the input around ``(i + 0.5) * n_in / n_out -
    0.5`` with four taps, indices clamped to the border, no antialiasing:
    what ``cv2.INTER_CUBIC`` and torch's ``bicubic`` (``align_corners=False``)
    compute.

    Args:
        n_in: input length.
        n_out: output length.
        a: the cubic kernel's parameter (-0.75 as in OpenCV and torch).

    Returns:
        np.ndarray: (n_out, n_in) float32 matrix; ``m @ x`` resizes ``x``
        along its first axis. Each row sums to 1.
    """
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(src)
    t = src - base
    m = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    for k in (-1, 0, 1, 2):
        x = np.abs(t - k)
        w = np.where(x <= 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                     np.where(x < 2, ((a * x - 5 * a) * x + 8 * a) * x - 4 * a, 0.0))
        np.add.at(m, (rows, np.clip(base.astype(np.int64) + k, 0, n_in - 1)), w)
    return m.astype(np.float32)


def _resize(x, height: int, width: int):
    """(N, H, W, C) -> (N, height, width, C) by ``cubic_matrix`` on both axes."""
    import jax.numpy as jnp

    n, h, w, c = x.shape
    if (h, w) == (height, width):
        return x
    mh = jnp.asarray(cubic_matrix(h, height))
    mw = jnp.asarray(cubic_matrix(w, width))
    x = jnp.einsum("oh,nhwc->nowc", mh, x, precision="highest")
    return jnp.einsum("pw,nowc->nopc", mw, x, precision="highest")


# ------------------------------------------------------------------ inputs


def as_rgb(image, name: str = "image") -> np.ndarray:
    """``image`` as a contiguous (H, W, 3) array of 0-255 values for the depth network.

    Unlike ``zoo.face.as_rgb``, float pixels are taken as 0-255.

    Args:
        image: uint8 or float array with pixels in 0-255, or a PIL image;
            grey (H, W) or (H, W, 1), RGB, or RGBA (alpha dropped); both
            sides at least ``MIN_SIDE``.
        name: what to call the image in error messages.

    Returns:
        np.ndarray: (H, W, 3), uint8 for uint8 input, else float32.

    Raises:
        ValueError: for another shape, an image smaller than ``MIN_SIDE``,
            NaN or infinite values, floats outside 0-255, or floats all in
            (0, 1] (a 0-1 image: multiply by 255).
        TypeError: for a dtype other than uint8 or floating point.
    """
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL
        image = image.convert("RGB")
    a = np.asarray(image)
    if a.dtype == object or a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected an image of shape (H, W), (H, W, 1), (H, W, 3) or "
                         f"(H, W, 4), got shape {a.shape}"
                         + (" (a batch? pass a list of images)" if a.ndim == 4 else ""))
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] not in (1, 3, 4):
        hint = (" (channels first? use image.transpose(1, 2, 0))"
                if a.shape[0] in (1, 3, 4) else "")
        raise ValueError(f"{name}: expected 1 (grey), 3 (RGB) or 4 (RGBA) channels in the last "
                         f"axis, got shape {a.shape}{hint}")
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{name}: image {w}x{h} is too small; depth needs at least "
                         f"{MIN_SIDE}x{MIN_SIDE} pixels")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(f"{name}: expected uint8 or float pixels in 0-255, got dtype "
                            f"{a.dtype}")
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ValueError(f"{name}: image has NaN or infinite values")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 255.5:
            raise ValueError(f"{name}: float pixels must be in 0-255, got values in "
                             f"[{lo:.3g}, {hi:.3g}]")
        if 0 < hi <= 1:
            raise ValueError(f"{name}: float pixels are taken as 0-255 but all of these are in "
                             "[0, 1]; multiply by 255")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


# ---------------------------------------------------------------- networks


@functools.lru_cache(maxsize=None)
def _depth_spec(name: str):
    from zoo.registry import spec_for_task

    return spec_for_task(name, "depth")


@functools.lru_cache(maxsize=None)
def _module(name: str):
    from zoo.registry import build

    _depth_spec(name)
    return build(name)


@functools.lru_cache(maxsize=None)
def _forward(model, size: int):
    """One jitted function ``(variables, images) -> inverse depth`` per model
    (a registered name, or a flax Module with ImageNet normalisation) and
    network size; jax compiles it once per input shape."""
    import jax
    import jax.numpy as jnp

    from zoo.registry import IMAGENET_MEAN, IMAGENET_STD

    if isinstance(model, str):
        spec, net, label = _depth_spec(model), _module(model), model
        mean, std = spec.mean, spec.std
    else:
        net, label, mean, std = model, type(model).__name__, IMAGENET_MEAN, IMAGENET_STD
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)

    def forward(variables, images):
        n, h, w, _ = images.shape
        nh, nw = network_input_size(h, w, size)
        x = (_resize(images, nh, nw) - mean) / std
        y = jnp.asarray(net.apply(variables, x), jnp.float32)
        if y.shape != (n, nh, nw):
            raise ValueError(f"{label}: expected inverse depth of shape {(n, nh, nw)} for input "
                             f"{(n, nh, nw, 3)}, got {y.shape}")
        return _resize(y[..., None], h, w)[..., 0]

    return jax.jit(forward)


@functools.lru_cache(maxsize=None)
def _variables(name: str, pretrained: Union[bool, str], allow_unpinned: bool = False) -> dict:
    """Pretrained variables (``True`` or an origin) or random ones (seed 0),
    loaded once per process."""
    import jax

    from zoo.registry import init_variables

    if not pretrained:
        return init_variables(_module(name), seed=0)
    spec = _depth_spec(name)
    if not spec.weights:
        raise ValueError(f"{name} has no trained weights yet: use a trained run (run=WORKDIR; "
                         "zoo depth --checkpoint RUN), another model (midas_small), or random "
                         "weights for testing (pretrained=False; zoo depth --untrained)")
    from zoo.weights.pretrained import load_pretrained

    origin = None if pretrained is True else pretrained
    # Only publishers that give no hash need the opt-in; it is passed only when given.
    extra = {"allow_unpinned": True} if allow_unpinned else {}
    return jax.device_put(load_pretrained(name, origin, **extra))


@functools.lru_cache(maxsize=8)
def _run(path: str, stamp: float):
    """(model name, network size, variables) of a ``zoo train`` run's best
    checkpoint; ``stamp`` (its modification time) renews the cache entry
    when the run saves a better one. The network size is the spec's, not the
    run's training size: the network is fully convolutional and is trained
    on crops smaller than the pictures it is meant for."""
    import jax

    from zoo.train.loop import load_run as load_training_run

    _, variables, meta = load_training_run(path)
    name = meta["model"]
    return name, _depth_spec(name).input_size, jax.device_put(variables)


def load_run(workdir: Union[str, os.PathLike]) -> tuple[str, int, dict]:
    """The model, network size and variables of a ``zoo train`` depth run's best
    checkpoint, cached until the run saves a better one.

    The network size is the spec's, not the run's training size: the network
    is fully convolutional and is trained on crops smaller than the pictures
    it is meant for.

    Args:
        workdir: the run's ``--workdir`` (``~`` is expanded).

    Returns:
        tuple[str, int, dict]: ``(model name, network size, variables)``.

    Raises:
        ValueError: when ``workdir`` holds no run or no best checkpoint yet
            (raised by ``zoo.train.load_run``), or the run's model is not a
            depth model.
    """
    path = Path(workdir).expanduser().resolve()
    best = path / "best"
    return _run(str(path), best.stat().st_mtime if best.exists() else 0.0)


def resolve(model=DEFAULT_MODEL, *, variables: Optional[dict] = None,
            pretrained: Union[bool, str] = True, run=None, input_size: Optional[int] = None,
            allow_unpinned: bool = False) -> tuple[Any, int, Any]:
    """The model, network size and variables that ``estimate`` will use.

    Args:
        model: a registered depth model name, or a flax Module (then
            ``variables`` are required and the size defaults to 256).
        variables: explicit variables for ``model``.
        pretrained: True for the registered weights, the origin of another
            of its weight sources, or False for random weights (seed 0).
        run: a ``zoo train`` depth run's folder; replaces ``model`` and
            ``variables`` (see ``load_run``).
        input_size: side of the square the image is fitted into, a multiple
            of 32; default the spec's (256 for a Module).
        allow_unpinned: accept weights whose publisher gives no hash.

    Returns:
        tuple: ``(model, size, variables)``: the name or Module, the network
        size in pixels, and the variables.

    Raises:
        ValueError: for both ``run`` and ``variables``, a Module without
            ``variables``, an ``input_size`` that is not a multiple of 32, a
            model that is not a depth model, or one without trained weights.
        TypeError: when ``model`` is neither a name nor an object with
            ``apply``.
        KeyError: when ``model`` is not registered.
    """
    if run is not None:
        if variables is not None:
            raise ValueError("give run= or variables=, not both")
        model, size, variables = load_run(run)
    elif isinstance(model, str):
        size = _depth_spec(model).input_size
        if variables is None:
            variables = _variables(model, pretrained, allow_unpinned)
    else:
        if not callable(getattr(model, "apply", None)):
            raise TypeError(f"model: expected a registered name (zoo.list_models()) or a flax "
                            f"Module, got {type(model).__name__}")
        if variables is None:
            raise ValueError(f"a {type(model).__name__} module needs its variables=")
        size = 256
    if input_size is not None:
        if input_size < MULTIPLE or input_size % MULTIPLE:
            raise ValueError(f"input_size={input_size}: expected a multiple of {MULTIPLE}")
        size = int(input_size)
    return model, size, variables


# ---------------------------------------------------------------- estimate


def estimate(image_or_images, model=DEFAULT_MODEL, *, variables: Optional[dict] = None,
             pretrained: Union[bool, str] = True, run=None, input_size: Optional[int] = None,
             allow_unpinned: bool = False, batch_size: int = MAX_BATCH, flip: bool = False):
    """Relative inverse depth of one image or a list of images.

    The output is disparity up to an unknown scale and shift: larger is
    nearer. Images of the same size go through the network together,
    ``batch_size`` at a time. Networks and weights load once per process;
    each input shape compiles once.

    Args:
        image_or_images: one image or a list (or tuple) of them: uint8 or
            float pixels in 0-255, grey (H, W), RGB or RGBA (alpha ignored),
            or PIL images; at least ``MIN_SIDE`` pixels a side.
        model: a registered depth model (``zoo list``), or any flax Module
            with ``model.apply(variables, x)`` mapping (N, h, w, 3)
            ImageNet-normalised images to (N, h, w), given with its
            ``variables``.
        variables: explicit variables instead of the registered weights.
        pretrained: True for the registered weights, the origin of another
            of its weight sources, or False for random weights (seed 0, for
            testing).
        run: a ``zoo train`` run's folder: its best checkpoint (its model, at
            the spec's size) replaces ``model`` and ``variables``.
        input_size: overrides the side of the square the image is fitted
            into (the spec's, 256 for MiDaS small); a multiple of 32.
        allow_unpinned: accept weights whose publisher gives no hash (MiDaS's
            official ones; see ``zoo.load_pretrained``).
        batch_size: most images per forward pass, at least 1.
        flip: also run each image mirrored left-right and average the two
            predictions (test-time augmentation, as in Monodepth2's
            post-processing); twice the compute.

    Returns:
        np.ndarray or list[np.ndarray]: for one image, its (H, W) float32
        inverse depth at the image's own size; for a list, a list of such
        arrays in the same order.

    Raises:
        ValueError: for an empty list, ``batch_size`` below 1, a bad image
            (see ``as_rgb``) or a bad model choice (see ``resolve``).
        TypeError: for a non-uint8, non-float image or a ``model`` that is
            neither a name nor a Module.
        KeyError: when ``model`` is not registered.

    Example:
        ::

            d = zoo.depth.estimate(image, model="midas_small", allow_unpinned=True)
            zoo.depth.colorize(d)       # (H, W, 3) uint8 picture
    """
    single = not isinstance(image_or_images, (list, tuple))
    images = [image_or_images] if single else list(image_or_images)
    if not images:
        raise ValueError("estimate: no images given (an empty list)")
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected at least 1")
    arrays = [as_rgb(im, "image" if single else f"image {i}") for i, im in enumerate(images)]
    model, size, variables = resolve(model, variables=variables, pretrained=pretrained, run=run,
                                     input_size=input_size, allow_unpinned=allow_unpinned)
    fn = _forward(model, size)
    out: list[Optional[np.ndarray]] = [None] * len(arrays)
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            chunk = members[start:start + batch_size]
            x = np.stack([arrays[i] for i in chunk]).astype(np.float32)
            padded = 1 << (len(chunk) - 1).bit_length()  # few batch shapes to compile
            if padded != len(chunk):
                x = np.concatenate([x, np.repeat(x[-1:], padded - len(chunk), axis=0)])
            y = np.asarray(fn(variables, x))
            if flip:
                y = (y + np.asarray(fn(variables, x[:, :, ::-1]))[:, :, ::-1]) / 2
            for i, depth in zip(chunk, y):
                out[i] = np.ascontiguousarray(depth, dtype=np.float32)
    return out[0] if single else out
