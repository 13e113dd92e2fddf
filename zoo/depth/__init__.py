"""Monocular depth: relative inverse depth from one image, its evaluation
against ground truth, and pictures (a colour-mapped depth map, portrait-mode
bokeh).

    import skimage.data
    import zoo.depth

    image = skimage.data.astronaut()                       # (512, 512, 3) uint8
    d = zoo.depth.estimate(image, model="midas_small",     # MiDaS v2.1 small, official weights
                           allow_unpinned=True)            # (they come without a hash)
    d.shape, d.dtype                                       # (512, 512) float32, larger = nearer
    zoo.depth.colorize(d)                                  # (512, 512, 3) uint8, inferno colours
    zoo.depth.bokeh(image, d, focus=(256, 200))            # subject sharp, the rest disc-blurred

    left, _, disparity = skimage.data.stereo_motorcycle()  # Middlebury 2014, GT in pixels
    zoo.depth.evaluate(zoo.depth.estimate(left, model="midas_small", allow_unpinned=True),
                       disparity, to_depth=zoo.depth.middlebury.disparity_to_depth)
    # {"abs_rel": ..., "bad_1_25": ..., "scale": ..., "shift": ..., "valid_pixels": ..., ...}

``estimate`` takes one image (a (H, W) array back) or a list (a list back),
uint8 or float 0-255, grey, RGB or RGBA; ``pretrained=False`` gives random
weights (seed 0), ``variables=...`` explicit ones, ``run=WORKDIR`` a
``zoo train`` run. ``evaluate`` aligns the prediction to the ground-truth
disparity by least squares (scale and shift) and reports AbsRel and the
percentage of pixels whose depth ratio exceeds 1.25. ``python -m
zoo.depth.middlebury`` writes the evaluation table; ``zoo depth IMAGE...
[--bokeh]`` writes the pictures.
"""

from zoo.depth.inference import MIN_SIDE, estimate, network_input_size
from zoo.depth.pictures import bokeh, colorize, disc_kernel

__all__ = ["MIN_SIDE", "align", "bokeh", "colorize", "disc_kernel", "estimate", "evaluate",
           "network_input_size"]


def __getattr__(name):
    # The metrics and the Middlebury loader import on first use.
    if name in ("align", "evaluate"):
        from zoo.depth import metrics

        return getattr(metrics, name)
    if name in ("metrics", "middlebury"):
        import importlib

        return importlib.import_module(f"zoo.depth.{name}")
    raise AttributeError(f"module 'zoo.depth' has no attribute {name!r}")
