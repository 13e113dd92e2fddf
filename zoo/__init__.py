"""A JAX/Flax model zoo for on-device vision.

    import zoo
    zoo.list_models("efficientnet*")
    spec = zoo.get_spec("efficientnet_b0")
    model, variables = zoo.create("efficientnet_b0", pretrained=False, seed=0)
    logits = model.apply(variables, images)   # NHWC float32, normalised per spec
    variables = zoo.load_pretrained("efficientnet_lite0")
    x = zoo.preprocess(uint8_images, spec)
    zoo.decode_predictions(logits, top=5)
    zoo.save(variables, path); zoo.restore(path)      # Orbax checkpoints
    zoo.train.fit(zoo.train.TrainConfig(...))          # fine-tuning (imported on first use)
    zoo.depth.estimate(image)                          # (H, W) relative inverse depth
    zoo.actions.evaluate(found, truth, protocol="thumos14")  # mAP per tIoU threshold
"""

from zoo.checkpoint import restore, save
from zoo.counting import count_macs, count_params
from zoo.preprocess import decode_predictions, imagenet_labels, preprocess
from zoo.registry import ModelSpec, Published, WeightSource, build, create, get_spec, list_models
from zoo.weights.conventions import Conventions
from zoo.weights.pretrained import load_pretrained

__all__ = ["Conventions", "ModelSpec", "Published", "WeightSource", "build", "count_macs",
           "count_params", "create", "decode_predictions", "get_spec", "imagenet_labels",
           "list_models", "load_pretrained", "preprocess", "restore", "save"]


def __getattr__(name):
    # Subpackages with heavier imports load on first use: ``zoo.train.fit``.
    if name in ("train", "datasets", "face", "depth", "actions", "video", "segment", "portrait",
                "crop"):
        import importlib

        return importlib.import_module(f"zoo.{name}")
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
