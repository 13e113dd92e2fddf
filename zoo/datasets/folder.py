"""``folder:PATH`` datasets: a folder of images with one sub-folder per class
(the ImageFolder layout), built into TFDS array_record files.

Two layouts are read::

    PATH/cat/1.jpg, PATH/dog/2.png, ...           # test split held out here
    PATH/train/cat/1.jpg, PATH/test/cat/9.jpg     # splits given ("val" or
                                                  # "validation" also name the test split)

Without given splits, a stratified ``test_fraction`` of each class (seed 0)
is held out. Class names are the sorted sub-folder names (of ``train/`` when
splits are given). Every image is decoded with Pillow at build time, so an
unreadable file fails the build naming the file. RGB JPEG and PNG files are
stored as they are; anything else (grey, palette, alpha, 16-bit, other
formats, EXIF-rotated photos) is converted to upright RGB and stored as PNG,
so every record decodes to uint8 (H, W, 3) whatever the file was.

The dataset's identity (its TFDS config name) hashes the folder's absolute
path, the split settings and the listing of its image files (relative name,
size, modification time): changing the folder builds a new dataset instead
of reading stale records.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
from pathlib import Path

from PIL import Image, ImageOps

from zoo.datasets.builders import features, stratified_split, tfds
from zoo.datasets.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff",
                  ".ppm", ".pgm", ".pbm")
TEST_DIRS = ("test", "val", "validation")


@dataclasses.dataclass(frozen=True)
class Listing:
    """What a folder holds: class names and, per split, (file, label) pairs.

    Attributes:
        root: the folder, absolute and resolved.
        class_names: sorted class sub-folder names; label i is
            ``class_names[i]``.
        splits: ``{"train": ..., "test": ...}``, each a tuple of
            ``(absolute Path, label)`` pairs.
        key: 12 hex digits of the SHA-256 of the root, the split settings
            and the file listing (names, sizes, modification times).
    """
    root: Path
    class_names: tuple[str, ...]
    splits: dict  # split name -> tuple of (absolute path, label)
    key: str  # hash of the root, settings and file listing

    @property
    def config_name(self) -> str:
        """The TFDS config name: the root's name, lower-cased with runs of other
        characters than ``a-z0-9`` as ``_``, then ``_`` and ``key``."""
        stem = re.sub(r"[^a-z0-9]+", "_", self.root.name.lower()).strip("_") or "root"
        return f"{stem}_{self.key}"


def _visible_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def _classes(root: Path, spec: str) -> dict[str, list[Path]]:
    """Class name -> its image files, checking the layout."""
    dirs = _visible_dirs(root)
    if len(dirs) < 2:
        loose = sum(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir())
        found = ", ".join(repr(d.name) for d in dirs) or "no sub-folders"
        raise DatasetError(
            f"{spec}: {root} holds {len(dirs)} class folder(s) ({found}) and {loose} loose "
            f"image(s); need at least 2 sub-folders, one per class, each holding that class's "
            f"images")
    classes = {d.name: _images(d) for d in dirs}
    for name, files in classes.items():
        if not files:
            raise DatasetError(
                f"{spec}: class folder {root / name} has no images ({', '.join(IMAGE_SUFFIXES)}); "
                f"add images to it or remove it")
    return classes


def scan(path: str, test_fraction: float = 0.2, seed: int = 0) -> Listing:
    """Read a folder's layout (not its pixels) into a ``Listing``.

    With ``train/`` and ``test/`` (or ``val/``, ``validation/``) sub-folders
    the splits are as given; otherwise ``stratified_split`` holds out
    ``round(test_fraction * N)`` of the N images (at least 1), each class
    keeping at least one for training. Hidden files and folders are skipped;
    images are found recursively by suffix (``IMAGE_SUFFIXES``).

    Args:
        path: the folder (``~`` expanded).
        test_fraction: share of the images held out for testing, in (0, 1);
            unused when the folder gives its splits.
        seed: seed of the held-out draw.

    Returns:
        Listing: class names, the (file, label) pairs of each split and the
        hash identifying this state of the folder.

    Raises:
        DatasetError: when ``path`` does not exist or is a file; a
            directory holds fewer than 2 class folders or a class folder no
            images; the test split has classes the train split lacks;
            ``test_fraction`` is outside (0, 1); or there are too few images
            to hold out any.
    """
    spec = f"folder:{path}"
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise DatasetError(f"{spec}: no such folder; give a directory with one sub-folder of "
                           f"images per class")
    if not root.is_dir():
        raise DatasetError(f"{spec}: {root} is a file, not a folder; give a directory with one "
                           f"sub-folder of images per class")
    test_dir = next((root / t for t in TEST_DIRS if (root / t).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        train = _classes(root / "train", spec)
        test = _classes(test_dir, spec)
        unknown = sorted(set(test) - set(train))
        if unknown:
            raise DatasetError(f"{spec}: {test_dir} has classes {unknown} that {root / 'train'} "
                               f"lacks; give both splits the same class folders")
        names = tuple(train)
        label = {n: i for i, n in enumerate(names)}
        splits = {"train": tuple((f, label[n]) for n, fs in train.items() for f in fs),
                  "test": tuple((f, label[n]) for n, fs in test.items() for f in fs)}
    else:
        if not 0 < test_fraction < 1:
            raise DatasetError(f"{spec}: test_fraction={test_fraction}; expected a fraction "
                               f"in (0, 1)")
        classes = _classes(root, spec)
        names = tuple(classes)
        pairs = [(f, i) for i, fs in enumerate(classes.values()) for f in fs]
        n_test = max(1, int(round(test_fraction * len(pairs))))
        train_ids, test_ids = stratified_split([y for _, y in pairs], n_test, seed=seed)
        if len(test_ids) == 0:
            raise DatasetError(f"{spec}: too few images to hold out a test split (each class "
                               f"keeps one for training); add images or give train/ and test/ "
                               f"folders")
        splits = {"train": tuple(pairs[i] for i in train_ids),
                  "test": tuple(pairs[i] for i in test_ids)}
    files = sorted({f for pairs in splits.values() for f, _ in pairs})
    stats = [(str(f.relative_to(root)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    members = {k: [(str(f.relative_to(root)), y) for f, y in v] for k, v in splits.items()}
    blob = json.dumps([str(root), test_fraction, seed, str(ImageFolder.VERSION), members, stats])
    return Listing(root, names, splits, hashlib.sha256(blob.encode()).hexdigest()[:12])


def encoded_image(path: Path, spec: str) -> bytes:
    """The bytes to store for one image file, after a full decode check.

    Args:
        path: the image file.
        spec: the dataset name to put in an error message
            (``"folder:PATH"``).

    Returns:
        bytes: the file itself when it is an upright RGB JPEG or PNG, else
        a PNG of its pixels converted to RGB and rotated upright by its
        EXIF orientation.

    Raises:
        DatasetError: when Pillow cannot read or fully decode the file.
    """
    try:
        raw = path.read_bytes()
        with Image.open(io.BytesIO(raw)) as image:
            image.load()  # decodes every pixel: truncated files fail here
            upright = image.getexif().get(0x0112, 1) == 1
            if image.format in ("JPEG", "PNG") and image.mode == "RGB" and upright:
                return raw
            rgb = ImageOps.exif_transpose(image).convert("RGB")
    except Exception as e:  # Pillow raises many types for bad files
        raise DatasetError(f"{spec}: cannot read image {path} ({type(e).__name__}: {e}); "
                           f"fix or remove the file") from None
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG")
    return buffer.getvalue()


class ImageFolder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """TFDS builder of a ``folder:PATH`` dataset: one config per folder state
    (``Listing.config_name``), records ``{"image": (H, W, 3) JPEG or PNG,
    "label": int, "id": int}`` with ``id`` the index within its split.

    Args:
        listing: the folder's layout, from ``scan``.
        **kwargs: the TFDS builder's own arguments (``data_dir``,
            ``file_format``, ...).
    """

    name = "folder"
    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, listing: Listing, **kwargs):
        self._listing = listing
        super().__init__(config=tfds.core.BuilderConfig(name=listing.config_name), **kwargs)

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, description=f"Images under {self._listing.root}",
                                     features=features(self._listing.class_names),
                                     supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(pairs)
                for split, pairs in self._listing.splits.items()}

    def _generate_examples(self, pairs):
        spec = f"folder:{self._listing.root}"
        for i, (path, label) in enumerate(pairs):
            yield i, {"image": encoded_image(path, spec), "label": label, "id": i}


def name_of(listing: Listing) -> str:
    """The ``Data.name`` of a folder dataset.

    Args:
        listing: the folder's layout, from ``scan``.

    Returns:
        str: ``"folder_"`` followed by ``listing.config_name``.
    """
    return f"folder_{listing.config_name}"
