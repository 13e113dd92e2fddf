"""Person segmentation: MediaPipe's selfie segmentation models as Flax
models (weights mapped from the pinned wheel's TFLite files) against the
LiteRT interpreter running the same files, and ``zoo.segment.person``
against MediaPipe's pipeline rebuilt from OpenCV's calls (the ones
MediaPipe's calculators make) around LiteRT."""

import dataclasses
import math

import jax
import numpy as np
import pytest
import skimage.data

import zoo
import zoo.segment as seg
from zoo.counting import analytic_counts, count_params
from zoo.models import selfie_segmentation as ss
from zoo.registry import WeightSource
from zoo.weights.errors import WeightMismatchError
from zoo.weights.fetch import fetch
from zoo.weights.tflite import read_tflite

NAMES = ("selfie_segmentation", "selfie_segmentation_landscape")


def _member(file, sha256):
    return WeightSource(format="tflite", package="mediapipe==0.10.21",
                        path=f"mediapipe/modules/selfie_segmentation/{file}", sha256=sha256)


# sha256sum of the members of mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
# (`pip download --no-deps --only-binary=:all: --python-version 3.11 --platform
# manylinux_2_28_x86_64 mediapipe==0.10.21`, unzip).
FILES = {
    "selfie_segmentation": _member(
        "selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "selfie_segmentation_landscape": _member(
        "selfie_segmentation_landscape.tflite",
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
}
# MediaPipe's docs (solutions/selfie_segmentation.md): 256x256x3 and 144x256x3 (HWC).
SHAPES = {"selfie_segmentation": (256, 256), "selfie_segmentation_landscape": (144, 256)}
# The astronaut's face, x0, y0, x1, y1 in pixels: BlazeFace's box from
# zoo.face.detect_and_mesh(skimage.data.astronaut()) (177.6, 82.9, 272.9, 178.2), rounded.
FACE_BOX = (178, 83, 273, 178)


def photos() -> dict:
    """Real photos: a person, two without one, and a crop smaller than the
    network input (so step 1 upsamples and reads the zero border)."""
    a = skimage.data.astronaut()
    return {"astronaut": a, "coffee": skimage.data.coffee(), "chelsea": skimage.data.chelsea(),
            "small": np.ascontiguousarray(a[::4, ::3][:100, :150])}


def litert(path):
    """A function (h, w, 3) -> (h, w) running ``path`` in LiteRT. The default
    op resolver: it has MediaPipe's custom Convolution2DTransposeBias (the
    builtin-only resolver refuses these files)."""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    it = litert.Interpreter(model_path=str(path))
    it.allocate_tensors()
    (inp,), (out,) = it.get_input_details(), it.get_output_details()

    def run(x):
        it.set_tensor(inp["index"], np.asarray(x, np.float32)[None])
        it.invoke()
        return it.get_tensor(out["index"])[0, ..., 0].copy()

    return run


def opencv_tensor(image, size):
    """MediaPipe's ImageToTensorCalculator (OpenCV converter) for the whole
    image with keep_aspect_ratio false: the image rectangle's corners (in
    cv::boxPoints' order) onto the tensor's, cv::warpPerspective with
    INTER_LINEAR and a zero border on the uint8 image, then [0, 1]."""
    cv2 = pytest.importorskip("cv2")
    (H, W), (h, w) = image.shape[:2], size
    m = cv2.getPerspectiveTransform(np.float32([[0, H], [0, 0], [W, 0], [W, H]]),
                                    np.float32([[0, h], [0, 0], [w, 0], [w, h]]))
    t = cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return t.astype(np.float32) / 255.0


def opencv_upsample(prob, height, width):
    """TensorsToSegmentationCalculator's CPU resize: cv::resize, INTER_LINEAR."""
    cv2 = pytest.importorskip("cv2")
    return cv2.resize(np.asarray(prob, np.float32), (width, height),
                      interpolation=cv2.INTER_LINEAR)


def iou(a, b) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    """name, LiteRT runner, photos, our tensors for them, our masks (one
    person() call on the list: the network runs them as one batch of 4)."""
    name = request.param
    images = photos()
    tensors = np.concatenate([seg.network_input(im, name) for im in images.values()])
    masks = dict(zip(images, seg.person(list(images.values()), name)))
    return name, litert(fetch(FILES[name], name=name)), images, tensors, masks


def test_specs():
    for name in NAMES:
        spec = zoo.get_spec(name)
        assert spec.task == "segmentation" and name in zoo.list_models("selfie*")
        assert spec.weights[0].license == "Apache-2.0"  # MediaPipe's license
        assert dataclasses.replace(spec.weights[0], license="", origin="") == FILES[name]
        assert ss.INPUT_SHAPES[name] == seg.input_shape(name) == SHAPES[name]
        assert spec.input_hw == SHAPES[name]
        # the graph's float range (selfie_segmentation_cpu.binarypb): 0 -> 0, 255 -> 1
        assert np.allclose((np.array([0.0, 255.0])[:, None] - spec.mean) / spec.std,
                           [[0.0] * 3, [1.0] * 3])


def test_parity_with_litert(case):
    """Max |ours - LiteRT| <= 1e-3 of the output range [0, 1], on every photo."""
    name, run, images, tensors, _ = case
    ours = seg.probabilities(tensors, name)
    assert ours.shape == (len(images),) + SHAPES[name]
    for k, (label, x) in enumerate(zip(images, tensors)):
        ref = run(x)
        assert ref.max() - ref.min() > 0.9, label  # a real mask, not a flat map
        assert np.abs(ours[k] - ref).max() <= 1e-3, (label, np.abs(ours[k] - ref).max())


def test_network_input_is_mediapipes(case):
    """Step 1 against OpenCV's warp as MediaPipe calls it. Exact (to float
    rounding) where image/tensor size ratios are dyadic (512 -> 256, 600 ->
    256); elsewhere OpenCV's 1/32-pixel rounding of an inexact LU-solved
    matrix breaks some ties the other way, moving a few values by a few
    levels."""
    name, _, images, tensors, _ = case
    for k, (label, image) in enumerate(images.items()):
        diff = np.abs(tensors[k] - opencv_tensor(image, SHAPES[name])) * 255.0
        if label in ("astronaut", "coffee"):
            assert diff.max() < 1e-3, (label, diff.max())
        else:
            assert (diff < 0.5).mean() >= 0.95 and diff.max() <= 8, (label, diff.max())


def test_upsample_is_opencvs():
    """Step 3 against cv::resize (INTER_LINEAR), up and down, including the
    exact 2x reduction OpenCV runs as INTER_AREA."""
    prob = np.random.default_rng(0).uniform(0, 1, (144, 256)).astype(np.float32)
    for height, width in ((512, 512), (300, 451), (100, 150), (72, 128), (16, 600)):
        ours = seg.upsample(prob, height, width)
        assert ours.shape == (height, width)
        assert np.abs(ours - opencv_upsample(prob, height, width)).max() <= 1e-5


def test_person_matches_mediapipe_pipeline(case):
    """Mask IoU (at 0.5) >= 0.99 against OpenCV warp -> LiteRT -> cv::resize."""
    name, run, images, _, masks = case
    for label, image in images.items():
        mask = masks[label]
        assert mask.shape == image.shape[:2] and mask.dtype == np.float32
        assert 0.0 <= mask.min() and mask.max() <= 1.0
        H, W = image.shape[:2]
        ref = opencv_upsample(run(opencv_tensor(image, SHAPES[name])), H, W)
        assert iou(mask, ref) >= 0.99, (label, iou(mask, ref))


def test_astronaut_mask(case):
    """The mask covers the astronaut's face and not the top-right corner
    (dark wall behind her)."""
    x0, y0, x1, y1 = FACE_BOX
    mask = case[4]["astronaut"]
    assert (mask[y0:y1, x0:x1] > 0.5).mean() >= 0.9
    assert mask[:64, -64:].max() < 0.01


def test_lists_and_single_images(case):
    """Any order, any mix of sizes in one list; a single image gives the
    array alone; float [0, 1] images give what their uint8 twins give."""
    name, _, images, _, masks = case
    order = ["chelsea", "astronaut", "small", "coffee"]
    again = seg.person([images[k] for k in order], name)
    for label, mask in zip(order, again):
        assert np.abs(mask - masks[label]).max() <= 1e-6
    if name == NAMES[0]:  # one batch-1 compile, for the default model only
        small = images["small"]
        single = seg.person(small)
        assert isinstance(single, np.ndarray) and single.shape == small.shape[:2]
        assert np.abs(single - masks["small"]).max() <= 1e-5
        as_float = seg.person(small.astype(np.float32) / 255.0)
        assert iou(as_float, single) >= 0.99


def test_bad_input_is_named():
    good = np.zeros((64, 64, 3), np.uint8)
    cases = [
        (np.zeros((64, 64, 2), np.uint8), "expected 1, 3 or 4 channels"),
        (np.zeros((3, 64, 64), np.uint8), "channels first"),
        (np.zeros((8, 8, 3), np.uint8), "too small"),
        (np.full((64, 64, 3), 200.0, np.float32), r"must be in \[0, 1\]"),
        (np.full((64, 64, 3), np.nan, np.float32), "NaN"),
        (np.zeros((2, 64, 64, 3), np.uint8), "a batch"),
        ([good, np.zeros((4, 64, 3), np.uint8)], "image 1: image 64x4 is too small"),
    ]
    for image, message in cases:
        with pytest.raises(ValueError, match=message) as e:
            seg.person(image)
        assert "\n" not in str(e.value)
    with pytest.raises(TypeError, match="dtype int32"):  # zoo.face.as_rgb's rule
        seg.person(np.zeros((64, 64, 3), np.int32))
    with pytest.raises(ValueError, match="not a segmentation model; segmentation models: "
                                         "selfie_segmentation, selfie_segmentation_landscape"):
        seg.person(good, model="face_mesh")
    with pytest.raises(ValueError, match="empty list"):
        seg.person([])
    with pytest.raises(ValueError, match="batch_size=0"):
        seg.person(good, batch_size=0)
    with pytest.raises(ValueError, match=r"expected shape \(N, 144, 256, 3\)"):
        seg.probabilities(np.zeros((1, 256, 256, 3)), "selfie_segmentation_landscape")
    model, variables = zoo.build("selfie_segmentation"), ss.pretrained_variables(NAMES[0])
    with pytest.raises(ValueError, match="not a multiple of 16"):
        model.apply(variables, np.zeros((1, 250, 250, 3), np.float32))


def test_implementations_agree(case):
    """The depthwise-conv implementation switch does not change the mask:
    the reference form (grouped convolution), jitted, against the fast form
    (shifted multiply-adds) that zoo.segment runs, on the photos."""
    name, _, _, tensors, _ = case
    model = zoo.build(name, implementation="reference")
    ref = jax.jit(model.apply)(ss.pretrained_variables(name), tensors)[..., 0]
    assert np.abs(np.asarray(ref) - seg.probabilities(tensors, name)).max() <= 1e-4


def test_parameters_are_the_files():
    """Every float16 constant of the file becomes a parameter (the file holds
    106,401 values), and zoo.counting's count of the layers agrees."""
    for name in NAMES:
        graph = read_tflite(fetch(FILES[name], name=name))
        stored = sum(math.prod(t.shape) for t in graph.tensors
                     if graph.is_constant(t.index) and t.dtype == "float16")
        variables = ss.pretrained_variables(name)
        assert count_params(variables) == stored == 106_401
        counts = analytic_counts(zoo.build(name), 256)
        assert counts.params == stored and counts.macs > 0


def test_mapping_checks_the_graph(monkeypatch):
    """A graph of another network, or a table that does not match the file,
    is refused with the misfits named."""
    model = zoo.build("selfie_segmentation")
    mesh = WeightSource(format="tflite", package="mediapipe==0.10.21",
                        path="mediapipe/modules/face_landmark/face_landmark.tflite",
                        sha256="1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814")
    with pytest.raises(WeightMismatchError, match="parametric ops, our model 55 layers"):
        ss.map_tflite(read_tflite(fetch(mesh, name="face_landmark")), model)
    monkeypatch.setattr(ss, "HEAD", 96)  # the LR-ASPP width: 128 in the file
    graph = read_tflite(fetch(FILES["selfie_segmentation"], name="selfie_segmentation"))
    with pytest.raises(WeightMismatchError) as e:
        ss.map_tflite(graph, model)
    msg = str(e.value)
    assert "aspp_conv/kernel: ours (1, 1, 32, 96), op" in msg and "gives (1, 1, 32, 128)" in msg
    assert "aspp_gate/kernel: ours (32, 96)" in msg and "up_0/proj/kernel: ours (1, 1, 96, 24)" in msg
    assert msg.startswith(str(graph.path)) and "\n" not in msg


def test_create_pretrained():
    _, variables = zoo.create("selfie_segmentation", pretrained=True)
    expected = ss.pretrained_variables("selfie_segmentation")
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree_util.tree_leaves(variables),
                                                    jax.tree_util.tree_leaves(expected)))
