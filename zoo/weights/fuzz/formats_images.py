"""Fuzz targets ``image_png`` and ``image_jpeg``: ``zoo.images.read_image``,
the loader behind every ``zoo`` command that reads image files.

Seeds are small images written here with Pillow in the modes files come in
(RGB, grey, palette with transparency, RGBA, LA, 16-bit grey, 1-bit; JPEG
baseline, progressive, grey, CMYK, with an EXIF orientation). The crafted
cases are truncations, wrong CRCs, headers declaring billions of pixels, a
real decompression bomb (a 20000x20000 PNG in 0.4 MB) and broken headers.
The structured mutators keep the container valid so that the decoders, not
the first check, meet the damage: PNG chunks are edited with their CRC
recomputed (IHDR fields, the inflated scanlines of IDAT, chunks dropped,
duplicated or added), JPEG segments are dropped, duplicated or edited
(frame sizes, tables, an EXIF block).

Inputs are read with ``max_pixels=FUZZ_MAX_PIXELS`` (the same code as the
commands' ``MAX_IMAGE_PIXELS``, a smaller number), so that a mutant whose
header grows to the limit costs little time and the memory budget stays
tight: ``BYTES_PER_PIXEL`` per allowed pixel on top of the default budget.
"""

from __future__ import annotations

import io
import random
import struct
import zlib

from zoo.images import PNG_SIGNATURE
from zoo.weights.fuzz import Target, default_budget
from zoo.weights.fuzz.mutate import apply_edit, random_edits

# The seeds, crafted cases and mutators are reached through TARGETS.
__all__ = ["BYTES_PER_PIXEL", "FUZZ_MAX_PIXELS", "PNG_SIGNATURE", "TARGETS", "budget",
           "jpeg_segments", "png_bytes", "png_chunks", "read_image"]

FUZZ_MAX_PIXELS = 1 << 22  # 4 megapixels
BYTES_PER_PIXEL = 16  # the most read_image allocates per pixel (measured: 13, RGBA and palette)


def read_image(path: str) -> None:
    """The worker's entry point: ``zoo.images.read_image`` with at most
    ``FUZZ_MAX_PIXELS`` pixels (the array is dropped).

    Args:
        path: the image file.

    Raises:
        zoo.images.ImageFileError: for a file that is not a whole, readable
            image within the pixel limit.
    """
    from zoo.images import read_image as read

    read(path, max_pixels=FUZZ_MAX_PIXELS)


def budget(size: int) -> int:
    """The image targets' memory budget: ``default_budget`` plus room for
    the largest image the pixel limit lets through.

    Args:
        size: the input file's size in bytes.

    Returns:
        ``default_budget(size) + BYTES_PER_PIXEL * FUZZ_MAX_PIXELS`` bytes.
    """
    return default_budget(size) + BYTES_PER_PIXEL * FUZZ_MAX_PIXELS


def _picture(w: int, h: int, seed: int):
    """A small RGB picture with edges, gradients and noise (so every
    decoder path, not just flat blocks, has work)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                  ((x // 4 + y // 4) % 2) * 200], -1).astype(np.int32)
    a += rng.integers(-20, 21, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def _save(im, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _exif(orientation: int) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def png_seeds() -> list[bytes]:
    import numpy as np
    from PIL import Image

    rgb = Image.fromarray(_picture(16, 12, 0))
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(_picture(16, 12, 1)[..., 0]))
    grey16 = Image.fromarray((np.arange(16 * 12, dtype=np.uint16).reshape(12, 16) * 300))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return [_save(rgb, "PNG"),
            _save(rgba, "PNG"),
            _save(rgb.convert("L"), "PNG"),
            _save(palette, "PNG", transparency=3),
            _save(grey16, "PNG"),
            _save(rgba.convert("LA"), "PNG"),
            _save(rgb.convert("1"), "PNG"),
            _save(rgb, "PNG", exif=_exif(6))]


def jpeg_seeds() -> list[bytes]:
    from PIL import Image

    rgb = Image.fromarray(_picture(24, 16, 2))
    return [_save(rgb, "JPEG", quality=90),
            _save(rgb, "JPEG", quality=75, progressive=True),
            _save(rgb.convert("L"), "JPEG", quality=85),
            _save(rgb.convert("CMYK"), "JPEG", quality=90),
            _save(rgb, "JPEG", quality=80, optimize=True, subsampling=0, exif=_exif(8)),
            _save(rgb, "JPEG", quality=50, subsampling=2, restart_marker_blocks=1)]


# ------------------------------------------------------------------ PNG

def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of each chunk; ValueError when the structure is broken.

    CRCs are not checked; the walk stops after IEND, and ignores a tail
    too short to be a chunk.

    Args:
        data: a PNG file's bytes.

    Returns:
        ``(type, data)`` per chunk, in file order, e.g. ``(b"IHDR", 13 bytes)``.

    Raises:
        ValueError: if ``data`` does not start with ``PNG_SIGNATURE`` or a
            chunk's declared length runs past the end.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    chunks, i = [], len(PNG_SIGNATURE)
    while i + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, i)
        kind = data[i + 4:i + 8]
        if i + 12 + length > len(data):
            raise ValueError("chunk past the end")
        chunks.append((kind, data[i + 8:i + 8 + length]))
        i += 12 + length
        if kind == b"IEND":
            break
    return chunks


def png_bytes(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A PNG file of ``chunks``, each with its length and a correct CRC (the
    inverse of ``png_chunks``).

    Args:
        chunks: ``(type, data)`` pairs, types of 4 bytes (b"IHDR").

    Returns:
        ``PNG_SIGNATURE`` followed by the chunks.
    """
    out = bytearray(PNG_SIGNATURE)
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body
        out += struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))
    return bytes(out)


def _ihdr(w: int, h: int, depth: int = 8, colour: int = 0, interlace: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)


def mutate_png_chunk(data: bytes, rng: random.Random) -> bytes:
    """A few generic edits inside one chunk's data, CRC recomputed."""
    chunks = png_chunks(data)
    i = rng.randrange(len(chunks))
    kind, body = chunks[i]
    for edit in random_edits(rng, rng.randint(1, 3)):
        body = apply_edit(body, *edit)
    chunks[i] = (kind, body)
    return png_bytes(chunks)


def mutate_png_header(data: bytes, rng: random.Random) -> bytes:
    """One IHDR field (size, bit depth, colour type, interlace...) changed."""
    chunks = png_chunks(data)
    w, h, depth, colour, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1][:13])
    field = rng.randrange(7)
    if field == 0:
        w = rng.choice((0, 1, w + 1, w * 2, 4096, 1 << 16, 0x7FFFFFFF, 0xFFFFFFFF))
    elif field == 1:
        h = rng.choice((0, 1, h - 1, h * 3, 4096, 1 << 16, 0x7FFFFFFF, 0xFFFFFFFF))
    elif field == 2:
        depth = rng.choice((0, 1, 2, 4, 8, 16, 3, 32, 255))
    elif field == 3:
        colour = rng.choice((0, 2, 3, 4, 6, 1, 5, 7, 255))
    elif field == 4:
        comp = rng.choice((1, 8, 255))
    elif field == 5:
        filt = rng.choice((1, 5, 255))
    else:
        interlace = rng.choice((1, 2, 255))
    chunks[0] = (b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour & 0xFF, comp & 0xFF,
                                      filt & 0xFF, interlace & 0xFF))
    return png_bytes(chunks)


def mutate_png_pixels(data: bytes, rng: random.Random) -> bytes:
    """Edit the inflated scanlines (filter bytes included), deflate again."""
    chunks = png_chunks(data)
    idat = [i for i, (k, _) in enumerate(chunks) if k == b"IDAT"]
    raw = zlib.decompress(b"".join(chunks[i][1] for i in idat))
    for edit in random_edits(rng, rng.randint(1, 4)):
        raw = apply_edit(raw, *edit)
    body = zlib.compress(raw, 6)
    if rng.random() < 0.2:  # sometimes a stream cut short or with junk after it
        body = body[:rng.randrange(len(body))] if rng.random() < 0.5 else body + b"junk"
    first = idat[0]
    rest = [c for j, c in enumerate(chunks) if j not in idat]
    cut = rng.randrange(1, len(body) + 1)
    split = [(b"IDAT", body[:cut]), (b"IDAT", body[cut:])] if rng.random() < 0.3 else \
        [(b"IDAT", body)]
    return png_bytes(rest[:first] + split + rest[first:])


EXTRA_CHUNKS = (b"tRNS", b"PLTE", b"gAMA", b"iCCP", b"eXIf", b"zTXt", b"iTXt", b"sBIT",
                b"bKGD", b"pHYs", b"acTL", b"fcTL", b"fdAT", b"IDAT", b"IEND", b"IHDR")


def mutate_png_structure(data: bytes, rng: random.Random) -> bytes:
    """Drop, duplicate, swap or add a chunk (valid CRCs)."""
    chunks = png_chunks(data)
    i = rng.randrange(len(chunks))
    op = rng.randrange(4)
    if op == 0 and len(chunks) > 1:
        del chunks[i]
    elif op == 1:
        chunks.insert(i, chunks[i])
    elif op == 2:
        j = rng.randrange(len(chunks))
        chunks[i], chunks[j] = chunks[j], chunks[i]
    else:
        kind = rng.choice(EXTRA_CHUNKS)
        body = rng.choice((b"", bytes(rng.randrange(1, 64)), rng.randbytes(rng.randrange(1, 64)),
                           b"Raw profile\x00\x00" + zlib.compress(bytes(1 << 16)),
                           _exif(rng.randrange(0, 10)), b"\x00\x00\x00\x01" * 8))
        chunks.insert(max(1, i), (kind, body))
    return png_bytes(chunks)


def _zlib_zeros(total: int) -> bytes:
    """A zlib stream of ``total`` zero bytes built from 1 MiB blocks (each
    full-flushed, so all compress alike) without compressing ``total`` bytes."""
    block = 1 << 20
    n, tail = divmod(total, block)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    end = c.compress(bytes(tail)) + c.flush()
    adler = 1
    for _ in range(n):
        adler = zlib.adler32(zeros, adler)
    adler = zlib.adler32(bytes(tail), adler)
    return b"\x78\xda" + first + again * (n - 1) + end + struct.pack(">I", adler)


def png_crafted() -> list[tuple[str, bytes]]:
    from PIL import Image

    good = _save(Image.fromarray(_picture(32, 24, 3)), "PNG")
    chunks = png_chunks(good)
    idat = next(i for i, (k, _) in enumerate(chunks) if k == b"IDAT")
    iend = good.rindex(b"IEND") - 4
    cases = [("truncated in the pixels", good[:len(good) * 2 // 3]),
             ("no IEND", good[:iend]),
             ("signature only", PNG_SIGNATURE),
             ("empty file", b""),
             ("text, not an image", b"this is not an image\n" * 4)]
    bad_crc = bytearray(good)
    at = good.index(b"IDAT") + 4 + len(chunks[idat][1]) // 2
    bad_crc[at] ^= 0x10  # one bit of the pixels flipped; the chunk CRC now disagrees
    cases.append(("IDAT bit flip (wrong CRC)", bytes(bad_crc)))
    cases.append(("IDAT chunk CRC wrong, data intact", _bad_idat_crc(good)))
    bomb_raw = 20000 * (20000 + 1)  # grey, filter byte per row: 400 MB of zeros
    cases.append(("decompression bomb 20000x20000 in 0.4 MB",
                  png_bytes([(b"IHDR", _ihdr(20000, 20000)), (b"IDAT", _zlib_zeros(bomb_raw)),
                             (b"IEND", b"")])))
    cases.append(("header declares 2^31 x 2^31",
                  png_bytes([(b"IHDR", _ihdr(0x7FFFFFFF, 0x7FFFFFFF))] + chunks[1:])))
    cases.append(("header declares 100000 x 100000",
                  png_bytes([(b"IHDR", _ihdr(100000, 100000, 8, 2))] + chunks[1:])))
    cases.append(("zero width", png_bytes([(b"IHDR", _ihdr(0, 24, 8, 2))] + chunks[1:])))
    cases.append(("bit depth 3", png_bytes([(b"IHDR", _ihdr(32, 24, 3, 2))] + chunks[1:])))
    cases.append(("colour type 5", png_bytes([(b"IHDR", _ihdr(32, 24, 8, 5))] + chunks[1:])))
    cases.append(("pixels not zlib",
                  png_bytes(chunks[:idat] + [(b"IDAT", b"\x00" * 64)] + chunks[idat + 1:])))
    raw = bytearray(zlib.decompress(chunks[idat][1]))
    raw[0] = 9  # no such filter type
    cases.append(("unknown scanline filter",
                  png_bytes(chunks[:idat] + [(b"IDAT", zlib.compress(bytes(raw)))] +
                            chunks[idat + 1:])))
    cases.append(("too few scanlines",
                  png_bytes(chunks[:idat] + [(b"IDAT", zlib.compress(bytes(raw[:len(raw) // 2])))]
                            + chunks[idat + 1:])))
    cases.append(("no IDAT", png_bytes(chunks[:idat] + chunks[idat + 1:])))
    cases.append(("palette image without PLTE",
                  png_bytes([(b"IHDR", _ihdr(32, 24, 8, 3))] + chunks[1:])))
    return cases


def _bad_idat_crc(good: bytes) -> bytes:
    b = bytearray(good)
    i = good.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", good, i)
    crc_at = i + 8 + length
    b[crc_at:crc_at + 4] = bytes(x ^ 0xFF for x in b[crc_at:crc_at + 4])
    return bytes(b)


# ------------------------------------------------------------------ JPEG

def jpeg_segments(data: bytes) -> list[bytes]:
    """The file cut at its markers: SOI, each segment (a scan with its
    entropy-coded data), EOI. ValueError when the structure is broken.

    Args:
        data: a JPEG file's bytes.

    Returns:
        The pieces, each starting with its marker (bytes after EOI, if any,
        as a last piece); ``b"".join`` of them gives ``data`` back.

    Raises:
        ValueError: if ``data`` does not start with SOI, a marker is missing
            where one should be, or a segment is cut short.
    """
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    segs, i = [data[:2]], 2
    while i < len(data):
        if data[i] != 0xFF:
            raise ValueError("no marker")
        marker = data[i + 1] if i + 1 < len(data) else 0
        if marker == 0xD9:
            segs.append(data[i:i + 2])
            if i + 2 < len(data):
                segs.append(data[i + 2:])  # trailing bytes, kept as they are
            break
        if i + 4 > len(data):
            raise ValueError("cut short")
        (length,) = struct.unpack_from(">H", data, i + 2)
        end = i + 2 + length
        if marker == 0xDA:  # the entropy-coded data runs to the next real marker
            while end + 1 < len(data) and not (data[end] == 0xFF and
                                               data[end + 1] not in (0x00, *range(0xD0, 0xD8))):
                end += 1
        if end > len(data):
            raise ValueError("segment past the end")
        segs.append(data[i:end])
        i = end
    return segs


def mutate_jpeg_segment(data: bytes, rng: random.Random) -> bytes:
    """Drop, duplicate or swap a segment, or edit one inside (its length kept)."""
    segs = jpeg_segments(data)
    i = rng.randrange(1, len(segs))
    op = rng.randrange(4)
    if op == 0:
        del segs[i]
    elif op == 1:
        segs.insert(i, segs[i])
    elif op == 2:
        j = rng.randrange(1, len(segs))
        segs[i], segs[j] = segs[j], segs[i]
    else:
        seg = segs[i]
        if len(seg) > 4:
            body = seg[4:]
            for edit in random_edits(rng, rng.randint(1, 3)):
                body = apply_edit(body, *edit)
            segs[i] = seg[:4] + body
    return b"".join(segs)


def mutate_jpeg_frame(data: bytes, rng: random.Random) -> bytes:
    """The frame header (SOFn): precision, size, components, sampling, tables."""
    segs = jpeg_segments(data)
    sofs = [i for i, s in enumerate(segs) if len(s) >= 10 and s[1] in (0xC0, 0xC1, 0xC2)]
    if not sofs:
        raise ValueError("no frame header")
    i = sofs[0]
    b = bytearray(segs[i])
    field = rng.randrange(6)
    if field == 0:
        b[4] = rng.choice((0, 1, 12, 16, 255))  # precision
    elif field in (1, 2):
        at = 5 if field == 1 else 7
        struct.pack_into(">H", b, at, rng.choice((0, 1, 7, 9, 2048, 4096, 0x7FFF, 0xFFFF)))
    elif field == 3:
        b[9] = rng.choice((0, 1, 2, 3, 4, 5, 255))  # component count
    elif field == 4 and len(b) > 11:
        b[11] = rng.choice((0x00, 0x11, 0x22, 0x44, 0x41, 0x14, 0xFF))  # sampling factors
    elif len(b) > 12:
        b[12] = rng.choice((0, 1, 3, 4, 255))  # quantisation table
    segs[i] = bytes(b)
    if rng.random() < 0.2:  # another coding process with the same tables
        segs[i] = segs[i][:1] + bytes([rng.choice((0xC1, 0xC2, 0xC3, 0xC5, 0xC9, 0xCB))]) + \
            segs[i][2:]
    return b"".join(segs)


def mutate_jpeg_exif(data: bytes, rng: random.Random) -> bytes:
    """Put an EXIF block (orientation 0-9, or a broken one) after SOI."""
    exif = _exif(rng.randrange(0, 10))
    if rng.random() < 0.4:
        for edit in random_edits(rng, rng.randint(1, 3)):
            exif = apply_edit(exif, *edit)
    body = b"Exif\x00\x00" + exif
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def jpeg_crafted() -> list[tuple[str, bytes]]:
    from PIL import Image

    pic = Image.fromarray(_picture(64, 48, 4))
    good = _save(pic, "JPEG", quality=90)
    progressive = _save(pic, "JPEG", quality=90, progressive=True)
    segs = jpeg_segments(good)
    sof = next(i for i, s in enumerate(segs) if s[1] == 0xC0)
    sos = next(i for i, s in enumerate(segs) if s[1] == 0xDA)

    def sized(w: int, h: int) -> bytes:
        b = bytearray(segs[sof])
        struct.pack_into(">HH", b, 5, h, w)
        return b"".join(segs[:sof] + [bytes(b)] + segs[sof + 1:])

    return [("truncated in the scan", good[:len(good) * 2 // 3]),
            ("progressive, truncated after the first scans",
             progressive[:len(progressive) // 2]),
            ("headers only", b"".join(segs[:sos])),
            ("SOI only", b"\xff\xd8"),
            ("empty file", b""),
            ("header declares 65535 x 65535", sized(65535, 65535)),
            ("header declares 20000 x 20000 (bomb)", sized(20000, 20000)),
            ("zero width", sized(0, 48)),
            ("no frame header", b"".join(segs[:sof] + segs[sof + 1:])),
            ("no quantisation tables", b"".join(s for s in segs if s[1:2] != b"\xdb")),
            ("JPEG signature then PNG", b"\xff\xd8\xff" + png_seeds()[0])]


TARGETS = [
    Target(name="image_png", read="zoo.weights.fuzz.formats_images:read_image", suffix=".png",
           seeds=png_seeds, crafted=png_crafted,
           mutators=(mutate_png_chunk, mutate_png_header, mutate_png_pixels,
                     mutate_png_structure),
           errors=("zoo.images.ImageFileError",), budget=budget,
           description="zoo.images.read_image on PNG files"),
    Target(name="image_jpeg", read="zoo.weights.fuzz.formats_images:read_image", suffix=".jpg",
           seeds=jpeg_seeds, crafted=jpeg_crafted,
           mutators=(mutate_jpeg_segment, mutate_jpeg_frame, mutate_jpeg_exif),
           errors=("zoo.images.ImageFileError",), budget=budget,
           description="zoo.images.read_image on JPEG files"),
]
