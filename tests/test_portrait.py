"""Portrait mode: the guided filter against hand-worked cases, the composite
on planted masks and depth maps (no network runs outside the slow test),
and ``zoo portrait``."""

import argparse

import numpy as np
import pytest

from zoo.depth.pictures import disc_kernel, linear_to_srgb, srgb_to_linear
from zoo.portrait import guided_filter, portrait, refine_mask


def naive_box(a, r):
    """Mean over the (2r+1)^2 window clipped at the border, one pixel at a time."""
    h, w = a.shape
    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            out[i, j] = a[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean()
    return out


def disc_mask(h, w, cy, cx, radius):
    y, x = np.mgrid[:h, :w]
    return (np.hypot(y - cy, x - cx) <= radius).astype(np.float32)


def texture(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# ----------------------------------------------------------- guided filter


def test_constant_guide_gives_the_box_filter_twice():
    """A flat guide has no variance: slope a = 0 and offset b = mean(p) per
    window, so q = the mean over windows of the window means."""
    mask = np.random.default_rng(1).random((13, 17))
    for guide in (np.full((13, 17), 0.4), np.full((13, 17, 3), 0.7)):
        q = guided_filter(guide, mask, 2, 1e-3)
        np.testing.assert_allclose(q, naive_box(naive_box(mask, 2), 2), atol=1e-12)


def test_guide_edge_keeps_the_mask_edge_sharp():
    """Guide and mask share a step: in windows across it cov = var, so a =
    var / (var + eps) ~ 1 and b ~ 0: the step comes back; a box filter of the
    same radius spreads it over 4r pixels."""
    step = np.zeros((20, 40))
    step[:, 20:] = 1.0
    r = 4
    q = guided_filter(np.repeat(step[..., None], 3, -1), step, r, 1e-4)
    box = naive_box(naive_box(step, r), r)
    assert np.abs(q - step).max() < 0.01
    assert np.abs(box - step).max() > 0.4
    ramp = lambda a: int(((a[10] > 0.05) & (a[10] < 0.95)).sum())  # noqa: E731
    assert ramp(q) == 0 and ramp(box) >= 2 * r


def test_refined_mask_is_in_unit_range():
    """A step in the mask over a smooth ramp in the guide: the least-squares
    line through a step, in the window centred on it, reaches (5r + 2) /
    (4r + 2) = 1.22 at the window's end for r = 4 (and -0.22 at the other),
    which the averaging over windows shrinks but does not remove, so the raw
    filter leaves [0, 1]; the refined mask is clipped to a probability,
    float32, at the image's size."""
    ramp = np.tile(np.linspace(0, 255, 41), (33, 1))
    step = (np.arange(41) >= 20) * np.ones((33, 1))
    raw = guided_filter(ramp / 255.0, step, 4, 1e-6)
    assert raw.min() < -0.01 and raw.max() > 1.01
    q = refine_mask(ramp, step, 4, 1e-6)
    assert q.shape == (33, 41) and q.dtype == np.float32
    assert q.min() == 0 and q.max() == 1
    rng = np.random.default_rng(2)
    q = refine_mask(rng.integers(0, 256, (33, 41, 3), dtype=np.uint8),
                    (rng.random((33, 41)) > 0.5).astype(np.float32), 3, 1e-4)
    assert q.min() >= 0 and q.max() <= 1


# --------------------------------------------------------------- portrait


@pytest.mark.parametrize("depth", [False, True])
def test_portrait_keeps_the_subject_and_blurs_the_background(depth):
    h, w = 64, 80
    image = texture(h, w)
    mask = disc_mask(h, w, 32, 40, 18)
    inverse_depth = None
    if depth:  # left far, right nearer, the subject nearest
        inverse_depth = np.where(np.arange(w) < w // 2, 0.0, 0.5)[None].repeat(h, 0)
        inverse_depth = np.maximum(inverse_depth, mask)
    out = portrait(image, mask=mask, inverse_depth=inverse_depth, depth=depth)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    inside = disc_mask(h, w, 32, 40, 10).astype(bool)  # farther in than the refine radius
    assert np.abs(out[inside].astype(int) - image[inside]).max() <= 1
    outside = disc_mask(h, w, 32, 40, 26) == 0
    # blurred noise: each pixel moves toward the mean, by about 64 levels for uniform noise
    assert np.abs(out[outside].astype(int) - image[outside]).mean() > 40
    if depth:  # farther -> larger disc -> smoother
        left, right = out[:, :12].astype(float), out[:, -12:].astype(float)
        assert left.std() < right.std()


def test_no_halo_around_a_bright_subject():
    """A white square on a dark background: the blurred background right next
    to it stays dark (the subject is left out of the blur), whereas blurring
    the whole picture and pasting the subject back leaves a bright rim."""
    h, w = 60, 80
    image = np.full((h, w, 3), 20, np.uint8)
    image[20:40, 30:50] = 255
    mask = np.zeros((h, w), np.float32)
    mask[20:40, 30:50] = 1.0
    out = portrait(image, mask=mask, depth=False, strength=2.0)
    np.testing.assert_array_equal(out[20:40, 30:50], 255)
    rim = np.zeros((h, w), bool)
    rim[17:43, 27:53] = True
    rim[20:40, 30:50] = False
    assert np.abs(out[rim].astype(int) - 20).max() <= 2

    from scipy.signal import fftconvolve

    radius = 2.0 * max(h, w) / 40  # strength 2, the largest radius
    linear = srgb_to_linear(image / 255.0)
    blurred = fftconvolve(linear, disc_kernel(radius)[..., None], mode="same", axes=(0, 1))
    naive = np.rint(255 * linear_to_srgb(mask[..., None] * linear
                                         + (1 - mask[..., None]) * blurred))
    assert naive[rim].max() > 100


def test_zero_strength_returns_the_image():
    image = texture(40, 48)
    out = portrait(image, mask=disc_mask(40, 48, 20, 24, 10), depth=False, strength=0)
    np.testing.assert_array_equal(out, image)


def test_grey_and_float_inputs_match_rgb_uint8():
    grey = texture(40, 48)[..., 0]
    mask = disc_mask(40, 48, 20, 24, 10)
    want = portrait(np.repeat(grey[..., None], 3, -1), mask=mask, depth=False)
    np.testing.assert_array_equal(portrait(grey, mask=mask, depth=False), want)
    np.testing.assert_array_equal(portrait(grey.astype(np.float32), mask=mask, depth=False), want)


@pytest.mark.parametrize("call,message", [
    (lambda: portrait(np.zeros((40, 40, 2), np.uint8), mask=np.zeros((40, 40))), "image"),
    (lambda: portrait(np.zeros((8, 8, 3), np.uint8), mask=np.zeros((8, 8))), "too small"),
    (lambda: portrait(texture(40, 40), mask=np.zeros((40, 40)), strength=-1), "strength=-1"),
    (lambda: portrait(texture(40, 40), mask=np.zeros((30, 40))), "mask of shape (30, 40)"),
    (lambda: portrait(texture(40, 40), mask=np.full((40, 40), 2.0)), "in [0, 1]"),
    (lambda: guided_filter(np.zeros((9, 9)), np.zeros((9, 9)), 0, 1e-3), "radius=0"),
])
def test_bad_input_one_line_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------ zoo portrait


@pytest.fixture
def planted_models(monkeypatch):
    """zoo.segment.person and zoo.depth.estimate replaced by planted maps."""
    import zoo.depth
    import zoo.segment

    calls = []

    def person(image):
        calls.append("person")
        h, w = image.shape[:2]
        return disc_mask(h, w, h / 2, w / 2, min(h, w) / 3)

    def estimate(image, model, flip=False):
        calls.append((model, flip))
        h, w = image.shape[:2]
        return np.tile(np.linspace(0, 1, w, dtype=np.float32), (h, 1))

    monkeypatch.setattr(zoo.segment, "person", person)
    monkeypatch.setattr(zoo.depth, "estimate", estimate)
    return calls


def parse(*argv):
    from zoo.portrait_cli import register

    parser = argparse.ArgumentParser(prog="zoo")
    register(parser.add_subparsers())
    return parser.parse_args(["portrait", *argv])


def test_cli_writes_pictures_and_refuses_to_overwrite(tmp_path, capsys, planted_models):
    from PIL import Image

    from zoo.portrait_cli import cmd_portrait

    Image.fromarray(texture(48, 64)).save(tmp_path / "in.png")
    out = tmp_path / "pictures"
    args = parse(str(tmp_path / "in.png"), "--out", str(out))
    assert args.func(args) == 0
    assert planted_models == ["person", ("midas_small_lite0", True)]
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'in.png'} -> {out / 'in_portrait.png'}, {out / 'in_mask.png'}" in printed
    with Image.open(out / "in_portrait.png") as im:
        assert im.size == (64, 48) and im.mode == "RGB"
    with Image.open(out / "in_mask.png") as im:
        assert im.size == (64, 48) and im.mode == "L"
        assert np.asarray(im)[24, 32] == 255 and np.asarray(im)[0, 0] == 0
    with pytest.raises(ValueError, match="already exist; pass --overwrite"):
        cmd_portrait(args)
    args = parse(str(tmp_path / "in.png"), "--out", str(out), "--overwrite", "--no-depth")
    planted_models.clear()
    assert cmd_portrait(args) == 0
    assert planted_models == ["person"]


@pytest.mark.parametrize("argv,message", [
    (["--example", "astronaut", "--strength", "-1"], "--strength -1.0: expected a value >= 0"),
    (["--example", "moon"], "--example moon: use astronaut"),
    ([], "give image files, folders or --example NAME"),
    (["missing.png"], "no such file or folder"),
])
def test_cli_bad_options(tmp_path, argv, message):
    from zoo.portrait_cli import cmd_portrait

    with pytest.raises(ValueError) as e:
        cmd_portrait(parse(*argv, "--out", str(tmp_path)))
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_astronaut_with_the_real_models():
    """The shipped segmentation and depth networks: her face and suit are
    kept, the flag at the top left is blurred."""
    import skimage.data

    image = skimage.data.astronaut()
    out = portrait(image)
    for kept in ((slice(70, 130), slice(190, 250)), (slice(300, 400), slice(60, 200))):
        assert np.abs(out[kept].astype(int) - image[kept]).max() <= 2
    flag = (slice(0, 100), slice(0, 60))
    assert np.abs(out[flag].astype(int) - image[flag]).mean() > 5


def test_cli_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as e:
        parse("--help")
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "zoo portrait photo.jpg --out portraits/" in out and "--no-depth" in out
