"""Reading image files for every ``zoo`` command: ``read_image(path)`` gives
a (H, W, 3) uint8 RGB array, or raises ``ImageFileError``, one line naming
the file and what is wrong.

The rules:

* Formats: JPEG, PNG, BMP, GIF (first frame), WebP and TIFF (first page),
  recognised by content, not by name. Pillow's other plugins (EPS, which runs
  Ghostscript, and many rarely used formats) are never tried.
* The pixels are decoded in full before anything is returned: a truncated
  file is refused (``ImageFile.LOAD_TRUNCATED_IMAGES`` is held False while
  reading), and so is a PNG with any chunk whose CRC is wrong or without its
  ``IEND`` (Pillow does not check the CRC of the image data itself).
* Size: at most ``MAX_IMAGE_PIXELS`` pixels (width x height), checked from
  the header before any pixel is decoded; Pillow's
  ``DecompressionBombWarning`` is an error too. Reading takes at most about
  13 bytes a pixel (RGBA and palette images; 7 for RGB): under 1 GiB at the
  limit.
* Modes: CMYK -> RGB by Pillow's formula (no ICC colour management);
  16-bit grey (``I;16*``, and ``I``, which is taken as 16-bit data) scaled to
  8 bits by 255/65535 with rounding (not clipped at 255); 32-bit float
  (``F``) clipped to 0-255 as Pillow does; anything with transparency (LA,
  RGBA, PA, premultiplied modes, palette or grey with a transparent colour)
  is composited onto white, as an image viewer on a white page shows it
  (dropping alpha instead would expose whatever colour the encoder left under
  transparent pixels, often black). Grey and palette images become RGB.
* The EXIF orientation tag is applied as ``ImageOps.exif_transpose`` does,
  so the array is upright; an EXIF block that cannot be parsed is ignored
  (the pixels are as stored).
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
import zlib

import numpy as np

from zoo.weights.errors import one_line

__all__ = ["FORMATS", "MAX_IMAGE_PIXELS", "ImageFileError", "png_bytes", "read_image",
           "to_rgb_array"]

MAX_IMAGE_PIXELS = 64 * 2**20  # 67,108,864 = 8192 x 8192; a 50-megapixel photo passes
FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_BLOCK = 1 << 20  # pixels composited at a time (bounds the temporaries)


class ImageFileError(ValueError):
    """Not an image we read, or truncated, corrupt, too large or of an
    unsupported mode; the message is one line naming the file."""


def read_image(path: os.PathLike | str, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """The image file at ``path`` as a (H, W, 3) uint8 RGB array, upright.

    The format is recognised by content; modes, transparency and EXIF
    orientation are handled by the rules in the module docstring.

    Args:
        path: the image file.
        max_pixels: the most pixels (width x height) accepted, checked from
            the header before decoding.

    Returns:
        (H, W, 3) uint8 RGB array, 0-255, EXIF orientation applied.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImageFileError: anything that is not a whole, readable
            JPEG/PNG/BMP/GIF/WebP/TIFF image of at most ``max_pixels``
            pixels (one line naming the file).
        MemoryError: decoding ran out of memory.

    Example:
        ::

            image = read_image("cat.jpg")              # (H, W, 3) uint8
            x = zoo.preprocess(image, "efficientnet_b0")
    """
    from PIL import Image, ImageFile

    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(2, "no such image file", name)
    try:
        with open(name, "rb") as f:
            head = f.read(len(PNG_SIGNATURE))
        if head == PNG_SIGNATURE:
            _check_png_chunks(name)
        with _strict_loading(ImageFile), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd metadata: no output
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(name, formats=FORMATS) as im:
                _check_size(im.size, max_pixels, name)
                im.load()  # the whole image: a truncated file fails here
                _check_size(im.size, max_pixels, name)  # a plugin may resize on load
                orientation = _orientation(im)
                rgb = to_rgb_array(im)
    except (ImageFileError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - whatever a decoder trips on, the file is bad
        raise _error(name, _describe(e, max_pixels)) from None
    return _upright(rgb, orientation)


def png_bytes(array) -> bytes:
    """A uint8 (H, W), (H, W, 1) or (H, W, 3) array as PNG file bytes (lossless).

    Args:
        array: (H, W) or (H, W, 1) grey, or (H, W, 3) RGB uint8 pixels.

    Returns:
        The bytes of a PNG file (write them with ``zoo.atomic.write_atomic``).

    Raises:
        ValueError: ``array`` is not uint8, or not one of those shapes.
    """
    import io

    from PIL import Image

    array = np.asarray(array)
    if array.dtype != np.uint8 or not (
            array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3))):
        raise ValueError(f"png_bytes: expected uint8 (H, W), (H, W, 1) or (H, W, 3) pixels, "
                         f"got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array
                    ).save(buffer, format="PNG")
    return buffer.getvalue()


def to_rgb_array(im) -> np.ndarray:
    """A loaded PIL image as a (H, W, 3) uint8 RGB array, converted by the
    rules in this module's docstring (no orientation applied).

    Args:
        im: a ``PIL.Image.Image`` in any mode, pixels loaded.

    Returns:
        (H, W, 3) uint8 RGB array; transparent pixels composited onto white.
    """
    mode = im.mode
    if mode == "I" or mode.startswith("I;16"):
        grey = np.clip(np.array(im), 0, 65535).astype(np.uint32)
        grey *= 255
        grey += 32767
        grey //= 65535
        return _grey_to_rgb(grey.astype(np.uint8))
    if mode == "F":
        grey = np.nan_to_num(np.array(im), nan=0.0, posinf=255.0, neginf=0.0)
        return _grey_to_rgb(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    if im.has_transparency_data:
        if mode == "La":  # premultiplied grey: Pillow converts it only to LA
            im = im.convert("LA")
        return _on_white(np.asarray(im.convert("RGBA")))
    if mode == "RGB":
        return np.array(im)
    if mode in ("L", "1"):
        return _grey_to_rgb(np.array(im.convert("L")))
    return np.array(im.convert("RGB"))  # P, CMYK, YCbCr, RGBX, HSV, LAB


def _error(name: str, what: str) -> ImageFileError:
    return ImageFileError(one_line(name, f"cannot read image: {what}"))


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=-1)


def _on_white(rgba: np.ndarray) -> np.ndarray:
    """Composite straight (not premultiplied) RGBA onto white, rounded:
    (c * a + 255 * (255 - a)) / 255, a block of rows at a time."""
    h, w = rgba.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, _BLOCK // max(w, 1))
    for r in range(0, h, step):
        block = rgba[r:r + step]
        a = block[..., 3:4].astype(np.uint16)
        c = block[..., :3].astype(np.uint16) * a
        c += (255 - a) * 255 + 127
        c //= 255
        out[r:r + step] = c
    return out


def _orientation(im) -> int:
    try:
        value = int(im.getexif().get(0x0112, 1))  # ExifTags.Base.Orientation
    except Exception:  # noqa: BLE001 - an unreadable EXIF block: pixels as stored
        return 1
    return value if 1 <= value <= 8 else 1


def _upright(a: np.ndarray, orientation: int) -> np.ndarray:
    """``a`` turned as ``ImageOps.exif_transpose`` turns an image with this
    EXIF orientation (2 mirrored, 3 upside down, 4 flipped, 5 transposed,
    6 turned left (shown turned right), 7 transversed, 8 turned right)."""
    if orientation == 1:
        return a
    view = {2: lambda x: x[:, ::-1],
            3: lambda x: x[::-1, ::-1],
            4: lambda x: x[::-1],
            5: lambda x: x.transpose(1, 0, 2),
            6: lambda x: np.rot90(x, -1),
            7: lambda x: x[::-1, ::-1].transpose(1, 0, 2),
            8: lambda x: np.rot90(x, 1)}[orientation](a)
    return np.ascontiguousarray(view)


def _check_size(size, max_pixels: int, name: str) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise _error(name, f"the image is empty ({w}x{h} pixels)")
    if w * h > max_pixels:
        raise _error(
            name, f"the header declares {w}x{h} = {w * h} pixels, over the limit of "
                  f"{max_pixels} (zoo.images.MAX_IMAGE_PIXELS): a decompression bomb?")


def _check_png_chunks(name: str) -> None:
    """Every chunk whole and its CRC right, up to ``IEND``."""
    with open(name, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        f.seek(len(PNG_SIGNATURE))
        while True:
            head = f.read(8)
            if len(head) < 8:
                raise _error(name, "truncated PNG: no IEND chunk")
            length, kind = struct.unpack(">I4s", head)
            at = f.tell() - 8
            if length > 2**31 - 1 or at + 12 + length > size:
                raise _error(
                    name, f"truncated PNG: chunk {kind!r} at byte {at} declares {length} "
                          f"bytes, past the end of the file ({size} bytes)")
            crc, left = zlib.crc32(kind), length
            while left:
                data = f.read(min(left, 1 << 20))
                crc = zlib.crc32(data, crc)
                left -= len(data)
            (stored,) = struct.unpack(">I", f.read(4))
            if stored != crc:
                raise _error(name, f"corrupt PNG: chunk {kind!r} at byte {at} has a wrong CRC")
            if kind == b"IEND":
                return


def _describe(e: Exception, max_pixels: int) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(e, UnidentifiedImageError):
        return f"not an image we read ({', '.join(FORMATS)}), or its header is corrupt"
    if isinstance(e, (Image.DecompressionBombWarning, Image.DecompressionBombError)):
        found = re.search(r"\((\d+) pixels\)", str(e))  # Pillow's check, in Image.open
        pixels = f"{found.group(1)} pixels" if found else "too many pixels"
        return (f"the header declares {pixels}, over the limit of {max_pixels} "
                "(zoo.images.MAX_IMAGE_PIXELS): a decompression bomb?")
    text = str(e)
    if "truncated" in text:
        return f"truncated image ({text})"
    if isinstance(e, SyntaxError):
        return f"corrupt image ({text})"
    return f"cannot decode ({type(e).__name__}: {text})"


@contextlib.contextmanager
def _strict_loading(image_file):
    """``LOAD_TRUNCATED_IMAGES`` False while reading, whatever the caller set."""
    old = image_file.LOAD_TRUNCATED_IMAGES
    image_file.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        image_file.LOAD_TRUNCATED_IMAGES = old
