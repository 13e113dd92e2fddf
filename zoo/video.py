"""Per-second features of a video for temporal action localisation.

``features(path)`` decodes a video as a stream, samples frames at ``fps``
by their presentation timestamps, runs a zoo image backbone on each sampled
frame (the RGB stream) and on an optical-flow image of it (the flow
stream), and averages every ``stride`` consecutive frames into one feature
step: ``feature_rate = fps / stride`` steps per second, the input a
temporal action localisation head (``zoo.actions``) reads.

The flow stream follows the two-stream recipe (Simonyan & Zisserman 2014;
I3D, Carreira & Zisserman 2017): dense flow between consecutive sampled
frames, each component truncated to ``[-FLOW_BOUND, FLOW_BOUND]`` pixels
and mapped to 0..255, rendered as an image. Here the flow is OpenCV's
Farneback (not TV-L1) on grey frames at a reduced resolution, and the
network that reads the flow images is the same ImageNet backbone as the
RGB stream: a stand-in for a flow-trained network, which no package here
ships.

Decoding needs PyAV and the flow needs OpenCV: ``pip install 'zoo[video]'``.
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import math
import os
import sys
from typing import Any, Iterable, Iterator, Optional, Union

import numpy as np

DEFAULT_FPS = 8.0  # sampled frames per second
# 4 frames at 8 fps: one step per 0.5 s, close to the 16-frame (0.53 s at
# 30 fps) snippets of the TSN features that ActivityNet localisers read.
DEFAULT_STRIDE = 4
DEFAULT_BATCH = 16  # images per forward pass; every batch is padded to it
FLOW_SIDE = 128  # pixels: flow is computed with the shorter side scaled down to this
# Flow components are truncated to +-20 pixels and rescaled, as I3D does
# ("truncated to the range [-20, 20], then rescaled to [-1, 1]"; Carreira &
# Zisserman 2017, section 3); here the pixels are those of the FLOW_SIDE
# frames and the interval is one sampled frame (1 / fps).
FLOW_BOUND = 20.0
# Farneback parameters of OpenCV's dense optical flow tutorial
# (pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags).
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)
_TIME_EPS = 1e-6  # seconds: a frame shown exactly at a sample time is that sample
_EXTRA = "pip install 'zoo[video]' (PyAV and OpenCV)"


class VideoError(ValueError):
    """A video file that cannot be used, or arguments that do not fit it."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The video file does not exist."""


@dataclasses.dataclass(frozen=True, eq=False)
class VideoFeatures:
    """Features of one video, one row per feature step; ``len()`` is the number
    of steps.

    Attributes:
        rgb: (T, D) float32, the mean of the backbone's pooled features over
            the ``stride`` frames of each step.
        flow: (T, D) float32 of the flow stream, or None when not computed.
        feature_rate: steps per second, ``fps / stride``.
        times: (T,) float64 start of each step in seconds from the first
            frame; step k covers ``[times[k], times[k] + 1 / feature_rate)``.
        duration: the video's length in seconds.
        source_fps: the video's average frame rate (0 if the file does not
            say).
        fps: sampled frames per second.
        stride: sampled frames per step.
        backbone: the registered model name of the backbone.
    """

    rgb: np.ndarray
    flow: Optional[np.ndarray]
    feature_rate: float
    times: np.ndarray
    duration: float
    source_fps: float
    fps: float
    stride: int
    backbone: str

    def __len__(self) -> int:
        return len(self.times)


# ----------------------------------------------------------------- decoding


def _av():
    try:
        import av
    except ImportError:
        raise ImportError(f"zoo.video needs PyAV to read and write videos: {_EXTRA}") from None
    return av


def _cv2():
    try:
        import cv2
    except ImportError:
        raise ImportError(f"zoo.video needs OpenCV for optical flow: {_EXTRA}") from None
    return cv2


def _check_fps(fps) -> float:
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise VideoError(f"fps={fps!r}: expected a positive number of frames per second") from None
    if not (math.isfinite(value) and value > 0):
        raise VideoError(f"fps={fps!r}: expected a positive number of frames per second")
    return value


def _ffmpeg_reason(error: Exception) -> str:
    return (getattr(error, "strerror", None) or str(error)).strip().splitlines()[0]


class _Sampler:
    """Iterates ``(time, frame)``: the frame shown at each sample time
    ``k / fps`` (seconds from the first frame), as (H, W, 3) uint8 RGB.

    A sample takes the last frame whose presentation time is at or before
    it, so a variable frame rate is followed and a source slower than
    ``fps`` repeats frames. Only the current decoded frame is held. After
    iterating, ``duration`` and ``decoded`` describe the whole video."""

    def __init__(self, path, fps: float):
        self.fps = _check_fps(fps)
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise VideoNotFoundError(f"{self.path}: no such video file")
        if not os.path.isfile(self.path):
            raise VideoError(f"{self.path}: not a file (expected a video file)")
        av = _av()
        try:
            self._container = av.open(self.path)
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: not a readable video file "
                             f"({_ffmpeg_reason(e)})") from None
        fmt = self._container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):
            self._container.close()
            raise VideoError(f"{self.path}: a still image ({fmt.removesuffix('_pipe')}), not a "
                             "video")
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.path}: no video stream in this file")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.source_fps = float(rate) if rate else 0.0
        self.duration = self._declared_duration()
        self.decoded = 0

    def _declared_duration(self) -> float:
        """The length the container declares (0 if none): only an estimate
        for the progress bar; ``duration`` is set from the frames."""
        s = self._stream
        if s.duration and s.time_base:
            return float(s.duration * s.time_base)
        if self._container.duration:
            return self._container.duration / 1e6
        return 0.0

    def expected_samples(self) -> Optional[int]:
        return max(1, math.ceil(self.duration * self.fps)) if self.duration > 0 else None

    def _frames(self) -> Iterator[tuple[Any, float]]:
        """Decoded frames with their presentation time in seconds."""
        av = _av()
        last = None
        step = 1.0 / self.source_fps if self.source_fps else 0.0
        try:
            for frame in self._container.decode(self._stream):
                t = frame.time
                if t is None:  # no timestamp: continue at the average rate
                    t = 0.0 if last is None else last + step
                if last is not None and t <= last:
                    continue  # out of order or repeated timestamp: cannot go back
                last = t
                yield frame, float(t)
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: cannot decode the video ({_ffmpeg_reason(e)})") from None

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        k, start, previous, shown, rgb = 0, None, None, 0.0, None
        try:
            for frame, t in self._frames():
                self.decoded += 1
                if start is None:
                    start = t
                t -= start
                while previous is not None and k / self.fps < t - _TIME_EPS:
                    if rgb is None:
                        rgb = previous.to_ndarray(format="rgb24")
                    yield k / self.fps, rgb
                    k += 1
                previous, shown, rgb = frame, t, None
            if previous is None:
                raise VideoError(f"{self.path}: no decodable video frames")
            end = shown + self._last_frame_duration(previous)
            self.duration = end
            while k / self.fps < end - _TIME_EPS:
                if rgb is None:
                    rgb = previous.to_ndarray(format="rgb24")
                yield k / self.fps, rgb
                k += 1
        finally:
            self._container.close()

    def _last_frame_duration(self, frame) -> float:
        if frame.duration and frame.time_base:
            return float(frame.duration * frame.time_base)
        if self.source_fps:
            return 1.0 / self.source_fps
        return 1.0 / self.fps  # nothing says: shown for one sample interval

    def close(self) -> None:
        self._container.close()


def sample_frames(path: Union[str, os.PathLike], fps: float = DEFAULT_FPS
                  ) -> Iterator[tuple[float, np.ndarray]]:
    """The frame shown at each sample time ``k / fps`` seconds from the video's
    first frame.

    A sample takes the last frame whose presentation timestamp is not later,
    so variable frame rates are followed and slower sources repeat frames.
    Decodes as a stream: one frame is held at a time. The same array object
    is yielded again for a repeated frame; copy it before changing it.

    Args:
        path: the video file.
        fps: samples per second, > 0.

    Returns:
        Iterator[tuple[float, np.ndarray]]: ``(time in seconds, frame)`` pairs,
        each frame (H, W, 3) uint8 RGB; iterating raises ``VideoError`` when
        the video cannot be decoded or has no frames.

    Raises:
        VideoNotFoundError: when ``path`` does not exist.
        VideoError: when ``fps`` is not a positive number, or ``path`` is not
            a file, not a readable video, a still image, or has no video
            stream.
        ImportError: when PyAV is not installed (``zoo[video]``).
    """
    return iter(_Sampler(path, fps))


# ------------------------------------------------------------------- flow


def flow_resolution(height: int, width: int, side: int = FLOW_SIDE) -> tuple[int, int]:
    """The size flow is computed at: the shorter side scaled down to ``side``
    pixels, keeping the aspect ratio; smaller frames keep their size.

    Args:
        height: frame height in pixels.
        width: frame width in pixels.
        side: the shorter side after scaling, in pixels.

    Returns:
        tuple[int, int]: ``(height, width)`` in pixels.
    """
    scale = min(1.0, side / min(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _grey(frame: np.ndarray, side: int) -> np.ndarray:
    cv2 = _cv2()
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    h, w = flow_resolution(*grey.shape, side=side)
    if (h, w) != grey.shape:
        grey = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
    return grey


def optical_flow(previous: np.ndarray, current: np.ndarray, side: int = FLOW_SIDE) -> np.ndarray:
    """Dense optical flow from ``previous`` to ``current``: OpenCV's Farneback
    algorithm (``FARNEBACK`` parameters) on grey frames scaled to
    ``flow_resolution``.

    Args:
        previous: (H, W, 3) uint8 RGB frame.
        current: (H, W, 3) uint8 RGB frame of the same size.
        side: the shorter side of the frames the flow is computed at.

    Returns:
        np.ndarray: (h, w, 2) float32 ``(dx, dy)`` in pixels of the scaled
        frames, x to the right, y down.

    Raises:
        ValueError: when the frames are not (H, W, 3) or differ in shape.
        ImportError: when OpenCV is not installed (``zoo[video]``).
    """
    a, b = np.asarray(previous), np.asarray(current)
    if a.shape != b.shape or a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"optical_flow: expected two (H, W, 3) RGB frames of one size, got "
                         f"{a.shape} and {b.shape}")
    return _flow(_grey(a, side), _grey(b, side))


def _flow(previous_grey: np.ndarray, current_grey: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.calcOpticalFlowFarneback(previous_grey, current_grey, None, *FARNEBACK)


def flow_image(flow: np.ndarray, bound: float = FLOW_BOUND) -> np.ndarray:
    """A flow field as the image two-stream networks see.

    Channels 0 and 1 are dx and dy truncated to ``[-bound, bound]`` and
    mapped linearly to 0..255 (no motion is 127.5); channel 2 is the
    magnitude ``sqrt(dx^2 + dy^2)`` truncated to ``bound`` and mapped to
    0..255.

    Args:
        flow: (h, w, 2) flow field in pixels.
        bound: truncation in pixels, > 0.

    Returns:
        np.ndarray: (h, w, 3) float32 image in 0..255.

    Raises:
        ValueError: when ``flow`` is not (h, w, 2) or ``bound`` is not > 0.
    """
    f = np.asarray(flow, np.float32)
    if f.ndim != 3 or f.shape[-1] != 2:
        raise ValueError(f"flow_image: expected a (h, w, 2) flow field, got shape {f.shape}")
    if not bound > 0:
        raise ValueError(f"flow_image: bound={bound!r}: expected a positive number of pixels")
    xy = (np.clip(f, -bound, bound) + bound) * (255.0 / (2 * bound))
    magnitude = np.minimum(np.hypot(f[..., 0], f[..., 1]), bound) * (255.0 / bound)
    return np.concatenate([xy, magnitude[..., None]], axis=-1).astype(np.float32)


# ---------------------------------------------------------------- backbone


@functools.lru_cache(maxsize=None)
def _classifier_spec(name: str, resolution: Optional[int]):
    from zoo.registry import get_spec, models_for_task

    spec = get_spec(name)
    if spec.task != "classification":
        usable = models_for_task("classification")
        raise VideoError(f"backbone={name!r} is a {spec.task} model; video features need an "
                         f"image classifier: {', '.join(usable)}")
    return get_spec(name, resolution=resolution)


@functools.lru_cache(maxsize=None)
def _pooled(name: str, implementation: str):
    """One jitted ``(variables, images) -> (N, D)`` global-average-pooled
    last feature map per backbone; jax compiles it once per input shape,
    and every batch has the same shape."""
    import jax
    import jax.numpy as jnp

    from zoo.registry import build

    model = build(name, include_top=False, implementation=implementation)

    def pooled(variables, images):
        return jnp.mean(jnp.asarray(model.apply(variables, images), jnp.float32), axis=(1, 2))

    return model, jax.jit(pooled)


@functools.lru_cache(maxsize=4)
def _variables(name: str, pretrained: Union[bool, str], implementation: str) -> dict:
    import jax

    if pretrained:
        from zoo.weights.pretrained import load_pretrained

        # The classifier's weights come along and are not read without the top.
        return jax.device_put(load_pretrained(name, None if pretrained is True else pretrained))
    from zoo.registry import init_variables

    return init_variables(_pooled(name, implementation)[0], seed=0)


class _Stream:
    """Sums pooled features per feature step, ``batch_size`` frames per
    forward pass; the result of one pass is read while the next is queued,
    so decoding and flow overlap with the network."""

    def __init__(self, fn, variables, spec, batch_size: int, stride: int):
        self.fn, self.variables, self.spec = fn, variables, spec
        self.batch_size, self.stride = batch_size, stride
        self.queue: list = []
        self.first = 0  # frame index of queue[0]
        self.pending = None
        self.sums: list[np.ndarray] = []
        self.counts: list[int] = []

    def add(self, image: np.ndarray) -> None:
        self.queue.append(image)
        if len(self.queue) == self.batch_size:
            self._dispatch()

    def _dispatch(self) -> None:
        from zoo.preprocess import preprocess

        n = len(self.queue)
        x = np.asarray(preprocess(self.queue, self.spec), np.float32)
        if n < self.batch_size:  # one batch shape, one compiled program
            x = np.concatenate([x, np.zeros((self.batch_size - n,) + x.shape[1:], x.dtype)])
        out = self.fn(self.variables, x)
        self._collect()
        self.pending = (self.first, n, out)
        self.first += n
        self.queue = []

    def _collect(self) -> None:
        if self.pending is None:
            return
        first, n, out = self.pending
        self.pending = None
        rows = np.asarray(out, np.float64)[:n]
        for i, row in enumerate(rows):
            step = (first + i) // self.stride
            while len(self.sums) <= step:
                self.sums.append(np.zeros(row.shape, np.float64))
                self.counts.append(0)
            self.sums[step] += row
            self.counts[step] += 1

    def finish(self, steps: int) -> np.ndarray:
        if self.queue:
            self._dispatch()
        self._collect()
        return np.stack([s / c for s, c in zip(self.sums[:steps], self.counts[:steps])]
                        ).astype(np.float32)


def _progress_bar(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    console=Console(stderr=True), transient=True,
                    disable=not (enabled and sys.stderr.isatty()))


def features(path: Union[str, os.PathLike], backbone: str = "efficientnet_lite0", *,
             fps: float = DEFAULT_FPS, stride: int = DEFAULT_STRIDE, flow: bool = True,
             pretrained: Union[bool, str] = True, variables: Optional[dict] = None,
             resolution: Optional[int] = None, implementation: str = "auto",
             batch_size: int = DEFAULT_BATCH, progress: bool = True) -> VideoFeatures:
    """Two-stream features of the video at ``path``, one row per feature step.

    Frames are sampled at ``fps`` per second by presentation timestamp (see
    ``sample_frames``) and decoded as a stream, so memory does not grow with
    the video's length. Each frame goes through the spec's preprocessing
    (``zoo.preprocess``: resize, centre crop, normalise) and ``backbone``
    without its top; its last feature map is averaged over space into D
    numbers (1280 for EfficientNet-Lite0), and a step's feature is the mean
    over its ``stride`` frames. A last, incomplete step is dropped.

    The flow stream: Farneback optical flow from each sampled frame to the
    next on grey frames at ``FLOW_SIDE`` pixels, each frame's flow (the first
    frame takes the second's) rendered by ``flow_image`` and read by the same
    backbone with the same weights. An ImageNet backbone on flow images is a
    stand-in for a network trained on flow (the two-stream and I3D flow
    networks); no such weights ship here.

    Args:
        path: the video file (any container and codec PyAV reads).
        backbone: a registered image classifier.
        fps: sampled frames per second, > 0.
        stride: sampled frames per feature step, an integer >= 1.
        flow: also compute the flow stream.
        pretrained: True for the registered weights, a source's origin, or
            False for random weights (seed 0, for tests).
        variables: the backbone's variables, e.g. a fine-tuned run's; replace
            ``pretrained``.
        resolution: input size overriding the spec's, in pixels.
        implementation: kernel implementation of the backbone's convolutions
            (``"auto"``, ``"reference"``, ``"xla_fast"`` or ``"pallas"``).
        batch_size: frames per forward pass, an integer >= 1 (the last batch
            is padded; results do not depend on it).
        progress: show a progress bar over sampled frames on a terminal.

    Returns:
        VideoFeatures: ``rgb`` and ``flow`` (T, D) with T = sampled frames //
        ``stride``, ``feature_rate = fps / stride``.

    Raises:
        VideoError: (a ValueError) for a bad ``fps``, ``stride`` or
            ``batch_size``, a backbone that is not an image classifier, an
            unreadable video, a video too short for one step, or (with
            ``flow``) fewer than two sampled frames.
        VideoNotFoundError: when ``path`` does not exist.
        ImportError: when PyAV or (with ``flow``) OpenCV is not installed.
        KeyError: when ``backbone`` is not registered.

    Example:
        ::

            f = zoo.video.features("clip.mp4", fps=8, stride=4)
            f.rgb.shape, f.feature_rate        # (T, 1280), 2.0 steps per second
    """
    fps = _check_fps(fps)
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise VideoError(f"stride={stride!r}: expected a whole number of frames >= 1")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise VideoError(f"batch_size={batch_size!r}: expected a whole number >= 1")
    spec = _classifier_spec(backbone, resolution)
    sampler = _Sampler(path, fps)
    try:
        if flow:
            _cv2()
        _, fn = _pooled(backbone, implementation)
        if variables is None:
            variables = _variables(backbone, pretrained, implementation)
    except BaseException:
        sampler.close()
        raise
    rgb_stream = _Stream(fn, variables, spec, int(batch_size), int(stride))
    flow_stream = _Stream(fn, variables, spec, int(batch_size), int(stride)) if flow else None

    n, previous = 0, None
    with _progress_bar(progress) as bar:
        task = bar.add_task("video features", total=sampler.expected_samples())
        for _, frame in sampler:
            rgb_stream.add(frame)
            if flow_stream is not None:
                grey = _grey(frame, FLOW_SIDE)
                if previous is not None:
                    image = flow_image(_flow(previous, grey))
                    if n == 1:
                        flow_stream.add(image)  # the first frame has no predecessor
                    flow_stream.add(image)
                previous = grey
            n += 1
            bar.advance(task)

    steps = n // stride
    if steps == 0:
        raise VideoError(f"{sampler.path}: {sampler.duration:.3g} s gives {n} frame(s) at "
                         f"fps={fps:g}, fewer than one feature step of stride={stride}; lower "
                         "stride or raise fps")
    if flow_stream is not None and n < 2:
        raise VideoError(f"{sampler.path}: flow needs two sampled frames, the video gives one at "
                         f"fps={fps:g}; raise fps or pass flow=False")
    return VideoFeatures(
        rgb=rgb_stream.finish(steps),
        flow=flow_stream.finish(steps) if flow_stream is not None else None,
        feature_rate=fps / stride,
        times=(np.arange(steps, dtype=np.float64) * (stride / fps)),
        duration=float(sampler.duration),
        source_fps=sampler.source_fps,
        fps=fps,
        stride=int(stride),
        backbone=backbone,
    )


# ------------------------------------------------------------------ writing


def write_video(path: Union[str, os.PathLike], frames: Union[np.ndarray, Iterable[np.ndarray]],
                fps: float, *, crf: int = 18) -> str:
    """Writes ``frames`` as a video, encoding them as they come.

    H.264 (libx264, constant quality ``crf``) when the PyAV build has it,
    else MPEG-4 part 2; the container is chosen by the extension (.mp4,
    .mkv, .avi). An empty (0, H, W, 3) array writes a video stream without
    frames where the container keeps one (AVI; MP4 drops an empty track).
    On error no partial file is left.

    Args:
        path: the output file.
        frames: (H, W, 3) uint8 RGB frames, all of one size with H and W even
            (yuv420p needs it), or one (N, H, W, 3) array.
        fps: frames per second, > 0.
        crf: H.264 constant-rate factor (lower is better quality; 18 is
            visually lossless); unused for MPEG-4.

    Returns:
        str: ``path``.

    Raises:
        ValueError: for a frame that is not (H, W, 3) uint8, frames of
            different sizes or of odd width or height, no frames, or a bad
            ``fps`` (``VideoError``).
        ImportError: when PyAV is not installed (``zoo[video]``).
    """
    av = _av()
    fps = _check_fps(fps)
    path = os.fspath(path)
    h264 = "libx264" in av.codecs_available
    rate = fractions.Fraction(fps).limit_denominator(1001)
    container = av.open(path, "w")
    try:
        stream = container.add_stream("libx264" if h264 else "mpeg4", rate=rate)
        stream.pix_fmt = "yuv420p"
        if h264:
            stream.options = {"crf": str(int(crf))}
        size = None

        def start(h: int, w: int) -> None:
            if h % 2 or w % 2:
                raise ValueError(f"write_video: frames are {w}x{h}; yuv420p needs an even width "
                                 "and height (crop a row or column)")
            stream.width, stream.height = w, h
            if not h264:  # mpeg4's default 200 kbit/s blurs; about 0.3 bit per pixel
                stream.bit_rate = max(400_000, int(0.3 * w * h * fps))

        if isinstance(frames, np.ndarray) and frames.ndim == 4 and len(frames) == 0:
            size = frames.shape[1:3]
            start(*size)
            container.start_encoding()
        for i, frame in enumerate(frames):
            a = np.asarray(frame)
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
                raise ValueError(f"write_video: frame {i}: expected (H, W, 3) uint8 RGB, got "
                                 f"shape {a.shape} dtype {a.dtype}")
            if size is None:
                size = a.shape[:2]
                start(*size)
            elif a.shape[:2] != size:
                raise ValueError(f"write_video: frame {i} is {a.shape[1]}x{a.shape[0]}, the "
                                 f"first was {size[1]}x{size[0]}; all frames need one size")
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        if size is None:
            raise ValueError("write_video: no frames (pass an empty (0, H, W, 3) array to write "
                             "a video without frames)")
        for packet in stream.encode():
            container.mux(packet)
    except BaseException:
        container.close()
        if os.path.exists(path):
            os.remove(path)
        raise
    container.close()
    return path
