"""Face detection recall on a synthetic set with known boxes, near and far.

    composites = build_composites(seed=0)          # list[Composite]
    stats = measure_recall(composites, "pyramid")   # recall overall and per face size
    python -m zoo.face_recall                       # the Markdown table for the docs

Each composite is one of scikit-image's photos without faces (``BACKGROUNDS``)
with faces from scikit-image's ``lfw_subset`` (the first 100 of its 200 25x25
grayscale crops are faces, tight from forehead to chin) upscaled bicubically
to a side between ``MIN_FACE`` and ``MAX_FACE`` pixels and pasted at random
places that do not overlap. The pasted square is the ground-truth box; a face
counts as found when a detection overlaps it by IoU >= ``IOU`` (detections
and faces matched one to one, best overlaps first). Half the faces are small
(``MIN_FACE`` .. ``SMALL_FACE`` px), half larger (log-uniform up to ``MAX_FACE``):
the small ones are what separates the detectors.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Sequence

import numpy as np

BACKGROUNDS = ("coffee", "chelsea", "rocket", "brick")
MIN_FACE, SMALL_FACE, MAX_FACE = 16, 40, 256  # pixels
IOU = 0.5
SIZE_BINS = ((MIN_FACE, SMALL_FACE), (SMALL_FACE + 1, 100), (101, MAX_FACE))
DETECTOR_LABELS = {"short_range": "short range (128 letterbox)",
                   "full_range": "full range (192 letterbox)",
                   "pyramid": "pyramid (short range, letterbox + tiles)"}


@dataclasses.dataclass
class Composite:
    """One test image with the boxes of the faces pasted into it.

    Attributes:
        image: (H, W, 3) uint8 picture.
        boxes: (K, 4) float64 ``x_min, y_min, x_max, y_max`` of the pasted
            faces in pixels (K may be 0).
        background: name of the scikit-image photo underneath (one of
            ``BACKGROUNDS``).
    """

    image: np.ndarray
    boxes: np.ndarray
    background: str


def _background(name: str) -> np.ndarray:
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    return np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a[..., :3].copy()


def _face(crop: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    g = Image.fromarray(np.clip(crop * 255.0 + 0.5, 0, 255).astype(np.uint8))
    g = np.asarray(g.resize((side, side), Image.Resampling.BICUBIC))
    return np.repeat(g[..., None], 3, -1)


def _overlaps(box, boxes, margin: float) -> bool:
    return any(box[0] < b[2] + margin and b[0] < box[2] + margin and
               box[1] < b[3] + margin and b[1] < box[3] + margin for b in boxes)


def build_composites(seed: int = 0, n_images: int = 16, faces_per_image: int = 6
                     ) -> list[Composite]:
    """A reproducible set of composites with known face boxes.

    Backgrounds are taken in turn from ``BACKGROUNDS``. Face sides alternate
    between small (``MIN_FACE`` .. ``SMALL_FACE`` px, uniform) and larger
    (log-uniform up to ``MAX_FACE`` px); faces keep a gap of a quarter side
    from each other, and a face that finds no free place in 200 tries is
    left out.

    Args:
        seed: random seed; the same seed gives the same set.
        n_images: number of composites, at least 1.
        faces_per_image: faces tried per composite, at least 1.

    Returns:
        list[Composite]: ``n_images`` composites.

    Raises:
        ValueError: when ``n_images`` or ``faces_per_image`` is below 1.
    """
    import skimage.data

    if n_images < 1 or faces_per_image < 1:
        raise ValueError(f"n_images={n_images}, faces_per_image={faces_per_image}: "
                         "both must be at least 1")
    faces = np.asarray(skimage.data.lfw_subset())[:100]  # the first 100 are faces
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_images):
        name = BACKGROUNDS[i % len(BACKGROUNDS)]
        image = _background(name)
        h, w = image.shape[:2]
        boxes: list[tuple[int, int, int, int]] = []
        for j in range(faces_per_image):
            if j % 2 == 0:
                side = int(rng.integers(MIN_FACE, SMALL_FACE + 1))
            else:
                side = int(round(np.exp(rng.uniform(np.log(SMALL_FACE + 1), np.log(MAX_FACE)))))
            side = min(side, h, w)
            crop = faces[rng.integers(len(faces))]
            for _ in range(200):
                x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
                box = (x, y, x + side, y + side)
                # a gap of a quarter face keeps neighbours out of each other's box
                if not _overlaps(box, boxes, side / 4):
                    image[y:y + side, x:x + side] = _face(crop, side)
                    boxes.append(box)
                    break
        out.append(Composite(image, np.asarray(boxes, np.float64).reshape(-1, 4), name))
    return out


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]),
                 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]),
                 0, None)
    inter = ix * iy
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match(truth: np.ndarray, found: np.ndarray, iou: float = IOU) -> np.ndarray:
    """For each true box, whether a detection matches it.

    Pairs are taken by decreasing IoU, each box and detection used at most
    once, down to IoU ``iou``.

    Args:
        truth: (K, 4) true boxes ``x_min, y_min, x_max, y_max``.
        found: (D, 4) detected boxes, same layout and units.
        iou: the least IoU that counts as a match.

    Returns:
        np.ndarray: (K,) bool, True where the true box was found.
    """
    hit = np.zeros(len(truth), bool)
    if len(truth) == 0 or len(found) == 0:
        return hit
    m = _iou_matrix(np.asarray(truth, np.float64), np.asarray(found, np.float64))
    used = np.zeros(len(found), bool)
    for flat in np.argsort(-m, axis=None, kind="stable"):
        t, d = divmod(int(flat), len(found))
        if m[t, d] < iou:
            break
        if not hit[t] and not used[d]:
            hit[t], used[d] = True, True
    return hit


def measure_recall(composites: Sequence[Composite], detector: str) -> dict:
    """Recall of ``zoo.face.detect_faces(..., detector=detector)`` on composites.

    Args:
        composites: the test images, e.g. from ``build_composites``.
        detector: ``"short_range"``, ``"full_range"`` or ``"pyramid"``.

    Returns:
        dict: ``{"recall": float, "bins": {(lo, hi): (found, total)},
        "found": int, "total": int, "detections": int}``: overall recall,
        found and total faces per size bin of ``SIZE_BINS`` (face side in
        pixels), overall counts, and the number of detections made.
    """
    from zoo.face import detect_faces

    results = detect_faces([c.image for c in composites], detector=detector,
                           names=[f"composite {i} ({c.background})"
                                  for i, c in enumerate(composites)])
    hits, sides, n_det = [], [], 0
    for c, (boxes, _, _) in zip(composites, results):
        hits.append(match(c.boxes, boxes))
        sides.append(c.boxes[:, 2] - c.boxes[:, 0])
        n_det += len(boxes)
    hits, sides = np.concatenate(hits), np.concatenate(sides)
    bins = {}
    for lo, hi in SIZE_BINS:
        sel = (sides >= lo) & (sides <= hi)
        bins[(lo, hi)] = (int(hits[sel].sum()), int(sel.sum()))
    return {"recall": float(hits.mean()) if hits.size else 0.0, "bins": bins,
            "found": int(hits.sum()), "total": int(hits.size), "detections": n_det}


def markdown_table(stats: dict[str, dict]) -> str:
    """A Markdown table of recall per detector, overall and per size bin.

    Args:
        stats: ``{detector: measure_recall(...)}``.

    Returns:
        str: the table, one row per detector, without a trailing newline.
    """
    head = ["detector", "recall (all)"] + [f"{lo}-{hi} px" for lo, hi in SIZE_BINS] + [
        "detections"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for det, s in stats.items():
        cells = [DETECTOR_LABELS.get(det, det), f"{s['recall']:.2f} ({s['found']}/{s['total']})"]
        cells += [f"{f / t:.2f} ({f}/{t})" if t else "-" for f, t in s["bins"].values()]
        rows.append("| " + " | ".join(cells + [str(s["detections"])]) + " |")
    return "\n".join(rows)


def main(argv: Sequence[str] = ()) -> int:
    """Prints the recall table of every detector (``python -m zoo.face_recall [seed]``).

    Args:
        argv: command-line arguments; an optional first one is the seed
            (default 0).

    Returns:
        int: the exit status, 0.
    """
    seed = int(argv[0]) if argv else 0
    composites = build_composites(seed)
    stats = {d: measure_recall(composites, d) for d in DETECTOR_LABELS}
    n = sum(len(c.boxes) for c in composites)
    print(f"Face recall at IoU >= {IOU} on {len(composites)} composites ({n} lfw_subset faces "
          f"pasted at {MIN_FACE}-{MAX_FACE} px on scikit-image photos, seed {seed}):\n")
    print(markdown_table(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
