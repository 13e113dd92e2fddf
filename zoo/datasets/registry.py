"""Dataset names -> prepared, random-access data.

``prepare(name)`` builds a dataset once with TFDS (array_record files, no
TensorFlow) under the data directory and opens it with
``builder.as_data_source()``. Later calls find the finished files and only
open them. Names:

* ``"digits"``, ``"lfw_subset"``: the built-in classification datasets;
* ``"depth_scenes"``: rendered scenes with exact depth (``zoo.datasets.scenes``),
  3,000 train and 300 test at 192x256; ``"depth_scenes/N"`` the first N
  train scenes and max(4, N // 10) test scenes, ``"depth_scenes/N/HxW"`` at
  another resolution (H and W multiples of 32), e.g. a tiny build for tests;
* ``"action_features"``: untrimmed two-stream feature sequences with planted
  action instances (``zoo.datasets.actions``), 1,000 train and 200 test
  videos of 512 steps x 64 values per stream; ``"action_features/N"`` the
  first N train videos and max(4, N // 10) test videos,
  ``"action_features/N/TxD"`` with T steps (a multiple of 32) and D values
  per stream;
* ``"action_videos"``: rendered video files with planted actions, as the
  two-stream features ``zoo.video.features`` computes from them
  (``zoo.datasets.action_videos``), 200 train and 40 test videos of 32 s at
  96x128; ``"action_videos/N[/HxW]"`` as for ``depth_scenes``;
* ``"folder:/path/to/photos"``: one sub-folder of images per class;
* ``"tfds:NAME"``: any TensorFlow Datasets dataset (downloaded by TFDS).

TFDS writes a dataset into ``incomplete.*`` and renames it into place only
when complete, so an interrupted build is never read. A file lock per dataset
makes concurrent ``prepare`` calls (two training processes on one cache)
build once; under the lock, ``incomplete.*`` folders left by killed builds of
that dataset are removed.

The data directory is ``data_dir`` if given, else ``$ZOO_DATA``, else
``$ZOO_CACHE/datasets``, else ``~/.cache/zoo/datasets``.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from zoo.datasets.errors import DatasetError, import_tfds, require

DATASETS = ("digits", "lfw_subset", "depth_scenes", "action_features", "action_videos")
_FORMS = ("'digits', 'lfw_subset', 'depth_scenes[/N[/HxW]]' (rendered scenes with depth), "
          "'action_features[/N[/TxD]]' (feature sequences with action instances), "
          "'action_videos[/N[/HxW]]' (video files with action instances, as features), "
          "'folder:/path/to/images' (one sub-folder per class) "
          "or 'tfds:NAME' (a TensorFlow Datasets name)")
# depth_scenes: scenes per split and resolution of the full build. Rendering
# it took 5.3 CPU-minutes (about 3 minutes on two idle cores; 9.4 minutes of
# wall time on a machine loaded with other work) and it takes 768 MB: the
# depth maps are stored exactly, as zlib-compressed float32 (147 KB each).
SCENES = {"train": 3000, "test": 300, "height": 192, "width": 256}
_SCENES_NAME = re.compile(r"depth_scenes(?:/(\d+)(?:/(\d+)x(\d+))?)?")
# action_features: videos per split, steps per video and values per stream of
# the full build: 180 MB, 38 CPU-seconds to generate and write (under three
# minutes of wall time on a machine busy with other work).
ACTIONS = {"train": 1000, "test": 200, "steps": 512, "dim": 64}
_ACTIONS_NAME = re.compile(r"action_features(?:/(\d+)(?:/(\d+)x(\d+))?)?")


# Training resolutions of the built-in datasets: digits are 8x8 and the
# lfw_subset crops 25x25, so upsampling them further buys nothing but time.
TRAIN_SIZES = {"digits": 96, "lfw_subset": 128}
NO_FLIP = {"digits"}


@dataclasses.dataclass(frozen=True)
class Data:
    """A prepared dataset. ``train``/``test`` are random-access sequences of
    records ``{"image": uint8 (H, W, C) with C in {1, 3}, "label": int, ...}``
    (TFDS data sources, picklable into grain's worker processes); for
    ``task == "depth"``, ``{"image": uint8 (H, W, 3), "depth": float32 (H, W)
    metres, ...}`` (no label, no classes); for ``task ==
    "action_localisation"``, the records of ``zoo.datasets.actions`` (feature
    sequences, no image) and its class names (20 for ``action_features``, 4
    for ``action_videos``).

    Attributes:
        name: the dataset's name (for ``folder:`` datasets,
            ``folder.name_of`` of its listing).
        train: the training records.
        test: the test records (a TFDS dataset's ``validation`` split when
            it has no ``test``).
        class_names: label i is ``class_names[i]``; empty for depth.
        path: the directory of the built files.
        image_size: a training resolution that suits the images (e.g. 96
            for 8x8 digits), or None for the model's own.
        flip: whether a mirrored image is still an example of its class.
        task: ``"classification"``, ``"depth"`` or ``"action_localisation"``.
        meta: what a training run records beside its own settings (for
            feature sequences ``feature_rate``, and for ``action_videos``
            ``video``: how the features were made).
    """
    name: str
    train: Sequence[dict]
    test: Sequence[dict]
    class_names: tuple[str, ...]
    path: Optional[Path] = None  # where the built files live
    # A training resolution that suits the images, when the model's own
    # would be wasteful (8x8 digits need no 224x224 input); None: the model's.
    image_size: Optional[int] = None
    # Whether a mirrored image is still an example of its class (a mirrored
    # digit is not).
    flip: bool = True
    # What the records are for: "classification" (a label), "depth" or
    # "action_localisation".
    task: str = "classification"
    # What a training run on it records beside its own settings (feature
    # sequences: their feature_rate, and for action_videos how the features
    # were made, "video").
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """The number of classes, ``len(class_names)``."""
        return len(self.class_names)


def resolve_data_dir(given: Union[str, os.PathLike, None] = None) -> Path:
    """Where datasets are built and cached.

    Args:
        given: an explicit directory; None looks at the environment.

    Returns:
        Path: ``given`` if not None, else ``$ZOO_DATA``, else
        ``$ZOO_CACHE/datasets``, else ``~/.cache/zoo/datasets`` (``~``
        expanded; the directory is not created).
    """
    if given is not None:
        return Path(given).expanduser()
    if os.environ.get("ZOO_DATA"):
        return Path(os.environ["ZOO_DATA"]).expanduser()
    return Path(os.environ.get("ZOO_CACHE") or "~/.cache/zoo").expanduser() / "datasets"


def prepare(name: str, data_dir: Union[str, os.PathLike, None] = None, *,
            test_fraction: float = 0.2) -> Data:
    """Build ``name`` if needed and open it.

    The first call builds the dataset's array_record files under the data
    directory (under a file lock, so concurrent calls build once); later
    calls only open them.

    Args:
        name: ``"digits"``, ``"lfw_subset"``, ``"depth_scenes[/N[/HxW]]"``,
            ``"action_features[/N[/TxD]]"``, ``"action_videos[/N[/HxW]]"``,
            ``"folder:PATH"`` or ``"tfds:NAME"`` (see the module docstring).
        data_dir: the data directory (default: ``resolve_data_dir()``).
        test_fraction: share of the images held out for testing in
            ``folder:`` datasets without train/test sub-folders, in (0, 1).

    Returns:
        Data: the train and test records with their class names, task and
        training hints.

    Raises:
        DatasetError: for a name that is not a string or not one of these
            forms (with a suggestion when one is close), sizes out of range,
            an unusable folder, a TFDS dataset that is unknown, lacks an
            image and a class label feature, has images of other than 1 or
            3 channels or lacks a train and a test (or validation) split,
            or a call from a build worker process that is starting up.
        ImportError: when the ``zoo[train]`` extra is not installed.

    Example:
        ::

            from zoo.datasets import prepare
            data = prepare("digits")                 # built once, then opened
            print(data.num_classes, len(data.train), len(data.test))   # 10 1437 360
    """
    root = resolve_data_dir(data_dir)
    if not isinstance(name, str):
        raise DatasetError(f"dataset name {name!r}: expected a string, one of {_FORMS}")
    if dataset_task(name) == "depth":
        return _prepare_scenes(name, root)
    if dataset_task(name) == "action_localisation":
        if name == "action_videos" or name.startswith("action_videos/"):
            from zoo.datasets.action_videos import prepare_videos
            return prepare_videos(name, root)
        return _prepare_actions(name, root)
    if name in DATASETS:
        from zoo.datasets.builders import BUILDERS
        builder = BUILDERS[name](data_dir=os.fspath(root), file_format="array_record")
        return dataclasses.replace(_open(builder, name, "image", "label"),
                                   image_size=TRAIN_SIZES[name], flip=name not in NO_FLIP)
    if name.startswith("folder:"):
        from zoo.datasets import folder
        listing = folder.scan(name[len("folder:"):], test_fraction=test_fraction)
        builder = folder.ImageFolder(listing=listing, data_dir=os.fspath(root),
                                     file_format="array_record")
        return _open(builder, folder.name_of(listing), "image", "label")
    if name.startswith("tfds:"):
        return _prepare_tfds(name, root)
    raise DatasetError(f"unknown dataset {name!r}{_suggest(name)}; valid forms: {_FORMS}")


def dataset_task(name: str) -> str:
    """The task a dataset name's records serve ("classification", "depth"
    or "action_localisation", as in ``ModelSpec.task``), known from the name
    alone: nothing is built or read, so a model/data mismatch can be refused
    first.

    Args:
        name: a dataset name as ``prepare`` takes it; anything that is not
            a depth or action dataset's name counts as classification.

    Returns:
        str: ``"depth"`` for ``depth_scenes[/...]``,
        ``"action_localisation"`` for ``action_features[/...]`` and
        ``action_videos[/...]``, else ``"classification"``.
    """
    if isinstance(name, str) and (name == "depth_scenes" or name.startswith("depth_scenes/")):
        return "depth"
    if isinstance(name, str) and any(name == n or name.startswith(n + "/")
                                     for n in ("action_features", "action_videos")):
        return "action_localisation"
    return "classification"


def _sized(name: str, pattern, defaults: dict, dims: tuple[str, str], forms: str,
           unit: str) -> tuple[dict, bool]:
    """A built-in dataset's ``NAME[/N[/AxB]]`` as its sizes: N training
    examples (and max(4, N // 10) test ones), ``dims`` = (A, B). Also
    whether A and B were given."""
    match = pattern.fullmatch(name)
    if not match:
        raise DatasetError(f"{name}: expected {forms}")
    train, a, b = match.groups()
    size = dict(defaults)
    if train is not None:
        size.update(train=int(train), test=max(4, int(train) // 10))
        if size["train"] < 1:
            raise DatasetError(f"{name}: needs at least 1 training {unit}")
    if a is not None:
        size.update({dims[0]: int(a), dims[1]: int(b)})
    return size, a is not None


def scenes_size(name: str) -> dict:
    """The sizes a ``depth_scenes`` name asks for.

    Args:
        name: ``"depth_scenes"``, ``"depth_scenes/N"`` or
            ``"depth_scenes/N/HxW"``.

    Returns:
        dict: ``{"train", "test", "height", "width"}``: ``SCENES`` with N
        train and max(4, N // 10) test scenes when N is given, and H x W
        when given.

    Raises:
        DatasetError: when ``name`` has none of these forms, N is 0, or H
            or W is not a multiple of 32 in [32, 2048].
    """
    size, given = _sized(name, _SCENES_NAME, SCENES, ("height", "width"),
                         "'depth_scenes', 'depth_scenes/N' (N train scenes) or "
                         "'depth_scenes/N/HxW' (e.g. 'depth_scenes/16/64x96')", "scene")
    if given and not all(32 <= v <= 2048 and v % 32 == 0
                         for v in (size["height"], size["width"])):
        raise DatasetError(f"{name}: {size['height']}x{size['width']}: height and width must be "
                           f"multiples of 32 between 32 and 2048 (depth models take whole "
                           f"images at multiples of 32)")
    return size


def _prepare_scenes(name: str, root: Path) -> Data:
    from zoo.datasets.builders import DepthScenes

    size = scenes_size(name)
    builder = DepthScenes(**size, data_dir=os.fspath(root), file_format="array_record")
    return dataclasses.replace(_open(builder, name, "image", None),
                               image_size=size["height"], task="depth")


def actions_size(name: str) -> dict:
    """The sizes an ``action_features`` name asks for.

    Args:
        name: ``"action_features"``, ``"action_features/N"`` or
            ``"action_features/N/TxD"``.

    Returns:
        dict: ``{"train", "test", "steps", "dim"}``: ``ACTIONS`` with N
        train and max(4, N // 10) test videos when N is given, and T steps
        of D values per stream when given.

    Raises:
        DatasetError: when ``name`` has none of these forms, N is 0, T is
            not a multiple of 32 in [64, 8192], or D is not in [4, 2048].
    """
    size, given = _sized(name, _ACTIONS_NAME, ACTIONS, ("steps", "dim"),
                         "'action_features', 'action_features/N' (N train videos) or "
                         "'action_features/N/TxD' (e.g. 'action_features/16/128x16')", "video")
    if given and not (64 <= size["steps"] <= 8192 and size["steps"] % 32 == 0):
        raise DatasetError(f"{name}: {size['steps']} steps: must be a multiple of 32 between 64 "
                           f"and 8192 (temporal pyramids halve it up to five times)")
    if given and not 4 <= size["dim"] <= 2048:
        raise DatasetError(f"{name}: {size['dim']} values per stream: must be between 4 and 2048")
    return size


def _prepare_actions(name: str, root: Path) -> Data:
    from zoo.datasets.actions import CLASS_NAMES, TASK, ActionFeatures

    builder = ActionFeatures(**actions_size(name), data_dir=os.fspath(root),
                             file_format="array_record")
    return dataclasses.replace(_open(builder, name, "rgb", None), class_names=CLASS_NAMES,
                               flip=False, task=TASK,
                               meta={"feature_rate": float(builder.info.metadata["feature_rate"])})


def _suggest(name: str) -> str:
    if Path(name).expanduser().is_dir():
        return f" (a folder: did you mean 'folder:{name}'?)"
    close = difflib.get_close_matches(name.lower(), DATASETS + ("folder:", "tfds:"), n=2,
                                      cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _prepare_tfds(name: str, root: Path) -> Data:
    tfds = import_tfds()
    tfds_name = name[len("tfds:"):]
    try:
        builder = tfds.builder(tfds_name, data_dir=os.fspath(root), file_format="array_record")
    except tfds.core.registered.DatasetNotFoundError:
        close = difflib.get_close_matches(tfds_name.split("/")[0].split(":")[0],
                                          tfds.list_builders(with_community_datasets=False), n=3)
        hint = f" (did you mean {', '.join(repr('tfds:' + c) for c in close)}?)" if close else ""
        raise DatasetError(f"{name}: TensorFlow Datasets has no dataset {tfds_name!r}{hint}; see "
                           f"tfds.list_builders() or the TFDS catalog for names") from None
    except ValueError:  # TFDS could not parse the name
        raise DatasetError(f"{name}: not a TFDS dataset name; expected "
                           f"'tfds:NAME[/CONFIG][:VERSION]', e.g. 'tfds:mnist'") from None
    feats = builder.info.features
    image_key = _feature(feats, "image", tfds.features.Image)
    label_key = _feature(feats, "label", tfds.features.ClassLabel)
    if image_key is None or label_key is None:
        found = ", ".join(f"{k}: {type(v).__name__}" for k, v in feats.items())
        raise DatasetError(f"{name}: needs one image feature (tfds.features.Image) and one "
                           f"label feature (tfds.features.ClassLabel); it has {found}")
    channels = feats[image_key].shape[-1]
    if channels not in (1, 3):
        raise DatasetError(f"{name}: images have {channels} channels; zoo.datasets reads grey "
                           f"(1) or RGB (3) images")
    return _open(builder, name, image_key, label_key)


def _feature(feats, preferred: str, kind) -> Optional[str]:
    """``preferred`` if it has the right kind, else the only feature that does."""
    feats = dict(feats.items())
    if isinstance(feats.get(preferred), kind):
        return preferred
    matches = [k for k, v in feats.items() if isinstance(v, kind)]
    return matches[0] if len(matches) == 1 else None


def _open(builder, name: str, image_key: str, label_key: Optional[str]) -> Data:
    """Build and open; ``label_key`` None: records without labels."""
    _build(builder, name)
    splits = builder.info.splits
    test_split = next((s for s in ("test", "validation") if s in splits), None)
    if "train" not in splits or test_split is None:
        raise DatasetError(f"{name}: needs a 'train' split and a 'test' or 'validation' split; "
                           f"it has {sorted(splits)}")
    sources = builder.as_data_source()
    train, test = sources["train"], sources[test_split]
    if label_key is not None and (image_key, label_key) != ("image", "label"):
        train, test = _Renamed(train, image_key, label_key), _Renamed(test, image_key, label_key)
    class_names = () if label_key is None else tuple(builder.info.features[label_key].names)
    return Data(name, train, test, class_names, Path(os.fspath(builder.data_path)))


def _refuse_in_starting_worker(name: str) -> None:
    """Builds render in spawned worker processes, and a spawned worker
    starts by running the parent's main script again: a script that
    prepares a dataset at top level would, in each worker, wait forever
    for the build lock its parent holds. multiprocessing marks a process
    still importing its parent's main module with ``_inheriting``."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise DatasetError(
            f"dataset {name!r} was prepared while a build worker process was starting, which "
            f"runs the main script again: put the script's top-level code under "
            f"`if __name__ == '__main__':`")


def _build(builder, name: str) -> None:
    """download_and_prepare once, under a per-dataset file lock."""
    filelock = require("filelock")
    data_path = Path(os.fspath(builder.data_path))
    if data_path.exists():
        return
    _refuse_in_starting_worker(name)
    lock_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{builder.name}-{builder.builder_config.name}"
                       if builder.builder_config else builder.name)
    lock_dir = Path(os.fspath(builder.data_dir_root)) / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(os.fspath(lock_dir / f"{lock_name}.lock")):
        if data_path.exists():  # another process built it while we waited:
            builder.info.read_from_directory(os.fspath(data_path))  # its splits, sizes
            return
        # Holding the lock, no live build of this dataset exists: these were killed.
        for stale in data_path.parent.glob(f"incomplete.*_{data_path.name}"):
            shutil.rmtree(stale, ignore_errors=True)
        builder.download_and_prepare(file_format="array_record")


@dataclasses.dataclass(frozen=True)
class _Renamed:
    """A data source whose image/label features carry other names."""
    source: Any
    image_key: str
    label_key: str

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        record = dict(self.source[index])
        record["image"] = record.pop(self.image_key)
        record["label"] = record.pop(self.label_key)
        return record
