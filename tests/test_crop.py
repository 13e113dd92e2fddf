"""zoo.crop and ``zoo crop``: crops keep hand-annotated subjects of real photos."""

import argparse
import json
import numpy as np
import pytest

from zoo import crop
from zoo.crop import AspectError, crop_size, parse_aspect, place, smart_crop, window_sums

# Subject boxes (x0, y0, x1, y1) in pixels, annotated by hand: each photo was
# saved as a PNG, a candidate rectangle drawn on it and viewed enlarged (2-3x),
# and the edges moved until they sat on the subject's outline.
SUBJECTS = {
    "chelsea": (130, 70, 350, 285),    # the cat's face: both eyes, nose and mouth
    "coffee": (172, 17, 410, 304),     # the cup: rim to the bottom of the handle
    "astronaut": (182, 74, 271, 183),  # the face: hairline to chin, cheek to cheek
    "rocket": (308, 127, 339, 406),    # the rocket: nose cone tip to the pad
}
ASPECTS = ("9:16", "4:5", "1:1", "4:3", "16:9", "21:9")
TOLERANCE = 4  # pixels a crop may shave off a subject (annotation precision)
# Where the subject is larger than the crop along an axis it cannot lie
# inside; there the crop must at least be mostly subject along that axis.
MIN_COVER = 0.85


def _judge(box, top, left, h, w):
    """(ok, note): the subject inside the crop along each axis where it fits,
    and covering MIN_COVER of the crop along an axis where it does not."""
    x0, y0, x1, y1 = box
    ok, notes = True, []
    for a0, a1, c0, c, axis in ((x0, x1, left, w, "x"), (y0, y1, top, h, "y")):
        got = min(a1, c0 + c) - max(a0, c0)
        if a1 - a0 <= c:
            good = got >= (a1 - a0) - TOLERANCE
        else:
            good = got >= MIN_COVER * c
        if not good:
            notes.append(f"{axis}: subject {a0}-{a1}, crop {c0}-{c0 + c}")
        ok &= good
    return ok, "; ".join(notes)


def _photo(name):
    import skimage.data

    return getattr(skimage.data, name)()


@pytest.fixture(scope="module")
def saliencies():
    return {}


def _saliency(saliencies, name):
    if name not in saliencies:  # one classifier pass per photo for the whole module
        saliencies[name] = crop.saliency(_photo(name))
    return saliencies[name]


@pytest.fixture(scope="module")
def astronaut_faces():
    from zoo.face import detect_and_mesh

    return detect_and_mesh(_photo("astronaut"))


def _crops(name, sal, faces):
    """(aspect, smart box, centre box) for every aspect whose crop is smaller
    than the photo."""
    image = _photo(name)
    H, W = image.shape[:2]
    out = []
    for aspect in ASPECTS:
        h, w = crop_size(H, W, aspect)
        if (h, w) == (H, W):
            continue
        smart = None if sal is None else smart_crop(image, aspect, faces=faces, saliency_map=sal)
        out.append((aspect, smart, ((H - h) // 2, (W - w) // 2, h, w)))
    return out


def test_detected_face_is_kept_whole(astronaut_faces):
    # First in the file: the detector's compilation is paid here, not in the
    # subject test below, which pays the classifier's.
    image, faces = _photo("astronaut"), astronaut_faces
    sal = np.zeros(image.shape[:2], np.float32)
    assert len(faces) == 1
    x0, y0, x1, y1 = SUBJECTS["astronaut"]
    fx0, fy0, fx1, fy1 = faces[0].box  # the detector agrees with the annotation
    assert abs(fx0 - x0) < 15 and abs(fx1 - x1) < 15 and y0 - 5 < fy0 < fy1 < y1 + 5
    # Saliency planted at the bottom would pull a 21:9 strip off the face.
    planted = np.zeros_like(sal)
    planted[-60:] = 1.0
    top, left, h, w = smart_crop(image, "21:9", faces=faces, saliency_map=planted)
    assert top <= fy0 and top + h >= fy1
    top, _, _, _ = smart_crop(image, "21:9", faces=False, saliency_map=planted)
    assert top == image.shape[0] - h


@pytest.mark.parametrize("name", sorted(SUBJECTS))
def test_smart_crop_keeps_the_annotated_subject(name, saliencies, request):
    # Only the astronaut has a face; the others skip the detector's cost.
    faces = request.getfixturevalue("astronaut_faces") if name == "astronaut" else False
    image = _photo(name)
    H, W = image.shape[:2]
    failures = []
    cases = _crops(name, _saliency(saliencies, name), faces)
    for aspect, (top, left, h, w), _ in cases:
        assert abs(w / h - parse_aspect(aspect)) < 0.01 and (h == H or w == W)
        assert 0 <= top <= H - h and 0 <= left <= W - w
        ok, note = _judge(SUBJECTS[name], top, left, h, w)
        if not ok:
            failures.append(f"{aspect}: {note}")
    assert len(cases) >= 5
    assert not failures, failures


def test_centre_crop_cuts_annotated_subjects():
    failures, cases = [], 0
    for name, box in SUBJECTS.items():
        for aspect, _, centre in _crops(name, None, False):
            cases += 1
            ok, note = _judge(box, *centre)
            if not ok:
                failures.append(f"{name} {aspect}: {note}")
    print(f"\n{cases} crops; the centre crop cuts the subject in {len(failures)}:")
    print("\n".join(failures))
    assert cases >= 20
    assert len(failures) > 0


def test_given_face_boxes_are_hard_constraints():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    sal = np.zeros((120, 200))
    sal[:, :30] = 1.0  # the salient part is at the far left
    face = (150, 40, 190, 80)  # x0, y0, x1, y1: the far right
    top, left, h, w = smart_crop(image, "1:1", faces=[face], saliency_map=sal)
    assert (h, w) == (120, 120) and left <= 150 and left + w >= 190
    assert left == 190 - 120  # as far left as the face allows
    top, left, h, w = smart_crop(image, "1:1", faces=False, saliency_map=sal)
    assert left == 0
    # Two faces that no 1:1 crop holds together: the first (best) one wins.
    top, left, h, w = smart_crop(image, "1:1", faces=[face, (0, 0, 40, 40)], saliency_map=sal)
    assert left == 190 - 120


def test_flat_saliency_gives_the_centre_crop():
    image = np.full((90, 160, 3), 128, np.uint8)
    top, left, h, w = smart_crop(image, "1:1", faces=False, saliency_map=np.ones((90, 160)))
    assert (top, left, h, w) == (0, 35, 90, 90)


@pytest.mark.parametrize("aspect, expected", [
    ("16:9", 16 / 9), ("9:16", 9 / 16), (" 4 : 3 ", 4 / 3), ("21x9", 21 / 9), ("1.5", 1.5),
    ((16, 9), 16 / 9), ([1, 1], 1.0), (1.777, 1.777), (2, 2.0)])
def test_parse_aspect(aspect, expected):
    assert parse_aspect(aspect) == pytest.approx(expected)


@pytest.mark.parametrize("aspect", ["0:1", "1:0", "abc", "-16:9", "16:9:1", "", "inf",
                                    "nan:1", -1.5, 0, (16,), (16, "a"), True, None])
def test_parse_aspect_errors(aspect):
    with pytest.raises(AspectError) as e:
        parse_aspect(aspect)
    message = str(e.value)
    assert "\n" not in message and repr(aspect) in message and "16:9" in message
    assert isinstance(e.value, ValueError)


def test_crop_size_by_hand():
    # chelsea is 451 x 300: 16:9 keeps the width, 451 * 9 / 16 = 253.7 rows;
    # 9:16 keeps the height, 300 * 9 / 16 = 168.75 columns.
    assert crop_size(300, 451, "16:9") == (254, 451)
    assert crop_size(300, 451, "9:16") == (300, 169)
    assert crop_size(300, 451, "1:1", scale=0.5) == (150, 150)
    with pytest.raises(ValueError, match="scale"):
        crop_size(300, 451, "1:1", scale=0)


def test_window_sums_and_argmax_match_brute_force():
    rng = np.random.default_rng(1)
    sal = rng.random((9, 13))
    for h, w in ((1, 1), (3, 5), (9, 4), (6, 13), (9, 13)):
        sums = window_sums(sal, h, w)
        brute = np.array([[sal[t:t + h, l:l + w].sum() for l in range(13 - w + 1)]
                          for t in range(9 - h + 1)])
        np.testing.assert_allclose(sums, brute, rtol=1e-12)
        # Without the thirds term the placement is the brute-force argmax.
        weight, crop.THIRDS_WEIGHT = crop.THIRDS_WEIGHT, 0.0
        try:
            assert place(sal, h, w) == np.unravel_index(np.argmax(brute), brute.shape)
        finally:
            crop.THIRDS_WEIGHT = weight
    with pytest.raises(ValueError, match="does not fit"):
        window_sums(sal, 10, 2)


def test_saliency_is_a_normalised_map_on_the_subject(saliencies):
    image, sal = _photo("coffee"), _saliency(saliencies, "coffee")
    assert sal.shape == image.shape[:2] and sal.dtype == np.float32
    assert sal.min() >= 0 and sal.max() == pytest.approx(1.0)
    x0, y0, x1, y1 = SUBJECTS["coffee"]
    inside = sal[y0:y1, x0:x1].mean()
    outside = (sal.sum() - sal[y0:y1, x0:x1].sum()) / (sal.size - (y1 - y0) * (x1 - x0))
    assert inside > 2 * outside
    with pytest.raises(ValueError, match="saliency needs"):
        crop.saliency(image, "mobilenet_v3_small")


def _cli(argv):
    from zoo.crop_cli import register

    parser = argparse.ArgumentParser(prog="zoo")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_writes_one_crop_per_aspect(tmp_path, capsys):
    from PIL import Image

    image = _photo("coffee")
    src = tmp_path / "cup.png"
    Image.fromarray(image).save(src)
    out = tmp_path / "out"
    assert _cli(["crop", str(src), "--aspect", "16:9", "--aspect", "9:16", "--out", str(out),
                 "--json", "--no-faces"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["aspect"] for d in lines] == ["16:9", "9:16"]
    for d, name in zip(lines, ("cup_crop_16x9.png", "cup_crop_9x16.png")):
        assert d["file"] == str(out / name)
        written = np.asarray(Image.open(out / name))
        t, l, h, w = d["top"], d["left"], d["height"], d["width"]
        np.testing.assert_array_equal(written, image[t:t + h, l:l + w])
    with pytest.raises(ValueError, match="already exist.*--overwrite"):
        _cli(["crop", str(src), "--aspect", "16:9", "--aspect", "9:16", "--out", str(out)])
    assert _cli(["crop", str(src), "--aspect", "16:9", "--out", str(out), "--overwrite",
                 "--no-faces"]) == 0
    assert "cup.png 16:9: top=" in capsys.readouterr().out


def test_cli_rejects_bad_input_before_work(tmp_path):
    with pytest.raises(AspectError, match="'0:1'"):
        _cli(["crop", "--example", "chelsea", "--aspect", "0:1", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--example moon"):
        _cli(["crop", "--example", "moon", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="give image files"):
        _cli(["crop", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())
