"""Untrimmed feature sequences with planted action instances (numpy only):
the ``action_features`` dataset, a stand-in for THUMOS'14's two-stream
(RGB + optical flow) clip features, on which temporal action localisation
(TALNet) is trained and ablated.

Each example is one untrimmed "video" of ``steps`` feature vectors per
stream at ``FEATURE_RATE`` = 4 per second (step t covers seconds
``[t / 4, (t + 1) / 4)``; 512 steps = 128 s by default), ``dim`` values per
stream, with the ground-truth instances (start, end in seconds, class) and
"Ambiguous" segments that an evaluation ignores (as THUMOS'14 does).

The generative model, per video ``(seed, index)``, every draw from
``np.random.default_rng([seed, index])`` in a fixed order:

* **Classes.** 20 classes (``CLASS_NAMES``), in pairs (2k, 2k + 1) and
  groups of four (4g .. 4g + 3). A video has a main class (uniform); each
  instance is of the main class with probability 0.6, of its pair partner
  with 0.2, of any class with 0.2 (most THUMOS'14 videos show one sport;
  some show two related ones, such as cricket bowling and cricket shot).
* **Timeline.** Background gaps and instances alternate: a gap drawn
  log-uniform in [1, 60] s (at most half the video), then an instance whose duration is drawn
  log-uniform in [1, 100] s (capped at 0.8 of the video length; THUMOS'14
  instances run from under a second to minutes), and so on. An instance that
  does not fit before the end of the video is redrawn up to three times,
  then the video ends with background: long instances are therefore rarer
  than a log-uniform law says (and a video could, rarely, hold none; none of
  the full build's does). At most ``MAX_INSTANCES``. Instances never
  overlap: every two are at least 1 s apart. Realised over the 1,000 train
  videos of the full build (128 s each): 4.4 instances per video (at most
  11), durations 1.0-99.2 s with median 6.2 s, 31 % shorter than 3 s and 15 %
  longer than 30 s; half the steps are background.
* **Phases.** An instance has three phases, onset, body and offset (onset
  and offset each 15-30 % of its duration, the body the rest). Each (class,
  phase) has a prototype direction per stream (``prototypes``, fixed by
  ``WORLD_SEED``); a pair of classes shares its onset prototype, so an onset
  alone does not tell the class: the body, or the video's other instances,
  must. A step's action signal is the sum over phases of (the fraction of
  the step the phase covers) x amplitude x prototype, so boundaries fall
  between steps, not on them. Amplitudes are drawn per instance and stream
  in [0.7, 1.3].
* **RGB stream: identity well, boundaries poorly.** RGB prototypes are a
  class direction plus a smaller phase deviation (phases of one class look
  alike), and the RGB action signal is blurred in time by a Gaussian of
  sigma 1 s (a clip feature sees several seconds) cut at 3 sigma.
  Nuisance: a per-video scene offset, a slow drift (Ornstein-Uhlenbeck, time constant 30 s) and
  white noise of standard deviation ``RGB_NOISE`` per value.
* **Flow stream: boundaries well, identity poorly.** Flow prototypes are a
  phase "motion" direction shared by all classes plus a group direction
  shared by the four classes of a group plus a small class deviation; the
  flow signal is not blurred, so it switches at the boundaries. Nuisance:
  camera jitter (Ornstein-Uhlenbeck, 2 s) and heavier white noise
  (``FLOW_NOISE``).
* **Distractors.** Background holds bursts (about one per 16 s, 0.5-2.5 s
  long) of a single phase of a random class at 0.3-0.6 of an action's
  amplitude: parts of actions that are not actions. They are plain
  background in the labels.
* **Ambiguous segments.** A background gap of at least 3 s holds, with
  probability 0.25, one ambiguous segment (1-20 s, at least 0.5 s from both
  neighbouring instances and the ends of the video): half the time an
  instance cut short (onset and body, no offset) at 0.4-0.7 amplitude, half
  the time a mix of the bodies of two classes at half amplitude each (the
  video's main class or a random one). They are listed in ``ambiguous`` and
  are neither ground truth nor background: THUMOS'14 annotates such
  stretches "Ambiguous" and its evaluation ignores detections there.

How hard it is, measured with least-squares linear probes (``probe_accuracy``;
numpy, one-hot targets, a bias) fitted on the 1,000 train videos of the full
build and scored on its 200 test videos, steps in ambiguous segments left
out. Per step over 21 targets (20 classes and background), where always
answering background scores 50.0 %: RGB 55.6 %, flow 52.8 %, both 69.4 %;
on the action steps alone the class is right for 12.1 % (RGB), 6.4 % (flow)
and 40.3 % (both) of them (chance 5 %). With context the class is there:
the mean feature over a true instance (less the video's mean), through a
linear classifier fitted the same way, gives the class of 90 % of the test
instances from RGB, 64 % from flow and 92 % from both. And the boundaries
are in the flow: on the steps within 1 s of an instance's start or end,
action versus background is right for 56 % of them from RGB, 74 % from flow
and 75 % from both.

Records (``generate_video`` and the TFDS builder ``ActionFeatures``)::

    rgb       float16 (steps, dim)
    flow      float16 (steps, dim)
    segments  float32 (MAX_INSTANCES, 2)  start, end seconds; padding rows -1
    labels    int32   (MAX_INSTANCES,)    class index; padding -1
    ambiguous float32 (MAX_AMBIGUOUS, 2)  start, end seconds; padding rows -1
    video     str (bytes when read from the TFDS data source)

Valid rows come first, sorted by start time. ``valid_instances``,
``step_targets`` and ``step_mask`` turn them into per-step targets.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

FEATURE_RATE = 4.0  # feature steps per second of video
STEPS = 512  # steps per video: 128 s
DIM = 64  # values per stream per step
MAX_INSTANCES = 32
MAX_AMBIGUOUS = 8
NUM_CLASSES = 20
CLASS_NAMES = tuple(f"action_{c:02d}" for c in range(NUM_CLASSES))
PHASES = ("onset", "body", "offset")
BACKGROUND = NUM_CLASSES  # the step target of a step outside every instance
MIN_DURATION, MAX_DURATION = 1.0, 100.0  # seconds, log-uniform
GAP = (1.0, 60.0)  # seconds, log-uniform: background between instances
TRAIN_SEED, TEST_SEED = 0, 1
WORLD_SEED = 14  # draws the prototypes: the same for every video and build
TASK = "action_localisation"  # Data.task of the prepared dataset, as the models' spec.task

RGB_NOISE, FLOW_NOISE = 0.2, 0.3  # white-noise standard deviations per value
RGB_BLUR = 1.0  # seconds, sigma of the temporal blur of the RGB action signal
# Nuisance scales: the length of the per-video RGB scene offset (times a
# draw in [0.5, 1.5]) and the per-value standard deviations of the RGB drift
# and the flow's camera jitter.
SCENE, RGB_DRIFT, CAMERA = 1.0, 0.05, 0.06
RGB_DRIFT_TAU, CAMERA_TAU = 30.0, 2.0  # seconds


# ------------------------------------------------------------- prototypes

def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@functools.lru_cache(maxsize=8)
def _prototypes(dim: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([WORLD_SEED, dim])
    c, p = NUM_CLASSES, len(PHASES)
    identity = _unit(rng.normal(size=(c, dim)))
    rgb = _unit(identity[:, None] + 0.6 * _unit(rng.normal(size=(c, p, dim))))
    motion = _unit(rng.normal(size=(p, dim)))
    group = _unit(rng.normal(size=(c // 4, dim)))
    flow = _unit(motion[None] + 0.8 * group[np.arange(c) // 4, None]
                 + 0.35 * _unit(rng.normal(size=(c, p, dim))))
    # A pair shares its onset: the mean of the two class directions in RGB.
    pair_rgb = _unit(identity[0::2] + identity[1::2] + 0.6 * _unit(rng.normal(size=(c // 2, dim))))
    rgb[0::2, 0] = rgb[1::2, 0] = pair_rgb
    flow[1::2, 0] = flow[0::2, 0]
    rgb, flow = rgb.astype(np.float32), flow.astype(np.float32)
    for a in (rgb, flow):
        a.flags.writeable = False  # cached: shared by every caller
    return rgb, flow


def prototypes(dim: int = DIM) -> dict[str, np.ndarray]:
    """The planted prototype directions, the same in every process (drawn from
    ``WORLD_SEED`` and ``dim``). Classes 2k and 2k + 1 share their onset.

    Args:
        dim: values per stream.

    Returns:
        dict[str, np.ndarray]: ``{"rgb": (20, 3, dim), "flow": (20, 3,
        dim)}`` float32 unit vectors (fresh copies), indexed (class, phase)
        with phases ordered as ``PHASES``.
    """
    rgb, flow = _prototypes(int(dim))
    return {"rgb": rgb.copy(), "flow": flow.copy()}


# ------------------------------------------------------------- timeline

def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _timeline(rng: np.random.Generator, length: float):
    """Instances ``[(start, end, class, (onset_end, body_end), amplitudes)]``
    and the gaps between them, in seconds."""
    main = int(rng.integers(NUM_CLASSES))
    longest = min(MAX_DURATION, 0.8 * length)
    gap = (GAP[0], min(GAP[1], 0.5 * length))  # short videos still hold instances
    instances = []
    cursor = _log_uniform(rng, *gap)
    while len(instances) < MAX_INSTANCES:
        for _ in range(4):
            duration = _log_uniform(rng, MIN_DURATION, longest)
            if cursor + duration <= length:
                break
        else:
            break
        u = rng.random()
        cls = main if u < 0.6 else (main ^ 1 if u < 0.8 else int(rng.integers(NUM_CLASSES)))
        onset, offset = rng.uniform(0.15, 0.3, 2) * duration
        start, end = cursor, cursor + duration
        amplitude = rng.uniform(0.7, 1.3, 2)
        instances.append((start, end, cls, (start + onset, end - offset), amplitude))
        cursor = end + _log_uniform(rng, *gap)
    edges = [0.0] + [e for s, t, *_ in instances for e in (s, t)] + [length]
    gaps = list(zip(edges[0::2], edges[1::2]))
    return main, instances, gaps


# ------------------------------------------------------------- features

def _coverage(start: float, end: float, steps: int) -> np.ndarray:
    """(steps,) fraction of each step inside [start, end) seconds."""
    edges = np.arange(steps + 1) / FEATURE_RATE
    return np.clip(np.minimum(end, edges[1:]) - np.maximum(start, edges[:-1]), 0, None) \
        * FEATURE_RATE


def _blur(x: np.ndarray) -> np.ndarray:
    """``x`` (steps, dim) convolved in time with a Gaussian of sigma
    ``RGB_BLUR`` seconds cut at 3 sigma (what would spread past the ends of
    the video is lost)."""
    sigma = RGB_BLUR * FEATURE_RATE
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    out = np.zeros_like(x)
    n = len(x)
    for k, w in zip(range(-radius, radius + 1), taps):
        if abs(k) < n:  # out[t] += w * x[t - k]
            out[max(k, 0):n + min(k, 0)] += w * x[max(-k, 0):n - max(k, 0)]
    return out


def _ornstein_uhlenbeck(rng: np.random.Generator, steps: int, dim: int, tau: float,
                        scale: float) -> np.ndarray:
    """A stationary process of standard deviation ``scale`` per value and
    time constant ``tau`` seconds."""
    a = np.exp(-1.0 / (tau * FEATURE_RATE))
    shocks = rng.normal(0, scale * np.sqrt(1 - a * a), (steps, dim)).astype(np.float32)
    out = np.empty((steps, dim), np.float32)
    out[0] = rng.normal(0, scale, dim)
    for t in range(1, steps):
        out[t] = a * out[t - 1] + shocks[t]
    return out


def generate_video(seed: int, index: int, steps: int = STEPS, dim: int = DIM) -> dict:
    """Video ``index`` of stream ``seed`` as a record; the same arguments give
    the same arrays on every call and in every process.

    Args:
        seed: the stream, ``TRAIN_SEED`` or ``TEST_SEED`` for the splits of
            the dataset (any integer works).
        index: the video's number within the stream.
        steps: feature steps, at ``FEATURE_RATE`` per second.
        dim: values per stream per step.

    Returns:
        dict: the record of the module docstring: ``rgb`` and ``flow``
        float16 (steps, dim), ``segments`` float32 (``MAX_INSTANCES``, 2)
        seconds, ``labels`` int32 (``MAX_INSTANCES``,), ``ambiguous``
        float32 (``MAX_AMBIGUOUS``, 2) seconds (padding rows -1), and
        ``video`` (``video_id(seed, index)``).
    """
    rng = np.random.default_rng([int(seed), int(index)])
    length = steps / FEATURE_RATE
    main, instances, gaps = _timeline(rng, length)
    n_cp = NUM_CLASSES * len(PHASES)
    # Phase activations per (class, phase) column; one matrix per stream
    # (amplitudes differ by stream).
    act_rgb = np.zeros((steps, n_cp), np.float32)
    act_flow = np.zeros((steps, n_cp), np.float32)

    def plant(cls, phase, start, end, amp_rgb, amp_flow):
        cover = _coverage(start, end, steps)
        col = cls * len(PHASES) + phase
        act_rgb[:, col] += amp_rgb * cover
        act_flow[:, col] += amp_flow * cover

    for start, end, cls, (onset_end, body_end), (amp_rgb, amp_flow) in instances:
        for phase, (a, b) in enumerate(((start, onset_end), (onset_end, body_end),
                                        (body_end, end))):
            plant(cls, phase, a, b, amp_rgb, amp_flow)

    ambiguous = []
    for a, b in gaps:
        if len(ambiguous) == MAX_AMBIGUOUS:
            break
        if b - a < 3.0 or rng.random() >= 0.25:
            continue
        duration = _log_uniform(rng, 1.0, min(20.0, b - a - 1.0))
        start = rng.uniform(a + 0.5, b - 0.5 - duration)
        end = start + duration
        ambiguous.append((start, end))
        cls = int(rng.integers(NUM_CLASSES)) if rng.random() < 0.5 else main
        if rng.random() < 0.5:  # cut short: onset and body only, faint
            amp = rng.uniform(0.4, 0.7)
            cut = start + rng.uniform(0.2, 0.4) * duration
            plant(cls, 0, start, cut, amp, amp)
            plant(cls, 1, cut, end, amp, amp)
        else:  # the bodies of two classes at once
            other = int(rng.integers(NUM_CLASSES))
            plant(cls, 1, start, end, 0.5, 0.5)
            plant(other, 1, start, end, 0.5, 0.5)

    # Distractors: single faint phases in the background, away from
    # instances and ambiguous segments.
    busy = [(s, e) for s, e, *_ in instances] + ambiguous
    for _ in range(int(rng.poisson(length / 16.0))):
        duration = rng.uniform(0.5, 2.5)
        start = rng.uniform(0, length - duration)
        if any(start < e + 0.25 and s - 0.25 < start + duration for s, e in busy):
            continue
        amp = rng.uniform(0.3, 0.6)
        plant(int(rng.integers(NUM_CLASSES)), int(rng.integers(len(PHASES))), start,
              start + duration, amp, amp)

    rgb_proto, flow_proto = _prototypes(int(dim))
    rgb = _blur(act_rgb @ rgb_proto.reshape(n_cp, dim))
    rgb += SCENE * rng.uniform(0.5, 1.5) * _unit(rng.normal(size=dim)).astype(np.float32)
    rgb += _ornstein_uhlenbeck(rng, steps, dim, RGB_DRIFT_TAU, RGB_DRIFT)
    rgb += rng.normal(0, RGB_NOISE, (steps, dim)).astype(np.float32)
    flow = act_flow @ flow_proto.reshape(n_cp, dim)
    flow += _ornstein_uhlenbeck(rng, steps, dim, CAMERA_TAU, CAMERA)
    flow += rng.normal(0, FLOW_NOISE, (steps, dim)).astype(np.float32)

    segments = np.full((MAX_INSTANCES, 2), -1, np.float32)
    labels = np.full((MAX_INSTANCES,), -1, np.int32)
    for i, (start, end, cls, *_) in enumerate(instances):
        segments[i] = start, end
        labels[i] = cls
    amb = np.full((MAX_AMBIGUOUS, 2), -1, np.float32)
    if ambiguous:
        amb[:len(ambiguous)] = ambiguous
    return {"rgb": rgb.astype(np.float16), "flow": flow.astype(np.float16),
            "segments": segments, "labels": labels, "ambiguous": amb,
            "video": video_id(seed, index)}


def video_id(seed: int, index: int) -> str:
    """The ``video`` name of a generated video, THUMOS'14 style.

    Args:
        seed: the stream (``TRAIN_SEED``, ``TEST_SEED`` or another).
        index: the video's number within the stream.

    Returns:
        str: ``video_train_00012`` for the train seed, ``video_test_00003``
        for the test seed, ``video_s7_00003`` for another seed 7 (the index
        zero-padded to 5 digits).
    """
    split = {TRAIN_SEED: "train", TEST_SEED: "test"}.get(int(seed), f"s{int(seed)}")
    return f"video_{split}_{int(index):05d}"


# ------------------------------------------------------------- reading records

def valid_instances(record: dict) -> tuple[np.ndarray, np.ndarray]:
    """The instances of a record without the padding rows.

    Args:
        record: a record with ``segments`` (rows, 2) and ``labels`` (rows,),
            padding labelled -1.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(segments, labels)``: float32
        (K, 2) start and end in seconds, int32 (K,) class indices.
    """
    labels = np.asarray(record["labels"])
    keep = labels >= 0
    return np.asarray(record["segments"], np.float32)[keep], labels[keep].astype(np.int32)


def valid_ambiguous(record: dict) -> np.ndarray:
    """The ambiguous segments of a record without the padding rows.

    Args:
        record: a record with ``ambiguous`` (rows, 2) seconds, padding rows
            ending below 0.

    Returns:
        np.ndarray: float32 (A, 2) start and end in seconds.
    """
    amb = np.asarray(record["ambiguous"], np.float32)
    return amb[amb[:, 1] >= 0]


def step_mask(intervals: np.ndarray, steps: int) -> np.ndarray:
    """Which steps have their centre inside one of ``intervals``.

    Args:
        intervals: (K, 2) start and end in seconds; rows ending below 0 are
            padding and ignored.
        steps: number of steps; step t's centre is ``(t + 0.5) /
            FEATURE_RATE`` seconds.

    Returns:
        np.ndarray: bool (steps,), True where the centre lies in some
        ``[start, end)``.
    """
    centre = (np.arange(steps) + 0.5) / FEATURE_RATE
    intervals = np.asarray(intervals, np.float64).reshape(-1, 2)
    intervals = intervals[intervals[:, 1] >= 0]
    inside = (centre[:, None] >= intervals[None, :, 0]) & (centre[:, None] < intervals[None, :, 1])
    return inside.any(1)


def step_targets(segments: np.ndarray, labels: np.ndarray, steps: int) -> np.ndarray:
    """Per-step class targets of a record's instances.

    Args:
        segments: (K, 2) start and end in seconds.
        labels: (K,) class indices; rows labelled -1 are padding and
            ignored.
        steps: number of steps; step t's centre is ``(t + 0.5) /
            FEATURE_RATE`` seconds.

    Returns:
        np.ndarray: int32 (steps,): the class of the instance whose
        ``[start, end)`` holds each step's centre (the later row where two
        do), ``BACKGROUND`` (= ``NUM_CLASSES``) outside every instance.
    """
    centre = (np.arange(steps) + 0.5) / FEATURE_RATE
    out = np.full(steps, BACKGROUND, np.int32)
    for (start, end), label in zip(np.asarray(segments), np.asarray(labels)):
        if label >= 0:
            out[(centre >= start) & (centre < end)] = label
    return out


# ------------------------------------------------------------- linear probe

def probe_accuracy(train: Sequence[dict], test: Sequence[dict],
                   streams: Sequence[str] = ("rgb", "flow")) -> dict:
    """Fit a least-squares linear per-step classifier (one-hot targets over
    20 classes + background, with a bias) on the steps of ``train`` records
    and score it on ``test`` (steps inside ambiguous segments left out).

    Args:
        train: records to fit on (the layout of ``generate_video``).
        test: records to score on.
        streams: which streams' features to concatenate, e.g. ``("rgb",)``.

    Returns:
        dict: ``accuracy`` (over all scored test steps),
        ``background_share`` (the share of those steps that are
        background: what always answering background scores) and
        ``action_accuracy`` (over the steps of instances only), each a
        float in [0, 1].
    """
    def design(records):
        xs, ys = [], []
        for r in records:
            x = np.concatenate([np.asarray(r[s], np.float32) for s in streams], 1)
            y = step_targets(r["segments"], r["labels"], len(x))
            keep = ~step_mask(r["ambiguous"], len(x))
            xs.append(x[keep])
            ys.append(y[keep])
        x = np.concatenate(xs)
        return np.concatenate([x, np.ones((len(x), 1), np.float32)], 1), np.concatenate(ys)

    x, y = design(train)
    x = x.astype(np.float64)
    # Normal equations (a tiny ridge keeps them solvable): one small solve.
    weights = np.linalg.solve(x.T @ x + 1e-6 * np.eye(x.shape[1]),
                              x.T @ np.eye(NUM_CLASSES + 1)[y])
    x, y = design(test)
    guess = np.argmax(x @ weights, 1)
    action = y != BACKGROUND
    return {"accuracy": float(np.mean(guess == y)),
            "background_share": float(np.mean(~action)),
            "action_accuracy": float(np.mean(guess[action] == y[action]))}


# ------------------------------------------------------------- TFDS builder

def record_features(tfds, steps: int, dim: int):
    """The TFDS features of one video's record (shared by every builder of
    feature sequences): both streams (steps, dim) float16, the padded
    instances, labels and Ambiguous segments, and the video's id.

    Args:
        tfds: the ``tensorflow_datasets`` module (``errors.import_tfds()``).
        steps: feature steps per video.
        dim: values per stream per step.

    Returns:
        tfds.features.FeaturesDict: ``rgb``, ``flow``, ``segments``,
        ``labels``, ``ambiguous`` (the shapes of ``generate_video``'s
        record) and ``video`` (text).
    """
    tensor = tfds.features.Tensor
    return tfds.features.FeaturesDict({
        "rgb": tensor(shape=(steps, dim), dtype=np.float16),
        "flow": tensor(shape=(steps, dim), dtype=np.float16),
        "segments": tensor(shape=(MAX_INSTANCES, 2), dtype=np.float32),
        "labels": tensor(shape=(MAX_INSTANCES,), dtype=np.int32),
        "ambiguous": tensor(shape=(MAX_AMBIGUOUS, 2), dtype=np.float32),
        "video": tfds.features.Text()})


@functools.lru_cache(maxsize=None)
def _builder_class():
    """``ActionFeatures``, defined on first use so that the generator above
    needs numpy only."""
    from zoo.datasets.errors import import_tfds

    tfds = import_tfds()

    class ActionFeatures(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """``action_features``: record i of a split is
        ``generate_video(TRAIN_SEED or TEST_SEED, i, steps, dim)``, so a
        smaller build holds the first videos of a larger one of the same
        steps and dim. One TFDS config per (train, test, steps, dim). The
        metadata holds ``class_names``, ``feature_rate`` and the padding
        sizes."""

        name = "action_features"
        VERSION = tfds.core.Version("1.0.0")

        def __init__(self, *, train: int, test: int, steps: int = STEPS, dim: int = DIM,
                     **kwargs):
            self.sizes = (int(train), int(test), int(steps), int(dim))
            config = tfds.core.BuilderConfig(name=f"{train}_{test}_{steps}x{dim}")
            super().__init__(config=config, **kwargs)

        def _info(self):
            _, _, steps, dim = self.sizes
            return tfds.core.DatasetInfo(
                builder=self,
                description="Untrimmed two-stream feature sequences with planted action "
                            "instances (zoo.datasets.actions).",
                disable_shuffling=True,  # record i of a split is video i
                metadata=tfds.core.MetadataDict(
                    class_names=list(CLASS_NAMES), feature_rate=FEATURE_RATE,
                    max_instances=MAX_INSTANCES, max_ambiguous=MAX_AMBIGUOUS),
                features=record_features(tfds, steps, dim))

        def _split_generators(self, dl_manager):
            train, test, _, _ = self.sizes
            return {"train": self._generate_examples(TRAIN_SEED, train),
                    "test": self._generate_examples(TEST_SEED, test)}

        def _generate_examples(self, seed, count):
            _, _, steps, dim = self.sizes
            for i in range(count):
                yield i, generate_video(seed, i, steps, dim)

    return ActionFeatures


def __getattr__(name: str):
    if name == "ActionFeatures":
        return _builder_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

