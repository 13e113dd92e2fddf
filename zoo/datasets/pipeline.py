"""grain input pipelines over a prepared ``Data``: endless shuffled,
augmented training batches, and one pass of padded evaluation batches.

Training (``train_batches``) is one grain chain::

    MapDataset.source(train).seed(seed)
      .shuffle()        # a new permutation per epoch: position p reads epoch p // N
      .repeat()         # endless; shuffle derives each epoch's seed from (seed, epoch)
      .random_map(TrainTransform)   # rng from (seed, stream position): worker-independent
      [shard_index::shard_count]    # this host's share of every global batch
      .batch(batch_size // shard_count)
      .to_iter_dataset(ReadOptions)
      .mp_prefetch(MultiprocessingOptions(num_workers))

The stream is continuous across epochs: each run of N = len(train) stream
positions is one epoch holding every example exactly once, and the batch that
straddles an epoch boundary carries the last examples of one epoch and the
first of the next (nothing dropped). ``steps_per_epoch`` is ``N //
batch_size``. Each element's randomness depends only on (seed, position), so
the same seed gives bit-identical batches whatever ``num_workers`` is.

The iterator's ``get_state()`` is a small dict of ints and lists of ints
(``json.dumps`` it as is); ``set_state()`` on an iterator of the same
pipeline (same arguments, same ``num_workers``) continues with exactly the
batches the original would have produced.

Evaluation (``eval_batches``) reads a split in order and runs
``zoo.preprocess`` (the inference preprocessing) on each batch in the main
process, padding the last batch with ``mask`` False so all batches have one
shape (one compile).

Depth data (``Data.task == "depth"``) goes through the same two chains with
other per-example work: ``depth_train_batches`` crops and flips image and
depth together (``augment.DepthTransform``); ``depth_eval_batches`` passes
whole images at their own size, normalised, with their depth, valid-pixel
mask and the padding ``mask``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from zoo.datasets.augment import DepthTransform, TrainTransform, normalise, valid_depth
from zoo.datasets.errors import DatasetError, require
from zoo.datasets.registry import Data

MIN_IMAGE_SIZE = 32


def _check_batch_size(data: Data, batch_size: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise DatasetError(f"batch_size={batch_size!r}: expected a positive integer")
    if batch_size > len(data.train):
        raise DatasetError(f"batch_size={batch_size} is larger than {data.name}'s train split "
                           f"({len(data.train)} examples); use batch_size <= {len(data.train)}")


def steps_per_epoch(data: Data, batch_size: int) -> int:
    """Batches per pass over the train split.

    Args:
        data: a prepared dataset.
        batch_size: the global batch size, 1 to ``len(data.train)``.

    Returns:
        int: ``len(data.train) // batch_size``, at least 1 (the remainder
        carries into the next epoch's first batch).

    Raises:
        DatasetError: when ``batch_size`` is not a positive integer or is
            larger than the train split.
    """
    _check_batch_size(data, batch_size)
    return max(1, len(data.train) // batch_size)


def train_batches(data: Data, batch_size: int, image_size: int, mean: Sequence[float],
                  std: Sequence[float], seed: int = 0, *, augment: bool = True,
                  flip: bool = True, min_scale: float = 0.25, num_workers: int = 0,
                  shard_index: int = 0, shard_count: int = 1, interpolation: str = "bilinear"):
    """Endless shuffled, augmented training batches of an image classification dataset.

    The stream and its state are described in the module docstring: each
    epoch holds every example once, and the same ``seed`` gives the same
    batches whatever ``num_workers`` is.

    Args:
        data: a prepared classification dataset.
        batch_size: the global batch; this host gets ``batch_size //
            shard_count`` of each. At most ``len(data.train)``.
        image_size: output side S in pixels, at least ``MIN_IMAGE_SIZE``.
        mean: three per-channel means in 0-255 units (``spec.mean``).
        std: three per-channel standard deviations in 0-255 units
            (``spec.std``).
        seed: non-negative seed of the shuffle and of every augmentation.
        augment: random resized crop (area in ``[min_scale, 1]``) and, if
            ``flip``, random mirroring; without it the whole image is
            resized and nothing is random.
        flip: mirror left-right with probability 1/2 (with ``augment``).
        min_scale: smallest crop area fraction, in (0, 1].
        num_workers: loader processes (0: in this process); with workers,
            run from under ``if __name__ == "__main__":`` (they are
            spawned).
        shard_index: this host's index, 0 to ``shard_count - 1``.
        shard_count: number of hosts sharing each global batch; must
            divide ``batch_size``.
        interpolation: ``"bilinear"`` or ``"bicubic"``; pass
            ``spec.interpolation`` so the resize matches ``zoo.preprocess``.

    Returns:
        grain.IterDataset: ``iter()`` it for a checkpointable
        ``DatasetIterator`` of batches ``{"image": float32 (B, S, S, 3),
        "label": int32 (B,)}``, B = ``batch_size // shard_count``;
        ``image`` is ``(x - mean) / std`` in 0-255 units, grey repeated to
        RGB.

    Raises:
        DatasetError: when an argument is out of the ranges above.
        ImportError: when grain is not installed (the ``zoo[train]`` extra).

    Example:
        ::

            spec = zoo.get_spec("mobilenet_v2")
            data = zoo.datasets.prepare("digits")
            it = iter(zoo.datasets.train_batches(data, 32, 96, spec.mean, spec.std, seed=0))
            batch = next(it)                  # batch["image"]: (32, 96, 96, 3)
            state = it.get_state()            # JSON-serialisable; it.set_state(state) resumes
    """
    _check_train_args(data, batch_size, image_size, min_scale, interpolation, seed, num_workers,
                      shard_index, shard_count)
    transform = TrainTransform(int(image_size), tuple(map(float, mean)), tuple(map(float, std)),
                               augment=augment, flip=flip, min_scale=float(min_scale),
                               interpolation=interpolation)
    return _stream(data, batch_size, transform, seed, num_workers, shard_index, shard_count)


def depth_train_batches(data: Data, batch_size: int, image_size: int, mean: Sequence[float],
                        std: Sequence[float], seed: int = 0, *, augment: bool = True,
                        flip: bool = True, min_scale: float = 0.25, num_workers: int = 0,
                        shard_index: int = 0, shard_count: int = 1,
                        interpolation: str = "bilinear", photometric: float = 0.0):
    """``train_batches`` for depth data: endless batches ``{"image": float32
    (B, S, S, 3), "depth": float32 (B, S, S) metres (0 where unknown),
    "valid": bool (B, S, S)}``. ``augment``: a random square crop (area in
    ``[min_scale, 1]`` of the largest square) and, if ``flip``, mirroring,
    the same for image and depth, and with ``photometric`` > 0 random
    lighting, colour, blur and noise of that strength (``zoo.datasets.augment``);
    without it the centre square. The other
    arguments, the stream and its state are those of ``train_batches``.

    Args:
        data: a prepared depth dataset (``data.task == "depth"``).
        batch_size: the global batch, at most ``len(data.train)``.
        image_size: output side S in pixels, at least ``MIN_IMAGE_SIZE``.
        mean: three per-channel means in 0-255 units.
        std: three per-channel standard deviations in 0-255 units.
        seed: non-negative seed of the shuffle and of every augmentation.
        augment: random square crop, flip and photometric jitter; False
            takes the centre square and draws nothing.
        flip: mirror image and depth together with probability 1/2.
        min_scale: smallest crop area, as a fraction of the largest square,
            in (0, 1].
        num_workers: loader processes (0: in this process).
        shard_index: this host's index, 0 to ``shard_count - 1``.
        shard_count: number of hosts sharing each global batch.
        interpolation: ``"bilinear"`` or ``"bicubic"`` (the image only;
            depth is resized with nearest neighbour).
        photometric: strength of ``augment.photometric_jitter`` in [0, 1]
            (0: off).

    Returns:
        grain.IterDataset: batches ``{"image": float32 (B, S, S, 3),
        "depth": float32 (B, S, S), "valid": bool (B, S, S)}``, B =
        ``batch_size // shard_count``.

    Raises:
        DatasetError: when ``data`` is not a depth dataset, or an argument
            is out of the ranges above.
        ImportError: when grain is not installed (the ``zoo[train]`` extra).
    """
    if getattr(data, "task", "classification") != "depth":
        raise DatasetError(f"{data.name} has no depth maps; depth_train_batches needs a depth "
                           f"dataset such as 'depth_scenes'")
    _check_train_args(data, batch_size, image_size, min_scale, interpolation, seed, num_workers,
                      shard_index, shard_count)
    if not 0 <= photometric <= 1:
        raise DatasetError(f"photometric={photometric}: expected a strength in [0, 1]")
    transform = DepthTransform(int(image_size), tuple(map(float, mean)), tuple(map(float, std)),
                               augment=augment, flip=flip, min_scale=float(min_scale),
                               interpolation=interpolation, photometric=float(photometric))
    return _stream(data, batch_size, transform, seed, num_workers, shard_index, shard_count)


def _check_train_args(data, batch_size, image_size, min_scale, interpolation, seed, num_workers,
                      shard_index, shard_count) -> None:
    _check_batch_size(data, batch_size)
    if not isinstance(image_size, (int, np.integer)) or image_size < MIN_IMAGE_SIZE:
        raise DatasetError(f"image_size={image_size!r}: expected an integer >= {MIN_IMAGE_SIZE}")
    if not 0 < min_scale <= 1:
        raise DatasetError(f"min_scale={min_scale}: expected a crop area fraction in (0, 1]")
    if interpolation not in ("bilinear", "bicubic"):
        raise DatasetError(f"interpolation={interpolation!r}: expected 'bilinear' or 'bicubic'")
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise DatasetError(f"seed={seed!r}: expected a non-negative integer")
    if not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise DatasetError(f"num_workers={num_workers!r}: expected 0 (main process) or more")
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise DatasetError(f"shard_index={shard_index}, shard_count={shard_count}: expected "
                           f"0 <= shard_index < shard_count")
    if batch_size % shard_count:
        raise DatasetError(f"batch_size={batch_size} does not split over shard_count={shard_count} "
                           f"hosts; use a multiple of {shard_count}")


def _stream(data: Data, batch_size: int, transform, seed: int, num_workers: int,
            shard_index: int, shard_count: int):
    """The training chain of the module docstring around ``transform``."""
    grain = require("grain")
    ds = grain.MapDataset.source(data.train).seed(int(seed)).shuffle().repeat()
    ds = ds.random_map(transform)
    ds = ds[shard_index::shard_count].batch(batch_size // shard_count, drop_remainder=True)
    # Elements here are whole batches: keep the read-ahead to a couple of them.
    threads = 2 if num_workers == 0 else 1
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=2))
    if num_workers:
        _parse_absl_flags()
    return ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(num_workers)))


def _parse_absl_flags() -> None:
    """grain 0.2.18's worker start reads an absl flag, which raises unless
    absl flags were parsed (scripts not run by ``absl.app`` never parse
    them); mark them parsed, keeping their defaults. Later grain releases
    fall back to the default themselves."""
    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


@dataclasses.dataclass(frozen=True)
class _EvalBatch:
    spec: object  # zoo.ModelSpec or a model name
    batch_size: int

    def __call__(self, records: list) -> dict:
        from zoo.preprocess import preprocess
        n = len(records)
        x = np.asarray(preprocess([r["image"] for r in records], self.spec), np.float32)
        images = np.zeros((self.batch_size,) + x.shape[1:], np.float32)
        images[:n] = x
        labels = np.zeros(self.batch_size, np.int32)
        labels[:n] = [r["label"] for r in records]
        return {"image": images, "label": labels, "mask": np.arange(self.batch_size) < n}


def eval_batches(data: Data, split: str = "test", batch_size: int = 64, spec=None):
    """One ordered pass over ``split`` ("train" or "test") as batches
    ``{"image": float32 (B, S, S, 3), "label": int32 (B,), "mask": bool (B,)}``
    made by ``zoo.preprocess(images, spec)``; the last batch is padded with
    zeros and ``mask`` False. ``spec``: a ``zoo.ModelSpec`` (``zoo.get_spec(
    name, resolution=S)`` for size S) or a model name.

    Preprocessing runs in the main process, one batch ahead of the caller.

    Args:
        data: a prepared classification dataset.
        split: ``"train"`` or ``"test"``.
        batch_size: records per batch, > 0.
        spec: the model's ``zoo.ModelSpec`` or name; required.

    Returns:
        grain.IterDataset: one pass of batches ``{"image": float32 (B, S, S,
        3), "label": int32 (B,), "mask": bool (B,)}`` in record order, B =
        ``batch_size``.

    Raises:
        DatasetError: for another ``split``, a ``batch_size`` that is not a
            positive integer, or no ``spec``.
        ImportError: when grain is not installed (the ``zoo[train]`` extra).

    Example:
        ::

            data = zoo.datasets.prepare("digits")
            spec = zoo.get_spec("mobilenet_v2", resolution=96)
            model, variables = zoo.create("mobilenet_v2", num_classes=10)
            for batch in zoo.datasets.eval_batches(data, "test", 64, spec=spec):
                logits = model.apply(variables, batch["image"])[batch["mask"]]
    """
    source = _eval_source(data, split, batch_size)
    if spec is None:
        raise DatasetError("eval_batches needs spec= (a zoo.ModelSpec or model name) to "
                           "preprocess images as inference does")
    return _ordered(source, batch_size, _EvalBatch(spec, int(batch_size)))


def _eval_source(data: Data, split: str, batch_size: int):
    sources = {"train": data.train, "test": data.test}
    if split not in sources:
        raise DatasetError(f"split={split!r}: expected 'train' or 'test'")
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise DatasetError(f"batch_size={batch_size!r}: expected a positive integer")
    return sources[split]


def _ordered(source, batch_size: int, make_batch):
    """One ordered pass over ``source`` in lists of ``batch_size`` records,
    each turned into a batch by ``make_batch``."""
    grain = require("grain")
    ds = grain.MapDataset.source(source).batch(int(batch_size), batch_fn=list)
    ds = ds.map(make_batch)
    # One thread of the main process preprocesses the next batch while the
    # caller evaluates this one.
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=1, prefetch_buffer_size=2))


@dataclasses.dataclass(frozen=True)
class _DepthEvalBatch:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    batch_size: int

    def __call__(self, records: list) -> dict:
        n = len(records)
        first = np.asarray(records[0]["depth"])
        h, w = first.shape
        images = np.zeros((self.batch_size, h, w, 3), np.float32)
        depth = np.zeros((self.batch_size, h, w), np.float32)
        for i, r in enumerate(records):
            image = np.asarray(r["image"], np.float32)
            if image.ndim == 2:
                image = image[..., None]
            d = np.asarray(r["depth"], np.float32)
            if image.shape[:2] != (h, w) or d.shape != (h, w):
                raise DatasetError(f"record {i} of an evaluation batch is {image.shape[:2]} with "
                                   f"depth {d.shape}; depth evaluation needs one size "
                                   f"({h}, {w}) for every image and depth map")
            images[i] = normalise([image[..., c] for c in range(image.shape[-1])], self.mean,
                                  self.std)
            depth[i] = np.where(valid_depth(d), d, 0)
        return {"image": images, "depth": depth, "valid": depth > 0,
                "mask": np.arange(self.batch_size) < n}


def depth_eval_batches(data: Data, split: str = "test", batch_size: int = 16, *,
                       mean: Sequence[float], std: Sequence[float]):
    """One ordered pass over a depth dataset's ``split`` as batches
    ``{"image": float32 (B, H, W, 3) (x - mean) / std at the images' own
    size, "depth": float32 (B, H, W) metres (0 where unknown), "valid": bool
    (B, H, W), "mask": bool (B,)}``; the last batch is padded with zeros and
    ``mask`` False. Every image must have the same size (a depth model takes
    it whole, so H and W should suit the model, e.g. multiples of 32).

    Args:
        data: a prepared depth dataset (``data.task == "depth"``).
        split: ``"train"`` or ``"test"``.
        batch_size: records per batch, > 0.
        mean: three per-channel means in 0-255 units.
        std: three per-channel standard deviations in 0-255 units.

    Returns:
        grain.IterDataset: one pass of the batches above, in record order.
        A batch whose images differ in size raises ``DatasetError`` when it
        is read.

    Raises:
        DatasetError: for another ``split``, a ``batch_size`` that is not a
            positive integer, or a dataset without depth maps.
        ImportError: when grain is not installed (the ``zoo[train]`` extra).
    """
    source = _eval_source(data, split, batch_size)
    if getattr(data, "task", "classification") != "depth":
        raise DatasetError(f"{data.name} has no depth maps; depth_eval_batches needs a depth "
                           f"dataset such as 'depth_scenes'")
    return _ordered(source, batch_size, _DepthEvalBatch(tuple(map(float, mean)),
                                                        tuple(map(float, std)), int(batch_size)))
