"""Write ``timm_logits.json``: timm's own logits for timm models filled with
reproducible pseudo-random weights, so the tests can check, without timm,
that a state dict with timm's key names loads into our models.

timm needs torchvision, which does not install beside the pinned CPU torch
of the test environment, so this runs once in a throwaway venv:

    python -m venv /tmp/timmvenv
    /tmp/timmvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 timm==1.0.31 numpy
    /tmp/timmvenv/bin/python tests/data/timm/make_fixture.py

The weights themselves are not stored: ``fill(keys_and_shapes)`` rebuilds
them from the key list (numpy only), here and in tests/test_timm_weights.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

# timm model -> (our registry name, input resolution for the check)
MODELS = {
    "tf_efficientnet_b0": ("efficientnet_b0", 160),
    "tf_efficientnet_b3": ("efficientnet_b3", 160),
    "tf_efficientnet_lite0": ("efficientnet_lite0", 160),
    "mobilenetv2_100": ("mobilenet_v2", 160),
    "tf_mobilenetv3_large_100": ("mobilenet_v3_large", 160),
    "tf_mobilenetv3_small_100": ("mobilenet_v3_small", 160),
}
SEED = 20261122


def fill(keys_and_shapes) -> dict[str, np.ndarray]:
    """Float32 arrays for a state dict's (key, shape) list, a pure function of
    the key's position: He-uniform conv and linear weights, BatchNorm gains
    near 1 and variances in [0.5, 1.5] (so deep variants stay well scaled),
    small biases and means. Integer buffers (``num_batches_tracked``) are left
    out."""
    out = {}
    for i, (key, shape) in enumerate(keys_and_shapes):
        if key.endswith("num_batches_tracked"):
            continue
        u = np.random.default_rng([SEED, i]).random(shape)  # float64 in [0, 1)
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "running_var":
            a = 0.5 + u
        elif leaf == "running_mean" or leaf == "bias":
            a = 0.2 * (u - 0.5)
        elif len(shape) == 1:  # BatchNorm gain
            a = 0.8 + 0.4 * u
        else:
            fan_in = int(np.prod(shape[1:]))
            a = (2 * u - 1) * np.sqrt(6.0 / fan_in)
        out[key] = a.astype(np.float32)
    return out


def image(resolution: int) -> np.ndarray:
    """The (1, H, W, 3) input, in the model's normalised range."""
    return (np.random.default_rng([SEED, 1 << 30]).random((1, resolution, resolution, 3)) * 4 - 2
            ).astype(np.float32)


def main() -> int:
    import timm
    import torch

    fixture = {"timm": timm.__version__, "torch": torch.__version__, "models": {}}
    for timm_name, (ours, res) in MODELS.items():
        model = timm.create_model(timm_name, pretrained=False).eval()
        keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        state = {k: torch.from_numpy(v) for k, v in fill(keys).items()}
        result = model.load_state_dict(state, strict=False)
        assert not result.unexpected_keys and all(  # only the BatchNorm counters are left
            k.endswith("num_batches_tracked") for k in result.missing_keys), result
        with torch.no_grad():
            x = torch.from_numpy(image(res)).permute(0, 3, 1, 2)
            logits = model(x).numpy()[0]
        fixture["models"][timm_name] = {"zoo": ours, "resolution": res, "keys": keys,
                                        "logits": [float(v) for v in logits]}
        print(timm_name, "max |logit|", float(np.abs(logits).max()), file=sys.stderr)
    out = Path(__file__).with_name("timm_logits.json")
    out.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
