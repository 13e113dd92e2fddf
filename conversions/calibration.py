"""Real images for int8 calibration, never the ones the int8 parity is judged
on: scikit-image's photos other than ``chelsea`` and ``coffee`` (astronaut,
rocket, camera, the motorcycle stereo pair and a few textures), as random
crops and flips preprocessed by the model's spec."""

from __future__ import annotations

import dataclasses

import numpy as np

CALIBRATION_PHOTOS = ("astronaut", "rocket", "camera", "motorcycle_left", "motorcycle_right",
                      "coins", "brick", "grass", "gravel", "immunohistochemistry")
HELD_OUT = ("chelsea", "coffee")  # the images quantised models are judged on


def _photo(name: str) -> np.ndarray:
    import skimage.data

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return left if name.endswith("left") else right
    return getattr(skimage.data, name)()


def calibration_images(spec, input_shape, samples: int = 128, seed: int = 0) -> list[np.ndarray]:
    """``samples`` arrays of ``input_shape`` (preprocessed model inputs).

    128 by default (a common post-training calibration size); int8 logits
    still vary with the draw by a few tenths of a logit. Each image is a
    random crop (35-100 % of each side) of one of ``CALIBRATION_PHOTOS``,
    flipped left-right half the time, then preprocessed by ``spec`` (square
    inputs) or stretched to the input size and normalised by the spec's
    mean and std (non-square inputs). Needs scikit-image and Pillow.

    Args:
        spec: the model's ``ModelSpec`` (its mean, std, crop fraction and
            interpolation).
        input_shape: the export's input shape (N, H, W, 3); each array
            holds N crops.
        samples: how many arrays.
        seed: seed of the crops and flips; the same seed gives the same
            arrays.

    Returns:
        A list of ``samples`` float32 arrays of shape ``input_shape``.

    Raises:
        ValueError: if ``spec`` is None (pass ``representative_data``
            instead).
    """
    from PIL import Image

    from zoo.preprocess import preprocess

    if spec is None:
        raise ValueError("int8 calibration of a model without a spec needs "
                         "representative_data (preprocessed inputs of the export's shape)")
    n, h, w, _ = input_shape
    rng = np.random.default_rng(seed)
    photos = [_photo(p) for p in CALIBRATION_PHOTOS]
    out = []
    for i in range(samples):
        batch = []
        for _ in range(n):
            img = photos[(i * n + len(batch)) % len(photos)]
            ih, iw = img.shape[:2]
            scale = rng.uniform(0.35, 1.0)
            ch, cw = max(8, int(ih * scale)), max(8, int(iw * scale))
            y, x = rng.integers(0, ih - ch + 1), rng.integers(0, iw - cw + 1)
            crop = img[y:y + ch, x:x + cw]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            batch.append(np.ascontiguousarray(crop))
        if h == w:
            x = np.asarray(preprocess(batch, dataclasses.replace(spec, input_size=h)))
        else:  # a non-square network sees the whole crop stretched (MediaPipe's way)
            stretched = [Image.fromarray(c).convert("RGB").resize((w, h), Image.BILINEAR)
                         for c in batch]
            x = np.stack([(np.asarray(im, np.float32) - spec.mean) / spec.std
                          for im in stretched])
        out.append(x.reshape(input_shape).astype(np.float32))
    return out
