"""Write ``midas_small.json``: MiDaS's own ``MidasNet_small`` (the v2.1 small
network) filled with reproducible pseudo-random weights, its state-dict keys
and shapes, and its outputs on two inputs, so the tests can check without
MiDaS that a state dict with MiDaS's key names loads into ``midas_small``
and gives MiDaS's depth.

MiDaS is not a package and its encoder comes from gen-efficientnet-pytorch
through ``torch.hub`` (network), so this runs once in a throwaway venv with
a copy of MiDaS's ``midas/`` folder (isl-org/MiDaS at commit
454597711a62eabcbf7d1e89f3fb9f569051ac9b), never inside this repository:

    python -m venv /tmp/midasvenv
    /tmp/midasvenv/bin/pip install torch==2.14.1 numpy geffnet==1.0.2
    git clone https://github.com/isl-org/MiDaS /tmp/MiDaS
    git -C /tmp/MiDaS checkout 454597711a62eabcbf7d1e89f3fb9f569051ac9b
    /tmp/midasvenv/bin/python tests/data/midas/make_fixture.py /tmp/MiDaS

Only ``midas/midas_net_custom.py``, ``midas/blocks.py`` and
``midas/base_model.py`` are used. ``midas/blocks.py`` imports the
transformer backbones (timm) at the top; MidasNet_small needs none of them,
so empty stand-ins are put in ``sys.modules`` first. ``torch.hub.load`` is
replaced by the PyPI build of the same gen-efficientnet code
(``geffnet.tf_efficientnet_lite3(pretrained=False, exportable=True)``),
which is what MiDaS's ``_make_pretrained_efficientnet_lite3`` asks the hub for.

The weights themselves are not stored: ``fill(keys_and_shapes)`` rebuilds
them from the key list (numpy only), here and in tests/test_midas.py. The
outputs are stored as whole-image statistics plus every ``SUBSAMPLE``-th
pixel in each direction (odd, so every parity of the x2 upsamplings is
sampled), which keeps the file small.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np

SEED = 20261129
INPUTS = ((256, 256), (192, 320))  # (H, W): the spec's size and a landscape one
SUBSAMPLE = 5
MIDAS_COMMIT = "454597711a62eabcbf7d1e89f3fb9f569051ac9b"


def fill(keys_and_shapes) -> dict[str, np.ndarray]:
    """Float32 arrays for a state dict's (key, shape) list, a pure function of
    the key's position: LeCun-uniform conv weights (variance 1 / fan-in),
    BatchNorm gains near 1 and variances in [0.5, 1.5], small biases and
    means. Integer buffers (``num_batches_tracked``) are left out.

    Not He's 2 / fan-in (timm's fixture): over MiDaS's 26 encoder blocks and
    residual decoder that gain amplifies float32 rounding to 1.2e-4 of the
    largest depth (PyTorch's own float32 against float64), more than the
    parity check allows; with 1 / fan-in it is 3e-6 and the depth map stays
    alive (about 80 % of the pixels positive)."""
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
            a = (2 * u - 1) * np.sqrt(3.0 / fan_in)
        out[key] = a.astype(np.float32)
    return out


def image(height: int, width: int) -> np.ndarray:
    """The (1, H, W, 3) NHWC input, in the model's normalised range."""
    rng = np.random.default_rng([SEED, 1 << 30, height, width])
    return (rng.random((1, height, width, 3)) * 4 - 2).astype(np.float32)


def summary(depth: np.ndarray) -> dict:
    """What the fixture keeps of one (H, W) output."""
    d = depth.astype(np.float64)
    return {"shape": list(depth.shape), "mean": float(d.mean()), "max": float(d.max()),
            "rms": float(np.sqrt((d * d).mean())), "positive": float((d > 0).mean()),
            "subsample": [[float(f"{v:.8g}") for v in row]
                          for row in depth[::SUBSAMPLE, ::SUBSAMPLE]]}


def _midas_net_small(midas_src: Path):
    """MiDaS's MidasNet_small class, imported from a copy of its repository
    without its transformer backbones."""
    import geffnet
    import torch

    stub = types.ModuleType("midas.backbones")
    stub.__path__ = []  # a package, for the submodule stand-ins below
    sys.modules["midas.backbones"] = stub
    for sub in ("beit", "swin_common", "swin2", "swin", "levit", "vit", "next_vit"):
        m = types.ModuleType(f"midas.backbones.{sub}")
        m.__getattr__ = lambda name: None  # every name blocks.py imports from it
        sys.modules[f"midas.backbones.{sub}"] = m

    def hub_load(repo, model, pretrained=False, exportable=False, **kwargs):
        assert repo == "rwightman/gen-efficientnet-pytorch", repo
        return getattr(geffnet, model)(pretrained=False, exportable=exportable, **kwargs)

    torch.hub.load = hub_load
    sys.path.insert(0, str(midas_src))
    from midas.midas_net_custom import MidasNet_small

    return MidasNet_small


def main(argv) -> int:
    from importlib.metadata import version

    import torch

    midas_src = Path(argv[1] if len(argv) > 1 else "/tmp/MiDaS")
    MidasNet_small = _midas_net_small(midas_src)
    fixture = {"midas_commit": MIDAS_COMMIT, "torch": torch.__version__,
               "geffnet": version("geffnet"), "seed": SEED, "subsample": SUBSAMPLE,
               "outputs": []}
    for h, w in INPUTS:
        # A fresh network per size: gen-efficientnet's exportable "SAME"
        # convolutions fix their padding at the first input they see.
        model = MidasNet_small(None, features=64, backbone="efficientnet_lite3",
                               exportable=True, non_negative=True, blocks={"expand": True})
        model.eval()
        keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
        state = {k: torch.from_numpy(v) for k, v in fill(keys).items()}
        result = model.load_state_dict(state, strict=False)
        assert not result.unexpected_keys and all(  # only the BatchNorm counters are left
            k.endswith("num_batches_tracked") for k in result.missing_keys), result
        fixture["keys"] = keys
        fixture["params"] = sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            x = torch.from_numpy(image(h, w)).permute(0, 3, 1, 2)
            depth = model(x).numpy()[0]
        fixture["outputs"].append({"input": [1, h, w, 3], **summary(depth)})
        print(f"{h}x{w}: depth {depth.shape}, max {depth.max():.4g}, "
              f"{(depth > 0).mean():.0%} positive", file=sys.stderr)
    out = Path(__file__).with_name("midas_small.json")
    out.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {out} ({out.stat().st_size} bytes), {fixture['params']} parameters",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
