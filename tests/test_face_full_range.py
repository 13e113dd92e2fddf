"""BlazeFace full range (weights from MediaPipe's sparse TFLite file, against
LiteRT running the same file), its anchors and decoding, the pyramid mode of
``zoo.face``, and the recall set of ``zoo.face_recall``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from PIL import Image

import zoo
from test_tflite_reader import interpreter
from zoo import face
from zoo.face_recall import SMALL_FACE, build_composites, match, measure_recall
from zoo.models.blazeface import depth_to_space, upsample2x
from zoo.registry import variables_template
from zoo.weights.fetch import fetch

NAME = "blazeface_full_range"
# Box from zoo.face.detect_and_mesh(skimage.data.astronaut()) with the short-range
# detector (tests/test_segment.py records the same numbers), rounded.
ASTRONAUT_FACE = np.array([177.6, 82.9, 272.9, 178.2])


def _iou(a, b):
    return float(face._iou(np.asarray(a, np.float64), np.asarray(b, np.float64)[None])[0])


# ------------------------------------------------------------------ model


def test_architecture_matches_the_graph_op_count():
    # face_detection_full_range_sparse.tflite holds 49 CONV_2D and 42
    # DEPTHWISE_CONV_2D ops (counted with LiteRT's op list), each with a bias.
    model = zoo.build(NAME)
    params = variables_template(model)["params"]
    layers = model.tflite_layers()
    assert len(layers) == len(set(layers)) == 49 + 42
    leaves = {path for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
    assert len(leaves) == 2 * len(layers)
    x = jnp.zeros((1, 192, 192, 3))
    regs, scores = jax.eval_shape(lambda v: model.apply(v, x), variables_template(model))
    assert regs.shape == (1, 2304, 16) and scores.shape == (1, 2304, 1)
    with pytest.raises(ValueError, match="192x192"):
        model.apply(variables_template(model), jnp.zeros((1, 128, 128, 3)))


def test_upsample_and_depth_to_space_against_references():
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 5, 6, 3))
    # half-pixel bilinear with clamped edges is what jax.image.resize does when upsampling
    ref = jax.image.resize(x, (1, 10, 12, 3), "bilinear")
    np.testing.assert_allclose(upsample2x(x), ref, atol=1e-6)
    # hand-worked: a 1x1 pixel with channels (a, b, c, d) -> [[a, b], [c, d]]
    y = depth_to_space(jnp.arange(4.0).reshape(1, 1, 1, 4), 2)
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1], [2, 3]])


@pytest.fixture(scope="module")
def pretrained():
    model, variables = zoo.create(NAME, pretrained=True)
    return model, variables, fetch(zoo.get_spec(NAME).weights[0], name=NAME)


def test_litert_parity_on_astronaut(pretrained):
    model, variables, path = pretrained
    a = skimage.data.astronaut()
    img = np.asarray(Image.fromarray(a).resize((192, 192), Image.Resampling.BILINEAR))
    rand = np.random.default_rng(0).uniform(-1, 1, (192, 192, 3))
    x = np.stack([img / 127.5 - 1.0, rand]).astype(np.float32)
    ours = [np.asarray(o) for o in jax.jit(model.apply)(variables, x)]
    it = interpreter(path)
    (inp,) = it.get_input_details()
    for k, image in enumerate(x):
        it.set_tensor(inp["index"], image[None])
        it.invoke()
        theirs = [it.get_tensor(d["index"])[0] for d in it.get_output_details()]
        for o, t in zip(ours, theirs):
            assert o[k].shape == t.shape
            assert np.abs(o[k] - t).max() <= 1e-3 * np.ptp(t)
    # the astronaut's face is there: one anchor region scoring above MediaPipe's 0.6
    assert ours[1][0].max() > np.log(0.6 / 0.4)


# ------------------------------------------------------- anchors, decoding


def test_full_range_anchors_hand_worked():
    a = face.DETECTORS["full_range"].anchors
    assert a.shape == (2304, 4)  # 48 x 48 grid (192 / stride 4), one anchor per cell
    np.testing.assert_allclose(a[0], [0.5 / 48, 0.5 / 48, 1, 1])
    np.testing.assert_allclose(a[1], [1.5 / 48, 0.5 / 48, 1, 1])  # row-major: x first
    np.testing.assert_allclose(a[48], [0.5 / 48, 1.5 / 48, 1, 1])
    np.testing.assert_allclose(a[-1], [47.5 / 48, 47.5 / 48, 1, 1])
    assert face.DETECTORS["short_range"].anchors is face.ANCHORS


def test_full_range_decoding_of_a_planted_detection():
    cfg = face.DETECTORS["full_range"]
    regs = np.zeros((2304, 16), np.float32)
    scores = np.full((2304, 1), -10.0, np.float32)
    k = 48 * 10 + 20  # anchor centre (20.5 / 48, 10.5 / 48)
    scores[k] = 1.0  # sigmoid 0.731 >= 0.6
    scores[k + 1] = 0.2  # sigmoid 0.55 < 0.6: dropped
    regs[k, :4] = [19.2, -9.6, 38.4, 57.6]  # in 192-pixel units: +0.1, -0.05, w 0.2, h 0.3
    regs[k, 4:6] = [1.92, 0.0]
    boxes, kps, probs = face.decode(regs, scores, cfg.anchors, scale=cfg.scale,
                                    min_score=cfg.min_score)
    cx, cy = 20.5 / 48 + 0.1, 10.5 / 48 - 0.05
    np.testing.assert_allclose(boxes, [[cx - 0.1, cy - 0.15, cx + 0.1, cy + 0.15]], atol=1e-6)
    np.testing.assert_allclose(kps[0, 0], [20.5 / 48 + 0.01, 10.5 / 48], atol=1e-6)
    np.testing.assert_allclose(probs, [1 / (1 + np.exp(-1.0))])
    with pytest.raises(ValueError, match="anchors"):
        face.decode(regs, scores)  # the short-range anchors do not fit


# ------------------------------------------------------------ pipeline


def test_pyramid_views_hand_worked():
    views = face.pyramid_views(512, 512)
    assert len(views) == 1 + 3 * 3 + 7 * 7
    assert views[0] == (256, 256, 512, (False,) * 4)
    assert views[1] == (128, 128, 256, (False, False, True, True))  # top-left tile
    assert views[10] == (64, 64, 128, (False, False, True, True))
    assert views[-1] == (448, 448, 128, (True, True, False, False))
    # a 128x128 image: tiles of 32 px would be upsampled 4x, so only level 1 (64 px)
    assert len(face.pyramid_views(128, 128)) == 1 + 9
    # a wide image: tiles wholly in the letterbox border above and below are skipped
    wide = face.pyramid_views(100, 400)
    assert all(cy + s / 2 > 0 and cy - s / 2 < 100 for _, cy, s, _ in wide)


def test_cut_boxes_dropped_only_at_inner_edges():
    boxes = np.array([[0.0, 0.3, 0.4, 0.6], [0.3, 0.3, 0.6, 0.6], [0.7, 0.7, 1.0, 1.0]])
    np.testing.assert_array_equal(face._uncut(boxes, (True, False, False, False)),
                                  [False, True, True])
    np.testing.assert_array_equal(face._uncut(boxes, (False, False, False, False)),
                                  [True, True, True])
    np.testing.assert_array_equal(face._uncut(boxes, (False, False, True, True)),
                                  [True, True, False])


@pytest.mark.slow  # ~55 s on the loaded 2-core machine: two detectors and the mesh compile
def test_detector_choice_on_astronaut():
    a = skimage.data.astronaut()
    faces = face.detect_and_mesh(a, detector="full_range")
    assert len(faces) == 1 and _iou(faces[0].box, ASTRONAUT_FACE) > 0.7
    assert faces[0].landmarks.shape == (468, 3)
    boxes, _, scores = face.detect_faces([a], detector="pyramid")[0]
    assert _iou(boxes[0], ASTRONAUT_FACE) > 0.7 and scores[0] == scores.max()
    with pytest.raises(ValueError, match="detector='far'"):
        face.detect_and_mesh(a, detector="far")


# -------------------------------------------------------------- recall


def test_match_hand_worked():
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]], float)
    found = np.array([[0, 0, 10, 12],  # IoU 100/120 with face 0
                      [1, 0, 11, 10],  # IoU 90/110 with face 0: face 0 already taken
                      [24, 0, 34, 10]])  # IoU 60/140 < 0.5 with face 1
    np.testing.assert_array_equal(match(truth, found), [True, False, False])
    np.testing.assert_array_equal(match(truth, found, iou=0.4), [True, True, False])
    assert not match(truth, np.zeros((0, 4))).any()


def test_composites_deterministic_and_well_formed():
    a, b, c = build_composites(3, n_images=2), build_composites(3, n_images=2), \
        build_composites(4, n_images=2)
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.boxes, y.boxes)
               for x, y in zip(a, b))
    assert not np.array_equal(a[0].boxes, c[0].boxes)
    for comp in a:
        h, w = comp.image.shape[:2]
        bx = comp.boxes
        assert len(bx) >= 4 and comp.image.dtype == np.uint8
        assert (bx[:, 0] >= 0).all() and (bx[:, 2] <= w).all() and (bx[:, 3] <= h).all()
        assert match(bx, bx).all() and match(bx, bx[::-1]).all()
        side = bx[:, 2] - bx[:, 0]
        assert (side >= 16).all() and (side <= 256).all() and (side <= SMALL_FACE).any()


@pytest.mark.slow  # ~40 s: 8 composites through short range and 472 pyramid views
def test_pyramid_beats_short_range_on_small_faces():
    # Measured with this set (seed 1, 8 composites, 24 faces of 16-40 px): short range
    # finds 0 of them, pyramid 8 (python -m zoo.face_recall gives the full table).
    comps = build_composites(1, n_images=8)
    (fs, ts) = measure_recall(comps, "short_range")["bins"][(16, SMALL_FACE)]
    (fp, tp) = measure_recall(comps, "pyramid")["bins"][(16, SMALL_FACE)]
    assert ts == tp >= 15
    assert fp / tp >= fs / ts + 0.15


def test_sparse_reader_errors(pretrained, tmp_path):
    from zoo.models.blazeface import variables_from_sparse_tflite
    from zoo.weights.errors import TFLiteFormatError, WeightError, WeightMismatchError

    _, _, path = pretrained
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(path.read_bytes()[:200_000])
    with pytest.raises(WeightError) as err:
        variables_from_sparse_tflite(cut, NAME)
    assert isinstance(err.value, (TFLiteFormatError, WeightMismatchError))
    assert "cut.tflite" in str(err.value) and "\n" not in str(err.value)
    # the short-range file is a well-formed graph, but not this network (37 convs, not 91)
    short = fetch(zoo.get_spec("blazeface_short_range").weights[0], name="blazeface_short_range")
    with pytest.raises(WeightMismatchError, match="conv ops"):
        variables_from_sparse_tflite(short, NAME)
