"""Face detection + 468-point face mesh, MediaPipe's pipeline in JAX.

    faces = zoo.face.detect_and_mesh(image)          # list[Face], one per face
    faces[0].landmarks                               # (468, 3) x, y, z in image pixels
    batches = zoo.face.detect_and_mesh_batch([im1, im2])   # list per image

The stages follow MediaPipe's graphs (mediapipe/modules/face_detection/
face_detection.pbtxt and face_detection_short_range.pbtxt;
mediapipe/modules/face_landmark/face_landmark_cpu.pbtxt and
face_detection_front_detection_to_roi.pbtxt, MediaPipe v0.10.x):

1. Letterbox: the image is centred in a square of side max(H, W) (zero
   border) and resampled bilinearly to 128x128, scaled to [-1, 1].
2. ``blazeface_short_range`` scores 896 SSD anchors (``ssd_anchors``).
3. Decoding: box centre and keypoints are ``raw / 128 * anchor size +
   anchor centre``, box size ``raw / 128 * anchor size`` (x_scale = y_scale
   = w_scale = h_scale = 128); score ``sigmoid(clip(raw, -100, 100))``, kept
   when >= 0.5.
4. Weighted non-max suppression (IoU > 0.3 joins the highest-scoring
   detection; box and keypoints become the score-weighted mean of the
   cluster, the score stays the top one).
5. Region of interest: centre of the box, side 1.5 x its longer side
   (``square_long``), rotated by the angle that makes the line from keypoint
   0 to keypoint 1 (the eyes) horizontal.
6. That rotated square is resampled to 192x192 in [0, 1] (border pixels
   replicated) and ``face_mesh`` predicts 468 points; a face-presence
   probability ``sigmoid(flag)`` below 0.5 drops the face, as MediaPipe does.
7. The points are mapped back through the same rotation and scale: x, y in
   image pixels, z in pixels too (MediaPipe's normalised z times the image
   width), relative to the face's centre depth.

Coordinates follow MediaPipe's (and OpenCV's warp) convention: a point at
normalised position u maps to pixel coordinate ``u * width``; pixel ``i``'s
sample sits at coordinate ``i``.

All images' detector inputs go through the detector in one jitted call, and
all faces of all images through the mesh in one jitted call (batches padded
to a power of two so few shapes compile). Resampling and NMS run in numpy on
the host: they are small, and images of different sizes then need no
recompiles.

``detector="full_range"`` swaps stages 1-3 for MediaPipe's full-range model
(192x192 letterbox, 2304 anchors, scale 192, score >= 0.6;
face_detection_full_range.pbtxt); ``detector="pyramid"`` runs the short-range
model over the letterbox plus overlapping tiles at finer scales
(``pyramid_views``), all in one batch, and merges their detections with the
same weighted NMS. ``detect_faces`` stops after detection.

``FaceTracker`` runs the pipeline frame by frame and smooths each tracked
face's box, keypoints and landmarks exponentially.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence

import numpy as np

DETECTOR, MESH = "blazeface_short_range", "face_mesh"
DETECTOR_SIZE, MESH_SIZE = 128, 192

# SsdAnchorsCalculator options of face_detection.pbtxt + face_detection_short_range.pbtxt.
ANCHOR_OPTIONS = dict(num_layers=4, strides=(8, 16, 16, 16), input_size=128,
                      anchor_offset=0.5, aspect_ratios=(1.0,),
                      interpolated_scale_aspect_ratio=1.0, fixed_anchor_size=True)
# TensorsToDetectionsCalculator / NonMaxSuppressionCalculator options (same files).
SCALE = 128.0  # x_scale = y_scale = w_scale = h_scale
SCORE_CLIP = 100.0
MIN_SCORE = 0.5
MIN_SUPPRESSION_IOU = 0.3
NUM_KEYPOINTS = 6
# face_detection_front_detection_to_roi.pbtxt: rotation from keypoint 0 to 1, target 0,
# RectTransformationCalculator scale 1.5, square_long.
ROI_SCALE = 1.5
# face_landmark_cpu.pbtxt: ThresholdingCalculator on sigmoid(face flag).
MIN_PRESENCE = 0.5

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                  "left_ear_tragion")  # the subject's right/left, MediaPipe's order

MIN_SIDE = 16  # pixels; smaller images are rejected
MAX_SIDE = 4096  # pixels; larger images are downscaled first (coordinates scaled back)


@dataclasses.dataclass
class Face:
    """One face, all coordinates in pixels of the input image.

    Attributes:
        box: (4,) ``x_min, y_min, x_max, y_max`` of the detection.
        keypoints: (6, 2) x, y of the detector's keypoints, in
            ``KEYPOINT_NAMES`` order.
        score: detection probability in [0, 1].
        landmarks: (468, 3) mesh points x, y, z; z is in pixels too (scaled
            like x), relative to the face's centre depth.
        presence: the mesh's face-presence probability in [0, 1].
        roi: ``(centre x, centre y, side, angle)`` of the rotated square crop
            the mesh saw; angle in radians.
    """

    box: np.ndarray
    keypoints: np.ndarray
    score: float
    landmarks: np.ndarray
    presence: float
    roi: tuple[float, float, float, float]


# ------------------------------------------------------------------ anchors


def ssd_anchors(num_layers=4, strides=(8, 16, 16, 16), input_size=128, anchor_offset=0.5,
                aspect_ratios=(1.0,), interpolated_scale_aspect_ratio=1.0,
                fixed_anchor_size=True) -> np.ndarray:
    """SSD anchors in the order the detector's outputs use (MediaPipe's
    SsdAnchorsCalculator, fixed-size anchors only).

    Consecutive layers with the same stride share one grid, each layer
    adding one anchor per aspect ratio plus one interpolated-scale anchor
    per location; the defaults (the short-range detector's) give
    16x16x2 + 8x8x6 = 896 anchors.

    Args:
        num_layers: number of feature layers.
        strides: stride of each layer, in input pixels.
        input_size: side of the square detector input, in pixels.
        anchor_offset: anchor centre within its grid cell, in cells.
        aspect_ratios: anchors per location from these ratios (each adds one
            anchor; the size is fixed regardless).
        interpolated_scale_aspect_ratio: when > 0, one more anchor per
            location and layer.
        fixed_anchor_size: must be True (every anchor has width = height = 1).

    Returns:
        np.ndarray: (N, 4) float32 anchors ``(x centre, y centre, w, h)``,
        normalised to [0, 1] of the input.

    Raises:
        NotImplementedError: when ``fixed_anchor_size`` is False.
    """
    if not fixed_anchor_size:
        raise NotImplementedError("only fixed-size anchors (BlazeFace's) are implemented")
    anchors, layer = [], 0
    while layer < num_layers:
        per_location = 0
        last = layer
        while last < num_layers and strides[last] == strides[layer]:
            per_location += len(aspect_ratios) + (interpolated_scale_aspect_ratio > 0)
            last += 1
        grid = int(np.ceil(input_size / strides[layer]))
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        centres = np.stack([(xs + anchor_offset) / grid, (ys + anchor_offset) / grid], -1)
        centres = np.repeat(centres.reshape(-1, 1, 2), per_location, axis=1).reshape(-1, 2)
        anchors.append(np.concatenate([centres, np.ones_like(centres)], -1))
        layer = last
    return np.concatenate(anchors).astype(np.float32)


ANCHORS = ssd_anchors(**ANCHOR_OPTIONS)

# FaceDetectionOptions of face_detection_full_range.pbtxt (MediaPipe v0.10.x):
# tensor 192x192, num_layers 1, strides 4, interpolated_scale_aspect_ratio 0,
# num_boxes 2304, x/y/w/h_scale 192, min_score_thresh 0.6; the rest (anchor
# offset 0.5, aspect ratio 1, fixed anchors, score clipping 100, NMS IoU 0.3)
# is face_detection.pbtxt's, shared with the short-range model.
FULL_RANGE_ANCHOR_OPTIONS = dict(num_layers=1, strides=(4,), input_size=192, anchor_offset=0.5,
                                 aspect_ratios=(1.0,), interpolated_scale_aspect_ratio=0.0,
                                 fixed_anchor_size=True)


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """One face detector of ``zoo.face`` and how to decode its outputs
    (the values of ``DETECTORS``).

    Attributes:
        model: name of the registered detector model.
        input_size: side of its square letterboxed input, in pixels.
        anchors: (N, 4) SSD anchors from ``ssd_anchors``.
        scale: decoding scale: box and keypoint offsets are in units of
            ``1 / scale`` of an anchor's size.
        min_score: least detection probability kept.
    """

    model: str
    input_size: int
    anchors: np.ndarray = dataclasses.field(repr=False)
    scale: float
    min_score: float


DETECTORS = {
    "short_range": DetectorConfig(DETECTOR, DETECTOR_SIZE, ANCHORS, SCALE, MIN_SCORE),
    "full_range": DetectorConfig("blazeface_full_range", 192,
                                 ssd_anchors(**FULL_RANGE_ANCHOR_OPTIONS), 192.0, 0.6),
}
DETECTOR_MODES = ("short_range", "full_range", "pyramid")
# Pyramid mode: the short-range detector on the letterboxed image plus, per
# level l = 1..PYRAMID_LEVELS, square tiles of side S / 2**l (S = the longer
# image side) at half-tile steps, so any face up to half a tile lies wholly
# inside one tile. Levels whose tiles would be upsampled more than
# PYRAMID_MAX_UPSAMPLE times are skipped (nothing left to resolve there).
PYRAMID_LEVELS = 2
PYRAMID_MAX_UPSAMPLE = 2.0
# A tile's detection reaching further than this (fraction of the tile) past a
# tile edge that is not the image's is a face cut by the tile: dropped, as a
# neighbouring tile or the coarser level holds it whole.
PYRAMID_EDGE_SLACK = 0.02


# ------------------------------------------------------------- input checks


def _validated(image, name: str) -> np.ndarray:
    """(H, W, C) uint8, or float32 in [0, 1], with C in 1, 3, 4; errors name ``name``."""
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL
        image = np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.dtype == object or a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected an image of shape (H, W), (H, W, 1), (H, W, 3) or "
                         f"(H, W, 4), got shape {a.shape}"
                         + (" (a batch? pass the images one by one or as a list)"
                            if a.ndim == 4 else ""))
    if a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] not in (1, 3, 4):
        hint = " (channels first? use image.transpose(1, 2, 0))" if a.shape[0] in (1, 3, 4) else ""
        raise ValueError(f"{name}: expected 1, 3 or 4 channels in the last axis, got shape "
                         f"{a.shape}{hint}")
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"{name}: image {w}x{h} is too small; need at least "
                         f"{MIN_SIDE}x{MIN_SIDE} pixels")
    if a.dtype == np.uint8:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name}: expected uint8 (0-255) or float (0-1) pixels, got dtype "
                        f"{a.dtype}")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: image has NaN or infinite values")
    if a.min() < 0 or a.max() > 1:
        raise ValueError(f"{name}: float images must be in [0, 1], got values in "
                         f"[{a.min():.3g}, {a.max():.3g}] (uint8 images are taken as 0-255)")
    return a


def _to_rgb_float(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32) * (255.0 if a.dtype != np.uint8 else 1.0)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a[..., :3])


def as_rgb(image, name: str = "image") -> np.ndarray:
    """``image`` as a contiguous (H, W, 3) float32 array in [0, 255].

    Args:
        image: a uint8 (0-255) or float (0-1) array of any strides, or a PIL
            image; grayscale (H, W) or (H, W, 1), RGB, or RGBA (alpha
            dropped); both sides at least ``MIN_SIDE``.
        name: what to call the image in error messages.

    Returns:
        np.ndarray: (H, W, 3) float32 in [0, 255].

    Raises:
        ValueError: for another shape, an image smaller than ``MIN_SIDE``,
            float values outside [0, 1], or NaN or infinite values.
        TypeError: for a dtype other than uint8 or floating point.
    """
    return _to_rgb_float(_validated(image, name))


def prepare(image, name: str = "image") -> tuple[np.ndarray, float]:
    """``as_rgb``, with images longer than ``MAX_SIDE`` shrunk first.

    The shrinking is antialiased and happens before any float copy is made,
    so huge images cost little memory.

    Args:
        image: any image ``as_rgb`` takes.
        name: what to call the image in error messages.

    Returns:
        tuple[np.ndarray, float]: the (h, w, 3) float32 image in [0, 255], and
        the factor (1.0 when not shrunk, else > 1) that multiplies its pixel
        coordinates into the input's.

    Raises:
        ValueError: as ``as_rgb``.
        TypeError: as ``as_rgb``.
    """
    a = _validated(image, name)
    h, w = a.shape[:2]
    if max(h, w) <= MAX_SIDE:
        return _to_rgb_float(a), 1.0
    from PIL import Image

    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    a = a[..., :3] if a.shape[-1] != 1 else a[..., 0]
    f = MAX_SIDE / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize(
        size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return _to_rgb_float(small.reshape(size[1], size[0], -1)), w / size[0]


# -------------------------------------------------------------- resampling


def warp_square(image: np.ndarray, cx: float, cy: float, side: float, angle: float,
                out: int, border: str) -> np.ndarray:
    """Bilinear samples of a rotated square of ``image`` on an ``out`` x ``out`` grid.

    Output pixel (u, v) reads the input at ``centre + R(angle) ((u / out -
    0.5) side, (v / out - 0.5) side)``, the mapping MediaPipe's OpenCV
    converter builds from the rectangle's corners.

    Args:
        image: (H, W, C) float array.
        cx: centre x of the square, in pixels.
        cy: centre y of the square, in pixels.
        side: side of the square, in pixels.
        angle: rotation in radians, clockwise on screen.
        out: side of the output grid, in pixels.
        border: ``"zero"`` (zeros outside the image) or ``"replicate"``
            (nearest edge pixel); any other value acts as ``"replicate"``.

    Returns:
        np.ndarray: (out, out, C) float32 samples.
    """
    h, w = image.shape[:2]
    t = np.arange(out, dtype=np.float64) / out - 0.5
    du, dv = np.meshgrid(t * side, t * side, indexing="xy")
    c, s = np.cos(angle), np.sin(angle)
    x = cx + c * du - s * dv
    y = cy + s * du + c * dv
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)

    def at(yy, xx):
        inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
        v = image[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]
        if border == "zero":
            v = np.where(inside[..., None], v, 0.0)
        return v

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


# ------------------------------------------------------------------ models


@functools.lru_cache(maxsize=None)
def _network(name: str):
    """Pretrained registered model ``name`` as one jitted function of a batch."""
    import jax

    from zoo.registry import create

    model, variables = create(name, pretrained=True)
    return jax.jit(lambda x: model.apply(variables, x))


def _networks():
    """Pretrained short-range detector and mesh, each one jitted function of a batch."""
    return _network(DETECTOR), _network(MESH)


def _run_padded(fn, x: np.ndarray):
    """``fn`` on a batch padded to the next power of two (fewer compiles)."""
    n = x.shape[0]
    size = 1 << max(0, (n - 1).bit_length())
    if size != n:
        x = np.concatenate([x, np.zeros((size - n,) + x.shape[1:], x.dtype)])
    return [np.asarray(o)[:n] for o in fn(x)]


# ------------------------------------------------------ detection decoding


def decode(regressors: np.ndarray, scores: np.ndarray, anchors: np.ndarray = ANCHORS, *,
           scale: float = SCALE, min_score: float = MIN_SCORE):
    """One image's raw detector outputs to boxes, keypoints and scores.

    Box centre and keypoints are ``raw / scale * anchor size + anchor
    centre``, box size ``raw / scale * anchor size``; the score is
    ``sigmoid(clip(logit, -100, 100))``. The defaults are the short-range
    model's; ``DETECTORS[...]`` holds each detector's ``anchors``, ``scale``
    and ``min_score``.

    Args:
        regressors: (N, 16) raw regressor outputs per anchor (box centre x,
            y, width, height, then 6 keypoints x, y).
        scores: (N, 1) raw score logits per anchor.
        anchors: (N, 4) anchors of the detector that made the outputs.
        scale: decoding scale of that detector.
        min_score: least probability kept.

    Returns:
        tuple: ``(boxes, keypoints, scores)`` of the K anchors kept, in anchor
        order, float64 and normalised to the detector's input: boxes (K, 4)
        ``x_min, y_min, x_max, y_max``, keypoints (K, 6, 2), scores (K,)
        probabilities.

    Raises:
        ValueError: when ``regressors``, ``scores`` and ``anchors`` do not
            have the same length.
    """
    if len(anchors) != len(regressors) or len(scores) != len(regressors):
        raise ValueError(f"decode: {len(regressors)} regressors, {len(scores)} scores and "
                         f"{len(anchors)} anchors; pass the anchors of the detector that made them")
    r = regressors.astype(np.float64)
    prob = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0].astype(np.float64), -SCORE_CLIP,
                                         SCORE_CLIP)))
    keep = prob >= min_score
    r, a, prob = r[keep], anchors[keep].astype(np.float64), prob[keep]
    cx = r[:, 0] / scale * a[:, 2] + a[:, 0]
    cy = r[:, 1] / scale * a[:, 3] + a[:, 1]
    w = r[:, 2] / scale * a[:, 2]
    h = r[:, 3] / scale * a[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    kp = r[:, 4:4 + 2 * NUM_KEYPOINTS].reshape(-1, NUM_KEYPOINTS, 2)
    kp = kp / scale * a[:, None, 2:4] + a[:, None, 0:2]
    return boxes, kp, prob


def _iou(box, boxes):
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes, keypoints, scores, threshold: float = MIN_SUPPRESSION_IOU):
    """MediaPipe's WEIGHTED non-max suppression.

    Takes the best remaining detection, gathers every remaining one
    overlapping it by IoU > ``threshold`` (itself included), and outputs
    their score-weighted mean box and keypoints with the best score; repeats
    until none remain.

    Args:
        boxes: (N, 4) ``x_min, y_min, x_max, y_max``.
        keypoints: (N, 6, 2) keypoints of the same detections.
        scores: (N,) scores.
        threshold: IoU above which a detection joins the cluster.

    Returns:
        tuple: ``(boxes (M, 4), keypoints (M, 6, 2), scores (M,))``, one row
        per cluster, best score first.
    """
    order = np.argsort(-scores, kind="stable")
    out_b, out_k, out_s = [], [], []
    while order.size:
        top = order[0]
        iou = _iou(boxes[top], boxes[order])
        cluster = order[iou > threshold]
        if cluster.size == 0:
            cluster = order[:1]
        wts = scores[cluster][:, None]
        out_b.append((boxes[cluster] * wts).sum(0) / wts.sum())
        out_k.append((keypoints[cluster] * wts[:, :, None]).sum(0) / wts.sum())
        out_s.append(scores[top])
        order = order[~np.isin(order, cluster)]
    if not out_b:
        return np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0,))
    return np.stack(out_b), np.stack(out_k), np.asarray(out_s)


def face_roi(box, keypoints) -> tuple[float, float, float, float]:
    """The rotated square the mesh sees, from one detection in pixels.

    MediaPipe's DetectionsToRects (rotation that makes the line from
    keypoint 0 to keypoint 1 horizontal) then RectTransformation
    (``square_long``, scale ``ROI_SCALE``): centred on the box, side 1.5
    times its longer side.

    Args:
        box: (4,) ``x_min, y_min, x_max, y_max`` in pixels.
        keypoints: (6, 2) keypoints in pixels; the first two are the eyes.

    Returns:
        tuple[float, float, float, float]: ``(cx, cy, side, angle)``, pixels
        and radians in [-pi, pi).
    """
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = ROI_SCALE * max(box[2] - box[0], box[3] - box[1])
    (x0, y0), (x1, y1) = keypoints[0], keypoints[1]
    angle = -np.arctan2(-(y1 - y0), x1 - x0)
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    return float(cx), float(cy), float(side), float(angle)


def project_landmarks(raw: np.ndarray, roi) -> np.ndarray:
    """Mesh output in crop units to image pixels (MediaPipe's
    LandmarkProjectionCalculator, z scaled by the crop side).

    Args:
        raw: (1404,) mesh output, 468 points x, y, z in units of the
            192-pixel crop (``MESH_SIZE``).
        roi: ``(cx, cy, side, angle)`` of the crop, as ``face_roi`` gives.

    Returns:
        np.ndarray: (468, 3) float64 x, y, z in image pixels.
    """
    cx, cy, side, angle = roi
    p = raw.reshape(-1, 3).astype(np.float64) / MESH_SIZE
    u, v = p[:, 0] - 0.5, p[:, 1] - 0.5
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + (c * u - s * v) * side, cy + (s * u + c * v) * side,
                     p[:, 2] * side], -1)


# ----------------------------------------------------------------- pipeline


def _check_detector(detector: str) -> str:
    if detector not in DETECTOR_MODES:
        raise ValueError(f"detector={detector!r}: expected one of {', '.join(DETECTOR_MODES)}")
    return detector


def pyramid_views(h: int, w: int, input_size: int = DETECTOR_SIZE, levels: int = PYRAMID_LEVELS
                  ) -> list[tuple[float, float, float, tuple[bool, bool, bool, bool]]]:
    """The squares the pyramid mode feeds the detector for an ``h`` x ``w`` image.

    First the letterboxed whole image (side max(h, w)), then per level l the
    tiles of side max(h, w) / 2**l at half-tile steps over that square,
    skipping tiles outside the image and stopping at the first level whose
    tiles would be upsampled more than ``PYRAMID_MAX_UPSAMPLE`` times to
    ``input_size``.

    Args:
        h: image height in pixels.
        w: image width in pixels.
        input_size: side of the detector's input, in pixels.
        levels: number of tile levels below the whole image.

    Returns:
        list[tuple]: ``(centre x, centre y, side, inner)`` per square, in
        pixels, where ``inner`` is (left, top, right, bottom), each True
        where that edge of the square lies inside the image.
    """
    side = float(max(h, w))
    views = [(w / 2, h / 2, side, (False, False, False, False))]
    x0, y0, eps = w / 2 - side / 2, h / 2 - side / 2, 1e-6 * side
    for level in range(1, levels + 1):
        t = side / 2 ** level
        if input_size / t > PYRAMID_MAX_UPSAMPLE:
            break
        steps = 2 ** (level + 1) - 1
        for iy in range(steps):
            for ix in range(steps):
                tx, ty = x0 + ix * t / 2, y0 + iy * t / 2
                if tx >= w or ty >= h or tx + t <= 0 or ty + t <= 0:
                    continue
                inner = (tx > eps, ty > eps, tx + t < w - eps, ty + t < h - eps)
                views.append((tx + t / 2, ty + t / 2, t, inner))
    return views


def _uncut(boxes: np.ndarray, inner) -> np.ndarray:
    """Mask of the boxes (normalised to a tile) not reaching within
    ``PYRAMID_EDGE_SLACK`` of one of its inner edges (faces the tile cuts)."""
    left, top, right, bottom = inner
    e = PYRAMID_EDGE_SLACK
    keep = np.ones(len(boxes), bool)
    for flag, cut in ((left, boxes[:, 0] < e), (top, boxes[:, 1] < e),
                      (right, boxes[:, 2] > 1 - e), (bottom, boxes[:, 3] > 1 - e)):
        if flag:
            keep &= ~cut
    return keep


def _detect(work: Sequence[np.ndarray], detector: str):
    """Detections of each prepared image (``prepare``'s output): per image
    (boxes (K, 4), keypoints (K, 6, 2), scores (K,)) in its pixels, best
    first. Every view of every image goes through the detector in one call;
    each view's detections are merged by weighted NMS in the view's
    coordinates, then (pyramid mode) once more across views, in pixels."""
    cfg = DETECTORS["short_range" if detector == "pyramid" else detector]
    crops, owners = [], []
    for i, a in enumerate(work):
        h, w = a.shape[:2]
        views = (pyramid_views(h, w, cfg.input_size) if detector == "pyramid"
                 else [(w / 2, h / 2, float(max(h, w)), (False,) * 4)])
        for view in views:
            cx, cy, side, _ = view
            t = warp_square(a, cx, cy, side, 0.0, cfg.input_size, "zero")
            crops.append(t / 127.5 - 1.0)
            owners.append((i, view))
    regs, logits = _run_padded(_network(cfg.model), np.stack(crops))
    found: list[list] = [[] for _ in work]
    for (i, (cx, cy, side, inner)), r, logit in zip(owners, regs, logits):
        b, k, s = weighted_nms(*decode(r, logit, cfg.anchors, scale=cfg.scale,
                                       min_score=cfg.min_score))
        keep = _uncut(b, inner)
        b, k, s = b[keep], k[keep], s[keep]
        # tensor [0, 1] -> the view's square in image pixels (letterbox removal)
        b = np.stack([cx + (b[:, 0] - 0.5) * side, cy + (b[:, 1] - 0.5) * side,
                      cx + (b[:, 2] - 0.5) * side, cy + (b[:, 3] - 0.5) * side], -1)
        k = np.stack([cx + (k[..., 0] - 0.5) * side, cy + (k[..., 1] - 0.5) * side], -1)
        found[i].append((b, k, s))
    out = []
    for views in found:
        if len(views) == 1:
            out.append(views[0])
            continue
        b, k, s = (np.concatenate(parts) for parts in zip(*views))
        out.append(weighted_nms(b, k, s))
    return out


def detect_faces(images: Sequence, *, detector: str = "short_range",
                 names: Optional[Sequence[str]] = None) -> list[tuple]:
    """Face detections only (no mesh) for several images.

    Every view of every image goes through the detector in one jitted call.

    Args:
        images: images of any sizes, each one ``as_rgb`` takes (uint8 0-255
            or float 0-1; grayscale, RGB or RGBA).
        detector: ``"short_range"`` (MediaPipe's default, 128x128 letterbox),
            ``"full_range"`` (192x192 letterbox, faces farther away) or
            ``"pyramid"`` (short range over the letterbox plus tiles at
            ``PYRAMID_LEVELS`` finer scales, merged by weighted NMS).
        names: one name per image for error messages (default
            ``"image 0"``, ``"image 1"``, ...).

    Returns:
        list[tuple]: per image ``(boxes, keypoints, scores)`` in the input's
        pixels, best first: boxes (K, 4) ``x_min, y_min, x_max, y_max``,
        keypoints (K, 6, 2), scores (K,) probabilities. An empty list for no
        images.

    Raises:
        ValueError: for an unknown ``detector``, a number of ``names`` other
            than the number of images, or a bad image (see ``as_rgb``).
        TypeError: for an image dtype other than uint8 or floating point.
    """
    _check_detector(detector)
    images = list(images)
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"{len(images)} images but {len(names)} names")
    if not images:
        return []
    work, factors = zip(*(prepare(img, name) for img, name in zip(images, names)))
    return [(b * f, k * f, s) for (b, k, s), f in zip(_detect(work, detector), factors)]


def detect_and_mesh(image, *, name: str = "image", max_faces: Optional[int] = None,
                    detector: str = "short_range") -> list[Face]:
    """Faces and their 468-point meshes in one image.

    Args:
        image: uint8 (0-255) or float (0-1) array or PIL image; grayscale,
            RGB or RGBA (see ``as_rgb``); images longer than ``MAX_SIDE`` are
            shrunk first and the coordinates scaled back.
        name: what to call the image in error messages.
        max_faces: most faces to mesh, best detections first (MediaPipe's
            ``max_num_faces``); None for all.
        detector: ``"short_range"`` (default), ``"full_range"`` or
            ``"pyramid"`` (see ``detect_faces``).

    Returns:
        list[Face]: best detection first; empty when no face is found.
        Faces whose mesh presence is below ``MIN_PRESENCE`` are dropped.

    Raises:
        ValueError: for a bad image, ``max_faces`` below 1 or an unknown
            ``detector`` (raised by ``detect_and_mesh_batch``).
        TypeError: for an image dtype other than uint8 or floating point.

    Example:
        ::

            faces = zoo.face.detect_and_mesh(image)
            faces[0].landmarks          # (468, 3) x, y, z in pixels
            zoo.face.draw(image, faces).save("mesh.png")
    """
    return detect_and_mesh_batch([image], names=[name], max_faces=max_faces,
                                 detector=detector)[0]


def detect_and_mesh_batch(images: Sequence, *, names: Optional[Sequence[str]] = None,
                          max_faces: Optional[int] = None, detector: str = "short_range"
                          ) -> list[list[Face]]:
    """``detect_and_mesh`` for several images of any sizes: the detector runs
    once on all of them, the mesh once on all their faces.

    Args:
        images: images, each one ``detect_and_mesh`` takes.
        names: one name per image for error messages (default
            ``"image 0"``, ``"image 1"``, ...).
        max_faces: most faces to mesh per image, best first; None for all.
        detector: ``"short_range"`` (default), ``"full_range"`` or
            ``"pyramid"`` (see ``detect_faces``).

    Returns:
        list[list[Face]]: per image its faces, best detection first.

    Raises:
        ValueError: for ``max_faces`` below 1, an unknown ``detector``, a
            number of ``names`` other than the number of images, or a bad
            image (see ``as_rgb``).
        TypeError: for an image dtype other than uint8 or floating point.

    Example:
        ::

            per_image = zoo.face.detect_and_mesh_batch([im1, im2], max_faces=1)
    """
    if max_faces is not None and max_faces < 1:
        raise ValueError(f"max_faces={max_faces}: expected at least 1 (or None for all)")
    _check_detector(detector)
    images = list(images)
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    if len(names) != len(images):
        raise ValueError(f"{len(images)} images but {len(names)} names")
    if not images:
        return []
    work, factors = [], []
    for img, name in zip(images, names):
        a, f = prepare(img, name)
        work.append(a)
        factors.append(f)
    per_image = []  # (image index, box px, keypoints px, score, roi)
    for i, (boxes, kps, scores) in enumerate(_detect(work, detector)):
        for b, k, s in list(zip(boxes, kps, scores))[:max_faces]:
            per_image.append((i, b, k, float(s), face_roi(b, k)))
    results: list[list[Face]] = [[] for _ in images]
    if not per_image:
        return results
    crops = np.stack([warp_square(work[i], *roi, MESH_SIZE, "replicate") / 255.0
                      for i, _, _, _, roi in per_image])
    landmarks, flags = _run_padded(_network(MESH), crops)
    for (i, b, k, s, roi), raw, flag in zip(per_image, landmarks, flags):
        presence = float(1.0 / (1.0 + np.exp(-float(flag[0]))))
        if presence < MIN_PRESENCE:
            continue
        f = factors[i]
        pts = project_landmarks(raw, roi) * f
        results[i].append(Face(box=b * f, keypoints=k * f, score=s, landmarks=pts,
                               presence=presence,
                               roi=(roi[0] * f, roi[1] * f, roi[2] * f, roi[3])))
    return results


# ------------------------------------------------------------------ tracking


class FaceTracker:
    """Frame-by-frame face mesh with exponential smoothing.

    Each frame runs ``detect_and_mesh``; a face is matched to the track of
    the previous frame whose box overlaps it most (IoU >= ``min_iou``), and
    its box, keypoints and landmarks become ``smoothing * previous + (1 -
    smoothing) * new``. Unmatched faces start new tracks; tracks not seen in
    a frame end. ``tracks`` maps track id to the last smoothed ``Face``;
    ``ids`` holds the track id of each face the last ``update`` returned.

    Args:
        smoothing: weight of the previous frame, in [0, 1); 0 = no smoothing.
        min_iou: least box IoU with a previous face to continue its track.

    Raises:
        ValueError: when ``smoothing`` is outside [0, 1).

    Example:
        ::

            tracker = zoo.face.FaceTracker(smoothing=0.5)
            for frame in frames:
                faces = tracker.update(frame)   # smoothed; track ids in tracker.ids
    """

    def __init__(self, smoothing: float = 0.5, min_iou: float = 0.3):
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing={smoothing}: expected a value in [0, 1)")
        self.smoothing, self.min_iou = float(smoothing), float(min_iou)
        self.tracks: dict[int, Face] = {}
        self.ids: list[int] = []  # track id of each face returned by the last update
        self._next = 0

    def reset(self) -> None:
        """Forgets every track (e.g. at a scene cut); track ids keep counting up.
        """
        self.tracks, self.ids = {}, []

    def update(self, frame, *, name: str = "frame") -> list[Face]:
        """Detects and meshes ``frame``, matches its faces to the tracks and smooths them.

        Args:
            frame: one image, as ``detect_and_mesh`` takes.
            name: what to call the frame in error messages.

        Returns:
            list[Face]: the frame's faces, best detection first, with smoothed
            box, keypoints and landmarks (score, presence and roi are the
            frame's own). Their track ids are in ``ids``.
        """
        faces = detect_and_mesh(frame, name=name)
        a = self.smoothing
        new_tracks, ids, out = {}, [], []
        free = dict(self.tracks)
        for face in faces:
            best, best_iou = None, self.min_iou
            for tid, prev in free.items():
                iou = float(_iou(prev.box, face.box[None])[0])
                if iou >= best_iou:
                    best, best_iou = tid, iou
            if best is None:
                tid, smoothed = self._next, face
                self._next += 1
            else:
                tid, prev = best, free.pop(best)
                smoothed = dataclasses.replace(
                    face, box=a * prev.box + (1 - a) * face.box,
                    keypoints=a * prev.keypoints + (1 - a) * face.keypoints,
                    landmarks=a * prev.landmarks + (1 - a) * face.landmarks)
            new_tracks[tid] = smoothed
            ids.append(tid)
            out.append(smoothed)
        self.tracks, self.ids = new_tracks, ids
        return out


# ------------------------------------------------------------------ drawing


def draw(image, faces: Sequence[Face], *, point_radius: Optional[float] = None):
    """``image`` with each face's landmarks (green points), box (red) and
    keypoints (yellow circles) drawn.

    Args:
        image: the image the faces were found in (anything ``as_rgb`` takes).
        faces: faces in that image's pixels, e.g. from ``detect_and_mesh``.
        point_radius: landmark radius in pixels; default: the face's longer
            box side / 150, at least 0.8.

    Returns:
        PIL.Image.Image: a new RGB image.
    """
    from PIL import Image, ImageDraw

    rgb = np.clip(as_rgb(image) + 0.5, 0, 255).astype(np.uint8)
    out = Image.fromarray(rgb)
    d = ImageDraw.Draw(out)
    for face in faces:
        size = max(face.box[2] - face.box[0], face.box[3] - face.box[1])
        r = point_radius if point_radius is not None else max(0.8, size / 150)
        for x, y, _ in face.landmarks:
            d.ellipse([x - r, y - r, x + r, y + r], fill=(40, 255, 80))
        line = max(2, round(1.5 * r))
        d.rectangle([float(v) for v in face.box], outline=(255, 60, 60), width=line)
        for x, y in face.keypoints:
            k = 3 * r
            d.ellipse([x - k, y - k, x + k, y + k], outline=(255, 220, 0), width=line)
    return out


def write_overlays(inputs: Sequence[tuple[str, np.ndarray]], out_dir, *, batch: int = 8,
                   detector: str = "short_range") -> list[dict]:
    """Detects and meshes each image, draws it and writes the overlay as a PNG.

    Files are named ``<out_dir>/<stem>_facemesh.png``, the stem from the
    label (text after a ``"name:"`` prefix); repeated stems get ``_2``,
    ``_3``, ... suffixes.

    Args:
        inputs: ``(label, image)`` pairs.
        out_dir: folder for the overlays; created if needed.
        batch: images per ``detect_and_mesh_batch`` call.
        detector: one of ``DETECTOR_MODES`` (see ``detect_and_mesh``).

    Returns:
        list[dict]: per image ``{"image": label, "overlay": path, "faces":
        [{"score", "presence", "box"}, ...]}`` with rounded numbers.
    """
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, used = [], set()
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        found = detect_and_mesh_batch([im for _, im in chunk], names=[n for n, _ in chunk],
                                      detector=detector)
        for (label, image), faces in zip(chunk, found):
            stem = Path(label.split(":", 1)[-1]).stem or "image"
            name, k = f"{stem}_facemesh.png", 1
            while name in used:
                k += 1
                name = f"{stem}_{k}_facemesh.png"
            used.add(name)
            draw(image, faces).save(out / name)
            rows.append({"image": label, "overlay": str(out / name), "faces": [
                {"score": round(f.score, 4), "presence": round(f.presence, 4),
                 "box": [round(float(v), 1) for v in f.box]} for f in faces]})
    return rows
