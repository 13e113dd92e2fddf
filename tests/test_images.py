"""zoo.images.read_image: every mode converted by its rule (checked pixel by
pixel), EXIF orientation applied, and truncated, corrupt or oversized files
refused with one line naming the file; ``zoo predict`` turns that into exit
status 2."""

import io
import struct
import zlib

import numpy as np
import pytest
import skimage.data
from helpers import zoo_cli
from PIL import Image, ImageFile, ImageOps

from zoo.images import MAX_IMAGE_PIXELS, ImageFileError, read_image
from zoo.weights.fuzz.formats_images import _exif, _ihdr, png_bytes, png_chunks


def save(tmp_path, im, name, **kw):
    path = tmp_path / name
    im.save(path, **kw)
    return path


def refused(path, *words, **kw):
    with pytest.raises(ImageFileError) as e:
        read_image(path, **kw)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg and "cannot read image" in msg, msg
    for w in words:
        assert w in msg, msg
    assert isinstance(e.value, ValueError)
    return msg


# -- conversions ----------------------------------------------------------------

def test_rgb_png_and_jpeg_photo(tmp_path):
    photo = skimage.data.chelsea()
    a = read_image(save(tmp_path, Image.fromarray(photo), "cat.png"))
    assert a.dtype == np.uint8 and a.shape == photo.shape and np.array_equal(a, photo)
    b = read_image(save(tmp_path, Image.fromarray(photo), "cat.jpg", quality=95))
    assert b.shape == photo.shape and np.abs(b.astype(int) - photo).mean() < 3


def test_cmyk_to_rgb(tmp_path):
    cmyk = np.array([[[0, 255, 255, 0], [0, 0, 0, 0], [0, 0, 0, 255], [255, 0, 0, 0],
                      [0, 0, 0, 128], [128, 64, 0, 64]]], np.uint8)
    im = Image.frombytes("CMYK", (6, 1), cmyk.tobytes())
    a = read_image(save(tmp_path, im, "cmyk.tif"))  # lossless
    c, k = cmyk[..., :3].astype(int), cmyk[..., 3:].astype(int)
    expected = (255 - c) * (255 - k) / 255  # the usual formula, no colour profile
    assert np.abs(a - expected).max() <= 1
    assert a[0, 0].tolist() == [255, 0, 0] and a[0, 2].tolist() == [0, 0, 0]
    # A CMYK JPEG (Adobe, stored inverted) reads the same colours, within JPEG's error.
    flat = Image.new("CMYK", (16, 16), (0, 255, 255, 0))
    assert np.abs(read_image(save(tmp_path, flat, "cmyk.jpg", quality=95)).astype(int)
                  - [255, 0, 0]).max() <= 3


@pytest.mark.parametrize("mode,suffix", [("I;16", "png"), ("I", "tif")])
def test_16_bit_grey_is_scaled_not_clipped(tmp_path, mode, suffix):
    values = np.array([[0, 1, 128, 257, 1000, 32768, 65280, 65535]], np.uint16)
    im = Image.fromarray(values) if mode == "I;16" else Image.fromarray(values.astype(np.int32))
    assert im.mode == mode
    path = save(tmp_path, im, f"grey16.{suffix}")
    with Image.open(path) as check:
        assert check.mode in ("I;16", "I")  # as files come
    a = read_image(path)
    assert a.shape == (1, 8, 3) and (a == a[..., :1]).all()  # grey: R = G = B
    assert a[0, :, 0].tolist() == [0, 0, 0, 1, 4, 128, 254, 255]
    scaled = np.round(values[0].astype(float) * 255 / 65535).astype(np.uint8)
    assert np.array_equal(a[0, :, 0], scaled)


def test_palette_with_transparency_on_white(tmp_path):
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 0, 255, 10, 20, 30] + [0] * (256 * 3 - 9))
    im.putdata([0, 1, 2])
    a = read_image(save(tmp_path, im, "p.png", transparency=1))  # index 1 transparent
    assert a[0].tolist() == [[255, 0, 0], [255, 255, 255], [10, 20, 30]]
    # Per-entry alpha (tRNS with several values): 128 of blue on white.
    b = read_image(save(tmp_path, im, "pa.png", transparency=bytes([255, 128, 0])))
    assert b[0].tolist() == [[255, 0, 0], [127, 127, 255], [255, 255, 255]]
    # The same in a GIF (one transparent index).
    c = read_image(save(tmp_path, im, "p.gif", transparency=2))
    assert c[0].tolist() == [[255, 0, 0], [0, 0, 255], [255, 255, 255]]


def composite(rgb, alpha):
    alpha = alpha.astype(int)
    return (rgb.astype(int) * alpha + 255 * (255 - alpha) + 127) // 255


def test_rgba_and_la_composited_onto_white(tmp_path):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    rgba[0, 0, 3], rgba[0, 1, 3] = 0, 255
    a = read_image(save(tmp_path, Image.fromarray(rgba), "rgba.png"))
    assert np.array_equal(a, composite(rgba[..., :3], rgba[..., 3:]))
    assert a[0, 0].tolist() == [255, 255, 255] and np.array_equal(a[0, 1], rgba[0, 1, :3])
    la = rgba[..., [0, 3]]
    b = read_image(save(tmp_path, Image.fromarray(la, "LA"), "la.png"))
    assert np.array_equal(b, np.repeat(composite(la[..., :1], la[..., 1:]), 3, -1))
    # 50 % black on white is mid grey, whatever colour hides under alpha 0.
    half = Image.fromarray(np.array([[[0, 0, 0, 128], [9, 200, 7, 0]]], np.uint8))
    assert read_image(save(tmp_path, half, "half.png"))[0].tolist() == [[127] * 3, [255] * 3]


def test_grey_one_bit_and_webp(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    a = read_image(save(tmp_path, Image.fromarray(grey), "grey.png"))
    assert np.array_equal(a, np.repeat(grey[..., None], 3, -1))
    bits = read_image(save(tmp_path, Image.fromarray(grey >= 128), "bits.png"))
    assert np.array_equal(bits[..., 0], np.where(grey >= 128, 255, 0))
    photo = skimage.data.astronaut()[::4, ::4]
    w = read_image(save(tmp_path, Image.fromarray(photo), "a.webp", lossless=True))
    assert np.array_equal(w, photo)


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_exif_orientation_as_exif_transpose(tmp_path, orientation, suffix):
    photo = skimage.data.astronaut()[::8, ::6]  # 64 x 86: not square, not symmetric
    path = save(tmp_path, Image.fromarray(photo), f"o{orientation}.{suffix}",
                exif=_exif(orientation), **({"quality": 95} if suffix == "jpg" else {}))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    a = read_image(path)
    assert np.array_equal(a, expected) and a.flags.c_contiguous
    if suffix == "png":
        turned = orientation in (5, 6, 7, 8)
        assert a.shape == ((86, 64, 3) if turned else (64, 86, 3))
        if orientation == 6:  # the camera was turned right: turn the picture back, clockwise
            assert np.array_equal(a, np.rot90(photo, -1))


def test_broken_exif_is_ignored(tmp_path, recwarn):
    photo = skimage.data.astronaut()[::8, ::8]
    path = save(tmp_path, Image.fromarray(photo), "x.png", exif=b"Exif\x00\x00MM\x00*garbage")
    assert np.array_equal(read_image(path), photo)
    assert not recwarn.list  # nothing printed: the block is just ignored


# -- refusals -------------------------------------------------------------------

@pytest.fixture(scope="module")
def jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def png_bytes_():
    buf = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).save(buf, "PNG")
    return buf.getvalue()


def test_truncated_jpeg_and_png(tmp_path, jpeg_bytes, png_bytes_):
    jpg = tmp_path / "cut.jpg"
    jpg.write_bytes(jpeg_bytes[:len(jpeg_bytes) // 2])
    refused(jpg, "truncated")
    png = tmp_path / "cut.png"
    png.write_bytes(png_bytes_[:len(png_bytes_) // 2])
    refused(png, "truncated")


def test_truncated_refused_even_when_the_caller_allows_it(tmp_path, jpeg_bytes, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpg = tmp_path / "cut.jpg"
    jpg.write_bytes(jpeg_bytes[:len(jpeg_bytes) // 3])
    refused(jpg, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the caller's setting is back


def test_corrupt_png_pixels_are_refused(tmp_path, png_bytes_):
    flipped = bytearray(png_bytes_)
    flipped[len(flipped) // 2] ^= 0x04  # inside IDAT: Pillow alone would not notice
    path = tmp_path / "flip.png"
    path.write_bytes(bytes(flipped))
    refused(path, "wrong CRC")
    chunks = png_chunks(png_bytes_)
    path.write_bytes(png_bytes([c for c in chunks if c[0] != b"IEND"]))
    refused(path, "no IEND")


def test_not_an_image_and_formats_never_tried(tmp_path):
    for name, data in [("notes.jpg", b"just text\n"), ("empty.png", b""),
                       ("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"),
                       ("x.ppm", b"P6\n2 2\n255\n" + bytes(12))]:
        (tmp_path / name).write_bytes(data)
        refused(tmp_path / name, "not an image we read")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nope.jpg")


def bomb_png(w, h):
    """A grey PNG header declaring w x h, with a few real rows."""
    rows = zlib.compress(b"\x00" + bytes(w)) if w < 1 << 16 else b""
    return png_bytes([(b"IHDR", _ihdr(w, h)), (b"IDAT", rows), (b"IEND", b"")])


@pytest.mark.parametrize("w,h", [(9000, 9000), (10000, 10000), (70000, 70000)])
def test_decompression_bombs(tmp_path, w, h):
    # 81 Mpx passes Pillow's own limit (89 Mpx) but not ours; 100 Mpx sets off
    # Pillow's DecompressionBombWarning, 4.9 Gpx its DecompressionBombError.
    assert 9000 * 9000 > MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(w, h))
    refused(path, "decompression bomb", str(MAX_IMAGE_PIXELS), str(w * h))


def test_pixel_limit_is_a_parameter(tmp_path):
    path = save(tmp_path, Image.new("RGB", (100, 50)), "small.png")
    assert read_image(path, max_pixels=5000).shape == (50, 100, 3)
    refused(path, "5000 pixels, over the limit of 4999", max_pixels=4999)


def test_jpeg_bomb_header(tmp_path, jpeg_bytes):
    b = bytearray(jpeg_bytes)
    sof = b.index(b"\xff\xc0")
    struct.pack_into(">HH", b, sof + 5, 30000, 30000)
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bytes(b))
    refused(path, "decompression bomb")


# -- the command line -----------------------------------------------------------

def test_zoo_predict_corrupt_image_exits_2_with_one_line(tmp_path, jpeg_bytes):
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(jpeg_bytes[:len(jpeg_bytes) // 2])
    r = zoo_cli("predict", str(bad), "--model", "mobilenet_v2")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "truncated" in lines[0], r.stderr
    assert lines[0].startswith("zoo predict: error:")
