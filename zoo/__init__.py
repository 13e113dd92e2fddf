"""A JAX/Flax model zoo for on-device vision.

    import zoo
    zoo.list_models("efficientnet*")
    spec = zoo.get_spec("efficientnet_b0")
    model, variables = zoo.create("efficientnet_b0", pretrained=False, seed=0)
    logits = model.apply(variables, images)   # NHWC float32, normalised per spec
"""

from zoo.counting import count_macs, count_params
from zoo.registry import ModelSpec, Published, WeightSource, build, create, get_spec, list_models

__all__ = ["ModelSpec", "Published", "WeightSource", "build", "count_macs", "count_params",
           "create", "get_spec", "list_models"]
