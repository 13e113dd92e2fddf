"""zoo.datasets: TFDS array_record builders (no TensorFlow) and grain pipelines.

The digits dataset is built once per session; pipeline order/state checks
use a small in-memory source whose images encode their index, so a batch
tells which examples it holds."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo
from helpers import run_without_tensorflow
from zoo.datasets import (DATASETS, Data, DatasetError, eval_batches, prepare, resolve_data_dir,
                          steps_per_epoch, train_batches)
from zoo.datasets.augment import crop_box
from zoo.datasets.errors import import_tfds

tfds = import_tfds()
REPO = Path(__file__).resolve().parents[1]


# -- TFDS builders registered under their own names, to run the tfds:NAME path offline.

class ZooTestRenamed(tfds.core.GeneratorBasedBuilder):
    """Image/label under other names, and a validation split instead of test."""
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "picture": tfds.features.Image(shape=(None, None, 3)),
            "kind": tfds.features.ClassLabel(names=["round", "square"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6), "validation": self._generate_examples(2)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"picture": _png(np.full((5, 7, 3), 10 * i, np.uint8)), "kind": i % 2}


class ZooTestUnlabelled(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 1)), "value": np.int64}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        yield 0, {"image": _png(np.zeros((4, 4), np.uint8)), "value": 1}


def _png(array) -> bytes:
    from zoo.datasets.builders import png_bytes
    return png_bytes(array)


# -- fixtures and helpers

@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="session")
def digits(data_root):
    return prepare("digits", data_root)


@pytest.fixture(scope="session")
def digit_records(digits):
    """Every record, decoded once: {"train": [...], "test": [...]}."""
    return {"train": list(digits.train), "test": list(digits.test)}


@pytest.fixture(scope="session")
def sklearn_digits():
    from sklearn.datasets import load_digits
    return load_digits()


def synthetic(n=50) -> Data:
    """``n`` constant 4x4 grey images with pixel value 5 * index."""
    records = [{"image": np.full((4, 4, 1), 5 * i, np.uint8), "label": i % 3} for i in range(n)]
    return Data("synthetic", records, records[:10], ("a", "b", "c"))


def plain(data, batch_size=8, **kw):
    """Un-augmented, unnormalised batches at 32x32 (pixel values survive)."""
    kw = {"seed": 0, "augment": False, **kw}
    return train_batches(data, batch_size, 32, mean=(0, 0, 0), std=(1, 1, 1), **kw)


def ids(batch) -> list[int]:
    return np.rint(batch["image"][:, 0, 0, 0] / 5).astype(int).tolist()


def take(it, n):
    return [next(it) for _ in range(n)]


def same_batches(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b))


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# -- builders

def test_digits_sizes_classes_and_balance(digits, digit_records):
    assert digits.name == "digits" and "digits" in DATASETS
    assert (len(digits.train), len(digits.test)) == (1437, 360)
    assert digits.class_names == tuple("0123456789") and digits.num_classes == 10
    train, test = digit_records["train"], digit_records["test"]
    all_labels = Counter(int(r["label"]) for r in train + test)
    for label, n in Counter(int(r["label"]) for r in test).items():
        assert abs(n - all_labels[label] * 360 / 1797) < 1  # stratified
    train_ids = {int(r["id"]) for r in train}
    test_ids = {int(r["id"]) for r in test}
    assert not train_ids & test_ids and train_ids | test_ids == set(range(1797))


def test_digits_images_are_sklearns(digit_records, sklearn_digits):
    expected = np.round(sklearn_digits.images * 255 / 16).astype(np.uint8)
    for split in digit_records.values():
        for record in split:
            i = int(record["id"])
            assert record["image"].dtype == np.uint8 and record["image"].shape == (8, 8, 1)
            np.testing.assert_array_equal(record["image"][..., 0], expected[i])
            assert record["label"] == sklearn_digits.target[i]


def test_lfw_subset_is_faces_then_non_faces(data_root):
    from skimage.data import lfw_subset
    data = prepare("lfw_subset", data_root)
    assert (len(data.train), len(data.test)) == (160, 40)
    assert data.class_names == ("non_face", "face")
    assert Counter(int(r["label"]) for r in data.test) == {0: 20, 1: 20}
    upstream = np.round(lfw_subset() * 255).astype(np.uint8)
    for record in list(data.test) + list(data.train)[:20]:
        i = int(record["id"])
        np.testing.assert_array_equal(record["image"][..., 0], upstream[i])
        assert record["label"] == (1 if i < 100 else 0)


def test_killed_build_is_not_taken_as_complete(tmp_path, digit_records):
    """A build killed mid-way (SIGKILL: no cleanup runs) leaves only an
    incomplete.* folder; the next prepare() rebuilds, removes it, and holds
    the same split as any other build."""
    marker = tmp_path / "generating"
    script = textwrap.dedent("""
        import sys, time
        from zoo.datasets import builders, prepare
        generate = builders._ArrayBuilder._generate_examples
        def stall(self, *args):
            for i, example in enumerate(generate(self, *args)):
                if i == 100:
                    open(sys.argv[2], "w").close()
                    time.sleep(600)
                yield example
        builders._ArrayBuilder._generate_examples = stall
        prepare("digits", sys.argv[1])
    """)
    root = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-c", script, str(root), str(marker)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert list((root / "digits").glob("incomplete.*"))
    assert not (root / "digits" / "1.0.0").exists()

    again = prepare("digits", root)
    assert not list((root / "digits").glob("incomplete.*"))
    assert (len(again.train), len(again.test)) == (1437, 360)
    for split in ("train", "test"):  # same ids, same order as the session's build
        assert [int(r["id"]) for r in getattr(again, split)] == \
            [int(r["id"]) for r in digit_records[split]]


def test_prepare_reuses_a_finished_build(digits, data_root):
    stamp = (digits.path / "dataset_info.json").stat().st_mtime_ns
    start = time.perf_counter()
    again = prepare("digits", data_root)
    assert time.perf_counter() - start < 2
    assert again.path == digits.path
    assert (digits.path / "dataset_info.json").stat().st_mtime_ns == stamp


def test_concurrent_prepares_build_once(tmp_path):
    """Two prepare() calls racing on one cache: one builds, the other waits
    on the file lock and opens the finished dataset."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: prepare("lfw_subset", tmp_path), range(2)))
    assert [(len(d.train), len(d.test)) for d in results] == [(160, 40)] * 2
    assert not list((tmp_path / "lfw_subset").glob("incomplete.*"))


def test_data_dir_default(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_DATA", str(tmp_path / "d"))
    assert resolve_data_dir() == tmp_path / "d"
    monkeypatch.delenv("ZOO_DATA")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "c"))
    assert resolve_data_dir() == tmp_path / "c" / "datasets"
    monkeypatch.delenv("ZOO_CACHE")
    assert resolve_data_dir() == Path.home() / ".cache" / "zoo" / "datasets"
    assert resolve_data_dir(tmp_path) == tmp_path


def test_missing_optional_dependency_names_the_extra():
    from zoo.datasets.errors import require
    with pytest.raises(ImportError, match=r"needs no_such_module_xyz .*pip install 'zoo\[train\]'"):
        require("no_such_module_xyz")


# -- folder datasets

def make_folder(root: Path, counts=None):
    """Constant images, pixel value 10 * i + class index, one per file, in
    several formats and modes; returns {value: class name}."""
    counts = counts or {"ant": 8, "bee": 8, "cow": 8}
    values = {}
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            v = 10 * i + k
            rgb = np.full((5 + i % 3, 6, 3), v, np.uint8)
            if (k, i) == (0, 0):
                Image.fromarray(rgb[..., 0]).save(root / name / f"{i}.png")  # grey
            elif (k, i) == (0, 1):
                Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])).save(
                    root / name / f"{i}.png")  # RGBA
            elif (k, i) == (1, 2):
                v = 200
                Image.fromarray(np.full((16, 16, 3), v, np.uint8)).save(
                    root / name / f"{i}.jpg", quality=95)
            elif (k, i) == (2, 3):
                Image.fromarray(rgb).save(root / name / f"{i}.bmp")
            else:
                Image.fromarray(rgb).save(root / name / f"{i}.png")
            values[v] = name
    (root / next(iter(counts)) / "notes.txt").write_text("not an image")  # ignored
    return values


def check_records(data, values):
    keys = np.array(sorted(values))
    for record in list(data.train) + list(data.test):
        image = record["image"]
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[-1] == 3
        v = keys[np.abs(keys - int(image[0, 0, 0])).argmin()]  # JPEG may be 1 off
        assert abs(int(image[0, 0, 0]) - v) <= 1 and np.ptp(image) <= 2
        assert data.class_names[record["label"]] == values[v]


def test_folder_dataset_holds_out_a_stratified_test_split(tmp_path):
    values = make_folder(tmp_path / "Pets Photos")
    data = prepare(f"folder:{tmp_path / 'Pets Photos'}", tmp_path / "data")
    assert re.fullmatch(r"folder_pets_photos_[0-9a-f]{12}", data.name), data.name
    assert data.class_names == ("ant", "bee", "cow")
    assert (len(data.train), len(data.test)) == (19, 5)  # 20 % of 24
    assert sorted(Counter(int(r["label"]) for r in data.test).values()) == [1, 2, 2]
    check_records(data, values)
    held_out = sorted(int(r["image"][0, 0, 0]) for r in data.test)

    # Same folder, new cache: same name, same split.
    other = prepare(f"folder:{tmp_path / 'Pets Photos'}", tmp_path / "data2")
    assert other.name == data.name
    assert sorted(int(r["image"][0, 0, 0]) for r in other.test) == held_out

    # A changed folder is a new dataset, not stale records.
    new_file = tmp_path / "Pets Photos" / "cow" / "x.png"
    Image.fromarray(np.full((6, 6, 3), 99, np.uint8)).save(new_file)
    changed = prepare(f"folder:{tmp_path / 'Pets Photos'}", tmp_path / "data")
    assert changed.name != data.name and len(changed.train) + len(changed.test) == 25
    os.utime(new_file, ns=(1, 1))  # same names, new mtime
    assert prepare(f"folder:{tmp_path / 'Pets Photos'}", tmp_path / "data").name != changed.name


def test_folder_dataset_with_train_and_val_folders(tmp_path):
    train = make_folder(tmp_path / "set" / "train", {"x": 4, "y": 3})
    val = make_folder(tmp_path / "set" / "val", {"x": 2, "y": 2})
    data = prepare(f"folder:{tmp_path / 'set'}", tmp_path / "data")
    assert data.class_names == ("x", "y")
    assert (len(data.train), len(data.test)) == (7, 4)
    check_records(dataclasses.replace(data, test=[]), train)
    check_records(dataclasses.replace(data, train=[]), val)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such folder") as e:
        prepare(f"folder:{tmp_path / 'missing'}", tmp_path / "data")
    one_line_error(e)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DatasetError, match="is a file, not a folder") as e:
        prepare(f"folder:{tmp_path / 'file.png'}", tmp_path / "data")
    one_line_error(e)

    make_folder(tmp_path / "one", {"only": 3})
    with pytest.raises(DatasetError, match=r"1 class folder\(s\) \('only'\).*at least 2") as e:
        prepare(f"folder:{tmp_path / 'one'}", tmp_path / "data")
    assert str(tmp_path / "one") in one_line_error(e)

    make_folder(tmp_path / "empty", {"full": 3})
    (tmp_path / "empty" / "void").mkdir()
    (tmp_path / "empty" / "void" / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="class folder .*void has no images") as e:
        prepare(f"folder:{tmp_path / 'empty'}", tmp_path / "data")
    one_line_error(e)

    make_folder(tmp_path / "bad", {"p": 3, "q": 3})
    (tmp_path / "bad" / "q" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(DatasetError, match="cannot read image .*broken.png") as e:
        prepare(f"folder:{tmp_path / 'bad'}", tmp_path / "data")
    one_line_error(e)
    assert not list((tmp_path / "data" / "folder").glob("bad_*/*/dataset_info.json"))


# -- tfds:NAME

def test_tfds_dataset_with_renamed_features_and_validation_split(tmp_path):
    data = prepare("tfds:zoo_test_renamed", tmp_path)
    assert data.name == "tfds:zoo_test_renamed"
    assert data.class_names == ("round", "square")
    assert (len(data.train), len(data.test)) == (6, 2)  # test falls back to validation
    record = data.train[0]
    assert record["image"].shape == (5, 7, 3)
    assert record["label"] == (record["image"][0, 0, 0] // 10) % 2
    batch = next(iter(plain(data, batch_size=4)))
    assert batch["image"].shape == (4, 32, 32, 3)


def test_tfds_errors(tmp_path):
    with pytest.raises(DatasetError, match="Datasets has no dataset 'no_such_set_xyz'") as e:
        prepare("tfds:no_such_set_xyz", tmp_path)
    one_line_error(e)
    with pytest.raises(DatasetError, match=r"needs one image .* it has image: Image, value:") as e:
        prepare("tfds:zoo_test_unlabelled", tmp_path)
    one_line_error(e)


def test_unknown_name_lists_forms_and_suggests(tmp_path):
    with pytest.raises(DatasetError, match=r"unknown dataset 'digit' \(did you mean 'digits'\?\)"
                                           r".*'lfw_subset'.*'folder:.*'tfds:NAME'") as e:
        prepare("digit", tmp_path)
    one_line_error(e)
    with pytest.raises(DatasetError, match="did you mean 'folder:"):
        prepare(str(tmp_path), tmp_path)


# -- training batches

def test_train_batches_shapes_and_epoch_reshuffle():
    data = synthetic(50)
    assert steps_per_epoch(data, 8) == 6
    batches = take(iter(plain(data, batch_size=8)), 13)  # 104 stream positions
    assert all(b["image"].shape == (8, 32, 32, 3) for b in batches)
    assert all(b["image"].dtype == np.float32 for b in batches)
    assert all(b["label"].dtype == np.int32 and b["label"].shape == (8,) for b in batches)
    stream = [i for b in batches for i in ids(b)]
    labels = [int(y) for b in batches for y in b["label"]]
    assert labels == [i % 3 for i in stream]
    epoch1, epoch2 = stream[:50], stream[50:100]
    assert sorted(epoch1) == sorted(epoch2) == list(range(50))  # each example once per epoch
    assert epoch1 != epoch2 and epoch1 != list(range(50))  # shuffled, and differently each epoch
    # The batch straddling the boundary carries over: nothing dropped.
    assert ids(batches[6]) == epoch1[48:] + epoch2[:6]


def test_train_batches_are_deterministic_by_seed(digits):
    def run(seed):
        return take(iter(train_batches(digits, 16, 32, mean=(100, 110, 120), std=(50, 60, 70),
                                       seed=seed, min_scale=0.25)), 3)
    first = run(0)
    assert same_batches(first, run(0))
    assert not np.array_equal(first[0]["image"], run(1)[0]["image"])
    seed0, seed1 = (next(iter(plain(synthetic(), seed=s))) for s in (0, 1))
    assert ids(seed0) != ids(seed1)


@pytest.mark.parametrize("stop", [2, 7])  # mid-epoch; just past the epoch boundary (50 = 6*8+2)
def test_resume_from_state_continues_exactly(stop):
    data = synthetic(50)
    it = iter(plain(data, augment=True, min_scale=0.3))
    take(it, stop)
    state = json.loads(json.dumps(it.get_state()))
    expected = take(it, 8)
    resumed = iter(plain(data, augment=True, min_scale=0.3))
    take(resumed, 1)  # a used iterator, as after a restart that read ahead
    resumed.set_state(state)
    assert same_batches(take(resumed, 8), expected)


def test_shards_split_every_global_batch():
    data = synthetic(50)
    everything = take(iter(plain(data, batch_size=8)), 8)
    hosts = [take(iter(plain(data, batch_size=8, shard_index=h, shard_count=2)), 8) for h in (0, 1)]
    for k, batch in enumerate(everything):
        assert ids(hosts[0][k]) == ids(batch)[0::2] and ids(hosts[1][k]) == ids(batch)[1::2]
    with pytest.raises(DatasetError, match="multiple of 3"):
        plain(data, batch_size=8, shard_count=3)


def test_augmentation_crops_and_flips(digits):
    record = digits.test[0]
    spec = dataclasses.replace(zoo.get_spec("mobilenet_v2", resolution=32), crop_fraction=1.0)
    whole = np.asarray(zoo.preprocess([record["image"]], spec))[0]
    data = Data("one", [record] * 16, [record], digits.class_names)

    # Not augmented: the whole image resized like eval's resize (square image, no crop).
    batch = next(iter(train_batches(data, 16, 32, mean=spec.mean, std=spec.std, augment=False)))
    np.testing.assert_allclose(batch["image"], np.broadcast_to(whole, (16, 32, 32, 3)), atol=1e-4)

    # min_scale=1 on a square image: the whole image, mirrored about half the time.
    batch = next(iter(train_batches(data, 16, 32, mean=spec.mean, std=spec.std, min_scale=1.0)))
    mirrored = [np.allclose(x, whole[:, ::-1], atol=1e-4) for x in batch["image"]]
    plain_rows = [np.allclose(x, whole, atol=1e-4) for x in batch["image"]]
    assert all(a or b for a, b in zip(mirrored, plain_rows)) and 0 < sum(mirrored) < 16
    batch = next(iter(train_batches(data, 16, 32, mean=spec.mean, std=spec.std, min_scale=1.0,
                                    flip=False)))
    np.testing.assert_allclose(batch["image"], np.broadcast_to(whole, (16, 32, 32, 3)), atol=1e-4)

    # Random crops: rows differ.
    batch = next(iter(train_batches(data, 16, 32, mean=spec.mean, std=spec.std, min_scale=0.25)))
    assert len({x.tobytes() for x in batch["image"]}) == 16


def test_crop_box_scale_and_aspect():
    rng = np.random.default_rng(0)
    for _ in range(500):
        left, top, right, bottom = crop_box(80, 100, rng, min_scale=0.25)
        w, h = right - left, bottom - top
        assert 0 <= left and 0 <= top and right <= 100 + 1e-9 and bottom <= 80 + 1e-9
        assert 0.25 - 1e-9 <= w * h / 8000 <= 1 + 1e-9 and 3 / 4 - 1e-9 <= w / h <= 4 / 3 + 1e-9


@pytest.mark.slow
def test_workers_give_the_same_batches_and_resume(digits):
    """2 worker processes (spawned: slow to start) vs the main process:
    bit-identical augmented batches; a JSON round trip of the workers'
    iterator state resumes exactly."""
    def make(num_workers):
        return iter(train_batches(digits, 16, 32, mean=(0, 0, 0), std=(1, 1, 1), seed=3,
                                  min_scale=0.3, num_workers=num_workers))
    main = take(make(0), 7)
    it = make(2)
    try:
        assert same_batches(take(it, 3), main[:3])
        state = json.loads(json.dumps(it.get_state()))
        assert same_batches(take(it, 4), main[3:])
        it.set_state(state)
        assert same_batches(take(it, 4), main[3:])
    finally:
        it.close()


def test_pipeline_argument_errors(digits):
    cases = [({"batch_size": 0}, r"batch_size=0: expected a positive integer"),
             ({"batch_size": -4}, r"batch_size=-4"),
             ({"image_size": 16}, r"image_size=16: expected an integer >= 32"),
             ({"batch_size": 5000}, r"batch_size=5000 is larger than digits's train split \(1437")]
    for change, message in cases:
        args = {"batch_size": 32, "image_size": 64, **change}
        with pytest.raises(DatasetError, match=message) as e:
            train_batches(digits, mean=(0, 0, 0), std=(1, 1, 1), **args)
        one_line_error(e)
    with pytest.raises(DatasetError, match="larger than"):
        steps_per_epoch(digits, 1438)
    assert steps_per_epoch(digits, 32) == 44


# -- evaluation batches

def test_eval_batches_are_zoo_preprocess_padded(digits, digit_records):
    spec = zoo.get_spec("mobilenet_v2", resolution=32)
    batches = list(eval_batches(digits, "test", batch_size=64, spec=spec))
    assert len(batches) == 6  # 5 * 64 + 40
    for b in batches:
        assert b["image"].shape == (64, 32, 32, 3) and b["image"].dtype == np.float32
        assert b["label"].dtype == np.int32 and b["mask"].dtype == bool
    records = digit_records["test"]
    for k in (0, 5):
        chunk = records[64 * k:64 * (k + 1)]
        expected = np.asarray(zoo.preprocess([r["image"] for r in chunk], spec))
        np.testing.assert_array_equal(batches[k]["image"][:len(chunk)], expected)
    last = batches[-1]
    assert last["mask"].tolist() == [True] * 40 + [False] * 24
    assert not last["image"][40:].any() and not last["label"][40:].any()
    labels = np.concatenate([b["label"][b["mask"]] for b in batches])
    assert labels.tolist() == [int(r["label"]) for r in records]
    with pytest.raises(DatasetError, match="split='val'"):
        eval_batches(digits, "val", 64, spec)


# -- without TensorFlow

NO_TENSORFLOW = """
    try:
        import tensorflow
    except ImportError:
        pass
    else:
        raise SystemExit("tensorflow is still importable")

    from zoo.datasets import prepare, train_batches
    data = prepare("digits", sys.argv[1])
    batch = next(iter(train_batches(data, 8, 32, mean=(0, 0, 0), std=(1, 1, 1))))
    assert batch["image"].shape == (8, 32, 32, 3), batch["image"].shape
    print("built", len(data.train), len(data.test), data.test[0]["image"].shape)
"""


def test_builds_and_reads_without_tensorflow(tmp_path):
    assert "built 1437 360 (8, 8, 1)" in run_without_tensorflow(NO_TENSORFLOW, tmp_path)
