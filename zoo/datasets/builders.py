"""TFDS builders for the built-in datasets, made from what ships with
installed packages (no network): two of real images with class labels,

* ``digits``: scikit-learn's ``load_digits`` (1,797 handwritten 8x8 grey
  digits, values 0-16, scaled to 0-255 as ``round(v * 255 / 16)``), classes
  "0".."9"; a fixed stratified split of 1,437 train / 360 test.
* ``lfw_subset``: scikit-image's ``lfw_subset`` (200 25x25 grey crops; the
  first 100 are faces, the next 100 are not: checked by eye. Its docstring
  says uint8 but it returns float64 in [0, 1], scaled here as
  ``round(x * 255)``), classes ``("non_face", "face")`` so label 1 is a face;
  a fixed stratified split of 160 train / 40 test.

Records are ``{"image": uint8 (H, W, 1), "label": int, "id": int}``; ``id``
is the row in the upstream array, so a record can be traced back to its
source. Images are stored as PNG bytes encoded with Pillow: TFDS would encode
numpy images with TensorFlow, which the array_record path otherwise avoids.
Splits are drawn by ``stratified_split`` with seed 0, so every build holds
the same examples in the same split (TFDS orders records by key, also fixed).

And one for depth, ``depth_scenes`` (``DepthScenes``): scenes rendered by
``zoo.datasets.scenes`` (textured with scikit-image's material-like images) with their
exact depth, the split fixed by the renderer's seeds.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from zoo.datasets.errors import import_tfds, require
from zoo.images import png_bytes

tfds = import_tfds()


def stratified_split(labels: Sequence[int], n_test: int,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible split with each class's share of the test set in proportion to its size.

    Each class gets ``n_test`` times its share of the examples, rounded
    down, and the largest remainders get the rounding; a class is always
    left at least one training example (so the test set may then be
    smaller than ``n_test``). Which examples of a class go to test is drawn
    with ``numpy.random.default_rng(seed)``.

    Args:
        labels: (N,) class label of each example.
        n_test: number of test examples, at most N.
        seed: seed of the draw.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(train, test)``, sorted int64
        indices into ``labels`` that together cover each index once.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_test / len(labels)
    quota = np.floor(exact).astype(int)
    by_remainder = np.argsort(-(exact - quota), kind="stable")
    quota[by_remainder[:n_test - quota.sum()]] += 1
    quota = np.minimum(quota, counts - 1)
    rng = np.random.default_rng(seed)
    test = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    test = np.sort(np.concatenate(test)).astype(np.int64)
    return np.setdiff1d(np.arange(len(labels)), test), test


def features(class_names: Sequence[str], shape=(None, None, 3)):
    """The record layout shared by the image classification builders.

    Args:
        class_names: names of the classes, label i naming ``class_names[i]``.
        shape: image shape ``(H, W, C)``; ``None`` for a side that varies.

    Returns:
        tfds.features.FeaturesDict: ``image`` (an ``Image`` feature of
        ``shape``), ``label`` (a ``ClassLabel`` of ``class_names``) and
        ``id`` (int64).
    """
    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=shape),
        "label": tfds.features.ClassLabel(names=list(class_names)),
        "id": np.int64,
    })


class _ArrayBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A dataset held as one grey uint8 array plus labels, split once."""

    VERSION = tfds.core.Version("1.0.0")
    CLASS_NAMES: tuple[str, ...] = ()
    SHAPE: tuple[int, int, int] = (0, 0, 1)
    N_TEST = 0
    DESCRIPTION = ""

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _info(self):
        # builder=self: defined outside the tfds package, TFDS cannot find
        # metadata files for it by module path.
        return tfds.core.DatasetInfo(builder=self, description=self.DESCRIPTION,
                                     features=features(self.CLASS_NAMES, self.SHAPE),
                                     supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        images, labels = self._load()
        train, test = stratified_split(labels, self.N_TEST, seed=0)
        return {"train": self._generate_examples(images, labels, train),
                "test": self._generate_examples(images, labels, test)}

    def _generate_examples(self, images, labels, ids):
        for i in ids:
            yield int(i), {"image": png_bytes(images[i]), "label": int(labels[i]), "id": int(i)}


class Digits(_ArrayBuilder, skip_registration=True):
    """TFDS builder of ``digits``: scikit-learn's ``load_digits`` as uint8 (8, 8, 1)
    images, classes "0".."9", split 1,437 train / 360 test (see the module
    docstring). Construct it with the usual TFDS builder arguments
    (``data_dir``, ``file_format``); ``zoo.datasets.prepare("digits")``
    does this for you."""

    name = "digits"
    CLASS_NAMES = tuple(str(d) for d in range(10))
    SHAPE = (8, 8, 1)
    N_TEST = 360
    DESCRIPTION = "scikit-learn's load_digits: 1,797 handwritten 8x8 digits (UCI optdigits)."

    def _load(self):
        datasets = require("sklearn.datasets")
        digits = datasets.load_digits()
        return np.round(digits.images * (255 / 16)).astype(np.uint8), digits.target


class LfwSubset(_ArrayBuilder, skip_registration=True):
    """TFDS builder of ``lfw_subset``: scikit-image's 200 uint8 (25, 25, 1) crops,
    classes ``("non_face", "face")``, split 160 train / 40 test (see the
    module docstring). Construct it with the usual TFDS builder arguments
    (``data_dir``, ``file_format``); ``zoo.datasets.prepare("lfw_subset")``
    does this for you."""

    name = "lfw_subset"
    CLASS_NAMES = ("non_face", "face")
    SHAPE = (25, 25, 1)
    N_TEST = 40
    DESCRIPTION = "scikit-image's lfw_subset: 100 face and 100 non-face 25x25 crops from LFW."

    def _load(self):
        from skimage import data
        images = data.lfw_subset()
        labels = np.r_[np.ones(100, np.int64), np.zeros(100, np.int64)]  # faces first
        return np.round(images * 255).astype(np.uint8), labels


class DepthScenes(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """``depth_scenes``: scenes rendered by ``zoo.datasets.scenes`` with exact
    per-pixel depth. Records are ``{"image": uint8 (H, W, 3) PNG, "depth":
    float32 (H, W) metres (zlib-compressed Tensor), "id": int}``; record i
    of a split is scene i (``id``): ``render_example(TRAIN_SEED, i)`` in
    train, ``render_example(TEST_SEED, i)`` in test. A smaller build holds the first
    scenes of a larger one of the same aspect ratio. One TFDS config per
    (train, test, height, width), named ``"{train}_{test}_{height}x{width}"``.

    Args:
        train: number of training scenes.
        test: number of test scenes.
        height: image height in pixels.
        width: image width in pixels.
        workers: processes rendering the scenes; 0 renders in this process
            (default: every available CPU from ``PARALLEL_FROM`` scenes per
            split, else 0).
        **kwargs: the TFDS builder's own arguments (``data_dir``,
            ``file_format``, ...).
    """

    name = "depth_scenes"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.1.0": "Material-like textures only, no photographs.",
                     "1.0.0": "Photographs on every surface."}
    TRAIN_SEED, TEST_SEED = 0, 1
    # Scenes below this many per split are rendered in this process: worker
    # processes take seconds to start.
    PARALLEL_FROM = 64

    def __init__(self, *, train: int, test: int, height: int, width: int,
                 workers: Optional[int] = None, **kwargs):
        self.sizes = (int(train), int(test), int(height), int(width))
        self.workers = workers
        config = tfds.core.BuilderConfig(name=f"{train}_{test}_{height}x{width}")
        super().__init__(config=config, **kwargs)

    def _info(self):
        _, _, height, width = self.sizes
        return tfds.core.DatasetInfo(
            builder=self,
            description="Procedurally rendered scenes (zoo.datasets.scenes) with exact depth.",
            disable_shuffling=True,  # record i of a split is scene i
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(height, width, 3)),
                "depth": tfds.features.Tensor(shape=(height, width), dtype=np.float32,
                                              encoding=tfds.features.Encoding.ZLIB),
                "id": np.int64}))

    def _split_generators(self, dl_manager):
        train, test, _, _ = self.sizes
        return {"train": self._generate_examples(self.TRAIN_SEED, train),
                "test": self._generate_examples(self.TEST_SEED, test)}

    def _generate_examples(self, seed, count):
        from zoo.datasets.scenes import encoded_examples

        _, _, height, width = self.sizes
        workers = self.workers
        if workers is None:
            workers = len(os.sched_getaffinity(0)) if count >= self.PARALLEL_FROM else 0
        for i, (png, depth) in enumerate(encoded_examples(seed, count, height, width, workers)):
            yield i, {"image": png, "depth": depth, "id": i}


BUILDERS = {"digits": Digits, "lfw_subset": LfwSubset}
